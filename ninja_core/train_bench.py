"""Speed of SGD with autograd vs with the ninja's manual backward: same model, data, seed, process.

The autograd baseline is what a plain training loop does: the same forward as the manual step
(DESIGN.md's, batch statistics as sum-then-scale), `F.cross_entropy`, `loss.backward()` and the
update `p += -lr * p.grad` per parameter. (The lecture's own forward computes the batch variance
with `hprebn.var(0)`, which takes ~50 us on (32, 200) on this CPU, a sixth of the whole step; the
baseline avoids it, so the ratio is not flattered by it.)

Each contender runs `steps` timed steps per round after a short warm-up, from the same initial
parameters and the same minibatches, rounds interleaved; the best round of each counts (timeit's
rule: the least disturbed run is the closest to the code's own speed on a shared machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .data import Dataset
from .nets import generator
from .nets.mlp import NET as MLP_NET
from .train import resolve_dataset
from .train_config import TrainConfig
from .train_step import BatchSampler, FastStep, ReferenceStep, Stepper

WARMUP_STEPS = 100

PARAMS: tuple[str, ...] = MLP_NET.build_tape(()).params  # C, W1, b1, W2, b2, bngain, bnbias


@dataclass(frozen=True)
class BenchResult:
    autograd_steps_per_s: float  # plain autograd SGD
    manual_steps_per_s: float  # the project's SGD: FastStep, the manual fused backward
    ratio: float  # manual / autograd
    reference_steps_per_s: float  # the readable manual step (reference_grads), for comparison
    steps: int  # timed steps per contender and round
    rounds: int
    threads: int  # torch threads during the benchmark
    batch_size: int
    n_hidden: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def autograd_sgd_step(params: list[torch.Tensor], Xb: torch.Tensor, Yb: torch.Tensor, lr: float) -> None:
    """One SGD step the ordinary way: forward, loss.backward(), update. `params` require grad."""
    C, W1, b1, W2, b2, bngain, bnbias = params
    n = Xb.shape[0]
    emb = C[Xb]  # (B, T, E)
    embcat = emb.view(emb.shape[0], -1)  # (B, T*E)
    hprebn = embcat @ W1 + b1  # (B, H)
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)  # (1, H)
    bndiff = hprebn - bnmeani
    bnvar = 1 / (n - 1) * (bndiff**2).sum(0, keepdim=True)  # (1, H) Bessel's n-1
    bnraw = bndiff * (bnvar + 1e-5) ** -0.5
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2  # (B, V)
    loss = F.cross_entropy(logits, Yb)
    for p in params:
        p.grad = None
    loss.backward()
    with torch.no_grad():
        for p in params:
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


def bench(cfg: TrainConfig | None = None, steps: int = 2000, rounds: int = 3,
          data: Dataset | str | Path | None = None) -> BenchResult:
    """Steps per second of autograd SGD, the manual FastStep and the readable reference step."""
    cfg = cfg or TrainConfig()
    if steps < 1 or rounds < 1:
        raise ValueError(f"steps and rounds must be at least 1, got {steps} and {rounds}")
    dataset = resolve_dataset(data if data is not None else cfg.data, cfg.block_size)
    model_cfg = cfg.model_config()
    g = generator(model_cfg)
    initial = MLP_NET.init_params(model_cfg, dataset.vocab.size, g)
    batch_state = g.get_state()  # every contender draws the same minibatches after the same parameters

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g2 = torch.Generator().set_state(batch_state)
        return iter(BatchSampler(dataset.Xtr, dataset.Ytr, cfg.batch_size, g2, WARMUP_STEPS + steps))

    def timed(run_step: Callable[[torch.Tensor, torch.Tensor], None]) -> float:
        it = batches()
        for _ in range(WARMUP_STEPS):
            run_step(*next(it))
        t0 = time.perf_counter()
        for Xb, Yb in it:
            run_step(Xb, Yb)
        return steps / (time.perf_counter() - t0)

    def run_autograd() -> float:
        params = [initial[name].clone().requires_grad_(True) for name in PARAMS]
        return timed(lambda Xb, Yb: autograd_sgd_step(params, Xb, Yb, cfg.lr))

    def run_manual(make: Callable[[dict[str, torch.Tensor]], Stepper]) -> float:
        stepper = make({name: t.clone() for name, t in initial.items()})
        with torch.no_grad():
            return timed(lambda Xb, Yb: stepper(Xb, Yb, cfg.lr))

    best = {"autograd": 0.0, "manual": 0.0, "reference": 0.0}
    with _threads(cfg.threads):
        for _ in range(rounds):
            best["autograd"] = max(best["autograd"], run_autograd())
            best["manual"] = max(best["manual"], run_manual(lambda p: FastStep(p, cfg.batch_size)))
            best["reference"] = max(best["reference"], run_manual(ReferenceStep))
        threads = torch.get_num_threads()
    return BenchResult(best["autograd"], best["manual"], best["manual"] / best["autograd"], best["reference"],
                       steps, rounds, threads, cfg.batch_size, cfg.n_hidden)
