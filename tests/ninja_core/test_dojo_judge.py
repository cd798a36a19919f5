"""check_node and grade_cell: the reference formulas pass, verdicts are JSON, cells are judged per node."""

from __future__ import annotations

import json
import re

import pytest
import torch

from ninja_core.config import Config
from ninja_core.config import Config as _Config
from ninja_core.data import Dataset
from ninja_core.dojo.errors import DojoError, UnknownNodeError
from ninja_core.dojo.grade import grade_cell
from ninja_core.dojo.judge import LAST_EXPRESSION, check_node
from ninja_core.dojo.scope import node_scope
from ninja_core.nets import get_net
from ninja_core.run import Run, check

MLP_TAPE = get_net("mlp").tape(_Config())

NODES = MLP_TAPE.backward_order
LECTURE_DC_LOOP = """dC = torch.zeros_like(C)
for k in range(Xb.shape[0]):
    for j in range(Xb.shape[1]):
        ix = Xb[k, j]
        dC[ix] += demb[k, j]"""
INDEX_ADD_DC = "dC = torch.zeros_like(C)\ndC.index_add_(0, Xb.view(-1), demb.view(-1, C.shape[1]))"


@pytest.fixture(scope="module")
def float64_run(dataset: Dataset) -> Run:
    return check(Config(dtype="float64"), dataset)


@pytest.mark.parametrize("node", NODES)
def test_every_chain_reference_formula_passes_through_the_dojo(default_run: Run, node: str) -> None:
    verdict = check_node(default_run, node, MLP_TAPE.node_formula(node, "chain"))
    assert verdict.status in ("exact", "approx"), (node, verdict.diagnosis)
    assert verdict.variable == f"d{node}"


@pytest.mark.parametrize("node", NODES)
def test_reference_formulas_pass_in_float64_too(float64_run: Run, node: str) -> None:
    verdict = check_node(float64_run, node, MLP_TAPE.node_formula(node, "chain"), figure=False)
    assert verdict.passed and (verdict.comparison.maxdiff or 0.0) < 1e-12, node


@pytest.mark.parametrize("block", MLP_TAPE.fused, ids=lambda b: b.name)
def test_fused_formulas_pass_as_approx(default_run: Run, block: object) -> None:
    verdict = check_node(default_run, block.wrt, block.formula)  # type: ignore[attr-defined]
    assert verdict.status in ("exact", "approx")


def test_the_lectures_dC_double_loop_passes_exactly(default_run: Run) -> None:
    verdict = check_node(default_run, "C", LECTURE_DC_LOOP)
    assert verdict.status == "exact"


def test_scope_holds_only_true_gradients_downstream_of_the_node(default_run: Run) -> None:
    scope = node_scope(default_run, "h")
    assert "dlogits" in scope and "dloss" in scope and "dh" not in scope and "da" not in scope
    assert "dhpreact" not in scope and "dW2" not in scope  # dW2 is a sibling branch, not downstream
    assert {"Xb", "Yb", "n", "W2", "a", "zprebn", "apreact"} <= set(scope.names())
    assert torch.equal(scope.get("dlogits"), default_run.autograd["logits"])
    assert MLP_TAPE.downstream("logits")[-1] == "loss" and "h" not in MLP_TAPE.downstream("logits")
    assert "da" in node_scope(default_run, "hpreact")  # the seed notebook's alias of dh


def test_aliases_work_for_the_node_and_the_answer(default_run: Run) -> None:
    verdict = check_node(default_run, "a", "da = dlogits @ W2.T")
    assert verdict.node == "h" and verdict.variable == "da" and verdict.status == "exact"
    assert check_node(default_run, "apreact", "dapreact = (1.0 - a**2) * da").passed


def test_the_last_expression_is_the_answer_when_nothing_is_assigned(default_run: Run) -> None:
    verdict = check_node(default_run, "h", "tmp = W2.T\ndlogits @ tmp")
    assert verdict.variable == LAST_EXPRESSION and verdict.status == "exact"


def test_no_answer_is_an_error_that_says_what_to_assign(default_run: Run) -> None:
    with pytest.raises(DojoError) as info:
        check_node(default_run, "h", "x = 1")
    assert info.value.kind == "no_answer" and "dh" in info.value.message


def test_unknown_node_is_a_distinct_value_error(default_run: Run) -> None:
    with pytest.raises(UnknownNodeError):
        check_node(default_run, "loss", "dloss = 1")
    with pytest.raises(ValueError, match="unknown node"):
        check_node(default_run, "nope", "dnope = 1")


