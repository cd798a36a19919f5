from __future__ import annotations

from fastapi import APIRouter

import ninja_core

from ..schemas import Health
from ..serialise import ORJSON

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> ORJSON:
    return ORJSON({"status": "ok", "version": ninja_core.__version__})
