"""The Train view for every network: the header's network (`?net=`) brings its own size fields with
the stream's defaults and ranges (GET /api/nets), its recipe, charts of its own parameters, and a way
into the gradients of the network it trained. Playwright waits on what the page marks (data-state,
data-stream, data-drawn), never on time."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import expect

from ninja_core.nets import get_net
from tests.e2e.support import TIMEOUT_MS, BrowserPage, query_of, wait_for_figure

pytestmark = pytest.mark.e2e

TRAIN_TIMEOUT_MS = 120_000  # a WaveNet step is ~3x an MLP step; 1 000 of them take a few seconds here


def trace_names(page, chart: str) -> list[str]:  # type: ignore[no-untyped-def]
    return page.evaluate(f"() => document.getElementById('{chart}').data.map(t => t.name)")  # type: ignore[no-any-return]


def test_wavenet_trains_briefly_from_the_page_and_opens_its_gradients(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/?net=wavenet&view=train")
    page.wait_for_selector("#chart-loss .main-svg", timeout=TIMEOUT_MS)
    # the WaveNet's own sizes with the lecture's training defaults and its ranges; block_size is fixed
    sizes = page.locator("#train-size-fields input")
    expect(sizes).to_have_count(4)
    assert [sizes.nth(i).get_attribute("name") for i in range(4)] == ["t_batch_size", "t_n_embd", "t_n_hidden", "t_block_size"]
    expect(page.locator("#ctl-t_n_embd")).to_have_attribute("placeholder", "24")
    expect(page.locator("#ctl-t_n_hidden")).to_have_attribute("placeholder", "128")
    expect(page.locator("#ctl-t_n_hidden")).to_have_attribute("max", "512")
    expect(page.locator("#ctl-t_block_size")).to_have_attribute("readonly", "")
    expect(page.locator("#ctl-t_net")).to_have_value("wavenet")
    expect(page.locator("#train-recipe")).to_contain_text("75 %")  # the lecture's lr drop after 150 000 of 200 000

    page.fill("#ctl-t_steps", "1000")
    page.fill("#ctl-t_n_hidden", "32")
    page.fill("#ctl-t_audit_every", "500")
    page.click("#train-start")
    status = page.locator("#train-status")
    expect(status).to_have_attribute("data-state", "done", timeout=TRAIN_TIMEOUT_MS)
    expect(status).to_have_attribute("data-stream", "closed")
    expect(status).to_have_attribute("data-step", "1000")
    # the charts name the WaveNet's parameters (not the MLP's seven)
    names = trace_names(page, "chart-audit")
    assert names[:4] == ["C", "W1", "bngain1", "bnbias1"] and "W4" in names and len(names) == 12
    assert trace_names(page, "chart-ratio") == names
    expect(page.locator("#train-samples li")).to_have_count(20)
    for split in ("train", "val", "test"):
        expect(page.locator(f"#train-losses [data-split='{split}'] .loss-value")).to_have_text(re.compile(r"^\d\.\d{4}$"))
    query = query_of(page)
    assert (query["net"], query["t_steps"], query["t_n_hidden"]) == ("wavenet", "1000", "32")

    page.click("#open-trained")
    wait_for_figure(page, run_part="r2-wavenet-")
    wait_for_figure(page, run_part="-t1000-")
    query = query_of(page)
    assert (query["net"], query["view"], query["train_steps"], query["n_hidden"]) == ("wavenet", "grad", "1000", "32")
    assert page.locator("#cmp-body tr[data-node]").count() == 51
    assert browser_page.problems.console_errors == []
    assert browser_page.problems.page_errors == []


def test_the_networks_own_fields_and_a_bad_size_named_in_german(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/?view=train&lang=de")
    page.wait_for_selector("#ctl-t_n_hidden", timeout=TIMEOUT_MS)
    # choosing the GPT here is the header's choice: its sizes come, the MLP's n_hidden goes
    page.select_option("#ctl-t_net", "gpt")
    page.wait_for_selector("#ctl-t_n_head", timeout=TIMEOUT_MS)
    expect(page.locator("#ctl-t_n_hidden")).to_have_count(0)
    # the stream's default: the recipe's steps, at most 20 000 in the page (the CLI trains the whole recipe)
    steps = min(get_net("gpt").recipe.steps, 20_000)
    expect(page.locator("#ctl-t_steps")).to_have_attribute("placeholder", str(steps))
    expect(page.locator("#train-recipe")).to_contain_text("AdamW")
    page.wait_for_selector("body[data-net='gpt']", state="attached", timeout=TIMEOUT_MS)  # the gradient view follows
    assert query_of(page)["net"] == "gpt"
    page.fill("#ctl-t_n_embd", "30")  # not divisible by n_head 4
    page.click("#train-start")
    expect(page.locator("#banner-text")).to_contain_text("nicht durch n_head 4 teilbar")
    expect(page.locator("#ctl-t_n_head")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#train-status")).to_have_attribute("data-state", "failed")
    assert [e for e in browser_page.problems.console_errors if "status of 422" not in e] == []
    assert browser_page.problems.page_errors == []


def location_query(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The address as the page last wrote it (page.url lags behind history.replaceState)."""
    search: str = page.evaluate("() => location.search")
    return {k: v[0] for k, v in parse_qs(search.lstrip("?")).items()}


