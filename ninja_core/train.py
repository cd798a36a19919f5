"""Training the lecture's MLP with the ninja's own backward pass (lecture exercise 4).

    from ninja_core.train import TrainConfig, iter_training, train
    result = train(TrainConfig(steps=20_000, audit_every=1_000))
    result.val_loss, result.samples, result.audit[-1].max_rel_diff
    result.model.save("model.pt")

SGD is driven only by the manual fused backward (`train_step.FastStep`, or the readable
`train_step.reference_grads` with backward="reference"); autograd runs only in the optional audit,
which computes autograd's gradients of the same minibatch every `audit_every` steps and records
how far the manual ones are. All randomness comes from one generator seeded by the config: it
draws the seven parameters (`model.init_params`) and then every minibatch, so a run is
reproducible bit for bit on the same machine and thread setting.

After training, batchnorm is calibrated over the whole training split, then come the train / val /
test losses and names sampled from the model.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch

from .backward import deterministic, forward
from .config import Config
from .data import DEFAULT_DATA, Dataset, load_dataset
from .nets import generator
from .nets.mlp import NET as MLP_NET
from .train_config import TRAIN_LIMITS, TrainConfig
from .train_model import ModelFileError, TrainedModel, calibrate_batchnorm, load_model, sample_names, split_loss
from .train_step import BatchSampler, FastStep, Params, ReferenceStep, Stepper, reference_grads, sgd_update

__all__ = [
    "TRAIN_LIMITS",
    "AuditEvent",
    "DoneEvent",
    "ModelFileError",
    "ProgressEvent",
    "StatsEvent",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "TrainedModel",
    "audit_grads",
    "iter_training",
    "load_model",
    "reference_grads",
    "remember_trained_params",
    "sgd_update",
    "train",
    "trained_params",
]

SATURATION = 0.97  # |h| above this counts as a saturated tanh (the lecture's threshold for its histogram)

PARAMS: tuple[str, ...] = MLP_NET.build_tape(()).params  # C, W1, b1, W2, b2, bngain, bnbias


# ---- events -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProgressEvent:
    kind: ClassVar[str] = "progress"
    step: int  # SGD steps done
    steps: int  # steps of the whole run
    loss: float  # mean minibatch loss over the steps since the previous progress event
    lr: float  # learning rate of the last step
    steps_per_s: float  # over the steps since the previous progress event

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class AuditEvent:
    """Manual vs autograd gradients of one minibatch, taken with the parameters after `step` updates
    (step 0 = at initialisation), before the update they drive."""

    kind: ClassVar[str] = "audit"
    step: int
    max_rel_diff: dict[str, float]  # per parameter: max |manual - autograd| / scale
    max_abs_diff: dict[str, float]  # per parameter: max |manual - autograd|
    scale: float  # the largest |autograd gradient| entry over all seven parameters of this step
    # Why one scale for all: b1's gradient is zero in exact arithmetic (batchnorm subtracts the
    # mean, so b1 cancels); both sides compute rounding noise (~1e-9), and dividing by its own size
    # would report ~1 for two equally right answers. Against the step's gradient scale it is ~1e-7.

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class StatsEvent:
    """The lecture's health checks of a run, after the update of step `step`."""

    kind: ClassVar[str] = "stats"
    step: int  # SGD steps done
    update_ratio: dict[str, float]  # log10(std(lr * grad) / std(param)) per parameter; ~-3 is healthy
    saturation: float  # fraction of the last minibatch's h with |h| > 0.97
    lr: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class DoneEvent:
    kind: ClassVar[str] = "done"
    train_loss: float  # over the whole split, batchnorm calibrated on the training split (NaN: empty split)
    val_loss: float
    test_loss: float
    seconds: float  # time spent in training, calibration, evaluation and sampling (not in the consumer)
    steps: int  # SGD steps done (fewer than asked when stopped)
    steps_per_s: float  # SGD steps per second of the training loop (audits included when on)
    samples: list[str]  # names sampled from the trained model
    stopped: bool  # should_stop() ended the run early
    model: TrainedModel = field(repr=False, compare=False)  # not part of to_dict(): tensors

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "train_loss": self.train_loss, "val_loss": self.val_loss,
                "test_loss": self.test_loss, "seconds": self.seconds, "steps": self.steps,
                "steps_per_s": self.steps_per_s, "samples": list(self.samples), "stopped": self.stopped}


TrainEvent = ProgressEvent | AuditEvent | StatsEvent | DoneEvent


