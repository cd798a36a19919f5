"""Schema fuzzing: schemathesis generates requests from the app's own OpenAPI document and checks
every response: no 5xx, the status code is documented, the body matches its schema, and no error
body leaks a traceback or a file path. Run with `make fuzz` (part of `make test`)."""

from __future__ import annotations

import collections
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from app.main import create_app
from app.settings import Settings

# Limits an operator would set on a small shared box: the largest configs are still valid input,
# but a generator that picks them on every case would spend minutes computing, not testing.
# Tightened in the published schema too (app/openapi.py), so every offered value is accepted.
# Its own state directory (budget, checkpoints) and a rate limit a fuzzer does not hit every few cases.
FUZZ_SETTINGS = Settings(max_train_steps_in_run=50, max_train_stream_steps=200, cache_runs=16,
                         state_dir=Path(tempfile.mkdtemp(prefix="ninja-fuzz-")), rate_per_minute=100_000,
                         rate_burst=10_000)
APP = create_app(FUZZ_SETTINGS)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))  # per operation; 8 operations → ≥ 1 000 cases


CASES: collections.Counter[str] = collections.Counter()  # generated cases per "METHOD path status"


@pytest.fixture(scope="module", autouse=True)
def started() -> Iterator[TestClient]:
    with TestClient(APP) as client:  # runs the lifespan: registry, pools
        yield client
    total = sum(CASES.values())
    by_status = collections.Counter(key.rsplit(" ", 1)[1] for key in CASES.elements())
    summary = {"cases": total, "server_errors": sum(n for k, n in by_status.items() if k.startswith("5")),
               "by_status": dict(sorted(by_status.items())), "by_operation": dict(sorted(CASES.items()))}
    out = Path(__file__).resolve().parents[2] / "artifacts"
    out.mkdir(exist_ok=True)
    (out / "fuzz.json").write_text(json.dumps(summary, indent=1))
    print(f"\nschema fuzzing: {total} generated cases, {summary['server_errors']} server errors, "
          f"statuses {summary['by_status']}")


# which refusals count as proper (413 for a body over the limit, 400 for learner code that fails)
CONFIG = SchemathesisConfig.from_path(str(Path(__file__).with_name("schemathesis.toml")))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


def no_leaks(response: object) -> None:
    text = getattr(response, "text", "")
    if getattr(response, "status_code", 200) >= 400:
        assert "Traceback" not in text and "site-packages" not in text and "/work/" not in text, text[:300]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    response = case.call_and_validate()
    CASES[f"{case.method} {case.path} {response.status_code}"] += 1
    assert response.status_code < 500, response.text[:300]
    no_leaks(response)


# Stateful: follow the OpenAPI links from POST /api/runs (run id, first node) into every operation
# that takes a run, so generated requests also reach real runs, not only 404s.
Workflow = schema.as_state_machine()
Workflow.TestCase.settings = settings(max_examples=max(10, EXAMPLES // 5), stateful_step_count=6, deadline=None,
                                      suppress_health_check=list(HealthCheck), derandomize=True, database=None)


class TestWorkflow(Workflow.TestCase):  # type: ignore[name-defined,misc]
    pass
