"""Every error is a JSON body that says what was wrong and what is allowed (app.schemas.ErrorBody),
in the words of this project (never pydantic's or Starlette's), for the endpoint that was called,
in English or German (`lang`). No traceback, file path or internal detail ever reaches a client."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ninja_core.config import DTYPES, LIMITS, SIZE_FIELDS, VARIANTS, ConfigError
from ninja_core.data import DataError
from ninja_core.i18n import LANGS, Text, german, localize, tr
from ninja_core.nets import NETS

from .budget import Busy
from .registry import RunNotFound, Timeout, TrainingFailed
from .schemas import RunRequest
from .serialise import ORJSON

log = logging.getLogger("app")

ENUMS: dict[str, tuple[str, ...]] = {"dtype": DTYPES, "variant": VARIANTS, "net": tuple(NETS), "lang": LANGS,
                                     "encoding": ("b64", "list"), "diff_scale": ("linear", "log")}


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
# The fields each endpoint accepts, for "unknown field" messages: (path pattern, fields), first match wins.
ENDPOINT_FIELDS: list[tuple[re.Pattern[str], tuple[str, ...]]] = []
RUN_FIELDS = tuple(RunRequest.model_fields)
# What a string field's pattern asks for, in words (pydantic would quote the regex)
PATTERNS: dict[str, Text] = {
    "stream_id": tr("8 to 64 letters, digits, - or _"),
    "node": tr("a node name: letters, digits and _, not starting with a digit"),
}


def register_fields(path_pattern: str, fields: tuple[str, ...] | None, limits: dict[str, tuple[int, int]]) -> None:
    """`fields`: what the endpoints whose path matches `path_pattern` (a regex) accept; `limits`:
    integer ranges of their own fields, for the messages."""
    if fields is not None:
        ENDPOINT_FIELDS.insert(0, (re.compile(path_pattern), fields))
    FIELD_LIMITS.update(limits)


def fields_of(path: str) -> tuple[str, ...]:
    return next((f for pattern, f in ENDPOINT_FIELDS if pattern.search(path)), RUN_FIELDS)


class NotFound(LookupError):
    def __init__(self, message: str, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.allowed = allowed


german({
    "the request body is not valid JSON ({error})": "der Rumpf der Anfrage ist kein gültiges JSON ({error})",
    "the request body is not valid JSON (it is not UTF-8 text)": "der Rumpf der Anfrage ist kein gültiges JSON "
                                                                 "(er ist kein UTF-8-Text)",
    "the request body must be a JSON object with the fields: {fields}": "der Rumpf der Anfrage muss ein JSON-Objekt "
                                                                         "mit diesen Feldern sein: {fields}",
    "the request body must be JSON sent with Content-Type: application/json (got {got})":
        "der Rumpf der Anfrage muss JSON mit Content-Type: application/json sein (erhalten: {got})",
    "{field}: unknown field; allowed fields: {fields}": "{field}: unbekanntes Feld; erlaubte Felder: {fields}",
    "{field}: must be an integer in {lo}..{hi}{got}": "{field}: muss eine ganze Zahl in {lo}..{hi} sein{got}",
    "{field}: must be one of {allowed}{got}": "{field}: muss eines von {allowed} sein{got}",
    "{field}: required field; fields: {fields}": "{field}: Pflichtfeld; Felder: {fields}",
    "{field}: must be text{got}": "{field}: muss Text sein{got}",
    "{field}: at most {n} characters{got}": "{field}: höchstens {n} Zeichen{got}",
    "{field}: at least {n} characters{got}": "{field}: mindestens {n} Zeichen{got}",
    "{field}: must be true or false{got}": "{field}: muss true oder false sein{got}",
    "{field}: must be a number{got}": "{field}: muss eine Zahl sein{got}",
    "{field}: must be {form}{got}": "{field}: muss {form} sein{got}",
    "8 to 64 letters, digits, - or _": "8 bis 64 Buchstaben, Ziffern, - oder _",
    "a node name: letters, digits and _, not starting with a digit": "ein Knotenname: Buchstaben, Ziffern und _, "
                                                                     "nicht mit einer Ziffer vorn",
    "in the allowed form": "in der erlaubten Form",
    "{field}: {problem}{got}": "{field}: {problem}{got}",
    "{field}: invalid value{got}": "{field}: ungültiger Wert{got}",
    ", got {value}": ", erhalten: {value}",
    "invalid request": "ungültige Anfrage",
    "{field}: {message}": "{field}: {message}",
    "{method} is not allowed on {path}; allowed: {allowed}": "{method} ist auf {path} nicht erlaubt; erlaubt: {allowed}",
    "no such page or endpoint; the API is described at /docs": "diese Seite oder Schnittstelle gibt es nicht; "
                                                                "die API ist unter /docs beschrieben",
    "the server's word list cannot be read; see the server log": "die Wortliste des Servers kann nicht gelesen "
                                                                  "werden; siehe das Server-Protokoll",
    "something went wrong on the server; it has been logged": "auf dem Server ist etwas schiefgegangen; es wurde "
                                                              "protokolliert",
    "not one of the 26 nodes": "keiner der 26 Knoten",
})


def _short(value: Any) -> str:
    # JSON's words for what the client sent (true, false, null), not Python's
    text = json.dumps(value) if isinstance(value, bool) or value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(error: dict[str, Any], path: str = "", body: Any = None) -> tuple[str | None, Text]:
    """(field, sentence) for one pydantic error, using the project's own limits and words; a size is
    given the range of the network the body names (the schema can only state the widest)."""
    fields = ", ".join(fields_of(path))
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    field = loc[-1] if loc else None
    where = ".".join(loc) if loc else "request"
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    got: str | Text = tr(", got {value}", value=_short(error["input"])) if "input" in error and kind != "missing" else ""
    if kind == "json_invalid":
        return None, tr("the request body is not valid JSON ({error})", error=ctx.get("error", "parse error"))
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return None, tr("the request body must be a JSON object with the fields: {fields}", fields=fields)
    if kind == "extra_forbidden":
        return field, tr("{field}: unknown field; allowed fields: {fields}", field=field, fields=fields)
    if kind == "missing":
        return field, tr("{field}: required field; fields: {fields}", field=where, fields=fields)
    if field in FIELD_LIMITS and (kind.startswith("int") or kind in ("greater_than_equal", "less_than_equal", "value_error")):
        lo, hi = FIELD_LIMITS[field]
        net = body.get("net", "mlp") if isinstance(body, dict) else None
        spec = NETS[net].size(field) if isinstance(net, str) and net in NETS and field in SIZE_FIELDS else None
        if spec is not None:
            lo, hi = spec.lo, spec.hi
        return field, tr("{field}: must be an integer in {lo}..{hi}{got}", field=field, lo=lo, hi=hi, got=got)
    if field in ENUMS:
        return field, tr("{field}: must be one of {allowed}{got}", field=field, allowed=", ".join(ENUMS[field]), got=got)
    if kind == "string_type":
        return field, tr("{field}: must be text{got}", field=where, got=got)
    if kind == "string_too_long":
        return field, tr("{field}: at most {n} characters{got}", field=where, n=ctx.get("max_length"), got=got)
    if kind == "string_too_short":
        return field, tr("{field}: at least {n} characters{got}", field=where, n=ctx.get("min_length"), got=got)
    if kind == "string_pattern_mismatch":
        return field, tr("{field}: must be {form}{got}", field=where, form=PATTERNS.get(field or "", tr("in the allowed form")),
                         got=got)
    if kind.startswith("bool"):
        return field, tr("{field}: must be true or false{got}", field=where, got=got)
    if kind.startswith("float"):
        return field, tr("{field}: must be a number{got}", field=where, got=got)
    if kind == "value_error":  # our own validators: their message without pydantic's "Value error, " prefix
        problem = str(ctx.get("error") or error.get("msg", "")).removeprefix("Value error, ")
        return field, tr("{field}: {problem}{got}", field=where, problem=tr(problem), got=got)
    return field, tr("{field}: invalid value{got}", field=where, got=got)


def request_lang(request: Request) -> str:
    """The language of this request's messages: a route's parsed `lang` (request.state) or ?lang=."""
    lang = getattr(request.state, "lang", None) or request.query_params.get("lang")
    return "de" if lang == "de" else "en"


def error_response(status: int, error: str, message: str, *, field: str | None = None,
                   allowed: list[str] | None = None, detail: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None, lang: str = "en") -> Response:
    body: dict[str, Any] = {"error": error, "message": localize(message, lang)}
    if field is not None:
        body["field"] = field
    if allowed is not None:
        body["allowed"] = allowed
    if detail is not None:
        body["detail"] = localize(detail, lang)
    return ORJSON(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        body = getattr(exc, "body", None)  # a JSON body that failed validation: its net and its language
        if body is None:  # a query (the training stream's): its net gives a size its range
            body = dict(request.query_params)
        described = [describe(e, request.url.path, body) for e in errors]
        content_type = request.headers.get("content-type", "")
        if errors and errors[0].get("type") == "model_attributes_type" and "json" not in content_type:
            described[0] = (None, tr("the request body must be JSON sent with Content-Type: application/json (got {got})",
                                     got=content_type[:40] or "no Content-Type"))
        field, message = described[0] if described else (None, tr("invalid request"))
        detail = [{"loc": [str(p) for p in e.get("loc", ())], "type": e.get("type", ""), "message": m}
                  for e, (_, m) in zip(errors, described, strict=True)]
        allowed = list(ENUMS[field]) if field in ENUMS else None
        if isinstance(body, dict) and body.get("lang") in LANGS:
            request.state.lang = body["lang"]
        return error_response(422, "validation_error", message, field=field, allowed=allowed, detail=detail,
                              lang=request_lang(request))

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> Response:
        allowed = list(ENUMS[exc.field]) if exc.field in ENUMS else None
        return error_response(422, "validation_error", tr("{field}: {message}", field=exc.field, message=exc.message),
                              field=exc.field, allowed=allowed, lang=request_lang(request))

    @app.exception_handler(RunNotFound)
    async def run_not_found(request: Request, exc: RunNotFound) -> Response:
        message = exc.args[0] if exc.args else str(exc)  # a Text: rendered in the request's language
        return error_response(404, "run_not_found", message, lang=request_lang(request))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return error_response(404, "not_found", exc.message, allowed=exc.allowed, lang=request_lang(request))

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> Response:
        message = exc.args[0] if exc.args else str(exc)
        return error_response(429, exc.code, message, headers={"Retry-After": str(exc.retry_after)},
                              lang=request_lang(request))

    @app.exception_handler(Timeout)
    async def timeout(request: Request, exc: Timeout) -> Response:
        # a limit, so a 4xx like the others: ask again later (the work goes on and is kept)
        message = exc.args[0] if exc.args else str(exc)
        return error_response(429, "still_computing", message, headers={"Retry-After": str(exc.retry_after)},
                              lang=request_lang(request))

    @app.exception_handler(TrainingFailed)
    async def training_failed(request: Request, exc: TrainingFailed) -> Response:
        # the server's trouble, not the request's: 503 and a later retry may work (the lock is free again)
        return error_response(503, "training_failed", exc.args[0] if exc.args else str(exc),
                              headers={"Retry-After": "10"}, lang=request_lang(request))

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> Response:
        log.error("data error: %s", exc)
        return error_response(503, "data_unavailable", tr("the server's word list cannot be read; see the server log"),
                              lang=request_lang(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "busy"}
        message: str = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(getattr(exc, "headers", None) or {})
        lang = request_lang(request)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's answer to a body that is not even text (bad UTF-8): a malformed body, like bad JSON
            return error_response(422, "validation_error", tr("the request body is not valid JSON (it is not UTF-8 text)"),
                                  lang=lang)
        if exc.status_code == 404 and message == "Not Found":
            message = tr("no such page or endpoint; the API is described at /docs")
        if exc.status_code == 405:
            allowed = headers.get("Allow") or headers.get("allow") or ""
            message = tr("{method} is not allowed on {path}; allowed: {allowed}", method=request.method,
                         path=request.url.path[:80], allowed=allowed or "none")
            return error_response(405, "method_not_allowed", message, headers=headers,
                                  allowed=[m.strip() for m in allowed.split(",") if m.strip()], lang=lang)
        return error_response(exc.status_code, codes.get(exc.status_code, "error"), message,
                              headers=headers or None, lang=lang)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", tr("something went wrong on the server; it has been logged"),
                              lang=request_lang(request))
