"""The classic transformer-backward mistakes learners report in public (issue 13), typed into the dojo for
the GPT's nodes with their typical wrong formula: each must come back with the diagnosis that names it,
one node at a time and (for a few) in a whole exercise cell, in English and in German. Leaving the causal
mask out of the backward is *not* a mistake (autograd's gradient is 0 there already) and is never flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.dojo import DojoError, check_node, grade_cell
from ninja_core.dojo.ops import MAKERS
from ninja_core.run import Run, check
from tests.ninja_core.test_dojo_german import assert_german

FAR = "far above rounding"  # the verdict says so when llm.c's 2e-2 would pass a wrong answer


@dataclass(frozen=True)
class Mistake:
    run: str  # "gpt" (defaults: head size 8), "hs4" (n_head 8: head size 4, the scale is exactly 1/2) or "t4"
    # (block_size 4 = n_head: heads and time swapped keep the shape)
    node: str
    code: str
    status: str  # mismatch, shape_mismatch (or exact / approx for what must not be flagged)
    words: tuple[str, ...]  # the diagnosis must contain each
    kind: str  # the operation whose mistake it is (an Op kind), or "generic" for findings any network gets
    absent: tuple[str, ...] = ()  # the diagnosis must not contain any
    source: str = ""  # where people report it (the same slip in a forward pass, for the heads)


LN_RIGHT = "ln2_rstd_0 * (ln2w_0*dln2_0 - (ln2w_0*dln2_0).mean(-1, keepdim=True) - ln2_norm_0 * (ln2w_0*dln2_0*ln2_norm_0)" \
    ".mean(-1, keepdim=True))"
SOFTMAX = "att_0 * (datt_0 - (att_0 * datt_0).sum(-1, keepdim=True))"
GELU_ERF = ("dfch_0 = (0.5 * (1 + torch.erf(fch_0 / 2**0.5)) + fch_0 * torch.exp(-fch_0**2 / 2) / (2 * torch.pi)**0.5)"
            " * dfch_gelu_0")

MISTAKES: list[Mistake] = [
    # att @ v's backward with v not transposed: with T = head size (8) the shapes agree, so only the
    # one-edit search can say what is wrong (.T of a 4-D tensor would reverse every dim)
    Mistake("gpt", "att_0", "datt_0 = dy_0 @ v_0", "mismatch",
            ("one edit makes it right: add .transpose(-2, -1) after v_0 at line 1, column 20",), "generic"),
    # softmax: only the diagonal s(1-s) of the Jacobian (llm.c's attention_backward has the row sum)
    Mistake("gpt", "preatt_0", "dpreatt_0 = att_0 * (1 - att_0) * datt_0", "mismatch",
            ("only the diagonal of its Jacobian", "row-sum term is missing", FAR, "llm.c"), "softmax",
            source="deeplearning4j/libnd4j#440, Apiquet/DeepLearningFrameworkFromScratchCpp#1"),
    Mistake("gpt", "preatt_masked_0", "dpreatt_masked_0 = att_0 * (1 - att_0) * datt_0", "mismatch",
            ("only the diagonal of its Jacobian", "row-sum term is missing"), "softmax"),
    Mistake("gpt", "preatt_1", "dpreatt_1 = att_1 * (datt_1 - (att_1 * datt_1).sum(-2, keepdim=True))", "mismatch",
            ("runs over another dim than the softmax", "sum(-1, keepdim=True)"), "softmax"),
    # the causal mask in the backward: -inf copied onto the gradient, or the wrong triangle kept
    Mistake("gpt", "preatt_0", "dpreatt_0 = dpreatt_masked_0.masked_fill(tril == 0, -torch.inf)", "mismatch",
            ("-inf belongs to the forward pass only", "their gradient is 0", "masked_fill(tril == 0, 0)"),
            "causal_mask", ("overflow",)),
    Mistake("gpt", "preatt_0", f"dpreatt_0 = ({SOFTMAX}).masked_fill(tril == 0, -torch.inf)", "mismatch",
            ("-inf belongs to the forward pass only",), "causal_mask"),
    Mistake("gpt", "preatt_0", "dpreatt_0 = dpreatt_masked_0.masked_fill(tril.T == 0, 0)", "mismatch",
            ("keeps the wrong entries", "the upper triangle", FAR), "causal_mask"),
    Mistake("gpt", "preatt_1", "dpreatt_1 = dpreatt_masked_1 * torch.triu(torch.ones(T, T))", "mismatch",
            ("keeps the wrong entries", "the upper triangle"), "causal_mask"),
    Mistake("gpt", "preatt_0", "dpreatt_0 = dpreatt_masked_0 * torch.tril(torch.ones(T, T), -1)", "mismatch",
            ("keeps the wrong entries", "diagonal is zeroed too"), "causal_mask"),
    Mistake("gpt", "preatt_0", "dpreatt_0 = dpreatt_masked_0.masked_fill(tril == 1, 0)", "mismatch",
            ("all zeros", "masked_fill(tril == 1, 0) would do this", "== 0 belongs there"), "causal_mask"),
    # GELU: the erf form's derivative for the tanh forward, or no sech^2 term
    Mistake("gpt", "fch_0", GELU_ERF, "mismatch", ("exact GELU", "erf", "tanh approximation", FAR), "gelu_tanh"),
    Mistake("gpt", "fch_1", "dfch_1 = 0.5 * (1 + fch_tanh_1) * dfch_gelu_1", "mismatch",
            ("sech^2 term is missing", "1 - tanh(u)**2"), "gelu_tanh"),
    Mistake("gpt", "fch_0", "dfch_0 = (0.5 * (1 + fch_tanh_0) + 0.5 * fch_0 * (1 - fch_tanh_0**2)) * dfch_gelu_0",
            "mismatch", ("inner derivative", "is missing from the sech^2 term"), "gelu_tanh"),
    # layernorm: no mean term, no normalised-mean term, n-1 where the forward divides by C
    Mistake("gpt", "residual2_0", "dresidual2_0 = dresidual3_0.clone()\ndresidual2_0 += ln2_rstd_0 * (ln2w_0*dln2_0 - "
            "ln2_norm_0 * (ln2w_0*dln2_0*ln2_norm_0).mean(-1, keepdim=True))", "mismatch",
            ("misses its mean term", "dnorm = ln2w_0 * dln2_0", FAR), "layernorm"),
    Mistake("gpt", "residual2_0", "dresidual2_0 = dresidual3_0.clone()\ndresidual2_0 += ln2_rstd_0 * (ln2w_0*dln2_0 - "
            "(ln2w_0*dln2_0).mean(-1, keepdim=True))", "mismatch", ("misses its normalised-mean term",), "layernorm"),
    Mistake("gpt", "residual3_1", "dresidual3_1 = lnf_rstd * lnfw * dlnf", "mismatch",
            ("treats the mean and lnf_rstd as constants",), "layernorm"),
    Mistake("gpt", "residual2_0", "dresidual2_0 = dresidual3_0.clone()\ndresidual2_0 += ln2_rstd_0 * (ln2w_0*dln2_0 - "
            "(ln2w_0*dln2_0).mean(-1, keepdim=True) - C/(C-1) * ln2_norm_0 * (ln2w_0*dln2_0*ln2_norm_0).mean(-1, "
            "keepdim=True))", "mismatch", ("n-1 used where the forward divides by C", "biased", "1/C = 1/32"),
            "layernorm"),
    Mistake("gpt", "ln1_diff2_0", "dln1_diff2_0 = torch.ones_like(ln1_diff2_0) * dln1_var_0 / (C-1)", "mismatch",
            ("n-1 used where the forward divides by C",), "layernorm", ("B-1",)),
    Mistake("gpt", "residual2_0", "dresidual2_0 = dresidual3_0.clone()\ndresidual2_0 += ln2_rstd_0 * (dln2_0 - "
            "dln2_0.mean(-1, keepdim=True) - ln2_norm_0 * (dln2_0*ln2_norm_0).mean(-1, keepdim=True))", "mismatch",
            ("gain ln2w_0 is missing",), "layernorm"),
    # the scale 1/sqrt(hs) forgotten: with head size 4 exactly 2x, which is not a branch counted twice
    Mistake("hs4", "scores_0", "dscores_0 = dpreatt_0.clone()", "mismatch",
            ("exactly 2 times", "factor scale = 1/sqrt(hs)", "is missing", "hs = 4", "not a branch counted twice"),
            "scale", ("one branch counted twice?",)),
    Mistake("hs4", "q_0", "dq_0 = dpreatt_0 @ k_0", "mismatch", ("factor scale = 1/sqrt(hs)", "is missing"), "scale",
            ("one branch counted twice?",)),
    Mistake("gpt", "scores_1", "dscores_1 = dpreatt_1.clone()", "mismatch",
            ("sqrt(hs) = 2.828 times", "factor scale = 1/sqrt(hs)"), "scale"),
    Mistake("hs4", "scores_0", "dscores_0 = dpreatt_0 / scale", "mismatch", ("divided by the factor scale",), "scale"),
    # heads split or merged with a view where a transpose belongs
    Mistake("gpt", "y_0", "dy_0 = datty_0.view(B, nh, T, hs)", "mismatch",
            ("viewed straight as y_0's shape", "heads and time mixed", "datty_0.view(B, T, nh, hs).transpose(1, 2)"),
            "merge_heads", source="jsbaan/transformer-from-scratch#6, hyunwoongko/transformer#15"),
    Mistake("gpt", "y_1", "dy_1 = datty_1.view(B, T, nh, hs)", "shape_mismatch",
            ("dims 1, 2 (head, time) are swapped", "transpose(1, 2)", "a transpose is missing"), "merge_heads"),
    Mistake("gpt", "qkv_0", "dqkv_0 = torch.zeros_like(qkv_0)\ndqkv_0[:, :, :C] = dq_0.view(B, T, C)\n"
            "dqkv_0[:, :, C:2*C] = dk_0.view(B, T, C)\ndqkv_0[:, :, 2*C:] = dv_0.reshape(B, T, C)", "mismatch",
            ("view or reshape where a transpose belongs", "q_0, k_0, v_0", "dq_0.transpose(1, 2).reshape(B, T, C)"),
            "split_heads", source="reczoo/FuxiCTR#30"),
    Mistake("gpt", "qkv_1", "dqkv_1 = torch.zeros_like(qkv_1)\ndqkv_1[:, :, :C] = dq_1.transpose(1, 2).reshape(B, T, C)\n"
            "dqkv_1[:, :, C:2*C] = dk_1.transpose(1, 2).reshape(B, T, C)\ndqkv_1[:, :, 2*C:] = dv_1.reshape(B, T, C)",
            "mismatch", ("the gradient of v_1 back with a view or reshape",), "split_heads"),
    # a residual gradient sent down one branch only
    Mistake("gpt", "residual2_0", f"dresidual2_0 = {LN_RIGHT}", "mismatch",
            ("residual connection's own branch is missing", "residual3_0 = residual2_0 + fcproj_0",
             "dresidual2_0 = dresidual3_0.clone()"), "residual"),
    Mistake("gpt", "residual2_0", "dresidual2_0 = dresidual3_0.clone()", "mismatch",
            ("only the residual branch dresidual3_0", "ln2_diff_0, ln2_mean_0"), "residual"),
    Mistake("gpt", "attproj_0", "dattproj_0 = 0.5 * dresidual2_0", "mismatch", ("halved", "does not split it"),
            "residual", ("nh/T",)),
    # parameter gradients of 3-D activations summed over the batch or the time only
    Mistake("gpt", "qkvb_0", "dqkvb_0 = dqkv_0.sum(0)", "shape_mismatch",
            ("leaves out dim 1 (time)", "sum over dims 0, 1 (batch, time)"), "generic"),
    Mistake("gpt", "fcb_1", "dfcb_1 = dfch_1.sum(1)", "shape_mismatch", ("leaves out dim 0 (batch)",), "generic"),
    Mistake("gpt", "ln1w_0", "dln1w_0 = (ln1_norm_0 * dln1_0).sum(0)", "shape_mismatch",
            ("leaves out dim 1 (time)",), "generic"),
    Mistake("gpt", "attprojw_0", "dattprojw_0 = dattproj_0.transpose(1, 2) @ atty_0", "shape_mismatch",
            ("sum over dim 0", "summing yours over dim 0 would match autograd"), "generic"),
    # heads and time swapped where both have 4 entries: the same shape, a transpose away
    Mistake("t4", "y_0", "dy_0 = datty_0.view(B, T, nh, hs)", "mismatch",
            ("dims 1, 2 (head, time) are swapped", "yours.transpose(1, 2) matches", "both dims have 4 entries"),
            "generic"),
    # a count named by the dimension the forward reduces over: B and C are both 32, layernorm's is C
    Mistake("gpt", "ln1_diff2_0", "dln1_diff2_0 = torch.ones_like(ln1_diff2_0) * dln1_var_0", "mismatch",
            ("off by a factor of 32 (= C)", "did you forget 1/C?"), "generic", ("1/B",)),
    # the loss averages over batch and time, n = B*T: dividing by B alone leaves out the time
    Mistake("gpt", "logprobs", "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0", "mismatch",
            ("off by a factor of 256 (= n)",), "generic", (FAR,)),
]

# What is not a mistake: leaving the causal mask out of the backward (d<masked> is 0 there already).
NOT_MISTAKES = [
    ("preatt_0", "dpreatt_0 = dpreatt_masked_0.clone()", "exact"),
    ("preatt_1", "dpreatt_1 = dpreatt_masked_1", "exact"),
    ("preatt_0", f"dpreatt_0 = {SOFTMAX}", "approx"),  # llm.c's softmax backward, no mask at all
    ("preatt_masked_0", f"dpreatt_masked_0 = {SOFTMAX}", "approx"),
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def runs(dataset: Dataset, gpt_run: Run) -> dict[str, Run]:
    return {"gpt": gpt_run, "hs4": check(Config(net="gpt", n_head=8), dataset),
            "t4": check(Config(net="gpt", block_size=4), dataset)}


def test_the_table_covers_every_tagged_kind_of_operation() -> None:
    assert {m.kind for m in MISTAKES} == {*MAKERS, "split_heads", "generic"}


@pytest.mark.parametrize("m", MISTAKES, ids=[f"{m.kind}-{m.node}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_classic_transformer_mistake_is_named(runs: dict[str, Run], m: Mistake) -> None:
    run = runs[m.run]
    verdict = check_node(run, m.node, m.code, figure=False)
    text = " | ".join(verdict.diagnosis)
    assert verdict.status == m.status, text
    for words in m.words:
        assert words in text, (words, text)
    for words in m.absent:
        assert words not in text, (words, text)
    assert m.words[0] in verdict.diagnosis[0]  # the first line names the cause (the grade table shows only it)


@pytest.mark.parametrize("m", MISTAKES, ids=[f"{m.kind}-{m.node}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_classic_mistake_in_german_has_no_english_sentence(runs: dict[str, Run], m: Mistake) -> None:
    body = check_node(runs[m.run], m.node, m.code, figure=False).to_dict(figure=False, lang="de")
    assert_german(body["diagnosis"])


@pytest.mark.parametrize(("node", "code", "status"), NOT_MISTAKES, ids=[c for _, c, _ in NOT_MISTAKES])
def test_leaving_the_mask_out_of_the_backward_is_not_flagged(runs: dict[str, Run], node: str, code: str,
                                                             status: str) -> None:
    verdict = check_node(runs["gpt"], node, code, figure=False)
    assert verdict.status == status and verdict.passed
    text = " ".join(verdict.diagnosis)
    assert "mask" not in text and "typical mistake" not in text, text
    assert verdict.batches and all(b.status in ("exact", "approx") for b in verdict.batches)  # other minibatches too


def test_far_above_rounding_is_said_only_where_llmc_would_pass(runs: dict[str, Run]) -> None:
    """A wrong answer llm.c's 2e-2 lets through gets the line; a wrong answer it catches does not."""
    small = check_node(runs["gpt"], "fch_0", GELU_ERF, figure=False)
    lens = {row["standard"]: row["passed"] for row in small.lens or []}
    assert lens["llm.c test_gpt2"] and not lens["torch.allclose"]
    assert any(FAR in d and "llm.c test_gpt2" in d for d in small.diagnosis)
    big = check_node(runs["gpt"], "logprobs", "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0",
                     figure=False)
    assert big.status == "mismatch" and not any(FAR in d for d in big.diagnosis)


