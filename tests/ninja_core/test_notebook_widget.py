"""The notebook widget from Python: what it sends the front end (the table, the graph, the selected node's
figure), that the committed bundle is built from the current page modules and needs no network, and that
a real kernel displays it with its ES module in the saved widget state."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ninja_core import check, judge, widget
from ninja_core.run import Run

pytest.importorskip("anywidget")

from ninja_core.notebook.widget import NinjaWidget, bundle

ROOT = Path(__file__).resolve().parents[2]


def namespace_of(run: Run, **changes: torch.Tensor) -> dict[str, Any]:
    """A learner's namespace as a run would leave it: parameters, batch, forward values, and every
    gradient under its d-name (`changes` replace some, to plant mistakes)."""
    ns: dict[str, Any] = {k: v.clone() for k, v in run.values.items() if isinstance(v, torch.Tensor)}
    ns.update({f"d{node}": run.manual[node].clone() for node in run.tape.backward_order})
    ns.update(changes)
    return ns


def test_a_judgement_widget_sends_the_table_the_graph_and_the_first_wrong_node(default_run: Run) -> None:
    ns = namespace_of(default_run, dbnbias=-default_run.manual["bnbias"])
    w = judge(ns, deep=False).widget()
    assert isinstance(w, NinjaWidget)
    doc = w.doc
    assert doc["kind"] == "judge" and doc["judged"] and not doc["local"]
    assert [n["name"] for n in doc["nodes"]] == list(default_run.tape.backward_order)
    assert {n["name"]: n["status"] for n in doc["graph"]["nodes"]}["bnbias"] == "mismatch"
    assert w.selected == "bnbias"  # the first node that is not right
    view = w.view
    assert view["name"] == "bnbias" and view["variable"] == "dbnbias" and "the sign is flipped" in view["diagnosis"][0]
    figure = view["figure"]
    assert len(figure["data"]) == 4 and all(trace["type"] == "heatmap" for trace in figure["data"])
    assert "(yours)" in figure["layout"]["annotations"][1]["text"]
    w.selected = "logits"  # what the front end does on a click
    assert w.view["name"] == "logits" and w.view["status"] == "exact"
    w.lang = "de"
    assert "Ende-zu-Ende" in " ".join(w.doc["headline"]) and w.view["name"] == "logits"


def test_a_check_run_widget(default_run: Run) -> None:
    w = widget(default_run)
    assert w.doc["kind"] == "run" and w.doc["local"] and len(w.doc["nodes"]) == 26
    assert w.selected == "logprobs"  # all exact: the first row
    assert w.view["lines"][0] == "logprobs = probs.log()" and len(w.view["figure"]["data"]) == 4
    with pytest.raises(TypeError, match="widget\\(\\) takes what judge\\(\\) or check\\(\\) returns"):
        widget(42)


def test_a_forward_that_differs_shows_the_forward_checks_and_no_rows(default_run: Run) -> None:
    ns = namespace_of(default_run, bnvar=default_run.values["bnvar"] * 1.1)
    w = judge(ns).widget()
    assert w.doc["judged"] is False and w.doc["nodes"] == [] and w.view == {}
    assert [f["node"] for f in w.doc["forward"] if not f["same"]] == ["bnvar"]


def test_every_network_has_a_widget() -> None:
    for net in ("wavenet", "gpt"):
        run = check(__import__("ninja_core").Config(net=net, batch_size=4))
        w = widget(judge(namespace_of(run), deep=False))
        assert len(w.doc["nodes"]) == len(run.tape.backward_order)
        assert w.view["figure"]["data"]


def test_the_committed_bundle_is_built_from_the_current_page_modules() -> None:
    """scripts/build_widget.py --check: offline, from the inputs recorded in the bundle's header. When this
    fails, a page module the widget uses changed: run `python scripts/build_widget.py` and commit."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_widget
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert build_widget.problems() == []
    inputs = build_widget.recorded(build_widget.BUNDLE)
    assert inputs is not None
    used = {p.relative_to(ROOT).as_posix() for p in inputs[1]}
    assert {"static/js/table.js", "static/js/graph.js", "static/js/figure.js", "static/js/dom.js", "static/js/i18n.js",
            "static/vendor/plotly-cartesian.min.js", "scripts/widget/src/widget.js"} <= used


def test_the_bundle_loads_nothing_from_the_network() -> None:
    esm, css = bundle("widget.js"), bundle("widget.css")
    assert str(NinjaWidget._esm) == esm and str(NinjaWidget._css) == css
    # no module is imported from anywhere: the bundle is one file (static imports were resolved by esbuild)
    assert not re.search(r"\bimport\s*[\w{},*\s]*\bfrom\s*[\"'`]", esm)
    assert not re.search(r"\bimport\s*\(\s*[\"'`]https?:", esm)
    assert "export{" in esm and "as default}" in esm
    assert "url(" not in css.replace("url(#", "")  # no fonts or images fetched by the stylesheet
    assert ".ninja-widget .cmp" in css and ":root" not in css  # the page's CSS, scoped to the widget


def test_a_kernel_displays_the_widget_with_its_module_in_the_saved_state() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "import torch\nfrom ninja_core import check, judge\nrun = check()\n"
        "ns = {k: v.clone() for k, v in run.values.items() if isinstance(v, torch.Tensor)}\n"
        "ns.update({f'd{n}': run.manual[n].clone() for n in run.tape.backward_order})\n"
        "ns['dbnbias'] = -ns['dbnbias']",
        "judge(ns).widget()",
    )]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    (out,) = nb.cells[1].outputs
    view = out["data"]["application/vnd.jupyter.widget-view+json"]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    model = state[view["model_id"]]
    assert model["model_module"] == "anywidget"
    shown = model["state"]
    assert shown["_esm"] == bundle("widget.js") and shown["_css"] == bundle("widget.css")
    assert len(shown["doc"]["nodes"]) == 26 and shown["selected"] == "bnbias"
    assert shown["view"]["name"] == "bnbias" and len(shown["view"]["figure"]["data"]) == 4
