"""The one-edit fix: small edits of a wrong formula, tried until one makes it right.

The edits are the slips learners make (issue 14): a name swapped for another tensor of the same
shape (a value for its gradient and back, dW2 <-> W2, or a neighbour on the tape, h <-> hpreact), a
sign (+/-, a unary minus, += / -=), `.T` added or removed, keepdim toggled or added, a count off by
Bessel's one (n <-> n-1) or the wrong count (n <-> n1), and the dims of a reduction (0 -> (0, 1)).

Each candidate is the learner's own tree with one node replaced, validated again like any code
(`check_tree`) and run by the caller's `runner` in a fresh scope. The search is bounded: at most
MAX_CANDIDATES runs and MAX_SECONDS of wall time, and it is never started for a right answer.
"""

from __future__ import annotations

import ast
import copy
import difflib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..compare import compare
from ..i18n import Text, german, tr
from .diagnose import suspicious
from .errors import DojoError
from .validate import check_tree

MAX_CANDIDATES = 300
MAX_SECONDS = 0.3
REDUCTIONS = frozenset({"sum", "mean", "max", "min", "amax", "amin", "var", "std", "logsumexp", "prod"})
KINDS = ("name", "sign", "transpose", "keepdim", "count", "dims")

german({
    "use {new} instead of {old} at line {line}, column {col}": "nimm {new} statt {old} in Zeile {line}, Spalte {col}",
    "remove the minus at line {line}, column {col}": "entferne das Minus in Zeile {line}, Spalte {col}",
    "negate the right-hand side at line {line}, column {col}": "negiere die rechte Seite in Zeile {line}, Spalte {col}",
    "transpose the right-hand side ((...).T) at line {line}, column {col}":
        "transponiere die rechte Seite ((...).T) in Zeile {line}, Spalte {col}",
    "remove .T at line {line}, column {col}": "entferne .T in Zeile {line}, Spalte {col}",
    "add .T after {name} at line {line}, column {col}": "setze .T hinter {name} in Zeile {line}, Spalte {col}",
    "add .transpose(-2, -1) after {name} at line {line}, column {col}":
        "setze .transpose(-2, -1) hinter {name} in Zeile {line}, Spalte {col}",
    "add keepdim=True to {call} at line {line}, column {col}":
        "ergänze keepdim=True bei {call} in Zeile {line}, Spalte {col}",
    "one edit makes it right: {edit}": "eine Änderung macht es richtig: {edit}",
})


@dataclass(frozen=True)
class Fix:
    """The first one-edit change that makes the answer right."""

    kind: str  # one of KINDS
    line: int
    col: int  # 1-based, where the edit goes
    message: Text  # "use W2 instead of dW2 at line 1, column 16"
    status: str  # what the edited code gets: exact or approx

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        from ..i18n import localize

        return {"kind": self.kind, "line": self.line, "col": self.col, "message": localize(self.message, lang),
                "status": self.status}


@dataclass(frozen=True)
class Search:
    """What one search did: the fix (or None), how many candidates ran and how long it took."""

    fix: Fix | None
    candidates: int
    seconds: float
    exhausted: bool  # stopped by a bound rather than by running out of candidates


@dataclass(frozen=True)
class Candidate:
    kind: str
    index: int  # of the node to replace, in ast.walk order of the tree
    make: Callable[[Any], Any]  # the replacement for that node (given a copy of it)
    line: int
    col: int
    message: Text


Runner = Callable[[ast.Module, float], Any]  # (tree, deadline) -> the answer it computes (raises DojoError)


