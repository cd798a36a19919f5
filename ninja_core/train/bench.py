"""Speed of training with autograd vs with the ninja's manual backward: same network, data, seed,
optimizer, process and thread.

The autograd baseline is what a plain training loop does: the network's forward as written with
autograd (`Network.logits`, batch statistics as sums), `F.cross_entropy`, `loss.backward()`, and the
same optimizer (SGD: `p += -lr * p.grad` per parameter; AdamW: torch.optim.AdamW). The manual
contender is the training loop's own step (`Network.train_step`) and update; the reference is the
tape's fused manual backward.

Timing (why this way on a shared 2-core machine): each contender runs `steps` timed steps per round
after a warm-up, from the same initial parameters and the same minibatches, rounds interleaved;
the best round of each counts (timeit's rule: the least disturbed round is the closest to the code's
own speed). The steps/s and the ratio are by the thread's CPU time (`time.thread_time`): time the
process spends preempted by others does not count, so another job on the machine does not move
them (measured here under load 9-14: CPU-time ratios 3.00-3.10 in three runs where the wall-time
ratios were 3.34-4.32). Why not wall time: best-of-rounds by wall time is biased when the machine is
busy, because the slower contender's rounds are longer and so more often interrupted: its best
round is worse and the ratio comes out too high. The wall-time figures are reported beside
(`wall_*`); on a quiet machine the two agree.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data import Dataset
from ..nets import Network, generator, get_net
from ..nets.shared_train import Params, TrainStep
from .config import TrainConfig
from .loop import dataset_for, require_forward
from .step import TapeStep, make_optimizer, make_step, minibatches

WARMUP_STEPS = 50
REFERENCE_SHARE = 0.1  # the tape's step is slow: it runs this share of the steps (at least 10)


@dataclass(frozen=True)
class BenchResult:
    net: str
    autograd_steps_per_s: float  # plain autograd training, best round, by the thread's CPU time
    manual_steps_per_s: float  # the project's training step: the network's manual backward
    ratio: float  # manual / autograd
    reference_steps_per_s: float  # the tape's fused manual backward (readable, generic), for comparison
    wall_autograd_steps_per_s: float  # the same by wall time (biased on a busy machine, see the module docstring)
    wall_manual_steps_per_s: float
    wall_ratio: float
    steps: int  # timed steps per contender and round
    rounds: int
    threads: int  # torch threads during the benchmark
    batch_size: int
    optimizer: str
    sizes: dict[str, int] = field(default_factory=dict)  # the network's sizes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        return (f"<BenchResult {self.net}: autograd {self.autograd_steps_per_s:.0f} steps/s, manual "
                f"{self.manual_steps_per_s:.0f} steps/s, ratio {self.ratio:.2f}x (wall time {self.wall_ratio:.2f}x)>")

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th>{k}</th><td>{v:.0f}</td><td>{w}</td></tr>" for k, v, w in (
            ("autograd", self.autograd_steps_per_s, f"{self.wall_autograd_steps_per_s:.0f}"),
            ("manual", self.manual_steps_per_s, f"{self.wall_manual_steps_per_s:.0f}"),
            ("tape (reference)", self.reference_steps_per_s, "–")))
        caption = html.escape(f"{self.net}: manual / autograd = {self.ratio:.2f}x ({self.wall_ratio:.2f}x by wall time), "
                              f"best of {self.rounds} rounds of {self.steps} steps, {self.threads} thread(s)")
        return (f"<table><caption>{caption}</caption><tr><th></th><th>steps/s (CPU time)</th>"
                f"<th>steps/s (wall)</th></tr>{rows}</table>")


def autograd_step(net: Network, cfg: Any, params: Params) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One step's forward and loss.backward() the ordinary way; `params` require grad, their .grad
    is replaced every step (the optimizer then reads it)."""
    plist = list(params.values())

    def run(Xb: torch.Tensor, Yb: torch.Tensor) -> None:
        loss = F.cross_entropy(net.logits(cfg, params, Xb), Yb)
        for p in plist:
            p.grad = None
        loss.backward()

    return run


