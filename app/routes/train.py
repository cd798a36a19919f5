"""Training in the browser: one Server-Sent-Events stream per training run.

The request *is* the job: the training runs in a child process (app/trainer.py) while the client
listens, and is terminated when the client goes away (no orphaned work, any worker can take it).
Stopping on purpose is different: `POST /api/train/stop?stream_id=…` asks the run to finish its
step, evaluate and send `done` with what it reached (losses, samples, and a run config that opens
the gradients of those weights). Its weights go to the checkpoint store, finished or stopped, so the
gradient view of the trained network never trains again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ninja_core.config import LIMITS, SIZE_FIELDS, Config
from ninja_core.i18n import german, tr
from ninja_core.nets import NETS, ConfigError, get_net
from ninja_core.train import TrainConfig

from ..budget import Budget
from ..deps import ClientDep, RegistryDep, SettingsDep
from ..errors import NotFound, error_response, register_fields
from ..registry import CHECK_ONLY, RunRegistry
from ..schemas import ErrorBody
from ..schemas import _size as size_field
from ..serialise import ORJSON
from ..trainer import TrainingProcess

router = APIRouter(prefix="/api/train", tags=["train"])
log = logging.getLogger("app")

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
STREAM_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
_END = object()


def default_steps(net: str) -> int:
    """The stream's length when the client names none: the network's recipe, at most 20 000 steps
    (the MLP's and the WaveNet's tenth of the lecture's 200 000, ~5-15 s here; the GPT's whole
    recipe of 5 000 AdamW steps, ~11 s)."""
    return min(get_net(net).recipe.steps, 20_000)


class TrainQuery(BaseModel):
    """Query of GET /api/train/stream: the network (its sizes and training recipe are its own unless
    changed) and the length of the run."""

    model_config = ConfigDict(extra="forbid")

    net: Literal[tuple(NETS)] = Field("mlp", description="the network: " + ", ".join(  # type: ignore[valid-type]
        f"{name} ({net.title})" for name, net in NETS.items()))
    steps: Annotated[int | None, Field(ge=1, le=200_000, description=(
        "optimizer steps (1..200000; default: the network's recipe, at most 20000); the recipe's learning-rate "
        "schedule is scaled to them"))] = None
    batch_size: Annotated[int | None, size_field("batch_size", "minibatch size")] = None
    n_embd: Annotated[int | None, size_field("n_embd", "embedding dimensions")] = None
    n_hidden: Annotated[int | None, size_field("n_hidden", "hidden units")] = None
    block_size: Annotated[int | None, size_field("block_size", "context length")] = None
    n_head: Annotated[int | None, size_field("n_head", "attention heads")] = None
    n_layer: Annotated[int | None, size_field("n_layer", "transformer blocks")] = None
    seed: int = Field(2147483647, ge=LIMITS["seed"][0], le=LIMITS["seed"][1], description=(
        f"seed of the generator for parameters and minibatches ({LIMITS['seed'][0]}..{LIMITS['seed'][1]})"))
    audit_every: int = Field(0, ge=0, le=200_000, description="every K steps, compare with autograd (0 = off)")
    stream_id: str | None = Field(None, pattern=STREAM_ID_PATTERN, description=(
        "a name for this stream (8-64 letters, digits, - or _), chosen by the client so that POST /api/train/stop "
        "can name it and a proxy can route both to the same server; default: the server picks one (start event)"))
    lang: Literal["en", "de"] = Field("en", description="language of the error messages")


register_fields(r"^/api/train", tuple(TrainQuery.model_fields), {"steps": (1, 200_000), "audit_every": (0, 200_000)})
register_fields(r"^/api/train/stop", ("stream_id",), {})  # registered last: looked up first

german({
    "a training with stream_id {id} is already running; choose another stream_id":
        "ein Training mit stream_id {id} läuft schon; wähle eine andere stream_id",
    "no training with stream_id {id} is running on this server": "auf diesem Server läuft kein Training mit stream_id {id}",
    "this server trains at most {n} steps per stream, got {got}": "dieser Server trainiert höchstens {n} Schritte pro "
                                                                 "Stream, angefragt waren {got}",
})


class StreamFlags:
    """Which streams run and which were asked to stop: files in a directory that every worker process
    sees, so a stop request reaches the training whichever worker answers it. (Across replicas, the
    proxy routes both requests of a stream by its stream_id: deploy/nginx.conf.)"""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - 86_400  # flags a crashed process left behind
        for f in directory.iterdir():
            with contextlib.suppress(OSError):
                if f.stat().st_mtime < cutoff:
                    f.unlink()

    def _live(self, stream_id: str) -> Path:
        return self.directory / f"{stream_id}.live"

    def stop_path(self, stream_id: str) -> Path:
        return self.directory / f"{stream_id}.stop"

    def start(self, stream_id: str) -> bool:
        """Register a running stream; False when one with this id runs already."""
        self.stop_path(stream_id).unlink(missing_ok=True)
        try:
            os.close(os.open(self._live(stream_id), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            return False
        return True

    def request_stop(self, stream_id: str) -> bool:
        if not self._live(stream_id).exists():
            return False
        self.stop_path(stream_id).touch()
        return True

    def end(self, stream_id: str) -> None:
        self._live(stream_id).unlink(missing_ok=True)
        self.stop_path(stream_id).unlink(missing_ok=True)


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def train_config(q: TrainQuery, steps: int) -> TrainConfig:
    """The training of the query: its network with the sizes asked (the rest its recipe's), the recipe
    scaled to `steps`, plus the stream's events. Raises ConfigError naming the network's rule and range."""
    # ~500 progress events whatever the length (the page redraws at most a few times a second),
    # ~100 points of update ratios and saturation
    progress_every = max(1, min(50, steps // 10), steps // 500)
    stats_every = max(progress_every, steps // 100)
    sizes = {name: value for name in SIZE_FIELDS if (value := getattr(q, name)) is not None}
    return TrainConfig(net=q.net, seed=q.seed, steps=steps, audit_every=q.audit_every, stats_every=stats_every,
                       progress_every=progress_every, **sizes)


def run_config_of(cfg: TrainConfig) -> Config:
    """The run config whose trained weights this stream computes (train_steps = the steps asked)."""
    return cfg.model_config().replace(train_steps=cfg.steps)


def keep_weights(registry: RunRegistry, run_cfg: Config, steps_done: int, params: dict[str, Any]) -> dict[str, Any]:
    """Save the weights a stream reached to the checkpoint store; returns the run config (the API's
    run request) that opens their gradients: a stopped run names its schedule's length too."""
    reached = run_cfg.replace(train_steps=steps_done)
    schedule = run_cfg.train_steps if steps_done < run_cfg.train_steps else 0
    if steps_done > 0:
        key = registry.trained_key(reached, schedule)
        try:
            registry.store.save(key, params, {"config": reached.to_dict(), "train_schedule_steps": schedule,
                                              "data": registry.fingerprint, "source": "stream"})
        except OSError as exc:  # a full or read-only volume: the gradient view will train again, that is all
            log.warning("cannot save the stream's weights to the checkpoint store: %s", exc)
    fields = {k: v for k, v in reached.to_dict().items() if k not in CHECK_ONLY}
    return {**fields, "train_schedule_steps": schedule}


@router.get("/stream", summary="Train with the manual backward pass; events stream as they happen",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description":
                             "events: start {stream_id, config, params, tanh}, progress {step, loss, lr, steps_per_s}, "
                             "audit {step, max_rel_diff}, stats {step, update_ratio, saturation}, done {train_loss, "
                             "val_loss, test_loss, seconds, steps, stopped, samples, run_config}, error {message}"},
                       409: {"model": ErrorBody, "description": "a stream with this stream_id is running"},
                       422: {"model": ErrorBody},
                       429: {"model": ErrorBody, "description": "the server's training streams, or this client's "
                                                                "share, are all in use; or too many requests "
                                                                "(see Retry-After)"}})
