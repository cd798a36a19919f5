"""Every diagnosis, triggered by the wrong answer a learner typically writes."""

from __future__ import annotations

import pytest

from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.dojo.judge import check_node
from ninja_core.run import Run, check


def diagnosis(run: Run, node: str, code: str) -> tuple[str, str]:
    verdict = check_node(run, node, code, figure=False)
    return verdict.status, " | ".join(verdict.diagnosis)


@pytest.mark.parametrize(("node", "code", "status", "words"), [
    # wrong shape, with the broadcasting reason
    ("bnbias", "dbnbias = dhpreact", "shape_mismatch",
     ["(32, 64) should be (1, 64): sum over dim 0 with keepdim=True", "summing yours over dim 0"]),
    ("bnmeani", "dbnmeani = (-dbndiff).sum(0)", "shape_mismatch",
     ["(64,) should be (1, 64): keepdim=True is missing", "the values are right: only the shape is wrong"]),
    ("b1", "db1 = dhprebn", "shape_mismatch", ["(32, 64) should be (64,): sum over dim 0", "would match"]),
    ("counts", "dcounts = dcounts_sum", "shape_mismatch",
     ["(32, 1) should be (32, 27)", "broadcast yours over dim 1", "torch.ones_like(counts)"]),
    ("emb", "demb = dembcat", "shape_mismatch",
     ["(32, 30) should be (32, 3, 10): the same number of entries", "only the shape is wrong"]),
    ("b2", "db2 = dlogits.sum()", "shape_mismatch", ["() should be (27,): yours is a single number"]),
    ("h", "dh = (dlogits @ W2.T)[None]", "shape_mismatch",
     ["(1, 32, 64) should be (32, 64): an extra leading dimension of size 1"]),
    # transposed
    ("h", "dh = W2 @ dlogits.T", "shape_mismatch",
     ["(64, 32) should be (32, 64): transposed", "yours.T matches autograd"]),
    # sign flipped
    ("logit_maxes", "dlogit_maxes = dnorm_logits.sum(1, keepdim=True)", "mismatch", ["the sign is flipped"]),
    ("counts_sum", "dcounts_sum = (counts_sum**-2) * dcounts_sum_inv", "mismatch", ["the sign is flipped"]),
    # off by a constant factor, named
    ("logprobs", "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0", "mismatch",
     ["off by a factor of 32 (= n): did you forget 1/n?"]),
    ("W2", "dW2 = h.T @ dlogits / n", "mismatch", ["off by a factor of 1/32 (= 1/n)"]),
    ("bnvar", "dbnvar = (-(bnvar + 1e-5)**-1.5) * dbnvar_inv", "mismatch", ["off by a factor of 2"]),
    ("bndiff2", "dbndiff2 = (1.0/n) * torch.ones_like(bndiff2) * dbnvar", "mismatch", ["(= (n-1)/n)", "Bessel"]),
    ("h", "dh = 3.7 * (dlogits @ W2.T)", "mismatch", ["off by a constant factor: yours ≈ 3.7 × autograd's"]),
    # a missing, doubled or scaled accumulation branch, named by where it comes from
    ("counts", "dcounts = counts_sum_inv * dprobs", "mismatch",
     ["matches the branch from probs only; the branch from counts_sum (+=) is missing"]),
    ("counts", "dcounts = torch.ones_like(counts) * dcounts_sum", "mismatch",
     ["matches the branch from counts_sum only; the branch from probs (+=) is missing",
      "exactly one entry in every row"]),
    ("hprebn", "dhprebn = dbndiff.clone()", "mismatch", ["the branch from bnmeani (+=) is missing"]),
    ("bndiff", "dbndiff = bnvar_inv * dbnraw\ndbndiff += 2*bndiff * dbndiff2\ndbndiff += 2*bndiff * dbndiff2",
     "mismatch", ["the branch from bndiff2 is counted twice"]),
    ("bndiff", "dbndiff = bnvar_inv * dbnraw\ndbndiff += bndiff * dbndiff2", "mismatch",
     ["the branch from bndiff2 is off by a factor of 1/2", "d(x**2)/dx = 2*x"]),
    ("bndiff", "dbndiff = bnvar_inv * dbnraw\ndbndiff -= 2*bndiff * dbndiff2", "mismatch",
     ["the branch from bndiff2 has its sign flipped"]),
    # matches only on some entries: where
    ("C", "dC = torch.zeros_like(C)\ndC.index_add_(0, Xb[:, 0], demb[:, 0])", "mismatch",
     ["of the entries", "whole rows"]),
    ("h", "dh = dlogits @ W2.T\ndh[:, 5] = 1", "mismatch", ["(2016 of 2048); 32 differ: whole columns 5"]),
    ("b2", "db2 = dlogits.sum(0)\ndb2[3] = 0", "mismatch", ["26 of 27", "1 differs", "[3]"]),
    # NaN / Inf, all zeros, not a tensor, everything different
    ("probs", "dprobs = dlogprobs / (probs - probs)", "mismatch", ["NaN", "±Inf", "division by 0"]),
    ("h", "dh = torch.zeros_like(h)", "mismatch", ["all zeros"]),
    ("h", "dh = 0.5", "missing", ["your answer is a float, not a tensor of shape (32, 64)"]),
    ("hpreact", "dhpreact = (1.0 - h) * dh", "mismatch", ["differs at", "relative error"]),
], ids=lambda x: x if isinstance(x, str) and len(x) < 20 and " " not in x else None)
def test_typical_mistakes_get_their_diagnosis(default_run: Run, node: str, code: str, status: str,
                                              words: list[str]) -> None:
    got_status, text = diagnosis(default_run, node, code)
    assert got_status == status, text
    for w in words:
        assert w in text, (w, text)


def test_right_answers_get_a_short_positive_message(default_run: Run) -> None:
    assert diagnosis(default_run, "h", "dh = dlogits @ W2.T") == ("exact", "exact: bit for bit what autograd computed")
    status, text = diagnosis(default_run, "hpreact", "dhpreact = (1.0 - h**2) * dh")
    assert status == "approx" and text.startswith("rounding only: maxdiff ") and "float32 order of operations" in text


def test_a_different_dtype_is_mentioned_even_when_right(default_run: Run) -> None:
    status, text = diagnosis(default_run, "h", "dh = (dlogits @ W2.T).double()")
    assert status == "exact" and "yours is float64, autograd's float32" in text


def test_transposed_square_gradient(dataset: Dataset) -> None:
    run = check(Config(n_hidden=dataset.vocab.size), dataset)  # W2 is square: the shape cannot tell
    status, text = diagnosis(run, "W2", "dW2 = (h.T @ dlogits).T")
    assert status == "mismatch" and "transposed: yours.T matches" in text


def test_a_tiny_gradient_that_only_passes_by_allclose_is_flagged(default_run) -> None:  # type: ignore[no-untyped-def]
    from ninja_core.dojo import check_node

    # db1 is zero in exact arithmetic (batchnorm cancels b1): a sign-flipped answer passes allclose
    verdict = check_node(default_run, "b1", "db1 = -dhprebn.sum(0)", figure=False)
    assert verdict.status == "approx"
    assert any("tiny" in d and "relative error" in d for d in verdict.diagnosis)
    right = check_node(default_run, "h", "dh = dlogits @ W2.T", figure=False)
    assert not any("tiny" in d for d in right.diagnosis)