@dataclass(frozen=True)
class TrainResult:
    config: TrainConfig
    model: TrainedModel
    train_loss: float
    val_loss: float
    test_loss: float
    steps: int
    seconds: float
    steps_per_s: float
    samples: list[str]
    audit: list[AuditEvent]
    stopped: bool

    def to_dict(self) -> dict[str, Any]:
        """The CLI's `train --json` object."""
        return {"train_loss": self.train_loss, "val_loss": self.val_loss, "test_loss": self.test_loss,
                "steps": self.steps, "seconds": self.seconds, "steps_per_s": self.steps_per_s,
                "samples": list(self.samples), "audit": [a.to_dict() for a in self.audit],
                "stopped": self.stopped}


# ---- audit and statistics ---------------------------------------------------------------------

def autograd_param_grads(params: Params, Xb: torch.Tensor, Yb: torch.Tensor) -> dict[str, torch.Tensor]:
    """Autograd's gradients of the seven parameters for one minibatch (the engine's forward tape,
    on detached copies: the training parameters are untouched)."""
    leaves = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
    # Autograd accumulates a large embedding gradient with parallel atomic adds when it has more
    # than one thread; deterministic() orders them. On one thread (training's default) the order
    # is fixed already, and skipping the switch saves its first use: torch imports ~850 modules
    # for it (0.75-2 s here), a stall at the first audit of a live run.
    switch = deterministic() if torch.get_num_threads() > 1 else nullcontext()
    with switch, torch.enable_grad():
        values = forward(MLP_NET.tape(Config()), leaves, Xb, Yb, {"n": Xb.shape[0]})
        values["loss"].backward()
    grads: dict[str, torch.Tensor] = {}
    for name in PARAMS:
        grad = leaves[name].grad
        if grad is None:  # cannot happen: every parameter reaches the loss
            raise RuntimeError(f"autograd produced no gradient for {name}")
        grads[name] = grad.detach()
    return grads


def audit_grads(manual: dict[str, torch.Tensor],
                reference: dict[str, torch.Tensor]) -> tuple[dict[str, float], dict[str, float], float]:
    """(max_rel_diff, max_abs_diff, scale) of manual against autograd, as AuditEvent documents them."""
    with torch.no_grad():
        scale = max(float(reference[name].abs().max()) for name in PARAMS)
        absdiff = {name: float((manual[name] - reference[name]).abs().max()) for name in PARAMS}
    if scale > 0:
        rel = {name: d / scale for name, d in absdiff.items()}
    else:
        rel = {name: 0.0 if d == 0 else math.inf for name, d in absdiff.items()}
    return rel, absdiff, scale


def _stats(params: Params, grads: dict[str, torch.Tensor], h: torch.Tensor, lr: float) -> tuple[dict[str, float], float]:
    ratios: dict[str, float] = {}
    with torch.no_grad():
        for name in PARAMS:
            if params[name].numel() < 2:  # a spread needs two values (n_hidden 1 makes b1 a single number)
                ratios[name] = math.nan
                continue
            r = lr * float(grads[name].std()) / float(params[name].std())
            ratios[name] = math.log10(r) if r > 0 else (-math.inf if r == 0 else math.nan)
        saturation = float((h.abs() > SATURATION).float().mean())
    return ratios, saturation


# ---- the loop ---------------------------------------------------------------------------------

