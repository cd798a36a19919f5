"""The networks a run can use, with their sizes: what a client needs to offer the choice."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from ninja_core.config import SIZE_FIELDS
from ninja_core.nets import NETS
from ninja_core.train import TrainConfig

from ..schemas import ErrorBody, NetInfo
from ..serialise import ORJSON
from .train import default_steps

router = APIRouter(prefix="/api/nets", tags=["nets"])


@router.get("", response_model=list[NetInfo], summary="The networks, each with its sizes, defaults and ranges",
            responses={422: {"model": ErrorBody, "description": "a lang other than en or de"}})
async def list_nets(
    lang: Annotated[Literal["en", "de"], Query(description="language of the titles and the sizes' help")] = "en",
) -> ORJSON:
    return ORJSON(nets_document(lang))


@cache  # the networks are fixed for the process: built once per language, not on every page load
def nets_document(lang: str) -> list[dict[str, Any]]:
    return [{**net.describe(lang), "train": train_info(name)} for name, net in NETS.items()]


def train_info(net: str) -> dict[str, Any]:
    """The training stream's defaults for `net`: its recipe, resolved by the engine's TrainConfig."""
    cfg = TrainConfig(net=net)
    return {"steps": default_steps(net), "recipe_steps": cfg.steps,
            "sizes": {name: value for name in SIZE_FIELDS if (value := getattr(cfg, name))},
            **{k: getattr(cfg, k) for k in ("optimizer", "lr", "lr_decay_at", "lr_decayed", "weight_decay")}}