async def train_stream(request: Request, query: Annotated[TrainQuery, Query()], registry: RegistryDep,
                       settings: SettingsDep, client: ClientDep) -> Any:
    request.state.lang = query.lang
    steps = query.steps
    if steps is None:  # the network's default, within what this server allows
        steps = min(default_steps(query.net), settings.max_train_stream_steps)
    if steps > settings.max_train_stream_steps:
        raise ConfigError("steps", tr("this server trains at most {n} steps per stream, got {got}",
                                      n=settings.max_train_stream_steps, got=steps))
    cfg = train_config(query, steps)
    run_cfg = run_config_of(cfg)
    net = get_net(cfg.net)
    params = list(net.tape(run_cfg).params)  # what the audit and the update ratios name, in draw order
    tanh = list(net.tanh_nodes(run_cfg))  # what the saturation is measured on (none: no chart of it)
    stream_id = query.stream_id or secrets.token_urlsafe(12)
    flags: StreamFlags = request.app.state.stream_flags
    if not flags.start(stream_id):
        return error_response(409, "conflict", tr("a training with stream_id {id} is already running; choose another "
                                                  "stream_id", id=stream_id), field="stream_id")
    budget: Budget = request.app.state.budget
    try:
        ticket = budget.admit(client, "stream", seconds=steps / registry.speed(net.name), retry_after=10)
    except BaseException:
        flags.end(stream_id)
        raise
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Any] = asyncio.Queue()
    holder: list[TrainingProcess] = []
    leaving = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event.get("kind") == "done":  # keep the weights before anyone can ask for their gradients
            params = event.pop("_params", None)
            if params is not None:
                event["run_config"] = keep_weights(registry, run_cfg, int(event["steps"]), params)
        loop.call_soon_threadsafe(events.put_nowait, event)

    def read() -> None:
        """Thread: start the training process (off the event loop: the first start of a process's
        forkserver takes seconds), hand its events to the loop, free the slots when it ends."""
        try:
            if leaving.is_set():
                return
            run = TrainingProcess(cfg, registry.dataset.path, stop_path=flags.stop_path(stream_id),
                                  nice=settings.heavy_nice)
            holder.append(run)
            if leaving.is_set():  # the client left while the process started
                return
            run.events(on_event)
        except Exception as exc:
            loop.call_soon_threadsafe(events.put_nowait, {"kind": "_failed", "error": f"{type(exc).__name__}: {exc}"})
        finally:
            for run in holder:
                run.stop()
            ticket.release()
            flags.end(stream_id)
            loop.call_soon_threadsafe(events.put_nowait, _END)

    def stop_run() -> None:
        leaving.set()
        for run in holder:
            run.stop()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield sse("start", {"stream_id": stream_id, "config": {k: v for k, v in cfg.to_dict().items() if k != "data"},
                                "params": params, "tanh": tanh})
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if event is _END:
                    break
                kind = event["kind"]
                if kind == "_failed":
                    log.error("training stream failed: %s", event["error"])
                    yield sse("error", {"message": "training failed on the server; it has been logged"})
                    break
                yield sse(kind, event)
        finally:
            # On normal end, on error, and when the client disconnects. No await here: a cancelled
            # generator (client gone) would be cancelled again at the next await, before stopping.
            threading.Thread(target=stop_run, name="train-stop", daemon=True).start()

    threading.Thread(target=read, name="train-stream", daemon=True).start()
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class StopAnswer(BaseModel):
    stream_id: str
    stopping: bool = Field(description="true: the run finishes its step, evaluates and sends done (stopped: true)")


@router.post("/stop", response_model=StopAnswer, status_code=202,
             summary="Stop a training stream gracefully: it sends done with the losses and samples it reached",
             responses={404: {"model": ErrorBody, "description": "no stream with this id runs on this server"},
                        422: {"model": ErrorBody}})
async def stop_stream(request: Request, stream_id: Annotated[str, Query(pattern=STREAM_ID_PATTERN, description=(
        "the stream's id: the one the client chose, or the start event's"))]) -> ORJSON:
    flags: StreamFlags = request.app.state.stream_flags
    if not flags.request_stop(stream_id):
        raise NotFound(tr("no training with stream_id {id} is running on this server", id=stream_id))
    return ORJSON({"stream_id": stream_id, "stopping": True}, status_code=202)
