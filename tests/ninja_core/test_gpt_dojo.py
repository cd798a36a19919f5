"""The GPT's reference formulas through the generic dojo (check_node, grade_cell) and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import torch

from ninja_core.cli import main
from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.dojo.grade import grade_cell
from ninja_core.dojo.judge import check_node
from ninja_core.dojo.limits import DEFAULT_LIMITS, Limits
from ninja_core.nets import get_net
from ninja_core.run import Run, check

TAPE = get_net("gpt").tape(Config(net="gpt"))
# The whole GPT cell is ~7 KB (2 layers): over the dojo's default 4 KB source limit, which was sized for the MLP.
CELL_LIMITS = Limits(source_bytes=16_384, seconds=10.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def gpt_run(dataset: Dataset) -> Run:
    return check(Config(net="gpt"), dataset)


@pytest.fixture(scope="module")
def gpt_run64(dataset: Dataset) -> Run:
    return check(Config(net="gpt", dtype="float64"), dataset)


@pytest.mark.parametrize("node", TAPE.backward_order)
def test_every_chain_reference_formula_is_exact_in_the_dojo(gpt_run: Run, node: str) -> None:
    verdict = check_node(gpt_run, node, TAPE.node_formula(node, "chain"), figure=False)
    assert verdict.status == "exact", (node, verdict.diagnosis)
    assert verdict.variable == f"d{node}"


def test_every_chain_reference_formula_passes_in_float64(gpt_run64: Run) -> None:
    for node in TAPE.backward_order:
        verdict = check_node(gpt_run64, node, TAPE.node_formula(node, "chain"), figure=False)
        assert verdict.passed and (verdict.comparison.maxdiff or 0.0) <= 1e-12, node


@pytest.mark.parametrize("block", TAPE.fused, ids=lambda b: b.name)
def test_every_fused_formula_passes(gpt_run: Run, gpt_run64: Run, block: object) -> None:
    wrt = block.wrt  # type: ignore[attr-defined]
    formula = TAPE.node_formula(wrt, "fused")  # with the residual branch beside a layernorm
    verdict = check_node(gpt_run64, wrt, formula, figure=False)
    assert verdict.passed and (verdict.comparison.maxdiff or 0.0) <= 1e-12, (wrt, verdict.diagnosis)
    verdict32 = check_node(gpt_run, wrt, formula, figure=False)
    assert verdict32.comparison.relerr is not None and verdict32.comparison.relerr < 1e-5, wrt


@pytest.mark.parametrize("fixture", ["gpt_run", "gpt_run64"])
def test_the_whole_reference_cell_grades_121_of_121(fixture: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(fixture)
    cell = TAPE.exercise_cell()
    assert len(cell.encode()) > DEFAULT_LIMITS.source_bytes  # why CELL_LIMITS: see there
    report = grade_cell(run, cell, limits=CELL_LIMITS)
    assert report.error is None and report.complete
    assert [row.name for row in report.rows] == list(TAPE.backward_order)
    assert {row.name: row.status for row in report.rows if row.status != "exact"} == {}
    assert {row.name: row.local_status for row in report.rows if row.local_status != "exact"} == {}
    assert report.totals["passed"] == report.totals["local_passed"] == 121
    json.dumps(report.to_dict(), allow_nan=False)


def test_the_lectures_tanh_formula_is_right_but_rounds(gpt_run: Run) -> None:
    verdict = check_node(gpt_run, "fch_inner_0", "dfch_inner_0 = (1.0 - fch_tanh_0**2) * dfch_tanh_0", figure=False)
    assert verdict.status == "approx"


def test_a_wrong_gradient_is_caught(gpt_run: Run) -> None:
    """The dojo has teeth on the GPT too: the softmax backward without its row-sum term is wrong."""
    verdict = check_node(gpt_run, "preatt_0", "dpreatt_0 = att_0 * (1 - att_0) * datt_0", figure=False)
    assert verdict.status == "mismatch"


def test_cli_check_runs_the_gpt(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--net", "gpt", "--json", "--no-gradcheck"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["net"] == "gpt" and doc["config"]["n_head"] == 4 and "n_hidden" not in doc["config"]
    assert len(doc["nodes"]) == 121 and {n["status"] for n in doc["nodes"]} == {"exact"}


@pytest.mark.parametrize(("argv", "phrase"), [
    (["--n-embd", "30"], "n_embd 30 is not divisible by n_head 4"),
    (["--block-size", "40"], "block_size 40 is beyond the position table"),
    (["--n-hidden", "64"], "gpt has no n_hidden"),
])
def test_cli_bad_sizes_exit_2_naming_the_rule(argv: list[str], phrase: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--net", "gpt", "--no-gradcheck", *argv]) == 2
    assert phrase in capsys.readouterr().err
