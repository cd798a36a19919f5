"""The GPT's reference formulas through the generic dojo (check_node, grade_cell) and the CLI."""

from __future__ import annotations

import json

import pytest

from ninja_core.cli import main
from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.dojo import DojoError, source_limits
from ninja_core.dojo.grade import grade_cell
from ninja_core.dojo.judge import check_node
from ninja_core.dojo.limits import DEFAULT_LIMITS
from ninja_core.nets import NETS, get_net
from ninja_core.run import Run, check
from tests.ninja_core.test_dojo_german import assert_german

TAPE = get_net("gpt").tape(Config(net="gpt"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")



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
    for v in (verdict, verdict32):  # a right formula is never taken for one of the classic mistakes (dojo/ops.py)
        assert not any("typical mistake" in d for d in v.diagnosis), (wrt, v.diagnosis)


@pytest.mark.parametrize("fixture", ["gpt_run", "gpt_run64"])
def test_the_whole_reference_cell_grades_121_of_121(fixture: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(fixture)
    cell = TAPE.exercise_cell()
    assert len(cell.encode()) > DEFAULT_LIMITS.source_bytes  # the GPT's own limits apply by default
    report = grade_cell(run, cell)
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


def test_the_source_limits_fit_each_network(dataset: Dataset) -> None:
    """Twice the longest reference (a node's formula, the whole cell at the largest sizes), in whole
    4 KiB, at least 4 KiB / 16 KiB: the GPT's cell grows with n_layer (4 KB at 1 layer, 19 KB at 6)."""
    for net in NETS.values():
        limits = source_limits(net)
        assert limits.node >= max(4096, 2 * limits.reference_node) and limits.node % 4096 == 0
        assert limits.cell >= max(16_384, 2 * limits.reference_cell) and limits.cell % 4096 == 0
    gpt = source_limits(get_net("gpt"))
    six = get_net("gpt").tape(Config(net="gpt", n_layer=6)).exercise_cell()
    assert gpt.reference_cell == len(six.encode()) > 16_384 and gpt.cell == 40_960
    assert source_limits(get_net("mlp")).cell == source_limits(get_net("wavenet")).cell == 16_384
    run6 = check(Config(net="gpt", n_layer=6), dataset)
    report = grade_cell(run6, six + "\n# " + "x" * (gpt.cell - len(six.encode()) - 4))  # right at the limit
    assert report.totals["passed"] == 321
    with pytest.raises(DojoError) as info:
        grade_cell(run6, six + "\n# " + "x" * (gpt.cell - len(six.encode())))
    assert info.value.kind == "limit" and "40,960" in info.value.message
    with pytest.raises(DojoError) as info:
        check_node(run6, "y_0", "dy_0 = datty_0.view(B, T, nh, hs).transpose(1, 2)\n#" + "x" * 4096)
    assert info.value.kind == "limit" and "4,096" in info.value.message


def test_the_gelu_of_the_erf_form_is_named_even_where_allclose_passes_it(dataset: Dataset) -> None:
    """At n_embd 16 the erf form's derivative is within allclose of the tanh form's: 'approx', yet the
    verdict names the mistake, and the float64 rerun says it is more than rounding."""
    run = check(Config(net="gpt", n_embd=16, n_head=2), dataset)
    code = ("dfch_0 = (0.5 * (1 + torch.erf(fch_0 / 2**0.5)) + fch_0 * torch.exp(-fch_0**2 / 2) / (2 * torch.pi)**0.5)"
            " * dfch_gelu_0")
    verdict = check_node(run, "fch_0", code, figure=False)
    assert verdict.status == "approx"
    assert verdict.diagnosis[0].startswith("approx, yet nearer to a typical mistake") and "exact GELU" in \
        verdict.diagnosis[0]
    assert any("more than rounding" in d for d in verdict.diagnosis)
    assert verdict.rounding is not None and verdict.rounding["proved"] is False
    german = verdict.to_dict(figure=False, lang="de")["diagnosis"]
    assert german[0].startswith("approx, aber näher an einem typischen Fehler")
    assert_german(german)
