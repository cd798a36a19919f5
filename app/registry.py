"""Runs by id: the id *is* the config (plus a fingerprint of the data), so any process can rebuild a
run it has never seen. Recent runs live in a bounded LRU per process; trained weights live in the
checkpoint store that every process (and replica) sharing its directory reads, so a network is
trained once per config for the whole deployment. Heavy work runs within the server's budget
(app/budget.py): a training in a child process, a large run on a small thread pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ninja_core.checkpoints import CheckpointStore, checkpoint_key
from ninja_core.config import Config, ConfigError
from ninja_core.data import load_dataset
from ninja_core.i18n import german, tr
from ninja_core.nets import NETS, get_net
from ninja_core.run import Run, check

from .budget import Budget, Busy, RateLimited, Ticket
from .settings import Settings, state_dir
from .trainer import CheckpointTraining

__all__ = ["Busy", "RateLimited", "RunNotFound", "RunRegistry", "Timeout", "TrainingFailed", "config_from_run_id",
           "data_fingerprint", "parse_run_id", "run_id_for"]

log = logging.getLogger("app")
_DTYPE_CODE = {"float32": "f32", "float64": "f64"}
_DTYPE_NAME = {v: k for k, v in _DTYPE_CODE.items()}
_TOKEN = re.compile(r"(?P<code>[a-z]+)(?P<value>0|[1-9]\d{0,18})")  # no leading zeros: one run, one id
_DATA = re.compile(r"d[0-9a-f]{8}")
SCHEDULE_CODE = "of"  # -t5000-of200000-: 5 000 steps of a training scheduled for 200 000 (stopped early)
# The fields of a config that change how a run is checked, not which weights training produces.
CHECK_ONLY = ("dtype", "variant", "device")


class RunNotFound(LookupError):
    """The run id is malformed, out of range, or was made with other data."""


class TrainingFailed(RuntimeError):
    """The training behind a trained run failed (its process died, or the checkpoint could not be written)."""


class Timeout(RuntimeError):
    """The run is still being computed after the server's request timeout; ask again after `retry_after` s."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


german({
    "the network is being trained ({steps} steps); this takes about {s} s more. Ask again then: the weights are "
    "kept, so it is trained only once": "das Netz wird trainiert ({steps} Schritte); das dauert noch etwa {s} s. "
                                        "Frag dann wieder: die Gewichte bleiben gespeichert, es wird nur einmal trainiert",
    "the run took longer than {t} s; it goes on in the background, so asking again later may find it ready":
        "der Lauf dauerte länger als {t} s; er läuft im Hintergrund weiter, eine spätere Anfrage findet ihn "
        "vielleicht fertig",
    "training the network failed on the server; it has been logged":
        "das Training des Netzes ist auf dem Server fehlgeschlagen; es wurde protokolliert",
    "malformed run id {id}; run ids look like {example}":
        "fehlerhafte Lauf-ID {id}; Lauf-IDs sehen so aus: {example}",
    "run {id} was made with other data ({theirs}); this server's data is {ours}":
        "der Lauf {id} wurde mit anderen Daten erstellt ({theirs}); die Daten dieses Servers sind {ours}",
    "run id {id} is out of range: {problem}": "die Lauf-ID {id} liegt außerhalb des Bereichs: {problem}",
    "run id {id} is not in canonical form; this run's id is {canonical}":
        "die Lauf-ID {id} ist nicht in kanonischer Form; die ID dieses Laufs ist {canonical}",
})


def data_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def canonical_schedule(cfg: Config, schedule: int) -> int:
    """0 when the training ran its whole schedule (the usual case: a schedule no longer than the steps
    trained) or did not run, else the schedule's length (a training stopped early)."""
    return 0 if cfg.train_steps == 0 or schedule <= cfg.train_steps else schedule


def run_id_for(cfg: Config, fingerprint: str, schedule: int = 0) -> str:
    """r2-<net>-<dtype>-<variant>-s<seed>-t<train_steps>[-of<schedule>]-<the network's sizes by code>-d<data>:
    the whole config, so any server process can rebuild the run from its id."""
    net = get_net(cfg.net)
    sizes = "-".join(f"{s.code}{getattr(cfg, s.name)}" for s in net.sizes)
    schedule = canonical_schedule(cfg, schedule)
    of = f"-{SCHEDULE_CODE}{schedule}" if schedule else ""
    return (f"r2-{cfg.net}-{_DTYPE_CODE[cfg.dtype]}-{cfg.variant}-s{cfg.seed}-t{cfg.train_steps}{of}-{sizes}"
            f"-d{fingerprint}")


