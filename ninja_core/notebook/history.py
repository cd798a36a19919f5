"""The learner's backward code, taken from the notebook's own history (IPython's `In` / `_ih`).

judge() grades values end to end from the namespace alone. With the code that made them it can say
more, through the dojo's whole-cell grader: each node's own lines judged locally (fed autograd's
upstream gradients), a gradient changed in place through a name that shares its storage, the
one-edit fix. IPython keeps every executed cell's source in `In` (and `_ih`), in execution order, the
cell now running included. The backward code is every top-level statement after the last one that
assigns a forward node (the end of the forward pass), up to the statement that calls judge() in the
cell now running (what comes after it has not run yet).

The dojo runs only what its allow-list accepts, so statements it refuses (an import, a def, a
`for p in parameters:` loop, a `loss.backward()`, `judge(globals())` itself), `cmp(...)` lines, and
statements reading names the dojo does not offer (the learner's `Xtr`, `parameters`) are left out,
each as blank lines: the program keeps the cell's line numbers. Several cells are joined in order,
each after a `# In[k]` line, so line numbers in diagnoses count in `Backward.source`.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..dojo import DojoError, parse
from ..dojo.allowlist import BUILTINS
from ..dojo.cell import analyse_statement
from ..dojo.validate import is_cmp_line
from ..i18n import german, tr
from ..tape import Tape

german({
    "line {line} ({code}) is not replayed, so d{name} is judged end to end only: {reason}":
        "Zeile {line} ({code}) wird nicht nachgespielt, daher wird d{name} nur Ende-zu-Ende bewertet: {reason}",
    "it reads {names}, which the judge does not see": "sie liest {names}, was der Richter nicht sieht",
})

SKIPPED_CALLS = frozenset({"judge", "cmp", "display", "print"})  # calls that compute no gradient


@dataclass(frozen=True)
class Backward:
    """The learner's backward code as the dojo will run it."""

    source: str  # the program: the kept statements at their own line numbers, blank lines elsewhere
    cells: tuple[int, ...]  # the In[k] the code comes from, in order
    notes: tuple[str, ...] = ()  # gradient statements left out, and why
    skipped: tuple[int, ...] = field(default=())  # lines of `source` whose statements were left out


def history(namespace: Mapping[str, Any]) -> list[str] | None:
    """IPython's input history (In[0] is ''), or None outside IPython."""
    found = namespace.get("_ih", namespace.get("In"))
    if isinstance(found, list) and all(isinstance(cell, str) for cell in found):
        return found
    return None


def _stores(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _calls(stmt: ast.stmt, names: Iterable[str]) -> bool:
    wanted = set(names)
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called in wanted:
                return True
    return False


def _parsed(cell: str) -> list[ast.stmt] | None:
    try:
        return ast.parse(cell).body
    except SyntaxError:  # a cell that did not run at all
        return None


def backward_source(namespace: Mapping[str, Any], tape: Tape, offered: Iterable[str],
                    cells: Sequence[str] | None = None) -> Backward | None:
    """The backward code from the notebook's history (or from `cells`, each one cell's source),
    None when there is none (no history, or no statement after the forward pass). `offered`: the
    names the dojo's scope holds (forward values, parameters, constants, sizes)."""
    inputs = list(cells) if cells is not None else history(namespace)
    if not inputs:
        return None
    forward = {step.out for step in tape.steps} | set(tape.aliases)
    numbered = [(k, cell) for k, cell in enumerate(inputs) if cell.strip()]
    if cells is None and numbered:  # the cell now running: only what ran before judge(...) counts
        k, now = numbered[-1]
        body = _parsed(now)
        if body is not None:
            cut = next((s for s in body if _calls(s, ("judge",))), None)
            if cut is not None:
                numbered[-1] = (k, "\n".join(now.splitlines()[: cut.lineno - 1]))
    # the end of the forward pass: the last statement that assigns a forward node, in any cell
    start = (0, 0)
    for index, (_, cell) in enumerate(numbered):
        for stmt in _parsed(cell) or []:
            if _stores(stmt) & forward:
                start = (index, stmt.end_lineno or stmt.lineno)
    kept: list[tuple[int, str, list[str]]] = []
    known = set(offered) | set(BUILTINS) | {"torch", "F"}
    notes: list[str] = []
    for index, (k, cell) in enumerate(numbered[start[0]:], start=start[0]):
        body = _parsed(cell)
        if body is None:
            continue
        lines = cell.splitlines()
        out = [""] * len(lines)
        any_kept = False
        for stmt in body:
            first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
            if index == start[0] and last <= start[1]:
                continue
            segment = lines[first - 1: last]
            defines = analyse_statement(stmt).defines
            if isinstance(stmt, ast.Expr) and not defines:
                continue  # an expression shown as the cell's output (loss, dh.shape) computes no gradient
            reason = _refused(stmt, "\n".join(segment), known)
            if reason is None:
                out[first - 1: last] = segment
                known |= _stores(stmt) | defines
                any_kept = True
            else:
                gradients = sorted(d for d in defines if d.startswith("d"))
                if gradients and not is_cmp_line(stmt):
                    code = segment[0].strip()[:60]
                    notes.append(tr("line {line} ({code}) is not replayed, so d{name} is judged end to end only: "
                                    "{reason}", line=first, code=code, name=gradients[0][1:], reason=reason))
        if any_kept:
            while out and not out[-1].strip():
                out.pop()
            kept.append((k, cell, out))
    if not kept:
        return None
    if len(kept) == 1:
        source = "\n".join(kept[0][2])
    else:
        parts: list[str] = []
        for k, _, out in kept:
            parts += [f"# In[{k}]", *out]
        source = "\n".join(parts)
    return Backward(source + "\n", tuple(k for k, _, _ in kept), tuple(notes))


def _refused(stmt: ast.stmt, code: str, known: set[str]) -> str | None:
    """Why the dojo would not run this statement here, or None when it runs."""
    if is_cmp_line(stmt) or (isinstance(stmt, ast.Expr) and _calls(stmt, SKIPPED_CALLS)):
        return "cmp"
    try:
        parse(code.strip() if "\n" not in code else textwrap.dedent(code))
    except DojoError as exc:
        return exc.message
    info = analyse_statement(stmt)
    unknown = sorted(info.uses - known - info.defines - _stores(stmt))
    if unknown:
        return tr("it reads {names}, which the judge does not see", names=", ".join(unknown))
    return None

