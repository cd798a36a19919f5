"""Judge a learner's gradient: one node (`check_node`) or a whole exercise cell (`grade_cell`).

    verdict = check_node(run, "h", "dh = dlogits @ W2.T")
    verdict.status, verdict.diagnosis          # "exact", ["exact: bit for bit what autograd computed"]
    verdict                                    # in Jupyter: a small table; repr: two lines
    report = grade_cell(run, tape.exercise_cell())
    report.totals["passed"]                    # 26

Besides the comparison on the run's own minibatch, a verdict holds: the answer on a few more
minibatches (probes.py), the one-edit fix of a wrong formula (edits.py), for an `approx` answer the
rerun in float64 with the distance in ulps, and the verdict under other tolerance standards (the
lens, compare.py). Both results' to_dict(lang=...) hold only JSON types (non-finite floats become
None and their field names are listed in "nonfinite"), with every sentence in `lang`.
"""

from __future__ import annotations

import ast
import html
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..compare import Comparison, compare, lens, ulp_distance
from ..figures import Lang, node_figure
from ..i18n import Text, german, localize, name_choices, tr
from .diagnose import diagnose, fmt, one_hot_findings, suspicious
from .edits import Search, search
from .errors import DojoError, UnknownNodeError
from .limits import DEFAULT_LIMITS, Limits, SharedClock, node_limits
from .probes import other_batches, twin64
from .sandbox import Program, execute, parse
from .scope import Scope, forward_names, node_scope, true_gradients
from .trace import Event

if TYPE_CHECKING:
    from ..run import Run

LAST_EXPRESSION = "last expression"
PROVED = 1e-12  # float64 agreement (relative to the gradient's largest entry) that proves a formula
log = logging.getLogger(__name__)

german({
    "{error}; {fix}": "{error}; {fix}",
    "unknown node {node} for {net}; nodes: {nodes}{aliases}":
        "unbekannter Knoten {node} für {net}; Knoten: {nodes}{aliases}",
    " (and {aliases})": " (und {aliases})",
    "no answer: assign {names} = ... (or end with an expression)":
        "keine Antwort: weise {names} = ... zu (oder ende mit einem Ausdruck)",
    "exact": "exakt", "right up to rounding": "bis auf Rundung richtig", "wrong": "falsch",
    "the wrong shape": "von falscher Form", "missing": "fehlend",
    "on the minibatch of seed {seed} your code for d{node} fails: {reason}":
        "auf dem Minibatch von Seed {seed} scheitert dein Code für d{node}: {reason}",
    "on the minibatch of seed {seed} your d{node} is {status}: {reason}":
        "auf dem Minibatch von Seed {seed} ist dein d{node} {status}: {reason}",
    "rerun in float64, your code agrees with float64 autograd to {maxdiff:.1g}: the formula is right and the "
    "{dtype} difference is rounding, at most {ulps} ulps (worst at {index}: yours {yours:.9g}, autograd's "
    "{autograd:.9g})":
        "in float64 wiederholt stimmt dein Code mit Autograd in float64 auf {maxdiff:.1g} überein: die Formel ist "
        "richtig und die Abweichung in {dtype} ist Rundung, höchstens {ulps} ulps (am größten bei {index}: deins "
        "{yours:.9g}, Autograds {autograd:.9g})",
    "rerun in float64, your code still differs from float64 autograd by {maxdiff:.2g}: more than rounding, check "
    "the formula ({ulps} ulps in {dtype}, worst at {index}: yours {yours:.9g}, autograd's {autograd:.9g})":
        "in float64 wiederholt weicht dein Code immer noch um {maxdiff:.2g} von Autograd in float64 ab: mehr als "
        "Rundung, prüfe die Formel ({ulps} ulps in {dtype}, am größten bei {index}: deins {yours:.9g}, Autograds "
        "{autograd:.9g})",
    "rerun in float64, your code makes a {dtype} tensor (a torch.zeros or torch.ones without dtype=?), so the "
    "rerun cannot tell rounding from a wrong formula":
        "in float64 wiederholt erzeugt dein Code einen {dtype}-Tensor (ein torch.zeros oder torch.ones ohne "
        "dtype=?), daher kann die Wiederholung Rundung nicht von einer falschen Formel unterscheiden",
    "{ulps} ulps at most (worst at {index}: yours {yours:.9g}, autograd's {autograd:.9g})":
        "höchstens {ulps} ulps (am größten bei {index}: deins {yours:.9g}, Autograds {autograd:.9g})",
    "{ulps} ulps at most (worst at {index}: yours {yours:.17g}, autograd's {autograd:.17g})":
        "höchstens {ulps} ulps (am größten bei {index}: deins {yours:.17g}, Autograds {autograd:.17g})",
    "node": "Knoten", "read from": "gelesen aus", "status": "Status", "maxdiff": "maxdiff",
    "diagnosis": "Diagnose", "standard": "Standard", "passed": "bestanden",
})