def config_from_run_id(run_id: str, fingerprint: str) -> Config:
    """The config a run id encodes. Raises RunNotFound for a malformed, non-canonical or foreign id."""
    return parse_run_id(run_id, fingerprint)[0]


def parse_run_id(run_id: str, fingerprint: str) -> tuple[Config, int]:
    """(config, training schedule: 0 unless a stopped training) of a run id. Raises RunNotFound for a
    malformed, non-canonical or foreign id."""
    example = run_id_for(Config(), fingerprint)
    parts = run_id.split("-")
    if len(parts) < 7 or parts[0] != "r2" or parts[1] not in NETS or parts[2] not in _DTYPE_NAME \
            or parts[3] not in ("chain", "fused") or not _DATA.fullmatch(parts[-1]):
        raise RunNotFound(tr("malformed run id {id}; run ids look like {example}", id=repr(run_id[:80]),
                             example=repr(example)))
    net = get_net(parts[1])
    codes = {"s": "seed", "t": "train_steps", SCHEDULE_CODE: "train_schedule_steps", **{s.code: s.name for s in net.sizes}}
    fields: dict[str, int] = {}
    for token in parts[4:-1]:
        match = _TOKEN.fullmatch(token)
        if match is None or match["code"] not in codes or codes[match["code"]] in fields:
            raise RunNotFound(tr("malformed run id {id}; run ids look like {example}", id=repr(run_id[:80]),
                             example=repr(example)))
        fields[codes[match["code"]]] = int(match["value"])
    if parts[-1][1:] != fingerprint:
        raise RunNotFound(tr("run {id} was made with other data ({theirs}); this server's data is {ours}",
                             id=repr(run_id), theirs=parts[-1][1:], ours=fingerprint))
    schedule = fields.pop("train_schedule_steps", 0)
    try:
        cfg = Config(net=net.name, dtype=_DTYPE_NAME[parts[2]], variant=parts[3], **fields)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise RunNotFound(tr("run id {id} is out of range: {problem}", id=repr(run_id[:80]),
                             problem=tr("{field}: {message}", field=exc.field, message=exc.message))) from None
    canonical = run_id_for(cfg, fingerprint, schedule)
    if canonical != run_id:  # e.g. sizes in another order or missing, a schedule that changes nothing: one run, one id
        raise RunNotFound(tr("run id {id} is not in canonical form; this run's id is {canonical}",
                             id=repr(run_id[:80]), canonical=repr(canonical)))
    return cfg, schedule


def run_bytes(run: Run) -> int:
    total = 0
    for store in (run.values, run.autograd, run.manual, run.local):
        for t in store.values():
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


@dataclass
class _Entry:
    run: Run
    nbytes: int


@dataclass
class _Training:
    """A training for the checkpoint store that this process started (or waits for)."""

    key: str
    net: str
    steps: int
    started: float
    future: Future[bool]


