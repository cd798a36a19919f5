from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def own_state_dir() -> Iterator[str]:
    """Slots, rate limits and checkpoints of these tests in a directory of their own (servers the
    tests start inherit it), not in the user's ~/.cache where a running server keeps its state."""
    saved = os.environ.get("NINJA_STATE_DIR")
    with tempfile.TemporaryDirectory(prefix="ninja-test-state-") as directory:
        os.environ["NINJA_STATE_DIR"] = directory
        try:
            yield directory
        finally:
            if saved is None:
                os.environ.pop("NINJA_STATE_DIR", None)
            else:
                os.environ["NINJA_STATE_DIR"] = saved


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as c:
        yield c


@pytest.fixture(scope="module")
def default_run_doc(client: TestClient) -> dict:  # type: ignore[type-arg]
    r = client.post("/api/runs", json={})
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]
