"""GET /api/runs/{id}/nodes/{name} and /gradcheck."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.schemas import GradcheckDocument, NodeDetail
from ninja_core.config import Config
from ninja_core.run import check


def _decode(arr: dict) -> np.ndarray:  # type: ignore[type-arg]
    rows, cols = (int(x) for x in arr["shape"].split(","))
    return np.frombuffer(base64.b64decode(arr["bdata"]), dtype="<f4").reshape(rows, cols)


def test_node_detail_b64(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.get(f"/api/runs/{default_run_doc['run_id']}/nodes/hprebn")
    assert r.status_code == 200
    d = NodeDetail.model_validate(r.json())
    assert d.shape == [32, 64] and d.display_shape == [32, 64] and not d.downsampled
    assert d.figure is not None and len(d.figure["data"]) == 4
    run = check(Config())
    assert np.array_equal(_decode(r.json()["value"]), run.values["hprebn"].numpy())
    assert np.array_equal(_decode(r.json()["manual"]), run.manual["hprebn"].numpy())
    assert float(_decode(r.json()["diff"]).max()) == 0.0
    assert d.stats.value.numel == 32 * 64
    assert d.summary.status == "exact"


def test_node_detail_list_encoding_and_alias(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.get(f"/api/runs/{default_run_doc['run_id']}/nodes/zprebn", params={"encoding": "list", "figure": "false"})
    d = r.json()
    assert d["name"] == "hprebn" and d["requested_as"] == "zprebn"
    assert len(d["value"]) == 32 and len(d["value"][0]) == 64 and d["figure"] is None
    for alias, name in (("apreact", "hpreact"), ("a", "h")):
        assert client.get(f"/api/runs/{default_run_doc['run_id']}/nodes/{alias}?figure=false").json()["name"] == name


def test_three_dimensional_node_is_flattened_and_says_how(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    d = client.get(f"/api/runs/{default_run_doc['run_id']}/nodes/emb?arrays=false").json()
    assert d["shape"] == [32, 3, 10] and d["display_shape"] == [32, 30]
    assert "shown as 32 × 30" in d["how"] and d["value"] is None


def test_unknown_node_404_lists_valid_names(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.get(f"/api/runs/{default_run_doc['run_id']}/nodes/dragon")
    assert r.status_code == 404
    body = r.json()
    assert "dragon" in body["message"] and len(body["allowed"]) == 26 and "bnvar_inv" in body["allowed"]


@pytest.mark.parametrize("params", [{"max_cells": 0}, {"max_cells": 10**9}, {"encoding": "png"}, {"diff_scale": "cubic"}])
def test_bad_node_query_is_422(client: TestClient, default_run_doc: dict, params: dict) -> None:  # type: ignore[type-arg]
    r = client.get(f"/api/runs/{default_run_doc['run_id']}/nodes/h", params=params)
    assert r.status_code == 422
    assert r.json()["field"] in params


def test_large_tensor_is_downsampled_with_full_stats(client: TestClient) -> None:
    doc = client.post("/api/runs", json={"batch_size": 1024, "n_hidden": 512}).json()
    r = client.get(f"/api/runs/{doc['run_id']}/nodes/hprebn", params={"max_cells": 4096})
    d = r.json()
    assert d["downsampled"] is True
    assert d["display_shape"][0] * d["display_shape"][1] <= 4096
    assert "reduced from 1024 × 512" in d["how"]
    assert d["stats"]["value"]["numel"] == 1024 * 512


def test_log_diff_scale_changes_the_figure(client: TestClient) -> None:
    doc = client.post("/api/runs", json={"variant": "fused"}).json()
    d = client.get(f"/api/runs/{doc['run_id']}/nodes/logits", params={"diff_scale": "log", "arrays": "false"}).json()
    assert "log10" in d["figure"]["data"][3]["name"]
    assert d["summary"]["status"] == "approx"


def test_nonfinite_values_never_break_json(client: TestClient) -> None:
    # extreme but valid: the response must still be valid JSON, whatever the values
    doc = client.post("/api/runs", json={"batch_size": 2, "n_hidden": 1, "n_embd": 1, "block_size": 1})
    assert doc.status_code == 200
    for node in doc.json()["nodes"]:
        for key in ("maxdiff", "relerr"):
            assert node[key] is None or math.isfinite(node[key])


def test_gradcheck(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.get(f"/api/runs/{default_run_doc['run_id']}/gradcheck")
    doc = GradcheckDocument.model_validate(r.json())
    assert [p.name for p in doc.params] == ["C", "W1", "b1", "W2", "b2", "bngain", "bnbias"]
    assert all(p.relerr is not None and p.relerr < 1e-6 for p in doc.params)
