"""The GPT (llm.c's layer set) on the engine: sizes and rules, initialisation, data, bit-exactness,
float64, the fused blocks, finite differences, the forward against torch's own layers, figures."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ninja_core.config import Config, ConfigError
from ninja_core.data import Dataset
from ninja_core.display import to_2d
from ninja_core.gradcheck import finite_differences
from ninja_core.nets import get_net
from ninja_core.run import Run, check

GPT = get_net("gpt")
PER_LAYER = ("ln1_mean", "ln1_diff", "ln1_diff2", "ln1_var", "ln1_rstd", "ln1_norm", "ln1", "qkv", "q", "k", "v",
             "scores", "preatt", "preatt_masked", "att_maxes", "att_norm", "att_counts", "att_counts_sum",
             "att_counts_sum_inv", "att", "y", "atty", "attproj", "residual2", "ln2_mean", "ln2_diff", "ln2_diff2",
             "ln2_var", "ln2_rstd", "ln2_norm", "ln2", "fch", "fch_cube", "fch_inner", "fch_tanh", "fch_gelu",
             "fcproj", "residual3")


pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def gpt_fused64(dataset: Dataset) -> Run:
    return check(Config(net="gpt", variant="fused", dtype="float64"), dataset)


# ---- sizes, rules, names ----------------------------------------------------------------------------

def test_defaults_and_the_121_gradients(gpt_run: Run) -> None:
    cfg = gpt_run.config
    assert (cfg.batch_size, cfg.block_size, cfg.n_embd, cfg.n_head, cfg.n_layer) == (32, 8, 32, 4, 2)
    assert cfg.n_hidden == 0 and "n_hidden" not in cfg.to_dict()
    tape = gpt_run.tape
    steps = [s.out for s in tape.steps]
    assert steps[:2] == ["tok_emb", "encoded"]
    assert steps[2:2 + len(PER_LAYER)] == [f"{name}_0" for name in PER_LAYER]
    assert steps[2 + len(PER_LAYER):2 + 2 * len(PER_LAYER)] == [f"{name}_1" for name in PER_LAYER]
    assert steps[-16:] == ["lnf_mean", "lnf_diff", "lnf_diff2", "lnf_var", "lnf_rstd", "lnf_norm", "lnf", "logits",
                           "logit_maxes", "norm_logits", "counts", "counts_sum", "counts_sum_inv", "probs",
                           "logprobs", "loss"]
    assert tape.params[:2] == ("wte", "wpe") and tape.params[-2:] == ("lnfw", "lnfb")
    assert len(tape.params) == 28 and len(gpt_run.nodes) == 121  # 93 intermediates and 28 parameters
    V = gpt_run.data.vocab.size
    assert GPT.n_params(cfg, V) == sum(gpt_run.values[p].numel() for p in tape.params) == 27 * 32 + 8 * 32 + 2 * 12_704 + 64


def test_shapes_follow_llm_c(gpt_run: Run) -> None:
    v = gpt_run.values
    assert v["encoded"].shape == v["ln1_0"].shape == v["atty_1"].shape == v["residual3_1"].shape == (32, 8, 32)
    assert v["ln1_mean_0"].shape == v["ln1_rstd_0"].shape == (32, 8, 1)
    assert v["qkv_0"].shape == (32, 8, 96) and v["fch_gelu_0"].shape == (32, 8, 128)
    assert v["q_0"].shape == v["y_0"].shape == (32, 4, 8, 8)
    assert v["preatt_0"].shape == v["att_1"].shape == (32, 4, 8, 8) and v["att_maxes_0"].shape == (32, 4, 8, 1)
    assert v["logits"].shape == v["probs"].shape == (256, 27) and gpt_run.constants["n"] == 256
    assert v["qkvw_0"].shape == (96, 32) and v["fcprojw_1"].shape == (32, 128) and v["wpe"].shape == (8, 32)


def test_the_tape_is_cached_per_number_of_layers() -> None:
    three = GPT.tape(Config(net="gpt", n_layer=3))
    assert three is GPT.tape(Config(net="gpt", n_layer=3, n_embd=16, batch_size=4))  # other sizes: same tape
    assert three is not GPT.tape(Config(net="gpt"))
    assert "residual3_2" in three.producers and "residual3_2" not in GPT.tape(Config(net="gpt")).producers
    assert GPT.arch(Config(net="gpt", n_layer=3)) == (3,)


@pytest.mark.parametrize(("fields", "field", "phrase"), [
    ({"n_embd": 30}, "n_head", "n_embd 30 is not divisible by n_head 4: each head gets n_embd / n_head channels"),
    ({"n_embd": 8, "n_head": 16}, "n_head", "n_embd 8 is not divisible by n_head 16"),
    ({"block_size": 33}, "block_size", "block_size 33 is beyond the position table: wpe has one row per position "
                                       "and at most 32 rows here"),
    ({"block_size": 1000}, "block_size", "beyond the position table"),
    ({"n_layer": 7}, "n_layer", "must be in 1..6 for gpt, got 7"),
    ({"n_head": 17}, "n_head", "must be in 1..16 for gpt"),
    ({"batch_size": 257}, "batch_size", "must be in 1..256 for gpt"),
    ({"n_hidden": 64}, "n_hidden", "gpt has no n_hidden; its sizes are: batch_size, n_embd, block_size, n_head, n_layer"),
])
def test_bad_sizes_raise_config_error_naming_the_rule(fields: dict[str, int], field: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config(net="gpt", **fields)
    assert raised.value.field == field and phrase in raised.value.message


# ---- initialisation and data --------------------------------------------------------------------------

def test_gpt2_initialisation_from_the_configs_generator(gpt_run: Run) -> None:
    v = gpt_run.values
    for name in ("wte", "wpe", "qkvw_0", "fcw_1"):
        assert abs(v[name].std().item() - 0.02) < 0.002, name
    for name in ("attprojw_0", "fcprojw_1"):  # residual projections: 0.02 / sqrt(2 * n_layer) = 0.01
        assert abs(v[name].std().item() - 0.01) < 0.001, name
    for name in ("qkvb_0", "attprojb_1", "fcb_0", "fcprojb_1", "ln1b_0", "ln2b_1", "lnfb"):
        assert not v[name].any(), name
    for name in ("ln1w_0", "ln2w_1", "lnfw"):  # near 1, never exactly 1: a forgotten gain must show
        assert (v[name] != 1).all() and abs(v[name].mean().item() - 1) < 0.05, name
    again = check(Config(net="gpt"), gpt_run.data)
    assert all(torch.equal(again.values[p], v[p]) for p in gpt_run.tape.params)
    assert torch.equal(again.values["Xb"], v["Xb"])
    other = check(Config(net="gpt", seed=1), gpt_run.data)
    assert not torch.equal(other.values["wte"], v["wte"]) and not torch.equal(other.values["Xb"], v["Xb"])


def test_every_position_predicts_the_next_character_of_the_stream(gpt_run: Run) -> None:
    Xb, Yb = gpt_run.values["Xb"], gpt_run.values["Yb"]
    B, T = Xb.shape
    targets = Yb.view(B, T)
    assert torch.equal(targets[:, :-1], Xb[:, 1:])  # each window shifted by one
    windows = gpt_run.data.Ytr.unfold(0, T + 1, 1)  # the MLP's targets in order: every word and its ending "."
    for b in range(B):
        assert (windows == torch.cat([Xb[b], targets[b, -1:]])).all(1).any(), b
    text = gpt_run.batch()
    assert len(text) == B and all(len(row["context"]) == len(row["target"]) == T for row in text)
    assert text[0]["context"][1:] == text[0]["target"][:-1]


# ---- the backward: bit-exact, float64, fused ------------------------------------------------------------

def test_float32_chain_is_bit_exact_end_to_end_and_locally(gpt_run: Run) -> None:
    assert {n: r.status for n, r in gpt_run.nodes.items() if r.status != "exact"} == {}
    assert {n: r.local_status for n, r in gpt_run.nodes.items() if r.local_status != "exact"} == {}


@pytest.mark.parametrize("cfg", [
    Config(net="gpt", seed=7, batch_size=1, block_size=1, n_embd=3, n_head=1, n_layer=1),
    Config(net="gpt", seed=5, batch_size=3, block_size=5, n_embd=12, n_head=3, n_layer=1),
    Config(net="gpt", seed=11, batch_size=64, block_size=16, n_embd=64, n_head=8, n_layer=3),
], ids=["one-position", "small", "wide"])
def test_float32_chain_is_bit_exact_for_other_sizes(cfg: Config, dataset: Dataset) -> None:
    run = check(cfg, dataset)
    assert {n: r.status for n, r in run.nodes.items() if r.status != "exact"} == {}
    assert {n: r.local_status for n, r in run.nodes.items() if r.local_status != "exact"} == {}


@pytest.mark.parametrize("variant", ["chain", "fused"])
def test_float64_agrees_to_1e_12_in_both_variants(variant: str, dataset: Dataset) -> None:
    for cfg in (Config(net="gpt", dtype="float64", variant=variant),
                Config(net="gpt", dtype="float64", variant=variant, seed=3, batch_size=5, n_embd=12, n_head=2,
                       n_layer=3, block_size=6)):
        run = check(cfg, dataset)
        assert len(run.nodes) == 50 * cfg.n_layer + 21  # every step's output but the loss, and every parameter
        for name, node in run.nodes.items():
            assert node.end_to_end.maxdiff is not None and node.end_to_end.maxdiff <= 1e-12, (cfg.n_layer, name)
            assert node.local.maxdiff is not None and node.local.maxdiff <= 1e-12, (cfg.n_layer, name)


def test_fused_blocks_are_llm_cs_one_step_backwards(gpt_fused64: Run) -> None:
    nodes = gpt_fused64.nodes
    assert {b.name for b in gpt_fused64.tape.fused} == {
        "cross_entropy", "layernorm_lnf", *(f"{kind}_{l}" for l in (0, 1) for kind in (
            "layernorm_ln1", "layernorm_ln2", "softmax_att", "gelu_fch_gelu"))}
    assert nodes["logits"].fused == "cross_entropy" and nodes["residual3_1"].fused == "layernorm_lnf"
    assert nodes["encoded"].fused == "layernorm_ln1_0" and nodes["residual2_1"].fused == "layernorm_ln2_1"
    assert nodes["preatt_0"].fused == "softmax_att_0" and nodes["fch_1"].fused == "gelu_fch_gelu_1"
    assert nodes["ln1_rstd_0"].skipped_by == "layernorm_ln1_0" and nodes["preatt_masked_1"].skipped_by == "softmax_att_1"
    assert nodes["att_maxes_0"].skipped_by == "softmax_att_0" and nodes["fch_tanh_0"].skipped_by == "gelu_fch_gelu_0"
    # beside a fused layernorm the residual branch still counts: the formula adds the block to it
    assert gpt_fused64.tape.node_formula("residual2_0", "fused").splitlines() == [
        "dresidual2_0 = dresidual3_0.clone()",
        "dresidual2_0 += ln2_rstd_0 * (ln2w_0*dln2_0 - (ln2w_0*dln2_0).mean(-1, keepdim=True) "
        "- ln2_norm_0 * (ln2w_0*dln2_0*ln2_norm_0).mean(-1, keepdim=True))",
    ]
    # the GELU's output step reads its input too: that branch is the block's, not added twice
    assert gpt_fused64.tape.node_formula("fch_0", "fused").startswith("dfch_0 = (0.5 * (1 + fch_tanh_0)")


def test_fused_float32_is_rounding_only(dataset: Dataset) -> None:
    """Float32 rounds the one-step formulas differently from autograd's chain: relative errors of float32
    rounding (the float64 test shows the formulas agree). allclose alone is too strict a judge here: a bias
    gradient sums 256 positions that nearly cancel, and some of its entries miss rtol 1e-5."""
    run = check(Config(net="gpt", variant="fused"), dataset)
    shown = [r for r in run.nodes.values() if r.skipped_by is None]  # the gradients the fused variant computes
    assert max(r.end_to_end.relerr or 0.0 for r in shown) < 1e-5
    # inside a block, att_maxes is rounding noise on both sides: 0 in exact arithmetic (a shifted row has the
    # same softmax), so its relative error says nothing; its size does
    assert max(run.autograd[f"att_maxes_{l}"].abs().max().item() for l in (0, 1)) < 1e-9
    # the chain inside the cross-entropy block still runs from dloss, untouched by any one-step formula
    assert all(run.nodes[n].status == "exact" for n in ("logprobs", "probs", "counts", "logit_maxes"))
    assert run.nodes["logits"].fused == "cross_entropy" and run.nodes["logits"].status == "approx"


def test_the_mask_zeroes_the_gradient_above_the_diagonal(gpt_run: Run) -> None:
    above = ~gpt_run.constants["tril"]
    assert torch.isinf(gpt_run.values["preatt_masked_0"][..., above]).all()
    assert not gpt_run.values["att_1"][..., above].any()
    for name in ("preatt_masked_0", "preatt_0", "scores_1", "att_norm_1"):  # datt itself is not 0 there: dy @ v.T
        assert not gpt_run.manual[name][..., above].any(), name
    assert gpt_run.manual["att_1"][..., above].any()
    assert torch.allclose(gpt_run.values["att_0"].sum(-1), torch.ones(32, 4, 8))


# ---- finite differences and an independent forward --------------------------------------------------------

@pytest.mark.parametrize("cfg", [
    Config(net="gpt", dtype="float64"),
    Config(net="gpt", seed=7, variant="fused"),
    Config(net="gpt", seed=3, batch_size=4, block_size=5, n_embd=12, n_head=3, n_layer=3),
], ids=["default", "fused-seed7", "small-3-layers"])
def test_finite_differences_agree_for_every_parameter(cfg: Config, dataset: Dataset) -> None:
    run = check(cfg, dataset)
    fd = finite_differences(run)
    assert set(fd) == set(run.tape.params)
    for name, result in fd.items():
        assert result.relerr <= 1e-6, (name, result.relerr)
        assert result.relerr_manual <= 1e-6, (name, result.relerr_manual)


def test_forward_matches_torchs_own_layers(gpt_run: Run) -> None:
    """An independent transcription with F.layer_norm, F.gelu(approximate="tanh") and
    F.scaled_dot_product_attention(is_causal=True), as nanoGPT's model.py would run it."""
    v = gpt_run.values
    B, T = v["Xb"].shape
    C, nh = 32, 4
    x = v["wte"][v["Xb"]] + v["wpe"]
    for l in range(2):
        h = F.layer_norm(x, (C,), v[f"ln1w_{l}"], v[f"ln1b_{l}"])
        q, k, val = (h @ v[f"qkvw_{l}"].T + v[f"qkvb_{l}"]).split(C, dim=2)
        q, k, val = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, val))
        y = F.scaled_dot_product_attention(q, k, val, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + y @ v[f"attprojw_{l}"].T + v[f"attprojb_{l}"]
        h = F.layer_norm(x, (C,), v[f"ln2w_{l}"], v[f"ln2b_{l}"])
        x = x + F.gelu(h @ v[f"fcw_{l}"].T + v[f"fcb_{l}"], approximate="tanh") @ v[f"fcprojw_{l}"].T + v[f"fcprojb_{l}"]
    logits = F.layer_norm(x, (C,), v["lnfw"], v["lnfb"]) @ v["wte"].T
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), v["Yb"])
    assert abs(loss.item() - gpt_run.loss) < 1e-5
    assert torch.allclose(x, v["residual3_1"], atol=1e-6)


