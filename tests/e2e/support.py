"""What the browser tests share besides fixtures: the screen, the Chromium lookup, the page wrapper.
(A module of its own so the tests can import it; conftest.py is pytest's, not an importable module.)"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from playwright.sync_api import Page

VIEWPORT = {"width": 1366, "height": 768}  # the laptop screen the page is designed for
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
