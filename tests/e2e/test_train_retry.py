"""The Train view against a busy server: the training stream answers 429 with Retry-After, the page
counts down on screen and starts again by itself, then trains to the end; and Stop keeps what the
run reached (losses, names, the gradients of those weights). A server of its own, whose only stream
slot this test holds the way another worker process would (an flock on the slot file)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from ninja_core.checkpoints import FileLock
from tests.e2e.conftest import ROOT, free_port
from tests.e2e.support import TIMEOUT_MS, VIEWPORT, query_of, wait_for_figure


@pytest.fixture(scope="module")
def busy_server(chromium_executable: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    state = tmp_path_factory.mktemp("state")
    port = free_port()
    env = {**os.environ, "NINJA_STATE_DIR": str(state), "NINJA_MAX_TRAIN_STREAMS": "1"}
    log = (state / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        yield base, state
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture
def page(browser: Browser, busy_server: tuple[str, Path]) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, base_url=busy_server[0])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == []


def test_a_busy_server_is_waited_for_with_a_countdown_then_the_run_trains(page: Page, busy_server: tuple[str, Path]) -> None:
    _, state = busy_server
    slot = FileLock.acquire(state / "slots" / "stream-0.lock")  # the server's one stream slot, taken
    assert slot is not None
    slot.note(f"{time.time() + 3:.3f}")  # its holder expects to finish in 3 s: the server's Retry-After
    try:
        page.goto("/?view=train&t_steps=2000&t_n_hidden=32&t_audit_every=500")
        page.wait_for_selector("#chart-loss .main-svg", timeout=TIMEOUT_MS)
        page.click("#train-start")
        countdown = page.locator("#train-retry")
        expect(countdown).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator("#train-pill")).to_have_text("waiting")
        expect(countdown).to_contain_text("The server is busy: starting again in")
        seconds = int(str(countdown.get_attribute("data-seconds")))
        assert 1 <= seconds <= 3
        page.screenshot(path=str(ROOT / "artifacts" / "train-busy-countdown.png"))
    finally:
        slot.release()  # the other training ends
    status = page.locator("#train-status")
    expect(status).to_have_attribute("data-state", "done", timeout=60_000)  # retried by itself, then trained
    expect(page.locator("#train-samples li")).to_have_count(20)
    ticks = page.evaluate("() => [...document.querySelectorAll('#chart-audit .ytick text')].map(t => t.textContent)")
    assert len(ticks) >= 3, ticks  # readable: several decades labelled, not one
    expect(page.locator("#chart-audit-caption")).to_contain_text("fast fused backward")


def test_stop_keeps_what_the_run_reached_and_opens_its_gradients(page: Page) -> None:
    page.goto("/?view=train&t_steps=200000&t_n_hidden=32&t_audit_every=0")
    page.wait_for_selector("#chart-loss .main-svg", timeout=TIMEOUT_MS)
    page.click("#train-start")
    page.wait_for_selector("#train-status[data-state='running']:not([data-step='0'])", timeout=60_000)
    page.click("#train-stop")
    status = page.locator("#train-status")
    expect(status).to_have_attribute("data-state", "stopped", timeout=60_000)
    expect(status).to_have_attribute("data-stream", "closed")
    expect(page.locator("#train-stopped")).to_contain_text("of 200,000")
    expect(page.locator("#train-samples li")).to_have_count(20)
    for split in ("train", "val", "test"):
        expect(page.locator(f"#train-losses [data-split='{split}'] .loss-value")).to_have_text(
            re.compile(r"^\d\.\d{4}$"))
    step = int(str(status.get_attribute("data-step")))
    assert 0 < step < 200_000
    page.click("#open-trained")
    wait_for_figure(page, run_part=f"-t{step}-of200000-")
    query = query_of(page)
    assert (query["train_steps"], query["train_schedule_steps"]) == (str(step), "200000")
    assert page.locator("#cmp-body tr[data-node]").count() == 26
