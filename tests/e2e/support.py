"""What the browser tests share besides fixtures: the screen, the Chromium lookup, the page wrapper.
(A module of its own so the tests can import it; conftest.py is pytest's, not an importable module.)"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Page

VIEWPORT = {"width": 1366, "height": 768}  # the laptop screen the page is designed for
TIMEOUT_MS = 20_000  # generous: a cold page parses 4.8 MB of plotly.js, on a shared 2-core machine
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def find_chromium() -> str | None:
    candidates = ["/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


@dataclass
class PageProblems:
    """What a page reported while a test ran: console errors, uncaught exceptions, off-site requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)


@dataclass
class BrowserPage:
    page: Page
    base_url: str
    problems: PageProblems


def wait_for_figure(page: Page, node: str | None = None, scale: str = "linear", run_part: str = "") -> None:
    """Waits for the page's data-drawn="<run_id>/<node>/<scale>" mark (scale "yours" for a dojo verdict)."""
    selector = "#figure[data-drawn]"
    if node is not None:
        selector = f"#figure[data-drawn$='/{node}/{scale}']"
    if run_part:
        selector += f"[data-drawn*='{run_part}']"
    page.wait_for_selector(selector, timeout=TIMEOUT_MS)


def api_run(base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    """The server's own answer for a config, fetched without the browser, to compare the page against."""
    request = urllib.request.Request(f"{base_url}/api/runs", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        doc: dict[str, Any] = json.load(response)
        return doc


def query_of(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}
