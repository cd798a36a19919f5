"""The server's budget for heavy work (shared by processes through slot files), the per-client share
and rate, and trained weights kept in the checkpoint store for every worker process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

from .support import serve


@contextmanager
def held_by_another_process(path: Path) -> Iterator[subprocess.Popen[str]]:
    """An flock on `path` held by another process (as a worker of the same server would hold it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)"), str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_heavy_work_beyond_the_budget_is_429_at_once_and_a_dead_holder_frees_its_slot(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, heavy_jobs=1, request_timeout_s=60)
    body = {"seed": 11, "train_steps": 300, "n_hidden": 16}
    with TestClient(create_app(settings)) as c, held_by_another_process(tmp_path / "slots" / "heavy-0.lock") as holder:
        started = time.monotonic()
        r = c.post("/api/runs", json=body)
        waited = time.monotonic() - started
        assert r.status_code == 429 and r.json()["error"] == "busy", r.text
        assert int(r.headers["retry-after"]) >= 1 and "heavy jobs" in r.json()["message"]
        # at once, not after the request timeout (60 s here); generous bound for a busy machine
        assert waited < 30
        holder.kill()  # the process holding the slot dies: the kernel releases its lock
        holder.wait(timeout=10)
        r = c.post("/api/runs", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["config"]["train_steps"] == 300


def test_one_client_gets_its_share_and_others_still_get_theirs(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, heavy_jobs=4, client_jobs=1, request_timeout_s=0.2)
    app = create_app(settings)
    with TestClient(app, client=("192.0.2.1", 1)) as a:
        b = TestClient(app, client=("192.0.2.2", 1))
        first = a.post("/api/runs", json={"seed": 1, "train_steps": 200_000})
        assert first.status_code == 429 and first.json()["error"] == "still_computing"  # training, in the background
        second = a.post("/api/runs", json={"seed": 2, "train_steps": 200_000})
        assert second.status_code == 429 and second.json()["error"] == "busy"
        assert "you already have 1" in second.json()["message"] and second.headers["retry-after"]
        other = b.post("/api/runs", json={"seed": 3, "train_steps": 200_000})
        assert other.status_code == 429 and other.json()["error"] == "still_computing"  # B's own training started
        # asking again for a training that is going on costs nothing and starts nothing
        again = a.post("/api/runs", json={"seed": 1, "train_steps": 200_000})
        assert again.json()["error"] == "still_computing"
        assert app.state.registry.stats()["trainings"] == 2


def test_expensive_requests_are_rate_limited_per_client(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, rate_burst=2, rate_per_minute=1)
    app = create_app(settings)
    with TestClient(app, client=("192.0.2.1", 1)) as a:
        run_id = a.post("/api/runs", json={}).json()["run_id"]
        assert [a.get(f"/api/runs/{run_id}/gradcheck").status_code for _ in range(2)] == [200, 200]
        r = a.get(f"/api/runs/{run_id}/gradcheck")
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
        assert 30 <= int(r.headers["retry-after"]) <= 60  # one token a minute
        assert a.post("/api/runs", json={"seed": 5}).status_code == 200  # cheap requests are not counted
        b = TestClient(app, client=("192.0.2.2", 1))
        assert b.get(f"/api/runs/{run_id}/gradcheck").status_code == 200  # another client has its own bucket
        de = a.get(f"/api/runs/{run_id}/gradcheck", params={"lang": "de"})
        assert de.status_code == 429 and "Zu viele" in de.json()["message"]


def test_training_streams_share_one_limit_across_processes(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, max_train_streams=1)
    with TestClient(create_app(settings)) as c, held_by_another_process(tmp_path / "slots" / "stream-0.lock"):
        r = c.get("/api/train/stream", params={"steps": 10})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "training" in r.json()["message"]


def _healthz_on(client: httpx.Client) -> dict:  # type: ignore[type-arg]
    return client.get("/healthz").json()  # type: ignore[no-any-return]


def _post_until_ready(client: httpx.Client, body: dict) -> httpx.Response:  # type: ignore[type-arg]
    for _ in range(60):
        r = client.post("/api/runs", json=body)
        if r.status_code != 429:
            return r
        time.sleep(min(2.0, float(r.headers.get("retry-after", "1"))))
    raise AssertionError("the trained run never became ready")


@pytest.mark.slow
def test_a_trained_checkpoint_is_reused_by_another_worker_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NINJA_STATE_DIR", str(tmp_path))  # the server inherits it
    body = {"seed": 77, "train_steps": 3000, "n_hidden": 32}
    with serve("--workers", "2") as base:
        # One connection is served by one worker: /healthz on it names that worker.
        with httpx.Client(base_url=base, timeout=60) as first:
            trainer = _healthz_on(first)["pid"]
            r = _post_until_ready(first, body)
            assert r.status_code == 200 and r.json()["config"]["train_steps"] == 3000
            assert _healthz_on(first)["runs"]["trainings"] == 1
        files = list((tmp_path / "checkpoints").glob("*.pt"))
        assert len(files) == 1
        stamp = files[0].stat().st_mtime_ns, files[0].stat().st_ino
        for _ in range(200):  # new connections until one lands on the other worker
            with httpx.Client(base_url=base, timeout=60) as other:
                if _healthz_on(other)["pid"] == trainer:
                    continue
                again = other.post("/api/runs", json=body)
                assert again.status_code == 200
                assert again.json()["nodes"] == r.json()["nodes"]  # the same network, bit for bit
                health = _healthz_on(other)["runs"]
                # the second worker answered from the checkpoint: it trained nothing
                assert health["trainings"] == 0 and health["checkpoint_hits"] == 1
                break
        else:
            pytest.fail("no connection reached the second worker in 200 tries")
        assert (files[0].stat().st_mtime_ns, files[0].stat().st_ino) == stamp  # written once, never again


def test_retry_after_for_a_training_counts_with_its_own_networks_speed() -> None:
    """A GPT step costs ~25 MLP steps: the same number of steps must not promise the same wait."""
    from concurrent.futures import Future

    from app.registry import _Training
    from ninja_core.nets import NETS

    app = create_app(Settings())
    with TestClient(app):
        registry = app.state.registry
        now = time.monotonic()
        etas = {net: registry._eta(_Training("k", net, 20_000, now, Future()), 20_000)
                for net in NETS}
    assert etas["mlp"] == 6 and etas["gpt"] == 60 and etas["mlp"] < etas["wavenet"] < etas["gpt"], etas
