"""Grade a whole exercise cell: every d<name> the learner's code defines, end to end and locally.

End to end: the cell runs once, seeing only forward values and parameters; each d<name> it leaves
behind is compared with autograd (the lecture's cmp table). Locally: each node's own statements
(see cell.py) run again with autograd's true upstream gradients, so a wrong line is told apart
from a right line fed a wrong input. A runtime error stops the cell: what ran before it is judged
end to end, and every node is still judged locally.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..compare import Comparison, compare
from .cell import Statement, analyse, backward_slice, defining
from .errors import DojoError
from .judge import answer_of, finite_or_none, judge_value
from .limits import DEFAULT_LIMITS, Limits, SharedClock
from .sandbox import Program, execute, parse
from .scope import Scope, cell_scope, node_scope, true_gradients
from .validate import is_cmp_line

if TYPE_CHECKING:
    from ..run import Run

PASSING = ("exact", "approx")
LOCAL_STATUSES = ("exact", "approx", "mismatch", "shape_mismatch", "missing", "error")  # GradeRow.local_status
MAX_ELSEWHERE = 8  # candidate variables compared per missing node: each comparison reads the whole tensor


@dataclass(frozen=True)
class GradeRow:
    name: str
    variable: str | None  # the learner's name for it (dh, da), None when the cell never defines it
    end_to_end: Comparison
    local_status: str  # exact | approx | mismatch | shape_mismatch | missing | error
    local_maxdiff: float | None
    local_error: DojoError | None  # why the node's own lines failed when run alone
    diagnosis: list[str]
    lines: list[int]  # the learner's lines that define it

    @property
    def status(self) -> str:
        return self.end_to_end.status

    def to_dict(self) -> dict[str, Any]:
        c = self.end_to_end
        numbers, nonfinite = finite_or_none({"maxdiff": c.maxdiff, "relerr": c.relerr, "local_maxdiff": self.local_maxdiff})
        return {
            "name": self.name, "variable": self.variable, "status": c.status, "local_status": self.local_status,
            "exact": c.exact, "approx": c.approx, **numbers, "nonfinite": nonfinite,
            "shape": list(c.manual_shape) if c.manual_shape is not None else None,
            "expected_shape": list(c.shape) if c.shape is not None else None,
            "diagnosis": list(self.diagnosis), "lines": list(self.lines),
            "local_error": self.local_error.to_dict() if self.local_error else None,
        }


@dataclass(frozen=True)
class GradeReport:
    rows: list[GradeRow]  # every gradient of the network in backward (cmp table) order
    error: DojoError | None  # where the cell stopped, if it did
    output: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a d<name> that is no node's gradient

    @property
    def complete(self) -> bool:
        return self.error is None

    @property
    def totals(self) -> dict[str, int]:
        counts = {status: 0 for status in ("exact", "approx", "mismatch", "shape_mismatch", "missing")}
        for row in self.rows:
            counts[row.status] += 1
        counts["passed"] = sum(row.status in PASSING for row in self.rows)
        counts["local_passed"] = sum(row.local_status in PASSING for row in self.rows)
        counts["total"] = len(self.rows)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [row.to_dict() for row in self.rows], "totals": self.totals, "complete": self.complete,
            "error": self.error.to_dict() if self.error else None, "output": list(self.output), "notes": list(self.notes),
        }

    def table(self) -> str:
        """The cmp table as text, with the local verdict and the first line of diagnosis."""
        t = self.totals
        lines = [f"{t['passed']}/{t['total']} right end to end, {t['local_passed']}/{t['total']} locally"]
        for row in self.rows:
            maxdiff = "-" if row.end_to_end.maxdiff is None else f"{row.end_to_end.maxdiff:.3g}"
            first = row.diagnosis[0] if row.diagnosis else ""
            lines.append(f"{row.name:15s} | {row.status:14s} | local: {row.local_status:14s} | maxdiff: {maxdiff:9s} | {first}")
        if self.error:
            lines.append(f"the cell stopped: {self.error.text()}")
        lines.extend(self.notes)
        return "\n".join(lines)


def reused_aliases(run: Run, statements: list[Statement]) -> frozenset[str]:
    """Alias gradient names the cell uses for something else. The seed notebook defines both dh
    and da, and its da is d(apreact): there, da is the learner's own variable, not dh's alias."""
    defined = set().union(*(s.defines for s in statements)) if statements else set()
    return frozenset(f"d{alias}" for alias, target in run.tape.aliases.items()
                     if f"d{alias}" in defined and f"d{target}" in defined)


def _local(run: Run, node: str, program: Program, program_statements: list[Statement], own: frozenset[str],
           limits: Limits, clock: SharedClock) -> tuple[str, Any, DojoError | None]:
    """("found", value, None) of the learner's lines for `node` fed autograd's upstream gradients,
    or ("missing" | "error", None, error). `own`: alias names the cell uses for its own variables."""
    seeds = defining(program_statements, run.tape.gradient_names(node))
    if not seeds:
        return "missing", None, None
    given = set(true_gradients(run, node)) - own
    kept = backward_slice(program_statements, seeds, given)
    with clock.running():
        done = execute(program, node_scope(run, node, without=own), limits,
                       statements=[program_statements[i].node for i in kept], budget=clock.budget(limits),
                       raise_errors=False)
    found = answer_of(run, done.scope, node)
    if done.error is not None:
        return "error", None, done.error
    if found is None:
        return "missing", None, None
    return "found", found[1], None


def _upstream_problems(run: Run, node: str, statuses: dict[str, str]) -> list[str]:
    """The gradients feeding `node` that are wrong in the learner's cell."""
    return [f"d{step.out}" for step, _ in run.tape.consumers.get(node, [])
            if statuses.get(step.out) not in (*PASSING, None)]


