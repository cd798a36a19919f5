"""Every error is a JSON body that says what was wrong and what is allowed (app.schemas.ErrorBody).
No traceback, file path or internal detail ever reaches a client."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ninja_core.config import DTYPES, LIMITS, SIZE_FIELDS, VARIANTS, ConfigError
from ninja_core.data import DataError
from ninja_core.nets import NETS

from .registry import Busy, RunNotFound, Timeout
from .schemas import RunConfig
from .serialise import ORJSON

log = logging.getLogger("app")

ENUMS: dict[str, tuple[str, ...]] = {"dtype": DTYPES, "variant": VARIANTS, "net": tuple(NETS)}


def _size_limits() -> dict[str, tuple[int, int]]:
    """The widest range of each size over the networks (each network then checks its own)."""
    found: dict[str, tuple[int, int]] = {}
    for net in NETS.values():
        for s in net.sizes:
            lo, hi = found.get(s.name, (s.lo, s.hi))
            found[s.name] = (min(lo, s.lo), max(hi, s.hi))
    return {k: v for k, v in found.items() if k in SIZE_FIELDS}


# Integer ranges for the messages: the engine's, plus what routers register for their own fields.
FIELD_LIMITS: dict[str, tuple[int, int]] = {**LIMITS, **_size_limits()}
# The fields each endpoint accepts, for "unknown field" messages: (path prefix, fields), first match wins.
ENDPOINT_FIELDS: list[tuple[str, tuple[str, ...]]] = []
RUN_FIELDS = tuple(RunConfig.model_fields)


def register_fields(path_prefix: str, fields: tuple[str, ...] | None, limits: dict[str, tuple[int, int]]) -> None:
    if fields is not None:
        ENDPOINT_FIELDS.insert(0, (path_prefix, fields))
    FIELD_LIMITS.update(limits)


class NotFound(LookupError):
    def __init__(self, message: str, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.allowed = allowed


def error_response(status: int, error: str, message: str, *, field: str | None = None,
                   allowed: list[str] | None = None, detail: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if field is not None:
        body["field"] = field
    if allowed is not None:
        body["allowed"] = allowed
    if detail is not None:
        body["detail"] = detail
    return ORJSON(body, status_code=status, headers=headers)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(error: dict[str, Any], path: str = "") -> tuple[str | None, str]:
    """(field, sentence) for one pydantic error, using the project's own limits where it can."""
    fields = next((f for prefix, f in ENDPOINT_FIELDS if path.startswith(prefix)), RUN_FIELDS)
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    field = loc[-1] if loc else None
    kind = error.get("type", "")
    got = f", got {_short(error['input'])}" if "input" in error and kind != "missing" else ""
    if kind == "json_invalid":
        return None, f"the request body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return None, "the request body must be a JSON object with the run's fields: " + ", ".join(RUN_FIELDS)
    if kind == "extra_forbidden":
        return field, f"{field}: unknown field; allowed fields: {', '.join(fields)}"
    if field in FIELD_LIMITS:
        lo, hi = FIELD_LIMITS[field]
        return field, f"{field}: must be an integer in {lo}..{hi}{got}"
    if field in ENUMS:
        return field, f"{field}: must be one of {', '.join(ENUMS[field])}{got}"
    where = ".".join(loc) if loc else "request"
    return field, f"{where}: {error.get('msg', 'invalid value')}{got}"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        described = [describe(e, request.url.path) for e in errors]
        content_type = request.headers.get("content-type", "")
        if errors and errors[0].get("type") == "model_attributes_type" and "json" not in content_type:
            described[0] = (None, f"the request body must be JSON sent with Content-Type: application/json "
                                  f"(got {content_type[:40] or 'no Content-Type'})")
        field, message = described[0] if described else (None, "invalid request")
        detail = [{"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type", ""), "message": m}
                  for e, (_, m) in zip(errors, described, strict=True)]
        allowed = list(ENUMS[field]) if field in ENUMS else None
        return error_response(422, "validation_error", message, field=field, allowed=allowed, detail=detail)

    @app.exception_handler(ConfigError)
    async def config_error(_: Request, exc: ConfigError) -> Response:
        allowed = list(ENUMS[exc.field]) if exc.field in ENUMS else None
        return error_response(422, "validation_error", str(exc), field=exc.field, allowed=allowed)

    @app.exception_handler(RunNotFound)
    async def run_not_found(_: Request, exc: RunNotFound) -> Response:
        return error_response(404, "run_not_found", str(exc))

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> Response:
        return error_response(404, "not_found", str(exc), allowed=exc.allowed)

    @app.exception_handler(Busy)
    async def busy(_: Request, exc: Busy) -> Response:
        return error_response(429, "busy", str(exc), headers={"Retry-After": "2"})

    @app.exception_handler(Timeout)
    async def timeout(_: Request, exc: Timeout) -> Response:
        # a limit, so a 4xx like the others: ask again later (the run goes on and is cached)
        return error_response(429, "still_computing", str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(DataError)
    async def data_error(_: Request, exc: DataError) -> Response:
        log.error("data error: %s", exc)
        return error_response(503, "data_unavailable", "the server's word list cannot be read; see the server log")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "busy"}
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's answer to a body that is not even text (bad UTF-8): a malformed body, like bad JSON
            return error_response(422, "validation_error", "the request body is not valid JSON (it is not UTF-8 text)")
        if exc.status_code == 404 and message == "Not Found":
            message = "no such page or endpoint; the API is described at /docs"
        return error_response(exc.status_code, codes.get(exc.status_code, "error"), message,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "something went wrong on the server; it has been logged")
