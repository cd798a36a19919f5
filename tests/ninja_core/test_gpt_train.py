"""Training the GPT with its hand-written backward (nets/gpt_train.py and the generic loop): the fast step's
gradients are the tape's manual backward and autograd's (float32 and float64, several sizes), its training
reproduces autograd's training from the same seed, evaluation scores every character once, sampling starts
at a word's start, the audit, save / load / sample, the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ninja_core.backward import both_passes, forward, manual_backward
from ninja_core.cli import main
from ninja_core.config import Config
from ninja_core.data import Dataset, load_dataset
from ninja_core.nets import generator, get_net
from ninja_core.nets.gpt_train import GPTStep, eval_windows
from ninja_core.train import (
    AuditEvent,
    ProgressEvent,
    TrainConfig,
    TrainEvent,
    TrainResult,
    iter_training,
    load_model,
    make_optimizer,
    resolve_dataset,
    sample_names,
    split_loss,
    train,
)
from ninja_core.train.bench import reproduce

NET = get_net("gpt")
TINY = {"n_embd": 8, "n_head": 2, "n_layer": 1, "block_size": 4, "batch_size": 8}  # a step of ~0.2 ms


def _batch(cfg: Config, dataset: Dataset) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    data = resolve_dataset(dataset, NET.context_length(cfg))
    g = generator(cfg)
    params = NET.init_params(cfg, data.vocab.size, g)
    Xb, Yb = NET.batch(cfg, data, g)
    return params, Xb, Yb


CONFIGS = [
    Config(net="gpt"),
    Config(net="gpt", dtype="float64"),
    Config(net="gpt", seed=3, batch_size=5, block_size=3, n_embd=6, n_head=2, n_layer=1),
    Config(net="gpt", seed=7, batch_size=3, block_size=1, n_embd=4, n_head=4, n_layer=3),  # head size 1, one position
    Config(net="gpt", seed=11, batch_size=9, block_size=32, n_embd=12, n_head=3, n_layer=2, dtype="float64"),
    Config(net="gpt", batch_size=32, block_size=16, n_embd=32, n_head=4, n_layer=2),  # the training recipe's sizes
    Config(net="gpt", batch_size=32, block_size=16, n_embd=64, n_head=4, n_layer=2),  # the autograd reference
]
IDS = ["default", "float64", "tiny", "head-size-1", "block-32-float64", "recipe", "issue-reference"]


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_the_fast_step_gives_the_tapes_manual_gradients_and_autograds(cfg: Config, dataset: Dataset) -> None:
    params, Xb, Yb = _batch(cfg, dataset)
    step = NET.train_step(cfg, params)
    assert isinstance(step, GPTStep)
    with torch.no_grad():
        step.forward_backward(Xb, Yb)
    tape = NET.tape(cfg)
    values, autograd, fused = both_passes(tape, {k: v.clone() for k, v in params.items()}, Xb, Yb,
                                          NET.constants(cfg, Xb), "fused")
    chain = manual_backward(tape, values, "chain")
    scale = max(float(autograd[name].abs().max()) for name in tape.params)
    tol = 2e-6 if cfg.dtype == "float32" else 1e-13
    assert list(step.grads) == list(tape.params) and list(step.params) == list(tape.params)
    for name in tape.params:
        assert step.grads[name].shape == params[name].shape, name
        for label, reference in (("autograd", autograd), ("tape fused", fused), ("tape chain", chain)):
            torch.testing.assert_close(step.grads[name], reference[name], rtol=tol, atol=tol * scale,
                                       msg=f"{name} vs {label}")
    assert step.take_loss() == pytest.approx(float(values["loss"]), rel=tol)
    assert step.activations() == {}  # no tanh in a GPT


def test_the_step_holds_its_parameters_and_adamw_updates_decay_and_the_rest_as_two_runs(dataset: Dataset) -> None:
    cfg = Config(net="gpt")
    params, Xb, Yb = _batch(cfg, dataset)
    step = NET.train_step(cfg, params)
    for name, p in params.items():
        assert torch.equal(step.params[name], p), name
    optimizer = make_optimizer("adamw", step, NET, 1e-2, 0.1)
    tensors = [p for o in optimizer.optimizers for group in o.param_groups for p in group["params"]]  # type: ignore[attr-defined]
    assert len(tensors) == 2  # the matrices (decayed), then the rest: one slice of the flat buffer each
    decayed = {n for n, p in params.items() if NET.decays(n, tuple(p.shape))}
    assert decayed == {"wte", "wpe", *(f"{k}_{l}" for l in range(2) for k in ("qkvw", "attprojw", "fcw", "fcprojw"))}
    leaves = {n: p.clone() for n, p in params.items()}
    reference = torch.optim.AdamW([{"params": [leaves[n] for n in decayed], "weight_decay": 0.1},
                                   {"params": [p for n, p in leaves.items() if n not in decayed], "weight_decay": 0.0}],
                                  lr=1e-2)
    with torch.no_grad():
        for _ in range(3):
            step.forward_backward(Xb, Yb)
            for name, leaf in leaves.items():
                leaf.grad = step.grads[name].clone()
            optimizer.step(1e-2)
            reference.step()
    for name, leaf in leaves.items():
        torch.testing.assert_close(step.params[name], leaf, rtol=1e-6, atol=1e-7, msg=name)
        assert not torch.equal(step.params[name], params[name]), name


@pytest.mark.parametrize("cfg", [Config(net="gpt"), Config(net="gpt", dtype="float64", n_layer=1, block_size=5)])
def test_the_plain_forward_is_the_tapes_and_predicts_at_every_position(cfg: Config, dataset: Dataset) -> None:
    params, Xb, Yb = _batch(cfg, dataset)
    tape = NET.tape(cfg)
    values = forward(tape, params, Xb, Yb, NET.constants(cfg, Xb))
    logits = NET.logits(cfg, params, Xb)  # (B*T, V)
    tol = 1e-5 if cfg.dtype == "float32" else 1e-12
    torch.testing.assert_close(logits, values["logits"], rtol=tol, atol=tol)
    assert F.cross_entropy(logits, Yb).item() == pytest.approx(float(values["loss"]), rel=tol)
    # causal: a prefix of the window gives the same predictions for its positions
    T = cfg.block_size
    prefix = NET.logits(cfg, params, Xb[:, :2]).view(-1, 2, logits.shape[-1])
    torch.testing.assert_close(prefix, logits.view(-1, T, logits.shape[-1])[:, :2], rtol=tol, atol=tol)


# ---- evaluation: every character once, per character ------------------------------------------

@pytest.mark.parametrize("n", [1, 3, 8, 9, 15, 16, 17, 23, 24, 25, 100, 101])
@pytest.mark.parametrize("block_size, stride", [(8, 4), (8, 1), (8, 8), (4, 3), (1, 1)])
def test_the_evaluation_windows_score_every_target_once_with_its_text_before_it(n: int, block_size: int,
                                                                               stride: int) -> None:
    Y = torch.arange(1, n + 1)  # stands for a split's text; "." (0) comes before it
    scored: list[int] = []
    for Xw, Yw, keep in eval_windows(Config(net="gpt", block_size=block_size), Y, 3, stride):
        rows = Xw.shape[0]
        assert rows <= 3 and Xw.shape[1] <= block_size
        targets = Yw.view(rows, -1)
        assert torch.equal(Xw[:, 1:], targets[:, :-1])  # each input is the character before its target
        assert torch.equal(Xw[:, 0], torch.cat([torch.zeros(1, dtype=Y.dtype), Y])[targets[:, 0] - 1])
        scored += targets[:, -keep:].reshape(-1).tolist()
        if keep < Xw.shape[1] and scored[-1] != n:  # a scored target sees at least T - stride earlier characters
            assert keep == stride and Xw.shape[1] - keep >= block_size - stride
    assert scored == list(range(1, n + 1))


def test_a_split_loss_is_the_mean_over_its_characters_of_each_ones_window_loss(dataset: Dataset) -> None:
    cfg = TrainConfig(net="gpt", **TINY)
    model_cfg = cfg.model_config()
    data = resolve_dataset(dataset, 4)
    params = NET.init_params(model_cfg, data.vocab.size, generator(model_cfg))
    Y = data.Ydev[:50]
    expected = []  # target i, with the text before it in its window (the first 4: from the start; then windows of 4
    text = torch.cat([torch.zeros(1, dtype=Y.dtype), Y])  # at stride 2, each scoring its last 2)
    for i in range(50):
        start = 0 if i < 4 else (i - 4) // 2 * 2 + 2
        if start + 4 > 50:
            start = 46
        window = text[start:start + 4]
        logits = NET.logits(model_cfg, params, window[None])[i - start]
        expected.append(F.cross_entropy(logits[None], Y[i:i + 1]).item())
    assert split_loss(cfg, params, {}, data.Xdev[:50], Y) == pytest.approx(sum(expected) / 50, rel=1e-6)
    assert math.isnan(split_loss(cfg, params, {}, data.Xdev[:0], Y[:0]))


# ---- training reproduces autograd's, from the same seed ---------------------------------------

def test_training_with_the_manual_backward_reproduces_autograds_training(dataset: Dataset) -> None:
    """2 000 steps of AdamW on the same minibatches from the same initial parameters: at every logged
    step (every 100) the two mean losses agree to 1e-4 relative, while the loss falls by far more."""
    cfg = TrainConfig(net="gpt", steps=2000, lr=3e-3, lr_decay_at=0.8, lr_decayed=3e-4, **TINY)
    result = reproduce(cfg, every=100, data=dataset)
    assert result.steps == list(range(100, 2001, 100))
    assert max(result.rel_diff) <= 1e-4, result.rel_diff
    assert result.autograd[0] - result.autograd[-1] > 0.4  # it trained: ~3.0 -> ~2.4
    assert result.rel_diff == [abs(m - a) / a for m, a in zip(result.manual, result.autograd, strict=True)]


def test_the_reproduction_catches_a_forgotten_gradient_and_the_audit_a_scaled_one(
        dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forgotten bias gradient (dfcb left at 0) moves the losses 30x past the tolerance. A gradient
    off by a constant factor hardly moves them: AdamW divides each gradient by its own running size,
    so the trajectory barely notices (measured 5e-6 for dfcw 1% too large) -- the audit, which
    compares the gradients themselves, is what catches that one."""
    original = GPTStep.forward_backward
    skew = {"fcb_0": 0.0}

    def skewed(self: GPTStep, Xb: torch.Tensor, Yb: torch.Tensor) -> None:
        original(self, Xb, Yb)
        for name, factor in skew.items():
            self.grads[name].mul_(factor)

    monkeypatch.setattr(GPTStep, "forward_backward", skewed)
    cfg = TrainConfig(net="gpt", steps=2000, lr=3e-3, lr_decay_at=0.8, lr_decayed=3e-4, **TINY)
    assert reproduce(cfg, every=100, data=dataset).max_rel_diff > 1e-3
    skew.clear()
    skew["fcw_0"] = 1.01
    audits = [e for e in iter_training(TrainConfig(net="gpt", steps=2, audit_every=1, n_samples=0, **TINY), dataset)
              if isinstance(e, AuditEvent)]
    assert len(audits) == 2 and all(a.worst[0] == "fcw_0" and a.worst[1] > 1e-4 for a in audits), audits


