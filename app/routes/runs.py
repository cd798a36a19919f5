"""Runs: forward + autograd + manual backward for a config, and the tensors of each node."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query

from ninja_core.config import Config, ConfigError
from ninja_core.display import DEFAULT_MAX_CELLS
from ninja_core.gradcheck import finite_differences

from ..deps import RegistryDep, SettingsDep
from ..errors import NotFound, register_fields
from ..schemas import ErrorBody, GradcheckDocument, NodeDetail, RunDocument, RunRequest
from ..serialise import ORJSON, node_detail, run_document
from ..settings import get_settings

router = APIRouter(prefix="/api/runs", tags=["runs"])
register_fields("/api/runs/", None, {"max_cells": (1, get_settings().max_cells_limit)})

ERRORS: dict[int | str, dict[str, Any]] = {
          404: {"model": ErrorBody, "description": "unknown or malformed run id, or unknown node"},
          422: {"model": ErrorBody, "description": "a field is out of range or of the wrong type"},
          413: {"model": ErrorBody, "description": "the request body is over the server's limit"},
          429: {"model": ErrorBody, "description": "too many large runs in progress, or the run is still being "
                                                   "computed after the server's timeout (see Retry-After)"}}
RunId = Annotated[str, Path(max_length=120, description="from POST /api/runs; encodes the whole config",
                            examples=["r2-mlp-f32-chain-s2147483647-t0-b32-e10-h64-k3-d5b1f3c2a"])]


def _config(body: RunRequest) -> Config:
    return Config(**body.model_dump(exclude_none=True))  # a size left out is the network's default


@router.post("", response_model=RunDocument, responses=ERRORS, summary="Run forward and backward for a config")
async def create_run(registry: RegistryDep, body: Annotated[RunRequest | None, Body()] = None) -> ORJSON:
    """Every field is optional (lecture defaults). The same config always gives the same run id and
    bit-identical numbers, in any server process."""
    run_id, run = await registry.get(_config(body or RunRequest()))  # an empty body means all defaults
    return ORJSON(run_document(run_id, run))


@router.get("/{run_id}", response_model=RunDocument, responses=ERRORS, summary="The document of a run")
async def get_run(registry: RegistryDep, run_id: RunId) -> ORJSON:
    _, run = await registry.get_by_id(run_id)
    return ORJSON(run_document(run_id, run))


@router.get("/{run_id}/nodes/{name}", response_model=NodeDetail, responses=ERRORS,
            summary="One node: its value, manual and autograd gradients, their difference, statistics, figure")
async def get_node(
    registry: RegistryDep,
    settings: SettingsDep,
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
    lang: Annotated[Literal["en", "de"], Query(description="language of the figure's labels")] = "en",
) -> ORJSON:
    if max_cells > settings.max_cells_limit:
        raise ConfigError("max_cells", f"must be an integer in 1..{settings.max_cells_limit}, got {max_cells}")
    _, run = await registry.get_by_id(run_id)
    resolved = run.tape.resolve(name)
    if resolved is None or resolved not in run.nodes:
        valid = list(run.nodes)
        aliases = "; aliases: " + ", ".join(f"{k} (= {v})" for k, v in run.tape.aliases.items()) if run.tape.aliases else ""
        raise NotFound(f"unknown node {name[:40]!r} for {run.config.net}; valid names: {', '.join(valid)}{aliases}",
                       allowed=valid)
    requested_as = name if resolved != name else None
    args = (run_id, run, resolved, requested_as, max_cells, encoding, diff_scale, arrays, figure, lang)
    if not registry.large_tensors(run.config):
        doc = node_detail(*args)  # small: ~1 ms, cheaper than a thread hop
    else:  # a large tensor: reduce it off the event loop
        doc = await asyncio.to_thread(node_detail, *args)
    return ORJSON(doc)


@router.get("/{run_id}/gradcheck", response_model=GradcheckDocument, responses=ERRORS,
            summary="Finite differences (float64) for every parameter: a third opinion beside autograd")
async def get_gradcheck(registry: RegistryDep, run_id: RunId) -> ORJSON:
    _, run = await registry.get_by_id(run_id)
    results = await asyncio.to_thread(finite_differences, run)
    return ORJSON({
        "run_id": run_id,
        "method": "4th-order central differences, h = 3e-3, float64, 6 sampled entries per parameter",
        "params": [r.to_dict() for r in results.values()],
    })
