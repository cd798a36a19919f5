"""The dojo (a learner's own gradient, judged by the server), whole-cell mode and the Train view, in a
real browser against the real server.

As in test_page.py, the tests wait on what the page marks when it has drawn something (data-drawn on
the figure, data-state / data-stream on the training status) rather than on time. Progress lives in
localStorage, so each test starts from a fresh browser context with none.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.support import TIMEOUT_MS, BrowserPage, api_run, query_of, wait_for_figure

pytestmark = pytest.mark.e2e

TRAIN_TIMEOUT_MS = 60_000  # a 3000-step run takes well under a second here; a loaded CI box is slower
BAD_REQUEST = "the server responded with a status of 400"  # Chromium logs every 4xx fetch as a console error


def open_dojo(bp: BrowserPage, node: str) -> Page:
    page = bp.page
    page.goto(f"/?node={node}&dojo=1")
    wait_for_figure(page, node)
    expect(page.locator("#dojo")).to_be_visible()
    return page


def check(page: Page, code: str) -> None:
    """Types the code into the dojo's editor and submits it the way a learner does: Ctrl+Enter."""
    page.fill("#dojo-code", code)
    page.press("#dojo-code", "Control+Enter")


def unexpected_console_errors(bp: BrowserPage) -> list[str]:
    return [e for e in bp.problems.console_errors if BAD_REQUEST not in e]


def lecture_cell(base_url: str) -> str:
    """The whole exercise-1 cell, as the server's reference formulas in backward order."""
    nodes = api_run(base_url, {})["nodes"]
    return "# exercise 1: backprop through the whole thing manually\n" + "\n".join(n["formula"] for n in nodes) + "\n"


# ---- the dojo ------------------------------------------------------------------------------------


def test_an_exact_answer_shows_its_verdict_figure_and_counts_as_solved(browser_page: BrowserPage) -> None:
    page = open_dojo(browser_page, "h")
    belt = page.locator("#belt")
    expect(belt).to_have_attribute("data-solved", "0")
    expect(page.locator("#dojo-code")).to_have_value("dh = ")  # the starter line
    expect(page.locator("#dojo-given")).to_contain_text("dlogits")  # upstream gradients, read off the graph

    check(page, "dh = dlogits @ W2.T")
    wait_for_figure(page, "h", "yours")
    verdict = page.locator("#dojo-result .verdict")
    expect(verdict).to_have_attribute("data-status", "exact")
    expect(verdict.locator(".badge").first).to_have_text("exact")
    expect(verdict.locator(".diagnosis li").first).to_contain_text("bit for bit")
    names = page.evaluate("() => document.getElementById('figure').data.map(t => [t.type, t.name])")
    assert [kind for kind, _ in names] == ["heatmap"] * 4
    assert names[1][1] == "dh (yours)"
    assert page.locator("#figure .hm image").count() == 4  # four heatmap layers actually rendered

    # the toggle back to the project's own manual backward, and to the learner's again
    expect(page.locator("#figure-source")).to_be_visible()
    page.click("#figure-source [data-source='manual']")
    wait_for_figure(page, "h", "linear")
    page.click("#figure-source [data-source='yours']")
    wait_for_figure(page, "h", "yours")

    expect(belt).to_have_attribute("data-solved", "1")
    expect(belt).to_contain_text("1/26")
    expect(page.locator("#cmp-body tr[data-node='h'] .solved-mark")).to_be_visible()

    # progress and the draft are kept in this browser: a reload brings both back
    page.reload()
    wait_for_figure(page, "h")
    expect(page.locator("#belt")).to_have_attribute("data-solved", "1")
    expect(page.locator("#cmp-body tr[data-node='h'] .solved-mark")).to_be_visible()
    expect(page.locator("#dojo-code")).to_have_value("dh = dlogits @ W2.T")
    assert browser_page.problems.console_errors == []
    assert browser_page.problems.page_errors == []


