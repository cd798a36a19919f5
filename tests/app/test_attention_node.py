"""GET /api/runs/{id}/nodes/att_0?sample=…: one sample of an attention node, and 422 for a bad sample."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.schemas import NodeDetail


@pytest.fixture(scope="module")
def gpt_run_id(client: TestClient) -> str:
    r = client.post("/api/runs", json={"net": "gpt"})
    assert r.status_code == 200
    return str(r.json()["run_id"])


def test_the_sample_parameter_picks_the_sample_shown(client: TestClient, gpt_run_id: str) -> None:
    url = f"/api/runs/{gpt_run_id}/nodes/att_0"
    first = client.get(url, params={"arrays": "false"}).json()
    seventh = client.get(url, params={"arrays": "false", "sample": 7}).json()
    d = NodeDetail.model_validate(seventh)
    assert (first["sample"], d.sample, d.samples) == (0, 7, 32)
    assert d.figure is not None and d.figure["layout"]["meta"]["sample"] == 7
    assert first["figure"]["data"][0]["z"] != seventh["figure"]["data"][0]["z"]
    assert d.how.startswith("sample 7 of 32")
    # other nodes are shown whole: no sample, whatever the query says
    h = client.get(f"/api/runs/{gpt_run_id}/nodes/ln1_0", params={"sample": 3, "figure": "false"}).json()
    assert h["sample"] is None and h["samples"] is None


@pytest.mark.parametrize("bad", ["32", "-1", "1000000000000"])
def test_a_bad_sample_is_a_422_naming_the_range(client: TestClient, gpt_run_id: str, bad: str) -> None:
    url = f"/api/runs/{gpt_run_id}/nodes/att_0"
    r = client.get(url, params={"sample": bad})
    assert r.status_code == 422 and r.json()["field"] == "sample"
    assert "0..31" in r.json()["message"]
    de = client.get(url, params={"sample": bad, "lang": "de"})
    assert de.status_code == 422 and "ganze Zahl in 0..31" in de.json()["message"]


def test_a_sample_that_is_no_number_is_a_422(client: TestClient, gpt_run_id: str) -> None:
    r = client.get(f"/api/runs/{gpt_run_id}/nodes/att_0", params={"sample": "two"})
    assert r.status_code == 422 and r.json()["field"] == "sample"
