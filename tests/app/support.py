"""Helpers for the tests that start the real server: start it, find its processes, read their CPU."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(*extra: str) -> Iterator[str]:
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - a file, not a pipe: a pipe nobody reads can fill and block the server
    proc = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port), "--log-level", "warning", *extra],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-2000:]}")
        else:
            raise RuntimeError("server did not answer /healthz within 60 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_pid(base: str) -> int:
    """The `python -m app` process listening at `base` (http://127.0.0.1:PORT)."""
    port = base.rsplit(":", 1)[1].encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"app" in cmd and port in cmd:
                return int(entry.name)
    raise LookupError("server process not found")


def parents() -> dict[int, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError):
                continue
    return found


def descendants(pid: int) -> list[int]:
    """The process and every process under it (training runs in a child process)."""
    tree = parents()
    found, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in tree.items() if parent in frontier]
        found += frontier
    return found


def worker_pids(pid: int) -> list[int]:
    """uvicorn's worker processes (spawned children), not multiprocessing's helper processes."""
    workers = []
    for child, parent in parents().items():
        if parent == pid:
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    workers.append(child)
            except OSError:
                continue
    return workers


def cpu_seconds(pid: int, tree: bool = False) -> float:
    """CPU time of a process (with `tree`, of it and its descendants, ended children included)."""
    total = 0.0
    for p in descendants(pid) if tree else [pid]:
        try:
            fields = _stat_fields(p)
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15 if tree else 13]) / os.sysconf("SC_CLK_TCK")
    return total