def test_a_wrong_answer_a_refused_one_and_the_solution(browser_page: BrowserPage) -> None:
    page = open_dojo(browser_page, "h")
    check(page, "dh = -dlogits @ W2.T")
    wait_for_figure(page, "h", "yours")
    verdict = page.locator("#dojo-result .verdict")
    expect(verdict).to_have_attribute("data-status", "mismatch")
    expect(verdict.locator(".diagnosis")).to_contain_text("sign")
    expect(page.locator("#belt")).to_have_attribute("data-solved", "0")  # a mismatch solves nothing

    check(page, "dh = dlogits @ W2.T\nimport os")
    error = page.locator("#dojo-error")
    expect(error).to_contain_text("line 2")
    expect(error).to_contain_text("import")
    expect(page.locator(".dojo .editor-lines .mark-error")).to_have_text("2")  # the gutter marks that line
    # the verdict's figure is gone with the verdict: the figure is the manual backward again
    wait_for_figure(page, "h", "linear")
    expect(page.locator("#figure-source")).to_be_hidden()

    check(page, "import os")
    expect(error).to_contain_text("line 1")
    expect(page.locator(".dojo .editor-lines .mark-error")).to_have_text("1")

    expect(page.locator("#dojo-solution")).to_be_hidden()
    page.click("#dojo-show-solution")
    formula = next(n["formula"] for n in api_run(browser_page.base_url, {})["nodes"] if n["name"] == "h")
    expect(page.locator("#dojo-formula")).to_have_text(formula)
    assert unexpected_console_errors(browser_page) == []
    assert browser_page.problems.page_errors == []


def test_drafts_survive_switching_nodes(browser_page: BrowserPage) -> None:
    page = open_dojo(browser_page, "h")
    page.fill("#dojo-code", "dh = W2  # half done")
    page.click("#cmp-body tr[data-node='W2'] .node-link")
    wait_for_figure(page, "W2")
    expect(page.locator("#dojo-code")).to_have_value("dW2 = ")
    page.fill("#dojo-code", "dW2 = h.T")
    page.click(".gnode[data-node='h']")
    wait_for_figure(page, "h")
    expect(page.locator("#dojo-code")).to_have_value("dh = W2  # half done")
    # a new batch is new numbers for the same formula: the draft stays
    page.click("#new-batch")
    page.wait_for_selector("#figure[data-drawn]:not([data-drawn*='-s2147483647-'])", timeout=TIMEOUT_MS)
    expect(page.locator("#dojo-code")).to_have_value("dh = W2  # half done")
    page.click("#tab-detail")
    expect(page.locator("#detail")).to_be_visible()
    assert query_of(page)["dojo"] == "0"
    page.click("#tab-dojo")
    expect(page.locator("#dojo-code")).to_have_value("dh = W2  # half done")


def test_the_whole_lecture_cell_passes_all_26(browser_page: BrowserPage) -> None:
    page = open_dojo(browser_page, "logprobs")
    page.click("#open-cell")
    dialog = page.locator("#cell-dialog")
    expect(dialog).to_be_visible()
    page.fill("#cell-code-text", lecture_cell(browser_page.base_url))
    page.click("#cell-grade")
    passed = page.locator("#cell-passed")
    expect(passed).to_have_text("26/26 right")
    assert page.locator("#cell-table tbody tr").count() == 26
    c_badge = page.locator("#cell-table tbody tr[data-node='C'] td .badge").first
    expect(c_badge).to_have_attribute("data-status", re.compile("exact|approx"))
    expect(page.locator("#cell-error")).to_have_count(0)
    page.click("#cell-close")
    expect(dialog).to_be_hidden()
    expect(page.locator("#belt")).to_have_attribute("data-solved", "26")
    expect(page.locator("#belt")).to_have_attribute("data-belt", "black")

    # a cell that stops part way is judged up to there, and the line is marked
    page.click("#open-cell")
    expect(page.locator("#cell-code-text")).to_have_value(re.compile("^# exercise 1"))  # kept, like the drafts
    broken = "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\ndprobs = 1/0\n"
    page.fill("#cell-code-text", broken)
    page.press("#cell-code-text", "Control+Enter")
    expect(page.locator("#cell-error")).to_contain_text("line 3")
    expect(passed).to_have_text("1/26 right")
    expect(page.locator(".cell-code .editor-lines .mark-error")).to_have_text("3")
    assert browser_page.problems.page_errors == []


# ---- the Train view ------------------------------------------------------------------------------


def open_train(bp: BrowserPage, query: str = "") -> Page:
    page = bp.page
    page.goto(f"/?view=train{query}")
    page.wait_for_selector("#chart-loss .main-svg", timeout=TIMEOUT_MS)
    return page


def trace_lengths(page: Page, chart: str) -> list[int]:
    return page.evaluate(f"() => document.getElementById('{chart}').data.map(t => t.x.length)")


