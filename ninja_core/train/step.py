"""The pieces of one optimizer step: minibatches, the manual-backward step, the update.

Generic: the network supplies its fast step (`Network.train_step`, in `nets/<name>_train.py`);
`TapeStep` runs the tape's fused manual backward for any network (the readable reference, and the
fallback for a network without a fast step). The optimizers update the step's parameters from its
hand-written gradients: SGD as one `add_` over the flat buffer, AdamW through `torch.optim.AdamW`
(torch applies the update; the gradients it reads are the manual ones).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch

from ..backward import forward, manual_backward
from ..config import Config
from ..data import Dataset
from ..nets import Network
from ..nets.shared_train import FlatBuffers, Params, TrainStep


class BatchSampler:
    """Minibatches exactly as the lecture draws them, `torch.randint(0, N, (n,), generator=g)` once a
    step, but drawn for many steps at a time: the CPU generator hands out the same numbers in the
    same order either way (a test holds it to that), and one draw + one gather for ~1 000 steps
    saves a few microseconds a step. Draws only as many steps as it was asked for in total.
    Yields views of the chunk: (Xb (B, T), Yb (B,)), or with flat=True (Xb.view(-1) (B*T,),
    Yb.view(-1, 1) (B, 1)), the shapes the fast steps index with (two view calls a step fewer)."""

    CHUNK_ROWS = 32_768  # rows gathered per draw: 1 024 steps at batch 32, bounded memory at batch 4 096

    def __init__(self, X: torch.Tensor, Y: torch.Tensor, batch_size: int, g: torch.Generator, steps: int,
                 flat: bool = False) -> None:
        self.X, self.Y, self.n, self.g, self.flat = X, Y, batch_size, g, flat
        self.remaining = steps
        self.per_chunk = max(1, self.CHUNK_ROWS // batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, T = self.n, self.X.shape[1]
        x_shape, y_shape = ((n * T,), (n, 1)) if self.flat else ((n, T), (n,))
        while self.remaining > 0:
            k = min(self.per_chunk, self.remaining)
            ix = torch.randint(0, self.X.shape[0], (k * n,), generator=self.g)  # (k*B,)
            Xc = self.X.index_select(0, ix).view(k, *x_shape).unbind(0)  # k views, made in one call
            Yc = self.Y.index_select(0, ix).view(k, *y_shape).unbind(0)
            self.remaining -= k
            yield from zip(Xc, Yc, strict=True)


def minibatches(net: Network, cfg: Config, data: Dataset, g: torch.Generator, steps: int,
                flat: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`steps` minibatches drawn the network's way from `g`: `BatchSampler` (the same numbers as
    `Network.batch`, drawn in chunks) unless the network draws its own (`batch` overridden, as the
    GPT's windows of the text stream do), then one `net.batch` call per step, in its shapes."""
    if type(net).batch is Network.batch:
        yield from BatchSampler(data.Xtr, data.Ytr, cfg.batch_size, g, steps, flat)
        return
    for _ in range(steps):
        yield net.batch(cfg, data, g)


class TapeStep(TrainStep):
    """The tape's fused manual backward (`backward.manual_backward(tape, values, "fused")`) behind
    the TrainStep interface: every network has it; ~3-10x slower than a network's fast step."""

    def __init__(self, net: Network, cfg: Config, params: Params) -> None:
        self.net, self.cfg, self.tape = net, cfg, net.tape(cfg)
        names = self.tape.params
        first = params[names[0]]
        flat = FlatBuffers([tuple(params[name].shape) for name in names], first.dtype, first.device)
        self.flat_params, self.flat_grads = flat.params, flat.grads
        self.params, self.grads = {}, {}
        for i, name in enumerate(names):
            self.params[name], self.grads[name] = flat.views(i)
            self.params[name].copy_(params[name])
        self._sum = 0.0
        self._count = 0
        self._activations: Params = {}

    def forward_backward(self, Xb: torch.Tensor, Yb: torch.Tensor) -> None:
        Xb, Yb = Xb.view(self.cfg.batch_size, -1), Yb.view(-1)  # (B, T), (B,) also from flat batches
        with torch.no_grad():
            values = forward(self.tape, self.params, Xb, Yb, self.net.constants(self.cfg, Xb))
            grads = manual_backward(self.tape, values, "fused")
            for name, grad in self.grads.items():
                grad.copy_(grads[name])
        self._sum += float(values[self.tape.loss])
        self._count += 1
        self._activations = {name: values[name] for name in self.net.tanh_nodes(self.cfg)}

    def activations(self) -> Params:
        return self._activations

    def take_loss(self) -> float:
        mean = self._sum / self._count if self._count else float("nan")
        self._sum, self._count = 0.0, 0
        return mean


