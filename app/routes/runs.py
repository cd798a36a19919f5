"""Runs: forward + autograd + manual backward for a config, and the tensors of each node."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request

from ninja_core.config import LIMITS, Config, ConfigError
from ninja_core.display import DEFAULT_MAX_CELLS
from ninja_core.gradcheck import finite_differences
from ninja_core.i18n import german, name_choices, tr

from ..budget import Budget
from ..deps import ClientDep, RegistryDep, SettingsDep
from ..errors import NotFound, register_fields
from ..schemas import ErrorBody, GradcheckDocument, NodeDetail, RunDocument, RunRequest
from ..serialise import ORJSON, node_detail, run_document
from ..settings import Settings

router = APIRouter(prefix="/api/runs", tags=["runs"])
# max_cells: the default limit here; create_app registers the configured one
register_fields(r"^/api/runs/?$", None, {"max_cells": (1, Settings.model_fields["max_cells_limit"].default),
                                         "train_schedule_steps": (0, LIMITS["train_steps"][1])})
german({
    "unknown node {name} for {net}; nodes: {choices}{aliases}": "unbekannter Knoten {name} für {net}; Knoten: "
                                                                "{choices}{aliases}",
    "; aliases: {aliases}": "; andere Namen: {aliases}",
    "must be an integer in 1..{hi}, got {got}": "muss eine ganze Zahl in 1..{hi} sein, erhalten: {got}",
})

ERRORS: dict[int | str, dict[str, Any]] = {
          404: {"model": ErrorBody, "description": "unknown or malformed run id, or unknown node"},
          422: {"model": ErrorBody, "description": "a field is out of range or of the wrong type"},
          413: {"model": ErrorBody, "description": "the request body is over the server's limit"},
          429: {"model": ErrorBody, "description": "the server's heavy jobs (trainings, large runs) or this "
                                                   "client's share are all in use, too many expensive requests, or "
                                                   "the run is still being computed (see Retry-After; the work goes "
                                                   "on and is kept)"},
          503: {"model": ErrorBody, "description": "the training behind a trained run failed on the server (see "
                                                   "Retry-After)"}}
RunId = Annotated[str, Path(max_length=120, description="from POST /api/runs; encodes the whole config",
                            examples=["r2-mlp-f32-chain-s2147483647-t0-b32-e10-h64-k3-d5b1f3c2a"])]


LangQuery = Annotated[Literal["en", "de"], Query(description="language of the notes and the messages")]


def _config(body: RunRequest) -> tuple[Config, int]:
    fields = body.model_dump(exclude_none=True)  # a size left out is the network's default
    schedule = fields.pop("train_schedule_steps", 0)
    return Config(**fields), schedule


@router.post("", response_model=RunDocument, responses=ERRORS, summary="Run forward and backward for a config")
async def create_run(registry: RegistryDep, client: ClientDep, body: Annotated[RunRequest | None, Body()] = None,
                     lang: LangQuery = "en") -> ORJSON:
    """Every field is optional (lecture defaults). The same config always gives the same run id and
    bit-identical numbers, in any server process. Idempotent by design: the run is a pure function of
    its config, so a proxy may retry it on another server. A trained network (train_steps > 0) is
    trained once per config for the whole deployment and its weights kept."""
    cfg, schedule = _config(body or RunRequest())  # an empty body means all defaults
    run_id, run = await registry.get(cfg, schedule, client)
    return ORJSON(run_document(run_id, run, registry.schedule_of(run_id), lang))


@router.get("/{run_id}", response_model=RunDocument, responses=ERRORS, summary="The document of a run")
async def get_run(registry: RegistryDep, client: ClientDep, run_id: RunId, lang: LangQuery = "en") -> ORJSON:
    _, run = await registry.get_by_id(run_id, client)
    return ORJSON(run_document(run_id, run, registry.schedule_of(run_id), lang))


@router.get("/{run_id}/nodes/{name}", response_model=NodeDetail, responses=ERRORS,
            summary="One node: its value, manual and autograd gradients, their difference, statistics, figure")
async def get_node(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    client: ClientDep,
    run_id: RunId,
    name: Annotated[str, Path(max_length=40, description="a node name; the seed notebook's zprebn, apreact, a also work",
                              examples=["h", "hprebn", "emb", "zprebn"])],
    max_cells: Annotated[int, Query(ge=1, description="display arrays are block-reduced to at most this many cells")]
    = DEFAULT_MAX_CELLS,
    encoding: Annotated[Literal["b64", "list"], Query(description="b64: base64 float32 (plotly.js typed arrays); "
                                                                  "list: nested lists, NaN/Inf as null")] = "b64",
    diff_scale: Annotated[Literal["linear", "log"], Query(description="scale of the |diff| heatmap in `figure`")] = "linear",
    arrays: Annotated[bool, Query(description="include the four display arrays")] = True,
    figure: Annotated[bool, Query(description="include the plotly figure")] = True,
    lang: Annotated[Literal["en", "de"], Query(description="language of the figure's labels and the messages")] = "en",
    sample: Annotated[int, Query(description="for a (batch, head, ·, ·) tensor such as attention: the one sample "
                                             "shown, 0..B-1 (a grid of its heads); ignored for other tensors")] = 0,
) -> ORJSON:
    request.state.lang = lang
    if max_cells > settings.max_cells_limit:
        raise ConfigError("max_cells", tr("must be an integer in 1..{hi}, got {got}", hi=settings.max_cells_limit,
                                          got=max_cells))
    _, run = await registry.get_by_id(run_id, client)
    resolved = run.tape.resolve(name)
    if resolved is None or resolved not in run.nodes:
        valid = list(run.nodes)
        aliases = ", ".join(f"{k} (= {v})" for k, v in run.tape.aliases.items())
        raise NotFound(tr("unknown node {name} for {net}; nodes: {choices}{aliases}", name=repr(name[:40]),
                          net=run.config.net, choices=name_choices(name[:40], valid),
                          aliases=tr("; aliases: {aliases}", aliases=aliases) if aliases else ""), allowed=valid)
    requested_as = name if resolved != name else None
    args = (run_id, run, resolved, requested_as, max_cells, encoding, diff_scale, arrays, figure, lang, sample)
    if not registry.large_tensors(run.config):
        doc = node_detail(*args)  # small: ~1 ms, cheaper than a thread hop
    else:  # a large tensor: reduce it off the event loop
        doc = await asyncio.to_thread(node_detail, *args)
    return ORJSON(doc)


@router.get("/{run_id}/gradcheck", response_model=GradcheckDocument, responses=ERRORS,
            summary="Finite differences (float64) for every parameter: a third opinion beside autograd")
async def get_gradcheck(request: Request, registry: RegistryDep, client: ClientDep, run_id: RunId) -> ORJSON:
    _, run = await registry.get_by_id(run_id, client)
    budget: Budget = request.app.state.budget
    budget.take_rate(client)  # ~0.1-1 s of float64 work per request: an expensive endpoint
    results = await asyncio.to_thread(finite_differences, run)
    return ORJSON({
        "run_id": run_id,
        "method": "4th-order central differences, h = 3e-3, float64, 6 sampled entries per parameter",
        "params": [r.to_dict() for r in results.values()],
    })
