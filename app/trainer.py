"""Trainings in their own processes: the training stream's run (events read back through a pipe) and
the training a trained run needs (its weights written to the checkpoint store).

Why a process and not a thread: a training step is ~40 tiny torch calls, so the training loop holds
the GIL most of the time; on a thread it starved its worker's event loop (measured under load: p50
107 ms for every other request that worker served). In a process it competes only for a core, at a
lower priority (nice) than the requests of the learners clicking through the page, and stopping it
is immediate and certain (terminate), whatever it is doing.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import torch

from ninja_core.config import SIZE_FIELDS, Config
from ninja_core.data import Dataset
from ninja_core.train import TrainConfig

_CONTEXT_LOCK = threading.Lock()
_context: Any = None
STOP_POLL_STEPS = 64  # a graceful stop is seen within ~64 steps (~15 ms); a stat() per step would cost ~1 %


def _mp_context() -> Any:
    """forkserver with torch and the training code preloaded: a new run starts in tens of
    milliseconds instead of the ~1.5 s a fresh interpreter needs to import torch."""
    global _context
    with _CONTEXT_LOCK:
        if _context is None:
            _context = mp.get_context("forkserver")
            _context.set_forkserver_preload(["torch", "ninja_core.train", "app.trainer", "app.train_preload"])
        return _context


def warm_up() -> None:
    """Start the forkserver now (it imports torch and loads the word list, ~1-3 s), so that the
    first training of this process does not wait for it. Safe to call more than once."""
    from multiprocessing import forkserver

    _mp_context()
    forkserver.ensure_running()


def train_config_for(cfg: Config, steps: int) -> TrainConfig:
    """The training behind a run config's trained weights, as `ninja_core.train.trained_params`
    does it: the config's network, seed and sizes, the network's recipe scaled to `steps` (the MLP:
    SGD, lr 0.1 then 0.01 from half-way; the GPT: AdamW); the stream trains with the same, plus events."""
    sizes = {name: getattr(cfg, name) for name in SIZE_FIELDS}  # 0 for a size the network does not have
    return TrainConfig(net=cfg.net, seed=cfg.seed, steps=steps, **sizes)


def prefix_params(cfg: Config, schedule: int, data_path: str | Path | Dataset) -> dict[str, torch.Tensor]:
    """The weights after cfg.train_steps steps of a training scheduled for `schedule` steps (a
    stopped training): the same run as the stream's, stopped at the same step, so bit-identical."""
    from ninja_core.train import DoneEvent, iter_training

    quiet = replace(train_config_for(cfg, schedule), audit_every=0, stats_every=0, progress_every=0, n_samples=0)
    asked = 0

    def should_stop() -> bool:  # asked once before every SGD step: stop after train_steps of them
        nonlocal asked
        asked += 1
        return asked > cfg.train_steps

    for event in iter_training(quiet, data_path, should_stop):
        if isinstance(event, DoneEvent):
            return dict(event.model.params)
    raise RuntimeError("training ended without a done event")


def _exit_when_parent_goes(control: Connection) -> None:
    """Thread: the parent holds the other end of `control`; EOF means the worker that owns this job
    (and its budget slot) is gone, so the job must go too."""
    with contextlib.suppress(Exception):
        control.recv()
    os._exit(3)


def _checkpoint_child(job: dict[str, Any], control: Connection) -> None:
    """The child: train the weights of a run config and save them to the checkpoint store."""
    threading.Thread(target=_exit_when_parent_goes, args=(control,), daemon=True).start()
    with contextlib.suppress(OSError):
        os.nice(job["nice"])
    from ninja_core.checkpoints import CheckpointStore
    from ninja_core.train import trained_params

    from .train_preload import dataset_for

    torch.set_num_threads(1)
    cfg = Config.from_dict(job["config"])
    data = dataset_for(job["data_path"])
    schedule = job["schedule"]  # a stopped training's schedule, else 0: the engine's own recipe
    params = prefix_params(cfg, schedule, data) if schedule else trained_params(cfg, cfg.train_steps, data)
    CheckpointStore(job["root"], job["max_bytes"]).save(job["key"], params, job["meta"])


