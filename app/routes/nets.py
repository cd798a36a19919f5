"""The networks a run can use, with their sizes: what a client needs to offer the choice."""

from __future__ import annotations

from fastapi import APIRouter

from ninja_core.nets import NETS

from ..schemas import NetInfo
from ..serialise import ORJSON

router = APIRouter(prefix="/api/nets", tags=["nets"])


@router.get("", response_model=list[NetInfo], summary="The networks, each with its sizes, defaults and ranges")
async def list_nets() -> ORJSON:
    return ORJSON([net.describe() for net in NETS.values()])
