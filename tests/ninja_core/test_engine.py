"""The engine's promises: bit-exact float32 chain, float64 agreement, local checks, faults as findings."""

from __future__ import annotations

import math

import pytest
import torch

from ninja_core.backward import forward, manual_backward
from ninja_core.compare import compare
from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.run import Run, check, judge_nodes

PARAMS = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")


def test_there_are_26_gradients_in_the_lectures_cmp_order(default_run: Run) -> None:
    order = list(default_run.nodes)
    assert len(order) == 26
    assert order[:8] == ["logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits",
                         "logit_maxes", "logits"]
    assert order[-2:] == ["emb", "C"]
    assert set(PARAMS) <= set(order)
    assert tuple(order) == default_run.tape.backward_order


def test_float32_chain_is_bit_exact_everywhere(default_run: Run) -> None:
    bad = {n: r.status for n, r in default_run.nodes.items() if r.status != "exact"}
    assert bad == {}
    assert all(r.local_status == "exact" for r in default_run.nodes.values())
    assert all(r.end_to_end.maxdiff == 0.0 for r in default_run.nodes.values())


@pytest.mark.parametrize("cfg", [
    Config(seed=1, batch_size=7, n_embd=3, n_hidden=13, block_size=1),
    Config(seed=123, batch_size=100, n_embd=17, n_hidden=33, block_size=8),
    # emb's gradient over 32 768 elements: autograd would accumulate it with parallel atomic adds
    Config(seed=9, batch_size=2048, n_embd=16, n_hidden=200, block_size=5),
], ids=["tiny", "odd-sizes", "large-embedding-grad"])
def test_float32_chain_is_bit_exact_for_other_configs(cfg: Config, dataset: Dataset) -> None:
    run = check(cfg, dataset)
    assert {n: r.status for n, r in run.nodes.items() if r.status != "exact"} == {}


@pytest.mark.parametrize("variant", ["chain", "fused"])
def test_float64_agrees_to_1e_12_in_both_variants(variant: str, dataset: Dataset) -> None:
    run = check(Config(dtype="float64", variant=variant), dataset)
    for name, node in run.nodes.items():
        assert node.status in ("exact", "approx"), name
        assert node.end_to_end.maxdiff is not None and node.end_to_end.maxdiff <= 1e-12, name


def test_float32_fused_is_approx_at_logits_and_hprebn(fused_run: Run) -> None:
    logits, hprebn = fused_run.nodes["logits"], fused_run.nodes["hprebn"]
    assert logits.status == "approx" and hprebn.status == "approx"
    assert logits.fused == "cross_entropy" and hprebn.fused == "batchnorm"
    assert 0 < (logits.end_to_end.maxdiff or 0) < 1e-7
    assert 0 < (hprebn.end_to_end.maxdiff or 0) < 1e-7
    # the fused formulas themselves are right: locally they are approx, nowhere a mismatch
    assert all(r.status in ("exact", "approx") for r in fused_run.nodes.values())
    # nodes between loss and logits are still computed by the chain, so they stay exact
    assert fused_run.nodes["probs"].status == "exact"


def test_same_config_twice_is_bitwise_identical(dataset: Dataset) -> None:
    a, b = check(Config(), dataset), check(Config(), dataset)
    for name in [*list(a.nodes), "loss"]:
        assert torch.equal(a.values[name], b.values[name]), name
    for name in a.nodes:
        assert torch.equal(a.manual[name], b.manual[name]), name
        assert torch.equal(a.autograd[name], b.autograd[name]), name


def test_another_seed_draws_another_minibatch(dataset: Dataset) -> None:
    a, b = check(Config(seed=1), dataset), check(Config(seed=2), dataset)
    assert not torch.equal(a.values["Xb"], b.values["Xb"])
    assert not torch.equal(a.values["C"], b.values["C"])


def test_loss_at_init_is_close_to_uniform(default_run: Run) -> None:
    assert abs(default_run.loss - (-math.log(1 / 27))) < 0.3


def _judge_with(run: Run, **overrides: object) -> Run:
    manual = dict(run.manual)
    for name, value in overrides.items():
        manual[name] = value  # type: ignore[assignment]
    nodes = judge_nodes(run.tape, run.values, manual, run.autograd, run.local, run.config.variant)
    return Run(run.config, run.net, run.tape, run.data, run.values, run.autograd, manual, run.local, nodes, run.constants)


def test_injected_faults_are_findings_not_exceptions(default_run: Run) -> None:
    r = default_run
    faulty = _judge_with(
        r,
        h=-r.manual["h"],  # sign flipped
        bnmeani=(-r.manual["bndiff"]).sum(0),  # the lecture's formula: (H,) instead of (1, H)
        W2=None,  # never computed
        b2="not a tensor",
    )
    assert faulty.nodes["h"].status == "mismatch"
    assert faulty.nodes["bnmeani"].status == "shape_mismatch"
    assert faulty.nodes["bnmeani"].end_to_end.manual_shape == (64,)
    assert faulty.nodes["bnmeani"].end_to_end.shape == (1, 64)
    assert faulty.nodes["W2"].status == "missing"
    assert faulty.nodes["b2"].status == "missing"
    assert faulty.nodes["logits"].status == "exact"


def test_a_missing_accumulation_branch_is_a_mismatch(default_run: Run) -> None:
    v = default_run.values
    # dcounts from the probs branch only; the counts_sum branch (+=) forgotten
    dcounts = v["counts_sum_inv"] * default_run.manual["probs"]
    faulty = _judge_with(default_run, counts=dcounts)
    assert faulty.nodes["counts"].status == "mismatch"