def test_user_code_cannot_change_the_run(default_run: Run) -> None:
    before = {k: v.clone() for k, v in default_run.values.items() if isinstance(v, torch.Tensor)}
    grads = {k: v.clone() for k, v in default_run.autograd.items()}
    check_node(default_run, "h", "dlogits.zero_()\nh.mul_(0)\nW2 += 1\nXb[0] = 0\ndh = dlogits @ W2.T")
    assert all(torch.equal(default_run.values[k], v) for k, v in before.items())
    assert all(torch.equal(default_run.autograd[k], v) for k, v in grads.items())


def test_verdict_json_has_the_issues_fields_and_only_json_types(default_run: Run) -> None:
    verdict = check_node(default_run, "h", "print(dlogits.shape)\ndh = dlogits @ W2.T")
    body = verdict.to_dict()
    for key in ("status", "exact", "approx", "maxdiff", "relerr", "shape", "expected_shape", "diagnosis", "figure"):
        assert key in body
    assert body["shape"] == [32, 64] and body["expected_shape"] == [32, 64]
    assert body["output"] == ["torch.Size([32, 27])"]
    assert body["figure"]["layout"]["meta"]["node"] == "h"
    assert "yours" in body["figure"]["data"][1]["name"]
    json.dumps(body, allow_nan=False)
    assert "figure" not in verdict.to_dict(figure=False)


def test_non_finite_numbers_become_none_with_a_flag(default_run: Run) -> None:
    verdict = check_node(default_run, "probs", "dprobs = dlogprobs / (probs - probs)", figure=False)
    body = verdict.to_dict()
    assert body["maxdiff"] is None and "maxdiff" in body["nonfinite"]
    json.dumps(body, allow_nan=False)


def test_median_check_is_fast_enough_to_serve(default_run: Run) -> None:
    # Not a timing assertion on speed, only a sanity bound far above the measured ~0.4 ms.
    import time

    start = time.perf_counter()
    for _ in range(20):
        check_node(default_run, "h", "dh = dlogits @ W2.T")
    assert (time.perf_counter() - start) / 20 < 0.5


# ---- whole cells --------------------------------------------------------------------------------

def test_the_whole_exercise_cell_grades_26_of_26(default_run: Run) -> None:
    report = grade_cell(default_run, MLP_TAPE.exercise_cell())
    assert [row.name for row in report.rows] == list(NODES)
    assert all(row.status in ("exact", "approx") for row in report.rows)
    assert all(row.local_status in ("exact", "approx") for row in report.rows)
    assert report.totals["passed"] == 26 and report.totals["local_passed"] == 26 and report.complete
    body = report.to_dict()
    json.dumps(body, allow_nan=False)
    assert body["nodes"][0]["lines"] == [1, 2]  # dlogprobs: zeros_like and the indexed assignment


def test_the_cell_with_the_lectures_dC_loop(default_run: Run) -> None:
    report = grade_cell(default_run, MLP_TAPE.exercise_cell().replace(INDEX_ADD_DC, LECTURE_DC_LOOP))
    row = report.rows[-1]
    assert row.name == "C" and row.status in ("exact", "approx") and row.local_status == "exact"
    assert len(row.lines) == 5


def test_a_wrong_line_is_told_apart_from_a_right_line_fed_a_wrong_gradient(default_run: Run) -> None:
    cell = MLP_TAPE.exercise_cell().replace("dcounts += torch.ones_like(counts) * dcounts_sum\n", "")
    report = grade_cell(default_run, cell)
    rows = {row.name: row for row in report.rows}
    assert rows["counts"].status == "mismatch" and rows["counts"].local_status == "mismatch"
    assert "the branch from counts_sum (+=) is missing" in rows["counts"].diagnosis[0]
    assert rows["norm_logits"].status == "mismatch" and rows["norm_logits"].local_status == "exact"
    assert "dcounts" in rows["norm_logits"].diagnosis[0] and "upstream" in rows["norm_logits"].diagnosis[0]
    assert rows["probs"].status == "exact"  # upstream of the mistake: untouched


def test_a_runtime_error_stops_the_cell_but_earlier_nodes_and_all_locals_are_judged(default_run: Run) -> None:
    cell = MLP_TAPE.exercise_cell().replace("dh = dlogits @ W2.T", "dh = dlogits @ W2")
    report = grade_cell(default_run, cell)
    assert report.error is not None and report.error.kind == "runtime" and not report.complete
    line = cell.splitlines().index("dh = dlogits @ W2") + 1
    assert report.error.line == line
    rows = {row.name: row for row in report.rows}
    assert rows["logits"].status == "exact"  # defined before the failing line
    assert rows["W2"].status == "missing" and "not reached" in rows["W2"].diagnosis[0]
    assert rows["W2"].local_status == "exact"  # its own line is right, judged on its own
    assert rows["h"].local_status == "error" and rows["h"].local_error is not None
    assert report.to_dict()["error"]["line"] == line


