"""The dojo: a learner's own gradient for a node (or a whole exercise cell), judged against autograd.

The code runs in ninja_core's AST interpreter (never eval/exec), on a small thread pool so the event
loop stays free; the interpreter stops itself at its own deadline (2 s). How long the code may be is the
network's (ninja_core.dojo.source_limits); longer code is a 400 naming the limit."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from ninja_core.dojo import DojoError, UnknownNodeError, check_node, grade_cell
from ninja_core.i18n import german, tr

from ..budget import Busy
from ..deps import ClientDep, RegistryDep
from ..errors import error_response, register_fields
from ..schemas import CheckRequest, CheckVerdict, CodeErrorBody, ErrorBody, GradeDocument, GradeRequest
from ..serialise import ORJSON

router = APIRouter(prefix="/api/runs", tags=["dojo"])
register_fields(r"^/api/runs/[^/]+/check$", tuple(CheckRequest.model_fields), {})
register_fields(r"^/api/runs/[^/]+/grade$", tuple(GradeRequest.model_fields), {})
german({
    "too many code checks are running; try again in a moment": "zu viele Prüfungen laufen gerade; versuch es gleich "
                                                                "noch einmal",
    "node: {message}": "node: {message}",
})

RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": CodeErrorBody, "description": "the code was refused or failed: kind, message, line, col (kind "
                                                 "limit: longer than the network's source limit, which it names)"},
    404: {"model": ErrorBody, "description": "unknown or malformed run id"},
    413: {"model": ErrorBody, "description": "the request body is over the server's limit"},
    422: {"model": ErrorBody, "description": "malformed body, or a node that is not one of the run's network"},
    429: {"model": ErrorBody, "description": "too many checks in progress, or the run's network is still being "
                                             "trained (see Retry-After)"},
    503: {"model": ErrorBody, "description": "the training behind a trained run failed on the server"},
}


class DojoPool:
    """A few threads for learners' code, and a bound on how many checks may wait for them."""

    def __init__(self, workers: int, queue: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dojo")
        self._slots = threading.BoundedSemaphore(workers + queue)

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._slots.acquire(blocking=False):
            raise Busy(tr("too many code checks are running; try again in a moment"), retry_after=1)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args, **kwargs))
        finally:
            self._slots.release()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def code_error(exc: DojoError, lang: str = "en") -> ORJSON:
    body = {"error": "code_error", "message": exc.text(lang), "kind": exc.kind, "line": exc.line, "col": exc.col}
    return ORJSON(body, status_code=400)


# `lang` in the body, or in the query as every other endpoint takes it (the body wins when it has one).
LangQuery = Annotated[Literal["en", "de"] | None, Query(description="language of the messages, as the body's lang")]


def _lang(body: CheckRequest | GradeRequest, query: Literal["en", "de"] | None) -> Literal["en", "de"]:
    return body.lang if "lang" in body.model_fields_set or query is None else query


@router.post("/{run_id}/check", response_model=CheckVerdict, responses=RESPONSES,
             summary="Judge a learner's gradient for one node against autograd")
async def check(request: Request, run_id: str, body: CheckRequest, registry: RegistryDep, client: ClientDep,
                lang: LangQuery = None) -> Any:
    """The code sees every forward tensor and parameter, `Xb`, `Yb`, `n`, `torch`, `F`, and the true
    gradients `d<name>` of every node between this one and the loss."""
    lang = request.state.lang = _lang(body, lang)
    _, run = await registry.get_by_id(run_id, client)
    pool: DojoPool = request.app.state.dojo_pool
    try:
        verdict = await pool.run(check_node, run, body.node, body.code, lang=lang)
    except UnknownNodeError as exc:  # a bad field of the body (the run itself exists): 422, like other fields
        return error_response(422, "validation_error", tr("node: {message}", message=exc.args[0] if exc.args else str(exc)),
                              field="node", allowed=list(run.nodes), lang=lang)
    except DojoError as exc:
        return code_error(exc, lang)
    return ORJSON(verdict.to_dict(lang=lang))


@router.post("/{run_id}/grade", response_model=GradeDocument, responses=RESPONSES,
             summary="Judge a whole exercise cell: every d<name> it defines, end to end and locally")
async def grade(request: Request, run_id: str, body: GradeRequest, registry: RegistryDep, client: ClientDep,
                lang: LangQuery = None) -> Any:
    """The cell sees only forward values and parameters (no true gradients). A cell that fails part
    way is still judged up to where it stopped (`complete` false, `error` says where)."""
    lang = request.state.lang = _lang(body, lang)
    _, run = await registry.get_by_id(run_id, client)
    pool: DojoPool = request.app.state.dojo_pool
    try:
        report = await pool.run(grade_cell, run, body.code)  # the network's limits (a GPT cell is up to 40 KiB)
    except DojoError as exc:
        return code_error(exc, lang)
    return ORJSON(report.to_dict(lang=lang))

