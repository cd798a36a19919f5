"""Grade a whole exercise cell: every d<name> the learner's code defines, end to end and locally.

End to end: the cell runs once, seeing only forward values and parameters; each d<name> is judged
as the learner's notebook holds it at the end of the cell (the lecture's cmp table). While it runs,
every gradient is watched: one that is changed in place after it was set, through another name
that shares its storage (`dhprebn = dbndiff` and then `dhprebn += ...`), is reported with the lines
that did it. Locally: each node's own statements (see cell.py) run again with autograd's true
upstream gradients, so a wrong line is told apart from a right line fed a wrong input -- and upstream
is never blamed when every upstream gradient is right. A runtime error stops the cell: what ran
before it is judged end to end, and every node is still judged locally.

Besides: the cell on a few more minibatches (probes.py), the one-edit fix of a node's own wrong
lines (edits.py), and for an approx node its own lines rerun in float64 (judge.rounding).
"""

from __future__ import annotations

import ast
import difflib
import html
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..compare import STATUSES, Comparison, compare
from ..i18n import Text, german, localize, tr
from .cell import Statement, analyse, backward_slice, defining
from .diagnose import one_hot_findings
from .edits import Fix, Search
from .errors import DojoError
from .judge import (
    COLOURS,
    STATUS_WORDS,
    BatchVerdict,
    _finite,
    answer_of,
    batch_line,
    finite_or_none,
    fix_search,
    judge_value,
    lens_of,
    program_runner,
    rounding,
)
from .limits import Limits, SharedClock, cell_limits
from .probes import other_batches
from .sandbox import Program, execute, parse
from .scope import Scope, cell_scope, node_scope, true_gradients
from .trace import Event
from .validate import is_cmp_line

if TYPE_CHECKING:
    from ..run import Run

PASSING = ("exact", "approx")
LOCAL_STATUSES = ("exact", "approx", "mismatch", "shape_mismatch", "missing", "error")  # GradeRow.local_status


def row_totals(rows: Sequence[Any]) -> dict[str, int]:
    """Counts of a grade table's rows (anything with `status` and `local_status`): one per status, then
    passed and local_passed (exact or approx) and total. The page's and the notebook's tables share it."""
    counts = {status: 0 for status in STATUSES}
    for row in rows:
        counts[row.status] += 1
    counts["passed"] = sum(row.status in PASSING for row in rows)
    counts["local_passed"] = sum(row.local_status in PASSING for row in rows)
    counts["total"] = len(rows)
    return counts
MAX_ELSEWHERE = 8  # candidate variables compared per missing node: each comparison reads the whole tensor
SNAPSHOT_ELEMENTS = 1 << 20  # gradients up to this size are kept as they were set, to say whether they were right
SEARCH_SECONDS = 1.0  # all one-edit searches of one cell together (each at most edits.MAX_SECONDS)
log = logging.getLogger(__name__)

