"""All configuration of the server, read from the environment in one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NINJA_", extra="ignore")

    host: str = Field("127.0.0.1", validation_alias=AliasChoices("HOST", "NINJA_HOST"),
                      description="bind address; loopback unless told otherwise (the Docker image sets 0.0.0.0)")
    port: int = Field(8000, ge=1, le=65535, validation_alias=AliasChoices("PORT", "NINJA_PORT"))
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes; runs are stateless, any worker answers any run")
    data_path: Path | None = Field(None, description="word list, one word per line; default: the bundled names")
    torch_threads: int = Field(1, ge=1, le=64, description="intra-op threads per process; 1 is fastest for these small tensors")
    cache_runs: int = Field(64, ge=1, description="runs kept in each process's LRU cache")
    cache_bytes: int = Field(768 * 1024 * 1024, ge=1024 * 1024, description="tensor bytes the run cache may hold")
    max_run_cells: int = Field(4096 * 1024, ge=2, description="largest batch_size × n_hidden a run may ask for (422 beyond)")
    max_train_stream_steps: int = Field(200_000, ge=1, description="longest training a stream may ask for (422 beyond)")
    heavy_cells: int = Field(64 * 1024, ge=1, description="batch_size × n_hidden above which a run goes to the worker pool")
    heavy_workers: int = Field(1, ge=1, le=16, description="threads for heavy runs: one big run cannot starve the small ones")
    heavy_queue: int = Field(4, ge=0, description="heavy runs that may wait for the pool before new ones get 429")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="largest request body accepted (413 beyond)")
    max_train_steps_in_run: int = Field(200_000, ge=0, description="largest train_steps a run (gradient view) may ask for")
    dojo_workers: int = Field(2, ge=1, le=32, description="threads running learners' code (each check stops itself at 2 s)")
    dojo_queue: int = Field(16, ge=0, description="checks that may wait for a dojo thread before new ones get 429")
    max_train_streams: int = Field(2, ge=1, le=64, description="concurrent training streams per process (429 beyond)")
    max_cells_limit: int = Field(262_144, ge=1, description="largest max_cells a node request may ask for")
    request_timeout_s: float = Field(30.0, gt=0, description="a slower run: 429 + Retry-After; it finishes in the background")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