def make_step(net: Network, cfg: Config, params: Params, backward: str) -> TrainStep:
    """The network's fast step, or the tape's (backward "reference", or a network without a fast one)."""
    step = net.train_step(cfg, params) if backward == "fast" else None
    return step if step is not None else TapeStep(net, cfg, params)


class Optimizer(Protocol):
    def step(self, lr: float) -> None:
        """Update the parameters from the gradients of the last minibatch, with learning rate lr."""
        ...


class SGD:
    """The lecture's `p.data += -lr * p.grad` for every parameter at once, on the flat buffers
    (padding included: its gradient is always 0)."""

    def __init__(self, step: TrainStep) -> None:
        self.params, self.grads = step.flat_params, step.flat_grads

    def step(self, lr: float) -> None:
        self.params.add_(self.grads, alpha=-lr)


class AdamW:
    """torch.optim.AdamW on the step's parameters, reading the hand-written gradients. Weight decay on
    the parameters `Network.decays` names (the matrices), none on the rest.

    AdamW is elementwise, so it may run on any grouping of the entries: parameters that lie one
    after the other in the flat buffer and agree on weight decay are handed to it as one slice of
    the buffer, with the same slice of the gradient buffer as its `.grad`, and updated by the fused
    kernel (one kernel per tensor): a step that lays its decayed and undecayed parameters in two
    runs, as the GPT's does, is updated as two tensors (measured ~60 us a step for the GPT's 103k
    parameters, against ~135 us for its 28 tensors fused and ~380 us with foreach). A parameter
    that is not a contiguous piece of the buffer (the MLP's padded output layer) is its own tensor,
    updated with foreach: torch 2.13's fused CPU AdamW updates a non-contiguous tensor as if it were
    contiguous (measured: it wrote the wrong entries of a (4, 6) buffer through a (3, 4) view)."""

    def __init__(self, step: TrainStep, net: Network, lr: float, weight_decay: float, betas: tuple[float, float]) -> None:
        self.optimizers: list[torch.optim.Optimizer] = []
        runs, single = _runs(step, net)
        for tensors, kind in ((runs, {"fused": True}), (single, {"foreach": True})):
            groups: list[dict[str, Any]] = [{"params": [t for t, d in tensors if d], "weight_decay": weight_decay},
                                            {"params": [t for t, d in tensors if not d], "weight_decay": 0.0}]
            groups = [g for g in groups if g["params"]]
            if groups:
                self.optimizers.append(torch.optim.AdamW(groups, lr=lr, betas=betas, **kind))
        self.lr = lr

    def step(self, lr: float) -> None:
        if lr != self.lr:
            for optimizer in self.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = lr
            self.lr = lr
        for optimizer in self.optimizers:
            optimizer.step()


def _runs(step: TrainStep, net: Network) -> tuple[list[tuple[torch.Tensor, bool]], list[tuple[torch.Tensor, bool]]]:
    """The step's parameters as (tensor with its .grad set, decays): the maximal runs of contiguous
    parameters that follow each other in the flat buffer and agree on decay, as contiguous slices of
    it; and every other parameter as itself."""
    flat, flat_grads = step.flat_params, step.flat_grads
    base, grad_base = int(flat.storage_offset()), int(flat_grads.storage_offset())
    pieces: list[tuple[int, int, bool]] = []  # (start, end, decays) within the flat buffer
    single: list[tuple[torch.Tensor, bool]] = []
    for name, p in step.params.items():
        g, decays = step.grads[name], net.decays(name, tuple(p.shape))
        start = int(p.storage_offset()) - base
        if (p.is_contiguous() and g.is_contiguous() and p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
                and g.untyped_storage().data_ptr() == flat_grads.untyped_storage().data_ptr()
                and g.storage_offset() - grad_base == start):
            pieces.append((start, start + int(p.numel()), decays))
        else:
            p.grad = g
            single.append((p, decays))
    merged: list[tuple[int, int, bool]] = []
    for start, end, decays in sorted(pieces):
        if merged and merged[-1][1] == start and merged[-1][2] == decays:
            merged[-1] = (merged[-1][0], end, decays)
        else:
            merged.append((start, end, decays))
    runs: list[tuple[torch.Tensor, bool]] = []
    for start, end, decays in merged:
        tensor = flat[start:end]
        tensor.grad = flat_grads[start:end]
        runs.append((tensor, decays))
    return runs, single


def make_optimizer(name: str, step: TrainStep, net: Network, lr: float, weight_decay: float) -> Optimizer:
    if name == "adamw":
        return AdamW(step, net, lr, weight_decay, net.recipe.betas)
    return SGD(step)
