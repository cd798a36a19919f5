"""The screens a class uses: a phone (390 px), laptops and projectors (1024 × 768, 1280 × 720, 1440 ×
900) and a large monitor (1920 × 1080). From 1024 px the table, the graph and all four heatmaps are
on screen at once and large enough to read; on a phone nothing scrolls sideways (the Train view's
status and the whole-cell dialog included). Each size is screenshotted to artifacts/screens/ for a
person to look at; the assertions are about geometry, which a screenshot alone cannot fail on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.support import OVERLAPS_JS, PANELS_JS, SIDEWAYS_JS, TIMEOUT_MS, broken_text, inside, wait_for_figure

pytestmark = pytest.mark.e2e

SIZES = [(390, 844), (1024, 768), (1280, 720), (1440, 900), (1920, 1080)]
MIN_PANEL = (180, 100)  # px: a 32 × 64 heatmap still shows its cells, with its title and ticks
TRAIN_TIMEOUT_MS = 60_000

def shot(page: Page, directory: Path, name: str, full_page: bool) -> None:
    page.wait_for_timeout(150)  # let a last resize of plotly settle: the screenshot is for a person
    page.screenshot(path=str(directory / f"{name}.png"), full_page=full_page)


@pytest.fixture(scope="module")
def screens_dir(artifacts_dir: Path) -> Path:
    directory = artifacts_dir / "screens"
    directory.mkdir(exist_ok=True)
    return directory


def open_sized(browser: Browser, server_url: str, width: int, height: int, query: str) -> tuple[Any, Page]:
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=server_url)
    page = context.new_page()
    page.goto(f"/{query}")
    wait_for_figure(page)
    return context, page


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_gradients_view_at_each_screen_size(browser: Browser, server_url: str, screens_dir: Path,
                                                width: int, height: int) -> None:
    context, page = open_sized(browser, server_url, width, height, "?node=h")
    try:
        phone = width < 1024
        shot(page, screens_dir, f"{width}x{height}-gradients", full_page=phone)
        assert page.evaluate(SIDEWAYS_JS) == []
        panels = page.evaluate(PANELS_JS)
        assert all(p["w"] >= MIN_PANEL[0] and p["h"] >= MIN_PANEL[1] for p in panels), panels
        assert page.evaluate(OVERLAPS_JS) == []
        assert broken_text(page) == []
        if phone:
            # one column of heatmaps, each as wide as the phone allows
            expect(page.locator("#figure")).to_have_attribute("data-arrangement", "column")
            assert all(p["w"] >= 0.6 * width for p in panels), panels
        else:
            # table, graph and the four heatmaps together, without scrolling the page
            for selector in ("#table-wrap", "#graph", "#figure .main-svg >> nth=0"):
                assert inside(page.locator(selector).bounding_box(), width, height), selector
            table = page.locator("#table-wrap").bounding_box()
            assert table is not None and table["height"] >= 190  # ≥ 9 rows at once, the selected one in view
            expect(page.locator("#figure")).to_have_attribute("data-arrangement", "grid")

        # the fused variant's table is wider (its "fused" tags and ↷ marks): it still fits
        page.select_option("#ctl-variant", "fused")
        wait_for_figure(page, "h", run_part="-fused-")
        assert page.evaluate(SIDEWAYS_JS) == []
        assert page.evaluate(OVERLAPS_JS) == []
        page.select_option("#ctl-variant", "chain")
        wait_for_figure(page, "h", run_part="-chain-")

        # the dojo open, with a verdict: the editor and the figure still fit
        page.click("#tab-dojo")
        page.fill("#dojo-code", "dh = 32 * dlogits @ W2.T")
        page.press("#dojo-code", "Control+Enter")
        wait_for_figure(page, "h", "yours")
        shot(page, screens_dir, f"{width}x{height}-dojo", full_page=phone)
        assert page.evaluate(SIDEWAYS_JS) == []
        assert page.evaluate(OVERLAPS_JS) == []
        editor = page.locator(".dojo .editor").bounding_box()
        assert editor is not None and editor["width"] >= min(280, 0.8 * width)
        if not phone:
            assert inside(page.locator("#figure .main-svg >> nth=0").bounding_box(), width, height)
    finally:
        context.close()


@pytest.mark.parametrize(("width", "height"), [SIZES[0], SIZES[2]], ids=["390x844", "1280x720"])
def test_the_whole_cell_dialog_fits_the_screen(browser: Browser, server_url: str, screens_dir: Path,
                                               width: int, height: int) -> None:
    context, page = open_sized(browser, server_url, width, height, "?node=h&dojo=1")
    try:
        page.click("#open-cell")
        page.fill("#cell-code-text", "print(n)\ndlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\n"
                                     "dprobs = (1.0/probs) * dlogprobs\ndcounts_sum_inv = 1/0\n")
        page.click("#cell-grade")
        expect(page.locator("#cell-error")).to_be_visible()
        shot(page, screens_dir, f"{width}x{height}-cell-dialog", full_page=False)
        assert inside(page.locator("#cell-dialog").bounding_box(), width, height)
        editor = page.locator(".cell-code .editor").bounding_box()
        assert editor is not None and editor["width"] >= 0.8 * min(width, 600) and editor["height"] >= 150
        assert page.evaluate(SIDEWAYS_JS) == []
        assert broken_text(page) == []
    finally:
        context.close()


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_train_view_at_each_screen_size(browser: Browser, server_url: str, screens_dir: Path,
                                            width: int, height: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=server_url)
    try:
        page = context.new_page()
        page.goto("/?view=train&t_steps=3000&t_n_hidden=64&t_audit_every=1000")
        page.wait_for_selector("#chart-loss .main-svg", timeout=TIMEOUT_MS)
        page.click("#train-start")
        expect(page.locator("#train-status")).to_have_attribute("data-state", "done", timeout=TRAIN_TIMEOUT_MS)
        expect(page.locator("#train-status")).to_have_attribute("data-stream", "closed")
        shot(page, screens_dir, f"{width}x{height}-train", full_page=width < 1024)
        assert page.evaluate(SIDEWAYS_JS) == []
        status = page.locator("#train-status").bounding_box()
        assert status is not None and status["x"] >= 0 and status["x"] + status["width"] <= width + 1
        numbers = page.locator("#train-numbers").bounding_box()
        assert numbers is not None and numbers["x"] + numbers["width"] <= width + 1  # the status is not cut
    finally:
        context.close()
