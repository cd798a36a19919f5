"""The FastAPI application: `uvicorn app.main:app`, or `python -m app` (see app/server.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import ninja_core
from ninja_core.config import Config
from ninja_core.data import DataError
from ninja_core.perf import tune_allocator

from . import errors, openapi
from .middleware import BodyLimit, SecurityHeaders
from .registry import Busy, RunRegistry, Timeout
from .routes import api_router
from .routes.dojo import DojoPool
from .routes.page import ROOT, plotly_asset, static_version
from .routes.train import TrainSlots
from .settings import Settings, get_settings

log = logging.getLogger("app")

DESCRIPTION = """
Backprop Ninja's API: the lecture's MLP (trigram → next character, batchnorm, tanh) runs forward on a
sampled minibatch; its backward pass, written out by hand one tensor at a time, is compared with
autograd for all 26 gradients. A run is a pure function of its config: its `run_id` encodes the
config, so any server process answers for any run.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.torch_threads)
        tune_allocator()
        app.state.train_slots = TrainSlots(settings.max_train_streams)
        app.state.dojo_pool = DojoPool(settings.dojo_workers, settings.dojo_queue)
        try:
            app.state.registry = RunRegistry(settings)
        except DataError as exc:  # `uvicorn app.main:app` with a bad NINJA_DATA_PATH: say what, in one line
            log.error("the word list cannot be used: %s (set NINJA_DATA_PATH)", exc)
            raise SystemExit(2) from None
        # Warm-up: the first check in a process pays one-off costs (torch's deterministic-mode
        # switch imports ~850 modules, ~1-2 s); pay them here, not in a learner's first request.
        with contextlib.suppress(Timeout, Busy):  # best effort: a tight timeout must not stop the server
            await app.state.registry.get(Config())
        await asyncio.to_thread(plotly_asset().bodies)  # gzip plotly.js once now, not for the first visitor
        log.info("data %s (%s), %d torch thread(s)", app.state.registry.dataset.path,
                 app.state.registry.fingerprint, settings.torch_threads)
        yield
        app.state.registry.close()
        app.state.dojo_pool.close()

    app = FastAPI(title="Backprop Ninja", version=ninja_core.__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.static_version = static_version()
    errors.install(app)
    openapi.install(app, settings)
    app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


app = create_app()
