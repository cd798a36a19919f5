"""Runs by id: the id *is* the config (plus a fingerprint of the data), so any process can rebuild a
run it has never seen. Recent runs live in a bounded LRU; heavy ones are computed in a small pool."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from ninja_core.config import Config, ConfigError
from ninja_core.data import Dataset, load_dataset
from ninja_core.nets import NETS, get_net
from ninja_core.run import Run, check

from .settings import Settings

_DTYPE_CODE = {"float32": "f32", "float64": "f64"}
_DTYPE_NAME = {v: k for k, v in _DTYPE_CODE.items()}
_TOKEN = re.compile(r"(?P<code>[a-z]+)(?P<value>0|[1-9]\d{0,18})")  # no leading zeros: one run, one id
_DATA = re.compile(r"d[0-9a-f]{8}")


class RunNotFound(LookupError):
    """The run id is malformed, out of range, or was made with other data."""


class Timeout(RuntimeError):
    """A run took longer than the server's request timeout."""


class Busy(RuntimeError):
    """Too many heavy runs are queued already; try again shortly."""


def data_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def run_id_for(cfg: Config, fingerprint: str) -> str:
    """r2-<net>-<dtype>-<variant>-s<seed>-t<train_steps>-<the network's sizes by code>-d<data>:
    the whole config, so any server process can rebuild the run from its id."""
    net = get_net(cfg.net)
    sizes = "-".join(f"{s.code}{getattr(cfg, s.name)}" for s in net.sizes)
    return f"r2-{cfg.net}-{_DTYPE_CODE[cfg.dtype]}-{cfg.variant}-s{cfg.seed}-t{cfg.train_steps}-{sizes}-d{fingerprint}"


def config_from_run_id(run_id: str, fingerprint: str) -> Config:
    """The config a run id encodes. Raises RunNotFound for a malformed, non-canonical or foreign id."""
    example = run_id_for(Config(), fingerprint)
    parts = run_id.split("-")
    if len(parts) < 7 or parts[0] != "r2" or parts[1] not in NETS or parts[2] not in _DTYPE_NAME \
            or parts[3] not in ("chain", "fused") or not _DATA.fullmatch(parts[-1]):
        raise RunNotFound(f"malformed run id {run_id[:80]!r}; run ids look like {example!r}")
    net = get_net(parts[1])
    codes = {"s": "seed", "t": "train_steps", **{s.code: s.name for s in net.sizes}}
    fields: dict[str, int] = {}
    for token in parts[4:-1]:
        match = _TOKEN.fullmatch(token)
        if match is None or match["code"] not in codes or codes[match["code"]] in fields:
            raise RunNotFound(f"malformed run id {run_id[:80]!r}; run ids look like {example!r}")
        fields[codes[match["code"]]] = int(match["value"])
    if parts[-1][1:] != fingerprint:
        raise RunNotFound(f"run {run_id!r} was made with other data ({parts[-1][1:]}); this server's data is {fingerprint}")
    try:
        cfg = Config(net=net.name, dtype=_DTYPE_NAME[parts[2]], variant=parts[3], **fields)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise RunNotFound(f"run id {run_id[:80]!r} is out of range: {exc}") from None
    canonical = run_id_for(cfg, fingerprint)
    if canonical != run_id:  # e.g. sizes in another order or missing: one run has one id
        raise RunNotFound(f"run id {run_id[:80]!r} is not in canonical form; this run's id is {canonical!r}")
    return cfg


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


class RunRegistry:
    """Bounded LRU of runs (by count and by tensor bytes), single-flight computation per id."""

    def __init__(self, settings: Settings, compute: Callable[[Config, Dataset], Run] = check) -> None:
        self.dataset = load_dataset(settings.data_path)
        self.fingerprint = data_fingerprint(Path(self.dataset.path))
        self.settings = settings
        self.max_runs, self.max_bytes = settings.cache_runs, settings.cache_bytes
        self.heavy_cells = settings.heavy_cells
        self._compute = compute
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[str, Future[Run]] = {}
        self._pool = ThreadPoolExecutor(max_workers=settings.heavy_workers, thread_name_prefix="heavy-run")
        # a slot is held from submission until the computation ends, even if its client gave up
        self._heavy_slots = threading.BoundedSemaphore(settings.heavy_workers + settings.heavy_queue)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_id(self, cfg: Config) -> str:
        return run_id_for(cfg, self.fingerprint)

    def config(self, run_id: str) -> Config:
        return config_from_run_id(run_id, self.fingerprint)

    def is_heavy(self, cfg: Config) -> bool:
        return self.large_tensors(cfg) or cfg.train_steps > 0

    def large_tensors(self, cfg: Config) -> bool:
        """Tensors big enough that reducing them for display belongs off the event loop too."""
        return get_net(cfg.net).cells(cfg) > self.heavy_cells

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

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"runs": len(self._cache), "bytes": self._bytes, "inflight": len(self._inflight)}

    def _build(self, run_id: str, cfg: Config) -> Run:
        run = self._compute(cfg, self.dataset)
        self._store(run_id, run)
        return run

    def _single_flight(self, run_id: str, cfg: Config, submit: Callable[[Callable[[], Run]], Future[Run]]) -> Future[Run]:
        with self._lock:
            future = self._inflight.get(run_id)
            if future is not None:
                return future
            future = submit(lambda: self._build(run_id, cfg))
            self._inflight[run_id] = future
        future.add_done_callback(lambda _: self._forget(run_id))
        return future

    def _forget(self, run_id: str) -> None:
        with self._lock:
            self._inflight.pop(run_id, None)

    def check_limits(self, cfg: Config) -> None:
        """This server's own limits, tighter than the engine's ranges where an operator set them."""
        if cfg.train_steps > self.settings.max_train_steps_in_run:
            raise ConfigError("train_steps", f"this server computes gradient views after at most "
                                             f"{self.settings.max_train_steps_in_run} training steps, got {cfg.train_steps}")
        cells = get_net(cfg.net).cells(cfg)
        if cells > self.settings.max_run_cells:
            raise ConfigError("batch_size", f"the largest activation of this {cfg.net} has {cells} entries, over this "
                                            f"server's limit of {self.settings.max_run_cells}; use a smaller batch_size")

    async def get(self, cfg: Config) -> tuple[str, Run]:
        """The run for `cfg`: from the cache, computed inline when small, or in the pool when heavy."""
        self.check_limits(cfg)
        run_id = self.run_id(cfg)
        run = self.cached(run_id)
        if run is not None:
            return run_id, run
        if not self.is_heavy(cfg):
            # Small runs take ~2 ms: cheaper on the event loop than a thread hop.
            return run_id, self._build(run_id, cfg)
        with self._lock:
            future = self._inflight.get(run_id)
        if future is None:
            if not self._heavy_slots.acquire(blocking=False):
                raise Busy("too many large runs are being computed; try again in a few seconds")
            future = self._single_flight(run_id, cfg, lambda fn: self._pool.submit(fn))
            future.add_done_callback(lambda _: self._heavy_slots.release())
        try:
            # shield: a client that gives up must not cancel work that others (or the cache) will use
            result = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.settings.request_timeout_s)
        except TimeoutError:
            raise Timeout(f"the run took longer than {self.settings.request_timeout_s:g} s; it goes on in the "
                          "background, so asking again later may find it ready") from None
        return run_id, result

    async def get_by_id(self, run_id: str) -> tuple[Config, Run]:
        cfg = self.config(run_id)
        _, run = await self.get(cfg)
        return cfg, run