def test_a_short_training_draws_its_charts_and_ends_with_losses_and_names(browser_page: BrowserPage) -> None:
    page = open_train(browser_page)
    # the stream's defaults for the MLP (GET /api/nets): the lecture's n_hidden 200, a tenth of its steps;
    # an empty field sends nothing, so the server's default applies
    expect(page.locator("#ctl-t_steps")).to_have_attribute("placeholder", "20000")
    expect(page.locator("#ctl-t_n_hidden")).to_have_attribute("placeholder", "200")
    expect(page.locator("#ctl-t_n_hidden")).to_have_value("")
    page.fill("#ctl-t_steps", "3000")
    page.fill("#ctl-t_n_hidden", "64")
    page.fill("#ctl-t_audit_every", "1000")
    page.click("#train-start")
    status = page.locator("#train-status")
    expect(status).to_have_attribute("data-state", "done", timeout=TRAIN_TIMEOUT_MS)
    expect(status).to_have_attribute("data-stream", "closed")  # set once the last points are drawn
    expect(status).to_have_attribute("data-step", "3000")

    assert trace_lengths(page, "chart-loss")[0] >= 10  # one point per progress event (every 50 steps here)
    audit = trace_lengths(page, "chart-audit")
    assert len(audit) == 7 and min(audit) >= 3  # seven parameters, audited at steps 0, 1000, 2000
    assert min(trace_lengths(page, "chart-ratio")) >= 10
    assert trace_lengths(page, "chart-saturation")[0] >= 10
    assert page.evaluate("() => document.getElementById('chart-ratio').layout.shapes[0].y0") == -3  # the 1e-3 guide

    expect(page.locator("#train-samples li")).to_have_count(20)
    for split in ("train", "val", "test"):
        expect(page.locator(f"#train-losses [data-split='{split}'] .loss-value")).to_have_text(re.compile(r"^\d\.\d{4}$"))
    query = query_of(page)
    assert (query["view"], query["t_steps"], query["t_n_hidden"]) == ("train", "3000", "64")

    # the gradient view of the trained network, and back to initialisation
    page.click("#open-trained")
    wait_for_figure(page, run_part="-t3000-")
    query = query_of(page)
    assert (query["view"], query["train_steps"], query["n_hidden"]) == ("grad", "3000", "64")
    assert page.locator("#cmp-body tr[data-node]").count() == 26
    expect(page.locator("#summary-trained")).to_contain_text("after 3,000 training steps")
    page.click("#at-init")
    wait_for_figure(page, run_part="-t0-")
    expect(page.locator("#summary-trained")).to_be_hidden()
    assert query_of(page)["train_steps"] == "0"
    assert browser_page.problems.console_errors == []
    assert browser_page.problems.page_errors == []
    assert browser_page.problems.foreign_requests == []


def test_stop_now_closes_the_stream_and_says_stopped(browser_page: BrowserPage) -> None:
    # Stop asks the server to stop gracefully (tests/e2e/test_train_retry.py); a second press, "Stop now",
    # closes the stream at once, which ends the training on the server with nothing to show
    page = open_train(browser_page, "&t_steps=200000&t_n_hidden=64&t_audit_every=0")
    failed: list[Request] = []
    page.on("requestfailed", lambda request: failed.append(request) if "/api/train/stream" in request.url else None)
    page.click("#train-start")
    page.wait_for_selector("#train-status[data-state='running']:not([data-step='0'])", timeout=TRAIN_TIMEOUT_MS)
    page.click("#train-stop")
    page.click("#train-stop")
    status = page.locator("#train-status")
    expect(status).to_have_attribute("data-state", "stopped")
    expect(status).to_have_attribute("data-stream", "closed")
    expect(page.locator("#train-pill")).to_have_text("stopped")
    expect(page.locator("#train-stopped")).to_be_visible()
    expect(page.locator("#open-trained")).to_have_count(0)  # closed before the server sent what it reached
    expect(page.locator("#train-start")).to_be_enabled()
    # the browser closed the connection, which is what stops the training on the server
    assert [r.failure for r in failed] == ["net::ERR_ABORTED"]
    assert int(str(status.get_attribute("data-step"))) < 200_000
    assert browser_page.problems.page_errors == []


def test_a_bad_training_parameter_shows_the_server_message(browser_page: BrowserPage) -> None:
    page = open_train(browser_page)
    page.fill("#ctl-t_steps", "0")
    page.press("#ctl-t_steps", "Enter")
    expect(page.locator("#banner-text")).to_have_text(re.compile(r"^steps: must be an integer in 1\.\.200000"))
    expect(page.locator("#ctl-t_steps")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#train-status")).to_have_attribute("data-state", "failed")
    expect(page.locator("#train-start")).to_be_enabled()
