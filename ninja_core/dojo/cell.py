"""Which of a cell's statements compute which gradient: enough data flow for a local verdict.

A node's local verdict re-runs only the learner's statements for d<node> -- those that bind or
change it, and the helper statements they read from -- with autograd's true gradients standing
in for everything upstream. That is a backward slice over top-level statements (a `for` loop or
an `if` is one statement), with the names of the given gradients as the cut.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    node: ast.stmt
    defines: frozenset[str]  # names it binds, or changes in place (x[i] = ..., x += ..., x.index_add_(...))
    rebinds: frozenset[str]  # names it always binds afresh with a plain `=`: their earlier values are dead
    uses: frozenset[str]  # names it reads

    @property
    def lines(self) -> tuple[int, int]:
        return self.node.lineno, self.node.end_lineno or self.node.lineno


def _base_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def analyse_statement(stmt: ast.stmt) -> Statement:
    defines: set[str] = set()
    uses: set[str] = set()
    for node in ast.walk(stmt):  # iterative
        if isinstance(node, ast.Name):
            (defines if isinstance(node.ctx, ast.Store) else uses).add(node.id)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            base = _base_name(node)
            if base:
                defines.add(base)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.endswith("_"):
            base = _base_name(node.func.value)  # an in-place method changes its tensor
            if base:
                defines.add(base)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            uses.add(node.target.id)  # x += v reads x
    rebinds: set[str] = set()
    if isinstance(stmt, ast.Assign):
        for target in stmt.targets:
            elements = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
            rebinds.update(e.id for e in elements if isinstance(e, ast.Name))
    return Statement(stmt, frozenset(defines), frozenset(rebinds), frozenset(uses))


def analyse(statements: Iterable[ast.stmt]) -> list[Statement]:
    return [analyse_statement(s) for s in statements]


def defining(statements: list[Statement], names: Iterable[str]) -> list[int]:
    """Indices of the statements that bind or change any of `names`."""
    wanted = set(names)
    return [i for i, s in enumerate(statements) if s.defines & wanted]


def backward_slice(statements: list[Statement], seeds: Iterable[int], given: Iterable[str]) -> list[int]:
    """The seeds plus every earlier statement they depend on, not looking past the `given` names.

    Walking backwards from the last seed: a statement is kept if it is a seed or defines a name
    still needed; a kept statement's reads become needed, and what it rebinds is no longer."""
    seed_set, cut = set(seeds), set(given)
    if not seed_set:
        return []
    needed: set[str] = set()
    kept: list[int] = []
    for i in range(max(seed_set), -1, -1):
        s = statements[i]
        if i in seed_set or s.defines & needed:
            kept.append(i)
            needed -= s.rebinds
            needed |= s.uses - cut
    return sorted(kept)
