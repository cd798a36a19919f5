"""judge(globals()): every d<name> a learner's notebook holds, judged against autograd on the network's
tape rebuilt from their own parameters and minibatch.

    from ninja_core import judge
    judge(globals())          # after the backward cell: the cmp table, HTML in Jupyter, text elsewhere

What it does, in order:
1. finds the network in the namespace (namespace.py: the MLP first, then the WaveNet, the GPT) with its
   sizes, dtype and device as their tensors have them;
2. rebuilds it on the tape from copies of their parameters and minibatch, autograd as the reference
   (rerun.py), and compares each forward tensor they hold with the tape's. If one differs beyond
   rounding, the table says which node and by how much, and no gradient is judged: a gradient is only
   right or wrong for a given forward pass, and theirs is not the tape's;
3. judges every gradient end to end *as the notebook holds it* (their dh, or da where the seed notebook
   uses the alias), with the dojo's diagnoses;
4. with the backward code (IPython keeps every cell's source in In; see history.py), grades it with the
   dojo's whole-cell grader on the rebuilt run: each node's own lines judged locally (fed autograd's
   upstream gradients), a gradient changed in place through a name sharing its storage, "your da holds
   this gradient", the one-edit fix. Where the cells, replayed, give another value than the notebook
   holds (a cell run out of order), the end-to-end verdict stays the notebook's and a note says so.
   Without the code (a script, or source=""), the local column says "n/a".

Nothing of the learner's is modified: tensors, .grad, requires_grad and retain_grad stay as they were
(the rebuild works on copies; the dojo's scope copies what it reads).
"""

from __future__ import annotations

import html
import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..compare import Comparison, compare
from ..config import SIZE_FIELDS
from ..dojo import DojoError, Fix, GradeReport, grade_cell
from ..dojo.grade import PASSING, row_totals
from ..dojo.judge import COLOURS, judge_value
from ..dojo.scope import forward_names
from ..i18n import Lang, german, localize, pick, tr
from .history import Backward, backward_source
from .rerun import ForwardCheck, Rebuilt, rebuild

log = logging.getLogger(__name__)

german({
    "not defined: your notebook has no d{name}": "nicht definiert: dein Notebook hat kein d{name}",
    "your {variable} holds this gradient: name it {names} to have it judged here":
        "dein {variable} enthält diesen Gradienten: nenne ihn {names}, damit er hier bewertet wird",
    "your {variable} and {other} are one tensor (they share storage), so changing one in place changed both; "
    "copy with .clone() where you assign one from the other":
        "dein {variable} und {other} sind ein Tensor (sie teilen sich den Speicher), also hat eine Änderung in "
        "place beide geändert; kopiere mit .clone(), wo du eines aus dem anderen zuweist",
    "your notebook's {variable} is not what your cells compute from these values (a cell run out of order, or "
    "changed elsewhere?): judged as the notebook holds it; the local verdict is for your cells' lines":
        "das {variable} deines Notebooks ist nicht, was deine Zellen aus diesen Werten berechnen (eine Zelle in "
        "anderer Reihenfolge ausgeführt oder anderswo geändert?): bewertet, wie das Notebook es hält; das lokale "
        "Urteil gilt den Zeilen deiner Zellen",
    "{net} · {dtype} · {sizes} · loss {loss:.4f}": "{net} · {dtype} · {sizes} · Verlust {loss:.4f}",
    "forward: your {count} forward tensors are the tape's, bit for bit":
        "Vorwärts: deine {count} Vorwärts-Tensoren sind bitgenau die des Bands",
    "forward: your {count} forward tensors are the tape's up to rounding (largest difference {maxdiff:.2g} at "
    "{node}): gradients are judged on the tape's forward pass":
        "Vorwärts: deine {count} Vorwärts-Tensoren sind bis auf Rundung die des Bands (größte Abweichung "
        "{maxdiff:.2g} bei {node}): die Gradienten werden auf dem Vorwärtsdurchlauf des Bands bewertet",
    "forward: no forward tensors of yours under the tape's names; judged on the tape's forward pass from your "
    "parameters and minibatch":
        "Vorwärts: keine Vorwärts-Tensoren von dir unter den Namen des Bands; bewertet auf dem Vorwärtsdurchlauf "
        "des Bands aus deinen Parametern und deinem Minibatch",
    "your forward pass is not the tape's: {node} {how}. The tape computes {line}. Gradients are only right or wrong "
    "for one forward pass, so none is judged until yours matches":
        "dein Vorwärtsdurchlauf ist nicht der des Bands: {node} {how}. Das Band rechnet {line}. Gradienten sind nur "
        "für einen Vorwärtsdurchlauf richtig oder falsch, daher wird keiner bewertet, bis deiner übereinstimmt",
    "{node} (your {variable})": "{node} (dein {variable})",
    "{passed}/{total} right end to end, {local}/{total} locally":
        "{passed}/{total} Ende-zu-Ende richtig, {local}/{total} lokal",
    "{passed}/{total} right end to end (local verdicts need your backward code: run judge() in the notebook, "
    "or pass source=...)":
        "{passed}/{total} Ende-zu-Ende richtig (lokale Urteile brauchen deinen Backward-Code: ruf judge() im "
        "Notebook auf oder gib source=... an)",
    "local: your lines from {cells}, each fed autograd's upstream gradients":
        "lokal: deine Zeilen aus {cells}, jede mit Autograds Gradienten von oben gefüttert",
    "the backward code was not graded: {error}": "der Backward-Code wurde nicht bewertet: {error}",
    "the cell stopped: {error}": "die Zelle hielt an: {error}",
    "node": "Knoten", "variable": "Variable", "status": "Status", "local": "lokal", "diagnosis": "Diagnose",
    "your tensor": "dein Tensor", "tape": "Band",
})