def test_the_train_fields_live_in_the_url(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/?net=wavenet&view=train&t_batch_size=64&t_steps=300")
    page.wait_for_selector("#ctl-t_n_hidden", timeout=TIMEOUT_MS)
    # a link's sizes wait for their fields (GET /api/nets) and are shown in them, not dropped
    expect(page.locator("#ctl-t_batch_size")).to_have_value("64")
    expect(page.locator("#ctl-t_steps")).to_have_value("300")
    expect(page.locator("#ctl-t_n_hidden")).to_have_value("")
    query = location_query(page)
    assert (query["t_batch_size"], query["t_steps"]) == ("64", "300")
    assert "t_n_hidden" not in query  # an empty field is the stream's default, not written
    # typing reaches the address before Start (replaced, so Back still leaves the view)
    page.fill("#ctl-t_n_hidden", "48")
    expect(page.locator("#train-status")).to_have_attribute("data-state", "idle")
    query = location_query(page)
    assert (query["net"], query["t_batch_size"], query["t_n_hidden"], query["t_steps"]) == ("wavenet", "64", "48", "300")
    page.reload()
    page.wait_for_selector("#ctl-t_n_hidden", timeout=TIMEOUT_MS)
    expect(page.locator("#ctl-t_n_hidden")).to_have_value("48")
    expect(page.locator("#ctl-t_batch_size")).to_have_value("64")
    assert location_query(page)["t_n_hidden"] == "48"
    # another network without n_hidden drops it (and the sizes and steps typed for the WaveNet)
    page.select_option("#ctl-t_net", "gpt")
    page.wait_for_selector("#ctl-t_n_head", timeout=TIMEOUT_MS)
    page.wait_for_selector("body[data-net='gpt']", state="attached", timeout=TIMEOUT_MS)
    query = location_query(page)
    assert query["net"] == "gpt" and "t_n_hidden" not in query and "t_batch_size" not in query
    assert browser_page.problems.console_errors == []
    assert browser_page.problems.page_errors == []


def test_a_bad_size_in_a_link_is_shown_and_rejected_on_start(browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto("/?net=gpt&view=train&t_n_embd=30&t_n_layer=1&t_n_hidden=100")
    page.wait_for_selector("#ctl-t_n_head", timeout=TIMEOUT_MS)
    expect(page.locator("#ctl-t_n_embd")).to_have_value("30")
    expect(page.locator("#ctl-t_n_layer")).to_have_value("1")
    query = location_query(page)
    assert (query["t_n_embd"], query["t_n_layer"]) == ("30", "1")
    assert "t_n_hidden" not in query  # the GPT has no n_hidden: its field is not there, nor is it in the address
    page.click("#train-start")
    expect(page.locator("#banner-text")).to_contain_text("n_head")
    expect(page.locator("#train-status")).to_have_attribute("data-state", "failed")
    expect(page.locator("#ctl-t_n_embd")).to_have_value("30")
    assert [e for e in browser_page.problems.console_errors if "status of 422" not in e] == []
    assert browser_page.problems.page_errors == []
