"""POST /api/runs/{id}/check and /grade: verdicts, code errors as 400, limits, concurrency."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.schemas import CheckVerdict, CodeErrorBody, GradeDocument
from app.settings import Settings
from ninja_core.config import Config as _Config
from ninja_core.nets import get_net

MLP_TAPE = get_net("mlp").tape(_Config())


def test_a_right_formula_is_exact(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "h", "code": "dh = dlogits @ W2.T"})
    assert r.status_code == 200
    v = CheckVerdict.model_validate(r.json())
    assert v.status == "exact" and v.passed and v.variable == "dh"
    assert v.figure is not None and len(v.figure["data"]) == 4
    assert v.figure["data"][1]["name"] == "dh (yours)"


def test_every_reference_formula_passes_over_http(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    for name in MLP_TAPE.backward_order:
        r = client.post(f"/api/runs/{default_run_doc['run_id']}/check",
                        json={"node": name, "code": MLP_TAPE.node_formula(name, "chain")})
        assert r.status_code == 200, (name, r.text)
        assert r.json()["status"] in ("exact", "approx"), name


def test_a_wrong_shape_is_diagnosed(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check",
                    json={"node": "bnmeani", "code": "dbnmeani = (-dbndiff).sum(0)"})
    v = r.json()
    assert v["status"] == "shape_mismatch" and v["shape"] == [64] and v["expected_shape"] == [1, 64]
    assert any("keepdim=True" in d for d in v["diagnosis"])


def test_alias_node_and_german_figure(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check",
                    json={"node": "a", "code": "da = dlogits @ W2.T", "lang": "de"})
    assert r.json()["node"] == "h" and r.json()["status"] == "exact"
    assert r.json()["figure"]["data"][1]["name"] == "dh (deins)"
    assert r.json()["figure"]["data"][3]["name"] == "|deins − autograd|"


@pytest.mark.parametrize(("code", "kind", "line"), [
    ("dh = dlogits @ W2", "runtime", 1),
    ("x = 1\ndh = nope * 2", "runtime", 2),
    ("import os", "forbidden", 1),
    ("dh = ().__class__", "forbidden", 1),
    ("dh = (", "syntax", 1),
    ("x = 1", "no_answer", None),
    ("for i in range(10**9):\n    pass", "limit", 1),
])
def test_code_errors_are_400_with_line_and_column(client: TestClient, default_run_doc: dict,  # type: ignore[type-arg]
                                                  code: str, kind: str, line: int | None) -> None:
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "h", "code": code})
    assert r.status_code == 400, r.text
    err = CodeErrorBody.model_validate(r.json())
    assert err.kind == kind and err.line == line
    assert "Traceback" not in r.text and "/work" not in r.text


def test_source_over_4kb_is_refused(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    code = "dh = dlogits @ W2.T\n" + "# padding\n" * 500
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "h", "code": code})
    assert r.status_code == 400 and r.json()["kind"] == "limit" and "4,096" in r.json()["message"]


def test_unknown_node_and_run(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "loss", "code": "1"})
    assert r.status_code == 422 and r.json()["field"] == "node" and "bnvar_inv" in r.json()["allowed"]
    assert "the nodes of mlp are" in r.json()["message"]
    assert client.post("/api/runs/nope/check", json={"node": "h", "code": "1"}).status_code == 404


@pytest.mark.parametrize("body", [{}, {"node": "h"}, {"code": "1"}, {"node": "h", "code": 5}, {"node": "h", "code": "1", "x": 1}])
def test_malformed_bodies_are_422(client: TestClient, default_run_doc: dict, body: dict) -> None:  # type: ignore[type-arg]
    assert client.post(f"/api/runs/{default_run_doc['run_id']}/check", json=body).status_code == 422


def test_timeout_stops_the_work_and_the_server_stays_healthy(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    slow = "x = torch.zeros(256, 256)\nfor i in range(100000):\n    x = x @ x * 0.0\ndh = x"
    start = time.monotonic()
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "h", "code": slow})
    elapsed = time.monotonic() - start
    assert r.status_code == 400 and r.json()["kind"] in ("timeout", "limit")
    assert elapsed < 4.0
    assert client.get("/healthz").status_code == 200


def test_grade_the_whole_exercise_cell(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/grade", json={"code": MLP_TAPE.exercise_cell()})
    doc = GradeDocument.model_validate(r.json())
    assert [row.name for row in doc.nodes] == list(MLP_TAPE.backward_order)
    assert doc.complete and doc.totals["passed"] == 26 and doc.totals["local_passed"] == 26


def test_grade_reports_where_a_cell_stops(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    cell = "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\ndprobs = oops / probs"
    doc = client.post(f"/api/runs/{default_run_doc['run_id']}/grade", json={"code": cell}).json()
    assert doc["complete"] is False and doc["error"]["line"] == 3
    rows = {row["name"]: row for row in doc["nodes"]}
    assert rows["logprobs"]["status"] == "exact" and rows["probs"]["status"] == "missing"


def test_too_many_concurrent_checks_get_429() -> None:
    settings = Settings(dojo_workers=1, dojo_queue=0)
    with TestClient(create_app(settings)) as c:
        run_id = c.post("/api/runs", json={}).json()["run_id"]
        slow = "x = torch.zeros(200, 200)\nfor i in range(100000):\n    x = x @ x * 0.0\ndh = x"
        codes: list[int] = []

        def send() -> None:
            codes.append(c.post(f"/api/runs/{run_id}/check", json={"node": "h", "code": slow}).status_code)

        threads = [threading.Thread(target=send) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 429 in codes and 400 in codes
