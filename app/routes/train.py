"""Training in the browser: one Server-Sent-Events stream per training run.

The request *is* the job: the training runs in a thread of this process while the client listens,
and stops when the client goes away (no orphaned work, nothing to clean up, any worker can take it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ninja_core.config import LIMITS
from ninja_core.train import DoneEvent, TrainConfig, iter_training, remember_trained_params

from ..deps import RegistryDep, SettingsDep
from ..errors import error_response, register_fields
from ..schemas import ErrorBody

router = APIRouter(prefix="/api/train", tags=["train"])

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
_END = object()


def _bounded(name: str, default: int, description: str) -> Any:
    lo, hi = LIMITS[name]
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
    cfg = train_config(query)
    slots: TrainSlots = request.app.state.train_slots
    if not slots.acquire():
        return error_response(429, "busy", f"{slots.limit} training runs are already streaming from this server "
                                           "process; try again when one has finished", headers={"Retry-After": "10"})
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()
    dataset = registry.dataset

    def work() -> None:
        try:
            stream = iter_training(cfg, dataset, should_stop=stop.is_set)
            for event in stream:
                if stop.is_set():
                    stream.close()  # the listener is gone: skip the final evaluation too
                    break
                loop.call_soon_threadsafe(events.put_nowait, event)
        except Exception as exc:  # reported to the listener; the server keeps serving
            loop.call_soon_threadsafe(events.put_nowait, exc)
        finally:
            slots.release()
            loop.call_soon_threadsafe(events.put_nowait, _END)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield sse("start", {"config": {k: v for k, v in cfg.to_dict().items() if k != "data"}})
            while True:
                try:
                    item = await asyncio.wait_for(events.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if item is _END:
                    break
                if isinstance(item, Exception):
                    yield sse("error", {"message": "training failed on the server; it has been logged"})
                    break
                if isinstance(item, DoneEvent):
                    payload = item.to_dict()
                    if not item.stopped and item.model is not None:
                        remember_trained_params(cfg, dataset, item.model.params)
                        payload["run_config"] = {"seed": cfg.seed, "batch_size": cfg.batch_size, "n_embd": cfg.n_embd,
                                                 "n_hidden": cfg.n_hidden, "block_size": cfg.block_size,
                                                 "train_steps": cfg.steps}
                    yield sse("done", payload)
                else:
                    yield sse(item.kind, item.to_dict())
        finally:
            stop.set()  # on normal end, on error, and when the client disconnects (cancellation)

    threading.Thread(target=work, name="train-stream", daemon=True).start()
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