# ---- the training loop, the audit, the model file, the command line --------------------------------

@pytest.fixture(scope="module")
def gpt_run(dataset: Dataset) -> tuple[TrainResult, list[TrainEvent]]:
    events: list[TrainEvent] = []
    cfg = TrainConfig(net="gpt", steps=1500, audit_every=500, progress_every=500, stats_every=500, n_embd=32,
                      block_size=16, lr=3e-3)
    return train(cfg, dataset, on_event=events.append), events


def test_a_short_gpt_run_learns_and_its_audit_holds(gpt_run: tuple[TrainResult, list[TrainEvent]]) -> None:
    result, events = gpt_run
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    assert [p.step for p in progress] == [500, 1000, 1500] and progress[0].loss > progress[-1].loss
    assert max(result.train_loss, result.val_loss, result.test_loss) < 2.5  # ln(27) = 3.30 at the start
    assert result.model.net == "gpt" and set(result.model.params) == set(NET.tape(result.config.model_config()).params)
    assert result.model.stats == {}
    audits = [e for e in events if isinstance(e, AuditEvent)]
    assert [a.step for a in audits] == [0, 500, 1000]
    assert all(0 < max(a.max_rel_diff.values()) <= 1e-5 for a in audits)
    assert len(result.samples) == 20 and all(set(s) <= set("abcdefghijklmnopqrstuvwxyz") for s in result.samples)
    assert sum(len(s) for s in result.samples) > 40  # names, not empty strings


