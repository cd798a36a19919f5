from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as c:
        yield c


@pytest.fixture(scope="module")
def default_run_doc(client: TestClient) -> dict:  # type: ignore[type-arg]
    r = client.post("/api/runs", json={})
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]