def _row_diagnosis(name: str, e2e: Comparison, e2e_notes: list[str], local_status: str,
                   local_notes: list[str], local_error: DojoError | None, upstream_wrong: list[str]) -> list[str]:
    if e2e.status in PASSING:
        return e2e_notes
    if e2e.status == "missing":  # not defined, or not reached: say so first, then how its own lines fare
        alone = [f"on its own, fed autograd's upstream gradients, your d{name} is {local_status}"] \
            if local_status not in ("missing", "error") else []
        return e2e_notes + alone
    if local_error is not None:
        return [f"your lines for d{name}, run with autograd's upstream gradients, fail: {local_error.text()}", *e2e_notes]
    if local_status in PASSING:
        source = f" ({', '.join(upstream_wrong)} {'is' if len(upstream_wrong) == 1 else 'are'} wrong)" if upstream_wrong else ""
        return [f"your step is right: fed autograd's upstream gradients it is {local_status}; "
                f"the difference comes from upstream{source}"]
    if local_status in ("mismatch", "shape_mismatch"):
        return local_notes  # judged with correct inputs, so these findings are about this step itself
    return e2e_notes


def grade_cell(run: Run, code: str, *, limits: Limits = DEFAULT_LIMITS) -> GradeReport:
    """Judge every d<name> a whole exercise cell defines. Raises DojoError only when the code is
    refused before running (syntax, forbidden, size); errors while running are in the report.

    `limits.seconds` bounds the learner's code over the cell and all its per-node re-runs together;
    judging (comparisons, diagnoses) comes on top, a few ms at the default config."""
    program = parse(code, limits)
    clock = SharedClock(limits.seconds)  # one time limit for the cell and all the local re-runs
    with clock.running():
        done = execute(program, cell_scope(run), limits, budget=clock.budget(limits), raise_errors=False)
    statements = analyse(program.tree.body)
    own = reused_aliases(run, statements)
    stopped_line = done.error.line if done.error else None

    rows: list[GradeRow] = []
    statuses: dict[str, str] = {}
    tape = run.tape
    for name in tape.backward_order:
        found = answer_of(run, done.scope, name)
        variable, value = found if found else (None, None)
        e2e, e2e_notes = judge_value(run, name, value)
        if found is None:
            e2e_notes = [f"not reached: the cell stopped at line {stopped_line}" if done.error and defining(
                statements, tape.gradient_names(name)) else f"not defined: the cell never assigns d{name}"]
            e2e_notes += _found_elsewhere(run, name, done.scope)
        local_status, local_value, local_error = _local(run, name, program, statements, own, limits, clock)
        local_maxdiff: float | None = None
        local_notes: list[str] = []
        if local_status == "found":
            local, local_notes = judge_value(run, name, local_value)
            local_status, local_maxdiff = local.status, local.maxdiff
        statuses[name] = e2e.status
        lines = sorted({line for i in defining(statements, tape.gradient_names(name))
                        for line in range(statements[i].lines[0], statements[i].lines[1] + 1)})
        rows.append(GradeRow(
            name=name, variable=variable, end_to_end=e2e, local_status=local_status, local_maxdiff=local_maxdiff,
            local_error=local_error,
            diagnosis=_row_diagnosis(name, e2e, e2e_notes, local_status, local_notes, local_error,
                                     _upstream_problems(run, name, statuses)),
            lines=lines,
        ))
    notes = _unknown_gradients(run, done.scope.assigned)
    if any(is_cmp_line(node) for node in ast.walk(program.tree)):
        notes.append("the cmp(...) lines were skipped: every gradient is compared with autograd here")
    return GradeReport(rows, done.error, done.output, notes)


def _found_elsewhere(run: Run, node: str, scope: Scope) -> list[str]:
    """A learner's variable that holds d<node> under another name (the seed notebook's da is
    d(apreact), for instance): worth saying, since the table is keyed by name. Only d-names that
    are not a node's own gradient name are candidates, at most a few of them."""
    expected = run.autograd[node]
    canonical = {f"d{name}" for name in run.tape.backward_order}
    candidates = [v for v in scope.assigned if v.startswith("d") and v not in canonical][:MAX_ELSEWHERE]
    for variable in candidates:
        value = scope.vars.get(variable)
        if isinstance(value, torch.Tensor) and value.shape == expected.shape \
                and compare(value, expected).status in PASSING:
            names = " or ".join(run.tape.gradient_names(node))
            return [f"your {variable} holds this gradient: name it {names} to have it judged here"]
    return []


def _unknown_gradients(run: Run, assigned: dict[str, None]) -> list[str]:
    """d<something> names that look like a node's gradient but are not one (a typo, usually)."""
    tape = run.tape
    known = {dname for node in tape.backward_order for dname in tape.gradient_names(node)}
    known |= {f"d{alias}" for alias in tape.aliases}
    notes = []
    for name in assigned:
        if name.startswith("d") and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.85)
            if close:
                notes.append(f"{name} is not the gradient of any node: did you mean {close[0]}?")
    return notes
