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


def api_run(base_url: str, body: dict[str, Any], lang: str = "en") -> dict[str, Any]:
    """The server's own answer for a config, fetched without the browser, to compare the page against."""
    request = urllib.request.Request(f"{base_url}/api/runs?lang={lang}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        doc: dict[str, Any] = json.load(response)
        return doc


def query_of(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


# What a broken page prints where text belongs: an object turned into a string, a missing value.
# Every text node the browser renders (visible elements, SVG text of the graph and the figures, the
# open dialog), the tooltips of the graph's nodes and the title/aria-label/placeholder attributes of
# visible elements are scanned. NaN is allowed only inside the page's own "NaN or ±Inf" sentences.
BROKEN_TEXT_JS = r"""
() => {
  const bad = /\[object |\bundefined\b|\bNaN\b|\bnull\b/;
  const allowed = [/NaN (or|oder) ±Inf/g, /NaN (and|und) /g];
  const found = [];
  const where = (el) => el.id ? `#${el.id}`
    : `${el.tagName.toLowerCase()}.${String(el.className?.baseVal ?? el.className).split(" ")[0]}`;
  const check = (text, el) => {
    let rest = text;
    for (const a of allowed) rest = rest.replace(a, "");
    const within = where(el.closest("[id]") ?? document.body);
    if (bad.test(rest)) found.push(`${where(el)} (in ${within}): ${text.trim().slice(0, 200)}`);
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const parent = n.parentElement;
    if (!parent || parent.closest("script, style, template, noscript")) continue;
    if (parent.closest("svg title")) {  // a tooltip: shown on hover, if its drawing is on screen
      if (parent.closest("svg").checkVisibility()) check(n.textContent, parent.parentElement);
      continue;
    }
    if (parent.checkVisibility()) check(n.textContent, parent);
  }
  for (const el of document.querySelectorAll("[title], [aria-label], [placeholder]")) {
    if (!el.checkVisibility()) continue;
    for (const name of ["title", "aria-label", "placeholder"]) {
      const value = el.getAttribute(name);
      if (value) check(value, el);
    }
  }
  return found;
}
"""


def broken_text(page: Page) -> list[str]:
    """Rendered text that shows a bug: "[object …]", "undefined", "NaN", "null" (see BROKEN_TEXT_JS)."""
    found: list[str] = page.evaluate(BROKEN_TEXT_JS)
    return found


# Every element that scrolls sideways (or is wider than the window): what a phone user would have to
# pan. Scroll containers (overflow auto/scroll) count when their content is wider than they are.
SIDEWAYS_JS = r"""
() => {
  const out = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth + 1) out.push(`page ${root.scrollWidth} > ${window.innerWidth}`);
  for (const el of document.querySelectorAll("body *")) {
    if (!el.checkVisibility()) continue;
    const style = getComputedStyle(el);
    if (["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
      out.push(`${el.id || el.className || el.tagName} scrolls: ${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  return out;
}
"""

# The figure's four panels in CSS px, from plotly's own layout of what it drew.
PANELS_JS = r"""
() => {
  const gd = document.getElementById("figure");
  const L = gd._fullLayout;
  return ["", "2", "3", "4"].map((k) => ({ w: L["xaxis" + k]._length, h: L["yaxis" + k]._length }));
}
"""

# Text of the figure that overlaps other text or a colour bar: titles, notes, tick labels.
OVERLAPS_JS = r"""
() => {
  const fig = document.getElementById("figure");
  const boxes = (sel) => [...fig.querySelectorAll(sel)].map((el) => ({ el, r: el.getBoundingClientRect() }))
    .filter(({ r }) => r.width > 0 && r.height > 0);
  const notes = boxes(".infolayer .annotation");
  const bars = boxes(".infolayer .colorbar");
  const ticks = boxes(".xtick text, .ytick text");
  const hit = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const out = [];
  for (const n of notes) {
    const label = n.el.textContent;
    for (const b of bars) if (hit(n.r, b.r)) out.push(`"${label}" on a colour bar`);
    for (const t of ticks) if (hit(n.r, t.r)) out.push(`"${label}" on tick label "${t.el.textContent}"`);
    for (const m of notes) if (m !== n && hit(n.r, m.r)) out.push(`"${label}" on "${m.el.textContent}"`);
  }
  return out;
}
"""


def inside(box: dict[str, float] | None, width: int, height: int) -> bool:
    return box is not None and box["x"] >= -1 and box["y"] >= -1 and box["x"] + box["width"] <= width + 1 \
        and box["y"] + box["height"] <= height + 1
