"""plotly.js as the page gets it: plotly's cartesian partial bundle, vendored under static/vendor/ with
its licence, matching its pins, holding every trace type the page and ninja_core draw, served gzip'd."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import plotly
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.routes import page
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FULL_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
TRACE_NAME = re.compile(r'moduleType:"trace",name:"(\w+)"')
TYPE_KEY = re.compile(r"""["']?\btype["']?\s*:\s*["'](\w+)["']""")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as c:
        yield c


def refresh_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refresh_plotly", ROOT / "scripts" / "refresh_plotly.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def trace_types(bundle: Path) -> set[str]:
    return set(TRACE_NAME.findall(bundle.read_text(encoding="utf-8")))


def test_the_vendored_bundle_matches_its_pins_and_has_its_licence() -> None:
    refresh = refresh_script()
    assert refresh.problems(refresh.VENDOR) == []
    assert page.PLOTLY_JS == refresh.BUNDLE
    licence = (refresh.VENDOR / "plotly.js.LICENSE.txt").read_text()
    assert licence.startswith("MIT License") and "Plotly" in licence
    # the build's own pins name the same plotly.js (package.json and its lockfile)
    spec = json.loads((refresh.BUILD_SPEC / "package.json").read_text())
    lock = json.loads((refresh.BUILD_SPEC / "package-lock.json").read_text())
    assert spec["dependencies"]["plotly.js"] == lock["packages"]["node_modules/plotly.js"]["version"] == refresh.VERSION
    assert all("integrity" in entry for name, entry in lock["packages"].items() if name)  # npm ci checks each


def test_it_is_the_plotly_js_version_the_python_package_embeds() -> None:
    """ninja_core's figure specs are written for the plotly.js that `plotly` (Python) embeds."""
    from plotly.offline import get_plotlyjs_version

    assert refresh_script().header_version(page.PLOTLY_JS) == get_plotlyjs_version()


def test_it_holds_every_trace_type_the_page_and_ninja_core_use() -> None:
    """Any `type: "<plotly trace type>"` in the page's JS or in ninja_core must be in the partial bundle
    (the full bundle, from the Python package, says which names are trace types at all)."""
    all_traces = trace_types(FULL_PLOTLY_JS)
    assert {"heatmap", "scatter", "bar", "surface"} <= all_traces  # the parse finds trace names at all
    sources = [*(ROOT / "static" / "js").glob("*.js"), *(ROOT / "ninja_core").rglob("*.py")]
    used = {name for f in sources for name in TYPE_KEY.findall(f.read_text(encoding="utf-8")) if name in all_traces}
    assert {"heatmap", "scatter"} <= used
    missing = used - trace_types(page.PLOTLY_JS)
    assert not missing, f"trace types used but not in the cartesian bundle: {sorted(missing)}"


def test_the_page_serves_the_bundle_gzipped_once_and_cacheable(client: TestClient) -> None:
    html = client.get("/").text
    url = re.search(r'href="(/vendor/plotly-([0-9a-f]+)\.min\.js)"', html)
    assert url is not None, "the page preloads no plotly.js from /vendor/"
    body = page.PLOTLY_JS.read_bytes()
    assert url.group(2) == hashlib.sha256(body).hexdigest()[: len(url.group(2))]
    gz = client.get(url.group(1), headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and "immutable" in gz.headers["cache-control"]
    assert int(gz.headers["content-length"]) < 600_000  # ~0.5 MB gzip'd (the full bundle was 1.47 MB)
    raw = client.get(url.group(1), headers={"accept-encoding": "identity"})
    assert raw.content == body and "content-encoding" not in raw.headers
    assert gz.content == body  # httpx has un-gzipped it: a valid gzip of the very file
    assert "plotly.min.js" not in html  # not the Python package's 4.8 MB full bundle
