"""All configuration of the server, read from the environment in one place."""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ninja_core.i18n import german, tr

CORES = os.cpu_count() or 1


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
    heavy_workers: int = Field(1, ge=1, le=16, description="threads per process for large runs: one big run cannot "
                                                           "starve the small ones")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="largest request body accepted (413 beyond)")
    max_train_steps_in_run: int = Field(200_000, ge=0, description="largest train_steps a run (gradient view) may ask for")
    dojo_workers: int = Field(2, ge=1, le=32, description="threads running learners' code (each check stops itself at 2 s)")
    dojo_queue: int = Field(16, ge=0, description="checks that may wait for a dojo thread before new ones get 429")
    max_cells_limit: int = Field(262_144, ge=1, description="largest max_cells a node request may ask for")
    request_timeout_s: float = Field(3.0, gt=0, description="how long a request waits for heavy work before it gets "
                                                             "429 + Retry-After; the work finishes in the background")
    # ---- the budget of the whole server: every process that shares the state directory ----------
    state_dir: Path | None = Field(None, description="slot files, rate-limit table and stop flags shared by all worker "
                                                     "processes (and by replicas that mount the same directory); "
                                                     "default $XDG_CACHE_HOME/backprop-ninja or ~/.cache/backprop-ninja")
    checkpoint_dir: Path | None = Field(None, description="trained weights, computed once per config and reused by every "
                                                          "process that sees the directory; default <state_dir>/checkpoints")
    checkpoint_max_bytes: int = Field(1 << 30, ge=1 << 20, description="bytes of checkpoints kept (oldest removed first)")
    heavy_jobs: int = Field(CORES, ge=1, le=256, description="heavy jobs at once for the whole server (trainings for runs, "
                                                             "large runs); 429 + Retry-After at once beyond")
    max_train_streams: int = Field(2 * CORES, ge=1, le=256, description="training streams at once for the whole server "
                                                                        "(429 + Retry-After beyond)")
    client_jobs: int = Field(2, ge=1, le=256, description="heavy jobs and training streams one client may hold at once")
    rate_per_minute: float = Field(30.0, gt=0, description="expensive requests (new heavy work, training streams, gradchecks) "
                                                           "per client and minute, after a burst of rate_burst")
    rate_burst: int = Field(10, ge=1, description="expensive requests a client may make at once before the rate applies")
    heavy_nice: int = Field(10, ge=0, le=19, description="niceness of training processes: interactive requests come first")


class SettingsError(ValueError):
    """A setting from the environment is invalid; the message names the variable and what is allowed."""


def default_state_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "backprop-ninja"


def state_dir(settings: Settings) -> Path:
    """The state directory, created if needed; a temporary one (per user) when the default cannot be
    written (a read-only home in a container). Raises SettingsError when NINJA_STATE_DIR or
    NINJA_CHECKPOINT_DIR is given but cannot be written."""
    for name, path in (("NINJA_CHECKPOINT_DIR", settings.checkpoint_dir), ("NINJA_STATE_DIR", settings.state_dir)):
        if path is None:
            continue
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(tr("{var}={value}: {problem}", var=name, value=repr(str(path)),
                                   problem=tr("cannot be created ({reason})", reason=exc.strerror))) from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise SettingsError(tr("{var}={value}: {problem}", var=name, value=repr(str(path)),
                                   problem=tr("is not writable by this user")))
    if settings.state_dir is not None:
        return settings.state_dir
    try:
        path = default_state_dir()
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    path = Path(tempfile.gettempdir()) / f"backprop-ninja-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


german({
    "{var}={value}: {problem}": "{var}={value}: {problem}",
    "must be an integer": "muss eine ganze Zahl sein",
    "must be a number": "muss eine Zahl sein",
    "must be at least {n}": "muss mindestens {n} sein",
    "must be at most {n}": "darf höchstens {n} sein",
    "must be greater than {n}": "muss größer als {n} sein",
    "invalid value": "ungültiger Wert",
    "cannot be created ({reason})": "kann nicht angelegt werden ({reason})",
    "is not writable by this user": "ist für diesen Benutzer nicht beschreibbar",
})


def _env_name(field: str) -> str:
    if field not in Settings.model_fields and field in os.environ:  # pydantic reports an alias by its name
        return field
    info = Settings.model_fields.get(field)
    alias = getattr(info, "validation_alias", None) if info is not None else None
    choices = [c for c in getattr(alias, "choices", []) if isinstance(c, str)]
    present = [c for c in choices if c in os.environ]
    return present[0] if present else (choices[0] if choices else f"NINJA_{field.upper()}")


def _problem(error: dict[str, Any]) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind.startswith("int_"):
        return tr("must be an integer")
    if kind.startswith("float_"):
        return tr("must be a number")
    if kind == "greater_than_equal":
        return tr("must be at least {n}", n=ctx.get("ge"))
    if kind == "less_than_equal":
        return tr("must be at most {n}", n=ctx.get("le"))
    if kind == "greater_than":
        return tr("must be greater than {n}", n=ctx.get("gt"))
    return tr("invalid value")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment. Raises SettingsError with one line per bad variable (no
    pydantic traceback), e.g. `NINJA_WORKERS='abc': must be an integer`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error.get("loc") else "?"
            var = _env_name(field)
            value = os.environ.get(var, error.get("input"))
            lines.append(tr("{var}={value}: {problem}", var=var, value=repr(value), problem=_problem(dict(error))))
        raise SettingsError("; ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