class RunRegistry:
    """Bounded LRU of runs (by count and by tensor bytes), single-flight computation per id in a
    process, trained weights from the shared checkpoint store (single flight across processes)."""

    def __init__(self, settings: Settings, compute: Callable[..., Run] = check, budget: Budget | None = None) -> None:
        self.dataset = load_dataset(settings.data_path)
        self.fingerprint = data_fingerprint(Path(self.dataset.path))
        self.settings = settings
        directory = state_dir(settings)
        self.budget = budget or Budget(settings, directory)
        self.store = CheckpointStore(settings.checkpoint_dir or directory / "checkpoints", settings.checkpoint_max_bytes)
        self.max_runs, self.max_bytes = settings.cache_runs, settings.cache_bytes
        self.heavy_cells = settings.heavy_cells
        self._compute = compute
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[str, Future[Run]] = {}
        self._pool = ThreadPoolExecutor(max_workers=settings.heavy_workers, thread_name_prefix="heavy-run")
        self._trainings: dict[str, _Training] = {}
        self._jobs: list[CheckpointTraining] = []
        self.steps_per_s: dict[str, float] = {}  # per network, measured on this process's trainings
        self.counters = {"trainings": 0, "checkpoint_hits": 0}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            jobs = list(self._jobs)
        for job in jobs:
            job.stop()
        self.budget.close()

    def run_id(self, cfg: Config, schedule: int = 0) -> str:
        return run_id_for(cfg, self.fingerprint, schedule)

    def config(self, run_id: str) -> tuple[Config, int]:
        return parse_run_id(run_id, self.fingerprint)

    def is_heavy(self, cfg: Config) -> bool:
        return self.large_tensors(cfg) or cfg.train_steps > 0

    def large_tensors(self, cfg: Config) -> bool:
        """Tensors big enough that reducing them for display belongs off the event loop too."""
        return get_net(cfg.net).cells(cfg) > self.heavy_cells

    def trained_key(self, cfg: Config, schedule: int = 0) -> str:
        """The checkpoint of a config's trained weights: every field but the ones that only change how
        the run is checked, the schedule of a stopped training, and the data."""
        fields = {k: v for k, v in cfg.to_dict().items() if k not in CHECK_ONLY}
        schedule = canonical_schedule(cfg, schedule)
        if schedule:
            fields["train_schedule_steps"] = schedule
        return checkpoint_key(fields, self.fingerprint)

    def cached(self, run_id: str) -> Run | None:
        with self._lock:
            entry = self._cache.get(run_id)
            if entry is None:
                return None
            self._cache.move_to_end(run_id)
            return entry.run

    def _store(self, run_id: str, run: Run) -> None:
        nbytes = run_bytes(run)
        with self._lock:
            if run_id in self._cache:
                return
            self._cache[run_id] = _Entry(run, nbytes)
            self._bytes += nbytes
            while len(self._cache) > 1 and (len(self._cache) > self.max_runs or self._bytes > self.max_bytes):
                _, old = self._cache.popitem(last=False)
                self._bytes -= old.nbytes

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"runs": len(self._cache), "bytes": self._bytes, "inflight": len(self._inflight),
                    "trainings_running": len(self._trainings), **self.counters, "checkpoints": self.store.stats()}

    def _build(self, run_id: str, cfg: Config, params: dict[str, torch.Tensor] | None) -> Run:
        run = self._compute(cfg, self.dataset, params=params)
        self._store(run_id, run)
        return run

    def check_limits(self, cfg: Config, schedule: int = 0) -> None:
        """This server's own limits, tighter than the engine's ranges where an operator set them."""
        if cfg.train_steps > self.settings.max_train_steps_in_run:
            raise ConfigError("train_steps", f"this server computes gradient views after at most "
                                             f"{self.settings.max_train_steps_in_run} training steps, got {cfg.train_steps}")
        most = max(self.settings.max_train_steps_in_run, self.settings.max_train_stream_steps)
        if schedule > most:
            raise ConfigError("train_schedule_steps", f"this server trains at most {most} steps, got {schedule}")
        cells = get_net(cfg.net).cells(cfg)
        if cells > self.settings.max_run_cells:
            raise ConfigError("batch_size", f"the largest activation of this {cfg.net} has {cells} entries, over this "
                                            f"server's limit of {self.settings.max_run_cells}; use a smaller batch_size")

    # ---- trained weights ------------------------------------------------------------------------

    def speed(self, net: str) -> float:
        """Training steps/s expected for `net`: the last timed training here, else the network's own figure."""
        return self.steps_per_s.get(net) or get_net(net).steps_per_s

    def _eta(self, training: _Training, steps: int) -> int:
        """Seconds until the training is done, for Retry-After: 1..60 (the page waits up to 60 s at once,
        then asks again and gets a new estimate)."""
        total = steps / self.speed(training.net)
        elapsed = time.monotonic() - training.started
        return int(min(60, max(1, math.ceil(total - elapsed + 0.5))))

    def _start_training(self, cfg: Config, schedule: int, key: str, client: str) -> _Training:
        """Start training `cfg` for the store, within the budget; raises Busy/RateLimited at once."""
        lock = self.store.acquire(key)
        future: Future[bool] = Future()
        training = _Training(key, cfg.net, schedule or cfg.train_steps, time.monotonic(), future)
        if lock is None:  # another process trains it: wait for its file
            threading.Thread(target=self._await_elsewhere, args=(training,), daemon=True, name="await-ckpt").start()
            return training
        try:
            if self.store.exists(key):  # finished between our look and the lock
                lock.release()
                future.set_result(True)
                return training
            ticket = self.budget.admit(client, "heavy", seconds=training.steps / self.speed(cfg.net))
        except BaseException:
            lock.release()
            raise
        with self._lock:
            self.counters["trainings"] += 1
        log.info("training %s steps for checkpoint %s (seed %s)", training.steps, key, cfg.seed)
        threading.Thread(target=self._train, args=(training, cfg, schedule, lock, ticket), daemon=True,
                         name="train-ckpt").start()
        return training

    def _train(self, training: _Training, cfg: Config, schedule: int, lock: Any, ticket: Ticket) -> None:
        """Thread: start the training process (off the event loop: the first start of a process's
        forkserver takes seconds), wait for it, free the lock and the slots."""
        job: CheckpointTraining | None = None
        ok = False
        try:
            meta = {"config": cfg.to_dict(), "train_schedule_steps": schedule, "data": self.fingerprint}
            job = CheckpointTraining(cfg, schedule, training.key, self.store.root, self.store.max_bytes,
                                     self.dataset.path, self.settings.heavy_nice, meta)
            with self._lock:
                self._jobs.append(job)
            ok = job.wait()
        except Exception:
            log.exception("training for checkpoint %s failed", training.key)
        finally:
            ticket.release()
            lock.release()
            with self._lock:
                if job in self._jobs:
                    self._jobs.remove(job)
        seconds = time.monotonic() - training.started
        if ok and training.steps >= 10_000 and seconds > 0:  # long enough for the start-up cost not to count
            self.steps_per_s[training.net] = training.steps / seconds
        training.future.set_result(ok and self.store.exists(training.key))

    def _await_elsewhere(self, training: _Training) -> None:
        """Another process holds the key's lock: done when its file appears or the lock is free."""
        while True:
            if self.store.exists(training.key):
                training.future.set_result(True)
                return
            probe = self.store.acquire(training.key)
            if probe is not None:  # the other process finished (or died): the file says which
                probe.release()
                training.future.set_result(self.store.exists(training.key))
                return
            time.sleep(0.1)

    def _forget_training(self, key: str) -> None:
        with self._lock:
            self._trainings.pop(key, None)

    async def trained_params(self, cfg: Config, schedule: int, client: str) -> dict[str, torch.Tensor]:
        """The trained weights of `cfg` from the store, training them first if nobody has (within the
        budget). Raises Busy/RateLimited (no budget), Timeout (still training after the request
        timeout; the training goes on and its weights are kept)."""
        key = self.trained_key(cfg, schedule)
        params = await asyncio.to_thread(self.store.load, key)
        if params is not None:
            self.counters["checkpoint_hits"] += 1
            return params
        with self._lock:
            training = self._trainings.get(key)
        if training is None:
            training = self._start_training(cfg, schedule, key, client)
            with self._lock:
                training = self._trainings.setdefault(key, training)
            training.future.add_done_callback(lambda _: self._forget_training(key))
        try:
            # shield: the requester may leave; the weights are worth keeping, so the training goes on
            ok = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(training.future)),
                                        self.settings.request_timeout_s)
        except TimeoutError:
            eta = self._eta(training, training.steps)
            raise Timeout(tr("the network is being trained ({steps} steps); this takes about {s} s more. Ask again "
                             "then: the weights are kept, so it is trained only once", steps=training.steps, s=eta),
                          eta) from None
        params = await asyncio.to_thread(self.store.load, key) if ok else None
        if params is None:
            raise TrainingFailed(tr("training the network failed on the server; it has been logged"))
        return params

    # ---- runs -----------------------------------------------------------------------------------

    async def get(self, cfg: Config, schedule: int = 0, client: str = "local") -> tuple[str, Run]:
        """The run for `cfg`: from the cache, computed inline when small, or in the pool when heavy;
        a trained run's weights from the checkpoint store. `client` is who pays for new heavy work."""
        self.check_limits(cfg, schedule)
        schedule = canonical_schedule(cfg, schedule)
        run_id = self.run_id(cfg, schedule)
        run = self.cached(run_id)
        if run is not None:
            return run_id, run
        params = await self.trained_params(cfg, schedule, client) if cfg.train_steps > 0 else None
        if not self.large_tensors(cfg):
            # Small runs take ~2 ms: cheaper on the event loop than a thread hop.
            return run_id, self._build(run_id, cfg, params)
        with self._lock:
            future = self._inflight.get(run_id)
        if future is None:
            ticket = self.budget.admit(client, "heavy", seconds=2.0, retry_after=2)
            with self._lock:
                future = self._inflight.get(run_id)
                if future is None:
                    future = self._pool.submit(self._build, run_id, cfg, params)
                    self._inflight[run_id] = future
                    future.add_done_callback(lambda _: self._forget(run_id))
                    future.add_done_callback(lambda _: ticket.release())
                else:
                    ticket.release()
        try:
            # shield: a client that gives up must not cancel work that others (or the cache) will use
            result = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.settings.request_timeout_s)
        except TimeoutError:
            raise Timeout(tr("the run took longer than {t} s; it goes on in the background, so asking again later may "
                             "find it ready", t=f"{self.settings.request_timeout_s:g}"), 5) from None
        return run_id, result

    def _forget(self, run_id: str) -> None:
        with self._lock:
            self._inflight.pop(run_id, None)

    async def get_by_id(self, run_id: str, client: str = "local") -> tuple[Config, Run]:
        cfg, schedule = self.config(run_id)
        _, run = await self.get(cfg, schedule, client)
        return cfg, run

    def schedule_of(self, run_id: str) -> int:
        """The training schedule a run id names (0: the whole schedule was trained); the id is valid."""
        return self.config(run_id)[1]