class _PlainSGD:
    """The lecture's update, `p.data += -lr * p.grad`, one parameter at a time (in place)."""

    def __init__(self, params: Params) -> None:
        self.params = list(params.values())

    def step(self, lr: float) -> None:
        with torch.no_grad():
            for p in self.params:
                p.add_(p.grad, alpha=-lr)  # type: ignore[arg-type]


@contextmanager
def _threads(n: int) -> Iterator[None]:
    saved = torch.get_num_threads()
    if n > 0 and n != saved:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != saved:
            torch.set_num_threads(saved)


def bench(cfg: TrainConfig | None = None, steps: int = 500, rounds: int = 10,
          data: Dataset | str | Path | None = None) -> BenchResult:
    """Steps per second of autograd training, the network's manual step and the tape's step.
    Raises ValueError for steps or rounds below 1, ConfigError / DataError for a bad config or data."""
    cfg = cfg or TrainConfig()
    if steps < 1 or rounds < 1:
        raise ValueError(f"steps and rounds must be at least 1, got {steps} and {rounds}")
    net, model_cfg = get_net(cfg.net), cfg.model_config()
    require_forward(net)  # the autograd baseline runs it
    dataset = dataset_for(cfg, data)
    g = generator(model_cfg)
    initial = net.init_params(model_cfg, dataset.vocab.size, g)
    batch_state = g.get_state()  # every contender draws the same minibatches after the same parameters
    reference_steps = max(10, round(steps * REFERENCE_SHARE))
    lr = cfg.lr

    def timed(run_step: Callable[[torch.Tensor, torch.Tensor], None], update: Callable[[float], None],
              n: int, flat: bool) -> tuple[float, float]:
        g2 = torch.Generator().set_state(batch_state)
        it = minibatches(net, model_cfg, dataset, g2, WARMUP_STEPS + n, flat)
        for _ in range(WARMUP_STEPS):
            run_step(*next(it))
            update(lr)
        t0, c0 = time.perf_counter(), time.thread_time()
        for Xb, Yb in it:
            run_step(Xb, Yb)
            update(lr)
        cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
        return (n / cpu if cpu > 0 else float("inf")), n / wall

    def run_autograd() -> tuple[float, float]:
        leaves = {k: v.clone().requires_grad_(True) for k, v in initial.items()}
        update = _PlainSGD(leaves).step if cfg.optimizer == "sgd" else _AutogradAdamW(leaves, net, cfg).step
        return timed(autograd_step(net, model_cfg, leaves), update, steps, False)

    def run_manual(make: Callable[[], TrainStep], n: int) -> tuple[float, float]:
        step = make()
        optimizer = make_optimizer(cfg.optimizer, step, net, cfg.lr, cfg.weight_decay)
        with torch.inference_mode():  # as the training loop runs it
            return timed(step.forward_backward, optimizer.step, n, True)

    def fast() -> TrainStep:
        step = net.train_step(model_cfg, {k: v.clone() for k, v in initial.items()})
        return step if step is not None else TapeStep(net, model_cfg, initial)

    best = {"autograd": (0.0, 0.0), "manual": (0.0, 0.0), "reference": (0.0, 0.0)}
    with _threads(cfg.threads):
        for _ in range(rounds):
            for name, result in (("autograd", run_autograd()), ("manual", run_manual(fast, steps)),
                                 ("reference", run_manual(lambda: TapeStep(net, model_cfg, initial), reference_steps))):
                best[name] = (max(best[name][0], result[0]), max(best[name][1], result[1]))
        threads = torch.get_num_threads()
    (ac, aw), (mc, mw) = best["autograd"], best["manual"]
    sizes = {s.name: getattr(cfg, s.name) for s in net.sizes}
    return BenchResult(cfg.net, ac, mc, mc / ac, best["reference"][0], aw, mw, mw / aw, steps, rounds, threads,
                       cfg.batch_size, cfg.optimizer, sizes)


class _AutogradAdamW:
    """torch.optim.AdamW (fused, as the manual step's: train.step.AdamW) on autograd's leaves, with
    the same groups: weight decay on the parameters `Network.decays` names."""

    def __init__(self, params: Params, net: Network, cfg: TrainConfig) -> None:
        decay = [p for name, p in params.items() if net.decays(name, tuple(p.shape))]
        other = [p for name, p in params.items() if not net.decays(name, tuple(p.shape))]
        groups = [g for g in ({"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": other, "weight_decay": 0.0}) if g["params"]]
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=net.recipe.betas, fused=True)
        self.lr = cfg.lr

    def step(self, lr: float) -> None:
        if lr != self.lr:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.lr = lr
        self.optimizer.step()


