"""HTTP benchmarks against the real server on loopback (`make bench` runs them).

Starts `python -m app` on a free port with as many workers as the machine has cores, then measures
with a small raw HTTP/1.1 keep-alive client on asyncio (light enough not to steal the server's CPU):

- POST /api/runs, default config, one client: p50 (cached run, and a fresh seed every request)
- POST /api/runs with 8 concurrent clients, 2 000 requests, a fresh seed every request
- GET a node, one client: p50 with and without the display arrays
- batch 4096 × n_hidden 1024: the run's time and the node payload's size

    python scripts/bench_http.py [--json] [--workers N] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(workers: int, extra_env: dict[str, str] | None = None, command: list[str] | None = None,
           port: int | None = None) -> Iterator[int]:
    port = port or free_port()
    env = {**os.environ, **(extra_env or {})}
    argv = command or ["-m", "app"]
    proc = subprocess.Popen([sys.executable, *argv, "--port", str(port), "--workers", str(workers),
                             "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120  # a busy shared machine: importing torch alone can take 10 s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server on port {port} did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


class Conn:
    """One keep-alive HTTP/1.1 connection; enough protocol for our JSON endpoints."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def request(self, method: str, path: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sequential(port: int, method: str, paths: list[str], bodies: list[bytes]) -> list[float]:
    conn = Conn(port)
    times = []
    for path, body in zip(paths, bodies, strict=False):
        t = time.perf_counter()
        status, _ = await conn.request(method, path, body)
        times.append(time.perf_counter() - t)
        assert status == 200, status
    conn.close()
    return times


async def concurrent_runs(port: int, clients: int, total: int, seed0: int | None) -> dict[str, Any]:
    """`total` POST /api/runs from `clients` keep-alive connections: a fresh seed each (seed0, seed0+1,
    ...) so every run is computed, or with seed0 None the default config every time (the cache)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(b"{}" if seed0 is None else json.dumps({"seed": seed0 + i}).encode())
    times: list[float] = []
    errors = 0

    async def client() -> None:
        nonlocal errors
        conn = Conn(port)
        while not queue.empty():
            body = queue.get_nowait()
            t = time.perf_counter()
            try:
                status, _ = await conn.request("POST", "/api/runs", body)
                if status != 200:
                    errors += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                conn = Conn(port)
            times.append(time.perf_counter() - t)
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    return {"clients": clients, "requests": total, "errors": errors, "seconds": round(wall, 2),
            "requests_per_s": round(total / wall, 1), "p50_ms": round(pct(times, 0.5) * 1e3, 2),
            "p99_ms": round(pct(times, 0.99) * 1e3, 2)}


async def measure(port: int, requests: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    default = json.dumps({}).encode()
    await sequential(port, "POST", ["/api/runs"] * 20, [default] * 20)  # warm-up (both workers)
    t = await sequential(port, "POST", ["/api/runs"] * 300, [default] * 300)
    out["post_run_default_cached_p50_ms"] = round(statistics.median(t) * 1e3, 2)
    fresh = [json.dumps({"seed": 10_000 + i}).encode() for i in range(300)]
    t = await sequential(port, "POST", ["/api/runs"] * 300, fresh)
    out["post_run_fresh_seed_p50_ms"] = round(statistics.median(t) * 1e3, 2)
    out["concurrent_8_fresh_seeds"] = await concurrent_runs(port, 8, requests, 1_000_000)
    out["concurrent_8_same_config"] = await concurrent_runs(port, 8, requests, None)

    conn = Conn(port)
    _, body = await conn.request("POST", "/api/runs", default)
    run_id = json.loads(body)["run_id"]
    conn.close()
    nodes = ["h", "hprebn", "logits", "emb", "C", "W1"]
    for label, query in (("node_full_p50_ms", ""), ("node_figure_only_p50_ms", "?arrays=false"),
                         ("node_arrays_b64_p50_ms", "?figure=false"),
                         ("node_arrays_list_p50_ms", "?figure=false&encoding=list")):
        paths = [f"/api/runs/{run_id}/nodes/{nodes[i % len(nodes)]}{query}" for i in range(300)]
        t = await sequential(port, "GET", paths, [b""] * len(paths))
        out[label] = round(statistics.median(t) * 1e3, 2)

    big = json.dumps({"batch_size": 4096, "n_hidden": 1024}).encode()
    conn = Conn(port)
    t0 = time.perf_counter()
    status, body = await conn.request("POST", "/api/runs", big)
    assert status == 200, body[:200]
    out["big_run_seconds"] = round(time.perf_counter() - t0, 3)
    big_id = json.loads(body)["run_id"]
    sizes = {}
    for name, query in (("hprebn", ""), ("hprebn", "?arrays=false"), ("emb", "")):
        _status, payload = await conn.request("GET", f"/api/runs/{big_id}/nodes/{name}{query}")
        sizes[f"{name}{query}"] = len(payload)
    out["big_node_payload_bytes"] = sizes
    conn.close()
    return out


def keepalive_stall(workers: int) -> dict[str, float]:
    """DESIGN.md's +48 ms: keep-alive POST p50 with several workers on the asyncio loop, plain uvicorn
    (no TCP_NODELAY on accepted sockets) vs `python -m app` (sets it)."""
    out = {}
    for label, command in (("plain_uvicorn_asyncio_p50_ms", ["-m", "uvicorn", "app.main:app", "--loop", "asyncio"]),
                           ("python_m_app_asyncio_p50_ms", ["-m", "app", "--loop", "asyncio"])):
        with server(workers, command=command) as port:
            times = asyncio.run(sequential(port, "POST", ["/api/runs"] * 200, [b"{}"] * 200))
            out[label] = round(statistics.median(times[20:]) * 1e3, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with server(args.workers) as port:
        results = {"workers": args.workers, **asyncio.run(measure(port, args.requests))}
    results["keepalive_with_workers"] = keepalive_stall(args.workers)
    if args.json:
        print(json.dumps(results))
        return
    print(f"HTTP (loopback, real uvicorn, {args.workers} workers)")
    for key, value in results.items():
        print(f"  {key:32s} {value}")


if __name__ == "__main__":
    main()
