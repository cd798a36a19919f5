"""Forward along the tape; backward by hand in reverse, end-to-end and node by node (local)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .tape import FUSED_BLOCKS, MLP_TAPE, PARAMS, FusedBlock, Step, Values, consumers

Grads = dict[str, torch.Tensor]

_deterministic_lock = threading.Lock()
_deterministic_users = 0
_deterministic_saved = (False, False)


@contextmanager
def deterministic() -> Iterator[None]:
    """Run autograd on its deterministic kernels, and restore the caller's setting afterwards.

    Why: with more than one thread, autograd's float32 backward of `C[Xb]` accumulates a large
    gradient (>= 32 768 elements) with parallel atomic adds, in an order that changes from run
    to run. The reference must be reproducible, and the serial order is the one a hand-written
    index_add_ follows. Nested and concurrent users share one switch (counted under a lock).
    """
    global _deterministic_users, _deterministic_saved
    with _deterministic_lock:
        if _deterministic_users == 0:
            _deterministic_saved = (torch.are_deterministic_algorithms_enabled(),
                                    torch.is_deterministic_algorithms_warn_only_enabled())
            torch.use_deterministic_algorithms(True, warn_only=True)
        _deterministic_users += 1
    try:
        yield
    finally:
        with _deterministic_lock:
            _deterministic_users -= 1
            if _deterministic_users == 0:
                torch.use_deterministic_algorithms(_deterministic_saved[0], warn_only=_deterministic_saved[1])


def forward(params: dict[str, torch.Tensor], Xb: torch.Tensor, Yb: torch.Tensor,
            tape: tuple[Step, ...] = MLP_TAPE) -> Values:
    """Run the tape; return every node's value. Under autograd, each intermediate keeps its
    gradient (retain_grad) as it is made, so no node can be forgotten (the seed forgot bnvar)."""
    values: Values = {"n": Xb.shape[0], "Xb": Xb, "Yb": Yb, **params}
    for step in tape:
        out = step.run(values)
        if out.requires_grad:
            out.retain_grad()
        values[step.out] = out
    return values


def _blocks(variant: str) -> dict[str, FusedBlock]:
    """The fused blocks active in a variant, keyed by the node whose gradient they produce."""
    return {b.wrt: b for b in FUSED_BLOCKS} if variant == "fused" else {}


def manual_backward(values: Values, variant: str = "chain", tape: tuple[Step, ...] = MLP_TAPE) -> Grads:
    """The hand-written backward pass: walk the tape in reverse, accumulating (+=) where a node
    feeds several steps. In `fused`, the gradient entering logits and hprebn comes from the
    one-step formulas; the nodes inside the blocks are still computed by the chain (so the page
    can show them), but their branches no longer reach the block's input."""
    blocks = _blocks(variant)
    inner = {name: b for b in blocks.values() for name in b.inner}
    with torch.no_grad():
        grads: Grads = {tape[-1].out: torch.ones_like(values[tape[-1].out])}  # dloss = 1
        for step in reversed(tape):
            if step.out in blocks:
                block = blocks[step.out]
                grads[step.out] = block.compute(values, grads[block.out])
            d_out = grads[step.out]
            for grad in step.grads:
                if grad.wrt in blocks and step.out in inner:
                    continue  # this branch is replaced by the fused formula
                contribution = grad.compute(values, d_out)
                if grad.wrt in grads:
                    grads[grad.wrt] = grads[grad.wrt] + contribution
                else:
                    grads[grad.wrt] = contribution
    return grads


def local_backward(values: Values, reference: Grads, variant: str = "chain", manual: Grads | None = None,
                   tape: tuple[Step, ...] = MLP_TAPE) -> Grads:
    """Each node's own backward step fed with autograd's upstream gradients. A node whose local
    result matches while its end-to-end result does not is right; the error came from upstream.

    With `manual` given, a node whose upstream gradients all equal autograd's bit for bit reuses
    its manual gradient (the same object): the same formula on the same inputs gives the same bits,
    so recomputing it would only cost time (half of a large check, when everything is exact).
    """
    blocks = _blocks(variant)
    local: Grads = {}
    equal: dict[str, bool] = {}

    def upstream_exact(names: list[str]) -> bool:
        if manual is None:
            return False
        for name in names:
            if name not in equal:
                m, r = manual.get(name), reference.get(name)
                equal[name] = m is not None and r is not None and m.shape == r.shape and bool(torch.equal(m, r))
            if not equal[name]:
                return False
        return True

    with torch.no_grad():
        for name, branches in consumers(tape).items():
            upstream = [blocks[name].out] if name in blocks else [step.out for step, _ in branches]
            if manual is not None and name in manual and upstream_exact(upstream):
                local[name] = manual[name]
                continue
            if name in blocks:
                block = blocks[name]
                local[name] = block.compute(values, reference[block.out])
                continue
            total: torch.Tensor | None = None
            for step, grad in branches:
                d_out = reference.get(step.out)
                if d_out is None:
                    break
                contribution = grad.compute(values, d_out)
                total = contribution if total is None else total + contribution
            else:
                if total is not None:
                    local[name] = total
    return local


def autograd_grads(values: Values, tape: tuple[Step, ...] = MLP_TAPE) -> Grads:
    """Autograd's gradient of every node that has one (after loss.backward())."""
    grads: Grads = {tape[-1].out: torch.ones_like(values[tape[-1].out])}
    for name in [s.out for s in tape] + list(PARAMS):
        grad = values[name].grad
        if grad is not None:
            grads[name] = grad
    return grads


def both_passes(params: dict[str, torch.Tensor], Xb: torch.Tensor, Yb: torch.Tensor,
                variant: str = "chain") -> tuple[Values, Grads, Grads]:
    """Forward with autograd, loss.backward(), then the manual backward on the same values:
    (detached values, autograd's gradients, manual gradients). `params` get requires_grad."""
    for p in params.values():
        p.requires_grad_(True)
    with deterministic():
        values = forward(params, Xb, Yb)
        values["loss"].backward()
    reference = autograd_grads(values)
    detached: Values = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in values.items()}
    return detached, reference, manual_backward(detached, variant)
