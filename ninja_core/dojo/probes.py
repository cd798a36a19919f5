"""Other runs of the same network a learner's code is judged on as well: a few more minibatches, and
the same values in float64.

- `other_batches(run)`: the same network and sizes drawn from other seeds (parameters and minibatch),
  so an answer that only holds on this batch is caught: `F.one_hot(Xb)` without `num_classes` is
  right exactly when this batch happens to contain the last letter.
- `twin64(run)`: the run's own parameters and minibatch in float64, so an `approx` answer can be
  rerun there: if it then agrees with float64 autograd, the formula is right and float32 only rounds.

Only forward values and autograd's gradients are computed (what judging needs), and they are
cached: a server judging many answers for one run pays for them once.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

import torch

from ..backward import autograd_grads, deterministic, forward
from ..nets import generator

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from ..run import Run

PROBE_SEEDS = 3  # minibatches besides the run's own
# Above this many cells in the largest activation (net.cells: batch x hidden for the MLP) the other
# minibatches are not drawn: three more copies of every activation and gradient would cost more
# memory and time than a check should. At the defaults (MLP 2 048, WaveNet 16 384) they always are.
PROBE_CELLS = 1 << 17
TWIN_CELLS = 1 << 19  # the float64 twin: every activation and gradient again, at twice the bytes
CACHED = 4  # runs whose other minibatches are kept
CACHED_TWINS = 2

_lock = threading.Lock()
_batches: OrderedDict[tuple[object, ...], list[Run]] = OrderedDict()
_twins: dict[int, tuple[weakref.ref[Run], Run]] = {}


def probe_seeds(cfg: Config) -> list[int]:
    """The seeds of the other minibatches: the next ones after the run's own."""
    return [(cfg.seed + k) % 2**63 for k in range(1, PROBE_SEEDS + 1)]


def light_run(run: Run, cfg: Config, params: dict[str, torch.Tensor], Xb: torch.Tensor, Yb: torch.Tensor) -> Run:
    """A Run holding forward values and autograd's gradients only (no manual backward, no table)."""
    from ..run import Run  # imported here: run.py imports the dojo's users, not the other way round

    tape = run.tape
    for p in params.values():
        p.requires_grad_(True)
    constants = run.net.constants(cfg, Xb)
    with deterministic():
        values = forward(tape, params, Xb, Yb, constants)
        values[tape.loss].backward()
    reference = autograd_grads(tape, values)
    detached = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in values.items()}
    return Run(cfg, run.net, tape, run.data, detached, reference, {}, {}, constants=constants)


def _draw(run: Run, seed: int) -> Run:
    cfg = run.config.replace(seed=seed)
    g = generator(cfg)
    data: Dataset = run.data
    params = run.net.init_params(cfg, data.vocab.size, g)  # drawn first, so the batch is the seed's own
    if cfg.train_steps > 0:  # a trained network: keep its weights, only the minibatch changes
        params = {p: run.values[p].detach().clone() for p in run.tape.params}
    Xb, Yb = run.net.batch(cfg, data, g)
    return light_run(run, cfg, params, Xb, Yb)


def other_batches(run: Run) -> list[Run]:
    """The run's network on PROBE_SEEDS other seeds (same sizes), or [] when the run is too large."""
    if run.net.cells(run.config) > PROBE_CELLS:
        return []
    key = (run.config, str(run.data.path), run.data.vocab.chars,
           tuple(id(run.values[p]) for p in run.tape.params) if run.config.train_steps else ())
    with _lock:
        if key in _batches:
            _batches.move_to_end(key)
            return _batches[key]
    probes = [_draw(run, seed) for seed in probe_seeds(run.config)]
    with _lock:
        _batches[key] = probes
        while len(_batches) > CACHED:
            _batches.popitem(last=False)
    return probes


def twin64(run: Run) -> Run | None:
    """The run's own parameters and minibatch, in float64 (the run itself when it is float64), or
    None when the run is too large to hold twice (TWIN_CELLS)."""
    if run.config.dtype == "float64":
        return run
    if run.net.cells(run.config) > TWIN_CELLS:
        return None
    with _lock:
        found = _twins.get(id(run))
        if found is not None and found[0]() is run:
            return found[1]
    params = {p: run.values[p].detach().to(torch.float64).clone() for p in run.tape.params}
    twin = light_run(run, run.config.replace(dtype="float64"), params, run.values["Xb"], run.values["Yb"])
    with _lock:
        _twins[id(run)] = (weakref.ref(run), twin)
        for key in [k for k, (ref, _) in _twins.items() if ref() is None]:
            del _twins[key]
        while len(_twins) > CACHED_TWINS:
            del _twins[next(iter(_twins))]
    return twin