def _located(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1


def _operator_col(source_lines: Sequence[str], node: ast.BinOp | ast.AugAssign, symbol: str) -> tuple[int, int]:
    """Line and column of the operator symbol between the two operands (the AST does not keep it)."""
    left = node.left if isinstance(node, ast.BinOp) else node.target
    right = node.right if isinstance(node, ast.BinOp) else node.value
    line = getattr(left, "end_lineno", None) or node.lineno
    start = getattr(left, "end_col_offset", None) or 0
    text = source_lines[line - 1] if 0 < line <= len(source_lines) else ""
    stop = right.col_offset if right.lineno == line else len(text)
    found = text.find(symbol, start, stop)
    return line, (found if found >= 0 else start) + 1


def _name(node: ast.AST) -> str:
    return ast.unparse(node)


def _with_keyword(call: ast.Call, name: str, value: bool) -> ast.Call:
    call.keywords = [k for k in call.keywords if k.arg != name] + [ast.keyword(arg=name, value=ast.Constant(value))]
    return call


def _batch_transposed(node: Any) -> ast.expr:
    """`x` -> `x.transpose(-2, -1)`: `.T` of a batch of matrices would reverse every dim."""
    minus: list[ast.expr] = [ast.UnaryOp(op=ast.USub(), operand=ast.Constant(k)) for k in (2, 1)]
    return ast.Call(func=ast.Attribute(value=node, attr="transpose", ctx=ast.Load()), args=minus, keywords=[])


def _negated(node: ast.expr) -> ast.expr:
    return ast.UnaryOp(op=ast.USub(), operand=node)


def _renamed(name: str) -> Callable[[Any], Any]:
    return lambda node: ast.Name(id=name, ctx=ast.Load())


def _operator(op: ast.operator) -> Callable[[Any], Any]:
    """The same BinOp or AugAssign with another operator."""
    def make(node: Any) -> Any:
        node.op = op
        return node
    return make


def _keyword(name: str, value: bool) -> Callable[[Any], Any]:
    return lambda node: _with_keyword(node, name, value)


def _dims(dims: int | tuple[int, ...]) -> Callable[[Any], Any]:
    return lambda node: _with_dims(node, dims)


def _dims_of(call: ast.Call) -> tuple[ast.AST, int] | None:
    """The dims argument of a reduction call and its position (-1: the dim= keyword)."""
    if call.args:
        return call.args[0], 0
    for k in call.keywords:
        if k.arg in ("dim", "axis"):
            return k.value, -1
    return None


def _is_reduction(call: ast.Call) -> bool:
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr in REDUCTIONS and not (
        isinstance(func.value, ast.Name) and func.value.id == "F")


def candidates(tree: ast.Module, source: str, editable: Sequence[ast.stmt], shapes: dict[str, tuple[int, ...]],
               swappable: Sequence[str], neighbours: dict[str, list[str]], counts: Sequence[str]) -> list[Candidate]:
    """Every one-node edit of the `editable` statements, most plausible kinds first.

    `shapes`: the tensor names in scope with their shapes; `swappable`: the names a swap may put in
    (values, parameters, given gradients: never the learner's own temporaries); `neighbours`: for a
    name, the names next to it on the tape (h: hpreact, logits); `counts`: the network's counting
    constants (n, n1, ...)."""
    lines = source.splitlines()
    order = {id(n): i for i, n in enumerate(ast.walk(tree))}
    chosen = {id(n) for stmt in editable for n in ast.walk(stmt)}
    nodes = [n for n in ast.walk(tree) if id(n) in chosen]
    first: list[Candidate] = []  # value <-> gradient and tape neighbours
    middle: list[Candidate] = []  # signs, .T, keepdim, counts, dims
    last: list[Candidate] = []  # any other tensor of the same shape

    def add(bucket: list[Candidate], kind: str, node: ast.AST, make: Callable[[Any], Any], line: int, col: int,
            message: Text) -> None:
        bucket.append(Candidate(kind, order[id(node)], make, line, col, message))

    for node in nodes:
        line, col = _located(node)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            name = node.id
            if name not in shapes:  # not defined where it is read (dW2 before any line sets it): a close name
                for other in dict.fromkeys([name[1:], *difflib.get_close_matches(name, swappable, n=4, cutoff=0.6)]):
                    if other in swappable and other != name:
                        add(first, "name", node, _renamed(other), line, col,
                            tr("use {new} instead of {old} at line {line}, column {col}", new=other, old=name,
                               line=line, col=col))
            if name in shapes:
                shape = shapes[name]
                partner = name[1:] if name.startswith("d") and name[1:] in shapes else f"d{name}"
                near = [partner, *neighbours.get(name, [])]
                near += [n for n in difflib.get_close_matches(name, swappable, n=len(swappable), cutoff=0.0)
                         if n not in near]
                for other in near:
                    if other == name or other not in swappable or shapes.get(other) != shape:
                        continue
                    bucket = first if other == partner or other in neighbours.get(name, []) else last
                    add(bucket, "name", node, _renamed(other), line, col,
                        tr("use {new} instead of {old} at line {line}, column {col}", new=other, old=name, line=line,
                           col=col))
                if len(shape) == 2:
                    add(middle, "transpose", node, lambda n: ast.Attribute(value=n, attr="T", ctx=ast.Load()), line,
                        col + len(name), tr("add .T after {name} at line {line}, column {col}", name=name, line=line,
                                            col=col + len(name)))
                elif len(shape) >= 3:  # a batch of matrices (attention's q, k, v): its own two dims swapped
                    add(middle, "transpose", node, _batch_transposed, line, col + len(name),
                        tr("add .transpose(-2, -1) after {name} at line {line}, column {col}", name=name, line=line,
                           col=col + len(name)))
            if name in counts:
                add(middle, "count", node, lambda n: ast.BinOp(left=n, op=ast.Sub(), right=ast.Constant(1)), line, col,
                    tr("use {new} instead of {old} at line {line}, column {col}", new=f"({name}-1)", old=name,
                       line=line, col=col))
                for other in counts:
                    if other != name:
                        add(middle, "count", node, _renamed(other), line, col,
                            tr("use {new} instead of {old} at line {line}, column {col}", new=other, old=name,
                               line=line, col=col))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            symbol, swapped = ("+", ast.Sub()) if isinstance(node.op, ast.Add) else ("-", ast.Add())
            op_line, op_col = _operator_col(lines, node, symbol)
            add(middle, "sign", node, _operator(swapped), op_line, op_col,
                tr("use {new} instead of {old} at line {line}, column {col}", new="+" if symbol == "-" else "-",
                   old=symbol, line=op_line, col=op_col))
            if (isinstance(node.op, ast.Sub) and isinstance(node.left, ast.Name) and node.left.id in counts
                    and isinstance(node.right, ast.Constant) and node.right.value == 1):
                add(middle, "count", node, lambda n: n.left, line, col,
                    tr("use {new} instead of {old} at line {line}, column {col}", new=node.left.id,
                       old=f"{node.left.id}-1", line=line, col=col))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            add(middle, "sign", node, lambda n: n.operand, line, col,
                tr("remove the minus at line {line}, column {col}", line=line, col=col))
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Add, ast.Sub)):
            symbol = "+=" if isinstance(node.op, ast.Add) else "-="
            op_line, op_col = _operator_col(lines, node, symbol)
            swapped_op = ast.Sub() if symbol == "+=" else ast.Add()
            add(middle, "sign", node, _operator(swapped_op),
                op_line, op_col, tr("use {new} instead of {old} at line {line}, column {col}",
                                    new="-=" if symbol == "+=" else "+=", old=symbol, line=op_line, col=op_col))
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            v_line, v_col = _located(node.value)
            add(middle, "sign", node, lambda n: ast.Assign(targets=n.targets, value=_negated(n.value)), v_line, v_col,
                tr("negate the right-hand side at line {line}, column {col}", line=v_line, col=v_col))
            target = node.targets[0].id
            if (target in shapes and len(shapes[target]) == 2) or target not in shapes:
                add(middle, "transpose", node, lambda n: ast.Assign(targets=n.targets, value=ast.Attribute(
                    value=n.value, attr="T", ctx=ast.Load())), v_line, v_col,
                    tr("transpose the right-hand side ((...).T) at line {line}, column {col}", line=v_line, col=v_col))
        elif isinstance(node, ast.Attribute) and node.attr == "T" and isinstance(node.ctx, ast.Load):
            t_col = (getattr(node.value, "end_col_offset", None) or 0) + 1
            add(middle, "transpose", node, lambda n: n.value, line, t_col,
                tr("remove .T at line {line}, column {col}", line=line, col=t_col))
        elif isinstance(node, ast.Call) and _is_reduction(node):
            assert isinstance(node.func, ast.Attribute)
            f_line, f_col = _located(node.func)
            f_col = (getattr(node.func.value, "end_col_offset", None) or 0) + 1
            call = f".{node.func.attr}(...)"
            keepdim = next((k for k in node.keywords if k.arg in ("keepdim", "keepdims")), None)
            if keepdim is not None and isinstance(keepdim.value, ast.Constant):
                k_line, k_col = _located(keepdim.value)
                flipped = not bool(keepdim.value.value)
                add(middle, "keepdim", node, _keyword(keepdim.arg or "keepdim", flipped), k_line, k_col,
                    tr("use {new} instead of {old} at line {line}, column {col}", new=f"{keepdim.arg}={flipped}",
                       old=f"{keepdim.arg}={not flipped}", line=k_line, col=k_col))
            elif keepdim is None and _dims_of(node) is not None:
                add(middle, "keepdim", node, lambda n: _with_keyword(n, "keepdim", True), f_line, f_col,
                    tr("add keepdim=True to {call} at line {line}, column {col}", call=call, line=f_line, col=f_col))
            dims = _dims_of(node)
            if dims is not None and isinstance(dims[0], ast.Constant) and isinstance(dims[0].value, int):
                d = dims[0].value
                d_line, d_col = _located(dims[0])
                for new_dims in ((0, 1), 0, 1, 2):
                    if new_dims == d:
                        continue
                    add(middle, "dims", node, _dims(new_dims), d_line, d_col,
                        tr("use {new} instead of {old} at line {line}, column {col}", new=str(new_dims), old=str(d),
                           line=d_line, col=d_col))
    return first + middle + last


