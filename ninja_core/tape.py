"""The forward pass as a tape of steps, each with its local backward beside it (generic).

A `Step` is one forward line (`out = <forward>`) and, for each input it reads, a `Grad`:
the formula a person writes in the lecture's notebook and the code that computes it, side
by side (the way micrograd keeps an op's derivative next to the op). Where the computed
form differs from the formula's text -- to follow autograd's order of floating-point
operations, so float32 agrees bit for bit -- the `note` says how and why.

A formula is Python that assigns `d<input>`: `=` for the first branch that reaches the
input in backward order, `+=` for the next. It only uses names from the forward pass, the
network's constants (`n`, ...), `Xb`, `Yb`, `torch`, `F` and upstream gradients, so the dojo
can run it (a test checks that every one of them passes there).

A `Tape` is one network's whole forward pass (built by the network for a config, see
`ninja_core.nets`): its steps, its parameters, its fused blocks -- one-step backward formulas
that replace a span of the chain (the lecture's exercises 2 and 3) -- and its aliases. Every
walk over a tape below is generic: none of it names a node of any network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

Values = dict[str, Any]  # node name -> tensor, plus the network's constants ("n", ...) and "Xb", "Yb"
GradFn = Callable[[Values, torch.Tensor], torch.Tensor]  # (values, d<out>) -> contribution to d<input>
VARIANTS: tuple[str, ...] = ("chain", "fused")


@dataclass(frozen=True)
class Grad:
    wrt: str  # the input this branch sends gradient to
    formula: str  # the line(s) a learner writes for this branch
    compute: GradFn  # the same derivative as code: (values, d<out>) -> contribution
    note: str = ""  # where `compute` differs from `formula` in the order of operations, and why


@dataclass(frozen=True)
class Step:
    out: str  # the node this step produces
    forward: str  # its forward line, as in the lecture
    run: Callable[[Values], torch.Tensor]  # the forward line as code
    grads: tuple[Grad, ...]  # local backward, one entry per input that needs a gradient
    reads: tuple[str, ...] = ()  # inputs that carry no gradient (Xb, Yb): edges of the graph only

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(g.wrt for g in self.grads)


@dataclass(frozen=True)
class FusedBlock:
    """One backward formula for a span of steps (lecture exercises 2 and 3, llm.c's layer backwards)."""

    name: str
    out: str  # the node whose gradient enters the block
    wrt: str  # the node whose gradient the block produces in one step
    inner: tuple[str, ...]  # the nodes the block skips over
    formula: str
    compute: GradFn  # (values, d<out>) -> d<wrt>
    note: str = ""

    def replaces(self, step_out: str) -> bool:
        """Whether the block's formula replaces the branch to `wrt` from the step making `step_out`: the
        steps inside the span and the block's own output step (a GELU's output reads its input too).
        Branches from anywhere else (a residual connection beside a fused layernorm) still add to d<wrt>."""
        return step_out == self.out or step_out in self.inner


@dataclass(frozen=True)
class Tape:
    """One network's forward pass with its local backward: what every generic walk takes."""

    steps: tuple[Step, ...]
    params: tuple[str, ...]  # in the order they are drawn from the config's generator
    fused: tuple[FusedBlock, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)  # a name a user may type -> the node's name
    data: tuple[str, ...] = ("Xb", "Yb")  # the minibatch: inputs without a gradient

    @property
    def loss(self) -> str:
        return self.steps[-1].out

    @cached_property
    def producers(self) -> dict[str, Step]:
        return {step.out: step for step in self.steps}

    @cached_property
    def consumers(self) -> dict[str, list[tuple[Step, Grad]]]:
        """For each node, the (step, branch) pairs that send it gradient, in backward order."""
        found: dict[str, list[tuple[Step, Grad]]] = {}
        for step in reversed(self.steps):
            for grad in step.grads:
                found.setdefault(grad.wrt, []).append((step, grad))
        return found

    @cached_property
    def backward_order(self) -> tuple[str, ...]:
        """Every gradient in the order the lecture's cmp table lists them: a node is listed as soon
        as the last branch of the backward pass that feeds it is done (so counts after counts_sum)."""
        pending = {name: len(branches) for name, branches in self.consumers.items()}
        order: list[str] = []
        for step in reversed(self.steps):
            for name in step.inputs:
                pending[name] -= 1
                if pending[name] == 0:
                    order.append(name)
        return tuple(order)

    @cached_property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """Forward edges (input -> output), including the minibatch's, which carry no gradient."""
        return tuple((name, step.out) for step in self.steps for name in (*step.inputs, *step.reads))

    def resolve(self, name: str) -> str | None:
        """A node name as a user may type it (aliases included), or None if unknown."""
        name = self.aliases.get(name, name)
        return name if name in self.producers or name in self.params else None

    def gradient_names(self, node: str) -> tuple[str, ...]:
        """The names a learner may give d<node>: its own and its aliases' (dh, da)."""
        return (f"d{node}", *(f"d{alias}" for alias, target in self.aliases.items() if target == node))

    @cached_property
    def _fused_blocks(self) -> dict[str, FusedBlock]:
        return {b.wrt: b for b in self.fused}

    def blocks(self, variant: str) -> dict[str, FusedBlock]:
        """The fused blocks active in a variant, keyed by the node whose gradient they produce."""
        return self._fused_blocks if variant == "fused" else {}

    def skipped(self, variant: str) -> dict[str, str]:
        """In `fused`: node -> the block whose one-step formula skips over it."""
        return {inner: b.name for b in self.blocks(variant).values() for inner in b.inner}

    def branches(self, name: str, variant: str = "chain") -> list[tuple[Step, Grad]]:
        """The (step, branch) pairs that send d<name> its gradient in `variant`, in backward order,
        without those its fused block replaces (the block's formula comes after them)."""
        return self._branches[variant == "fused"].get(name, [])

    @cached_property
    def _branches(self) -> tuple[dict[str, list[tuple[Step, Grad]]], dict[str, list[tuple[Step, Grad]]]]:
        # (chain, fused): computed once per tape, since every check asks for every node's
        found: list[dict[str, list[tuple[Step, Grad]]]] = []
        for blocks in ({}, self._fused_blocks):
            found.append({name: [(step, grad) for step, grad in pairs
                                 if name not in blocks or not blocks[name].replaces(step.out)]
                          for name, pairs in self.consumers.items()})
        return found[0], found[1]

    def node_formula(self, name: str, variant: str = "chain") -> str:
        """The whole reference solution for d<name>: its branches in the order backward meets them,
        then its fused block's one-step formula, if it has one in `variant`."""
        block = self.blocks(variant).get(name)
        lines = [grad.formula for _, grad in self.branches(name, variant)]
        return "\n".join([*lines, block.formula] if block is not None else lines)

    def node_notes(self, name: str, variant: str = "chain") -> list[str]:
        block = self.blocks(variant).get(name)
        notes = [grad.note for _, grad in self.branches(name, variant) if grad.note]
        return [*notes, block.note] if block is not None and block.note else notes

    def exercise_cell(self) -> str:
        """The whole chain exercise as one notebook cell: every formula in backward order."""
        return "\n".join(grad.formula for step in reversed(self.steps) for grad in step.grads)

    def downstream(self, node: str) -> list[str]:
        """The nodes between `node` and the loss (the loss included), in forward order: the gradients
        the backward pass has finished before it reaches `node`."""
        children: dict[str, list[str]] = {}
        for src, dst in self.edges:
            children.setdefault(src, []).append(dst)
        found: set[str] = set()
        stack = list(children.get(node, []))
        while stack:
            name = stack.pop()
            if name not in found:
                found.add(name)
                stack.extend(children.get(name, []))
        return [step.out for step in self.steps if step.out in found]