@dataclass(frozen=True)
class Row:
    """One gradient of the network, as the learner's notebook holds it."""

    name: str  # the node
    kind: str  # "param" or "intermediate"
    variable: str | None  # their name for d<name> (dh, da), None when they have none
    end_to_end: Comparison  # their value against autograd on the rebuilt run
    local_status: str | None  # exact | approx | mismatch | shape_mismatch | missing | error; None: no code
    local_maxdiff: float | None
    diagnosis: list[str]  # the sentence naming the cause first
    lines: list[int] = field(default_factory=list)  # their lines defining it (in Judgement.backward.source)
    fix: Fix | None = None

    @property
    def status(self) -> str:
        return self.end_to_end.status

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        c = self.end_to_end
        return {"name": self.name, "kind": self.kind, "variable": self.variable, "status": c.status,
                "exact": c.exact, "approx": c.approx, "maxdiff": _finite(c.maxdiff), "relerr": _finite(c.relerr),
                "shape": list(c.shape) if c.shape is not None else None,
                "manual_shape": list(c.manual_shape) if c.manual_shape is not None else None,
                "local_status": self.local_status, "local_maxdiff": _finite(self.local_maxdiff),
                "diagnosis": localize(list(self.diagnosis), lang), "lines": list(self.lines),
                "fix": self.fix.to_dict(lang) if self.fix is not None else None}


def _finite(x: float | None) -> float | None:
    return x if x is None or (x == x and abs(x) != float("inf")) else None