def test_local_check_says_the_step_is_right_when_the_error_came_from_upstream(dataset: Dataset) -> None:
    run = check(Config(), dataset)
    values = run.values
    # break one step (the tanh backward) inside a full manual backward pass
    manual = manual_backward(run.tape, values, "chain")
    wrong_dhpreact = manual["hpreact"] * 1.5
    manual["hpreact"] = wrong_dhpreact
    manual["bnraw"] = values["bngain"] * wrong_dhpreact  # the next step faithfully uses it
    nodes = judge_nodes(run.tape, values, manual, run.autograd, run.local, "chain")
    assert nodes["hpreact"].status == "mismatch"
    assert nodes["bnraw"].status == "mismatch"
    assert nodes["bnraw"].local_status == "exact"  # bnraw's own formula is right


def test_missing_autograd_gradient_is_reported() -> None:
    result = compare(torch.zeros(3), None)
    assert result.status == "missing" and "autograd" in result.message


def test_compare_never_raises_on_odd_inputs() -> None:
    ref = torch.ones(2, 3)
    assert compare(torch.full((2, 3), float("nan")), ref).status == "mismatch"
    assert compare(torch.ones(3, 2), ref).status == "shape_mismatch"
    assert compare(torch.ones(2, 3, dtype=torch.float64), ref).status == "exact"
    assert compare(torch.ones(2, 3) + 1e-6, ref).status == "approx"
    assert compare(torch.ones(0), torch.ones(0)).status == "exact"


def test_lecture_tanh_formula_is_only_approx_in_float32(default_run: Run) -> None:
    """Why the tape computes 1 - h*h with addcmul: the lecture's (1 - h**2) rounds twice."""
    v, dh = default_run.values, default_run.autograd["h"]
    lecture = (1.0 - v["h"] ** 2) * dh
    ours = torch.addcmul(torch.ones_like(v["h"]), v["h"], v["h"], value=-1) * dh
    assert torch.equal(ours, default_run.autograd["hpreact"])
    assert not torch.equal(lecture, default_run.autograd["hpreact"])
    assert torch.allclose(lecture, default_run.autograd["hpreact"])


def test_forward_keeps_every_intermediate_gradient(default_run: Run) -> None:
    # the seed notebook forgot bnvar.retain_grad(); here no intermediate can be forgotten
    for name in default_run.nodes:
        assert name in default_run.autograd, name


def test_params_override_keeps_the_minibatch(default_run: Run, dataset: Dataset) -> None:
    params = {p: default_run.values[p] * 0.5 for p in PARAMS}
    other = check(Config(), dataset, params=params)
    assert torch.equal(other.values["Xb"], default_run.values["Xb"])
    assert torch.equal(other.values["W1"], default_run.values["W1"] * 0.5)
    assert other.counts == {"exact": 26}


def test_forward_matches_an_independent_transcription(default_run: Run) -> None:
    v = default_run.values
    n, Yb = v["n"], v["Yb"]
    hpre = v["C"][v["Xb"]].view(n, -1) @ v["W1"] + v["b1"]
    mean = hpre.mean(0, keepdim=True)
    var = hpre.var(0, keepdim=True, unbiased=True)
    h = torch.tanh(v["bngain"] * (hpre - mean) / torch.sqrt(var + 1e-5) + v["bnbias"])
    loss = torch.nn.functional.cross_entropy(h @ v["W2"] + v["b2"], Yb)
    assert abs(loss.item() - default_run.loss) < 1e-5
    values = forward(default_run.tape, {p: v[p] for p in PARAMS}, v["Xb"], Yb, default_run.constants)
    assert values["loss"].item() == default_run.loss


def test_the_mlp_is_bit_identical_to_before_the_networks_redesign(default_run: Run, dataset: Dataset) -> None:
    """Pinned from the last commit before `net` existed: the loss and a hash of every gradient
    (manual and autograd) of the default config, and of a float64 fused config."""
    import hashlib

    def digest(run: Run, with_autograd: bool) -> str:
        h = hashlib.sha256()
        for name in run.nodes:
            h.update(name.encode())
            h.update(run.manual[name].numpy().tobytes())
            if with_autograd:
                h.update(run.autograd[name].numpy().tobytes())
        return h.hexdigest()

    assert default_run.loss == 3.460209608078003
    assert digest(default_run, True) == "00c15071354e7e0660bfd2bb1c3f014dbf3c373098328614ac2da69874a5d83c"
    other = check(Config(variant="fused", dtype="float64", seed=5, batch_size=100), dataset)
    assert other.loss == 3.3635603575126596
    assert digest(other, False) == "fdb88a3ea19596edb60beba8eb590f6fdcff850f14cd7e19e125249dc81c03d6"


def test_a_right_step_off_by_float32_rounding_near_zero_is_approx_with_its_reason() -> None:
    """Fused float32: W4's own step is exact, but rounding in the fused dlogits makes allclose (atol 1e-8)
    fail near 0; the status says approx and why, allclose's own answer stays False."""
    run = check(Config(net="wavenet", variant="fused"))
    w4 = run.nodes["W4"]
    assert w4.status == "approx" and not w4.end_to_end.approx and w4.local.status == "exact"
    assert w4.end_to_end.relerr is not None and w4.end_to_end.relerr < 1e-6
    assert "float32 rounding" in w4.end_to_end.message and "comes from upstream" in w4.end_to_end.message
