"""Shared objects for the routes, as Annotated dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .registry import RunRegistry
from .settings import Settings, get_settings


def _registry(request: Request) -> RunRegistry:
    registry: RunRegistry = request.app.state.registry
    return registry


def _settings(request: Request) -> Settings:
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    return settings


def client_of(request: Request) -> str:
    """Who pays for expensive requests: the client's address (behind a proxy that uvicorn trusts --
    FORWARDED_ALLOW_IPS -- the address from X-Forwarded-For, which uvicorn puts in the scope)."""
    return request.client.host if request.client is not None else "unknown"


RegistryDep = Annotated[RunRegistry, Depends(_registry)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ClientDep = Annotated[str, Depends(client_of)]
