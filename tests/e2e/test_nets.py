"""Every network on the page: the choice in the header (from GET /api/nets) with the network's own size
fields, `?net=wavenet` in the URL, the WaveNet's 51 gradients in the table, its graph, the four
heatmaps of a 3-D node, a dojo check; progress and drafts kept per network; and the graph laid out
for networks of any size (a transformer's blocks with residual connections among them) without a
coordinate per network. Screenshots of the WaveNet page go to artifacts/screens/ for a person to
look at; the assertions are about what a screenshot cannot fail on.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.support import (
    OVERLAPS_JS,
    PANELS_JS,
    SIDEWAYS_JS,
    BrowserPage,
    api_run,
    broken_text,
    inside,
    query_of,
    wait_for_figure,
)

pytestmark = pytest.mark.e2e

BAD_REQUEST = "the server responded with a status of 400"


def nets(base_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/api/nets", timeout=30) as response:
        listed: list[dict[str, Any]] = json.load(response)
        return listed


def open_page(page: Page, query: str = "", node: str | None = None) -> Page:
    page.goto(f"/{query}")
    wait_for_figure(page, node)
    return page


def rows(page: Page) -> list[str]:
    return page.eval_on_selector_all("#cmp-body tr[data-node]", "rs => rs.map(r => r.dataset.node)")


def graph_nodes(page: Page) -> set[str]:
    return set(page.eval_on_selector_all("#graph .gnode", "gs => gs.map(g => g.dataset.node)"))


def check(page: Page, code: str) -> None:
    page.fill("#dojo-code", code)
    page.press("#dojo-code", "Control+Enter")


# ---- ?net=wavenet --------------------------------------------------------------------------------


def test_the_wavenet_page_graph_table_heatmaps_and_a_dojo_check(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page, "?net=wavenet&node=hprebn1", "hprebn1")
    doc = api_run(browser_page.base_url, {"net": "wavenet"})
    assert page.get_attribute("body", "data-run-id") == doc["run_id"]
    # the table: all 51 gradients in the server's backward order
    assert rows(page) == [n["name"] for n in doc["nodes"]] and len(doc["nodes"]) == 51
    expect(page.locator("#summary-counts .total")).to_have_text("51/51 exact")
    # the graph: a box for every node of the run's graph, the selected one among them
    assert graph_nodes(page) == {n["name"] for n in doc["graph"]["nodes"]}
    expect(page.locator(".gnode.selected")).to_have_attribute("data-node", "hprebn1")
    # the four heatmaps of a 3-D node (32, 4, 128), with the axis title saying how it is shown
    traces = page.evaluate("() => document.getElementById('figure').data.map(t => t.type)")
    assert traces == ["heatmap"] * 4
    assert page.locator("#figure .hm image").count() == 4
    expect(page.locator("#detail .detail-shape")).to_have_text("(32, 4, 128)")
    expect(page.locator("#detail .display-note")).to_contain_text("(32, 4, 128)")
    # the header: the network's own sizes, block_size fixed by the architecture
    expect(page.locator("#ctl-net")).to_have_value("wavenet")
    expect(page.locator("#ctl-n_embd")).to_have_value("24")
    expect(page.locator("#ctl-n_hidden")).to_have_value("128")
    expect(page.locator("#ctl-block_size")).to_have_value("8")
    expect(page.locator("#ctl-block_size")).to_have_attribute("readonly", "")
    assert page.locator("#ctl-n_head").count() == 0  # a size the WaveNet does not have
    query = query_of(page)
    assert {k: query[k] for k in ("net", "batch_size", "n_embd", "n_hidden", "block_size")} == {
        "net": "wavenet", "batch_size": "32", "n_embd": "24", "n_hidden": "128", "block_size": "8"}
    assert "n_head" not in query

    # the dojo on the WaveNet: the lecture's part-5 trap, then the right answer
    page.click("#tab-dojo")
    page.click("#cmp-body tr[data-node='bnmeani1'] .node-link")
    wait_for_figure(page, "bnmeani1")
    expect(page.locator("#dojo-code")).to_have_value("dbnmeani1 = ")
    check(page, "dbnmeani1 = (-dbndiff1).sum(0, keepdim=True)")
    verdict = page.locator("#dojo-result .verdict")
    expect(verdict).to_have_attribute("data-status", re.compile("mismatch|shape_mismatch"))
    expect(verdict).to_contain_text("dim")  # the missing time dimension is named
    check(page, "dbnmeani1 = (-dbndiff1).sum((0, 1), keepdim=True)")
    wait_for_figure(page, "bnmeani1", "yours")
    expect(verdict).to_have_attribute("data-status", "exact")
    expect(page.locator("#belt")).to_have_attribute("data-solved", "1")
    expect(page.locator("#belt")).to_contain_text("1/51")
    assert [e for e in browser_page.problems.console_errors if BAD_REQUEST not in e] == []
    assert browser_page.problems.page_errors == []
    assert browser_page.problems.foreign_requests == []
    assert broken_text(page) == []


def test_the_network_choice_in_the_header(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page, "?node=logits&n_hidden=32", "logits")
    listed = nets(browser_page.base_url)
    options = page.eval_on_selector_all("#ctl-net option", "os => os.map(o => o.value)")
    assert options == [n["name"] for n in listed]
    mlp_run = page.get_attribute("body", "data-run-id")
    expect(page.locator("#ctl-block_size")).to_have_value("3")  # the MLP's own context length, editable
    expect(page.locator("#ctl-block_size")).not_to_have_attribute("readonly", "")
    assert query_of(page)["n_hidden"] == "32"

    # another network: its own sizes (the MLP's n_hidden 32 is dropped), the same node where it exists
    page.select_option("#ctl-net", "wavenet")
    wait_for_figure(page, "logits", run_part="r2-wavenet-")
    assert len(rows(page)) == 51
    expect(page.locator("#ctl-n_hidden")).to_have_value("128")
    expect(page.locator("#ctl-n_embd")).to_have_value("24")
    query = query_of(page)
    assert (query["net"], query["n_hidden"], query["block_size"], query["node"]) == ("wavenet", "128", "8", "logits")
    # a size of the WaveNet changed in its own field
    page.fill("#ctl-n_hidden", "64")
    page.press("#ctl-n_hidden", "Enter")
    wait_for_figure(page, "logits", run_part="-h64-")
    assert query_of(page)["n_hidden"] == "64"

    # Back: the WaveNet before its change, then the MLP as it was
    page.go_back()
    wait_for_figure(page, "logits", run_part="-h128-")
    page.go_back()
    wait_for_figure(page, "logits", run_part="r2-mlp-")
    assert page.get_attribute("body", "data-run-id") == mlp_run
    expect(page.locator("#ctl-net")).to_have_value("mlp")
    expect(page.locator("#ctl-n_hidden")).to_have_value("32")
    assert len(rows(page)) == 26

    # a node the other network does not have: its first row, without an error
    page.click("#cmp-body tr[data-node='embcat'] .node-link")
    wait_for_figure(page, "embcat")
    page.select_option("#ctl-net", "wavenet")
    wait_for_figure(page, "logprobs", run_part="r2-wavenet-")
    expect(page.locator("#banner")).to_be_hidden()
    assert browser_page.problems.page_errors == []


def test_an_unknown_network_in_a_link_says_which_there_are(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/?net=resnet")
    expect(page.locator("#banner-text")).to_contain_text("wavenet")
    expect(page.locator("#ctl-net")).to_have_attribute("aria-invalid", "true")
    page.select_option("#ctl-net", "mlp")
    wait_for_figure(page, run_part="r2-mlp-")
    expect(page.locator("#banner")).to_be_hidden()
    assert len(rows(page)) == 26


def test_every_network_the_server_lists_draws_its_graph_and_table(browser_page: BrowserPage) -> None:
    """Whatever networks the server carries (the MLP, the WaveNet, the GPT): every node in the graph,
    every gradient in the table (which fits its card, in both variants), its sizes in the header, the
    cell dialog naming its first and last gradient, no console error."""
    page = browser_page.page
    for net in nets(browser_page.base_url):
        for variant in ("chain", "fused"):
            open_page(page, f"?net={net['name']}&variant={variant}")
            doc = api_run(browser_page.base_url, {"net": net["name"], "variant": variant})
            assert rows(page) == [n["name"] for n in doc["nodes"]], net["name"]
            assert graph_nodes(page) == {n["name"] for n in doc["graph"]["nodes"]}, net["name"]
            assert page.evaluate(SIDEWAYS_JS) == [], (net["name"], variant)
            assert page.evaluate(GRAPH_OVERLAPS_JS) == [], (net["name"], variant)
        sizes = {s["name"] for s in net["sizes"]}
        shown = set(page.eval_on_selector_all("#size-fields input", "is => is.map(i => i.name)"))
        assert shown == sizes, net["name"]
        page.click("#tab-dojo")
        page.click("#open-cell")
        first, last = doc["nodes"][0]["name"], doc["nodes"][-1]["name"]
        expect(page.locator("#cell-intro")).to_contain_text(f"d{first} down to d{last}")
        expect(page.locator(".cell-empty")).to_contain_text(f"The {len(doc['nodes'])} gradients")
    assert browser_page.problems.console_errors == []


# The bottom edge of every element drawn in the header (hidden ones and display: contents have no box).
BOTTOMS_JS = ("es => es.filter(e => e.checkVisibility() && e.getBoundingClientRect().width > 0)"
              ".map(e => e.getBoundingClientRect().bottom)")


@pytest.mark.parametrize("width", [1024, 1280, 1440, 1600])
def test_the_header_keeps_one_line_for_every_network(browser: Browser, server_url: str, width: int) -> None:
    """From 1024 px the header is one line whichever network's sizes it holds, in English and German
    (the page's rows below keep their height); nothing is wider than the window."""
    context = browser.new_context(viewport={"width": width, "height": 768}, base_url=server_url)
    try:
        page = context.new_page()
        for net in nets(server_url):
            for lang in ("en", "de"):
                page.goto(f"/?net={net['name']}&lang={lang}")
                wait_for_figure(page)
                tops = page.eval_on_selector_all(".topbar > *, #controls > *, #size-fields > *", BOTTOMS_JS)
                assert max(tops) - min(tops) < 24, (net["name"], lang, tops)
                assert page.evaluate(SIDEWAYS_JS) == [], (net["name"], lang)
    finally:
        context.close()


# ---- progress and drafts per network --------------------------------------------------------------


def test_progress_and_drafts_are_kept_per_network(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page, "?node=logits&dojo=1", "logits")
    page.fill("#dojo-code", "dlogits = 'the mlp draft'")
    check(page, "dlogits = F.softmax(logits, 1)\ndlogits[range(n), Yb] -= 1\ndlogits /= n")
    expect(page.locator("#dojo-result .verdict")).to_have_attribute("data-status", "approx")
    expect(page.locator("#belt")).to_contain_text("1/26")

    page.select_option("#ctl-net", "wavenet")
    wait_for_figure(page, "logits", run_part="r2-wavenet-")
    # the MLP's solved logits do not count for the WaveNet, nor is its draft the WaveNet's
    expect(page.locator("#belt")).to_have_attribute("data-solved", "0")
    expect(page.locator("#belt")).to_contain_text("0/51")
    expect(page.locator("#cmp-body tr[data-node='logits'] .solved-mark")).to_have_count(0)
    expect(page.locator("#dojo-code")).to_have_value("dlogits = ")
    page.fill("#dojo-code", "dlogits = 'the wavenet draft'")
    page.click("#open-cell")
    page.fill("#cell-code-text", "# the wavenet cell")
    page.click("#cell-close")

    page.go_back()
    wait_for_figure(page, "logits", run_part="r2-mlp-")
    expect(page.locator("#belt")).to_contain_text("1/26")
    expect(page.locator("#dojo-code")).to_have_value(re.compile("^dlogits = F.softmax"))
    page.click("#open-cell")
    expect(page.locator("#cell-code-text")).to_have_value("")
    page.click("#cell-close")
    page.go_forward()
    wait_for_figure(page, "logits", run_part="r2-wavenet-")
    expect(page.locator("#dojo-code")).to_have_value("dlogits = 'the wavenet draft'")
    page.click("#open-cell")
    expect(page.locator("#cell-code-text")).to_have_value("# the wavenet cell")
    # the cell dialog names the network's own first and last gradient, and its count
    expect(page.locator("#cell-intro")).to_contain_text("dlogprobs")
    expect(page.locator("#cell-intro")).to_contain_text("dC")
    expect(page.locator(".cell-empty")).to_contain_text("51")


def test_work_kept_before_networks_existed_is_the_mlps(browser_page: BrowserPage) -> None:
    """A learner's drafts, cell and progress from before (storage v1, per variant only) come back
    under the MLP, and nowhere else."""
    page = browser_page.page
    page.goto("/?node=h&dojo=1")
    wait_for_figure(page, "h")
    page.evaluate("""() => {
      localStorage.clear();
      localStorage.setItem('backprop-ninja/v1/draft/chain/h', JSON.stringify('dh = dlogits @ W2.T  # from v1'));
      localStorage.setItem('backprop-ninja/v1/cell/chain', JSON.stringify('# my v1 cell'));
      localStorage.setItem('backprop-ninja/v1/solved/chain', JSON.stringify({h: {status: 'exact', at: '2024-01-01'}}));
    }""")
    page.reload()
    wait_for_figure(page, "h")
    expect(page.locator("#dojo-code")).to_have_value("dh = dlogits @ W2.T  # from v1")
    expect(page.locator("#belt")).to_have_attribute("data-solved", "1")
    page.click("#open-cell")
    expect(page.locator("#cell-code-text")).to_have_value("# my v1 cell")
    keys = page.evaluate("() => Object.keys(localStorage).sort()")
    assert keys == [f"backprop-ninja/v2/{key}" for key in ("cell/mlp/chain", "draft/mlp/chain/h", "solved/mlp/chain")]


def test_the_belt_is_earned_by_the_share_of_the_network(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page, "?net=wavenet")
    names = rows(page)
    for count, belt in ((7, "white"), (8, "yellow"), (24, "green"), (50, "brown"), (51, "black")):
        solved = {name: {"status": "exact", "at": "2024-01-01"} for name in names[:count]}
        page.evaluate("s => localStorage.setItem('backprop-ninja/v2/solved/wavenet/chain', JSON.stringify(s))", solved)
        page.evaluate("() => window.dispatchEvent(new StorageEvent('storage'))")  # as another tab's change
        expect(page.locator("#belt")).to_have_attribute("data-belt", belt)
        expect(page.locator("#belt")).to_contain_text(f"{count}/51")


# ---- screens ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def screens_dir(artifacts_dir: Path) -> Path:
    directory = artifacts_dir / "screens"
    directory.mkdir(exist_ok=True)
    return directory


SCREENS = [(390, 844), (1280, 720), (1920, 1080)]


@pytest.mark.parametrize(("width", "height"), SCREENS, ids=[f"{w}x{h}" for w, h in SCREENS])
def test_the_wavenet_page_at_each_screen_size(browser: Browser, server_url: str, screens_dir: Path,
                                              width: int, height: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=server_url)
    try:
        page = context.new_page()
        page.goto("/?net=wavenet&node=hprebn1")
        wait_for_figure(page, "hprebn1")
        page.wait_for_timeout(150)
        phone = width < 1024
        page.screenshot(path=str(screens_dir / f"{width}x{height}-wavenet.png"), full_page=phone)
        assert page.evaluate(SIDEWAYS_JS) == []
        assert page.evaluate(OVERLAPS_JS) == []
        assert broken_text(page) == []
        panels = page.evaluate(PANELS_JS)
        assert all(p["w"] >= 180 and p["h"] >= 100 for p in panels), panels
        assert page.evaluate(GRAPH_OVERLAPS_JS) == []
        if not phone:
            # table, graph and the four heatmaps together; the graph inside its box, the header on one line
            for selector in ("#table-wrap", "#graph-wrap", "#figure .main-svg >> nth=0", "#controls", ".lang-toggle"):
                assert inside(page.locator(selector).bounding_box(), width, height), selector
            wrap = page.locator("#graph-wrap").bounding_box()
            scrolled = page.evaluate("() => document.getElementById('graph-wrap').scrollHeight")
            assert wrap is not None and scrolled <= wrap["height"] + 1  # folded to fit: nothing to scroll
        # the dojo with a verdict on the WaveNet
        page.click("#tab-dojo")
        page.fill("#dojo-code", "dhprebn1 = dbndiff1.clone()")
        page.press("#dojo-code", "Control+Enter")
        wait_for_figure(page, "hprebn1", "yours")
        page.screenshot(path=str(screens_dir / f"{width}x{height}-wavenet-dojo.png"), full_page=phone)
        assert page.evaluate(SIDEWAYS_JS) == []
    finally:
        context.close()


# Two boxes of the graph that overlap (a label hidden under another): none may.
GRAPH_OVERLAPS_JS = r"""
() => {
  const boxes = [...document.querySelectorAll('#graph .gnode rect')]
    .map((r) => ({ name: r.parentNode.dataset.node, b: r.getBoundingClientRect() }));
  const out = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i].b, b = boxes[j].b;
    const hit = a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
    if (hit) out.push(`${boxes[i].name} / ${boxes[j].name}`);
  }
  return out;
}
"""


# ---- the graph's layout for any network ------------------------------------------------------------


def transformer_graph(n_layer: int) -> dict[str, Any]:
    """A graph of a GPT's shape as a run document carries it (llm.c's names): per block a layernorm of
    seven nodes, attention with its softmax (17), a second layernorm, a GELU MLP and two residual
    connections (38 nodes and 12 parameters a block), then the final layernorm and the lecture's
    cross-entropy; the token table is used at both ends (weight tying)."""
    nodes: list[dict[str, Any]] = []
    edges: list[tuple[str, str]] = []

    def add(name: str, kind: str = "intermediate", *inputs: str) -> str:
        nodes.append({"name": name, "kind": kind, "status": None if kind == "data" else "exact"})
        edges.extend((i, name) for i in inputs)
        return name

    def layernorm(prefix: str, x: str, suffix: str) -> str:
        w, b = add(f"{prefix}w{suffix}", "param"), add(f"{prefix}b{suffix}", "param")
        mean = add(f"{prefix}_mean{suffix}", "intermediate", x)
        diff = add(f"{prefix}_diff{suffix}", "intermediate", x, mean)
        var = add(f"{prefix}_var{suffix}", "intermediate", add(f"{prefix}_diff2{suffix}", "intermediate", diff))
        norm = add(f"{prefix}_norm{suffix}", "intermediate", diff, add(f"{prefix}_rstd{suffix}", "intermediate", var))
        return add(f"{prefix}{suffix}", "intermediate", norm, w, b)

    def chain(names: list[str], x: str, suffix: str) -> str:
        for name in names:
            x = add(f"{name}{suffix}", "intermediate", x)
        return x

    wte, xb = add("wte", "param"), add("Xb", "data")
    x = add("encoded", "intermediate", add("tok_emb", "intermediate", wte, xb), add("wpe", "param"))
    for layer in range(n_layer):
        s = f"_{layer}"
        qkv = add(f"qkv{s}", "intermediate", layernorm("ln1", x, s), add(f"qkvw{s}", "param"), add(f"qkvb{s}", "param"))
        q, k, v = (add(f"{c}{s}", "intermediate", qkv) for c in "qkv")
        scores = add(f"scores{s}", "intermediate", q, k)
        masked = chain(["preatt", "preatt_masked"], scores, s)
        maxes = add(f"att_maxes{s}", "intermediate", masked)
        counts = chain(["att_counts"], add(f"att_norm{s}", "intermediate", masked, maxes), s)
        inv = chain(["att_counts_sum", "att_counts_sum_inv"], counts, s)
        att = add(f"att{s}", "intermediate", counts, inv)
        atty = chain(["atty"], add(f"y{s}", "intermediate", att, v), s)
        proj = add(f"attproj{s}", "intermediate", atty, add(f"attprojw{s}", "param"), add(f"attprojb{s}", "param"))
        x2 = add(f"residual2{s}", "intermediate", x, proj)
        fch = add(f"fch{s}", "intermediate", layernorm("ln2", x2, s), add(f"fcw{s}", "param"), add(f"fcb{s}", "param"))
        gelu = add(f"fch_gelu{s}", "intermediate", fch, chain(["fch_cube", "fch_inner", "fch_tanh"], fch, s))
        fcproj = add(f"fcproj{s}", "intermediate", gelu, add(f"fcprojw{s}", "param"), add(f"fcprojb{s}", "param"))
        x = add(f"residual3{s}", "intermediate", x2, fcproj)
    logits = add("logits", "intermediate", layernorm("lnf", x, ""), wte)
    maxes = add("logit_maxes", "intermediate", logits)
    counts = chain(["counts"], add("norm_logits", "intermediate", logits, maxes), "")
    inv = chain(["counts_sum", "counts_sum_inv"], counts, "")
    logprobs = chain(["logprobs"], add("probs", "intermediate", counts, inv), "")
    add("loss", "loss", logprobs, add("Yb", "data"))
    return {"nodes": nodes, "edges": edges}


LAYOUT_JS = r"""
async ([v, graph, width, budget, selected]) => {
  const { layoutGraph } = await import('/static/js/graph.js' + v);
  const layout = layoutGraph(graph, width, { selected, budget: budget ?? Infinity });
  const boxes = [...layout.boxes.values()]
    .map((b) => ({ id: b.id, name: b.name, x: b.x, y: b.y, w: b.w, h: b.h, ov: b.overview, copy: b.copy }));
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    const hit = a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5;
    if (hit) overlaps.push(`${a.id} / ${b.id}`);
  }
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) layoutGraph(graph, width, { selected, budget: budget ?? Infinity });
  return { boxes, overlaps, height: layout.height, folded: layout.folded, rows: layout.rows.length,
           ms: (performance.now() - t0) / 5,
           bad: layout.edges.filter((e) => !/^M[-\d.]/.test(e.d) || e.d.includes('NaN')).length };
}
"""


@pytest.mark.parametrize("n_layer", [1, 2, 4])
def test_a_transformer_of_any_depth_is_laid_out_readably(browser_page: BrowserPage, n_layer: int) -> None:
    page = open_page(browser_page.page)
    version = page.evaluate("() => new URL(document.querySelector('script[type=module]').src).search")
    graph = transformer_graph(n_layer)
    names = {n["name"] for n in graph["nodes"]}
    assert len(names) == len(graph["nodes"]) == 24 + 50 * n_layer
    for width in (348, 918, 1367):
        full = page.evaluate(LAYOUT_JS, [version, graph, width, None, "att_0"])
        assert full["overlaps"] == [] and full["bad"] == 0 and not full["folded"]
        assert {b["name"] for b in full["boxes"]} == names  # every node drawn, under its own name
        assert all(b["x"] >= 0 and b["x"] + b["w"] <= width for b in full["boxes"])
        # the tied token table: a second box beside its far use instead of an edge across the graph
        assert [b["id"] for b in full["boxes"] if b["copy"]] == ["wte#1"]
        # too tall for a box of 200 px: the rows around the selection stay, the rest fold
        folded = page.evaluate(LAYOUT_JS, [version, graph, width, 200, "att_0"])
        assert folded["folded"] and folded["overlaps"] == [] and folded["bad"] == 0
        assert {b["name"] for b in folded["boxes"]} == names
        assert not next(b for b in folded["boxes"] if b["name"] == "att_0")["ov"]  # the selection in full size
        if n_layer <= 2 and width >= 918:
            assert folded["height"] <= 200
        print(f"\ntransformer n_layer={n_layer} ({len(names)} nodes) at {width} px: {full['rows']} rows, "
              f"{full['height']:.0f} px; folded to {folded['height']:.0f} px; layout {full['ms']:.1f} ms")


def test_a_transformer_graph_drawn_on_the_page(browser_page: BrowserPage, artifacts_dir: Path) -> None:
    """The transformer-shaped graph drawn in the page's graph box at 1366 px, for a person to look at:
    folded around att_1 as the page draws it, and unfolded."""
    page = open_page(browser_page.page)
    version = page.evaluate("() => new URL(document.querySelector('script[type=module]').src).search")
    graph = transformer_graph(2)
    directory = artifacts_dir / "screens"
    directory.mkdir(exist_ok=True)
    for name, budget in (("folded", None), ("full", 10_000)):
        page.evaluate("""async ([v, graph, budget]) => {
          const g = await import('/static/js/graph.js' + v);
          const { translator } = await import('/static/js/i18n.js' + v);
          const wrap = document.getElementById('graph-wrap');
          if (budget) wrap.style.maxHeight = 'none';
          const limit = budget ?? parseFloat(getComputedStyle(wrap).maxHeight);
          const layout = g.layoutGraph(graph, wrap.clientWidth, { selected: 'att_1', budget: limit });
          const t = translator('en');
          g.drawGraph(document.getElementById('graph'), layout, { selected: 'att_1', selectable: new Set(), t });
        }""", [version, graph, budget])
        page.locator(".graph-card").screenshot(path=str(directory / f"1366-transformer-graph-{name}.png"))
    assert browser_page.problems.console_errors == []