class CheckpointTraining:
    """One training for the checkpoint store in a child process. `wait()` blocks until it ends and
    says whether it saved; the child exits by itself if this process dies."""

    def __init__(self, cfg: Config, schedule: int, key: str, root: Path, max_bytes: int, data_path: str | Path,
                 nice: int, meta: dict[str, Any]) -> None:
        ctx = _mp_context()
        child_end, self._control = ctx.Pipe(duplex=False)
        job = {"config": cfg.to_dict(), "schedule": schedule, "key": key, "root": str(root), "max_bytes": max_bytes,
               "data_path": str(data_path), "nice": nice, "meta": meta}
        self._process = ctx.Process(target=_checkpoint_child, args=(job, child_end), daemon=True,
                                    name="ninja-checkpoint")
        self._process.start()
        child_end.close()

    def wait(self) -> bool:
        self._process.join()
        ok = self._process.exitcode == 0
        self._control.close()
        self._process.close()
        return ok

    def stop(self) -> None:
        with contextlib.suppress(ValueError, OSError):  # already closed
            if self._process.is_alive():
                self._process.terminate()


def _run(cfg: dict[str, Any], data_path: str, conn: Connection, stop_path: str | None, nice: int) -> None:
    """The stream's child: train and send each event as a dict; the done event also sends the
    weights. A file at `stop_path` asks for a graceful stop: finish the step, evaluate, send done."""
    from ninja_core.train import DoneEvent, TrainConfig, iter_training

    from .train_preload import dataset_for

    with contextlib.suppress(OSError):
        os.nice(nice)
    asked = 0

    def should_stop() -> bool:
        nonlocal asked
        asked += 1
        return stop_path is not None and asked % STOP_POLL_STEPS == 0 and os.path.exists(stop_path)

    try:
        for event in iter_training(TrainConfig.from_dict(cfg), dataset_for(data_path), should_stop):
            payload = event.to_dict()
            if isinstance(event, DoneEvent) and event.model is not None:
                # as bytes: a pickled tensor would travel as shared memory owned by this process, which is
                # about to exit before the parent has read it
                buffer = io.BytesIO()
                torch.save({k: v.detach().clone() for k, v in event.model.params.items()}, buffer)
                payload["_params"] = buffer.getvalue()
            conn.send(payload)
    except Exception as exc:  # the parent logs it; the listener gets a plain message
        with contextlib.suppress(Exception):
            conn.send({"kind": "_failed", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        conn.close()


class TrainingProcess:
    """One streamed training run: start it, read its events (blocking), stop it."""

    def __init__(self, cfg: TrainConfig, data_path: str | Path, stop_path: Path | None = None, nice: int = 0) -> None:
        ctx = _mp_context()
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._reader, writer = ctx.Pipe(duplex=False)
        config = {k: v for k, v in cfg.to_dict().items() if k != "data"}
        self._process = ctx.Process(target=_run, args=(config, str(data_path), writer,
                                                       str(stop_path) if stop_path else None, nice),
                                    daemon=True, name="ninja-training")
        self._process.start()
        writer.close()  # the child holds the only writing end: EOF when it exits

    def events(self, on_event: Callable[[dict[str, Any]], object]) -> None:
        """Deliver every event until the run ends (or is stopped)."""
        try:
            while True:
                event = self._reader.recv()
                if isinstance(event.get("_params"), bytes):
                    event["_params"] = torch.load(io.BytesIO(event["_params"]), weights_only=True)
                on_event(event)
        except (EOFError, OSError):
            pass

    def stop(self) -> None:
        """Terminate the run (if it still runs) and release its resources; safe to call twice, from
        two threads (the stream's end and the reader's end both call it)."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            if self._process.is_alive():
                self._process.terminate()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
            self._process.close()  # its pipes and sentinel now, not whenever the garbage collector runs
            self._reader.close()
