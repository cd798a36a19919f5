"""deploy/nginx.conf in front of real replicas on loopback: the training stream passes through
unbuffered, a request that meets a dead replica is answered by another (POST /api/runs included),
and nginx's own refusals speak the API's JSON. Skipped, with the reason, where nginx is not installed
(.ci/run installs Debian's nginx, so CI runs them)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cluster() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cluster_test", ROOT / "scripts" / "cluster_test.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cluster_test"] = module
    spec.loader.exec_module(module)
    return module


cluster = _cluster()
pytestmark = pytest.mark.skipif(cluster.find_nginx() is None,
                                reason="nginx is not installed (apt-get install nginx; .ci/run does)")


def free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, list[int], list[Any]]]:
    """Two replicas behind nginx with deploy/nginx.conf: (nginx port, replica ports, replica processes)."""
    tmp = tmp_path_factory.mktemp("cluster")
    port, *replica_ports = free_ports(3)
    (tmp / "state").mkdir()
    with cluster.replicas(replica_ports, tmp / "state") as procs, cluster.nginx(port, replica_ports, tmp / "nginx"):
        yield port, replica_ports, procs


def stream(port: int, query: str) -> dict[str, Any]:
    info: dict[str, Any] = {}
    asyncio.run(asyncio.wait_for(cluster.stream_events(port, query, info), timeout=300))
    return cluster.stream_report(info)  # type: ignore[no-any-return]


def test_the_training_stream_passes_through_unbuffered(proxied: tuple[int, list[int], list[Any]]) -> None:
    port, replica_ports, _ = proxied
    report = stream(port, "steps=20000&n_hidden=32&stream_id=deploy-test-0001")
    assert report["status"] == 200 and report["last_event"] == "done"
    assert report["replica"] in {f"127.0.0.1:{p}" for p in replica_ports}
    # events arrive as the training makes them: spread over the training loop's time
    assert report["unbuffered"], report


def test_the_unbuffered_check_tells_a_buffered_stream_apart() -> None:
    # The check above on two made-up arrival timelines of the same run (2 s training loop, 100 progress
    # events): as made, and held by a buffering proxy until the end. nginx itself passes the stream on
    # even with proxy_buffering on (it forwards each upstream flush), so the buffered case is made up.
    loop = {"kind": "done", "steps": 2000, "steps_per_s": 1000.0}
    made = [("start", 0.01), *[("progress", 0.5 + 0.02 * i) for i in range(100)], ("done", 2.8)]
    held = [("start", 2.79), *[("progress", 2.79 + 0.0001 * i) for i in range(100)], ("done", 2.8)]
    assert cluster.stream_report({"status": 200, "events": made, "last": loop})["unbuffered"]
    assert not cluster.stream_report({"status": 200, "events": held, "last": loop})["unbuffered"]
    assert not cluster.stream_report({"status": 200, "events": made[:-1], "last": {}})["unbuffered"]  # no done


def post(port: int, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.load(r), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e), dict(e.headers)


def test_nginx_refusals_are_the_apis_json_with_retry_after(proxied: tuple[int, list[int], list[Any]]) -> None:
    port, _, _ = proxied
    status, doc, _ = post(port, "/api/runs", {})
    assert status == 200
    statuses = []
    for _ in range(14):  # the edge allows a burst of 10 gradchecks, then 30 a minute per address
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs/{doc['run_id']}/gradcheck", timeout=60) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
            assert e.code == 429 and int(e.headers["Retry-After"]) >= 1
            assert json.load(e)["error"] == "rate_limited"
    assert statuses[0] == 200 and 429 in statuses


def test_a_dead_replica_is_skipped_even_for_post(proxied: tuple[int, list[int], list[Any]]) -> None:
    port, replica_ports, procs = proxied
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait(timeout=10)
    answers = [post(port, "/api/runs", {"seed": 900 + i}) for i in range(6)]
    assert [status for status, _, _ in answers] == [200] * 6
    upstreams = [headers.get("X-Upstream", "") for _, _, headers in answers]
    # at least one POST met the dead replica first and was sent on to the live one
    assert any(u == f"127.0.0.1:{replica_ports[0]}, 127.0.0.1:{replica_ports[1]}" for u in upstreams), upstreams
