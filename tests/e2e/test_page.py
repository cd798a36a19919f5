"""The interactive page in a real browser: what a student or a teacher sees and does.

The page's Content-Security-Policy forbids eval, so the tests wait with selectors and `expect`
(never page.wait_for_function, whose string predicates the policy would block); page.evaluate goes
through the DevTools protocol and is not affected. The page marks each drawn figure with
data-drawn="<run_id>/<node>/<diff_scale>", which is what the tests wait for.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.support import TIMEOUT_MS, VIEWPORT, BrowserPage, api_run, query_of, wait_for_figure

pytestmark = pytest.mark.e2e


def open_page(bp: BrowserPage, query: str = "") -> Page:
    bp.page.goto(f"/{query}")
    wait_for_figure(bp.page)
    return bp.page


def table_rows(page: Page) -> list[str]:
    return page.eval_on_selector_all("#cmp-body tr[data-node]", "rows => rows.map(r => r.dataset.node)")


def table_statuses(page: Page) -> dict[str, str]:
    return dict(page.eval_on_selector_all("#cmp-body tr[data-node]", "rows => rows.map(r => [r.dataset.node, r.dataset.status])"))


def badge_statuses(page: Page) -> dict[str, str]:
    """The status as the badge in each row shows it (what a user reads), not the row's data attribute."""
    return dict(page.eval_on_selector_all(
        "#cmp-body tr[data-node]", "rows => rows.map(r => [r.dataset.node, r.querySelector('td .badge').dataset.status])"))


