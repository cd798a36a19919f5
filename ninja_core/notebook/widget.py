"""The interactive view in a notebook: the cmp table, the forward graph and the selected node's four
heatmaps, for a judge() result or a check() run (anywidget; JupyterLab, Notebook 7 and VS Code all load
an anywidget's ES module the same way).

    judge(globals()).widget()      # or: from ninja_core import widget; widget(check())

Data flows one way: this module computes (the table's rows, the graph, each node's figure spec with
ninja_core.figures.node_figure, the diagnosis) and the widget only draws. The one thing the front end
sends back is which node is selected (and the language); the figure of that node then comes from
here. The ES module (widget.js) is the page's own drawing modules (static/js/table.js, graph.js,
figure.js, i18n.js, dom.js) and the page's plotly.js bundle (static/vendor/), bundled into one file by
scripts/build_widget.py, so the widget needs no network and no server: everything it draws travels in
its own state. widget.css is the page's app.css scoped to the widget's element, plus its layout.

Needs the notebook extra: `pip install 'backprop-ninja[notebook]'` (anywidget, ipywidgets).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import anywidget
import traitlets

from ..i18n import german, localize, pick, tr
from ..run import Run
from .judging import Judgement

HERE = resources.files(__package__)

german({
    "{net} · {dtype} · {variant} · loss {loss:.4f}": "{net} · {dtype} · {variant} · Verlust {loss:.4f}",
})


@cache
def bundle(name: str) -> str:
    """The built widget.js or widget.css shipped in the package (scripts/build_widget.py makes them)."""
    return (HERE / name).read_text(encoding="utf-8")


def _finite(x: float | None) -> float | None:
    return x if x is not None and x == x and abs(x) != float("inf") else None


# ---- documents: what the widget draws ------------------------------------------------------------

def run_document(run: Run, lang: str) -> dict[str, Any]:
    """A check() run as the page's run document has it: the table's rows and the graph with statuses."""
    graph = run.graph()
    for node in graph["nodes"]:
        result = run.nodes.get(node["name"])
        node["status"] = result.status if result else None
        node["skipped_by"] = result.skipped_by if result else None
    nodes = []
    for result in run.nodes.values():
        e = result.end_to_end
        nodes.append({"name": result.name, "kind": result.kind, "status": e.status, "local_status": result.local.status,
                      "exact": e.exact, "approx": e.approx, "maxdiff": _finite(e.maxdiff), "relerr": _finite(e.relerr),
                      "fused": result.fused, "skipped_by": result.skipped_by, "variable": None})
    counts = ", ".join(f"{v} {k}" for k, v in run.counts.items())
    cfg = run.config
    head = tr("{net} · {dtype} · {variant} · loss {loss:.4f}", net=run.net.title, dtype=cfg.dtype, variant=cfg.variant,
              loss=run.loss)
    return {"kind": "run", "lang": lang, "local": True, "judged": True, "nodes": nodes, "graph": graph,
            "headline": [localize(head, lang), counts],
            "notes": [], "forward": []}


def judgement_document(j: Judgement, lang: str) -> dict[str, Any]:
    """A judge() result: their gradients' rows (with their variable names), the graph coloured by them."""
    statuses = {row.name: row.status for row in j.rows}
    graph = j.run.graph()
    for node in graph["nodes"]:
        node["status"] = statuses.get(node["name"])
        node["skipped_by"] = None
    # without the code there is no local verdict: doc["local"] is False and the widget hides that column;
    # the page's table draws a badge in every row, so it gets "missing" (no local gradient) to draw there
    nodes = [{"name": row.name, "kind": row.kind, "status": row.status, "local_status": row.local_status or "missing",
              "exact": row.end_to_end.exact, "approx": row.end_to_end.approx,
              "maxdiff": _finite(row.end_to_end.maxdiff), "relerr": _finite(row.end_to_end.relerr), "fused": None,
              "skipped_by": None, "variable": row.variable} for row in j.rows]
    forward = [{"node": f.node, "variable": f.variable, "same": f.same, "root": f.root,
                "message": localize(f.message, lang)} for f in j.forward] if not j.judged else []
    return {"kind": "judge", "lang": lang, "local": j.report is not None, "judged": j.judged, "nodes": nodes,
            "graph": graph, "headline": [localize(line, lang) for line in j.headline()],
            "notes": [localize(n, lang) for n in j.notes], "forward": forward}


