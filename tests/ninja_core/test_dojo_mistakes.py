"""The mistakes learners really make (issue 14), typed into the dojo for the nodes of every network:
each must come back with the diagnosis that names its cause, and -- where one edit fixes it -- with
that edit. Run as a script to measure the one-edit search over the table (median and worst):

    .venv/bin/python tests/ninja_core/test_dojo_mistakes.py
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import pytest

from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.dojo import DojoError, check_node
from ninja_core.dojo.edits import KINDS, MAX_CANDIDATES
from ninja_core.run import Run, check


@dataclass(frozen=True)
class Mistake:
    net: str
    node: str
    code: str
    status: str  # what the answer gets: mismatch, shape_mismatch, exact (right here, wrong elsewhere) or error
    cause: tuple[str, ...]  # words the diagnosis must contain
    fix: str | None = None  # the one-edit kind that must be found, if any
    source: str = ""  # where learners report it


MISTAKES: list[Mistake] = [
    # ---- the lecture's MLP (makemore part 4) ----
    Mistake("mlp", "W2", "dW2 = dlogits.T @ h", "shape_mismatch", ("transposed", "yours.T matches"), "transpose"),
    Mistake("mlp", "h", "dh = dlogits @ W2", "error", ("cannot be multiplied", "add .T after W2"), "transpose"),
    Mistake("mlp", "bnmeani", "dbnmeani = (-dbndiff).sum(0)", "shape_mismatch",
            ("keepdim=True is missing", "only the shape is wrong"), "keepdim", "the lecture's own cmp hid this"),
    Mistake("mlp", "bndiff2", "dbndiff2 = (1.0/n) * torch.ones_like(bndiff2) * dbnvar", "mismatch",
            ("(= (n-1)/n)", "Bessel"), "count", "nn-zero-to-hero #13"),
    Mistake("mlp", "hpreact", "dhpreact = (1.0 - h**2)", "mismatch",
            ("local derivative alone", "multiply it by dh", "chain rule"), None),
    Mistake("mlp", "probs", "dprobs = 1.0 / probs", "mismatch", ("local derivative alone", "dlogprobs")),
    Mistake("mlp", "norm_logits", "dnorm_logits = counts", "mismatch", ("local derivative alone", "dcounts")),
    Mistake("mlp", "counts_sum", "dcounts_sum = (counts_sum**-2) * dcounts_sum_inv", "mismatch",
            ("the sign is flipped",), "sign"),
    Mistake("mlp", "logit_maxes", "dlogit_maxes = dnorm_logits.sum(1, keepdim=True)", "mismatch",
            ("the sign is flipped",), "sign"),
    Mistake("mlp", "logprobs", "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0", "mismatch",
            ("off by a factor of 32 (= n)", "forget 1/n"), None),
    Mistake("mlp", "W2", "dW2 = h.T @ dlogits / n", "mismatch", ("off by a factor of 1/32 (= 1/n)",), None),
    Mistake("mlp", "bnvar", "dbnvar = (-(bnvar + 1e-5)**-1.5) * dbnvar_inv", "mismatch", ("off by a factor of 2",)),
    Mistake("mlp", "counts", "dcounts = counts_sum_inv * dprobs", "mismatch",
            ("the branch from counts_sum (+=) is missing",), None, "nn-zero-to-hero #45"),
    Mistake("mlp", "hprebn", "dhprebn = dbndiff.clone()", "mismatch", ("the branch from bnmeani (+=) is missing",)),
    Mistake("mlp", "bndiff", "dbndiff = bnvar_inv * dbnraw\ndbndiff += 2*bndiff * dbndiff2\n"
            "dbndiff += 2*bndiff * dbndiff2", "mismatch", ("the branch from bndiff2 is counted twice",)),
    Mistake("mlp", "bndiff", "dbndiff = bnvar_inv * dbnraw", "mismatch", ("the branch from bndiff2 (+=) is missing",)),
    Mistake("mlp", "C", "dC = torch.zeros_like(C)\ndC[Xb.view(-1)] += demb.view(-1, 10)", "mismatch",
            ("repeated indices", "characters", "index_add_", "accumulate=True", "loop"), None, "nn-zero-to-hero #29"),
    Mistake("mlp", "C", "dC = torch.zeros_like(C)\ndC.index_put_((Xb.view(-1),), demb.view(-1, 10))", "mismatch",
            ("index_put_ without accumulate=True",)),
    Mistake("mlp", "C", "dC = F.one_hot(Xb).float().view(-1, C.shape[0]).T @ demb.view(-1, C.shape[1])", "exact",
            ("on the minibatch of seed", "F.one_hot without num_classes", "pass num_classes=27"), None,
            "nn-zero-to-hero #46, #55"),
    Mistake("mlp", "bnbias", "dbnbias = dhpreact", "shape_mismatch", ("sum over dim 0 with keepdim=True",)),
    Mistake("mlp", "b2", "db2 = dlogits.sum()", "shape_mismatch", ("a single number",)),
    Mistake("mlp", "W2", "dW2 = hpreact.T @ dlogits", "mismatch", ("differs",), "name"),
    Mistake("mlp", "b1", "db1 = dhprebn.sum(1)", "shape_mismatch", ("(32,) should be (64,)",), "dims"),
    Mistake("mlp", "emb", "demb = dembcat", "shape_mismatch", ("only the shape is wrong",)),
    Mistake("mlp", "h", "dh = torch.zeros_like(h)", "mismatch", ("all zeros",)),
    # ---- the lecture's WaveNet (makemore part 5) ----
    Mistake("wavenet", "bnmeani1", "dbnmeani1 = (-dbndiff1).sum(0, keepdim=True)", "shape_mismatch",
            ("dim 1 (time) is missing", "0, 1 (batch, time)"), "dims", "the part-5 trap"),
    Mistake("wavenet", "hprebn1", "dhprebn1 = dbndiff1.clone()\ndhprebn1 += 1.0/n * (torch.ones_like(hprebn1) * "
            "dbnmeani1)", "mismatch", ("(= n1/n)", "the time dimension is left out"), "count", "the part-5 trap"),
    Mistake("wavenet", "bngain1", "dbngain1 = (bnraw1 * dhpreact1).sum(0)", "shape_mismatch",
            ("leaves out dim 1 (time)",), "dims", "the part-5 trap"),
    Mistake("wavenet", "bndiff2_1", "dbndiff2_1 = (1.0/(n-1)) * torch.ones_like(bndiff2_1) * dbnvar1", "mismatch",
            ("(= (n1-1)/(n-1))",), "count"),
    Mistake("wavenet", "x1", "dx1 = dhprebn1 @ W1", "error", ("add .T after W1",), "transpose"),
    Mistake("wavenet", "C", "dC = torch.zeros_like(C)\ndC[Xb] += demb", "mismatch", ("repeated indices", "characters")),
    Mistake("wavenet", "hpreact2", "dhpreact2 = 1.0 - h2**2", "mismatch", ("local derivative alone", "dh2")),
    Mistake("wavenet", "bnvar_inv3", "dbnvar_inv3 = (bndiff3 * dbnraw3).sum(0)", "shape_mismatch",
            ("keepdim=True is missing",), "keepdim"),
    Mistake("wavenet", "W4", "dW4 = h3.T @ dlogits * n", "mismatch", ("off by a factor of 32 (= n)",)),
    Mistake("wavenet", "bnbias2", "dbnbias2 = dhpreact2.sum(1)", "shape_mismatch", ("(32, 128) should be (128,)",),
            "dims"),
]


@pytest.fixture(scope="module")
def runs(dataset: Dataset) -> dict[str, Run]:
    return {"mlp": check(Config(), dataset), "wavenet": check(Config(net="wavenet"), dataset)}


def test_the_table_is_big_and_covers_every_network_and_edit_kind() -> None:
    assert len(MISTAKES) >= 25
    assert {m.net for m in MISTAKES} == {"mlp", "wavenet"}
    assert {m.fix for m in MISTAKES} - {None} == set(KINDS)


def judged(run: Run, m: Mistake) -> tuple[str, str, str | None]:
    """(status, all the diagnosis text, the fix kind) for a mistake, "error" with the message for code errors."""
    try:
        verdict = check_node(run, m.node, m.code, figure=False)
    except DojoError as exc:
        fix = next((kind for kind in KINDS if kind == "transpose" and "add .T" in exc.message), None)
        return "error", exc.text(), fix
    return verdict.status, " | ".join(verdict.diagnosis), verdict.fix.kind if verdict.fix else None


@pytest.mark.parametrize("m", MISTAKES, ids=[f"{m.net}-{m.node}-{i}" for i, m in enumerate(MISTAKES)])
def test_a_typical_mistake_gets_the_diagnosis_that_names_its_cause(runs: dict[str, Run], m: Mistake) -> None:
    status, text, fix = judged(runs[m.net], m)
    assert status == m.status, text
    for words in m.cause:
        assert words in text, (words, text)
    if m.fix is not None:
        assert fix == m.fix, text
        assert "line " in text and "column " in text  # the edit says where


def test_the_one_edit_search_is_bounded_and_not_run_for_right_answers(runs: dict[str, Run]) -> None:
    for m in MISTAKES:
        try:
            verdict = check_node(runs[m.net], m.node, m.code, figure=False)
        except DojoError:
            continue
        if verdict.passed:
            assert verdict.search is None and verdict.fix is None  # none when already right
        else:
            assert verdict.search is not None and verdict.search.candidates <= MAX_CANDIDATES


def test_the_issues_example_of_a_name_swap(runs: dict[str, Run]) -> None:
    """dW2 for W2 in a cell where both exist: the edit names the swap with its place."""
    from ninja_core.dojo import grade_cell

    cell = runs["mlp"].tape.exercise_cell().replace("dh = dlogits @ W2.T", "dh = dlogits @ dW2.T")
    assert "dh = dlogits @ dW2.T" in cell
    report = grade_cell(runs["mlp"], cell)
    row = next(r for r in report.rows if r.name == "h")
    assert row.fix is not None and row.fix.kind == "name"
    assert "use W2 instead of dW2 at line" in row.fix.message and "column 16" in row.fix.message


def measure() -> None:
    """Median and worst time and candidates of the one-edit search over the table (one thread, as served)."""
    import torch

    torch.set_num_threads(1)
    runs = {"mlp": check(Config()), "wavenet": check(Config(net="wavenet"))}
    seconds: list[float] = []
    tried: list[int] = []
    for m in MISTAKES:
        check_node(runs[m.net], m.node, m.code, figure=False) if m.status != "error" else None  # warm the probes
    for m in MISTAKES:
        started = time.perf_counter()
        try:
            verdict = check_node(runs[m.net], m.node, m.code, figure=False)
        except DojoError:
            continue
        total = time.perf_counter() - started
        if verdict.search is not None:
            seconds.append(verdict.search.seconds)
            tried.append(verdict.search.candidates)
            kind = verdict.fix.kind if verdict.fix else "-"
            print(f"{m.net:8s} {m.node:12s} {kind:9s} {verdict.search.candidates:4d} candidates "
                  f"{1000 * verdict.search.seconds:7.1f} ms search, {1000 * total:7.1f} ms whole check")
    print(f"one-edit search over {len(seconds)} wrong formulas: median {1000 * statistics.median(seconds):.1f} ms, "
          f"worst {1000 * max(seconds):.1f} ms; candidates median {statistics.median(tried):.0f}, worst {max(tried)}")


if __name__ == "__main__":
    measure()