# ---- reproduce: the manual backward's training against autograd's, in lockstep ---------------------

@dataclass(frozen=True)
class ReproduceResult:
    """Two trainings of one network from the same seed, step by step on the same minibatches with the
    same optimizer and schedule: one driven by the manual backward, one by autograd. At each logged
    step, each run's mean minibatch loss over the steps since the previous logged step."""

    net: str
    steps: list[int]  # the logged steps (optimizer steps done)
    manual: list[float]  # the training loop's step and optimizer (Network.train_step)
    autograd: list[float]  # Network.logits, F.cross_entropy, loss.backward(), the same torch optimizer
    rel_diff: list[float]  # |manual - autograd| / autograd at each logged step
    seconds: float  # wall time of both runs
    config: dict[str, Any] = field(default_factory=dict)  # the TrainConfig, as to_dict()

    @property
    def max_rel_diff(self) -> float:
        return max(self.rel_diff, default=math.nan)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "max_rel_diff": self.max_rel_diff}

    def __repr__(self) -> str:
        last = f", last losses {self.manual[-1]:.6f} / {self.autograd[-1]:.6f}" if self.steps else ""
        return (f"<ReproduceResult {self.net}: {len(self.steps)} logged steps up to {self.steps[-1] if self.steps else 0}, "
                f"max relative difference {self.max_rel_diff:.2e}{last}>")


def reproduce(cfg: TrainConfig | None = None, every: int | None = None,
              data: Dataset | str | Path | None = None) -> ReproduceResult:
    """Train `cfg` twice in lockstep and log both losses every `every` steps (default: the config's
    progress_every): the manual backward's training (the loop's own step and optimizer, in inference
    mode as the loop runs it) and autograd's (`Network.logits`, F.cross_entropy, loss.backward(),
    torch's optimizer on leaves). Same initial parameters (the config's generator), the same
    minibatch at every step (one draw feeds both), the same optimizer, groups and schedule: where
    the manual gradients are right, the two losses differ only by float rounding.
    Raises ConfigError / DataError for a bad config or data, ValueError for every < 1."""
    cfg = cfg or TrainConfig()
    every = cfg.progress_every if every is None else every
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    net, model_cfg = get_net(cfg.net), cfg.model_config()
    require_forward(net)
    dataset = dataset_for(cfg, data)
    t0 = time.perf_counter()
    with _threads(cfg.threads):
        g = generator(model_cfg)
        initial = net.init_params(model_cfg, dataset.vocab.size, g)
        manual = make_step(net, model_cfg, {k: v.clone() for k, v in initial.items()}, cfg.backward)
        manual_update = make_optimizer(cfg.optimizer, manual, net, cfg.lr, cfg.weight_decay).step
        leaves = {k: v.clone().requires_grad_(True) for k, v in initial.items()}
        autograd_update = _PlainSGD(leaves).step if cfg.optimizer == "sgd" else _AutogradAdamW(leaves, net, cfg).step
        plist = list(leaves.values())
        logged: list[int] = []
        losses: tuple[list[float], list[float]] = ([], [])
        total, count = 0.0, 0
        for step, (Xb, Yb) in enumerate(minibatches(net, model_cfg, dataset, g, cfg.steps), start=1):
            lr = cfg.lr_at(step - 1)
            with torch.inference_mode():
                manual.forward_backward(Xb, Yb)
                manual_update(lr)
            loss = F.cross_entropy(net.logits(model_cfg, leaves, Xb), Yb.view(-1))
            for p in plist:
                p.grad = None
            loss.backward()
            autograd_update(lr)
            total += loss.item()
            count += 1
            if step % every == 0 or step == cfg.steps:
                logged.append(step)
                losses[0].append(manual.take_loss())
                losses[1].append(total / count)
                total, count = 0.0, 0
    rel = [abs(m - a) / abs(a) for m, a in zip(*losses, strict=True)]
    return ReproduceResult(cfg.net, logged, losses[0], losses[1], rel, time.perf_counter() - t0, cfg.to_dict())
