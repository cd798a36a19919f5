"""A busy server (429 with Retry-After, as the server's limits answer a class submitting at once): the
page waits, shows "busy — retrying in N s" with a Cancel button, and asks again, for runs, nodes,
dojo checks and whole-cell grades. Playwright's request routing answers the first request(s) with a
429; later ones go through to the real server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Route, expect

from tests.e2e.support import TIMEOUT_MS, BrowserPage, query_of, wait_for_figure

pytestmark = pytest.mark.e2e

TOO_MANY = "the server responded with a status of 429"  # Chromium logs every 4xx fetch as a console error


def busy_for(times: int, retry_after: str | None, seen: list[str],
             message: str = "too many runs in progress; try again in a moment") -> Callable[[Route], None]:
    """A route handler: the first `times` requests get a 429, the rest go to the server."""

    def handle(route: Route) -> None:
        seen.append(route.request.url)
        if len(seen) <= times:
            headers = {"Content-Type": "application/json"}
            if retry_after is not None:
                headers["Retry-After"] = retry_after
            route.fulfill(status=429, headers=headers, body=json.dumps({"error": "busy", "message": message}))
        else:
            route.continue_()

    return handle


def other_console_errors(bp: BrowserPage) -> list[str]:
    return [e for e in bp.problems.console_errors if TOO_MANY not in e]


def test_a_busy_run_and_node_count_down_then_show_the_result(browser_page: BrowserPage) -> None:
    page = browser_page.page
    # the very first request of a page meets a busy server (its wait outlasts plotly.js's parse,
    # which holds the main thread for a second or more on a loaded machine)
    runs: list[str] = []
    page.route("**/api/runs?*", busy_for(1, "3", runs))
    page.goto("/?node=h")
    busy = page.locator("#busy")
    expect(busy).to_contain_text("Server busy — retrying in")
    wait_for_figure(page, "h")
    expect(busy).to_be_hidden()
    expect(page.locator("#banner")).to_be_hidden()  # a wait is not a failure
    assert len(runs) == 2

    # a node (not a neighbour of h, which the page prefetches) : the countdown, second by second, then
    # the figure. What the strip showed is recorded in the page, so a busy machine cannot make the
    # test miss a second.
    page.evaluate("""() => {
      const busy = document.getElementById("busy");
      window.__busySeen = [];
      new MutationObserver(() => { if (!busy.hidden) window.__busySeen.push(busy.textContent); })
        .observe(busy, { attributes: true, childList: true, subtree: true, characterData: true });
    }""")
    nodes: list[str] = []
    page.route("**/api/runs/*/nodes/bnvar?*", busy_for(1, "3", nodes))
    page.click("#cmp-body tr[data-node='bnvar'] .node-link")
    expect(busy).to_contain_text("Server busy — retrying in")
    wait_for_figure(page, "bnvar")
    expect(busy).to_be_hidden()
    expect(page.locator("#banner")).to_be_hidden()
    seen = list(dict.fromkeys(page.evaluate("() => window.__busySeen")))  # each distinct text once, in order
    assert seen == [f"Server busy — retrying in {s} sattempt 1 of 5Cancel" for s in (3, 2, 1)]
    assert len(nodes) == 2
    assert other_console_errors(browser_page) == []
    assert browser_page.problems.page_errors == []


def test_a_busy_dojo_check_and_grade_count_down_in_german(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/?node=h&dojo=1&lang=de")
    wait_for_figure(page, "h")
    checks: list[str] = []
    page.route("**/api/runs/*/check?*", busy_for(1, "2", checks, "too many code checks are running; try again in a moment"))
    page.fill("#dojo-code", "dh = dlogits @ W2.T")
    page.press("#dojo-code", "Control+Enter")
    busy = page.locator("#dojo-busy")
    expect(busy).to_contain_text(re.compile(r"Server ausgelastet — neuer Versuch in [12] s"))
    expect(busy.locator(".busy-cancel")).to_have_text("Abbrechen")
    wait_for_figure(page, "h", "yours")
    expect(page.locator("#dojo-result .verdict")).to_have_attribute("data-status", "exact")
    expect(busy).to_be_hidden()
    assert len(checks) == 2

    grades: list[str] = []
    page.route("**/api/runs/*/grade?*", busy_for(2, "2", grades, "too many code checks are running; try again in a moment"))
    page.click("#open-cell")
    page.fill("#cell-code-text", "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\n")
    page.click("#cell-grade")
    cell_busy = page.locator("#cell-busy")
    expect(cell_busy).to_contain_text(re.compile("neuer Versuch in [12] s"))
    expect(cell_busy).to_contain_text("Versuch 2 von 5", timeout=6_000)
    expect(page.locator("#cell-passed")).to_have_text("1/26 richtig", timeout=TIMEOUT_MS)
    expect(cell_busy).to_be_hidden()
    assert len(grades) == 3
    assert other_console_errors(browser_page) == []


def test_cancel_gives_up_and_says_why(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/")
    wait_for_figure(page)
    before = page.get_attribute("body", "data-run-id")
    runs: list[str] = []
    page.route("**/api/runs?*", busy_for(100, "30", runs))
    page.click("#new-batch")
    busy = page.locator("#busy")
    expect(busy).to_contain_text("retrying in 30 s")
    page.click("#busy .busy-cancel")
    expect(busy).to_be_hidden()
    expect(page.locator("#banner-text")).to_have_text(
        "Cancelled while the server was busy: too many runs in progress; try again in a moment")
    assert page.get_attribute("body", "data-run-id") == before  # the run on screen stays
    assert query_of(page)["seed"] == "2147483647"  # and the address still says which it is
    assert len(runs) == 1


def test_retries_are_capped_then_the_429_is_shown(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/")
    wait_for_figure(page)
    nodes: list[str] = []
    page.route("**/api/runs/*/nodes/bnvar?*", busy_for(100, "2", nodes, "the server is busy"))
    page.click("#cmp-body tr[data-node='bnvar'] .node-link")
    expect(page.locator("#busy")).to_contain_text("attempt 5 of 5", timeout=15_000)
    expect(page.locator("#banner-text")).to_have_text("the server is busy", timeout=5_000)
    expect(page.locator("#busy")).to_be_hidden()
    assert len(nodes) == 6  # the first request and five retries


def test_a_429_asking_for_minutes_is_not_waited_out(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/")
    wait_for_figure(page)
    runs: list[str] = []
    page.route("**/api/runs?*", busy_for(100, "600", runs))
    page.click("#new-batch")
    expect(page.locator("#banner-text")).to_have_text(re.compile("too many runs"))
    expect(page.locator("#busy")).to_be_hidden()
    assert len(runs) == 1
