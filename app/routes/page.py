"""The page: the HTML shell, its static files, plotly.js vendored under static/vendor/ (never a CDN),
and the API docs with Swagger UI from an installed package — the whole site works offline."""

from __future__ import annotations

import gzip
import hashlib
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

import ninja_core


def _page_root() -> Path:
    """The folder that holds `templates/` and `static/`: inside the installed package (the wheel maps
    the checkout's top-level folders to `app/templates` and `app/static`, see pyproject.toml), or
    the checkout itself when running from it (`python -m app`, `make run`)."""
    installed = Path(str(resources.files("app")))
    if (installed / "templates" / "index.html").is_file():
        return installed
    return Path(__file__).resolve().parents[2]


ROOT = _page_root()
TEMPLATES = Jinja2Templates(directory=str(ROOT / "templates"))
# plotly.js's cartesian partial bundle (heatmap, scatter, bar, …; 1.5 MB instead of the full 4.8 MB),
# built from the plotly.js npm package and pinned by scripts/refresh_plotly.py, its licence beside it.
PLOTLY_JS = ROOT / "static" / "vendor" / "plotly-cartesian.min.js"
SWAGGER_DIR = Path(str(swagger_ui_bundle.swagger_ui_path))
IMMUTABLE = "public, max-age=31536000, immutable"

router = APIRouter(include_in_schema=False)


class _Asset:
    """A file served from memory, gzip-compressed once (compressing plotly.js per request would cost
    ~200 ms of CPU each time), with a content hash in its URL so browsers may cache it for good."""

    def __init__(self, path: Path, media_type: str) -> None:
        self.path, self.media_type = path, media_type
        self._lock = threading.Lock()
        self._raw: bytes | None = None
        self._gz: bytes | None = None
        self.digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    def bodies(self) -> tuple[bytes, bytes]:
        with self._lock:
            if self._raw is None or self._gz is None:
                self._raw = self.path.read_bytes()
                self._gz = gzip.compress(self._raw, compresslevel=9, mtime=0)
            return self._raw, self._gz

    def response(self, request: Request) -> Response:
        raw, gz = self.bodies()
        headers = {"Cache-Control": IMMUTABLE, "ETag": f'"{self.digest}"', "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == f'"{self.digest}"':
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(gz, media_type=self.media_type, headers={**headers, "Content-Encoding": "gzip"})
        return Response(raw, media_type=self.media_type, headers=headers)


@lru_cache(maxsize=8)
def asset(path: str, media_type: str) -> _Asset:
    return _Asset(Path(path), media_type)


def plotly_asset() -> _Asset:
    return asset(str(PLOTLY_JS), "text/javascript; charset=utf-8")


def static_version() -> str:
    """A hash of static/ so a new release's JS and CSS are fetched fresh."""
    h = hashlib.sha256()
    for f in sorted((ROOT / "static").rglob("*")):
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:10]


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> Response:
    return TEMPLATES.TemplateResponse(request, "index.html", {
        "plotly_url": f"/vendor/plotly-{plotly_asset().digest}.min.js",
        "static_version": request.app.state.static_version,
        "version": ninja_core.__version__,
    })


@router.get("/vendor/plotly-{digest}.min.js")
async def plotly_js(request: Request, digest: str) -> Response:
    return plotly_asset().response(request)


@router.get("/docs", response_class=HTMLResponse)
async def docs(request: Request) -> Response:
    return TEMPLATES.TemplateResponse(request, "docs.html", {"static_version": request.app.state.static_version})


@router.get("/docs-assets/{name}")
async def docs_asset(request: Request, name: str) -> Response:
    allowed = {"swagger-ui.css": "text/css; charset=utf-8", "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
               "favicon-32x32.png": "image/png"}
    if name not in allowed:
        return Response(status_code=404)
    return asset(str(SWAGGER_DIR / name), allowed[name]).response(request)