def test_a_cell_may_use_the_seed_notebooks_names(default_run: Run) -> None:
    cell = re.sub(r"\bdh\b", "da", re.sub(r"\bdhpreact\b", "dapreact", MLP_TAPE.exercise_cell()))
    cell = cell.replace("dapreact = (1.0 - h**2) * da", "dapreact = (1.0 - a**2) * da")
    assert "dapreact = (1.0 - a**2) * da" in cell and "dbnbias = dapreact.sum(0, keepdim=True)" in cell
    report = grade_cell(default_run, cell)
    rows = {row.name: row for row in report.rows}
    assert rows["h"].variable == "da" and rows["hpreact"].variable == "dapreact"
    assert report.totals["passed"] == 26


def test_undefined_nodes_are_missing_and_typos_are_pointed_out(default_run: Run) -> None:
    report = grade_cell(default_run, "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\n"
                                     "dlogit_maxe = torch.zeros(n, 1)")
    assert report.totals["passed"] == 1 and report.totals["missing"] == 25
    assert any("did you mean dlogit_maxes" in note for note in report.notes)
    assert report.rows[1].diagnosis == ["not defined: the cell never assigns dprobs"]


def test_a_forbidden_cell_is_refused_before_anything_runs(default_run: Run) -> None:
    with pytest.raises(DojoError) as info:
        grade_cell(default_run, MLP_TAPE.exercise_cell() + "\nimport os")
    assert info.value.kind == "forbidden" and info.value.line == len(MLP_TAPE.exercise_cell().splitlines()) + 1


def test_grade_scope_has_no_true_gradients(default_run: Run) -> None:
    report = grade_cell(default_run, "dh = dlogits @ W2.T")
    assert report.error is not None and "dlogits" in report.error.message


# The seed notebook's own cell (In [74]), pasted as it is: German comments, cmp(...) lines with
# strings, and its naming trap -- it defines both dh and da, and its da is d(apreact).
SEED_CELL = '''dlogprobs = torch.zeros_like(logprobs) # loss = -logprobs[range(n), Yb].mean()
dlogprobs[range(n), Yb] = -1.0 / n
dprobs = (1.0 / probs) * dlogprobs # logprobs = probs.log()
dcounts_sum_inv = (counts * dprobs).sum(dim=1, keepdim=True) # nach "counts_sum_inv" ableiten
dcounts = counts_sum_inv * dprobs
dcounts_sum = (-counts_sum ** -2) * dcounts_sum_inv
dcounts += torch.ones_like(counts) * dcounts_sum # hier kommt += rein, weiterer Ableitungszweig
dnorm_logits = counts * dcounts
dlogits = dnorm_logits.clone()
dlogit_maxes = -dlogits.sum(dim=1, keepdim=True)
dlogits += F.one_hot(logits.max(dim=1).indices, num_classes=logits.shape[1]) * dlogit_maxes
dh = dlogits @ W2.T
dW2 = a.T @ dlogits
db2 = dlogits.sum(dim=0)
da = (1.0 - a**2) * dh
dbngain = (bnraw * da).sum(dim=0, keepdim=True)
dbnraw = bngain * da
dbnbias = da.sum(dim=0, keepdim=True)
dbnvar_inv = (bndiff * dbnraw).sum(dim=0, keepdim=True)
dbnvar = (-0.5 * (bnvar + 1e-5)**-1.5) * dbnvar_inv
dbndiff2 = (1.0/(n-1)) * torch.ones_like(bndiff2) * dbnvar

cmp("logprobs", dlogprobs, logprobs)
cmp("dh", dh, zprebn)
cmp("da", da, a)
'''


def test_the_seed_notebooks_cell_is_graded_by_node_not_by_its_labels(default_run: Run) -> None:
    report = grade_cell(default_run, SEED_CELL)
    rows = {row.name: row for row in report.rows}
    assert report.totals["passed"] == 17 and report.totals["local_passed"] == 17
    assert rows["h"].variable == "dh" and rows["h"].status == "exact"
    # its da is d(apreact), not dh's alias: the table says where it is instead of judging it as dh
    assert rows["hpreact"].status == "missing"
    assert "your da holds this gradient" in rows["hpreact"].diagnosis[0]  # the telling line first (issue 14, item 7)
    # and the steps that read its da are judged locally with its own da, made from autograd's dh
    assert rows["bngain"].local_status in ("exact", "approx")
    assert any("cmp(...) lines were skipped" in note for note in report.notes)


