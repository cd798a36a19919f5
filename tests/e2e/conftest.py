"""Fixtures for the browser end-to-end tests: the real server in a subprocess and Debian's Chromium
driven by Playwright (Playwright's own browser download cannot work here). Without a Chromium
executable every test in this directory is skipped, with the reason; nothing else skips them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Playwright, Request, sync_playwright

from tests.e2e.support import CHROMIUM_ARGS, VIEWPORT, BrowserPage, PageProblems, find_chromium

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SERVER_START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def warm_up(base: str) -> None:
    """Fetch the page and plotly.js once: the server gzips plotly.js (4.8 MB) on its first request,
    ~0.3 s of CPU that belongs to the server's start, not to any page view being measured."""
    with urllib.request.urlopen(f"{base}/", timeout=30) as response:
        html = response.read().decode()
    match = re.search(r'href="(/vendor/plotly-[0-9a-f]+\.min\.js)"', html)
    if match is None:
        pytest.fail("the page does not link plotly.js from /vendor/")
    request = urllib.request.Request(base + match.group(1), headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium found (/usr/bin/chromium, or chromium / chromium-browser on PATH); "
                    "install Debian's chromium package to run the browser tests (.ci/run does)")
    return path


@pytest.fixture(scope="session")
def server_url(chromium_executable: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m app` on a free port, from the repository root, as a user would start it, with a state
    directory of its own: its budget (slots, per-client rate) and checkpoints are this session's.
    Without it the server used whatever NINJA_STATE_DIR was in the environment -- ~/.cache/backprop-ninja
    when run alone, which every server on the machine shares, or tests/app's session directory in a
    full run -- and every request here comes from 127.0.0.1: two jobs of another process for that
    client left the Train view waiting ("you already have 2 heavy jobs or trainings running") for as
    long as they ran."""
    port = free_port()
    server_dir = tmp_path_factory.mktemp("server")
    log_path = server_dir / "server.log"
    env = {**os.environ, "NINJA_STATE_DIR": str(server_dir / "state")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /healthz within {SERVER_START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)
        warm_up(base)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Module scope, not session: sync Playwright keeps an asyncio loop running while it is open, and
# later tests that call asyncio.run() (tests/app, tests/ninja_core) would find it and fail.
@pytest.fixture(scope="module")
def playwright_session(chromium_executable: str) -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_session: Playwright, chromium_executable: str) -> Iterator[Browser]:
    browser = playwright_session.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def browser_page(browser: Browser, server_url: str) -> Iterator[BrowserPage]:
    """A fresh context (empty cache, like a first visit) at 1366 × 768, with its problems recorded."""
    context = browser.new_context(viewport=VIEWPORT, base_url=server_url)
    page = context.new_page()
    problems = PageProblems()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.console_errors.append(f"{message.text} @ {message.location.get('url', '')}")

    def on_request(request: Request) -> None:
        if not (request.url.startswith(server_url) or request.url.startswith(("data:", "blob:"))):
            problems.foreign_requests.append(request.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    page.on("request", on_request)
    yield BrowserPage(page, server_url, problems)
    context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