@dataclass
class Judgement:
    """What judge() found: the network, their forward tensors against the tape's, and one row per gradient.
    `_repr_html_` is the table in Jupyter; `repr` / `table()` the same as text; `widget()` the interactive
    view; `figure(node)` the four heatmaps (value, yours, autograd, |diff|)."""

    rebuilt: Rebuilt
    rows: list[Row]  # in backward (cmp table) order; empty when their forward pass is not the tape's
    gradients: dict[str, torch.Tensor]  # node -> a copy of their d<node> as judged (for figures)
    backward: Backward | None  # the code graded, when found
    report: GradeReport | None  # the dojo's whole-cell grade of it
    notes: list[str] = field(default_factory=list)
    lang: Lang = "en"

    @property
    def run(self) -> Any:
        """The rebuilt run (ninja_core.Run): the tape's forward, autograd, and its own manual backward."""
        return self.rebuilt.run

    @property
    def forward(self) -> tuple[ForwardCheck, ...]:
        return self.rebuilt.forward

    @property
    def judged(self) -> bool:
        """Whether gradients were judged: their forward pass is the tape's (up to rounding)."""
        return self.rebuilt.forward_matches

    @property
    def totals(self) -> dict[str, int]:
        return row_totals(self.rows)

    def row(self, name: str) -> Row:
        """The row of a node, by its name or an alias (zprebn, apreact, a). Raises KeyError."""
        node = self.run.tape.resolve(name) or name
        for row in self.rows:
            if row.name == node:
                return row
        raise KeyError(name)

    # ---- words ---------------------------------------------------------------------------------

    def headline(self) -> list[str]:
        """The lines above the table: the network, the forward check, the totals."""
        found, run = self.rebuilt.found, self.run
        cfg = found.config
        sizes = ", ".join(f"{k} {v}" for k, v in cfg.to_dict().items() if k in SIZE_FIELDS)
        lines: list[str] = [tr("{net} · {dtype} · {sizes} · loss {loss:.4f}", net=found.net.title, dtype=cfg.dtype,
                               sizes=sizes, loss=run.loss)]
        checks = self.forward
        wrong = [f for f in checks if not f.same]
        if wrong:
            first = next((f for f in wrong if f.root), wrong[0])
            who = first.node if first.variable == first.node else tr("{node} (your {variable})", node=first.node,
                                                                                     variable=first.variable)
            lines.append(tr("your forward pass is not the tape's: {node} {how}. The tape computes {line}. Gradients are "
                            "only right or wrong for one forward pass, so none is judged until yours matches", node=who,
                            how=first.message, line=first.forward))
            return lines
        if not checks:
            lines.append(tr("forward: no forward tensors of yours under the tape's names; judged on the tape's forward "
                            "pass from your parameters and minibatch"))
        elif all(f.status == "exact" for f in checks):
            lines.append(tr("forward: your {count} forward tensors are the tape's, bit for bit", count=len(checks)))
        else:
            worst = max((f for f in checks if f.maxdiff is not None), key=lambda f: f.maxdiff or 0.0)
            lines.append(tr("forward: your {count} forward tensors are the tape's up to rounding (largest difference "
                            "{maxdiff:.2g} at {node}): gradients are judged on the tape's forward pass", count=len(checks),
                            maxdiff=worst.maxdiff or 0.0, node=worst.node))
        t = self.totals
        if self.report is not None:
            lines.append(tr("{passed}/{total} right end to end, {local}/{total} locally", passed=t["passed"],
                            total=t["total"], local=t["local_passed"]))
            assert self.backward is not None
            lines.append(tr("local: your lines from {cells}, each fed autograd's upstream gradients",
                            cells=", ".join(f"In[{k}]" for k in self.backward.cells) or "source"))
        else:
            lines.append(tr("{passed}/{total} right end to end (local verdicts need your backward code: run judge() in "
                            "the notebook, or pass source=...)", passed=t["passed"], total=t["total"]))
        return lines

    def table(self, lang: str | None = None) -> str:
        """The cmp table as text: the lecture's columns, the status, the local verdict and the diagnosis."""
        lang = pick(lang or self.lang)
        lines = [localize(line, lang) for line in self.headline()]
        if self.rows:
            lines.append(f"{'node':15s} | {'variable':15s} | exact | approx | maxdiff   | {'status':14s} | "
                         f"{'local':14s} | diagnosis")
        for row in self.rows:
            e = row.end_to_end
            maxdiff = "-" if e.maxdiff is None else f"{e.maxdiff:.3g}"
            first = localize(row.diagnosis[0], lang) if row.diagnosis else ""
            lines.append(f"{row.name:15s} | {row.variable or '-':15s} | {e.exact!s:5s} | {e.approx!s:6s} | "
                         f"{maxdiff:9s} | {e.status:14s} | {row.local_status or 'n/a':14s} | {first}")
        lines.extend(localize(note, lang) for note in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self.html()

    def html(self, lang: str | None = None) -> str:
        """The table for Jupyter: what the page's cmp table shows, with the learner's variable and diagnosis."""
        lang = pick(lang or self.lang)

        def t(word: str) -> str:
            return html.escape(localize(tr(word), lang))

        head = "".join(f"<th>{h}</th>" for h in (t("node"), t("variable"), "exact", "approx", "maxdiff", t("status"),
                                                  t("local"), t("diagnosis")))
        body = []
        for row in self.rows:
            e = row.end_to_end
            maxdiff = "–" if e.maxdiff is None else f"{e.maxdiff:.3g}"
            local = row.local_status or "n/a"
            diagnosis = "<br>".join(html.escape(localize(d, lang)) for d in row.diagnosis[:2])
            body.append(f"<tr><td><code>{html.escape(row.name)}</code></td>"
                        f"<td><code>{html.escape(row.variable or '–')}</code></td><td>{e.exact}</td><td>{e.approx}</td>"
                        f"<td>{maxdiff}</td><td style='color:{COLOURS.get(e.status, '#000')}'><b>{e.status}</b></td>"
                        f"<td style='color:{COLOURS.get(local, '#6e7781')}'>{local}</td>"
                        f"<td style='text-align:left'>{diagnosis}</td></tr>")
        caption = "<br>".join(html.escape(localize(line, lang)) for line in self.headline())
        forward = ""
        if not self.judged:
            rows = "".join(f"<tr><td><code>{html.escape(f.node)}</code></td><td><code>{html.escape(f.variable)}</code>"
                           f"</td><td style='color:{COLOURS['exact' if f.same else 'mismatch']}'>"
                           f"{html.escape(localize(f.message, lang))}</td></tr>" for f in self.forward)
            forward = f"<table><tr><th>{t('node')}</th><th>{t('variable')}</th><th></th></tr>{rows}</table>"
        notes = "".join(f"<li>{html.escape(localize(n, lang))}</li>" for n in self.notes)
        table = f"<table><tr>{head}</tr>{''.join(body)}</table>" if self.rows else ""
        return (f"<div class='ninja-judgement'><p>{caption}</p>{forward}{table}"
                f"{f'<ul>{notes}</ul>' if notes else ''}</div>")

    # ---- data for figures and the widget ------------------------------------------------------

    def tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(value, their gradient, autograd's gradient) of a node, on the rebuilt run."""
        node = self.run.tape.resolve(name) or name
        return self.run.values[node], self.gradients.get(node), self.run.autograd.get(node)

    def figure(self, name: str) -> Any:
        """A plotly Figure of four heatmaps: value, yours, autograd, |yours − autograd|."""
        import plotly.graph_objects as go

        return go.Figure(self.figure_spec(name))

    def figure_spec(self, name: str, lang: str | None = None) -> dict[str, Any]:
        from ..display import node_view
        from ..figures import node_figure

        value, yours, reference = self.tensors(name)
        node = self.run.tape.resolve(name) or name
        if yours is not None and reference is not None:
            yours = yours.to(reference.dtype)
        view = node_view(value, yours, reference, with_stats=False, axes=self.run.net.axes(node, value.dim()))
        return node_figure(node, value, yours, reference, manual_label="yours", lang=pick(lang or self.lang), view=view)

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        lang = pick(lang or self.lang)
        found = self.rebuilt.found
        return {
            "net": found.net.name, "config": found.config.to_dict(), "inferred": dict(found.inferred),
            "loss": self.run.loss, "judged": self.judged,
            "headline": [localize(line, lang) for line in self.headline()],
            "forward": [{"node": f.node, "variable": f.variable, "status": f.status, "maxdiff": _finite(f.maxdiff),
                         "root": f.root, "message": localize(f.message, lang), "forward": f.forward}
                        for f in self.forward],
            "nodes": [row.to_dict(lang) for row in self.rows], "totals": self.totals,
            "notes": localize(list(self.notes), lang),
            "source": self.backward.source if self.backward else None,
        }

    def widget(self) -> Any:
        """The interactive view (anywidget): the table, the forward graph, the selected node's heatmaps."""
        from .widget import NinjaWidget

        return NinjaWidget.of(self)


# ---- judging ----------------------------------------------------------------------------------

def _variables(run: Any, namespace: Mapping[str, Any]) -> dict[str, str]:
    """node -> the learner's variable for d<node>. An alias is theirs, not the node's, when they also
    define the node's own name (the seed notebook's da beside dh holds d(apreact))."""
    tape = run.tape
    own = {f"d{a}" for a, target in tape.aliases.items() if f"d{a}" in namespace and f"d{target}" in namespace}
    found: dict[str, str] = {}
    for node in tape.backward_order:
        for name in tape.gradient_names(node):
            if name in namespace and name not in own:
                found[node] = name
                break
    return found


def _elsewhere(run: Any, node: str, namespace: Mapping[str, Any], taken: set[str]) -> list[str]:
    """A learner's d-variable that is no node's own name but holds this node's gradient (their da)."""
    expected = run.autograd[node]
    for variable, value in namespace.items():
        if not variable.startswith("d") or variable in taken or not isinstance(value, torch.Tensor):
            continue
        if tuple(value.shape) == tuple(expected.shape) and compare(value.detach(), expected).status in PASSING:
            names = " or ".join(run.tape.gradient_names(node))
            return [tr("your {variable} holds this gradient: name it {names} to have it judged here", variable=variable,
                       names=names)]
    return []


def _shared(variable: str, namespace: Mapping[str, Any], variables: dict[str, str]) -> list[str]:
    """Another gradient variable of theirs that is the same tensor (an alias made without .clone())."""
    value = namespace.get(variable)
    if not isinstance(value, torch.Tensor):
        return []
    ptr = value.untyped_storage().data_ptr()
    for other in variables.values():
        t = namespace.get(other)
        if other != variable and isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() == ptr:
            return [tr("your {variable} and {other} are one tensor (they share storage), so changing one in place "
                       "changed both; copy with .clone() where you assign one from the other", variable=variable,
                       other=other)]
    return []


def _namespace_rows(run: Any, namespace: Mapping[str, Any]) -> tuple[list[Row], dict[str, torch.Tensor]]:
    """Every gradient judged end to end as the namespace holds it (no code needed)."""
    variables = _variables(run, namespace)
    taken = set(variables.values()) | {f"d{n}" for n in run.tape.backward_order}
    rows: list[Row] = []
    gradients: dict[str, torch.Tensor] = {}
    for node in run.tape.backward_order:
        kind = "param" if node in run.tape.params else "intermediate"
        variable = variables.get(node)
        if variable is None:
            e2e = compare(None, run.autograd[node])
            notes = [*_elsewhere(run, node, namespace, taken), tr("not defined: your notebook has no d{name}", name=node)]
            rows.append(Row(node, kind, None, e2e, None, None, notes))
            continue
        value = namespace[variable]
        if isinstance(value, torch.Tensor):
            value = value.detach()
            gradients[node] = value.clone()
        e2e, notes = judge_value(run, node, value)
        if e2e.status not in PASSING:
            notes = [*_shared(variable, namespace, variables), *notes]
        rows.append(Row(node, kind, variable, e2e, None, None, notes))
    return rows, gradients


def _same(a: Comparison, b: Comparison) -> bool:
    """Two answers judged alike against the same reference: the same value, in practice."""
    return (a.status, a.maxdiff, a.relerr, a.manual_shape) == (b.status, b.maxdiff, b.relerr, b.manual_shape)


def _merged(rows: list[Row], report: GradeReport) -> list[Row]:
    """The notebook's end-to-end rows with the grader's local verdicts, diagnoses and fixes, taken whole
    where the replayed cell gives the notebook's own value."""
    graded = {r.name: r for r in report.rows}
    merged: list[Row] = []
    for row in rows:
        g = graded.get(row.name)
        if g is None:
            merged.append(row)
            continue
        if _same(g.end_to_end, row.end_to_end):
            merged.append(Row(row.name, row.kind, row.variable or g.variable, row.end_to_end, g.local_status,
                              g.local_maxdiff, list(g.diagnosis) or row.diagnosis, list(g.lines), g.fix))
        else:
            note = tr("your notebook's {variable} is not what your cells compute from these values (a cell run out of "
                      "order, or changed elsewhere?): judged as the notebook holds it; the local verdict is for your "
                      "cells' lines", variable=row.variable or f"d{row.name}")
            merged.append(Row(row.name, row.kind, row.variable, row.end_to_end, g.local_status, g.local_maxdiff,
                              [*row.diagnosis, note], list(g.lines), g.fix))
    return merged


def judge(namespace: Mapping[str, Any] | None = None, *, net: str | None = None, source: str | None = None,
          deep: bool = True, lang: str = "en") -> Judgement:
    """Judge every d<name> the learner's namespace holds (typically `judge(globals())` after the backward
    cell; with no argument, the caller's globals).

    `net` picks the network (default: the first of mlp, wavenet, gpt the namespace holds); `source` is
    the backward code to grade locally (default: found in IPython's history; "" for none); `deep` adds
    the dojo's other minibatches, float64 reruns and one-edit fixes (a second or two more); `lang`
    "en" or "de" for the table's sentences.

    Sizes (n_embd, n_hidden, block_size, vocabulary, ...) are inferred from the tensors' shapes, the
    dtype (float32 or float64) and device from the parameters. Raises JudgeError (a ValueError) when
    the namespace holds no network it can rebuild, saying what each network needs and what is missing."""
    if namespace is None:
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        namespace = caller.f_globals if caller is not None else {}
    rebuilt = rebuild(namespace, net)
    run = rebuilt.run
    notes: list[str] = []
    if not rebuilt.forward_matches:
        return Judgement(rebuilt, [], {}, None, None, notes, pick(lang))
    rows, gradients = _namespace_rows(run, namespace)
    offered = forward_names(run)
    backward: Backward | None = None
    if source is None:
        backward = backward_source(namespace, run.tape, offered)
    elif source:
        backward = backward_source({}, run.tape, offered, cells=[source])
    report: GradeReport | None = None
    if backward is not None:
        try:
            report = grade_cell(run, backward.source, deep=deep)
        except DojoError as exc:  # refused as a whole (too long): judged end to end only
            notes.append(tr("the backward code was not graded: {error}", error=exc.sentence()))
            backward = None
        except Exception:  # never let grading turn a judgement into a crash
            log.exception("grading the notebook's backward code failed")
            backward = None
    if report is not None and backward is not None:
        rows = _merged(rows, report)
        notes.extend(backward.notes)
        if report.error is not None:
            notes.append(tr("the cell stopped: {error}", error=report.error.sentence()))
        notes.extend(report.notes)
    return Judgement(rebuilt, rows, gradients, backward, report, notes, pick(lang))