def test_an_allowed_op_the_mistakes_need() -> None:
    """erf, tril and triu run in the dojo (the exact GELU and a hand-made mask are what learners write)."""
    from ninja_core.dojo import run_code

    assert run_code("x = torch.erf(torch.zeros(2)) + torch.tril(torch.ones(2, 2)).sum() + torch.ones(2).cosh()")


# ---- whole cells -----------------------------------------------------------------------------------

def cell_rows(run: Run, cell: str) -> dict[str, object]:
    report = grade_cell(run, cell)
    assert report.error is None, report.error
    return {row.name: row for row in report.rows}


def test_a_cell_without_the_mask_in_the_backward_grades_121_of_121(runs: dict[str, Run]) -> None:
    run = runs["gpt"]
    cell = run.tape.exercise_cell()
    for layer in (0, 1):
        cell = cell.replace(f"dpreatt_{layer} = dpreatt_masked_{layer}.masked_fill(tril == 0, 0)",
                            f"dpreatt_{layer} = dpreatt_masked_{layer}.clone()")
    assert "masked_fill(tril == 0, 0)" not in cell
    report = grade_cell(run, cell)
    assert report.totals["passed"] == report.totals["local_passed"] == 121
    assert not any("mask" in d for row in report.rows for d in row.diagnosis)


