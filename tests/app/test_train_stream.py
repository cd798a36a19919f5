"""GET /api/train/stream: event order and fields, loss falls, disconnect stops the work, 429 limit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from ninja_core.config import Config
from ninja_core.nets import get_net

from .support import cpu_seconds, serve, server_pid


def read_events(lines: Iterator[str]) -> Iterator[tuple[str, dict]]:  # type: ignore[type-arg]
    event, data = None, None
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: "):])
        elif line == "" and event is not None:
            yield event, data or {}
            event, data = None, None


def test_short_run_streams_events_in_order(client: TestClient) -> None:
    with client.stream("GET", "/api/train/stream", params={"steps": 2000, "audit_every": 500, "n_hidden": 64}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = list(read_events(r.iter_lines()))
    kinds = [k for k, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert {"progress", "audit", "stats"} <= set(kinds)
    progress = [d for k, d in events if k == "progress"]
    assert [p["step"] for p in progress] == sorted(p["step"] for p in progress)
    assert progress[-1]["step"] == 2000
    assert {"step", "loss", "lr", "steps_per_s"} <= set(progress[0])
    assert progress[-1]["loss"] < progress[0]["loss"] - 0.3  # it learns
    assert progress[-1]["lr"] == 0.01 and progress[0]["lr"] == 0.1
    audits = [d for k, d in events if k == "audit"]
    assert [a["step"] for a in audits] == [0, 500, 1000, 1500]
    assert all(max(a["max_rel_diff"].values()) <= 1e-5 for a in audits)
    stats = [d for k, d in events if k == "stats"]
    assert set(stats[0]["update_ratio"]) == {"C", "W1", "b1", "W2", "b2", "bngain", "bnbias"}
    assert 0.0 <= stats[0]["saturation"] <= 1.0
    done = events[-1][1]
    assert {"train_loss", "val_loss", "test_loss", "seconds", "samples"} <= set(done)
    assert len(done["samples"]) == 20 and done["val_loss"] < 2.8
    assert done["run_config"]["train_steps"] == 2000 and done["run_config"]["n_hidden"] == 64


def test_trained_gradient_view_opens_from_the_stream_without_training(client: TestClient) -> None:
    with client.stream("GET", "/api/train/stream", params={"steps": 300, "n_hidden": 32}) as r:
        done = next(d for k, d in read_events(r.iter_lines()) if k == "done")
    registry = client.app.state.registry  # type: ignore[attr-defined]
    trainings = registry.stats()["trainings"]
    rc = done["run_config"]
    assert (rc["train_steps"], rc["train_schedule_steps"], done["stopped"]) == (300, 0, False)
    doc = client.post("/api/runs", json=rc).json()
    assert doc["config"]["train_steps"] == 300
    assert registry.stats()["trainings"] == trainings  # served from the stream's checkpoint, not retrained
    assert len(doc["nodes"]) == 26 and doc["loss"] < 3.0
    # the stream's weights are exactly the ones the engine's own training gives for that config
    from ninja_core.train import trained_params

    cfg = Config(**{k: v for k, v in rc.items() if k != "train_schedule_steps"})
    saved = registry.store.load(registry.trained_key(cfg))
    expected = trained_params(cfg, 300)
    assert saved is not None and all(torch.equal(saved[k], expected[k]) for k in expected)


@pytest.mark.slow
def test_stop_keeps_what_was_reached_and_opens_its_gradients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NINJA_STATE_DIR", str(tmp_path))
    stream_id = "test-stop-0123456789"
    with serve() as base, httpx.Client(base_url=base, timeout=60) as c:
        params = {"steps": 200_000, "n_hidden": 32, "audit_every": 1000, "stream_id": stream_id}
        with c.stream("GET", "/api/train/stream", params=params) as r:
            events = read_events(r.iter_lines())
            start = next(events)
            assert start == ("start", start[1]) and start[1]["stream_id"] == stream_id
            for kind, data in events:
                if kind == "progress" and data["step"] >= 1000:
                    break
            stop = httpx.post(f"{base}/api/train/stop", params={"stream_id": stream_id}, timeout=30)
            assert stop.status_code == 202 and stop.json() == {"stream_id": stream_id, "stopping": True}
            rest = list(events)
        kind, done = rest[-1]
        assert kind == "done" and done["stopped"] is True
        assert 1000 <= done["steps"] < 200_000 and len(done["samples"]) == 20 and done["val_loss"] < 3.3
        rc = done["run_config"]
        assert (rc["train_steps"], rc["train_schedule_steps"]) == (done["steps"], 200_000)
        # the stream is over: stopping it again finds nothing
        assert httpx.post(f"{base}/api/train/stop", params={"stream_id": stream_id}).status_code == 404
        # the gradients of the weights reached, from the checkpoint the stream left (nothing trained)
        doc = c.post("/api/runs", json=rc)
        assert doc.status_code == 200, doc.text
        assert doc.json()["config"]["train_schedule_steps"] == 200_000
        assert f"-t{done['steps']}-of200000-" in doc.json()["run_id"]
        assert c.get("/healthz").json()["runs"]["trainings"] == 0
        assert c.get(f"/api/runs/{doc.json()['run_id']}").status_code == 200
    # and they are bit for bit the weights a retraining stopped at the same step gives
    from app.registry import RunRegistry
    from app.settings import Settings
    from app.trainer import prefix_params

    registry = RunRegistry(Settings(state_dir=tmp_path))
    cfg = Config(**{k: v for k, v in rc.items() if k != "train_schedule_steps"})
    saved = registry.store.load(registry.trained_key(cfg, 200_000))
    again = prefix_params(cfg, 200_000, registry.dataset.path)
    registry.close()
    assert saved is not None and all(torch.equal(saved[k], again[k]) for k in again)


@pytest.mark.parametrize(("params", "field"), [({"steps": 0}, "steps"), ({"steps": 300_000}, "steps"),
                                                ({"n_hidden": 0}, "n_hidden"), ({"batch_size": 1}, "batch_size"),
                                                ({"bogus": 1}, "bogus"), ({"audit_every": -1}, "audit_every")])
def test_bad_parameters_are_422(client: TestClient, params: dict, field: str) -> None:  # type: ignore[type-arg]
    r = client.get("/api/train/stream", params=params)
    assert r.status_code == 422 and r.json()["field"] == field


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_closing_the_stream_stops_the_work_and_frees_the_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NINJA_MAX_TRAIN_STREAMS", "1")  # the server process inherits it
    with serve() as base:
        pid = server_pid(base)
        with httpx.Client(base_url=base, timeout=30) as c:
            with c.stream("GET", "/api/train/stream", params={"steps": 200_000}) as r:
                # keep the iterator alive: a discarded line iterator closes the connection
                lines = r.iter_lines()
                while not next(lines).startswith("event: progress"):
                    pass
                # a second stream beyond the limit of 1 is refused with Retry-After
                busy = c.get("/api/train/stream", params={"steps": 10})
                assert busy.status_code == 429 and busy.headers["retry-after"]
                assert "training" in busy.json()["message"]
            # the client is gone: within a few seconds the server stops burning CPU
            time.sleep(1.5)
            before = cpu_seconds(pid, tree=True)
            time.sleep(2.0)
            burned = cpu_seconds(pid, tree=True) - before
            assert burned < 0.5, f"server used {burned:.2f} s of CPU in 2 s after the client left"
            # and the slot is free again
            with c.stream("GET", "/api/train/stream", params={"steps": 100, "n_hidden": 16}) as again:
                assert again.status_code == 200
                assert any(line.startswith("event: done") for line in again.iter_lines())


def test_stream_ids_name_one_running_stream(tmp_path: Path, client: TestClient) -> None:
    from app.routes.train import StreamFlags

    flags = StreamFlags(tmp_path)
    assert flags.start("stream-one") and not flags.start("stream-one")  # a second stream with a running id: no
    assert flags.request_stop("stream-one") and flags.stop_path("stream-one").exists()
    assert not flags.request_stop("stream-two")
    flags.end("stream-one")
    assert flags.start("stream-one")  # free again once it ended
    r = client.post("/api/train/stop", params={"stream_id": "nobody-runs-this"})
    assert r.status_code == 404 and "stream_id nobody-runs-this" in r.json()["message"]
    r = client.post("/api/train/stop", params={"stream_id": "a b"})
    assert r.status_code == 422 and r.json()["field"] == "stream_id" and "letters, digits" in r.json()["message"]


# ---- every network: net=wavenet and net=gpt, their sizes, their recipes ----------------------------


def stream(client: TestClient, params: dict) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    with client.stream("GET", "/api/train/stream", params=params) as r:
        assert r.status_code == 200, r.read()
        return list(read_events(r.iter_lines()))


@pytest.mark.parametrize(("net", "steps", "optimizer"), [("wavenet", 200, "sgd"), ("gpt", 100, "adamw")])
def test_each_network_streams_its_own_training(client: TestClient, net: str, steps: int, optimizer: str) -> None:
    from ninja_core.nets import get_net

    events = stream(client, {"net": net, "steps": steps, "audit_every": steps // 2})
    kinds = [k for k, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and {"progress", "audit", "stats"} <= set(kinds)
    start = events[0][1]
    spec = get_net(net)
    params = list(spec.tape(Config(net=net)).params)
    # the network's own recipe and sizes (not the MLP's), and the parameters the charts draw
    assert start["config"]["net"] == net and start["config"]["optimizer"] == optimizer
    assert start["config"]["lr"] == spec.recipe.lr and start["params"] == params
    assert start["tanh"] == list(spec.tanh_nodes(Config(net=net)))
    progress = [d for k, d in events if k == "progress"]
    assert progress[-1]["step"] == steps and progress[-1]["loss"] < progress[0]["loss"]  # it learns
    audits = [d for k, d in events if k == "audit"]
    assert [a["step"] for a in audits] == [0, steps // 2]
    for a in audits:  # the hand-written gradients of every parameter agree with autograd's to float32 rounding
        assert set(a["max_rel_diff"]) == set(params) and max(a["max_rel_diff"].values()) <= 1e-5
    stats = [d for k, d in events if k == "stats"]
    assert set(stats[0]["update_ratio"]) == set(params)
    done = events[-1][1]
    assert len(done["samples"]) == 20 and done["steps"] == steps and not done["stopped"]
    assert 1.5 < done["val_loss"] < 3.4
    rc = done["run_config"]
    assert rc["net"] == net and rc["train_steps"] == steps and rc["train_schedule_steps"] == 0
    assert {s.name for s in spec.sizes} <= set(rc)


@pytest.mark.parametrize("net", ["wavenet", "gpt"])
def test_each_network_opens_its_trained_gradients_from_the_stream(client: TestClient, net: str) -> None:
    from ninja_core.train import trained_params

    done = stream(client, {"net": net, "steps": 60})[-1][1]
    registry = client.app.state.registry  # type: ignore[attr-defined]
    trainings = registry.stats()["trainings"]
    rc = done["run_config"]
    doc = client.post("/api/runs", json=rc)
    assert doc.status_code == 200, doc.text
    assert doc.json()["config"]["net"] == net and doc.json()["config"]["train_steps"] == 60
    assert registry.stats()["trainings"] == trainings  # from the stream's checkpoint, not trained again
    cfg = Config(**{k: v for k, v in rc.items() if k != "train_schedule_steps"})
    saved = registry.store.load(registry.trained_key(cfg))
    expected = trained_params(cfg, 60)  # the engine's own training of that config: the same weights, bit for bit
    assert saved is not None and set(saved) == set(expected) and all(torch.equal(saved[k], expected[k]) for k in expected)


def test_sizes_the_query_leaves_out_are_the_networks_training_defaults(client: TestClient) -> None:
    start = stream(client, {"net": "gpt", "steps": 1, "n_layer": 1})[0][1]["config"]
    recipe = dict(get_net("gpt").recipe.sizes)  # the GPT trains with a longer context than its check's 8
    assert recipe["block_size"] == 16
    assert (start["n_layer"], start["n_embd"], start["n_head"], start["block_size"]) == (1, 32, 4, recipe["block_size"])
    assert "n_hidden" not in start  # the GPT has none
    start = stream(client, {"steps": 1})[0][1]["config"]
    assert start["net"] == "mlp" and start["n_hidden"] == 200  # the MLP trains with the lecture's 200, not the check's 64


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"net": "wavenet", "n_embd": 100}, "n_embd", ["1..64", "wavenet"]),  # within the widest range, over wavenet's
    ({"net": "wavenet", "n_embd": 500}, "n_embd", ["1..64"]),  # beyond every network's: still wavenet's range
    ({"net": "wavenet", "block_size": 4}, "block_size", ["8", "wavenet", "architecture"]),
    ({"net": "wavenet", "n_head": 2}, "n_head", ["wavenet has no n_head", "n_hidden"]),
    ({"net": "gpt", "n_embd": 30}, "n_head", ["not divisible", "n_head"]),
    ({"net": "gpt", "n_layer": 7}, "n_layer", ["1..6"]),
    ({"net": "gpt", "n_hidden": 64}, "n_hidden", ["gpt has no n_hidden"]),
    ({"net": "resnet"}, "net", ["mlp, wavenet, gpt"]),
])
def test_a_bad_size_of_the_asked_network_is_422_naming_its_rule(client: TestClient, params: dict, field: str,  # type: ignore[type-arg]
                                                                 words: list[str]) -> None:
    r = client.get("/api/train/stream", params=params)
    assert r.status_code == 422 and r.json()["field"] == field
    for word in words:
        assert word in r.json()["message"], r.json()["message"]


def test_the_422_speaks_german_when_asked(client: TestClient) -> None:
    r = client.get("/api/train/stream", params={"net": "wavenet", "n_embd": 100, "lang": "de"})
    assert r.status_code == 422 and r.json()["message"] == "n_embd: muss für wavenet in 1..64 liegen, nicht 100"
    r = client.get("/api/train/stream", params={"net": "gpt", "n_embd": 30, "lang": "de"})
    assert r.status_code == 422 and "nicht durch n_head 4 teilbar" in r.json()["message"]


def test_nets_lists_each_networks_training_defaults(client: TestClient) -> None:
    nets = {n["name"]: n for n in client.get("/api/nets").json()}
    assert nets["mlp"]["train"]["sizes"]["n_hidden"] == 200 and nets["mlp"]["train"]["steps"] == 20_000
    assert nets["wavenet"]["train"]["lr_decay_at"] == 0.75 and nets["wavenet"]["train"]["sizes"]["block_size"] == 8
    gpt = nets["gpt"]["train"]
    assert gpt["optimizer"] == "adamw" and gpt["weight_decay"] > 0 and "n_hidden" not in gpt["sizes"]
    assert gpt["steps"] <= gpt["recipe_steps"]