class _OwnTime:
    """A generator's own time and torch thread setting: both apply only while its code runs, not
    while it is suspended at a yield. Why threads this way: torch's thread count is per OS thread
    under OpenMP, and a consumer (a web server's thread pool) may resume the generator on a
    different thread each time; setting it on resume and restoring it before each yield keeps the
    run on `threads` and leaves the consumer's setting alone."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.busy = 0.0
        self.t0 = 0.0
        self.saved = 0
        self.active = False

    def enter(self) -> None:
        self.saved = torch.get_num_threads()
        if self.threads > 0 and self.saved != self.threads:
            torch.set_num_threads(self.threads)
        self.t0 = time.perf_counter()
        self.active = True

    def leave(self) -> None:
        if self.active:
            self.busy += time.perf_counter() - self.t0
            if torch.get_num_threads() != self.saved:
                torch.set_num_threads(self.saved)
            self.active = False

    def elapsed(self) -> float:
        return self.busy + (time.perf_counter() - self.t0 if self.active else 0.0)

    def emit(self, event: TrainEvent) -> Generator[TrainEvent, None, None]:
        self.leave()
        yield event
        self.enter()


def resolve_dataset(data: Dataset | str | Path | None, block_size: int) -> Dataset:
    """A Dataset, a path or None (the bundled names) as a Dataset with contexts of block_size."""
    dataset = data if isinstance(data, Dataset) else load_dataset(data, block_size)
    if dataset.block_size != block_size:  # same words, contexts of the config's length
        dataset = load_dataset(dataset.path, block_size)
    return dataset


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def _training(cfg: TrainConfig, dataset: Dataset, should_stop: Callable[[], bool] | None,
              evaluate: bool) -> Generator[TrainEvent, None, Params]:
    """The run as a generator of events; returns the trained parameters."""
    own = _OwnTime(cfg.threads)
    own.enter()
    try:
        model_cfg = cfg.model_config()
        g = generator(model_cfg)
        params = MLP_NET.init_params(model_cfg, dataset.vocab.size, g)  # C, W1, b1, W2, b2, bngain, bnbias
        batches = iter(BatchSampler(dataset.Xtr, dataset.Ytr, cfg.batch_size, g, cfg.steps))  # g, continued
        stepper: Stepper = FastStep(params, cfg.batch_size) if cfg.backward == "fast" else ReferenceStep(params)
        step, stopped = 0, False
        loop_start = own.elapsed()
        last_step, last_time = 0, loop_start
        while step < cfg.steps and not stopped:
            lr = cfg.lr_at(step)
            if cfg.audit_every and step % cfg.audit_every == 0:
                if should_stop is not None and should_stop():
                    stopped = True
                else:
                    Xb, Yb = next(batches)
                    reference = autograd_param_grads(params, Xb, Yb)  # before the update, same batch
                    with torch.no_grad():
                        stepper(Xb, Yb, lr)
                    step += 1
                    rel, absdiff, scale = audit_grads(stepper.grads, reference)
                    yield from own.emit(AuditEvent(step - 1, rel, absdiff, scale))
            else:
                # Plain SGD steps up to the next step where anything else happens.
                end = cfg.steps
                for every in (cfg.progress_every, cfg.stats_every, cfg.audit_every):
                    if every:
                        end = min(end, _next_multiple(step, every))
                if step < cfg.decay_step:
                    end = min(end, cfg.decay_step)
                with torch.no_grad():
                    while step < end:
                        if should_stop is not None and should_stop():
                            stopped = True
                            break
                        Xb, Yb = next(batches)
                        stepper(Xb, Yb, lr)
                        step += 1
            if cfg.stats_every and step > 0 and step % cfg.stats_every == 0 and not stopped:
                ratios, saturation = _stats(params, stepper.grads, stepper.h, lr)
                yield from own.emit(StatsEvent(step, ratios, saturation, lr))
            if cfg.progress_every and step > last_step and (step % cfg.progress_every == 0 or step == cfg.steps or stopped):
                now = own.elapsed()
                rate = (step - last_step) / (now - last_time) if now > last_time else math.inf
                last_step, last_time = step, now
                yield from own.emit(ProgressEvent(step, cfg.steps, stepper.take_loss(), lr, rate))
        loop_seconds = own.elapsed() - loop_start
        if evaluate:
            bnmean, bnvar = calibrate_batchnorm(params, dataset.Xtr)
            losses = [split_loss(params, bnmean, bnvar, X, Y)
                      for X, Y in ((dataset.Xtr, dataset.Ytr), (dataset.Xdev, dataset.Ydev), (dataset.Xte, dataset.Yte))]
            steps_per_s = step / loop_seconds if loop_seconds > 0 else math.nan
            metrics = {"train_loss": losses[0], "val_loss": losses[1], "test_loss": losses[2], "steps": float(step)}
            # the model records the words it learned (data given as an argument overrides cfg.data)
            trained_on = None if Path(dataset.path) == DEFAULT_DATA else dataset.path
            model = TrainedModel(replace(cfg, data=trained_on), dataset.vocab, params, bnmean, bnvar, metrics)
            samples = sample_names(params, bnmean, bnvar, dataset.vocab, cfg.block_size, cfg.n_samples, cfg.sample_seed)
            yield from own.emit(DoneEvent(losses[0], losses[1], losses[2], own.elapsed(), step, steps_per_s,
                                          samples, stopped, model))
        return params
    finally:
        own.leave()


def iter_training(cfg: TrainConfig | None = None, data: Dataset | str | Path | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Generator[TrainEvent, None, Params]:
    """The run as a stream of events: progress, audit, stats (as configured), then one done.

    `data` overrides `cfg.data` (a Dataset or a path). The data is loaded here, so a bad word list
    raises DataError at the call, not at the first event. Stopping: should_stop() is asked before
    every SGD step; when it says True the loop ends and the done event (stopped=True) follows after
    the evaluation (~0.3 s on the default data at n_hidden 200). Closing the generator (`.close()`, or a consumer
    that goes away) stops at once without evaluating. (The generator's return value, seen only by
    a consumer that catches StopIteration, is the trained parameters; the done event carries them
    too, as `done.model`.) Torch's thread count is `cfg.threads` only
    while the generator runs; the consumer's setting is restored at every yield.
    """
    cfg = cfg or TrainConfig()
    dataset = resolve_dataset(data if data is not None else cfg.data, cfg.block_size)
    return _training(cfg, dataset, should_stop, evaluate=True)


def train(cfg: TrainConfig | None = None, data: Dataset | str | Path | None = None,
          should_stop: Callable[[], bool] | None = None,
          on_event: Callable[[TrainEvent], None] | None = None) -> TrainResult:
    """Run iter_training to the end and collect the result; `on_event` sees every event (the CLI's
    progress bar)."""
    cfg = cfg or TrainConfig()
    audits: list[AuditEvent] = []
    done: DoneEvent | None = None
    for event in iter_training(cfg, data, should_stop):
        if on_event is not None:
            on_event(event)
        if isinstance(event, AuditEvent):
            audits.append(event)
        elif isinstance(event, DoneEvent):
            done = event
    if done is None:  # cannot happen: the generator always ends with a done event
        raise RuntimeError("training ended without a done event")
    return TrainResult(cfg, done.model, done.train_loss, done.val_loss, done.test_loss, done.steps, done.seconds,
                       done.steps_per_s, done.samples, audits, done.stopped)


# ---- trained parameters for the engine's check ------------------------------------------------

TRAINED_CACHE_SIZE = 8  # entries are small (~50 KB at n_hidden 200): the bound is about time, not memory
_trained_cache: OrderedDict[tuple[Any, ...], Params] = OrderedDict()
_trained_lock = threading.Lock()
_trained_stats = {"hits": 0, "misses": 0}


def trained_params(config: Config, steps: int, data: Dataset | str | Path | None = None) -> dict[str, torch.Tensor]:
    """The parameters after `steps` SGD steps with the manual backward, for `run.check` to show
    gradients of a trained network (Config.train_steps).

    Trains with the config's seed, n_embd, n_hidden, block_size and batch_size, the lecture's
    schedule scaled to `steps` (lr 0.1, then 0.01 from half-way), always in float32 on one torch
    thread: a float64 check then looks at the same trained network, and the same inputs give the
    same tensors. Cached (bounded LRU, keyed by those fields and the words); returns fresh copies.
    """
    dataset = resolve_dataset(data, config.block_size)
    cfg = _quiet(TrainConfig(seed=config.seed, n_embd=config.n_embd, n_hidden=config.n_hidden,
                             block_size=config.block_size, batch_size=config.batch_size, steps=steps))
    key = _trained_key(cfg, dataset)
    with _trained_lock:
        cached = _trained_cache.get(key)
        if cached is not None:
            _trained_cache.move_to_end(key)
            _trained_stats["hits"] += 1
    if cached is None:
        run = _training(cfg, dataset, None, evaluate=False)
        while True:  # no events are configured; drain the generator for its return value
            try:
                next(run)
            except StopIteration as finished:
                cached = finished.value
                break
        with _trained_lock:
            _trained_stats["misses"] += 1
            _trained_cache[key] = cached
            while len(_trained_cache) > TRAINED_CACHE_SIZE:
                _trained_cache.popitem(last=False)
    assert cached is not None
    return {name: t.clone() for name, t in cached.items()}


def _quiet(cfg: TrainConfig) -> TrainConfig:
    """The same training without events: audits, stats and progress do not change the weights."""
    return replace(cfg, audit_every=0, stats_every=0, progress_every=0, dtype="float32", threads=1, n_samples=0,
                   backward="fast", data=None)


def _trained_key(cfg: TrainConfig, dataset: Dataset) -> tuple[Any, ...]:
    return (_quiet(cfg), dataset.path, len(dataset.words), hash(dataset.words))


def remember_trained_params(cfg: TrainConfig, dataset: Dataset, params: Params) -> bool:
    """Offer the weights of a finished training run (e.g. the web's live stream) to the cache that
    `trained_params` reads, so the gradient view after training is instant. Only runs that
    `trained_params` would reproduce bit for bit qualify (float32, fast backward, one thread, all
    steps done); returns whether it was stored."""
    if cfg.dtype != "float32" or cfg.backward != "fast" or cfg.threads != 1:
        return False
    key = _trained_key(cfg, dataset)
    with _trained_lock:
        _trained_cache[key] = {name: t.detach().clone() for name, t in params.items()}
        _trained_cache.move_to_end(key)
        while len(_trained_cache) > TRAINED_CACHE_SIZE:
            _trained_cache.popitem(last=False)
    return True


def trained_params_cache_info() -> dict[str, int]:
    with _trained_lock:
        return {**_trained_stats, "size": len(_trained_cache), "maxsize": TRAINED_CACHE_SIZE}


def trained_params_cache_clear() -> None:
    with _trained_lock:
        _trained_cache.clear()
        _trained_stats.update(hits=0, misses=0)