@pytest.mark.parametrize(("run_name", "before", "after", "node", "words"), [
    ("gpt", "dpreatt_1 = dpreatt_masked_1.masked_fill(tril == 0, 0)",
     "dpreatt_1 = dpreatt_masked_1.masked_fill(tril == 0, -torch.inf)", "preatt_1",
     ("-inf belongs to the forward pass only",)),
    ("hs4", "dscores_0 = dpreatt_0 * scale", "dscores_0 = dpreatt_0.clone()", "scores_0",
     ("exactly 2 times", "factor scale = 1/sqrt(hs)", "not a branch counted twice")),
    ("gpt", "dy_1 = datty_1.view(B, T, nh, hs).transpose(1, 2)", "dy_1 = datty_1.view(B, nh, T, hs)", "y_1",
     ("viewed straight as y_1's shape",)),
    ("gpt", "dln2_diff2_0 = torch.ones_like(ln2_diff2_0) * dln2_var_0 / C",
     "dln2_diff2_0 = torch.ones_like(ln2_diff2_0) * dln2_var_0 / (C-1)", "ln2_diff2_0",
     ("n-1 used where the forward divides by C",)),
    ("gpt", "dresidual2_0 = dresidual3_0.clone()\n", "", "residual2_0",
     ("residual connection's own branch is missing",)),
])
def test_a_classic_mistake_in_a_whole_cell_is_named_on_its_row(runs: dict[str, Run], run_name: str, before: str,
                                                                after: str, node: str, words: tuple[str, ...]) -> None:
    run = runs[run_name]
    cell = run.tape.exercise_cell()
    assert before in cell
    cell = cell.replace(before, after)
    if node == "residual2_0":  # the skip's line removed: the layernorm's first branch now starts the sum
        cell = cell.replace("dresidual2_0 += dln2_diff_0.clone()", "dresidual2_0 = dln2_diff_0.clone()")
    rows = cell_rows(run, cell)
    row = rows[node]
    assert row.status == "mismatch" and row.local_status == "mismatch"  # type: ignore[attr-defined]
    first = row.diagnosis[0]  # type: ignore[attr-defined]
    for w in words:
        assert w in first, (w, row.diagnosis)  # type: ignore[attr-defined]
    # every row below it is wrong only because of it: right locally, upstream named
    upstream = [r for r in rows.values() if r.status != "exact"]  # type: ignore[attr-defined]
    assert all(r.local_status in ("exact", "approx") for r in upstream if r.name != node)  # type: ignore[attr-defined]


def test_no_gpt_mistake_breaks_the_judging_of_a_code_error(runs: dict[str, Run]) -> None:
    with pytest.raises(DojoError) as info:
        check_node(runs["gpt"], "y_0", "dy_0 = datty_0.view(B, nh, T)")
    assert info.value.kind == "runtime"
