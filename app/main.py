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

from . import errors, openapi, trainer
from .budget import Budget
from .middleware import BodyLimit, SecurityHeaders
from .registry import Busy, RunRegistry, Timeout
from .routes import api_router
from .routes.dojo import DojoPool
from .routes.page import ROOT, plotly_asset, static_version
from .routes.train import StreamFlags
from .settings import Settings, SettingsError, get_settings, state_dir

log = logging.getLogger("app")

DESCRIPTION = """
Backprop Ninja's API: the lecture's MLP (trigram → next character, batchnorm, tanh) runs forward on a
sampled minibatch; its backward pass, written out by hand one tensor at a time, is compared with
autograd for all 26 gradients. A run is a pure function of its config: its `run_id` encodes the
config, so any server process answers for any run.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    if settings is None:
        try:
            settings = get_settings()
        except SettingsError as exc:  # `uvicorn app.main:app` with a bad NINJA_* variable: say what, in one line
            log.error("invalid setting: %s", exc)
            raise SystemExit(2) from None
    resolved: Settings = settings  # the closure below sees the narrowed type

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = resolved
        torch.set_num_threads(settings.torch_threads)
        tune_allocator()
        try:
            directory = state_dir(settings)
        except SettingsError as exc:
            log.error("invalid setting: %s", exc)
            raise SystemExit(2) from None
        app.state.budget = Budget(settings, directory)
        app.state.stream_flags = StreamFlags(directory / "streams")
        app.state.dojo_pool = DojoPool(settings.dojo_workers, settings.dojo_queue)
        try:
            app.state.registry = RunRegistry(settings, budget=app.state.budget)
        except DataError as exc:  # `uvicorn app.main:app` with a bad NINJA_DATA_PATH: say what, in one line
            log.error("the word list cannot be used: %s (set NINJA_DATA_PATH)", exc)
            raise SystemExit(2) from None
        # Warm-up: the first check in a process pays one-off costs (torch's deterministic-mode
        # switch imports ~850 modules, ~1-2 s); pay them here, not in a learner's first request.
        with contextlib.suppress(Timeout, Busy):  # best effort: a tight timeout must not stop the server
            await app.state.registry.get(Config())
        await asyncio.to_thread(plotly_asset().bodies)  # gzip plotly.js once now, not for the first visitor
        # the trainings' forkserver (imports torch, loads the words: 1-3 s), started before this process says
        # it is ready: the first training need not wait for it, and the first learners' requests do not
        # share the CPU with it
        await asyncio.to_thread(trainer.warm_up)
        log.info("data %s (%s), %d torch thread(s), state %s, checkpoints %s", app.state.registry.dataset.path,
                 app.state.registry.fingerprint, settings.torch_threads, directory, app.state.registry.store.root)
        yield
        app.state.registry.close()
        app.state.dojo_pool.close()

    app = FastAPI(title="Backprop Ninja", version=ninja_core.__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    errors.FIELD_LIMITS["max_cells"] = (1, settings.max_cells_limit)
    app.state.static_version = static_version()
    errors.install(app)
    openapi.install(app, settings)
    app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


app = create_app()
