"""The names a learner's code can see: forward values, parameters, data, and (per node) the true
gradients of everything between that node and the loss.

Tensors are copied on first read (`Scope.get`), so code that changes one in place (`h *= 0`,
`dC.index_add_(...)` on a given tensor) changes its own copy, never the run, and code that never
reads a big tensor never pays for copying it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ..tape import ALIASES, MLP_TAPE, PARAMS, graph_edges

if TYPE_CHECKING:
    from ..run import Run


class Scope:
    def __init__(self, base: Mapping[str, Any]) -> None:
        self._base = dict(base)  # read-only: the run's tensors, copied when first read
        self.vars: dict[str, Any] = {}
        self.assigned: dict[str, None] = {}  # names the program bound, in the order it first did

    def get(self, name: str) -> Any:
        if name in self.vars:
            return self.vars[name]
        value = self._base[name]  # KeyError: not defined
        if isinstance(value, torch.Tensor):
            value = value.clone()
        self.vars[name] = value
        return value

    def set(self, name: str, value: Any) -> None:
        self.vars[name] = value
        self.assigned.setdefault(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self.vars or name in self._base

    def names(self) -> list[str]:
        return sorted(set(self._base) | set(self.vars))


def gradient_names(node: str) -> tuple[str, ...]:
    """The names a learner may give d<node>: its own and the seed notebook's alias (dh, da)."""
    return (f"d{node}", *(f"d{alias}" for alias, target in ALIASES.items() if target == node))


def downstream(node: str) -> list[str]:
    """The nodes between `node` and the loss (the loss included), in forward order: the gradients
    the backward pass has finished before it reaches `node`."""
    children: dict[str, list[str]] = {}
    for src, dst in graph_edges():
        children.setdefault(src, []).append(dst)
    found: set[str] = set()
    stack = list(children.get(node, []))
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack.extend(children.get(name, []))
    return [step.out for step in MLP_TAPE if step.out in found]


def forward_names(run: Run) -> dict[str, Any]:
    """What every program sees: forward values, parameters, Xb, Yb, n, sizes, the seed's aliases."""
    names: dict[str, Any] = {name: run.values[name] for name in (*PARAMS, *(s.out for s in MLP_TAPE))}
    names.update({alias: run.values[target] for alias, target in ALIASES.items()})
    names.update(Xb=run.values["Xb"], Yb=run.values["Yb"], n=int(run.values["n"]))
    cfg = run.config
    names.update(batch_size=cfg.batch_size, block_size=cfg.block_size, n_embd=cfg.n_embd, n_hidden=cfg.n_hidden,
                 vocab_size=run.data.vocab.size)
    return names


def true_gradients(run: Run, node: str) -> dict[str, torch.Tensor]:
    """d<name> (and aliases) holding autograd's gradient, for every node downstream of `node`."""
    grads: dict[str, torch.Tensor] = {}
    for name in downstream(node):
        if name in run.autograd:
            for dname in gradient_names(name):
                grads[dname] = run.autograd[name]
    return grads


def node_scope(run: Run, node: str, without: frozenset[str] = frozenset()) -> Scope:
    """For practising one node: forward values plus the true gradients it is allowed to use
    (except the names in `without`, which the learner's own code defines)."""
    given = {name: grad for name, grad in true_gradients(run, node).items() if name not in without}
    return Scope({**forward_names(run), **given})


def cell_scope(run: Run) -> Scope:
    """For a whole exercise cell: forward values only; every gradient is the learner's own."""
    return Scope(forward_names(run))
