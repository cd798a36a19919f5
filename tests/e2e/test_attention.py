"""An attention node of net=gpt on the page: one sample's heads, a sample selector in the URL, the mask
drawn as masked. Screenshots of att_0 at 1280 × 800 and 390 px go to artifacts/screens/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.support import SIDEWAYS_JS, BrowserPage, query_of, wait_for_figure

pytestmark = pytest.mark.e2e

# what plotly drew: the sample in the figure's meta, the first value cells, the masked overlays' panels
DRAWN_JS = """() => {
  const div = document.getElementById("figure");
  const heat = div._fullData[0];
  return {sample: div.layout.meta.sample, samples: div.layout.meta.samples, title: heat.name,
          first: Array.from(heat.z[9].slice(0, 8)).map(Number),  // head 0, its last query row: no mask
          masked: div._fullData.filter((t) => t.meta && t.meta.masked).map((t) => t.xaxis),
          heads: div.layout.annotations.filter((a) => (a.name || "").startsWith("head-title")).length};
}"""


def drawn_sample(page: Page, sample: int) -> None:
    page.wait_for_function(f"() => document.getElementById('figure').layout?.meta?.sample === {sample}")


def test_an_attention_node_shows_one_sample_and_the_selector_changes_it(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/?net=gpt&node=att_0")
    wait_for_figure(page, "att_0")
    selector = page.get_by_label("sample")
    expect(selector).to_be_visible()
    expect(selector).to_have_value("0")
    expect(page.locator("#sample-control .sample-range")).to_have_text("of 0..31")
    before = page.evaluate(DRAWN_JS)
    assert before["sample"] == 0 and before["samples"] == 32 and "sample 0 of 32" in before["title"]
    assert before["masked"] == ["x", "x4"] and before["heads"] == 16  # att's zeros masked; 4 heads × 4 panels

    # the keyboard: focus the field, one step up
    selector.focus()
    page.keyboard.press("ArrowUp")
    drawn_sample(page, 1)
    after = page.evaluate(DRAWN_JS)
    assert after["first"] != before["first"] and "sample 1 of 32" in after["title"]
    assert query_of(page)["sample"] == "1"
    assert page.evaluate("document.activeElement.id") == "ctl-sample"  # arrows in the field do not walk the nodes
    expect(page.locator("#cmp-body tr.selected")).to_have_attribute("data-node", "att_0")

    # typed, then a permalink: the same sample again
    selector.fill("17")
    selector.press("Enter")
    drawn_sample(page, 17)
    assert query_of(page)["sample"] == "17"
    page.goto(page.url)
    wait_for_figure(page, "att_0")
    drawn_sample(page, 17)
    expect(page.get_by_label("sample")).to_have_value("17")

    # another node keeps the sample; a node without heads hides the selector
    page.click("#cmp-body tr[data-node='preatt_masked_0'] .node-link")
    wait_for_figure(page, "preatt_masked_0")
    drawn_sample(page, 17)
    assert page.evaluate(DRAWN_JS)["masked"] == ["x", "x2", "x3", "x4"]  # -inf, and gradients exactly 0
    page.click("#cmp-body tr[data-node='ln1_0'] .node-link")
    wait_for_figure(page, "ln1_0")
    expect(page.locator("#sample-control")).to_be_hidden()
    assert browser_page.problems.page_errors == [] and browser_page.problems.console_errors == []


def test_a_sample_beyond_the_batch_says_so_and_shows_sample_0(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/?net=gpt&node=att_0&sample=99&lang=de")
    wait_for_figure(page, "att_0")
    drawn_sample(page, 0)
    expect(page.locator("#banner-text")).to_contain_text("0..31")
    expect(page.get_by_label("Beispiel")).to_have_value("0")
    assert query_of(page)["sample"] == "0"


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)], ids=["1280x800", "390x844"])
def test_attention_screenshots(browser: Browser, server_url: str, artifacts_dir: Path, width: int, height: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=server_url)
    page = context.new_page()
    try:
        page.goto("/?net=gpt&node=att_0")
        wait_for_figure(page, "att_0")
        page.wait_for_timeout(200)  # a last plotly resize: the screenshot is for a person
        directory = artifacts_dir / "screens"
        directory.mkdir(exist_ok=True)
        page.screenshot(path=str(directory / f"{width}x{height}-gpt-att_0.png"), full_page=width < 1024)
        if width < 1024:
            page.locator("#figure-card").screenshot(path=str(directory / f"{width}x{height}-gpt-att_0-figure.png"))
        assert page.evaluate(SIDEWAYS_JS) == []
        expect(page.locator("#sample-control")).to_be_visible()
    finally:
        context.close()
