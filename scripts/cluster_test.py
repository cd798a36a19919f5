"""Replicas behind nginx on loopback (`make cluster-test`): bounded, then everything stops.

Starts 3 replicas (`python -m app`, one worker each, one shared state directory: one machine's budget
and checkpoint store) and Debian's nginx, unprivileged, with deploy/nginx.conf (only its listen port
and its upstream list are filled in for loopback). Then, through nginx:

- a training stream, whose events are timed as they arrive (unbuffered: spread over the training,
  not all at its end);
- a bounded mixed load: new-seed runs, node fetches, dojo checks from 8 keep-alive clients;
- mid-load, one replica (not the stream's) is killed with SIGKILL.

Reports requests, failures per kind (goal: 0 for runs, nodes and checks), p50/p99, the retries nginx
made on another replica, and the stream's timing. Exits 1 on a failed request or a buffered stream;
latencies are reported, not gated.

    python scripts/cluster_test.py [--requests 2400] [--clients 8] [--port 23010] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import Conn, pct  # scripts/ is not a package: found through sys.path above

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
NODES = ["logprobs", "probs", "logits", "h", "W2", "hpreact", "bnraw", "hprebn", "emb", "C"]
ANSWERS = {"h": "dh = dlogits @ W2.T", "W2": "dW2 = h.T @ dlogits", "b2": "db2 = dlogits.sum(0)"}


def find_nginx() -> str | None:
    for path in ("/usr/sbin/nginx", shutil.which("nginx")):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def wait_healthy(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def replicas(ports: list[int], state: Path, env: dict[str, str] | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`python -m app` on each port (one worker each), sharing one state directory."""
    procs = []
    logs = []
    try:
        for port in ports:
            log = (state / f"replica-{port}.log").open("wb")
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "app", "--port", str(port), "--log-level", "warning"], cwd=ROOT,
                env={**os.environ, "NINJA_STATE_DIR": str(state), **(env or {})}, stdout=log, stderr=subprocess.STDOUT))
        for port in ports:
            wait_healthy(f"http://127.0.0.1:{port}/healthz")
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


def nginx_config(listen_port: int, upstream_ports: list[int]) -> tuple[str, str]:
    """deploy/nginx.conf with its listen port on loopback, and the upstream list for loopback replicas:
    the only two things changed, so the test runs the deployed configuration."""
    conf = (DEPLOY / "nginx.conf").read_text()
    if "listen 8080;" not in conf:
        raise RuntimeError("deploy/nginx.conf no longer listens on 8080; update the cluster test's template")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{listen_port};")
    upstream = "".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n" for p in upstream_ports)
    return conf, upstream


