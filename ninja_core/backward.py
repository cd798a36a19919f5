"""Forward along a tape; backward by hand in reverse, end-to-end and node by node (local). Generic:
every function takes the network's `Tape`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from .tape import Tape, Values

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


def forward(tape: Tape, params: dict[str, torch.Tensor], Xb: torch.Tensor, Yb: torch.Tensor,
            constants: dict[str, Any]) -> Values:
    """Run the tape; return every node's value. Under autograd, each intermediate keeps its
    gradient (retain_grad) as it is made, so no node can be forgotten (the seed forgot bnvar).
    `constants` are the network's numbers the formulas use (`n`, ...: `Network.constants`)."""
    values: Values = {**constants, "Xb": Xb, "Yb": Yb, **params}
    for step in tape.steps:
        out = step.run(values)
        if out.requires_grad:
            out.retain_grad()
        values[step.out] = out
    return values


def manual_backward(tape: Tape, values: Values, variant: str = "chain") -> Grads:
    """The hand-written backward pass: walk the tape in reverse, accumulating (+=) where a node
    feeds several steps. In `fused`, the gradient entering a fused block's input comes from its
    one-step formula; the nodes inside the block are still computed by the chain (so the page
    can show them), but their branches no longer reach the block's input."""
    blocks = tape.blocks(variant)
    with torch.no_grad():
        grads: Grads = {tape.loss: torch.ones_like(values[tape.loss])}  # dloss = 1
        for step in reversed(tape.steps):
            if step.out in blocks:  # every other branch to this node is done: the block's formula adds last
                own = blocks[step.out]
                fused = own.compute(values, grads[own.out])
                grads[step.out] = grads[step.out] + fused if step.out in grads else fused
            d_out = grads[step.out]
            for grad in step.grads:
                block = blocks.get(grad.wrt)
                if block is not None and block.replaces(step.out):
                    continue  # this branch is replaced by the fused formula
                contribution = grad.compute(values, d_out)
                if grad.wrt in grads:
                    grads[grad.wrt] = grads[grad.wrt] + contribution
                else:
                    grads[grad.wrt] = contribution
    return grads


def local_backward(tape: Tape, values: Values, reference: Grads, variant: str = "chain",
                   manual: Grads | None = None) -> Grads:
    """Each node's own backward step fed with autograd's upstream gradients. A node whose local
    result matches while its end-to-end result does not is right; the error came from upstream.

    With `manual` given, a node whose upstream gradients all equal autograd's bit for bit reuses
    its manual gradient (the same object): the same formula on the same inputs gives the same bits,
    so recomputing it would only cost time (half of a large check, when everything is exact).
    """
    blocks = tape.blocks(variant)
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
        for name in tape.consumers:
            block = blocks.get(name)
            branches = tape.branches(name, variant)  # without those the block replaces
            upstream = [step.out for step, _ in branches] + ([block.out] if block is not None else [])
            if manual is not None and name in manual and upstream_exact(upstream):
                local[name] = manual[name]
                continue
            if any(reference.get(u) is None for u in upstream):
                continue
            total: torch.Tensor | None = None
            for step, grad in branches:  # in the order manual_backward adds them: the block last
                contribution = grad.compute(values, reference[step.out])
                total = contribution if total is None else total + contribution
            if block is not None:
                contribution = block.compute(values, reference[block.out])
                total = contribution if total is None else total + contribution
            if total is not None:
                local[name] = total
    return local


def autograd_grads(tape: Tape, values: Values) -> Grads:
    """Autograd's gradient of every node that has one (after loss.backward())."""
    grads: Grads = {tape.loss: torch.ones_like(values[tape.loss])}
    for name in [s.out for s in tape.steps] + list(tape.params):
        grad = values[name].grad
        if grad is not None:
            grads[name] = grad
    return grads


def both_passes(tape: Tape, params: dict[str, torch.Tensor], Xb: torch.Tensor, Yb: torch.Tensor,
                constants: dict[str, Any], variant: str = "chain") -> tuple[Values, Grads, Grads]:
    """Forward with autograd, loss.backward(), then the manual backward on the same values:
    (detached values, autograd's gradients, manual gradients). `params` get requires_grad."""
    for p in params.values():
        p.requires_grad_(True)
    with deterministic():
        values = forward(tape, params, Xb, Yb, constants)
        values[tape.loss].backward()
    reference = autograd_grads(tape, values)
    detached: Values = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in values.items()}
    return detached, reference, manual_backward(tape, detached, variant)
