"""One router per area, gathered here."""

from fastapi import APIRouter

from . import dojo, health, nets, page, runs, train

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(nets.router)
api_router.include_router(runs.router)
api_router.include_router(dojo.router)
api_router.include_router(train.router)
api_router.include_router(page.router)
