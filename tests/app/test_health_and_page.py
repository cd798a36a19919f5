from __future__ import annotations

import gzip
import os

from fastapi.testclient import TestClient

import ninja_core
from app.schemas import Health


def test_healthz_names_the_worker_that_answered(client: TestClient) -> None:
    doc = client.get("/healthz").json()
    Health.model_validate(doc)
    assert (doc["status"], doc["version"]) == ("ok", ninja_core.__version__)
    assert doc["pid"] == os.getpid()  # the test client runs the app in this process
    assert {"runs", "trainings", "checkpoint_hits", "checkpoints"} <= set(doc["runs"])


def test_page_has_security_headers_and_no_inline_script(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    import re

    # every <script> has a src: no inline code
    for tag in re.findall(r"<script[^>]*>(.*?)</script>", r.text, flags=re.S):
        assert tag.strip() == ""


def test_plotly_is_served_locally_compressed_and_cacheable(client: TestClient) -> None:
    page = client.get("/").text
    import re

    url = re.search(r'src="(/vendor/plotly-[0-9a-f]+\.min\.js)"', page)
    assert url is not None
    r = client.get(url.group(1), headers={"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "immutable" in r.headers["cache-control"]
    assert int(r.headers["content-length"]) < 2_000_000  # gzipped, not the 4.8 MB original
    etag = r.headers["etag"]
    assert client.get(url.group(1), headers={"if-none-match": etag}).status_code == 304
    raw = client.get(url.group(1), headers={"accept-encoding": "identity"})
    assert raw.content.startswith(b"/**") and b"plotly.js" in raw.content[:200]
    assert gzip.decompress(gzip.compress(b"x")) == b"x"


def test_docs_work_offline(client: TestClient) -> None:
    html = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/../../etc/passwd").status_code == 404
    spec = client.get("/openapi.json").json()
    assert "/api/runs" in spec["paths"]
    post = spec["paths"]["/api/runs"]["post"]
    assert "422" in post["responses"] and "RunDocument" in str(post["responses"]["200"])
