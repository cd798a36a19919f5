"""Every spelling torch accepts runs in the dojo (issue 14, item 1): keywords come from torch's own
signatures, strings are allowed as the text a call reads (einsum, reduction=, print) and nowhere else."""

from __future__ import annotations

import pytest

from ninja_core.dojo import DojoError, check_node, grade_cell
from ninja_core.dojo.allowlist import KEYWORDS, TENSOR_METHODS, TORCH_FUNCTIONS
from ninja_core.dojo.signatures import REFUSED_KEYWORDS, derive_keywords
from ninja_core.run import Run

# A right answer, spelled the ways learners spell it in their notebooks.
SPELLINGS: list[tuple[str, str]] = [
    ("b2", "db2 = dlogits.sum(axis=0)"),
    ("b2", "db2 = torch.sum(dlogits, dim=0)"),
    ("counts_sum_inv", "dcounts_sum_inv = (counts * dprobs).sum(1, keepdims=True)"),
    ("counts_sum_inv", "dcounts_sum_inv = (counts * dprobs).sum(axis=1, keepdims=True)"),
    ("W2", "dW2 = torch.tensordot(h, dlogits, dims=([0], [0]))"),
    ("W2", "dW2 = torch.einsum('bh,bv->hv', h, dlogits)"),
    ("W2", "dW2 = h.swapaxes(0, 1) @ dlogits"),
    ("W2", "dW2 = h.transpose(0, 1) @ dlogits"),
    ("W2", "dW2 = h.mT @ dlogits"),
    ("h", "dh = torch.einsum('bv,hv->bh', dlogits, W2)"),
    ("h", "dh = dlogits @ W2.movedim(0, 1)"),
    ("h", "print('dh', dlogits.shape, W2.shape)\ndh = dlogits @ W2.T"),
    ("logits", "dlogits = F.softmax(logits, dim=1)\ndlogits[range(n), Yb] -= 1\ndlogits /= n"),
    ("logits", "dlogits = (F.softmax(logits, 1) - F.one_hot(Yb, num_classes=logits.shape[1])) / n"),
    ("bnbias", "dbnbias = dhpreact.sum_to_size(bnbias.shape)"),
    ("bnmeani", "dbnmeani = -dbndiff.sum(0, keepdims=True)"),
    ("C", "dC = torch.zeros_like(C)\ndC.index_put_((Xb.view(-1),), demb.view(-1, C.shape[1]), accumulate=True)"),
    ("C", "dC = torch.einsum('btv,bte->ve', F.one_hot(Xb, num_classes=vocab_size).float(), demb)"),
    ("probs", "dprobs = torch.div(dlogprobs, probs, rounding_mode=None)"),
]


@pytest.mark.parametrize(("node", "code"), SPELLINGS, ids=[c for _, c in SPELLINGS])
def test_every_spelling_torch_accepts_runs_in_the_dojo(default_run: Run, node: str, code: str) -> None:
    verdict = check_node(default_run, node, code, figure=False)
    assert verdict.passed, (code, verdict.diagnosis)


def test_print_writes_text_as_python_does(default_run: Run) -> None:
    verdict = check_node(default_run, "h", "print('dh', dlogits.shape)\ndh = dlogits @ W2.T", figure=False)
    assert verdict.output == ["dh torch.Size([32, 27])"]


def test_a_pasted_cell_with_prints_and_a_loss_with_reduction_runs(default_run: Run) -> None:
    cell = ("print('checking', n)\nl = F.cross_entropy(logits, Yb, reduction='sum') / n\nprint('loss', l)\n"
            + default_run.tape.exercise_cell())
    report = grade_cell(default_run, cell)
    assert report.complete and report.totals["passed"] == report.totals["total"]
    assert report.output[0] == "checking 32" and report.output[1].startswith("loss tensor(")


def test_keywords_come_from_torchs_signatures() -> None:
    # read from the schema, not a hand list: sum takes dim, keepdim, dtype and NumPy's axis, keepdims
    assert TENSOR_METHODS["sum"].keywords == {"dim", "keepdim", "dtype", "axis", "keepdims"}
    assert TORCH_FUNCTIONS["sum"].keywords == {"input", "dim", "keepdim", "dtype", "axis", "keepdims", "x", "a", "x1"}
    assert derive_keywords(TORCH_FUNCTIONS["tensordot"].fn, method=False) == {"a", "b", "dims"}
    assert not KEYWORDS & REFUSED_KEYWORDS  # out=, device=, requires_grad=, ... never, whatever a signature says


def test_the_derived_keywords_are_the_reviewed_set() -> None:
    """A torch upgrade that adds a keyword to an allowed op must be looked at before learners get it."""
    reviewed = {
        "a", "accumulate", "alpha", "approximate", "atol", "axis", "axis0", "axis1", "b", "condition", "correction",
        "data", "decimals", "destination", "diagonal", "dim", "dim0", "dim1", "dim2", "dims", "dtype", "end", "end_dim",
        "equal_nan", "exponent", "fill_value", "ignore_index", "index", "indices", "inplace", "input", "keepdim",
        "keepdims", "label_smoothing", "mask", "max", "min", "num_classes", "offset", "other", "reduction",
        "rounding_mode", "rtol", "shape", "size", "source", "src", "start", "start_dim", "step", "target", "tensor1",
        "tensor2", "tensors", "unbiased", "value", "values", "weight", "x", "x1", "x2"}
    assert reviewed == KEYWORDS, sorted(KEYWORDS ^ reviewed)


@pytest.mark.parametrize(("code", "words"), [
    ("db2 = dlogits.sum(axs=0)", ".sum takes no keyword argument axs=; it takes axis=, dim=, dtype=, keepdim=, keepdims="),
    ("db2 = dlogits.sum(0, out=dlogits)", "out= is not allowed in the dojo (it writes into a tensor of any size)"),
    ("db2 = dlogits.sum('0')", "text is only allowed where torch reads text"),
    ("f = dlogits.sum\ndb2 = f(0, keepdm=True)", "keepdm"),
])
def test_a_keyword_or_text_torch_would_not_take_is_refused_with_what_is_allowed(default_run: Run, code: str,
                                                                                  words: str) -> None:
    with pytest.raises(DojoError) as info:
        check_node(default_run, "b2", code, figure=False)
    assert info.value.kind == "forbidden" and words in info.value.message
