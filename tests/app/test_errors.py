"""Error text that fits its endpoint: each endpoint's own fields, the allowed methods, our words (not
pydantic's), German on request, and one clear line for a bad setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from .support import ROOT

PYDANTIC_WORDING = ("Input should", "Field required", "String should", "Value error", "validation error for")


def no_pydantic_words(text: str) -> None:
    assert not any(w in text for w in PYDANTIC_WORDING), text


def test_check_and_grade_name_their_own_fields(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    run_id = default_run_doc["run_id"]
    r = client.post(f"/api/runs/{run_id}/check", json={"node": "h", "code": "1", "seed": 3})
    assert r.status_code == 422 and r.json()["field"] == "seed"
    assert r.json()["message"] == "seed: unknown field; allowed fields: node, code, lang"
    r = client.post(f"/api/runs/{run_id}/grade", json={"code": "1", "node": "h"})
    assert r.json()["message"] == "node: unknown field; allowed fields: code, lang"
    r = client.post(f"/api/runs/{run_id}/check", json={"code": "1"})
    assert r.json()["message"] == "node: required field; fields: node, code, lang"
    r = client.post(f"/api/runs/{run_id}/grade", json=[1])
    assert r.json()["message"] == "the request body must be a JSON object with the fields: code, lang"
    r = client.post("/api/runs", json={"bogus": 1})  # the run's own list where it belongs
    assert r.json()["message"].startswith("bogus: unknown field; allowed fields: net, seed, batch_size")
    for response in (r, client.post(f"/api/runs/{run_id}/check", json={"node": "h", "code": 5}),
                     client.post(f"/api/runs/{run_id}/check", json={"node": "h", "code": "1", "lang": "fr"}),
                     client.get(f"/api/runs/{run_id}/nodes/h", params={"arrays": "maybe"})):
        assert response.status_code == 422
        no_pydantic_words(response.text)


def test_lang_is_accepted_and_messages_come_in_german(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    run_id = default_run_doc["run_id"]
    r = client.post(f"/api/runs/{run_id}/grade", json={"code": "dh = dlogits @ W2.T", "lang": "de"})
    assert r.status_code == 200
    r = client.post(f"/api/runs/{run_id}/check", json={"node": "h", "code": "1", "lang": "de", "x": 1})
    assert r.json()["message"] == "x: unbekanntes Feld; erlaubte Felder: node, code, lang"
    r = client.get(f"/api/runs/{run_id}/nodes/nope", params={"lang": "de"})
    assert r.status_code == 404 and r.json()["message"].startswith("unbekannter Knoten 'nope'")
    r = client.post(f"/api/runs/{run_id}/check", json={"node": "h", "code": "1", "lang": "fr"})
    assert r.json()["field"] == "lang" and r.json()["allowed"] == ["en", "de"]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/api/runs", "POST"), ("PUT", "/healthz", "GET"), ("GET", "/api/runs/x/check", "POST"),
    ("GET", "/api/train/stop", "POST"),
])
def test_405_says_which_methods_are_allowed(client: TestClient, method: str, path: str, allowed: str) -> None:
    r = client.request(method, path)
    assert r.status_code == 405 and r.headers["allow"] == allowed
    assert r.json()["message"] == f"{method} is not allowed on {path}; allowed: {allowed}"
    assert r.json()["allowed"] == [allowed]


@pytest.mark.parametrize(("env", "expected"), [
    ({"NINJA_WORKERS": "abc"}, "NINJA_WORKERS='abc': must be an integer"),
    ({"NINJA_WORKERS": "0"}, "NINJA_WORKERS='0': must be at least 1"),
    ({"PORT": "70000"}, "PORT='70000': must be at most 65535"),
    ({"NINJA_REQUEST_TIMEOUT_S": "soon"}, "NINJA_REQUEST_TIMEOUT_S='soon': must be a number"),
    ({"NINJA_STATE_DIR": "/proc/self/nope"}, "NINJA_STATE_DIR='/proc/self/nope': cannot be created (No such file or directory)"),
])
def test_a_bad_setting_is_one_clear_line(env: dict[str, str], expected: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"python -m app: error: {expected}"


def test_a_bad_setting_under_plain_uvicorn_is_one_line_too() -> None:
    proc = subprocess.run([sys.executable, "-c", "import app.main"], cwd=ROOT,
                          env={**os.environ, "NINJA_WORKERS": "abc"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "invalid setting: NINJA_WORKERS='abc': must be an integer"


def test_every_sentence_the_app_writes_has_its_german() -> None:
    import ast

    import app.main  # noqa: F401 - imports every module, which registers its German templates
    from ninja_core.i18n import has_german

    missing, found = [], 0
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tr" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found += 1
                if not has_german(node.args[0].value):
                    missing.append(f"{path.name}: {node.args[0].value[:70]}")
    assert found > 30 and missing == []


def test_a_size_out_of_range_names_the_range_of_the_network_asked_for(client: TestClient) -> None:
    r = client.post("/api/runs", json={"batch_size": 5000})
    assert r.json()["message"] == "batch_size: must be an integer in 2..4096, got 5000"  # the MLP's
    r = client.post("/api/runs", json={"net": "wavenet", "batch_size": 5000})
    assert r.json()["message"] == "batch_size: must be an integer in 2..1024, got 5000"  # the WaveNet's


def test_stop_names_its_own_field_and_values_are_in_jsons_words(client: TestClient) -> None:
    r = client.post("/api/train/stop")
    assert r.status_code == 422 and r.json()["message"] == "stream_id: required field; fields: stream_id"
    r = client.post("/api/runs", json={"seed": True})
    assert r.status_code == 422 and r.json()["message"].endswith("got true")
