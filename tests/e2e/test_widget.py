"""The notebook widget's ES module in headless Chromium, loaded the way anywidget's front end loads it
(the module text as a Blob URL, `import()`, then `render({model, el})`; its CSS as a <style>) on a tiny
host page with no server: every request other than blob:/data: is refused and recorded. A small model
stands in for the kernel, answering a selection with the view Python computed for that node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from playwright.sync_api import Browser, Page, Route

from ninja_core import check, judge
from ninja_core.run import Run
from tests.e2e.support import TIMEOUT_MS

pytest.importorskip("anywidget")

from ninja_core.notebook.widget import NinjaWidget, bundle

pytestmark = pytest.mark.e2e

# anywidget's loadEsm and loadCss (its front end, packages/anywidget/src/load.ts) do the same: a Blob URL
# imported as a module, the CSS text in a <style>. The model: get/set/save_changes/on/off, and a change
# of `selected` answered with the Python-computed view of that node, as the kernel would.
HOST = r"""
async ({esm, css, state, views}) => {
  const style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);
  const data = { ...state };
  const listeners = new Map();
  const emit = (name) => (listeners.get(name) || []).forEach((cb) => cb());
  let dirty = new Set();
  window.sent = [];
  const model = {
    get: (key) => data[key],
    set: (key, value) => { data[key] = value; dirty.add(key); },
    save_changes: () => {
      const changed = dirty;
      dirty = new Set();
      for (const key of changed) { window.sent.push([key, data[key]]); emit(`change:${key}`); }
      if (changed.has("selected")) setTimeout(() => { data.view = views[data.selected]; emit("change:view"); }, 20);
    },
    on: (name, cb) => listeners.set(name, [...(listeners.get(name) || []), cb]),
    off: (name, cb) => listeners.set(name, (listeners.get(name) || []).filter((f) => f !== cb)),
    send: () => {},
  };
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  const module = await import(url);
  URL.revokeObjectURL(url);
  window.cleanup = await module.default.render({ model, el: document.getElementById("output") });
}
"""


def state_of(w: NinjaWidget) -> tuple[dict[str, Any], dict[str, Any]]:
    """The widget's synced state, and the view of every node (what the kernel would answer)."""
    first = w.selected
    views = {}
    for node in w.doc["nodes"]:
        w.selected = node["name"]
        views[node["name"]] = w.view
    w.selected = first
    return {"doc": w.doc, "view": w.view, "selected": w.selected, "lang": w.lang}, views


@pytest.fixture
def host(browser: Browser) -> Iterator[tuple[Page, list[str], list[str]]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    refused: list[str] = []
    errors: list[str] = []

    def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith(("blob:", "data:", "about:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", guard)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_content("<!doctype html><html><body style='margin:16px'><div class='jp-OutputArea'>"
                     "<div id='output'></div></div></body></html>")
    yield page, refused, errors
    context.close()


def mount(page: Page, w: NinjaWidget) -> None:
    state, views = state_of(w)
    page.evaluate(HOST, {"esm": bundle("widget.js"), "css": bundle("widget.css"), "state": state, "views": views})
    page.wait_for_selector(f".ninja-widget[data-figure='{w.selected}']", timeout=TIMEOUT_MS)


def heatmaps(page: Page) -> int:
    return int(page.locator(".nw-figure .heatmaplayer image, .nw-figure .hm image").count())


def test_a_judgement_widget_shows_the_table_graph_and_heatmaps_offline(
        host: tuple[Page, list[str], list[str]], default_run: Run, artifacts_dir: Path) -> None:
    page, refused, errors = host
    ns: dict[str, Any] = {k: v.clone() for k, v in default_run.values.items() if isinstance(v, torch.Tensor)}
    ns.update({f"d{n}": default_run.manual[n].clone() for n in default_run.tape.backward_order})
    ns["dbnbias"] = -ns["dbnbias"]
    del ns["dbnraw"]  # one they never wrote
    mount(page, judge(ns, deep=False).widget())
    assert page.locator(".cmp tbody tr[data-node]").count() == 26
    assert page.locator("svg.graph .gnode").count() == 29  # 7 parameters, Xb, Yb and 20 steps (the loss one of them)
    assert page.locator("svg.graph .gnode.status-mismatch[data-node='bnbias']").count() == 1
    assert heatmaps(page) == 4
    assert "the sign is flipped" in page.locator(".nw-diagnosis").inner_text()
    assert page.locator(".cmp tbody tr.selected").get_attribute("data-node") == "bnbias"
    page.screenshot(path=str(artifacts_dir / "widget-judge.png"), full_page=True)
    # a row, then a node of the graph: the front end sends the selection, the figure follows
    page.click(".cmp tbody tr[data-node='counts']")
    page.wait_for_selector(".ninja-widget[data-figure='counts']", timeout=TIMEOUT_MS)
    assert heatmaps(page) == 4 and "exact" in page.locator(".nw-node-head").inner_text()
    page.click("svg.graph .gnode[data-node='W2']")
    page.wait_for_selector(".ninja-widget[data-figure='W2']", timeout=TIMEOUT_MS)
    assert page.locator(".cmp tbody tr.selected").get_attribute("data-node") == "W2"
    # a gradient they never wrote: value and autograd drawn, and its own two panels kept in their places
    page.click(".cmp tbody tr[data-node='bnraw']")
    page.wait_for_selector(".ninja-widget[data-figure='bnraw']", timeout=TIMEOUT_MS)
    assert heatmaps(page) == 2 and page.locator(".nw-figure .cartesianlayer .subplot").count() == 4
    boxes = [page.locator(f".nw-figure .draglayer .{xy} .nsewdrag").bounding_box() for xy in ("xy", "x2y2", "x3y3", "x4y4")]
    assert all(b is not None and b["width"] > 100 for b in boxes)
    assert boxes[1]["x"] > boxes[0]["x"] + boxes[0]["width"] and boxes[2]["y"] > boxes[0]["y"] + boxes[0]["height"]  # 2 × 2
    assert page.evaluate("window.sent") == [["selected", "counts"], ["selected", "W2"], ["selected", "bnraw"]]
    assert refused == [] and errors == []
    page.evaluate("window.cleanup()")  # the widget's teardown runs without errors
    assert errors == []


def test_a_check_run_widget_in_a_narrow_output_area(host: tuple[Page, list[str], list[str]], artifacts_dir: Path) -> None:
    page, refused, errors = host
    page.set_viewport_size({"width": 700, "height": 900})
    mount(page, NinjaWidget.of(check(__import__("ninja_core").Config(net="wavenet", batch_size=8))))
    assert page.locator(".cmp tbody tr[data-node]").count() == 51
    assert heatmaps(page) == 4
    # one column: the table above the graph above the node
    table, graph = page.locator(".nw-table").bounding_box(), page.locator(".nw-graph").bounding_box()
    assert table is not None and graph is not None and graph["y"] >= table["y"] + table["height"] - 1
    page.screenshot(path=str(artifacts_dir / "widget-run-narrow.png"), full_page=True)
    assert refused == [] and errors == []
