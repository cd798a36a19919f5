"""What the dojo and the whole-cell dialog show beyond a status (issue 14): the one-edit fix marked in the
editor at its line and column, rounding proved in float64 for an approx answer, the same answer on
other minibatches, and the verdict under other tools' tolerances. The telling line comes first; the
rest is one click away. In English and German: the page's labels are its own, the sentences the
server's (it localizes them for `lang=de`)."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.support import BrowserPage, api_run, broken_text, wait_for_figure

pytestmark = pytest.mark.e2e

BAD_REQUEST = "the server responded with a status of 400"
SIGN = "dh = -dlogits @ W2.T"  # the one edit: negate the right-hand side, line 1, column 6
FUSED_CE = "dlogits = F.softmax(logits, 1)\ndlogits[range(n), Yb] -= 1\ndlogits /= n"  # approx: rounding
ONE_HOT = "dC = F.one_hot(Xb).float().view(-1, 27).T @ demb.view(-1, 10)"  # no num_classes: fails on a batch


def api_check(base_url: str, node: str, code: str, lang: str = "en") -> dict[str, Any]:
    run = api_run(base_url, {})
    request = urllib.request.Request(f"{base_url}/api/runs/{run['run_id']}/check?lang={lang}", method="POST",
                                     data=json.dumps({"node": node, "code": code, "lang": lang}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        verdict: dict[str, Any] = json.load(response)
        return verdict


def open_dojo(bp: BrowserPage, node: str, lang: str = "en") -> Page:
    page = bp.page
    page.goto(f"/?node={node}&dojo=1&lang={lang}")
    wait_for_figure(page, node)
    return page


def check(page: Page, code: str) -> None:
    page.fill("#dojo-code", code)
    page.press("#dojo-code", "Control+Enter")
    page.wait_for_selector("#dojo-result .verdict:not(.stale)")
    page.wait_for_selector("#dojo:not([data-checking])")


def caret(page: Page) -> int:
    return int(page.evaluate("() => document.getElementById('dojo-code').selectionStart"))


def test_the_one_edit_fix_is_named_and_marked_where_it_goes(browser_page: BrowserPage) -> None:
    page = open_dojo(browser_page, "h")
    check(page, "\n" + SIGN)  # on line 2: the mark follows the server's line
    expected = api_check(browser_page.base_url, "h", "\n" + SIGN)["fix"]
    assert (expected["kind"], expected["line"], expected["col"]) == ("sign", 2, 6)
    verdict = page.locator("#dojo-result .verdict")
    expect(verdict).to_have_attribute("data-status", "mismatch")
    # the telling line first: the sign, in the server's words
    expect(verdict.locator(".diagnosis li").first).to_contain_text("sign")
    fix = verdict.locator(".fix-line")
    expect(fix).to_contain_text(expected["message"])
    expect(fix).to_have_attribute("data-kind", "sign")
    # the editor: the line marked in the gutter, a caret under its column
    expect(page.locator(".dojo .editor-lines .mark-fix")).to_have_text("2")
    mark = page.locator(".dojo .editor-mark.mark-fix .editor-caret")
    expect(mark).to_have_count(1)
    text_box = page.locator("#dojo-code").bounding_box()
    caret_box = mark.bounding_box()
    assert text_box is not None and caret_box is not None
    char = page.evaluate("""() => { const c = document.createElement('canvas').getContext('2d');
      c.font = getComputedStyle(document.getElementById('dojo-code')).font; return c.measureText('d').width; }""")
    assert abs(caret_box["x"] - (text_box["x"] + 10 + 5 * char)) < 2  # column 6: five characters in
    # "go to" puts the cursor where the edit goes
    page.locator("#dojo-code").evaluate("t => t.setSelectionRange(0, 0)")
    fix.locator(".fix-goto").click()
    assert caret(page) == 1 + 5  # line 2 starts after the first "\n"; column 6
    # the fix has its own line: the details do not repeat it
    details = page.locator("#dojo-details")
    details.locator("summary").click()
    assert all(expected["message"] not in text for text in details.locator("li").all_inner_texts())
    # a right answer clears the mark
    check(page, "dh = dlogits @ W2.T")
    expect(page.locator(".dojo .editor-lines .mark-fix")).to_have_count(0)
    expect(verdict.locator(".fix-line")).to_have_count(0)
    assert [e for e in browser_page.problems.console_errors if BAD_REQUEST not in e] == []


def test_an_approx_answer_is_rounding_proved_in_float64(browser_page: BrowserPage) -> None:
    page = open_dojo(browser_page, "logits")
    check(page, FUSED_CE)
    expected = api_check(browser_page.base_url, "logits", FUSED_CE)
    assert expected["status"] == "approx" and expected["rounding"]["proved"] is True
    verdict = page.locator("#dojo-result .verdict")
    line = verdict.locator(".rounding-line")
    expect(line).to_have_attribute("data-proved", "true")
    expect(line).to_contain_text("rounding, proved in float64")
    expect(line).to_contain_text(f"at most {expected['rounding']['ulps']} ulps")
    # the numbers behind it: the worst entry and the float64 rerun, in the details
    page.click("#dojo-details summary")
    index = ", ".join(str(i) for i in expected["rounding"]["index"])
    expect(page.locator("#dojo-details .detail-numbers")).to_contain_text(f"at [{index}]")
    # approx passes: the belt counts it
    expect(page.locator("#belt")).to_have_attribute("data-solved", "1")


def test_the_tolerance_lens_shows_every_standard(browser_page: BrowserPage) -> None:
    page = open_dojo(browser_page, "h")
    check(page, SIGN)
    expected = api_check(browser_page.base_url, "h", SIGN)["lens"]
    assert len(expected) == 5
    pills = page.locator("#dojo-result .lens-strip .pill")
    expect(pills).to_have_count(5)
    standards = pills.evaluate_all("ps => ps.map(p => [p.dataset.standard, p.dataset.passed])")
    assert standards == [[row["standard"], str(row["passed"]).lower()] for row in expected]
    expect(pills.first).to_have_attribute("title", re.compile(re.escape(expected[0]["source"])))
    page.click("#dojo-details summary")
    table = page.locator("#dojo-details .lens-table tbody tr")
    expect(table).to_have_count(5)
    expect(table.nth(4)).to_contain_text(expected[4]["standard"])
    # an exact answer: no strip (nothing to weigh), the table still in the details
    check(page, "dh = dlogits @ W2.T")
    expect(page.locator("#dojo-result .lens-strip")).to_have_count(0)
    page.click("#dojo-details summary")
    expect(page.locator("#dojo-details .lens-table tbody tr")).to_have_count(5)


def test_an_answer_that_fails_on_another_minibatch_says_so_and_solves_nothing(browser_page: BrowserPage) -> None:
    page = open_dojo(browser_page, "C")
    check(page, ONE_HOT)
    expected = api_check(browser_page.base_url, "C", ONE_HOT)
    failed = [b for b in expected["batches"] if not b["passed"]]
    assert expected["passed"] and failed  # right on this batch only
    verdict = page.locator("#dojo-result .verdict")
    warning = verdict.locator(".batch-warning")
    expect(warning).to_contain_text("num_classes")
    expect(warning).to_have_attribute("data-seed", str(failed[0]["seed"]))
    marks = verdict.locator(".batch-strip .pill")
    expect(marks).to_have_count(len(expected["batches"]))
    expect(verdict.locator(".batch-strip .pill-bad")).to_have_count(len(failed))
    expect(page.locator("#belt")).to_have_attribute("data-solved", "0")
    expect(verdict.locator(".verdict-solved")).to_have_count(1)  # the server's "passed" here
    # with num_classes it holds on every batch, and counts
    check(page, ONE_HOT.replace("F.one_hot(Xb)", "F.one_hot(Xb, num_classes=27)"))
    expect(verdict.locator(".batch-warning")).to_have_count(0)
    expect(page.locator("#belt")).to_have_attribute("data-solved", "1")


def test_the_verdict_in_german(browser_page: BrowserPage) -> None:
    page = open_dojo(browser_page, "h", "de")
    check(page, SIGN)
    german = api_check(browser_page.base_url, "h", SIGN, "de")
    verdict = page.locator("#dojo-result .verdict")
    expect(verdict.locator(".diagnosis li").first).to_have_text(german["diagnosis"][0])
    expect(verdict.locator(".fix-line")).to_contain_text(german["fix"]["message"])
    expect(verdict.locator(".fix-goto")).to_have_text("zu Zeile 1, Spalte 6")
    expect(verdict.locator(".lens-strip .strip-label")).to_have_text("Toleranzen")
    expect(verdict.locator("#dojo-details summary")).to_have_text("Details")
    page.click("#cmp-body tr[data-node='logits'] .node-link")
    wait_for_figure(page, "logits")
    check(page, FUSED_CE)
    expect(verdict.locator(".rounding-line")).to_contain_text("Rundung, in float64 bewiesen")
    expect(verdict.locator(".batch-strip .strip-label")).to_have_text("andere Batches")
    assert broken_text(page) == []


# ---- the whole cell ---------------------------------------------------------------------------


def mistaken_cell(base_url: str) -> str:
    """The lecture's cell with three typical mistakes: a flipped sign (dW2, which feeds no other
    gradient), the fused cross-entropy (approx: rounding) and one_hot without num_classes (dC: right on
    this batch, so it is also judged on the others)."""
    formulas = {n["name"]: n["formula"] for n in api_run(base_url, {})["nodes"]}
    formulas["W2"] = "dW2 = -h.T @ dlogits"
    formulas["logits"] = FUSED_CE
    formulas["C"] = ONE_HOT
    return "\n".join(formulas.values()) + "\n"


def grade_rows(base_url: str, code: str, lang: str = "en") -> dict[str, dict[str, Any]]:
    run = api_run(base_url, {})
    request = urllib.request.Request(f"{base_url}/api/runs/{run['run_id']}/grade?lang={lang}", method="POST",
                                     data=json.dumps({"code": code}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return {row["name"]: row for row in json.load(response)["nodes"]}


@pytest.mark.parametrize("lang", ["en", "de"])
def test_the_whole_cell_rows_carry_fix_rounding_batches_and_lens(browser_page: BrowserPage, lang: str) -> None:
    page = open_dojo(browser_page, "h", lang)
    cell = mistaken_cell(browser_page.base_url)
    expected = grade_rows(browser_page.base_url, cell, lang)
    page.click("#open-cell")
    page.fill("#cell-code-text", cell)
    page.click("#cell-grade")
    expect(page.locator("#cell-passed")).to_be_visible()

    def row(name: str) -> Any:
        return page.locator(f"#cell-table tr[data-node='{name}']")

    # closed rows: the first line, and a mark for each thing to look at
    expect(row("W2").locator(".row-mark.mark-fix")).to_have_count(1)
    expect(row("logits").locator(".row-mark.mark-rounding")).to_have_count(1)
    expect(row("C").locator(".row-mark.mark-batch")).to_have_count(1)
    expect(row("probs").locator(".row-mark")).to_have_count(0)
    expect(row("W2").locator(".fix-line")).to_be_hidden()

    # a click unfolds the row: its fix, marked in the cell at its line and column
    fix = expected["W2"]["fix"]
    assert fix is not None and fix["kind"] == "sign"
    row("W2").locator("th").click()
    expect(row("W2").locator(".fix-line")).to_be_visible()
    expect(row("W2").locator(".fix-line")).to_contain_text(fix["message"])
    expect(page.locator(".cell-code .editor-lines .mark-fix")).to_have_text(str(fix["line"]))
    expect(page.locator(".cell-code .editor-mark.mark-fix .editor-caret")).to_have_count(1)
    expect(row("W2").locator(".lens-strip .pill")).to_have_count(5)
    row("W2").locator(".fix-goto").click()
    position = page.evaluate("() => { const t = document.getElementById('cell-code-text');"
                             " return t.value.slice(0, t.selectionStart).split('\\n').map(l => l.length); }")
    assert (len(position), position[-1] + 1) == (fix["line"], fix["col"])

    row("logits").locator("th").click()
    expect(row("logits").locator(".rounding-line")).to_have_attribute("data-proved", "true")
    row("C").locator("th").click()
    expect(row("C").locator(".batch-warning")).to_be_visible()
    expect(row("C").locator(".batch-warning")).to_contain_text("num_classes")
    words = {"en": ("other batches", "tolerances"), "de": ("andere Batches", "Toleranzen")}[lang]
    expect(row("C").locator(".batch-strip .strip-label")).to_have_text(words[0])
    expect(row("W2").locator(".lens-strip .strip-label")).to_have_text(words[1])
    assert broken_text(page) == []

    # C passed here but not on another batch: not solved; logits (approx, every batch) is
    page.click("#cell-close")
    expect(page.locator("#cmp-body tr[data-node='C'] .solved-mark")).to_have_count(0)
    expect(page.locator("#cmp-body tr[data-node='logits'] .solved-mark")).to_have_count(1)
    assert [e for e in browser_page.problems.console_errors if BAD_REQUEST not in e] == []