german({
    "not reached: the cell stopped at line {line}": "nicht erreicht: die Zelle hielt in Zeile {line} an",
    "not defined: the cell never assigns d{name}": "nicht definiert: die Zelle weist d{name} nie zu",
    "on its own, fed autograd's upstream gradients, your d{name} is {status}":
        "für sich, mit Autograds Gradienten von oben gefüttert, ist dein d{name} {status}",
    "on its own, fed autograd's upstream gradients, your d{name} is {status}: {reason}":
        "für sich, mit Autograds Gradienten von oben gefüttert, ist dein d{name} {status}: {reason}",
    "your lines for d{name}, run with autograd's upstream gradients, fail: {error}":
        "deine Zeilen für d{name}, mit Autograds Gradienten von oben ausgeführt, scheitern: {error}",
    "your step is right: fed autograd's upstream gradients it is {status}; the difference comes from upstream "
    "({names} {verb} wrong)":
        "dein Schritt stimmt: mit Autograds Gradienten von oben ist er {status}; die Abweichung kommt von oben "
        "({names} {verb} falsch)",
    "is": "ist", "are": "sind",
    "your lines for d{name} are right when fed autograd's upstream gradients, and every gradient upstream of it is "
    "right at the end of the cell: one of them was different when your lines ran (changed later?)":
        "deine Zeilen für d{name} stimmen mit Autograds Gradienten von oben, und jeder Gradient oberhalb stimmt am "
        "Ende der Zelle: einer davon war anders, als deine Zeilen liefen (später geändert?)",
    "your d{name} was {state} when line {set_line} set it, but line {changed_line} changed it afterwards, in place "
    "through {via}: line {shared_line} ({code}) makes {via} and d{name} one tensor (they share storage), so "
    "changing one changes both; write {via} = d{name}.clone()":
        "dein d{name} war {state}, als Zeile {set_line} es setzte, aber Zeile {changed_line} änderte es danach, "
        "in place über {via}: Zeile {shared_line} ({code}) macht {via} und d{name} zu einem Tensor (sie teilen "
        "sich den Speicher), also ändert eine Änderung beide; schreib {via} = d{name}.clone()",
    "your d{name} was changed in place after line {set_line} set it, by line {changed_line}, through a name that "
    "shares its storage; use .clone() where you copy it":
        "dein d{name} wurde nach Zeile {set_line} in place geändert, von Zeile {changed_line}, über einen Namen, "
        "der sich den Speicher mit ihm teilt; nimm .clone(), wo du es kopierst",
    "right": "richtig", "wrong": "falsch",
    "your {variable} holds this gradient: name it {names} to have it judged here":
        "dein {variable} enthält diesen Gradienten: nenne ihn {names}, damit er hier bewertet wird",
    "{name} is not the gradient of any node: did you mean {close}?":
        "{name} ist nicht der Gradient eines Knotens: meintest du {close}?",
    "the cmp(...) lines were skipped: every gradient is compared with autograd here":
        "die cmp(...)-Zeilen wurden übersprungen: jeder Gradient wird hier mit Autograd verglichen",
    "{passed}/{total} right end to end, {local}/{total} locally":
        "{passed}/{total} Ende-zu-Ende richtig, {local}/{total} lokal",
    "the cell stopped: {error}": "die Zelle hielt an: {error}",
    "local": "lokal", "variable": "Variable",
})


@dataclass(frozen=True)
class GradeRow:
    name: str
    variable: str | None  # the learner's name for it (dh, da), None when the cell never defines it
    end_to_end: Comparison
    local_status: str  # exact | approx | mismatch | shape_mismatch | missing | error
    local_maxdiff: float | None
    local_error: DojoError | None  # why the node's own lines failed when run alone
    diagnosis: list[str]  # the line that names the cause first
    lines: list[int]  # the learner's lines that define it
    fix: Fix | None = None  # the first one-edit change of its own lines that makes them right
    lens: list[dict[str, Any]] | None = None  # the end-to-end answer under other tolerance standards
    rounding: dict[str, Any] | None = None  # approx: ulps, worst entry, its own lines rerun in float64
    batches: list[BatchVerdict] = field(default_factory=list)  # the cell's answer on other minibatches

    @property
    def status(self) -> str:
        return self.end_to_end.status

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        c = self.end_to_end
        numbers, nonfinite = finite_or_none({"maxdiff": c.maxdiff, "relerr": c.relerr, "local_maxdiff": self.local_maxdiff})
        return {
            "name": self.name, "variable": self.variable, "status": c.status, "local_status": self.local_status,
            "exact": c.exact, "approx": c.approx, **numbers, "nonfinite": nonfinite,
            "shape": list(c.manual_shape) if c.manual_shape is not None else None,
            "expected_shape": list(c.shape) if c.shape is not None else None,
            "diagnosis": localize(list(self.diagnosis), lang), "lines": list(self.lines),
            "local_error": self.local_error.to_dict(lang) if self.local_error else None,
            "fix": self.fix.to_dict(lang) if self.fix is not None else None,
            "lens": self.lens, "rounding": _finite(self.rounding),
            "batches": [b.to_dict(lang) for b in self.batches],
        }