def _with_dims(call: ast.Call, dims: int | tuple[int, ...]) -> ast.Call:
    value: ast.expr = ast.Constant(dims) if isinstance(dims, int) else ast.Tuple(
        elts=[ast.Constant(d) for d in dims], ctx=ast.Load())
    if call.args:
        call.args = [value, *call.args[1:]]
    else:
        call.keywords = [ast.keyword(arg=k.arg, value=value) if k.arg in ("dim", "axis") else k for k in call.keywords]
    return call


def apply(tree: ast.Module, candidate: Candidate) -> ast.Module:
    """A copy of `tree` with the candidate's node replaced."""
    edited = copy.deepcopy(tree)
    nodes = list(ast.walk(edited))
    target = nodes[candidate.index]
    replacement = candidate.make(target)
    if replacement is not target:
        for parent in nodes:
            for field, value in ast.iter_fields(parent):
                if value is target:
                    setattr(parent, field, replacement)
                elif isinstance(value, list) and any(v is target for v in value):
                    setattr(parent, field, [replacement if v is target else v for v in value])
    ast.fix_missing_locations(edited)
    return edited


def search(tree: ast.Module, source: str, editable: Sequence[ast.stmt], expected: torch.Tensor, runner: Runner,
           shapes: dict[str, tuple[int, ...]], swappable: Sequence[str], neighbours: dict[str, list[str]],
           counts: Sequence[str], max_candidates: int = MAX_CANDIDATES, max_seconds: float = MAX_SECONDS) -> Search:
    """Try one-edit changes of `editable` until one makes `runner`'s answer pass against `expected`
    (exact, or approx without being suspiciously tiny). Bounded by `max_candidates` runs and
    `max_seconds` of wall time (each run stops at the search's deadline too)."""
    started = time.perf_counter()
    deadline = time.monotonic() + max_seconds
    tried = 0
    for candidate in _ordered(candidates(tree, source, editable, shapes, swappable, neighbours, counts)):
        if tried >= max_candidates or time.monotonic() > deadline:
            return Search(None, tried, time.perf_counter() - started, True)
        tried += 1
        try:
            edited = apply(tree, candidate)
            check_tree(edited)  # an edit is code like any other: validated before it runs
            value = runner(edited, deadline)
        except (DojoError, RecursionError, ValueError, TypeError, AttributeError, IndexError):
            continue
        if not isinstance(value, torch.Tensor):
            continue
        comparison = compare(value, expected)
        if comparison.status in ("exact", "approx") and not suspicious(comparison):
            fix = Fix(candidate.kind, candidate.line, candidate.col,
                      tr("one edit makes it right: {edit}", edit=candidate.message), comparison.status)
            return Search(fix, tried, time.perf_counter() - started, False)
    return Search(None, tried, time.perf_counter() - started, False)


def _ordered(found: list[Candidate]) -> Iterator[Candidate]:
    """Each distinct edit once (the same replacement can be reached from two places)."""
    seen: set[tuple[int, str]] = set()
    for c in found:
        key = (c.index, str(c.message))
        if key not in seen:
            seen.add(key)
            yield c
