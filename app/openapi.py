"""The OpenAPI document, with this server's own limits where an operator tightened them.

The schemas carry the engine's ranges (batch_size ≤ 4096, ...); settings may set tighter ones
(e.g. the largest train_steps). The published document then says what *this* server accepts,
so a client (or a schema fuzzer) that follows it is never refused for a value it was offered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ninja_core.config import Config
from ninja_core.data import load_dataset

from .registry import data_fingerprint, run_id_for
from .settings import Settings

# 2**63 - 1 has no exact double: tools that compare JSON numbers as doubles would read it as 2**63
# and offer seeds the server must refuse. 2**63 - 1024 is the largest double below 2**63.
SEED_MAX_IN_SCHEMA = 2**63 - 1


def _set_maximum(node: Any, maximum: int) -> None:
    if isinstance(node, dict) and "maximum" in node:
        node["maximum"] = min(node["maximum"], maximum)
        if isinstance(node.get("default"), int):
            node["default"] = min(node["default"], node["maximum"])


def _operation_ids(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(method.upper(), path): op["operationId"] for path, item in doc.get("paths", {}).items()
            for method, op in item.items() if isinstance(op, dict) and "operationId" in op}


def _add_links(doc: dict[str, Any]) -> None:
    """OpenAPI links: a run's id (and its first node) lead to the operations that take them, so
    clients, and stateful tests, can follow POST /api/runs to the rest of the API."""
    ids = _operation_ids(doc)
    run_id = "$response.body#/run_id"
    targets = {
        "GetRun": (("GET", "/api/runs/{run_id}"), {"run_id": run_id}),
        "GetNode": (("GET", "/api/runs/{run_id}/nodes/{name}"), {"run_id": run_id, "name": "$response.body#/nodes/0/name"}),
        "GetGradcheck": (("GET", "/api/runs/{run_id}/gradcheck"), {"run_id": run_id}),
        "CheckCode": (("POST", "/api/runs/{run_id}/check"), {"run_id": run_id}),
        "GradeCell": (("POST", "/api/runs/{run_id}/grade"), {"run_id": run_id}),
    }
    created = doc.get("paths", {}).get("/api/runs", {}).get("post", {}).get("responses", {}).get("200")
    if created is None:
        return
    created["links"] = {name: {"operationId": ids[key], "parameters": params}
                        for name, (key, params) in targets.items() if key in ids}


def _set_run_id_examples(doc: dict[str, Any], example: str) -> None:
    """Examples with this server's real data fingerprint, so a documented example id works here."""
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if param.get("name") == "run_id":
                    param["example"] = example
                    param.get("schema", {}).pop("examples", None)
                    param.pop("examples", None)


def install(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = doc.get("components", {}).get("schemas", {})
        for model in ("RunRequest", "RunConfig"):
            properties = schemas.get(model, {}).get("properties", {})
            _set_maximum(properties.get("train_steps"), settings.max_train_steps_in_run)
            _set_maximum(properties.get("train_schedule_steps"),
                         max(settings.max_train_steps_in_run, settings.max_train_stream_steps))
            _set_maximum(properties.get("seed"), SEED_MAX_IN_SCHEMA)
        for path, item in doc.get("paths", {}).items():
            for operation in item.values():
                for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                    if param.get("name") == "seed":
                        _set_maximum(param.get("schema"), SEED_MAX_IN_SCHEMA)
                    if path.endswith("/train/stream") and param.get("name") == "steps":
                        _set_maximum(param.get("schema"), settings.max_train_stream_steps)
                    if path.endswith("/nodes/{name}") and param.get("name") == "max_cells":
                        param.get("schema", {})["maximum"] = settings.max_cells_limit
        _add_links(doc)
        _set_run_id_examples(doc, run_id_for(Config(), data_fingerprint(Path(load_dataset(settings.data_path).path))))
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
