"""Liveness and readiness (one endpoint: the process answers, so it is ready for any request)."""

from __future__ import annotations

import os

from fastapi import APIRouter

import ninja_core

from ..deps import RegistryDep
from ..schemas import Health
from ..serialise import ORJSON

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness and readiness: the process answers")
async def healthz(registry: RegistryDep) -> ORJSON:
    """`pid` names the worker process that answered: the connection this request came on is served
    by it, which lets an operator (or a test) tell the workers behind one port apart."""
    return ORJSON({"status": "ok", "version": ninja_core.__version__, "pid": os.getpid(), "runs": registry.stats()})
