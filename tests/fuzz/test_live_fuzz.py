"""Schema fuzzing against a live server: `python -m app --workers 2` in a subprocess, tested over
real HTTP by schemathesis's own command line (`schemathesis run URL`), as anyone would test it.

The in-process run (test_schema_fuzz.py) calls the ASGI app directly; this one goes through uvicorn
too: its HTTP parser, the body limit on a real socket, two worker processes sharing the budget and
the checkpoint store, and the schema exactly as a client downloads it from /openapi.json. Checks:
all of schemathesis's (no 5xx, documented statuses and headers, bodies that match their schemas,
schema-valid data accepted and invalid data refused, links followed in stateful scenarios)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = os.environ.get("FUZZ_LIVE_EXAMPLES", "15")  # per operation and phase, over real HTTP
# the limits of the in-process run (a small shared box), set the way an operator sets them: environment
ENV = {"NINJA_MAX_TRAIN_STEPS_IN_RUN": "50", "NINJA_MAX_TRAIN_STREAM_STEPS": "200", "NINJA_CACHE_RUNS": "16",
       "NINJA_RATE_PER_MINUTE": "100000", "NINJA_RATE_BURST": "10000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("live-fuzz-state")
    port = free_port()
    log_path = state / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port), "--workers", "2", "--log-level",
                                 "warning"], cwd=ROOT, env={**os.environ, **ENV, "NINJA_STATE_DIR": str(state)},
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        yield base
        assert "Traceback" not in log_path.read_text(), log_path.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_live_server_conforms_to_its_schema(live_server: str) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    proc = subprocess.run([cli, "--config-file", str(Path(__file__).with_name("schemathesis.toml")), "run",
                           f"{live_server}/openapi.json", "--checks", "all", "--max-examples", EXAMPLES, "--workers", "1",
                           "--generation-deterministic", "--request-timeout", "60", "--no-color",
                           "--report", "junit", "--report-junit-path", str(out / "fuzz-live.xml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    summary = proc.stdout[proc.stdout.rfind("SUMMARY"):] if "SUMMARY" in proc.stdout else proc.stdout[-3000:]
    print(f"\nlive schema fuzzing (schemathesis run against {live_server}):\n{summary}")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
