"""The page's modules put children into elements only through dom.js (el, svg, fill, add), whose rules
keep arrays, null and objects from being printed as text ("[object HTMLParagraphElement]", "null").
The DOM's own replaceChildren/append/… would print them; innerHTML would parse server text as markup.
This reads the sources, so it runs without a browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STATIC_JS = Path(__file__).resolve().parents[2] / "static" / "js"
FORBIDDEN = re.compile(r"\.(replaceChildren|append|prepend|before|after|replaceWith|insertAdjacentHTML|insertAdjacentText)\("
                       r"|\.(innerHTML|outerHTML)\s*=")


def modules() -> list[Path]:
    return sorted(p for p in STATIC_JS.glob("*.js") if p.name != "dom.js")


def test_there_are_modules_to_check() -> None:
    assert len(modules()) >= 15


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_children_go_through_dom_js(path: Path) -> None:
    offending = [f"{path.name}:{i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), start=1)
                 if FORBIDDEN.search(line) and not line.lstrip().startswith("//")]
    assert offending == [], "use fill()/add() from dom.js instead"