def api_error(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """The server's error body for a config it rejects."""
    request = urllib.request.Request(f"{base_url}/api/runs?lang=en", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as err:
        error: dict[str, Any] = json.load(err)
        return error
    raise AssertionError(f"the server accepted {body}")


def run_id(page: Page) -> str:
    return str(page.get_attribute("body", "data-run-id"))


def apply_field(page: Page, field: str, value: str) -> None:
    page.fill(f"#ctl-{field}", value)
    page.press(f"#ctl-{field}", "Enter")


def test_page_loads_without_console_errors_or_offsite_requests(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    expect(page.locator("#loss-value")).to_have_text(re.compile(r"^\d+\.\d{4}$"))
    assert browser_page.problems.console_errors == []  # CSP violations are reported here too
    assert browser_page.problems.page_errors == []
    assert browser_page.problems.foreign_requests == []  # no CDN, no web font: works offline


def test_table_has_the_26_gradients_in_backward_order(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    rows = table_rows(page)
    assert len(rows) == 26
    expected = [n["name"] for n in api_run(browser_page.base_url, {})["nodes"]]
    assert rows == expected
    assert rows[0] == "logprobs" and rows[-1] == "C"
    expect(page.locator("#summary-counts .total")).to_have_text("26/26 exact")
    # the first row is selected by default, and its detail is on screen
    expect(page.locator("#cmp-body tr.selected")).to_have_attribute("data-node", "logprobs")
    expect(page.locator("#detail-name")).to_have_text("logprobs")


def test_clicking_a_graph_node_draws_its_four_heatmaps(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    page.click(".gnode[data-node='bnvar_inv']")
    wait_for_figure(page, "bnvar_inv")
    traces = page.evaluate("() => document.getElementById('figure').data.map(t => t.type)")
    assert traces == ["heatmap"] * 4
    assert page.locator("#figure .hm image").count() == 4  # four heatmap layers actually rendered
    expect(page.locator("#detail-name")).to_have_text("bnvar_inv")
    expect(page.locator("#detail .code-line")).to_have_text("bnvar_inv = (bnvar + 1e-5)**-0.5")
    expect(page.locator(".gnode.selected")).to_have_attribute("data-node", "bnvar_inv")
    expect(page.locator("#cmp-body tr.selected")).to_have_attribute("data-node", "bnvar_inv")
    assert query_of(page)["node"] == "bnvar_inv"


def test_clicking_a_table_row_selects_that_node(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    page.click("#cmp-body tr[data-node='W2'] .node-link")
    wait_for_figure(page, "W2")
    expect(page.locator("#detail-name")).to_have_text("W2")
    expect(page.locator("#detail .detail-shape")).to_have_text("(64, 27)")


def test_switching_variant_and_dtype_updates_the_statuses(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    base = browser_page.base_url
    assert set(badge_statuses(page).values()) == {"exact"}

    page.select_option("#ctl-variant", "fused")
    wait_for_figure(page, run_part="-fused-")
    fused32 = badge_statuses(page)
    assert fused32["logits"] == "approx" and fused32["hprebn"] == "approx"  # the fused blocks round differently
    assert fused32 == {n["name"]: n["status"] for n in api_run(base, {"variant": "fused"})["nodes"]}
    expect(page.locator("#summary-counts .total")).to_have_text("7/26 exact")
    expect(page.locator("#cmp-body tr[data-node='logits'] .tag-fused")).to_be_visible()
    maxdiff32 = float(str(page.get_attribute("#cmp-body tr[data-node='logits'] td[data-maxdiff]", "data-maxdiff")))

    page.select_option("#ctl-dtype", "float64")
    wait_for_figure(page, run_part="-f64-fused-")
    fused64 = badge_statuses(page)
    assert fused64 == {n["name"]: n["status"] for n in api_run(base, {"variant": "fused", "dtype": "float64"})["nodes"]}
    maxdiff64 = float(str(page.get_attribute("#cmp-body tr[data-node='logits'] td[data-maxdiff]", "data-maxdiff")))
    assert maxdiff64 < 1e-12 < maxdiff32  # float64 shows the float32 gap was rounding

    page.select_option("#ctl-variant", "chain")
    wait_for_figure(page, run_part="-f64-chain-")
    assert set(badge_statuses(page).values()) == {"exact"}
    assert table_statuses(page) == badge_statuses(page)


def test_permalink_and_reload_restore_node_and_config(browser_page: BrowserPage, browser: Browser) -> None:
    page = open_page(browser_page)
    apply_field(page, "n_hidden", "32")
    wait_for_figure(page, run_part="-h32-")
    page.select_option("#ctl-variant", "fused")
    wait_for_figure(page, run_part="-fused-")
    page.click(".gnode[data-node='bnvar']")
    wait_for_figure(page, "bnvar")
    page.click("[data-scale='log']")
    wait_for_figure(page, "bnvar", "log")
    page.click("[data-lang='de']")
    seen_run = run_id(page)
    query = query_of(page)
    assert {k: query[k] for k in ("n_hidden", "variant", "node", "diff_scale", "lang")} == {
        "n_hidden": "32", "variant": "fused", "node": "bnvar", "diff_scale": "log", "lang": "de"}

    page.reload()
    wait_for_figure(page, "bnvar", "log")
    assert run_id(page) == seen_run
    expect(page.locator("#ctl-n_hidden")).to_have_value("32")
    expect(page.locator("#ctl-variant")).to_have_value("fused")
    expect(page.locator("#cmp-body tr.selected")).to_have_attribute("data-node", "bnvar")
    expect(page.locator("[data-scale='log']")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("html")).to_have_attribute("lang", "de")

    # the same link in another browser (a student opening the teacher's link) shows the same view
    other = browser.new_context(viewport=VIEWPORT)
    try:
        student = other.new_page()
        student.goto(page.url)
        wait_for_figure(student, "bnvar", "log")
        assert run_id(student) == seen_run
        expect(student.locator("#detail-name")).to_have_text("bnvar")
    finally:
        other.close()


def test_german_toggle_changes_the_labels(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    expect(page.locator("#new-batch")).to_have_text("New batch")
    page.click("[data-lang='de']")
    expect(page.locator("#new-batch")).to_have_text("Neuer Batch")
    expect(page.locator("#cmp-table thead th").first).to_have_text("Knoten")
    expect(page.locator("#cmp-body tr[data-node='probs'] td .badge").first).to_have_text("exakt")
    expect(page.locator("#detail .detail-lines dt").first).to_have_text("Vorwärts")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    assert query_of(page)["lang"] == "de"
    page.click("[data-lang='en']")
    expect(page.locator("#new-batch")).to_have_text("New batch")
    expect(page.locator("#cmp-table thead th").first).to_have_text("node")


def test_out_of_range_input_shows_the_server_message(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    before = run_id(page)
    apply_field(page, "batch_size", "5000")
    banner = page.locator("#banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "alert")
    # the server's own message, word for word (its range is the server's: the networks' sizes decide it)
    expect(page.locator("#banner-text")).to_have_text(re.compile(r"^batch_size: must be an integer in \d+\.\.4096, got 5000$"))
    assert page.locator("#banner-text").inner_text() == api_error(browser_page.base_url, {"batch_size": 5000})["message"]
    expect(page.locator("#ctl-batch_size")).to_have_attribute("aria-invalid", "true")
    assert run_id(page) == before and len(table_rows(page)) == 26  # the last good run stays on screen
    assert query_of(page)["batch_size"] == "32"  # a rejected value never reaches the permalink

    apply_field(page, "batch_size", "64")
    wait_for_figure(page, run_part="-b64-")
    expect(banner).to_be_hidden()
    expect(page.locator("#ctl-batch_size")).not_to_have_attribute("aria-invalid", "true")
    assert browser_page.problems.page_errors == []


def test_a_link_with_a_refused_config_says_so_everywhere_not_loading(browser_page: BrowserPage) -> None:
    """No run to show (the link's n_embd is refused): the banner names the rule, and the figure's place
    says "kein Lauf" like the table, not "loading the plotting library…" for ever."""
    page = browser_page.page
    page.goto("/?net=gpt&n_embd=30&lang=de")
    expect(page.locator("#banner-text")).to_contain_text("nicht durch n_head 4 teilbar")
    expect(page.locator("#figure-placeholder")).to_have_text("kein Lauf")
    assert browser_page.problems.page_errors == []


def test_network_failure_is_reported_not_swallowed(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)

    def refuse(route: Route) -> None:
        route.abort("connectionrefused")

    page.route("**/api/runs?*", refuse)  # the page sends its language: /api/runs?lang=en
    page.click("#new-batch")
    expect(page.locator("#banner")).to_be_visible()
    expect(page.locator("#banner-text")).to_have_text("No answer from the server. Is it still running?")


def test_unknown_node_in_a_link_shows_the_server_message(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/?node=nosuch")
    wait_for_figure(page, "logprobs")
    expect(page.locator("#banner-text")).to_contain_text("unknown node 'nosuch'")
    # the seed notebook's alias is resolved by the server and the link rewritten to the lecture's name
    page.goto("/?node=zprebn")
    wait_for_figure(page, "hprebn")
    assert query_of(page)["node"] == "hprebn"


def test_log_toggle_requests_the_log_figure(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    page.click("[data-scale='log']")
    wait_for_figure(page, "logprobs", "log")
    meta_scale = page.evaluate("() => document.getElementById('figure').layout.meta.diff_scale")
    assert meta_scale == "log"
    expect(page.locator("[data-scale='log']")).to_have_attribute("aria-pressed", "true")
    page.click("[data-scale='linear']")
    wait_for_figure(page, "logprobs", "linear")


def test_arrow_keys_walk_the_nodes_but_not_inside_inputs(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    page.locator("body").focus()
    page.keyboard.press("ArrowDown")
    wait_for_figure(page, "probs")
    page.keyboard.press("ArrowRight")
    wait_for_figure(page, "counts_sum_inv")
    page.keyboard.press("ArrowUp")
    wait_for_figure(page, "probs")
    page.focus("#ctl-n_embd")
    page.keyboard.press("ArrowUp")  # a number input's own arrow: the node must not move
    page.wait_for_timeout(300)
    expect(page.locator("#cmp-body tr.selected")).to_have_attribute("data-node", "probs")


def test_new_batch_draws_a_fresh_seed(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    before = run_id(page)
    page.click("#new-batch")
    page.wait_for_selector(f"#figure[data-drawn]:not([data-drawn^='{before}/'])", timeout=TIMEOUT_MS)
    seed = page.input_value("#ctl-seed")
    assert seed != "2147483647" and f"-s{seed}-" in run_id(page)
    assert query_of(page)["seed"] == seed
    assert len(table_rows(page)) == 26


def test_table_graph_and_heatmaps_fit_a_laptop_screen(browser_page: BrowserPage) -> None:
    page = open_page(browser_page)
    width, height = VIEWPORT["width"], VIEWPORT["height"]

    def box(selector: str) -> dict[str, float]:
        b = page.locator(selector).bounding_box()
        assert b is not None, selector
        return b

    for selector in ("#table-wrap", "#graph", "#figure .main-svg >> nth=0"):
        b = box(selector)
        inside = b["x"] >= 0 and b["y"] >= 0 and b["x"] + b["width"] <= width + 1 and b["y"] + b["height"] <= height + 1
        assert inside, (selector, b)
    assert box("#table-wrap")["height"] >= 300  # at least a dozen rows at once
    assert box("#figure .main-svg >> nth=0")["height"] >= 300  # four heatmaps large enough to read


def test_speed_is_measured_with_the_performance_api(browser: Browser, server_url: str, artifacts_dir: Path) -> None:
    """Prints the three page timings (run pytest with -s) and writes artifacts/e2e-timings.json.
    Nothing here asserts on time: only that the page set the marks it is measured by."""
    # A browser that has just started pays for its first renderer, fonts and ICU on its first page
    # (~1 s here); a visitor's browser is already running. Warm it up in a throwaway context...
    warm = browser.new_context(viewport=VIEWPORT, base_url=server_url)
    try:
        warm_page = warm.new_page()
        warm_page.goto("/")
        wait_for_figure(warm_page)
    finally:
        warm.close()
    # ...then measure in a fresh context: empty HTTP cache and no code cache, as on a first visit.
    context = browser.new_context(viewport=VIEWPORT, base_url=server_url)
    try:
        timings = measure_page_timings(context.new_page())
    finally:
        context.close()
    (artifacts_dir / "e2e-timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"\npage timings (headless Chromium, loopback): first heatmap {timings['navigation_to_first_heatmap_ms']} ms"
          f" (budget 1500) · node switch median {timings['node_switch_ms_median']} ms (budget 200)"
          f" · new batch median {timings['new_batch_ms_median']} ms (budget 300) · load {timings['loadavg_1min']}")
    assert timings["navigation_to_first_heatmap_ms"] > 0
    assert len(timings["node_switch_ms_all"]) == 6 and len(timings["new_batch_ms_all"]) == 3


def measure_page_timings(page: Page) -> dict[str, Any]:
    page.goto("/")
    wait_for_figure(page)
    first_heatmap = page.evaluate("() => performance.getEntriesByName('first-heatmap')[0].startTime")

    switches: list[float] = []
    for node in ("h", "bnvar", "W1", "counts", "emb", "logits"):  # not neighbours: none prefetched
        page.click(f".gnode[data-node='{node}']")
        wait_for_figure(page, node)
        switches.append(page.evaluate("() => performance.getEntriesByName('node-switch', 'measure').at(-1).duration"))

    batches: list[float] = []
    for _ in range(3):
        before = run_id(page)
        page.click("#new-batch")
        page.wait_for_selector(f"#figure[data-drawn]:not([data-drawn^='{before}/'])", timeout=TIMEOUT_MS)
        batches.append(page.evaluate("() => performance.getEntriesByName('new-batch', 'measure').at(-1).duration"))

    timings = {
        "navigation_to_first_heatmap_ms": round(first_heatmap, 1),
        "node_switch_ms_median": round(statistics.median(switches), 1),
        "node_switch_ms_all": [round(x, 1) for x in switches],
        "new_batch_ms_median": round(statistics.median(batches), 1),
        "new_batch_ms_all": [round(x, 1) for x in batches],
        "budget_ms": {"first_heatmap": 1500, "node_switch": 200, "new_batch": 300},
        "viewport": VIEWPORT,
        # the machine's load when measured: on a shared 2-core box it moves the first figure by ~0.3 s
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }
    return timings
