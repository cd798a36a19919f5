"""Small things a user trips on, and the page's language: Back and Forward inside the app, the focus
following ↑/↓, the page's language on every request, every label in English and German, the whole
cell's rows after a runtime error, the fused variant's skipped nodes, and the figure's modebar."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.support import TIMEOUT_MS, BrowserPage, api_run, query_of, wait_for_figure

pytestmark = pytest.mark.e2e


def open_page(page: Page, query: str = "") -> Page:
    page.goto(f"/{query}")
    wait_for_figure(page)
    return page


def selected(page: Page) -> str:
    return str(page.get_attribute("#cmp-body tr.selected", "data-node"))


def test_back_and_forward_step_through_nodes_and_views(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page, "?node=h")
    page.click("#cmp-body tr[data-node='W2'] .node-link")
    wait_for_figure(page, "W2")
    page.click(".gnode[data-node='bnvar']")
    wait_for_figure(page, "bnvar")
    page.go_back()
    wait_for_figure(page, "W2")
    assert selected(page) == "W2" and query_of(page)["node"] == "W2"
    page.go_back()
    wait_for_figure(page, "h")
    page.go_forward()
    wait_for_figure(page, "W2")

    # Gradients → Train is a step of its own; Back brings the gradients (and the node) back
    page.click(".view-tab[data-view='train']")
    expect(page.locator("#view-train")).to_be_visible()
    page.go_back()
    expect(page.locator("#view-grad")).to_be_visible()
    expect(page.locator("#view-train")).to_be_hidden()
    assert selected(page) == "W2"
    page.go_forward()
    expect(page.locator("#view-train")).to_be_visible()
    page.go_back()

    # a config change is a step too: Back returns to the run before it
    run_before = page.get_attribute("body", "data-run-id")
    page.select_option("#ctl-variant", "fused")
    wait_for_figure(page, "W2", run_part="-fused-")
    page.go_back()
    wait_for_figure(page, "W2", run_part="-chain-")
    assert page.get_attribute("body", "data-run-id") == run_before
    expect(page.locator("#ctl-variant")).to_have_value("chain")

    # a walk with the arrow keys is one step: Back returns to where it began
    page.locator("#cmp-body tr[data-node='W2'] .node-link").focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    wait_for_figure(page, "bngain")  # W2 → b2 → hpreact → bngain
    page.go_back()
    wait_for_figure(page, "W2")
    # typing in a field does not make history: Back from the W2 entry goes to h, not to a keystroke
    page.fill("#ctl-n_embd", "12")
    page.go_back()
    wait_for_figure(page, "h")
    assert browser_page.problems.page_errors == []


def test_the_focus_follows_the_arrow_keys(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page, "?node=probs")
    page.click("#cmp-body tr[data-node='probs'] .node-link")
    page.keyboard.press("ArrowDown")
    wait_for_figure(page, "counts_sum_inv")
    focused = page.evaluate("() => document.activeElement.closest('tr')?.dataset.node ?? null")
    assert focused == "counts_sum_inv"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    wait_for_figure(page, "logprobs")
    assert page.evaluate("() => document.activeElement.closest('tr')?.dataset.node ?? null") == "logprobs"
    # Enter on the focused row acts on the row on screen
    page.keyboard.press("Enter")
    assert selected(page) == "logprobs"
    # a node chosen in the graph brings its row into the table's view (the table scrolls, not the page)
    page.click(".gnode[data-node='C']")
    wait_for_figure(page, "C")
    expect(page.locator("#cmp-body tr[data-node='C']")).to_be_in_viewport()
    assert page.evaluate("() => document.scrollingElement.scrollTop") == 0


def test_every_request_carries_the_page_language(browser_page: BrowserPage) -> None:
    page = browser_page.page
    api_requests: list[Request] = []
    page.on("request", lambda r: api_requests.append(r) if "/api/runs" in r.url else None)
    open_page(page, "?node=h&dojo=1&lang=de")
    expect(page.locator("#figure")).to_have_attribute("data-drawn", re.compile("/h/linear$"))
    titles = page.evaluate("() => document.getElementById('figure').data.map(t => t.name)")
    assert titles[1] == "dh (manuell)"  # the figure comes in German, like the labels around it
    page.fill("#dojo-code", "dh = dlogits @ W2.T")
    page.press("#dojo-code", "Control+Enter")
    wait_for_figure(page, "h", "yours")
    page.click("#open-cell")
    page.fill("#cell-code-text", "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\n")
    page.click("#cell-grade")
    expect(page.locator("#cell-passed")).to_be_visible(timeout=TIMEOUT_MS)
    kinds = {"runs": r"/api/runs\?", "node": r"/nodes/", "check": r"/check\?", "grade": r"/grade\?"}
    for kind, pattern in kinds.items():
        matching = [r for r in api_requests if re.search(pattern, r.url)]
        assert matching, kind
        assert all(parse_qs(urlparse(r.url).query).get("lang") == ["de"] for r in matching), kind
    # switching the language fetches the node again, in English
    page.click("#cell-close")
    page.click("#figure-source [data-source='manual']")
    page.click("[data-lang='en']")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#figure .infolayer")).to_contain_text("dh (manual)")
    assert [r for r in api_requests if "/nodes/h?" in r.url and "lang=en" in r.url]


def test_every_label_has_english_and_german(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page)
    version = page.evaluate("() => new URL(document.querySelector('script[type=module]').src).search")
    report = page.evaluate("""async (v) => {
      const { DICTIONARIES } = await import('/static/js/i18n.js' + v);
      const en = DICTIONARIES.en, de = DICTIONARIES.de;
      const placeholders = (text) => JSON.stringify((text.match(/\\{\\w+\\}/g) || []).sort());
      const inPage = new Set();
      for (const el of document.querySelectorAll('[data-i18n]')) inPage.add(el.dataset.i18n);
      for (const el of document.querySelectorAll('[data-i18n-title]')) inPage.add(el.dataset.i18nTitle);
      for (const el of document.querySelectorAll('[data-i18n-aria-label]')) inPage.add(el.dataset.i18nAriaLabel);
      return {
        onlyEn: Object.keys(en).filter((k) => !(k in de)),
        onlyDe: Object.keys(de).filter((k) => !(k in en)),
        empty: Object.entries({ ...en, ...de }).filter(([, v]) => typeof v !== 'string' || !v.trim()).map(([k]) => k),
        pageKeysMissing: [...inPage].filter((k) => !(k in en) || !(k in de)),
        fields: Object.keys(en).filter((k) => k in de && placeholders(en[k]) !== placeholders(de[k])),
        count: Object.keys(en).length,
      };
    }""", version)
    assert report["count"] > 200
    assert report["onlyEn"] == [] and report["onlyDe"] == []
    assert report["empty"] == []
    assert report["pageKeysMissing"] == []
    assert report["fields"] == []  # the same {placeholders} in both languages


def test_whole_cell_rows_after_a_runtime_error_say_what_happened(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page, "?dojo=1")
    page.click("#open-cell")
    page.fill("#cell-code-text", "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\n"
                                 "dprobs = (1.0/probs) * dlogprobs\ndcounts_sum_inv = 1/0\n"
                                 "dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv\n")
    page.click("#cell-grade")
    expect(page.locator("#cell-error")).to_contain_text("line 4")

    def badge(node: str) -> str:
        return page.locator(f"#cell-table tr[data-node='{node}'] td .badge").first.inner_text()

    assert badge("probs") == "exact"
    assert badge("counts_sum_inv") == "stopped here"  # the line that raised
    assert badge("counts_sum") == "not reached"       # its line comes after the stop
    assert badge("counts") == "not defined"           # the cell never assigns dcounts
    totals = page.locator(".cell-totals").inner_text()
    assert "1 stopped here" in totals and "1 not reached" in totals and "22 not defined" in totals
    assert "missing" not in totals


def test_the_fused_variant_shows_which_nodes_it_skips(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page, "?variant=fused")
    doc = api_run(browser_page.base_url, {"variant": "fused"})
    skipped = {n["name"]: n["skipped_by"] for n in doc["nodes"] if n["skipped_by"]}
    assert len(skipped) == 13
    rows = page.eval_on_selector_all("#cmp-body tr.skipped", "rows => rows.map(r => [r.dataset.node, r.dataset.skippedBy])")
    assert dict(rows) == skipped
    groups = page.locator("#cmp-body tr.group-row")
    expect(groups).to_have_count(2)
    expect(groups.first).to_contain_text("cross_entropy")
    graph = page.eval_on_selector_all(".gnode.skipped", "gs => gs.map(g => [g.dataset.node, g.dataset.skippedBy])")
    assert dict(graph) == skipped
    expect(page.locator("#legend-skipped")).to_be_visible()
    page.click("#cmp-body tr[data-node='bnvar'] .node-link")
    wait_for_figure(page, "bnvar")
    expect(page.locator("#detail-skipped")).to_contain_text("batchnorm")
    # the chain skips nothing
    page.select_option("#ctl-variant", "chain")
    wait_for_figure(page, run_part="-chain-")
    expect(page.locator("#cmp-body tr.skipped")).to_have_count(0)
    expect(page.locator(".gnode.skipped")).to_have_count(0)


def test_the_modebar_offers_nothing_that_needs_the_internet(browser_page: BrowserPage) -> None:
    page = open_page(browser_page.page)
    page.hover("#figure")
    titles = page.eval_on_selector_all("#figure .modebar-btn", "bs => bs.map(b => b.dataset.title)")
    assert "Download plot as a PNG" in titles
    assert not [t for t in titles if "Share" in t or "Cloud" in t or "Edit" in t]
    # the Train view's charts too (their own module; the page's plotly defaults cover them)
    page.click(".view-tab[data-view='train']")
    page.wait_for_selector("#chart-loss .main-svg", timeout=TIMEOUT_MS)
    page.hover("#chart-loss")
    chart_titles = page.eval_on_selector_all("#chart-loss .modebar-btn", "bs => bs.map(b => b.dataset.title)")
    assert chart_titles and not [t for t in chart_titles if "Share" in t or "Cloud" in t]