def run_view(run: Run, name: str, lang: str) -> dict[str, Any]:
    """The selected node of a run: its lines (forward, backward formula, notes) and its four heatmaps."""
    from ..display import node_view
    from ..figures import node_figure

    node = run.nodes[name]
    value, manual, reference = run.tensors(name)
    view = node_view(value, manual, reference, with_stats=False, axes=run.net.axes(name, value.dim()))
    lines = [node.forward] if node.forward else []
    lines += node.formula.splitlines()
    lines += [localize(n, lang) for n in node.notes]
    return {"name": name, "status": node.status, "local_status": node.local.status, "variable": None,
            "lines": lines, "diagnosis": [],
            "figure": with_every_panel(node_figure(name, value, manual, reference, lang=pick(lang), view=view))}


def judgement_view(j: Judgement, name: str, lang: str) -> dict[str, Any]:
    """The selected node of a judgement: their variable, the diagnosis, and value / yours / autograd / |diff|."""
    row = j.row(name)
    step = j.run.tape.producers.get(row.name)
    lines = [f"{row.name} = {step.forward}"] if step is not None else []
    return {"name": row.name, "status": row.status, "local_status": row.local_status, "variable": row.variable,
            "lines": lines, "diagnosis": [localize(d, lang) for d in row.diagnosis],
            "figure": with_every_panel(j.figure_spec(row.name, lang))}


def with_every_panel(figure: dict[str, Any]) -> dict[str, Any]:
    """The figure with an empty trace on each of its four panels that has none (no gradient of theirs, or
    none from autograd): plotly.js lays out only the axes that carry a trace, so without it the panels
    that are there spread over the empty ones' place and the panel's note ("no manual gradient") lands
    on another panel."""
    used = {trace.get("xaxis", "x") for trace in figure["data"]}
    missing = [k for k in range(1, 5) if (f"x{k}" if k > 1 else "x") not in used]
    if not missing:
        return figure
    layout = dict(figure["layout"])
    empty = []
    for k in missing:
        suffix = str(k) if k > 1 else ""
        empty.append({"type": "scatter", "x": [], "y": [], "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
                      "hoverinfo": "skip", "showlegend": False})
        for axis in (f"xaxis{suffix}", f"yaxis{suffix}"):  # an empty panel: no made-up tick numbers
            layout[axis] = {**layout.get(axis, {}), "showticklabels": False, "ticks": ""}
    return {**figure, "data": [*figure["data"], *empty], "layout": layout}


def first_of_interest(nodes: list[dict[str, Any]]) -> str:
    """The node to show first: the first one that is not right (in table order), else the first."""
    for node in nodes:
        if node["status"] not in ("exact", "approx"):
            return str(node["name"])
    return str(nodes[0]["name"]) if nodes else ""


class NinjaWidget(anywidget.AnyWidget):
    """The table, the forward graph and the selected node's heatmaps (see the module docstring)."""

    _esm = bundle("widget.js")
    _css = bundle("widget.css")
    doc = traitlets.Dict().tag(sync=True)  # the table and the graph (see run_document)
    view = traitlets.Dict().tag(sync=True)  # the selected node: lines, diagnosis, figure spec
    selected = traitlets.Unicode("").tag(sync=True)  # set by the front end when a row or a node is clicked
    lang = traitlets.Unicode("en").tag(sync=True)

    def __init__(self, source: Judgement | Run, lang: str = "en", **kwargs: Any) -> None:
        self._source = source
        lang = pick(lang)
        doc = self._document(lang)
        super().__init__(doc=doc, lang=lang, selected=first_of_interest(doc["nodes"]), **kwargs)
        self._show()

    @classmethod
    def of(cls, result: Any, lang: str | None = None) -> NinjaWidget:
        """The widget of a judge() result (in its language) or a check() run. Raises TypeError otherwise."""
        if isinstance(result, Judgement):
            return cls(result, lang or result.lang)
        if isinstance(result, Run):
            return cls(result, lang or "en")
        raise TypeError(f"widget() takes what judge() or check() returns, not a {type(result).__name__}")

    def _document(self, lang: str) -> dict[str, Any]:
        source = self._source
        return judgement_document(source, lang) if isinstance(source, Judgement) else run_document(source, lang)

    def _show(self) -> None:
        names = {n["name"] for n in self.doc.get("nodes", [])}
        if self.selected not in names:
            self.view = {}
            return
        source = self._source
        self.view = judgement_view(source, self.selected, self.lang) if isinstance(source, Judgement) \
            else run_view(source, self.selected, self.lang)

    @traitlets.observe("selected")
    def _on_selected(self, change: dict[str, Any]) -> None:
        self._show()

    @traitlets.observe("lang")
    def _on_lang(self, change: dict[str, Any]) -> None:
        self.doc = self._document(pick(change["new"]))
        self._show()