def test_a_cell_that_runs_too_long_is_stopped_and_still_reported(default_run: Run) -> None:
    import time

    from ninja_core.dojo.limits import Limits

    busy = "\nfor i in range(99_999):\n    dC = dC * 1.0 + torch.ones(1000, 100).sum() * 0"
    started = time.perf_counter()
    report = grade_cell(default_run, MLP_TAPE.exercise_cell() + busy, limits=Limits(seconds=0.5))
    assert time.perf_counter() - started < 2.0  # 0.5 s for the code in all, plus judging
    assert report.error is not None and report.error.kind == "timeout"
    rows = {row.name: row for row in report.rows}
    assert rows["h"].status == "exact"  # judged: it ran before the loop
    assert rows["C"].local_status == "error" and rows["C"].local_error is not None
    assert rows["C"].local_error.kind == "timeout"


# ---- in a notebook (issue 11, item 7) ---------------------------------------------------------------

def test_a_verdict_shows_compactly_in_a_notebook(default_run: Run) -> None:
    verdict = check_node(default_run, "bnmeani", "dbnmeani = (-dbndiff).sum(0)")  # with its figure
    text = repr(verdict)
    assert len(text) < 400 and "base64" not in text and "bdata" not in text
    assert text.startswith("<Verdict dbnmeani: shape_mismatch") and "keepdim=True is missing" in text
    page = verdict._repr_html_()
    assert page.startswith("<table>") and "<code>dbnmeani</code>" in page and "keepdim=True is missing" in page
    assert len(page) < 5000 and "base64" not in page


def test_a_grade_report_shows_as_a_table_in_a_notebook(default_run: Run) -> None:
    report = grade_cell(default_run, MLP_TAPE.exercise_cell().replace("dhprebn = dbndiff.clone()", "dhprebn = dbndiff"))
    assert repr(report) == report.table() and repr(report).startswith("25/26 right end to end")
    page = report._repr_html_()
    assert page.startswith("<table><caption>25/26 right end to end") and page.count("<tr>") == 27
    assert "share storage" in page  # the telling line of the wrong row
    assert "Ende-zu-Ende" in report.html(lang="de")


def test_verdict_json_carries_fix_lens_rounding_and_batches(default_run: Run) -> None:
    right = check_node(default_run, "hpreact", "dhpreact = (1.0 - h**2) * dh", figure=False).to_dict(figure=False)
    assert right["fix"] is None and len(right["batches"]) == 3 and all(b["passed"] for b in right["batches"])
    assert right["rounding"]["proved"] is True and right["rounding"]["ulps"] >= 1 and len(right["rounding"]["index"]) == 2
    assert {row["standard"] for row in right["lens"]} >= {"torch.testing.assert_close", "llm.c test_gpt2"}
    json.dumps(right, allow_nan=False)
    wrong = check_node(default_run, "W2", "dW2 = dlogits.T @ h", figure=False).to_dict(figure=False)
    assert wrong["fix"]["kind"] == "transpose" and wrong["lens"] is None and wrong["batches"] == []
    json.dumps(wrong, allow_nan=False)


def test_an_approx_answer_that_is_not_rounding_is_told_apart(default_run: Run) -> None:
    # b1's gradient is zero in exact arithmetic: a sign-flipped answer passes allclose, and the float64
    # rerun shows whether it is the formula or rounding
    verdict = check_node(default_run, "b1", "db1 = -dhprebn.sum(0)", figure=False)
    assert verdict.status == "approx" and verdict.rounding is not None
    assert any("rerun in float64" in d for d in verdict.diagnosis)


def test_a_row_not_reached_names_what_its_own_lines_get_in_words(default_run: Run) -> None:
    """Issue 11, item 8: no raw status keys ("your dbndiff2 is mismatch"); the cause, as the dojo names it."""
    cell = MLP_TAPE.exercise_cell().replace("dh = dlogits @ W2.T", "dh = dlogits @ W2").replace(
        "dbndiff2 = (1.0/(n-1)) * torch.ones_like(bndiff2) * dbnvar", "dbndiff2 = (1.0/n) * torch.ones_like(bndiff2) * dbnvar")
    assert "dbndiff2 = (1.0/n)" in cell
    rows = {row.name: row for row in grade_cell(default_run, cell).rows}
    row = rows["bndiff2"]
    assert row.status == "missing" and row.local_status == "mismatch"
    assert row.diagnosis[0].startswith("not reached: the cell stopped at line")
    assert "your dbndiff2 is wrong: off by a factor of 0.9688 (= (n-1)/n)" in row.diagnosis[1]
    assert not any(f"is {key}" in d for d in row.diagnosis for key in ("mismatch", "shape_mismatch", "exact", "approx"))
    assert "your dbnvar is right up to rounding" in rows["bnvar"].diagnosis[1] or "is exact" in rows["bnvar"].diagnosis[1]