def test_the_audit_in_float64_agrees_to_rounding(dataset: Dataset) -> None:
    events = list(iter_training(TrainConfig(net="gpt", steps=40, audit_every=20, dtype="float64", n_samples=2, **TINY),
                                dataset))
    audits = [e for e in events if isinstance(e, AuditEvent)]
    assert [a.step for a in audits] == [0, 20] and all(max(a.max_rel_diff.values()) <= 1e-12 for a in audits)


def test_the_tapes_backward_trains_the_same_gpt(dataset: Dataset) -> None:
    cfg = TrainConfig(net="gpt", steps=30, n_samples=0, stats_every=0, progress_every=0, **TINY)
    fast = train(cfg, dataset).model.params
    reference = train(TrainConfig(**{**cfg.to_dict(), "backward": "reference"}), dataset).model.params
    for name, p in fast.items():
        torch.testing.assert_close(p, reference[name], rtol=1e-4, atol=1e-5, msg=name)


def test_save_load_and_sample_round_trip(gpt_run: tuple[TrainResult, list[TrainEvent]], dataset: Dataset,
                                         tmp_path: Path) -> None:
    model = gpt_run[0].model
    model.save(tmp_path / "gpt.pt")
    loaded = load_model(tmp_path / "gpt.pt")
    assert loaded.config == model.config and loaded.net == "gpt"
    for name, p in model.params.items():
        assert torch.equal(loaded.params[name], p), name
    assert loaded.sample(20) == gpt_run[0].samples  # the lecture's sampling seed: the training seed + 10
    assert loaded.sample(5, seed=1) == model.sample(5, seed=1) != model.sample(5, seed=2)
    data = resolve_dataset(dataset, 16)
    assert loaded.loss(data.Xdev, data.Ydev) == pytest.approx(gpt_run[0].val_loss, rel=1e-9)


