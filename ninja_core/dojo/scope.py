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

from ..config import SIZE_FIELDS

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


def forward_names(run: Run) -> dict[str, Any]:
    """What every program sees: forward values, parameters, the minibatch, the network's constants
    (n, ...) and sizes, the vocabulary size, and the aliases (the seed notebook's names)."""
    tape = run.tape
    names: dict[str, Any] = {name: run.values[name] for name in (*tape.params, *(s.out for s in tape.steps))}
    names.update({alias: run.values[target] for alias, target in tape.aliases.items()})
    names.update({name: run.values[name] for name in tape.data})
    names.update(run.constants)
    sizes = {k: v for k, v in run.config.to_dict().items() if k in SIZE_FIELDS}
    names.update(sizes, vocab_size=run.data.vocab.size)
    return names


def true_gradients(run: Run, node: str) -> dict[str, torch.Tensor]:
    """d<name> (and aliases) holding autograd's gradient, for every node downstream of `node`."""
    grads: dict[str, torch.Tensor] = {}
    for name in run.tape.downstream(node):
        if name in run.autograd:
            for dname in run.tape.gradient_names(name):
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