@contextmanager
def nginx(listen_port: int, upstream_ports: list[int], prefix: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Debian's nginx in the foreground, with a prefix directory of its own (no root needed)."""
    exe = find_nginx()
    if exe is None:
        raise RuntimeError("nginx not found (apt-get install nginx; .ci/run does)")
    prefix.mkdir(parents=True, exist_ok=True)
    conf, upstream = nginx_config(listen_port, upstream_ports)
    (prefix / "nginx.conf").write_text(conf)
    (prefix / "upstream-servers.conf").write_text(upstream)
    # as root, nginx's workers would switch to an unprivileged user that cannot use this prefix
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    argv = [exe, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr", "-g", directives]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {check.stderr}")
    log = (prefix / "nginx.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{listen_port}/healthz", 30)
        yield proc
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful: finish the open connections' requests
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def stream_events(port: int, query: str, out: dict[str, Any]) -> None:
    """GET the training stream through `port`; record each event's arrival time and the replica."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/train/stream?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    t0 = time.perf_counter()
    status = (await reader.readline()).split()
    out["status"] = int(status[1])
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "x-upstream":
            out["upstream"] = value.strip()
    times: list[tuple[str, float]] = []
    kind = ""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout=180)
        if not line:
            break
        if line.startswith(b"event: "):
            kind = line[7:].strip().decode()
            times.append((kind, time.perf_counter() - t0))
        elif line.startswith(b"data: ") and kind in ("done", "error"):
            out["last"] = json.loads(line[6:])
            break
    writer.close()
    out["events"] = times


def stream_report(info: dict[str, Any]) -> dict[str, Any]:
    events = info.get("events", [])
    progress = [t for kind, t in events if kind == "progress"]
    end = events[-1][1] if events else 0.0
    first = progress[0] if progress else end
    spread = (progress[-1] - progress[0]) if len(progress) > 1 else 0.0
    last = info.get("last", {})
    # the training loop's own time on the server: its steps at its measured rate
    loop_s = last["steps"] / last["steps_per_s"] if last.get("steps_per_s") else 0.0
    # Unbuffered: the progress events arrive as the training makes them, so their arrivals spread over
    # about the training loop's time. A buffering proxy holds them until its buffer (4-8 KB, ~40 events)
    # fills or the stream ends: they would arrive in a few bursts, spread over a small part of it.
    unbuffered = events[-1][0] == "done" and loop_s > 0 and spread >= 0.5 * loop_s if events else False
    start = next((t for kind, t in events if kind == "start"), end)
    return {"status": info.get("status"), "replica": info.get("upstream"), "events": len(events),
            "start_s": round(start, 3), "progress_events": len(progress), "first_progress_s": round(first, 3),
            "done_s": round(end, 3),
            "last_event": events[-1][0] if events else None, "training_loop_s": round(loop_s, 3),
            "progress_arrival_spread_s": round(spread, 3), "unbuffered": unbuffered}


async def mixed_load(port: int, clients: int, total: int, on_progress: Any) -> dict[str, Any]:
    rng = random.Random(16)
    plan = [rng.choice(("run", "node", "node", "check")) for _ in range(total)]
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for i, kind in enumerate(plan):
        queue.put_nowait((i, kind))
    times: dict[str, list[float]] = {"run": [], "node": [], "check": []}
    failures: dict[str, list[str]] = {"run": [], "node": [], "check": []}
    retried = 0
    done = 0

    async def client(k: int) -> None:
        nonlocal retried, done
        conn = Conn(port)
        run_id = ""
        while not queue.empty():
            i, kind = queue.get_nowait()
            if not run_id:
                kind = "run"
            t = time.perf_counter()
            try:
                if kind == "run":
                    status, body, headers = await request(conn, "POST", "/api/runs",
                                                          json.dumps({"seed": 50_000 + i}).encode())
                    if status == 200:
                        run_id = json.loads(body)["run_id"]
                elif kind == "node":
                    status, body, headers = await request(conn, "GET", f"/api/runs/{run_id}/nodes/{NODES[i % len(NODES)]}"
                                                                       "?arrays=false")
                else:
                    node = list(ANSWERS)[i % len(ANSWERS)]
                    status, body, headers = await request(conn, "POST", f"/api/runs/{run_id}/check",
                                                          json.dumps({"node": node, "code": ANSWERS[node]}).encode())
                    if status == 200 and not json.loads(body)["passed"]:
                        status = -1  # a wrong verdict is a failure too
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                failures[kind].append(f"{type(exc).__name__}")
                conn.close()
                conn = Conn(port)
                continue
            finally:
                done += 1
                on_progress(done)
            times[kind].append(time.perf_counter() - t)
            if "," in headers.get("x-upstream", ""):
                retried += 1  # nginx tried one replica, then another
            if status != 200:
                failures[kind].append(f"HTTP {status} {body[:100]!r}")
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.perf_counter() - start
    every = [t for v in times.values() for t in v]
    return {
        "requests": sum(len(v) for v in times.values()) + sum(len(v) for v in failures.values()),
        "seconds": round(wall, 2), "requests_per_s": round(len(every) / wall, 1),
        "p50_ms": round(pct(every, 0.5) * 1e3, 2), "p99_ms": round(pct(every, 0.99) * 1e3, 2),
        "by_kind": {k: {"requests": len(times[k]) + len(failures[k]), "failures": len(failures[k]),
                        "p50_ms": round(pct(times[k], 0.5) * 1e3, 2) if times[k] else None,
                        "p99_ms": round(pct(times[k], 0.99) * 1e3, 2) if times[k] else None}
                    for k in times},
        "failures": sum(len(v) for v in failures.values()),
        "failure_samples": [f"{k}: {m}" for k, v in failures.items() for m in v[:3]],
        "retried_on_another_replica": retried,
    }


async def request(conn: Conn, method: str, path: str, body: bytes = b"") -> tuple[int, bytes, dict[str, str]]:
    """Conn.request, keeping the response headers (for X-Upstream)."""
    if conn.writer is None:
        await conn.open()
    assert conn.reader is not None and conn.writer is not None
    conn.writer.write((f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    status = int((await conn.reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while True:
        line = await conn.reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, await conn.reader.readexactly(int(headers.get("content-length", "0"))), headers


async def scenario(port: int, replica_ports: list[int], procs: list[subprocess.Popen[bytes]], clients: int,
                   total: int) -> dict[str, Any]:
    # warm-up: each replica has served each kind once (first-use costs are not the proxy's)
    await mixed_load(port, 3, 60, lambda _: None)
    stream: dict[str, Any] = {}
    streaming = asyncio.create_task(stream_events(port, "steps=50000&n_hidden=64&audit_every=5000&stream_id=cluster-test-0001",
                                                  stream))
    while "upstream" not in stream and not streaming.done():
        await asyncio.sleep(0.05)
    stream_port = int(stream.get("upstream", ":0").rsplit(":", 1)[1])
    victim = next(p for p in replica_ports if p != stream_port)
    killed: dict[str, Any] = {}

    def on_progress(done: int) -> None:
        if not killed and done >= total * 0.4:
            proc = procs[replica_ports.index(victim)]
            proc.send_signal(signal.SIGKILL)
            killed.update({"replica": f"127.0.0.1:{victim}", "after_requests": done})

    load = await mixed_load(port, clients, total, on_progress)
    await streaming
    return {"load": load, "killed": killed, "stream": stream_report(stream)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--port", type=int, default=23010, help="nginx's port; the replicas use the next three")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    replica_ports = [args.port + 1, args.port + 2, args.port + 3]
    with tempfile.TemporaryDirectory(prefix="ninja-cluster-") as tmp:
        state, prefix = Path(tmp) / "state", Path(tmp) / "nginx"
        state.mkdir()
        with replicas(replica_ports, state) as procs, nginx(args.port, replica_ports, prefix):
            results = asyncio.run(asyncio.wait_for(
                scenario(args.port, replica_ports, procs, args.clients, args.requests), timeout=900))
    results["replicas"] = len(replica_ports)
    if args.json:
        print(json.dumps(results))
    else:
        load, stream = results["load"], results["stream"]
        print(f"cluster: {len(replica_ports)} replicas behind nginx (deploy/nginx.conf) on loopback, "
              f"{args.clients} clients; killed {results['killed'].get('replica')} after "
              f"{results['killed'].get('after_requests')} requests")
        for key in ("requests", "failures", "requests_per_s", "p50_ms", "p99_ms", "retried_on_another_replica"):
            print(f"  {key:28s} {load[key]}")
        for kind, figures in load["by_kind"].items():
            print(f"  {kind:28s} {figures}")
        if load["failure_samples"]:
            print(f"  failure samples              {load['failure_samples']}")
        print(f"  training stream              {stream}")
    ok = results["load"]["failures"] == 0 and results["stream"]["unbuffered"] and bool(results["killed"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
