"""The lecture's WaveNet (makemore part 5) on the engine: sizes, parameters, bit-exactness, the trap."""

from __future__ import annotations

import pytest
import torch

from ninja_core.config import Config, ConfigError
from ninja_core.data import Dataset
from ninja_core.nets import get_net
from ninja_core.run import Run, check


@pytest.fixture(scope="module")
def wavenet_run(dataset: Dataset) -> Run:
    return check(Config(net="wavenet"), dataset)


def test_defaults_are_the_lectures_and_count_76579_parameters(wavenet_run: Run) -> None:
    cfg = wavenet_run.config
    assert (cfg.block_size, cfg.n_embd, cfg.n_hidden, cfg.batch_size) == (8, 24, 128, 32)
    assert sum(wavenet_run.values[p].numel() for p in wavenet_run.tape.params) == 76_579
    assert get_net("wavenet").n_params(cfg, wavenet_run.data.vocab.size) == 76_579


def test_three_levels_pair_up_the_context(wavenet_run: Run) -> None:
    v = wavenet_run.values
    assert v["emb"].shape == (32, 8, 24)
    assert v["x1"].shape == (32, 4, 48) and v["h1"].shape == (32, 4, 128)
    assert v["x2"].shape == (32, 2, 256) and v["h2"].shape == (32, 2, 128)
    assert v["x3"].shape == (32, 256) and v["h3"].shape == (32, 128)
    # the part-5 fix: batchnorm statistics over batch and time, one per channel
    assert v["bnmeani1"].shape == (1, 1, 128) and v["bnvar2"].shape == (1, 1, 128)
    assert v["bnmeani3"].shape == (1, 128)


def test_float32_chain_is_bit_exact_end_to_end_and_locally(wavenet_run: Run) -> None:
    assert len(wavenet_run.nodes) == 51  # 39 intermediates and 12 parameters
    assert {n: r.status for n, r in wavenet_run.nodes.items() if r.status != "exact"} == {}
    assert {n: r.local_status for n, r in wavenet_run.nodes.items() if r.local_status != "exact"} == {}


@pytest.mark.parametrize("cfg", [
    Config(net="wavenet", seed=7, batch_size=5, n_embd=3, n_hidden=9),
    Config(net="wavenet", seed=11, batch_size=300, n_embd=32, n_hidden=200),
], ids=["tiny", "wide"])
def test_float32_chain_is_bit_exact_for_other_sizes(cfg: Config, dataset: Dataset) -> None:
    run = check(cfg, dataset)
    assert {n: r.status for n, r in run.nodes.items() if r.status != "exact"} == {}


@pytest.mark.parametrize("variant", ["chain", "fused"])
def test_float64_agrees_to_1e_12_in_both_variants(variant: str, dataset: Dataset) -> None:
    run = check(Config(net="wavenet", dtype="float64", variant=variant), dataset)
    for name, node in run.nodes.items():
        assert node.end_to_end.maxdiff is not None and node.end_to_end.maxdiff <= 1e-12, name


def test_fused_blocks_replace_batchnorm_over_batch_and_time(dataset: Dataset) -> None:
    run = check(Config(net="wavenet", variant="fused", dtype="float64"), dataset)
    assert {run.nodes[n].fused for n in ("logits", "hprebn1", "hprebn2", "hprebn3")} == \
        {"cross_entropy", "batchnorm1", "batchnorm2", "batchnorm3"}
    assert run.nodes["bnvar_inv1"].skipped_by == "batchnorm1"
    assert run.nodes["probs"].skipped_by == "cross_entropy"


def test_forward_matches_the_lectures_layers(wavenet_run: Run) -> None:
    """An independent transcription with the lecture's BatchNorm1d (x.mean / x.var over (0, 1))."""
    v = wavenet_run.values
    x = v["C"][v["Xb"]]
    for k in (1, 2, 3):
        B, T, C = x.shape
        x = x.view(B, T // 2, C * 2)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        x = x @ v[f"W{k}"]
        dims = (0, 1) if x.ndim == 3 else (0,)
        xhat = (x - x.mean(dims, keepdim=True)) / torch.sqrt(x.var(dims, keepdim=True) + 1e-5)
        x = torch.tanh(v[f"bngain{k}"] * xhat + v[f"bnbias{k}"])
    loss = torch.nn.functional.cross_entropy(x @ v["W4"] + v["b4"], v["Yb"])
    assert abs(loss.item() - wavenet_run.loss) < 1e-5


def test_sizes_are_checked_per_network() -> None:
    with pytest.raises(ConfigError, match="must be 8 for wavenet"):
        Config(net="wavenet", block_size=4)
    with pytest.raises(ConfigError, match="wavenet has no n_head"):
        Config(net="wavenet", n_head=2)
    with pytest.raises(ConfigError, match="the networks are: mlp, wavenet"):
        Config(net="resnet")
    assert Config(net="wavenet").to_dict()["n_hidden"] == 128
    assert "n_head" not in Config().to_dict()