STATUS_WORDS: dict[str, Text] = {"exact": tr("exact"), "approx": tr("right up to rounding"), "mismatch": tr("wrong"),
                                 "shape_mismatch": tr("the wrong shape"), "missing": tr("missing")}
COLOURS = {"exact": "#1a7f37", "approx": "#9a6700", "mismatch": "#cf222e", "shape_mismatch": "#cf222e",
           "missing": "#6e7781", "error": "#cf222e"}


def finite_or_none(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """JSON has no NaN/Inf: replace them by None and name the fields that were."""
    out: dict[str, Any] = {}
    nonfinite: list[str] = []
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
            nonfinite.append(key)
        else:
            out[key] = value
    return out, nonfinite


def canonical(run: Run, node: str) -> str:
    """The node's own name (an alias resolved). Raises UnknownNodeError naming the network's nodes."""
    tape = run.tape
    name = tape.resolve(node)
    if name is None or name not in tape.backward_order:  # "loss" resolves, but its gradient is not an exercise
        aliases = tr(" (and {aliases})", aliases=", ".join(tape.aliases)) if tape.aliases else ""
        raise UnknownNodeError(tr("unknown node {node} for {net}; nodes: {nodes}{aliases}", node=repr(node),
                                  net=run.config.net, nodes=name_choices(str(node)[:40], list(tape.backward_order)),
                                  aliases=aliases))
    return name


def answer_of(run: Run, scope: Scope, node: str) -> tuple[str, Any] | None:
    """(variable, value) of the learner's d<node>, under its own name or its alias, if the code bound it."""
    for name in run.tape.gradient_names(node):
        if name in scope.assigned:
            return name, scope.vars[name]
    return None


def dtype_name(value: Any) -> str | None:
    return str(value.dtype).replace("torch.", "") if isinstance(value, torch.Tensor) else None


# ---- what else is judged: other batches, float64, the lens -----------------------------------

Runner = Callable[["Run", float | None], tuple[Any, list[Event]]]  # (run, deadline) -> (answer, events)


@dataclass(frozen=True)
class BatchVerdict:
    """The same code on another minibatch of the same network (another seed, the same sizes)."""

    seed: int
    status: str
    diagnosis: list[str]

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {"seed": self.seed, "status": self.status, "passed": self.status in ("exact", "approx"),
                "diagnosis": localize(list(self.diagnosis), lang)}


def judge_batches(run: Run, node: str, runner: Runner, clock: SharedClock) -> list[BatchVerdict]:
    """Run the learner's code on the other minibatches (probes.py) and judge each answer there."""
    found: list[BatchVerdict] = []
    for probe in other_batches(run):
        if clock.spent >= clock.seconds:
            break
        try:
            with clock.running():
                value, events = runner(probe, None)
        except DojoError as exc:
            found.append(BatchVerdict(probe.config.seed, "error",
                                      [*one_hot_findings(exc.events, probe.data.vocab.size), exc.sentence()]))
            continue
        comparison, notes = judge_value(probe, node, value, events)
        found.append(BatchVerdict(probe.config.seed, comparison.status, notes))
    return found


def batch_line(node: str, batches: Sequence[BatchVerdict]) -> list[Text]:
    """The first other minibatch where the answer does not hold, in one sentence."""
    for b in batches:
        if b.status == "error":
            return [tr("on the minibatch of seed {seed} your code for d{node} fails: {reason}", seed=b.seed, node=node,
                       reason=b.diagnosis[0] if b.diagnosis else "")]
        if b.status not in ("exact", "approx"):
            reason = b.diagnosis[0] if b.diagnosis else ""
            return [tr("on the minibatch of seed {seed} your d{node} is {status}: {reason}", seed=b.seed, node=node,
                       status=STATUS_WORDS.get(b.status, b.status), reason=reason)]
    return []


def rounding(run: Run, node: str, value: torch.Tensor, runner: Runner, clock: SharedClock) -> tuple[dict[str, Any], Text]:
    """For an approx answer: ulps and the worst entry, and (float32) the learner's own code rerun in
    float64: agreement with float64 autograd to PROVED proves the formula right (issue 14, item 8)."""
    expected = run.autograd[node]
    yours = value.detach().to(expected.dtype)
    ulps = ulp_distance(yours, expected)
    worst = int(ulps.reshape(-1).argmax()) if ulps.numel() else 0
    index = [int(i) for i in torch.unravel_index(torch.tensor(worst), expected.shape)] if expected.dim() else []
    flat_y, flat_e = yours.reshape(-1), expected.reshape(-1)
    facts: dict[str, Any] = {"ulps": int(ulps.max()) if ulps.numel() else 0, "index": index,
                             "yours": float(flat_y[worst]) if flat_y.numel() else 0.0,
                             "autograd": float(flat_e[worst]) if flat_e.numel() else 0.0,
                             "float64_maxdiff": None, "proved": None}
    where = str(index) if index else "()"
    dtype = dtype_name(expected)
    if expected.dtype == torch.float64:
        return facts, tr("{ulps} ulps at most (worst at {index}: yours {yours:.17g}, autograd's {autograd:.17g})",
                         ulps=facts["ulps"], index=where, yours=facts["yours"], autograd=facts["autograd"])
    twin = twin64(run)
    if twin is None:  # too large to hold again in float64: the distance alone
        return facts, tr("{ulps} ulps at most (worst at {index}: yours {yours:.9g}, autograd's {autograd:.9g})",
                         ulps=facts["ulps"], index=where, yours=facts["yours"], autograd=facts["autograd"])
    with clock.running():
        again, _ = runner(twin, None)
    if not isinstance(again, torch.Tensor) or again.dtype != torch.float64:
        return facts, tr("rerun in float64, your code makes a {dtype} tensor (a torch.zeros or torch.ones without "
                         "dtype=?), so the rerun cannot tell rounding from a wrong formula", dtype=dtype_name(again))
    reference = twin.autograd[node]
    if again.shape != reference.shape:
        return facts, tr("rerun in float64, your code still differs from float64 autograd by {maxdiff:.2g}: more than "
                         "rounding, check the formula ({ulps} ulps in {dtype}, worst at {index}: yours {yours:.9g}, "
                         "autograd's {autograd:.9g})", maxdiff=math.inf, ulps=facts["ulps"], dtype=dtype, index=where,
                         yours=facts["yours"], autograd=facts["autograd"])
    maxdiff = float((again - reference).abs().max()) if again.numel() else 0.0
    scale = max(1.0, float(reference.abs().max()) if reference.numel() else 0.0)
    facts["float64_maxdiff"] = maxdiff
    facts["proved"] = maxdiff <= PROVED * scale
    template = ("rerun in float64, your code agrees with float64 autograd to {maxdiff:.1g}: the formula is right and "
                "the {dtype} difference is rounding, at most {ulps} ulps (worst at {index}: yours {yours:.9g}, "
                "autograd's {autograd:.9g})") if facts["proved"] else (
                "rerun in float64, your code still differs from float64 autograd by {maxdiff:.2g}: more than rounding, "
                "check the formula ({ulps} ulps in {dtype}, worst at {index}: yours {yours:.9g}, autograd's "
                "{autograd:.9g})")
    return facts, tr(template, maxdiff=maxdiff, dtype=dtype, ulps=facts["ulps"], index=where, yours=facts["yours"],
                     autograd=facts["autograd"])


def edit_context(run: Run, node: str, scope_names: dict[str, Any]) -> dict[str, Any]:
    """What the one-edit search may swap in: the tensors of the scope with their shapes, and each
    name's neighbours on the tape (its step's inputs and outputs, and their gradients)."""
    shapes = {k: tuple(v.shape) for k, v in scope_names.items() if isinstance(v, torch.Tensor)}
    tape = run.tape
    neighbours: dict[str, list[str]] = {}
    for src, dst in tape.edges:
        neighbours.setdefault(src, []).append(dst)
        neighbours.setdefault(dst, []).append(src)
        neighbours.setdefault(f"d{src}", []).append(f"d{dst}")
        neighbours.setdefault(f"d{dst}", []).append(f"d{src}")
    counts = [k for k, v in run.constants.items() if isinstance(v, int) and not isinstance(v, bool)]
    return {"shapes": shapes, "swappable": sorted(shapes), "neighbours": neighbours, "counts": counts}


# ---- one node ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    node: str  # the node judged (canonical name: "h" even if asked as "a")
    variable: str  # where the answer was read: "dh", "da" or "last expression"
    comparison: Comparison
    diagnosis: list[str]
    dtype: str | None  # the answer's dtype ("float32"), None when it is not a tensor
    expected_dtype: str
    output: list[str] = field(default_factory=list)  # what print() wrote
    figure: dict[str, Any] | None = None  # plotly JSON: value, yours, autograd, |diff|
    fix: Any = None  # edits.Fix: the first one-edit change that makes a wrong answer right
    search: Search | None = None  # what the one-edit search did (None: not run, the answer was right)
    lens: list[dict[str, Any]] | None = None  # the verdict under other tolerance standards (compare.lens)
    rounding: dict[str, Any] | None = None  # approx: ulps, worst entry, float64 rerun
    batches: list[BatchVerdict] = field(default_factory=list)  # the same code on other minibatches

    @property
    def status(self) -> str:
        return self.comparison.status

    @property
    def passed(self) -> bool:
        return self.comparison.status in ("exact", "approx")

    def to_dict(self, figure: bool = True, lang: str = "en") -> dict[str, Any]:
        c = self.comparison
        numbers, nonfinite = finite_or_none({"maxdiff": c.maxdiff, "relerr": c.relerr})
        body: dict[str, Any] = {
            "node": self.node, "variable": self.variable, "status": c.status, "passed": self.passed,
            "exact": c.exact, "approx": c.approx, **numbers, "nonfinite": nonfinite,
            "shape": list(c.manual_shape) if c.manual_shape is not None else None,
            "expected_shape": list(c.shape) if c.shape is not None else None,
            "dtype": self.dtype, "expected_dtype": self.expected_dtype,
            "diagnosis": localize(list(self.diagnosis), lang), "output": list(self.output),
            "fix": self.fix.to_dict(lang) if self.fix is not None else None,
            "lens": self.lens, "rounding": _finite(self.rounding),
            "batches": [b.to_dict(lang) for b in self.batches],
        }
        if figure:
            body["figure"] = self.figure
        return body

    def __repr__(self) -> str:
        c = self.comparison
        maxdiff = "" if c.maxdiff is None else f", maxdiff {c.maxdiff:.3g}"
        first = f"\n  {self.diagnosis[0]}" if self.diagnosis else ""
        return f"<Verdict d{self.node}: {c.status} (from {self.variable}{maxdiff}){first}>"

    def _repr_html_(self) -> str:
        return verdict_html(self)


def _finite(facts: dict[str, Any] | None) -> dict[str, Any] | None:
    if facts is None:
        return None
    return {k: (v if not (isinstance(v, float) and not math.isfinite(v)) else None) for k, v in facts.items()}


def verdict_html(v: Verdict, lang: str = "en") -> str:
    """A small table: the status, the diagnosis, the lens; what a notebook shows for a Verdict."""
    def t(word: str) -> str:
        return html.escape(localize(tr(word), lang))

    c = v.comparison
    maxdiff = "–" if c.maxdiff is None else f"{c.maxdiff:.3g}"
    rows = "".join(f"<li>{html.escape(localize(d, lang))}</li>" for d in v.diagnosis)
    lens_rows = "".join(f"<tr><td>{html.escape(r['standard'])}</td><td>{'✓' if r['passed'] else '✗'}</td></tr>"
                        for r in v.lens or [])
    lens_table = f"<table><tr><th>{t('standard')}</th><th>{t('passed')}</th></tr>{lens_rows}</table>" if lens_rows else ""
    return (f"<table><tr><th>{t('node')}</th><th>{t('read from')}</th><th>{t('status')}</th><th>{t('maxdiff')}</th></tr>"
            f"<tr><td><code>d{html.escape(v.node)}</code></td><td><code>{html.escape(v.variable)}</code></td>"
            f"<td style='color:{COLOURS.get(c.status, '#000')}'><b>{html.escape(c.status)}</b></td><td>{maxdiff}</td>"
            f"</tr></table><ul>{rows}</ul>{lens_table}")


def judge_value(run: Run, node: str, value: Any, events: Sequence[Event] = ()) -> tuple[Comparison, list[str]]:
    comparison = compare(value, run.autograd[node])
    try:
        notes: list[str] = list(diagnose(node, value, run, comparison, events))
    except Exception:  # the learner's tensor can be anything; a diagnosis must never turn a verdict into a crash
        log.exception("diagnosis failed for d%s", node)
        notes = [comparison.message or comparison.status]
    return comparison, notes


def figure_for(run: Run, node: str, value: Any, lang: Lang = "en") -> dict[str, Any] | None:
    reference = run.autograd[node]
    yours = value.detach().to(reference.dtype) if isinstance(value, torch.Tensor) else None
    try:
        value = run.values[node]  # the network's axis names: an attention tensor is drawn as a grid of heads
        return node_figure(node, value, yours, reference, manual_label="yours", lang=lang,
                           axes=run.net.axes(node, value.dim()))
    except Exception:  # as above: no figure rather than no verdict
        log.exception("figure failed for d%s", node)
        return None


def lens_of(run: Run, node: str, value: Any) -> list[dict[str, Any]] | None:
    reference = run.autograd[node]
    if not isinstance(value, torch.Tensor) or value.shape != reference.shape:
        return None
    return lens(value, reference)


def check_node(run: Run, node: str, code: str, *, limits: Limits | None = None, figure: bool = True,
               lang: Lang = "en", deep: bool = True) -> Verdict:
    """Run the learner's `code` for one node and judge d<node> against autograd.

    The code sees the forward values, parameters, Xb, Yb, n, torch, F, and the true gradient of
    every node between this one and the loss. The answer is d<node> (or its alias) if the code
    assigns it, else the value of the last expression statement. With `deep` (the default) the
    answer is also judged on other minibatches, a wrong one gets the one-edit search and an approx
    one the float64 rerun (together at most `limits.seconds` more for the learner's code, plus
    MAX_SECONDS for the search). `limits` defaults to the network's (limits.node_limits: its source
    limit fits the network). Raises DojoError for anything wrong with the code itself
    (UnknownNodeError, a ValueError, for a node that does not exist)."""
    limits = node_limits(run.net) if limits is None else limits
    name = canonical(run, node)
    program = parse(code, limits)
    try:
        done = execute(program, node_scope(run, name), limits)
    except DojoError as exc:
        if deep and exc.kind == "runtime":  # a name or a shape off by one edit, a one_hot too narrow: say so
            raise with_fix(with_causes(exc, run), run, name, program) from None
        raise
    found = answer_of(run, done.scope, name)
    if found is None:
        if done.last_value is None:
            names = " or ".join(run.tape.gradient_names(name))
            raise DojoError("no_answer", tr("no answer: assign {names} = ... (or end with an expression)", names=names))
        found = (LAST_EXPRESSION, done.last_value)
    variable, value = found
    comparison, diagnosis = judge_value(run, name, value, done.events)
    extras: dict[str, Any] = {"lens": lens_of(run, name, value)}
    if deep:
        extras.update(_deeper(run, name, program, value, comparison, diagnosis, limits))
    return Verdict(
        node=name, variable=variable, comparison=comparison, diagnosis=diagnosis,
        dtype=dtype_name(value), expected_dtype=dtype_name(run.autograd[name]) or "",
        output=done.output, figure=figure_for(run, name, value, lang) if figure else None, **extras,
    )


def with_fix(exc: DojoError, run: Run, node: str, program: Program) -> DojoError:
    """The runtime error, with the one-edit change that makes the code right, when there is one."""
    try:
        found = fix_search(run, node, program)
    except Exception:
        log.exception("one-edit search failed for d%s", node)
        return exc
    if found.fix is None:
        return exc
    return DojoError(exc.kind, tr("{error}; {fix}", error=exc.message, fix=found.fix.message), exc.line, exc.col)


def with_causes(exc: DojoError, run: Run) -> DojoError:
    """The runtime error, with what the interpreter noticed that explains it (a too narrow one_hot)."""
    causes = one_hot_findings(exc.events, run.data.vocab.size)
    if not causes:
        return exc
    explained = DojoError(exc.kind, tr("{error}; {fix}", error=exc.message, fix=causes[0]), exc.line, exc.col)
    explained.events = exc.events
    return explained


def program_runner(program: Program, node: str, limits: Limits, statements: Sequence[ast.stmt] | None = None,
                   without: frozenset[str] = frozenset()) -> Runner:
    """Runs the learner's program (or some of its statements) on any run of the network, reading its
    d<node> (or the last expression), for the other minibatches and the float64 twin."""
    def run_on(other: Run, deadline: float | None) -> tuple[Any, list[Event]]:
        from .limits import Budget

        done = execute(program, node_scope(other, node, without=without), limits, statements=statements,
                       budget=Budget.start(limits, deadline))
        found = answer_of(other, done.scope, node)
        return (found[1] if found else done.last_value), done.events
    return run_on


def _deeper(run: Run, node: str, program: Program, value: Any, comparison: Comparison, diagnosis: list[str],
            limits: Limits, statements: Sequence[ast.stmt] | None = None, without: frozenset[str] = frozenset(),
            editable: Sequence[ast.stmt] | None = None, batches: bool = True) -> dict[str, Any]:
    """Other minibatches, the one-edit search and the float64 rerun; `diagnosis` gets their lines."""
    runner = program_runner(program, node, limits, statements, without)
    clock = SharedClock(limits.seconds)
    extras: dict[str, Any] = {}
    passed = comparison.status in ("exact", "approx")
    try:
        if passed and batches:
            extras["batches"] = judge_batches(run, node, runner, clock)
            diagnosis.extend(batch_line(node, extras["batches"]))
        if comparison.status == "approx" or (passed and suspicious(comparison)):
            extras["rounding"], line = rounding(run, node, value, runner, clock)
            diagnosis.append(line)
        if not passed:
            extras["search"] = found = fix_search(run, node, program, statements, without, editable)
            extras["fix"] = found.fix
            if found.fix is not None:
                # the telling line first: the fix names the cause where the diagnosis found only "differs"
                generic = bool(diagnosis) and getattr(diagnosis[0], "template", "").startswith("differs at {bad}")
                diagnosis.insert(0 if generic else len(diagnosis), found.fix.message)
    except DojoError:  # out of time for the extras: the verdict itself stands
        pass
    except Exception:  # never let an extra turn a verdict into a crash
        log.exception("extra judging failed for d%s", node)
    return extras


def fix_search(run: Run, node: str, program: Program, statements: Sequence[ast.stmt] | None = None,
               without: frozenset[str] = frozenset(), editable: Sequence[ast.stmt] | None = None) -> Search:
    """The one-edit search over the learner's statements for d<node>: `editable` of the `statements`
    run (all of the program by default; a cell's grader passes the node's own lines)."""
    base = {**forward_names(run), **{k: v for k, v in true_gradients(run, node).items() if k not in without}}
    context = edit_context(run, node, base)
    body = list(statements) if statements is not None else list(program.tree.body)
    tree = ast.Module(body=body, type_ignores=[])
    editable = body if editable is None else editable

    def run_edited(edited: ast.Module, deadline: float) -> Any:
        edited_program = Program(program.source, edited)
        value, _ = program_runner(edited_program, node, DEFAULT_LIMITS, None, without)(run, deadline)
        return value

    return search(tree, program.source, editable, run.autograd[node], run_edited, **context)


__all__ = ["LAST_EXPRESSION", "BatchVerdict", "Verdict", "check_node", "fmt", "judge_value"]
