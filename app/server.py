"""Serve the app with uvicorn: `python -m app [--host H] [--port P] [--workers N]`.

With several workers, uvicorn shares one listening socket among processes, and asyncio then never
sets TCP_NODELAY on accepted connections (uvicorn issue #3149): Nagle's algorithm plus delayed ACKs
added ~48 ms to every keep-alive response here. The protocol classes below set TCP_NODELAY on each
accepted socket themselves, whatever the worker count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from collections.abc import Sequence

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ninja_core.cli.args import bounded_int
from ninja_core.data import DataError, load_dataset

from .settings import SettingsError, get_settings, state_dir


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # the peer is already gone; the protocol will see it
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


# uvicorn would take --port 99999 and listen on 99999 - 65536 while printing 99999
SERVE_LIMITS = {"port": (1, 65535), "workers": (1, 64)}


def _bind_error(host: str, port: int) -> str | None:
    """Why (host, port) cannot be listened on, or None: checked here so that a port in use is one line
    and status 2, not a uvicorn error per worker."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot bind {host}:{port}: {exc.strerror or exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def main(argv: Sequence[str] | None = None, prog: str = "python -m app") -> int:
    try:  # a bad NINJA_* variable: one line that names it and what is allowed, like a bad NINJA_DATA_PATH
        settings = get_settings()
        state_dir(settings)
    except SettingsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=prog, description="Serve Backprop Ninja")
    parser.add_argument("--host", default=settings.host, help=f"bind address (default {settings.host}; env HOST)")
    parser.add_argument("--port", type=bounded_int("port", SERVE_LIMITS), default=settings.port,
                        help=f"(default {settings.port}; env PORT)")
    parser.add_argument("--workers", type=bounded_int("workers", SERVE_LIMITS), default=settings.workers,
                        help=f"worker processes (default {settings.workers}; env NINJA_WORKERS)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="event loop (default uvloop; TCP_NODELAY is set on accepted sockets with either)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    try:  # fail fast, in one line, before any worker starts (and not with a traceback per worker)
        load_dataset(settings.data_path)
    except DataError as exc:
        print(f"{prog}: error: the word list cannot be used: {exc} (set NINJA_DATA_PATH)", file=sys.stderr)
        return 2
    if (problem := _bind_error(args.host, args.port)) is not None:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        return 2
    uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers,
                http="app.server:NoDelayHttpToolsProtocol", loop=args.loop, log_level=args.log_level,
                timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
