"""The networks a run can use, with their sizes: what a client needs to offer the choice."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from ninja_core.nets import NETS

from ..schemas import NetInfo
from ..serialise import ORJSON

router = APIRouter(prefix="/api/nets", tags=["nets"])


@router.get("", response_model=list[NetInfo], summary="The networks, each with its sizes, defaults and ranges")
async def list_nets(
    lang: Annotated[Literal["en", "de"], Query(description="language of the titles and the sizes' help")] = "en",
) -> ORJSON:
    return ORJSON([net.describe(lang) for net in NETS.values()])