def test_the_loss_starts_near_uniform(gpt_run: Run) -> None:
    assert abs(gpt_run.loss - math.log(gpt_run.data.vocab.size)) < 0.1  # GPT-2's small init: near-uniform guesses


# ---- figures: 4-D tensors as a grid of heads --------------------------------------------------------------

def test_attention_is_shown_as_a_grid_of_heads(gpt_run: Run) -> None:
    att = gpt_run.values["att_0"]
    axes = GPT.axes("att_0", 4)
    assert axes == ("batch", "head", "query time", "key time")
    assert GPT.axes("q_1", 4) == ("batch", "head", "time", "head channel")
    assert GPT.axes("ln1_0", 3) == ("batch", "time", "channel") and GPT.axes("qkvw_0", 2)[0] == "output channel"
    grid, how, rows, cols = to_2d(att, axes)
    assert grid.shape == (32 * 8, 4 * 8) and rows == "(batch, query time)" and cols == "(head, key time)"
    assert "grid of 32 × 4 blocks of 8 × 8" in how
    b, h = 5, 2  # the block of sample 5, head 2 is that head's attention matrix as it is
    assert torch.equal(grid[b * 8:(b + 1) * 8, h * 8:(h + 1) * 8], att[b, h])
    # the figure shows one sample at a time, its heads as a grid (tests/ninja_core/test_attention_figure.py)
    spec = gpt_run.figure("preatt_masked_1").to_plotly_json()
    assert spec["layout"]["xaxis3"]["title"]["text"] == "key time"
    assert spec["layout"]["meta"]["how"].startswith("sample 0 of 32") and spec["layout"]["meta"]["samples"] == 32
