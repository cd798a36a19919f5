"""Every view and dialog of the page, in both backward variants and both languages, with the text a
learner sees checked for what a bug prints instead: "[object …]", "undefined", "NaN", "null".

The walk: every node's detail (and the log |diff| scale), Show solution for every node in the dojo
(with the notes the server sends for it, as notes), a right and a wrong dojo answer, the whole-cell
dialog with a cell that prints, stops at a runtime error and earns the server's notes, and the Train
view during and after a short training. Playwright waits on what the page marks when it has drawn
something (data-drawn, data-state), never on time.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import TIMEOUT_MS, BrowserPage, api_run, broken_text, wait_for_figure

pytestmark = pytest.mark.e2e

TRAIN_TIMEOUT_MS = 60_000
BAD_REQUEST = "the server responded with a status of 400"  # Chromium logs every 4xx fetch as a console error

# A cell that prints, names a gradient that is no node's (a server note), has a cmp line (another
# note) and stops at a runtime error on line 8, with a line after the stop.
CELL = """print(n)
dlogprobs = torch.zeros_like(logprobs)
dlogprobs[range(n), Yb] = -1.0/n
print(dlogprobs.shape)
cmp('logprobs', dlogprobs, logprobs)
dprob = dlogprobs
dprobs = (1.0/probs) * dlogprobs
dcounts_sum_inv = 1/0
dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv
"""


def assert_clean(page: Page, where: str) -> None:
    assert broken_text(page) == [], where


def select(page: Page, node: str) -> None:
    page.click(f"#cmp-body tr[data-node='{node}'] .node-link")
    wait_for_figure(page, node)


def walk_details(page: Page, nodes: list[str]) -> None:
    for node in nodes:
        select(page, node)
        expect(page.locator("#detail-name")).to_have_text(node)
        assert_clean(page, f"detail of {node}")
    page.click("[data-scale='log']")
    wait_for_figure(page, nodes[-1], "log")
    assert_clean(page, "log |diff| scale")
    page.click("[data-scale='linear']")
    wait_for_figure(page, nodes[-1], "linear")


def walk_solutions(page: Page, summaries: dict[str, Any]) -> None:
    page.click("#tab-dojo")
    expect(page.locator("#dojo")).to_be_visible()
    for node, summary in summaries.items():
        select(page, node)
        page.click("#dojo-show-solution")
        solution = page.locator("#dojo-solution")
        expect(solution).to_be_visible()
        expect(page.locator("#dojo-formula")).to_have_text(summary["formula"])
        # each note of the server's is a note on the page, with its own text (not "[object …]")
        notes = solution.locator(".note")
        expect(notes).to_have_count(len(summary["notes"]))
        for i, text in enumerate(summary["notes"]):
            expect(notes.nth(i)).to_contain_text(text)
        assert_clean(page, f"solution of {node}")


def check_answers(page: Page) -> None:
    select(page, "h")
    for code, status in (("dh = dlogits @ W2.T", "^(exact|approx)$"), ("print(n)\ndh = 32 * dlogits @ W2.T", "^mismatch$")):
        page.fill("#dojo-code", code)
        page.press("#dojo-code", "Control+Enter")
        # the verdict of this code (the one before may still be on screen), then its figure
        expect(page.locator("#dojo-result .verdict:not(.stale)")).to_have_attribute("data-status", re.compile(status))
        wait_for_figure(page, "h", "yours")
        assert_clean(page, f"dojo verdict for {code!r}")
    expect(page.locator("#dojo-result .dojo-output")).to_have_text("32")  # what print() wrote
    expect(page.locator("#scale-note")).to_be_visible()  # why the lin/log toggle is disabled


def grade_cell(page: Page) -> None:
    page.click("#open-cell")
    expect(page.locator("#cell-dialog")).to_be_visible()
    assert_clean(page, "empty whole-cell dialog")
    page.fill("#cell-code-text", CELL)
    page.click("#cell-grade")
    expect(page.locator("#cell-error")).to_contain_text("8")
    result = page.locator("#cell-result")
    expect(result.locator(".dojo-output")).to_have_text("32\ntorch.Size([32, 27])")
    expect(result.locator("p.note")).to_have_count(2)
    expect(result.locator("p.note").first).to_contain_text("dprobs")
    assert_clean(page, "graded whole cell")
    page.click("#cell-close")
    expect(page.locator("#cell-dialog")).to_be_hidden()


def train_briefly(page: Page) -> None:
    """The Train view before, during and after a run. "During" is held, not caught: a run of the
    whole 200 000 steps is still running when the page shows its first steps, and Stop then ends it
    gracefully with what it reached. (A 4 000-step run is over in about a second, and the page draws
    the events of a busy moment in one go: its "running with a step" could last only a few frames.)"""
    page.click(".view-tab[data-view='train']")
    page.wait_for_selector("#chart-loss .main-svg", timeout=TIMEOUT_MS)
    assert_clean(page, "Train view before a run")
    page.fill("#ctl-t_steps", "200000")
    page.fill("#ctl-t_n_hidden", "64")
    page.fill("#ctl-t_audit_every", "1000")
    page.click("#train-start")
    page.wait_for_selector("#train-status[data-state='running']:not([data-step='0'])", timeout=TRAIN_TIMEOUT_MS)
    assert_clean(page, "Train view during a run")
    page.click("#train-stop")
    expect(page.locator("#train-status")).to_have_attribute("data-state", "stopped", timeout=TRAIN_TIMEOUT_MS)
    expect(page.locator("#train-status")).to_have_attribute("data-stream", "closed")
    expect(page.locator("#train-samples li")).to_have_count(20)  # the stopped run's losses and names
    assert_clean(page, "Train view after a run")


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("variant", ["chain", "fused"])
def test_every_view_and_dialog_renders_no_broken_text(browser_page: BrowserPage, variant: str, lang: str) -> None:
    page = browser_page.page
    page.goto(f"/?variant={variant}&lang={lang}")
    wait_for_figure(page)
    assert_clean(page, "first view")
    summaries = {n["name"]: n for n in api_run(browser_page.base_url, {"variant": variant}, lang)["nodes"]}
    assert len(summaries) == 26
    assert any(n["notes"] for n in summaries.values())  # the walk meets notes (probs, hpreact, C, …)

    walk_details(page, list(summaries))
    walk_solutions(page, summaries)
    check_answers(page)
    grade_cell(page)
    train_briefly(page)

    assert [e for e in browser_page.problems.console_errors if BAD_REQUEST not in e] == []
    assert browser_page.problems.page_errors == []
