"""POST /api/runs/{id}/check and /grade: verdicts, code errors as 400, limits, concurrency."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.schemas import CheckVerdict, CodeErrorBody, GradeDocument
from app.settings import Settings
from ninja_core.config import Config as _Config
from ninja_core.nets import get_net

MLP_TAPE = get_net("mlp").tape(_Config())


def test_a_right_formula_is_exact(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "h", "code": "dh = dlogits @ W2.T"})
    assert r.status_code == 200
    v = CheckVerdict.model_validate(r.json())
    assert v.status == "exact" and v.passed and v.variable == "dh"
    assert v.figure is not None and len(v.figure["data"]) == 4
    assert v.figure["data"][1]["name"] == "dh (yours)"


def test_every_reference_formula_passes_over_http(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    for name in MLP_TAPE.backward_order:
        r = client.post(f"/api/runs/{default_run_doc['run_id']}/check",
                        json={"node": name, "code": MLP_TAPE.node_formula(name, "chain")})
        assert r.status_code == 200, (name, r.text)
        assert r.json()["status"] in ("exact", "approx"), name


def test_a_wrong_shape_is_diagnosed(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check",
                    json={"node": "bnmeani", "code": "dbnmeani = (-dbndiff).sum(0)"})
    v = r.json()
    assert v["status"] == "shape_mismatch" and v["shape"] == [64] and v["expected_shape"] == [1, 64]
    assert any("keepdim=True" in d for d in v["diagnosis"])


def test_alias_node_and_german_figure(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check",
                    json={"node": "a", "code": "da = dlogits @ W2.T", "lang": "de"})
    assert r.json()["node"] == "h" and r.json()["status"] == "exact"
    assert r.json()["figure"]["data"][1]["name"] == "dh (deins)"
    assert r.json()["figure"]["data"][3]["name"] == "|deins − autograd|"


@pytest.mark.parametrize(("code", "kind", "line"), [
    ("dh = dlogits @ W2", "runtime", 1),
    ("x = 1\ndh = nope * 2", "runtime", 2),
    ("import os", "forbidden", 1),
    ("dh = ().__class__", "forbidden", 1),
    ("dh = (", "syntax", 1),
    ("x = 1", "no_answer", None),
    ("for i in range(10**9):\n    pass", "limit", 1),
])
def test_code_errors_are_400_with_line_and_column(client: TestClient, default_run_doc: dict,  # type: ignore[type-arg]
                                                  code: str, kind: str, line: int | None) -> None:
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "h", "code": code})
    assert r.status_code == 400, r.text
    err = CodeErrorBody.model_validate(r.json())
    assert err.kind == kind and err.line == line
    assert "Traceback" not in r.text and "/work" not in r.text


def test_source_over_4kb_is_refused(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    code = "dh = dlogits @ W2.T\n" + "# padding\n" * 500
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "h", "code": code})
    assert r.status_code == 400 and r.json()["kind"] == "limit" and "4,096" in r.json()["message"]


def test_unknown_node_and_run(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "loss", "code": "1"})
    assert r.status_code == 422 and r.json()["field"] == "node" and "bnvar_inv" in r.json()["allowed"]
    assert "unknown node 'loss' for mlp; nodes: logprobs, probs" in r.json()["message"]
    assert "(26 names)" in r.json()["message"]
    gpt = client.post("/api/runs", json={"net": "gpt"}).json()["run_id"]
    r = client.post(f"/api/runs/{gpt}/check", json={"node": "att0", "code": "1"})
    # 121 nodes: the closest few in the message (all of them in `allowed`), not a banner of 121 names
    assert r.status_code == 422 and len(r.json()["allowed"]) == 121
    assert "the closest of its 121: att_0" in r.json()["message"] and "fcw_1" not in r.json()["message"]
    assert client.post("/api/runs/nope/check", json={"node": "h", "code": "1"}).status_code == 404


@pytest.mark.parametrize("body", [{}, {"node": "h"}, {"code": "1"}, {"node": "h", "code": 5}, {"node": "h", "code": "1", "x": 1}])
def test_malformed_bodies_are_422(client: TestClient, default_run_doc: dict, body: dict) -> None:  # type: ignore[type-arg]
    assert client.post(f"/api/runs/{default_run_doc['run_id']}/check", json=body).status_code == 422


def test_timeout_stops_the_work_and_the_server_stays_healthy(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    slow = "x = torch.zeros(256, 256)\nfor i in range(100000):\n    x = x @ x * 0.0\ndh = x"
    start = time.monotonic()
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "h", "code": slow})
    elapsed = time.monotonic() - start
    assert r.status_code == 400 and r.json()["kind"] in ("timeout", "limit")  # stopped by its own 2 s deadline
    # no hang: a bound that tells a stopped program from one that ran its 100 000 matmuls (minutes), not a
    # speed target (a busy machine must not fail it)
    assert elapsed < 30
    assert client.get("/healthz").status_code == 200


def test_grade_the_whole_exercise_cell(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/grade", json={"code": MLP_TAPE.exercise_cell()})
    doc = GradeDocument.model_validate(r.json())
    assert [row.name for row in doc.nodes] == list(MLP_TAPE.backward_order)
    assert doc.complete and doc.totals["passed"] == 26 and doc.totals["local_passed"] == 26


def test_grade_reports_where_a_cell_stops(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    cell = "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\ndprobs = oops / probs"
    doc = client.post(f"/api/runs/{default_run_doc['run_id']}/grade", json={"code": cell}).json()
    assert doc["complete"] is False and doc["error"]["line"] == 3
    rows = {row["name"]: row for row in doc["nodes"]}
    assert rows["logprobs"]["status"] == "exact" and rows["probs"]["status"] == "missing"


def test_too_many_concurrent_checks_get_429() -> None:
    settings = Settings(dojo_workers=1, dojo_queue=0)
    with TestClient(create_app(settings)) as c:
        run_id = c.post("/api/runs", json={}).json()["run_id"]
        slow = "x = torch.zeros(200, 200)\nfor i in range(100000):\n    x = x @ x * 0.0\ndh = x"
        codes: list[int] = []

        def send() -> None:
            codes.append(c.post(f"/api/runs/{run_id}/check", json={"node": "h", "code": slow}).status_code)

        threads = [threading.Thread(target=send) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 429 in codes and 400 in codes


# ---- issue 14 over HTTP: whole cells with the mistakes learners make -------------------------------

INDEX_ADD_DC = "dC.index_add_(0, Xb.view(-1), demb.view(-1, C.shape[1]))"


def grade_rows(client: TestClient, run_id: str, cell: str, **extra: str) -> dict:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{run_id}/grade", json={"code": cell, **extra})
    assert r.status_code == 200, r.text
    doc = GradeDocument.model_validate(r.json())
    return {row.name: row for row in doc.nodes}


def test_an_in_place_change_through_an_alias_is_named_over_http(client: TestClient,  # type: ignore[type-arg]
                                                                default_run_doc: dict) -> None:
    cell = MLP_TAPE.exercise_cell().replace("dhprebn = dbndiff.clone()", "dhprebn = dbndiff")
    rows = grade_rows(client, default_run_doc["run_id"], cell)
    bndiff = rows["bndiff"]
    assert bndiff.status == "mismatch" and bndiff.local_status in ("exact", "approx")
    first = bndiff.diagnosis[0]
    line_alias = cell.splitlines().index("dhprebn = dbndiff") + 1
    assert "was right when line" in first and f"line {line_alias} (dhprebn = dbndiff)" in first
    assert "share storage" in first and "dhprebn = dbndiff.clone()" in first
    assert not any("upstream" in d for d in bndiff.diagnosis)  # every upstream gradient is right: never blamed
    assert all(rows[n].status in ("exact", "approx") for n in ("bndiff2", "bnraw", "hprebn"))


def test_repeated_indices_are_named_over_http(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    cell = MLP_TAPE.exercise_cell().replace(INDEX_ADD_DC, "dC[Xb.view(-1)] += demb.view(-1, 10)")
    rows = grade_rows(client, default_run_doc["run_id"], cell)
    c = rows["C"]
    assert c.status == "mismatch" and c.local_status == "mismatch"
    assert "repeated indices keeps only one contribution per index" in c.diagnosis[0]
    assert "characters" in c.diagnosis[0] and "index_add_" in c.diagnosis[0] and "accumulate=True" in c.diagnosis[0]


def test_an_answer_that_only_holds_on_this_batch_is_caught_over_http(client: TestClient,  # type: ignore[type-arg]
                                                                     default_run_doc: dict) -> None:
    one_hot = "dC = F.one_hot(Xb).float().view(-1, C.shape[0]).T @ demb.view(-1, C.shape[1])"
    cell = MLP_TAPE.exercise_cell().replace(f"dC = torch.zeros_like(C)\n{INDEX_ADD_DC}", one_hot)
    rows = grade_rows(client, default_run_doc["run_id"], cell)
    c = rows["C"]
    assert c.status in ("exact", "approx")  # this batch holds the last letter, so one_hot happens to be 27 wide
    failing = [b for b in c.batches if not b.passed]
    assert failing and "num_classes" in " ".join(failing[0].diagnosis)
    assert any("on the minibatch of seed" in d and "pass num_classes=27" in d for d in c.diagnosis)
    # the same over /check: the verdict says where it fails and why
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "C", "code": one_hot})
    v = CheckVerdict.model_validate(r.json())
    assert v.passed and any(not b.passed for b in v.batches)
    assert any("F.one_hot without num_classes" in d for d in v.diagnosis)


def test_a_wrong_formula_gets_its_one_edit_fix_and_a_right_one_the_lens(client: TestClient,  # type: ignore[type-arg]
                                                                        default_run_doc: dict) -> None:
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check",
                    json={"node": "bndiff2", "code": "dbndiff2 = (1.0/n) * torch.ones_like(bndiff2) * dbnvar"})
    v = CheckVerdict.model_validate(r.json())
    assert v.fix is not None and v.fix.kind == "count" and v.fix.line == 1 and "use (n-1) instead of n" in v.fix.message
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check",
                    json={"node": "hpreact", "code": "dhpreact = (1.0 - h**2) * dh"})
    v = CheckVerdict.model_validate(r.json())
    assert v.status == "approx" and v.lens is not None
    lens = {row.standard: row for row in v.lens}
    assert set(lens) == {"torch.allclose", "torch.testing.assert_close", "torch.autograd.gradcheck", "jax check_grads",
                         "llm.c test_gpt2"}
    assert all(row.passed for row in v.lens)
    assert v.rounding is not None and v.rounding.proved is True and v.rounding.ulps >= 1


def test_verdicts_and_code_errors_in_german(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check",
                    json={"node": "bnmeani", "code": "dbnmeani = (-dbndiff).sum(0)", "lang": "de"})
    v = r.json()
    assert "keepdim=True fehlt" in v["diagnosis"][0] and "sollte" in v["diagnosis"][0]
    assert v["fix"]["message"].startswith("eine Änderung macht es richtig: ergänze keepdim=True")
    r = client.post(f"/api/runs/{default_run_doc['run_id']}/check", json={"node": "h", "code": "import os", "lang": "de"})
    assert r.status_code == 400 and r.json()["message"].startswith("Zeile 1, Spalte 1: import ist nicht erlaubt")


def test_lang_in_the_query_works_as_in_the_body(client: TestClient, default_run_doc: dict) -> None:  # type: ignore[type-arg]
    """?lang=de as every other endpoint takes it; a lang in the body wins."""
    url = f"/api/runs/{default_run_doc['run_id']}"
    check = {"node": "bnmeani", "code": "dbnmeani = (-dbndiff).sum(0)"}
    assert "keepdim=True fehlt" in client.post(f"{url}/check?lang=de", json=check).json()["diagnosis"][0]
    assert "keepdim=True fehlt" not in client.post(f"{url}/check?lang=de", json={**check, "lang": "en"}).json()["diagnosis"][0]
    cell = "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\ndprobs = dlogprobs * probs\n"
    de = {r["name"]: r for r in client.post(f"{url}/grade?lang=de", json={"code": cell}).json()["nodes"]}
    en = {r["name"]: r for r in client.post(f"{url}/grade", json={"code": cell}).json()["nodes"]}
    assert de["probs"]["diagnosis"][0].startswith("stimmt bei 96% der Einträge")
    assert en["probs"]["diagnosis"][0].startswith("matches on 96% of the entries")
    assert client.post(f"{url}/grade?lang=fr", json={"code": cell}).status_code == 422


# ---- issue 13 over HTTP: the GPT's classic backward mistakes and its source limits --------------------

GPT_TAPE = get_net("gpt").tape(_Config(net="gpt"))


@pytest.fixture(scope="module")
def gpt_run_id(client: TestClient) -> str:
    r = client.post("/api/runs", json={"net": "gpt"})
    assert r.status_code == 200, r.text
    return str(r.json()["run_id"])


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"node": "preatt_0", "code": "dpreatt_0 = att_0 * (1 - att_0) * datt_0"}, "mismatch",
     ("only the diagonal of its Jacobian", "far above rounding", "llm.c")),
    ({"node": "preatt_0", "code": "dpreatt_0 = dpreatt_masked_0.masked_fill(tril == 0, -torch.inf)"}, "mismatch",
     ("-inf belongs to the forward pass only",)),
    ({"node": "fch_0", "code": "dfch_0 = 0.5 * (1 + fch_tanh_0) * dfch_gelu_0"}, "mismatch", ("sech^2 term is missing",)),
    ({"node": "y_0", "code": "dy_0 = datty_0.view(B, nh, T, hs)"}, "mismatch", ("viewed straight",)),
    ({"node": "preatt_0", "code": "dpreatt_0 = dpreatt_masked_0.clone()"}, "exact", ("exact",)),  # no mask: right
])
def test_the_classic_gpt_mistakes_over_http(client: TestClient, gpt_run_id: str, body: dict, status: str,  # type: ignore[type-arg]
                                            words: tuple[str, ...]) -> None:
    r = client.post(f"/api/runs/{gpt_run_id}/check", json=body)
    assert r.status_code == 200, r.text
    v = CheckVerdict.model_validate(r.json())
    assert v.status == status
    text = " | ".join(v.diagnosis)
    for w in words:
        assert w in text, (w, text)
    if status == "exact":
        assert "mask" not in text


def test_the_forgotten_scale_is_named_over_http_in_both_languages(client: TestClient) -> None:
    run_id = client.post("/api/runs", json={"net": "gpt", "n_head": 8}).json()["run_id"]  # head size 4
    body = {"node": "scores_0", "code": "dscores_0 = dpreatt_0.clone()"}
    v = client.post(f"/api/runs/{run_id}/check", json=body).json()
    assert "factor scale = 1/sqrt(hs) of preatt_0 = scores_0 * scale is missing" in v["diagnosis"][0]
    assert "one branch counted twice?" not in " ".join(v["diagnosis"])
    de = client.post(f"/api/runs/{run_id}/check", json={**body, "lang": "de"}).json()
    assert "kein doppelt gezählter Zweig" in de["diagnosis"][0] and "fehlt" in de["diagnosis"][0]


def test_a_gpt_cell_grades_over_http_within_its_own_limit(client: TestClient) -> None:
    """The GPT's cell at n_layer 6 (19 KB) is over the MLP's 16 KiB and within the GPT's 40 KiB; longer is a
    400 naming the limit, and a body over the server's limit a 413."""
    run_id = client.post("/api/runs", json={"net": "gpt", "n_layer": 6}).json()["run_id"]
    cell = get_net("gpt").tape(_Config(net="gpt", n_layer=6)).exercise_cell()
    assert 16_384 < len(cell.encode()) < 40_960
    r = client.post(f"/api/runs/{run_id}/grade", json={"code": cell})
    assert r.status_code == 200, r.text[:300]
    assert GradeDocument.model_validate(r.json()).totals["passed"] == 321
    r = client.post(f"/api/runs/{run_id}/grade", json={"code": cell + "\n#" + "x" * (40_960 - len(cell))})
    assert r.status_code == 400 and r.json()["kind"] == "limit" and "40,960" in r.json()["message"]
    r = client.post(f"/api/runs/{run_id}/grade", json={"code": "#" * (70 * 1024)})
    assert r.status_code == 413 and "limit" in r.json()["message"]
    r = client.post(f"/api/runs/{run_id}/check", json={"node": "y_0", "code": "#" * 5000})
    assert r.status_code == 400 and "4,096" in r.json()["message"]
    mlp = client.post("/api/runs", json={}).json()["run_id"]
    r = client.post(f"/api/runs/{mlp}/grade", json={"code": cell})
    assert r.status_code == 400 and "16,384" in r.json()["message"]


def test_a_gpt_cell_with_a_classic_mistake_over_http(client: TestClient, gpt_run_id: str) -> None:
    cell = GPT_TAPE.exercise_cell().replace("dpreatt_1 = dpreatt_masked_1.masked_fill(tril == 0, 0)",
                                            "dpreatt_1 = dpreatt_masked_1.masked_fill(tril == 0, -torch.inf)")
    rows = grade_rows(client, gpt_run_id, cell)
    assert "-inf belongs to the forward pass only" in rows["preatt_1"].diagnosis[0]
    assert rows["preatt_1"].local_status == "mismatch" and rows["scores_1"].local_status in ("exact", "approx")


def test_the_schema_states_each_networks_source_limit(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert "gpt: 40,960" in schemas["GradeRequest"]["properties"]["code"]["description"]
    assert "mlp, wavenet: 16,384" in schemas["GradeRequest"]["properties"]["code"]["description"]
    assert "4,096" in schemas["CheckRequest"]["properties"]["code"]["description"]