@dataclass(frozen=True)
class GradeReport:
    rows: list[GradeRow]  # every gradient of the network in backward (cmp table) order
    error: DojoError | None  # where the cell stopped, if it did
    output: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a d<name> that is no node's gradient
    searches: list[Search] = field(default_factory=list)  # the one-edit searches run (for measurements)

    @property
    def complete(self) -> bool:
        return self.error is None

    @property
    def totals(self) -> dict[str, int]:
        return row_totals(self.rows)

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {
            "nodes": [row.to_dict(lang) for row in self.rows], "totals": self.totals, "complete": self.complete,
            "error": self.error.to_dict(lang) if self.error else None, "output": list(self.output),
            "notes": localize(list(self.notes), lang),
        }

    def table(self, lang: str = "en") -> str:
        """The cmp table as text, with the local verdict and the diagnosis line that names the cause."""
        t = self.totals
        lines = [localize(tr("{passed}/{total} right end to end, {local}/{total} locally", passed=t["passed"],
                             total=t["total"], local=t["local_passed"]), lang)]
        local = localize(tr("local"), lang)
        for row in self.rows:
            maxdiff = "-" if row.end_to_end.maxdiff is None else f"{row.end_to_end.maxdiff:.3g}"
            first = localize(row.diagnosis[0], lang) if row.diagnosis else ""
            lines.append(f"{row.name:15s} | {row.status:14s} | {local}: {row.local_status:14s} | maxdiff: {maxdiff:9s} | "
                         f"{first}")
        if self.error:
            lines.append(localize(tr("the cell stopped: {error}", error=self.error.sentence()), lang))
        lines.extend(localize(note, lang) for note in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self.html()

    def html(self, lang: str = "en") -> str:
        """The table for a notebook: name, variable, end to end, local, maxdiff, the telling line."""
        t = self.totals
        heads = ("node", "variable", "status", "local", "maxdiff", "diagnosis")
        head = "".join(f"<th>{html.escape(localize(tr(h), lang))}</th>" for h in heads)
        rows = []
        for row in self.rows:
            maxdiff = "–" if row.end_to_end.maxdiff is None else f"{row.end_to_end.maxdiff:.3g}"
            first = html.escape(localize(row.diagnosis[0], lang)) if row.diagnosis else ""
            rows.append(f"<tr><td><code>{html.escape(row.name)}</code></td>"
                        f"<td><code>{html.escape(row.variable or '–')}</code></td>"
                        f"<td style='color:{COLOURS.get(row.status, '#000')}'><b>{row.status}</b></td>"
                        f"<td style='color:{COLOURS.get(row.local_status, '#000')}'>{row.local_status}</td>"
                        f"<td>{maxdiff}</td><td style='text-align:left'>{first}</td></tr>")
        caption = html.escape(localize(tr("{passed}/{total} right end to end, {local}/{total} locally",
                                          passed=t["passed"], total=t["total"], local=t["local_passed"]), lang))
        tail = f"<p>{html.escape(localize(tr('the cell stopped: {error}', error=self.error.text(lang)), lang))}</p>" \
            if self.error else ""
        return f"<table><caption>{caption}</caption><tr>{head}</tr>{''.join(rows)}</table>{tail}"


def reused_aliases(run: Run, statements: list[Statement]) -> frozenset[str]:
    """Alias gradient names the cell uses for something else. The seed notebook defines both dh
    and da, and its da is d(apreact): there, da is the learner's own variable, not dh's alias."""
    defined = set().union(*(s.defines for s in statements)) if statements else set()
    return frozenset(f"d{alias}" for alias, target in run.tape.aliases.items()
                     if f"d{alias}" in defined and f"d{target}" in defined)


# ---- watching gradients change ------------------------------------------------------------------

@dataclass
class Change:
    """A gradient changed in place by a statement that does not name it (through a shared tensor)."""

    name: str  # the gradient variable: dbndiff
    set_at: int  # index of the statement that last set it by name
    changed_at: int  # index of the statement that changed it afterwards
    via: list[str]  # the names that statement changed that share its storage: dhprebn
    before: torch.Tensor | None  # its value as it was set (None when too large to keep)


class Watch:
    """After each top-level statement of the cell, notes which gradient variables were set by name
    and which changed without being named (tensor._version counts in-place changes; views share it)."""

    def __init__(self, statements: list[Statement], names: set[str]) -> None:
        self.statements = statements
        self.names = names
        self.state: dict[str, tuple[int, torch.Tensor, int, torch.Tensor | None]] = {}
        self.changes: dict[str, Change] = {}

    def __call__(self, index: int, scope: Scope) -> None:
        statement = self.statements[index]
        for name in self.names:
            value = scope.vars.get(name)
            if not isinstance(value, torch.Tensor):
                continue
            if name in statement.defines:
                before = value.detach().clone() if value.numel() <= SNAPSHOT_ELEMENTS else None
                self.state[name] = (index, value, value._version, before)
                continue
            known = self.state.get(name)
            if known is None or known[1] is not value or known[2] == value._version or name in self.changes:
                continue
            storage = value.untyped_storage().data_ptr()
            via = sorted(other for other in statement.defines if other != name and isinstance(
                scope.vars.get(other), torch.Tensor) and scope.vars[other].untyped_storage().data_ptr() == storage)
            self.changes[name] = Change(name, known[0], index, via, known[3])


def change_note(run: Run, node: str, change: Change, statements: list[Statement], source: str) -> Text:
    """What changed d<node> after it was set, by which lines, and why (the names share storage)."""
    set_line, changed_line = statements[change.set_at].lines[0], statements[change.changed_at].lines[0]
    if change.via:
        via = change.via[0]
        shared = next((j for j in range(change.changed_at, -1, -1) if via in statements[j].rebinds), None)
        if shared is not None:
            state = tr("right")
            if change.before is not None and compare(change.before, run.autograd[node]).status not in PASSING:
                state = tr("wrong")
            code = ast.get_source_segment(source, statements[shared].node) or ""
            return tr("your d{name} was {state} when line {set_line} set it, but line {changed_line} changed it "
                      "afterwards, in place through {via}: line {shared_line} ({code}) makes {via} and d{name} one "
                      "tensor (they share storage), so changing one changes both; write {via} = d{name}.clone()",
                      name=change.name[1:], state=state, set_line=set_line, changed_line=changed_line, via=via,
                      shared_line=statements[shared].lines[0], code=code.strip())
    return tr("your d{name} was changed in place after line {set_line} set it, by line {changed_line}, through a name "
              "that shares its storage; use .clone() where you copy it", name=change.name[1:], set_line=set_line,
              changed_line=changed_line)


# ---- per node ----------------------------------------------------------------------------------

def _local(run: Run, node: str, program: Program, program_statements: list[Statement], own: frozenset[str],
           limits: Limits, clock: SharedClock) -> tuple[str, Any, DojoError | None, list[int], list[Event]]:
    """("found", value, None, slice, events) of the learner's lines for `node` fed autograd's upstream
    gradients, or ("missing" | "error", None, error, slice, events). `own`: alias names the cell uses for
    its own variables. `slice`: the indices of the statements run."""
    seeds = defining(program_statements, run.tape.gradient_names(node))
    if not seeds:
        return "missing", None, None, [], []
    given = set(true_gradients(run, node)) - own
    kept = backward_slice(program_statements, seeds, given)
    with clock.running():
        done = execute(program, node_scope(run, node, without=own), limits,
                       statements=[program_statements[i].node for i in kept], budget=clock.budget(limits),
                       raise_errors=False)
    found = answer_of(run, done.scope, node)
    if done.error is not None:
        return "error", None, done.error, kept, done.events
    if found is None:
        return "missing", None, None, kept, done.events
    return "found", found[1], None, kept, done.events


def _upstream_problems(run: Run, node: str, statuses: dict[str, str]) -> list[str]:
    """The gradients feeding `node` that are wrong in the learner's cell."""
    return [f"d{step.out}" for step, _ in run.tape.consumers.get(node, [])
            if statuses.get(step.out) not in (*PASSING, None)]


def _row_diagnosis(name: str, e2e: Comparison, e2e_notes: list[str], local_status: str, local_notes: list[str],
                   local_error: DojoError | None, upstream_wrong: list[str], change: Text | None) -> list[str]:
    """The row's sentences, the one that names the cause first (issue 14, item 7)."""
    if change is not None and e2e.status not in PASSING:
        return [change, *e2e_notes]
    if e2e.status in PASSING:
        return e2e_notes
    if e2e.status == "missing":  # not defined, or not reached: say so first, then how its own lines fare
        alone: list[str] = []
        if local_status in PASSING:
            alone = [tr("on its own, fed autograd's upstream gradients, your d{name} is {status}", name=name,
                        status=STATUS_WORDS[local_status])]
        elif local_status in ("mismatch", "shape_mismatch"):
            alone = [tr("on its own, fed autograd's upstream gradients, your d{name} is {status}: {reason}", name=name,
                        status=STATUS_WORDS[local_status], reason=local_notes[0] if local_notes else "")]
        return e2e_notes + alone
    if local_error is not None:
        return [tr("your lines for d{name}, run with autograd's upstream gradients, fail: {error}", name=name,
                   error=local_error.sentence()), *e2e_notes]
    if local_status in PASSING:
        if upstream_wrong:
            return [tr("your step is right: fed autograd's upstream gradients it is {status}; the difference comes "
                       "from upstream ({names} {verb} wrong)", status=STATUS_WORDS[local_status],
                       names=", ".join(upstream_wrong), verb=tr("is") if len(upstream_wrong) == 1 else tr("are"))]
        # every upstream gradient agrees: upstream is not to blame (issue 14, item 2)
        return [tr("your lines for d{name} are right when fed autograd's upstream gradients, and every gradient "
                   "upstream of it is right at the end of the cell: one of them was different when your lines ran "
                   "(changed later?)", name=name), *e2e_notes]
    if local_status in ("mismatch", "shape_mismatch"):
        return local_notes  # judged with correct inputs, so these findings are about this step itself
    return e2e_notes


Probe = tuple["Run", Scope, list[Event], DojoError | None]


def _cell_batches(run: Run, program: Program, limits: Limits, clock: SharedClock) -> list[Probe]:
    """The whole cell on each of the other minibatches: (probe, its scope at the end, events, error)."""
    found: list[Probe] = []
    for probe in other_batches(run):
        if clock.spent >= clock.seconds:
            break
        with clock.running():
            done = execute(program, cell_scope(probe), limits, budget=clock.budget(limits), raise_errors=False)
        found.append((probe, done.scope, done.events, done.error))
    return found


def grade_cell(run: Run, code: str, *, limits: Limits | None = None, deep: bool = True) -> GradeReport:
    """Judge every d<name> a whole exercise cell defines. Raises DojoError only when the code is
    refused before running (syntax, forbidden, size); errors while running are in the report.

    `limits.seconds` bounds the learner's code over the cell and all its per-node re-runs together;
    with `deep` (the default) the other minibatches and the float64 reruns get as much again, and
    the one-edit searches SEARCH_SECONDS in all. Judging (comparisons, diagnoses) comes on top.
    `limits` defaults to the network's (limits.cell_limits: a GPT's cell is longer than an MLP's)."""
    limits = cell_limits(run.net) if limits is None else limits
    program = parse(code, limits)
    statements = analyse(program.tree.body)
    tape = run.tape
    watch = Watch(statements, {g for node in tape.backward_order for g in tape.gradient_names(node)})
    clock = SharedClock(limits.seconds)  # one time limit for the cell and all the local re-runs
    with clock.running():
        done = execute(program, cell_scope(run), limits, budget=clock.budget(limits), raise_errors=False, after=watch)
    own = reused_aliases(run, statements)
    stopped_line = done.error.line if done.error else None
    extra_clock = SharedClock(limits.seconds)  # other minibatches and float64 reruns
    batches = _cell_batches(run, program, limits, extra_clock) if deep and done.error is None else []
    search_left = SEARCH_SECONDS
    searches: list[Search] = []

    rows: list[GradeRow] = []
    statuses: dict[str, str] = {}
    for name in tape.backward_order:
        found = answer_of(run, done.scope, name)
        variable, value = found if found else (None, None)
        e2e, e2e_notes = judge_value(run, name, value, done.events)
        if found is None:
            missing = tr("not reached: the cell stopped at line {line}", line=stopped_line) if done.error and defining(
                statements, tape.gradient_names(name)) else tr("not defined: the cell never assigns d{name}", name=name)
            e2e_notes = [*_found_elsewhere(run, name, done.scope), missing]  # where it is, if anywhere, first
        local_status, local_value, local_error, kept, local_events = _local(run, name, program, statements, own,
                                                                            limits, clock)
        local_maxdiff: float | None = None
        local_notes: list[str] = []
        if local_status == "found":
            local, local_notes = judge_value(run, name, local_value, local_events)
            local_status, local_maxdiff = local.status, local.maxdiff
        statuses[name] = e2e.status
        seeds = defining(statements, tape.gradient_names(name))
        lines = sorted({line for i in seeds for line in range(statements[i].lines[0], statements[i].lines[1] + 1)})
        change = next((watch.changes[g] for g in tape.gradient_names(name) if g in watch.changes), None)
        diagnosis = _row_diagnosis(name, e2e, e2e_notes, local_status, local_notes, local_error,
                                   _upstream_problems(run, name, statuses),
                                   change_note(run, name, change, statements, code) if change else None)
        extras: dict[str, Any] = {"lens": lens_of(run, name, value)}
        if deep:
            slice_nodes = [statements[i].node for i in kept]
            runner = program_runner(program, name, limits, slice_nodes, own)
            try:
                if e2e.status in PASSING:
                    extras["batches"] = row_batches(name, variable, batches)
                    diagnosis = [*diagnosis, *batch_line(name, extras["batches"])]
                if e2e.status == "approx" and local_status in PASSING and isinstance(value, torch.Tensor):
                    extras["rounding"], line = rounding(run, name, value, runner, extra_clock)
                    diagnosis = [*diagnosis, line]
                wrong_alone = local_status in ("mismatch", "shape_mismatch") or (
                    local_error is not None and local_error.kind == "runtime")
                if wrong_alone and search_left > 0:
                    started = time.monotonic()
                    found_fix = fix_search(run, name, program, slice_nodes, own, [statements[i].node for i in seeds])
                    search_left -= time.monotonic() - started
                    searches.append(found_fix)
                    if found_fix.fix is not None:
                        extras["fix"] = found_fix.fix
                        diagnosis = [*diagnosis, found_fix.fix.message]
            except DojoError:
                pass  # out of time for the extras: the row itself stands
            except Exception:  # never let an extra turn a report into a crash
                log.exception("extra judging failed for d%s", name)
        rows.append(GradeRow(name=name, variable=variable, end_to_end=e2e, local_status=local_status,
                             local_maxdiff=local_maxdiff, local_error=local_error, diagnosis=diagnosis, lines=lines,
                             **extras))
    notes = _unknown_gradients(run, done.scope.assigned)
    if any(is_cmp_line(node) for node in ast.walk(program.tree)):
        notes.append(tr("the cmp(...) lines were skipped: every gradient is compared with autograd here"))
    return GradeReport(rows, done.error, done.output, notes, searches)


def row_batches(name: str, variable: str | None, batches: list[Probe]) -> list[BatchVerdict]:
    """The node's answer in the cell run on each other minibatch, judged there (a cell that stopped
    there before defining it: the error, with what explains it)."""
    found = []
    for probe, scope, events, error in batches:
        value = scope.vars.get(variable) if variable and variable in scope.assigned else None
        if value is None and error is not None:
            found.append(BatchVerdict(probe.config.seed, "error",
                                      [*one_hot_findings(events, probe.data.vocab.size), error.sentence()]))
            continue
        comparison, notes = judge_value(probe, name, value, events)
        found.append(BatchVerdict(probe.config.seed, comparison.status, notes))
    return found


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
            return [tr("your {variable} holds this gradient: name it {names} to have it judged here",
                       variable=variable, names=names)]
    return []


def _unknown_gradients(run: Run, assigned: dict[str, None]) -> list[str]:
    """d<something> names that look like a node's gradient but are not one (a typo, usually)."""
    tape = run.tape
    known = {dname for node in tape.backward_order for dname in tape.gradient_names(node)}
    known |= {f"d{alias}" for alias in tape.aliases}
    notes: list[str] = []
    for name in assigned:
        if name.startswith("d") and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.85)
            if close:
                notes.append(tr("{name} is not the gradient of any node: did you mean {close}?", name=name,
                                close=close[0]))
    return notes
