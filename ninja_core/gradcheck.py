"""Finite differences in float64: a third opinion on the parameters' gradients, beside autograd.

Central differences of fourth order on a few sampled entries of each parameter:
    dL/dp ≈ (-L(p+2h) + 8 L(p+h) - 8 L(p-h) + L(p-2h)) / 12h
h = 3e-3 balances the truncation error (~h⁴) against rounding (~1e-16 · L / h): measured over
several configs, the worst relative error was ~3e-10 for the parameters with a real gradient
and ~1e-7 for b1, whose gradient is zero in exact arithmetic. A network whose loss bends on a
smaller scale sets its own step (`Network.fd_step`; the GPT's, with the reason, in nets/gpt.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .backward import both_passes, forward

if TYPE_CHECKING:
    from .run import Run

STEP = 3e-3  # the default `Network.fd_step`
# A gradient that is zero in exact arithmetic (b1: batchnorm subtracts the mean, so b1 cancels)
# is noise over noise in a plain relative error; below this norm a gradient counts as zero.
ZERO_FLOOR = 1e-6


@dataclass(frozen=True)
class FiniteDifference:
    name: str
    entries: list[tuple[int, ...]]  # the sampled indices
    numeric: list[float]  # finite-difference estimates
    autograd: list[float]  # float64 autograd at the same entries
    manual: list[float]  # the float64 manual backward at the same entries
    relerr: float  # ||numeric - autograd|| / max(||numeric||, ||autograd||, ZERO_FLOOR)
    relerr_manual: float  # the same for the manual backward

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "entries": [list(e) for e in self.entries], "numeric": self.numeric,
                "autograd": self.autograd, "manual": self.manual, "relerr": self.relerr,
                "relerr_manual": self.relerr_manual}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = max(torch.linalg.vector_norm(a).item(), torch.linalg.vector_norm(b).item(), ZERO_FLOOR)
    return torch.linalg.vector_norm(a - b).item() / scale


def _sample_entries(shape: tuple[int, ...], reference: torch.Tensor, k: int,
                    g: torch.Generator) -> list[tuple[int, ...]]:
    """`k` entries to perturb. An embedding table's rows that the minibatch never looks up have a
    gradient of exactly zero: for a 2-D parameter with such rows, sample among the used rows."""
    numel = reference.numel()
    if reference.dim() == 2:
        used = reference.ne(0).any(1)
        if 0 < int(used.sum()) < shape[0]:
            rows = used.nonzero().flatten().cpu()
            picks = rows[torch.randint(0, rows.numel(), (k,), generator=g)]
            cols = torch.randint(0, shape[1], (k,), generator=g)
            return [(int(r), int(c)) for r, c in zip(picks, cols, strict=True)]
    flat = torch.randperm(numel, generator=g)[: min(k, numel)]
    return [tuple(int(i) for i in torch.unravel_index(f, shape)) for f in flat]


def finite_differences(run: Run, entries: int = 6) -> dict[str, FiniteDifference]:
    """Check every parameter of `run` at `entries` sampled entries, in float64."""
    tape = run.tape
    params = {p: run.values[p].detach().double().clone() for p in tape.params}
    Xb, Yb = run.values["Xb"], run.values["Yb"]
    _, reference, manual = both_passes(tape, params, Xb, Yb, run.constants, run.config.variant)

    def loss_at(name: str, index: tuple[int, ...], delta: float) -> float:
        p = params[name]
        with torch.no_grad():
            old = p[index].item()
            p[index] = old + delta
            loss = forward(tape, params, Xb, Yb, run.constants)[tape.loss].item()
            p[index] = old
        return loss

    g = torch.Generator().manual_seed(run.config.seed)
    h = run.net.fd_step
    results: dict[str, FiniteDifference] = {}
    for name in tape.params:
        picks = _sample_entries(tuple(params[name].shape), reference[name], entries, g)
        numeric = [
            (-loss_at(name, ix, 2 * h) + 8 * loss_at(name, ix, h)
             - 8 * loss_at(name, ix, -h) + loss_at(name, ix, -2 * h)) / (12 * h)
            for ix in picks
        ]
        ag = [reference[name][ix].item() for ix in picks]
        man = [manual[name][ix].item() for ix in picks]
        num_t = torch.tensor(numeric, dtype=torch.float64)
        results[name] = FiniteDifference(name, picks, numeric, ag, man,
                                         _rel(num_t, torch.tensor(ag, dtype=torch.float64)),
                                         _rel(num_t, torch.tensor(man, dtype=torch.float64)))
    return results
