"""The real server: uvicorn processes on free ports, talked to over HTTP."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from app.server import NoDelayHttpToolsProtocol, set_nodelay

from .support import serve


def _fingerprint_of_all_numbers(base: str, body: dict) -> tuple[str, list[str]]:  # type: ignore[type-arg]
    with httpx.Client(base_url=base, timeout=30) as c:
        doc = c.post("/api/runs", json=body).json()
        blobs = []
        for node in doc["nodes"]:
            d = c.get(f"/api/runs/{doc['run_id']}/nodes/{node['name']}", params={"figure": "false"}).json()
            blobs += [d[k]["bdata"] for k in ("value", "manual", "autograd", "diff")]
        return doc["run_id"], [str(doc["loss"]), str(doc["nodes"]), *blobs]


def test_two_server_processes_give_bit_identical_numbers() -> None:
    body = {"seed": 12345, "variant": "fused", "batch_size": 48}
    with serve() as a:
        id_a, numbers_a = _fingerprint_of_all_numbers(a, body)
    with serve("--workers", "2") as b:
        id_b, numbers_b = _fingerprint_of_all_numbers(b, body)
        # a run id minted elsewhere is answered by this process too
        with httpx.Client(base_url=b) as c:
            assert c.get(f"/api/runs/{id_a}").status_code == 200
    assert id_a == id_b
    assert numbers_a == numbers_b


def test_keep_alive_connection_serves_many_requests() -> None:
    with serve() as base, httpx.Client(base_url=base) as c:
        ids = {c.post("/api/runs", json={"seed": s}).json()["run_id"] for s in range(5)}
        assert len(ids) == 5
        assert c.get("/").status_code == 200


def test_accepted_sockets_get_tcp_nodelay() -> None:
    """uvicorn's multi-worker path leaves Nagle on (+~48 ms per keep-alive response); ours turns it off."""

    async def scenario() -> bool:
        seen: list[bool] = []

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                # what asyncio gives a socket it did not create itself: proto 0, so it skips TCP_NODELAY
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
                set_nodelay(transport)
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0)
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        return bool(seen and seen[0])

    assert asyncio.run(scenario())
    assert NoDelayHttpToolsProtocol.connection_made is not None


@pytest.mark.slow
def test_large_run_over_http() -> None:
    with serve() as base, httpx.Client(base_url=base, timeout=60) as c:
        doc = c.post("/api/runs", json={"batch_size": 4096, "n_hidden": 1024}).json()
        assert doc["counts"].get("exact", 0) + doc["counts"].get("approx", 0) == 26
        r = c.get(f"/api/runs/{doc['run_id']}/nodes/hprebn")
        assert r.status_code == 200 and len(r.content) <= 1_000_000
        assert r.json()["downsampled"] is True


def test_serve_refuses_a_port_it_cannot_use_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """--port 99999 would make uvicorn listen on 34463 while printing 99999; a taken port is one line too."""
    from app.server import main

    with pytest.raises(SystemExit) as exc:
        main(["--port", "99999"])
    assert exc.value.code == 2 and "--port: must be in 1..65535, got 99999" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
