"""Training in the browser: one Server-Sent-Events stream per training run.

The request *is* the job: the training runs in a child process (app/trainer.py) while the client
listens, and is terminated when the client goes away (no orphaned work, any worker can take it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ninja_core.config import LIMITS
from ninja_core.nets import ConfigError, get_net
from ninja_core.train import TrainConfig, remember_trained_params

from ..deps import RegistryDep, SettingsDep
from ..errors import error_response, register_fields
from ..schemas import ErrorBody
from ..trainer import TrainingProcess

router = APIRouter(prefix="/api/train", tags=["train"])
log = logging.getLogger("app")

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
_END = object()


def _bounded(name: str, default: int, description: str) -> Any:
    size = get_net("mlp").size(name)  # the training stream trains the MLP (for now)
    lo, hi = (size.lo, size.hi) if size is not None else LIMITS[name]
    return Field(default, ge=lo, le=hi, description=f"{description} ({lo}..{hi})")


class TrainQuery(BaseModel):
    """Query of GET /api/train/stream; the network and schedule are the lecture's unless changed."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(20_000, ge=1, le=200_000, description="SGD steps (1..200000); lr 0.1, then 0.01 from half-way")
    n_hidden: int = _bounded("n_hidden", 200, "hidden units")
    batch_size: int = _bounded("batch_size", 32, "minibatch size")
    n_embd: int = _bounded("n_embd", 10, "embedding dimensions")
    block_size: int = _bounded("block_size", 3, "context length")
    seed: int = _bounded("seed", 2147483647, "seed of the generator for parameters and minibatches")
    audit_every: int = Field(0, ge=0, le=200_000, description="every K steps, compare with autograd (0 = off)")


register_fields("/api/train", tuple(TrainQuery.model_fields), {"steps": (1, 200_000), "audit_every": (0, 200_000)})


class TrainSlots:
    """At most `limit` concurrent training streams in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self.active >= self.limit:
                return False
            self.active += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.active -= 1


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def train_config(q: TrainQuery) -> TrainConfig:
    # ~500 progress events whatever the length (the page redraws at most a few times a second),
    # ~100 points of update ratios and saturation
    progress_every = max(50, q.steps // 500)
    stats_every = max(progress_every, q.steps // 100)
    return TrainConfig(seed=q.seed, n_embd=q.n_embd, n_hidden=q.n_hidden, block_size=q.block_size,
                       batch_size=q.batch_size, steps=q.steps, audit_every=q.audit_every,
                       stats_every=stats_every, progress_every=progress_every)


@router.get("/stream", summary="Train with the manual backward pass; events stream as they happen",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description":
                             "events: start, progress {step, loss, lr, steps_per_s}, audit {step, max_rel_diff}, "
                             "stats {step, update_ratio, saturation}, done {train_loss, val_loss, test_loss, "
                             "seconds, samples, run_config}, error {message}"},
                       422: {"model": ErrorBody}, 429: {"model": ErrorBody}})
async def train_stream(request: Request, query: Annotated[TrainQuery, Query()], registry: RegistryDep,
                       settings: SettingsDep) -> Any:
    if "steps" not in query.model_fields_set:  # the default, within what this server allows
        query = query.model_copy(update={"steps": min(query.steps, settings.max_train_stream_steps)})
    if query.steps > settings.max_train_stream_steps:
        raise ConfigError("steps", f"this server trains at most {settings.max_train_stream_steps} steps per stream, "
                                   f"got {query.steps}")
    cfg = train_config(query)
    slots: TrainSlots = request.app.state.train_slots
    if not slots.acquire():
        return error_response(429, "busy", f"{slots.limit} training runs are already streaming from this server "
                                           "process; try again when one has finished", headers={"Retry-After": "10"})
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Any] = asyncio.Queue()
    dataset = registry.dataset
    try:
        run = TrainingProcess(cfg, dataset.path)
    except Exception:
        slots.release()
        raise

    def read() -> None:
        """Thread: hand the child's events to the event loop; free the slot when it ends."""
        try:
            run.events(lambda event: loop.call_soon_threadsafe(events.put_nowait, event))
        finally:
            run.stop()
            slots.release()
            loop.call_soon_threadsafe(events.put_nowait, _END)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield sse("start", {"config": {k: v for k, v in cfg.to_dict().items() if k != "data"}})
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
                if kind == "done":
                    params = event.pop("_params", None)
                    if params is not None:
                        remember_trained_params(cfg, dataset, params)
                        event["run_config"] = {"seed": cfg.seed, "batch_size": cfg.batch_size, "n_embd": cfg.n_embd,
                                               "n_hidden": cfg.n_hidden, "block_size": cfg.block_size,
                                               "train_steps": cfg.steps}
                yield sse(kind, event)
        finally:
            # On normal end, on error, and when the client disconnects. No await here: a cancelled
            # generator (client gone) would be cancelled again at the next await, before stopping.
            threading.Thread(target=run.stop, name="train-stop", daemon=True).start()

    threading.Thread(target=read, name="train-stream", daemon=True).start()
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