def test_sampling_starts_at_a_words_start_and_runs_past_the_block(dataset: Dataset) -> None:
    """A name longer than block_size keeps the last block_size characters as its context."""
    cfg = TrainConfig(net="gpt", **TINY)
    model_cfg = cfg.model_config()
    params = NET.init_params(model_cfg, 27, generator(model_cfg))
    assert NET.sample_context(model_cfg, 0) == [0]
    vocab = load_dataset().vocab
    names = sample_names(cfg, params, {}, vocab, 20, seed=3, max_chars=12)  # untrained: long names, cut at 12
    assert max(len(n) for n in names) == 12


def test_cli_trains_samples_and_benches_the_gpt(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "gpt.pt"
    argv = ["train", "--net", "gpt", "--steps", "200", "--n-embd", "16", "--n-layer", "1", "--audit-every", "100",
            "--json", "--out", str(out)]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["net"] == "gpt" and doc["steps"] == 200 and len(doc["samples"]) == 20
    assert doc["config"]["optimizer"] == "adamw" and len(doc["audit"]) == 2
    assert doc["val_loss"] < 3.0
    assert main(["sample", "--model", str(out), "--n", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"net": "gpt", "samples": load_model(out).sample(3)}
    assert main(["bench", "--net", "gpt", "--n-embd", "16", "--steps", "10", "--rounds", "1", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["net"] == "gpt" and bench["optimizer"] == "adamw" and bench["manual_steps_per_s"] > 0
    assert main(["reproduce", "--net", "gpt", "--steps", "20", "--every", "10", "--n-embd", "8", "--n-head", "2",
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["steps"] == [10, 20] and rep["max_rel_diff"] <= 1e-4
