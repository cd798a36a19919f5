"""ninja_core.train.step and the networks' fast steps: the fast step's gradients are the tape's manual
backward and autograd's (both networks, several sizes, float32 and float64), its update is SGD's,
its plain forward is the tape's, minibatches are the lecture's draws, AdamW reads the manual gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ninja_core.backward import both_passes, forward, manual_backward
from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.nets import generator, get_net
from ninja_core.nets.shared_train import PAD_COLUMNS, LossMeter
from ninja_core.train import BatchSampler, TapeStep, TrainConfig, make_optimizer, resolve_dataset


def _batch(cfg: Config, dataset: Dataset) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    net = get_net(cfg.net)
    dataset = resolve_dataset(dataset, net.context_length(cfg))  # the same words, the network's context
    g = generator(cfg)
    params = net.init_params(cfg, dataset.vocab.size, g)
    Xb, Yb = net.batch(cfg, dataset, g)
    return params, Xb, Yb


CONFIGS = [
    Config(n_hidden=200),
    Config(seed=1, batch_size=7, n_embd=3, n_hidden=13, block_size=1),
    Config(seed=5, batch_size=100, n_embd=17, n_hidden=33, block_size=8),
    Config(n_hidden=200, dtype="float64"),
    Config(net="wavenet"),
    Config(net="wavenet", seed=3, batch_size=5, n_embd=3, n_hidden=9),
    Config(net="wavenet", seed=9, batch_size=70, n_embd=30, n_hidden=100),
    Config(net="wavenet", dtype="float64"),
]
IDS = ["mlp-lecture", "mlp-tiny", "mlp-odd-sizes", "mlp-float64", "wavenet-lecture", "wavenet-tiny", "wavenet-odd",
       "wavenet-float64"]


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_the_fast_step_gives_the_tapes_manual_gradients_and_autogradss(cfg: Config, dataset: Dataset) -> None:
    net = get_net(cfg.net)
    params, Xb, Yb = _batch(cfg, dataset)
    step = net.train_step(cfg, params)
    assert step is not None
    with torch.no_grad():
        step.forward_backward(Xb, Yb)
    tape = net.tape(cfg)
    values, autograd, fused = both_passes(tape, {k: v.clone() for k, v in params.items()}, Xb, Yb,
                                          net.constants(cfg, Xb), "fused")
    chain = manual_backward(tape, values, "chain")
    scale = max(float(autograd[name].abs().max()) for name in tape.params)
    tol = 2e-6 if cfg.dtype == "float32" else 1e-14
    assert set(step.grads) == set(tape.params)
    for name in tape.params:
        for label, reference in (("autograd", autograd), ("tape fused", fused), ("tape chain", chain)):
            torch.testing.assert_close(step.grads[name], reference[name], rtol=tol, atol=tol * scale,
                                       msg=f"{name} vs {label}")
    assert step.take_loss() == pytest.approx(float(values["loss"]), rel=tol)
    assert set(step.activations()) == set(net.tanh_nodes(cfg))
    for name, h in step.activations().items():  # tanh in [-1, 1], computed as 2*sigmoid(2x) - 1
        torch.testing.assert_close(h.reshape(values[name].shape), values[name], rtol=0, atol=1e-5 if tol > 1e-10 else 1e-13)


@pytest.mark.parametrize("net_name", ["mlp", "wavenet"])
def test_the_step_holds_the_parameters_it_was_given_and_sgd_updates_them(net_name: str, dataset: Dataset) -> None:
    cfg = Config(net=net_name, n_hidden=64)
    net = get_net(net_name)
    params, Xb, Yb = _batch(cfg, dataset)
    step = net.train_step(cfg, params)
    assert step is not None
    for name, p in params.items():
        assert torch.equal(step.params[name], p), name
    with torch.no_grad():
        step.forward_backward(Xb, Yb)
        expected = {name: step.params[name] - 0.1 * step.grads[name] for name in params}
        make_optimizer("sgd", step, net, 0.1, 0.0).step(0.1)
    for name in params:
        torch.testing.assert_close(step.params[name], expected[name], rtol=1e-6, atol=1e-7)
    # the padding of the output layer never moves: its gradient is exactly zero
    assert step.flat_params.shape == step.flat_grads.shape
    assert int(step.flat_params.numel()) > sum(p.numel() for p in params.values())  # the padding is there
    assert sum(p.numel() for p in step.params.values()) == sum(p.numel() for p in params.values())


def test_the_output_layer_is_padded_to_whole_vector_widths(dataset: Dataset) -> None:
    cfg = Config(n_hidden=32)
    step = get_net("mlp").train_step(cfg, _batch(cfg, dataset)[0])
    assert step is not None
    assert step.params["W2"].shape == (32, 27) and step.params["W2"].stride() == (32, 1)
    assert 32 % PAD_COLUMNS == 0


@pytest.mark.parametrize("net_name", ["mlp", "wavenet"])
def test_the_plain_forward_is_the_tapes(net_name: str, dataset: Dataset) -> None:
    """Network.logits (the autograd baseline and, with statistics, the evaluation) is the tape's network."""
    cfg = Config(net=net_name, dtype="float64")
    net = get_net(net_name)
    params, Xb, Yb = _batch(cfg, dataset)
    tape_loss = forward(net.tape(cfg), params, Xb, Yb, net.constants(cfg, Xb))["loss"]
    plain = F.cross_entropy(net.logits(cfg, params, Xb), Yb)
    assert float(plain) == pytest.approx(float(tape_loss), rel=1e-12)
    # with the minibatch's own statistics as the calibrated ones, evaluation gives the same logits
    stats = net.calibrate(cfg, params, Xb)
    assert set(stats) == set(net.calibration_shapes(cfg))
    for name, shape in net.calibration_shapes(cfg).items():
        assert tuple(stats[name].shape) == shape, name
    torch.testing.assert_close(net.logits(cfg, params, Xb, stats), net.logits(cfg, params, Xb), rtol=1e-10, atol=1e-10)


def test_the_tape_step_is_the_engines_fused_backward(dataset: Dataset) -> None:
    cfg = Config(net="wavenet", dtype="float64")
    net = get_net("wavenet")
    params, Xb, Yb = _batch(cfg, dataset)
    step = TapeStep(net, cfg, params)
    step.forward_backward(Xb, Yb)
    tape = net.tape(cfg)
    engine = manual_backward(tape, forward(tape, params, Xb, Yb, net.constants(cfg, Xb)), "fused")
    for name in tape.params:
        assert torch.equal(step.grads[name], engine[name]), name
    assert set(step.activations()) == {"h1", "h2", "h3"}
    assert step.take_loss() > 0 and step.take_loss() != step.take_loss()  # NaN once taken


def test_adamw_updates_from_the_manual_gradients(dataset: Dataset) -> None:
    cfg = Config(n_hidden=32)
    net = get_net("mlp")
    params, Xb, Yb = _batch(cfg, dataset)
    step = net.train_step(cfg, params)
    assert step is not None
    optimizer = make_optimizer("adamw", step, net, 1e-2, 0.1)
    leaves = [p.clone() for p in params.values()]
    reference = torch.optim.AdamW([{"params": [leaves[i] for i in (0, 1, 3)], "weight_decay": 0.1},  # C, W1, W2
                                   {"params": [leaves[i] for i in (2, 4, 5, 6)], "weight_decay": 0.0}], lr=1e-2)
    assert [net.decays(n, tuple(p.shape)) for n, p in params.items()] == [True, True, False, True, False, False, False]
    with torch.no_grad():
        for _ in range(3):
            step.forward_backward(Xb, Yb)
            for leaf, name in zip(leaves, params, strict=True):
                leaf.grad = step.grads[name].clone()
            optimizer.step(1e-2)
            reference.step()
    for leaf, name in zip(leaves, params, strict=True):
        torch.testing.assert_close(step.params[name], leaf, rtol=1e-6, atol=1e-7, msg=name)
    assert not torch.equal(step.params["W1"], params["W1"])


def test_batches_are_the_lectures_per_step_draws(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BatchSampler, "CHUNK_ROWS", 96)  # 3 steps a chunk: cross chunk boundaries
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    batches = list(BatchSampler(dataset.Xtr, dataset.Ytr, 32, g1, 10))
    assert len(batches) == 10
    for Xb, Yb in batches:
        ix = torch.randint(0, dataset.Xtr.shape[0], (32,), generator=g2)
        assert torch.equal(Xb, dataset.Xtr[ix]) and torch.equal(Yb, dataset.Ytr[ix])
    assert torch.equal(g1.get_state(), g2.get_state())  # drew exactly what was asked for


def test_the_loss_meter_averages_minus_log_p_over_its_ring() -> None:
    meter = LossMeter(2, torch.float32, torch.device("cpu"))
    y = torch.tensor([[0], [1]])
    for step in range(LossMeter.SLOTS + 3):  # crosses a flush of the ring
        probs = torch.tensor([[0.5, 0.5], [0.25, 0.75]]) if step % 2 == 0 else torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        meter.record(probs, y)
    expected = sum((-torch.tensor([0.5, 0.75]).log()).sum().item() if s % 2 == 0 else 0.0
                   for s in range(LossMeter.SLOTS + 3)) / (2 * (LossMeter.SLOTS + 3))
    assert meter.take() == pytest.approx(expected, rel=1e-6)
    assert meter.take() != meter.take()  # NaN: nothing since


def test_a_network_without_a_fast_step_trains_on_its_tape(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from ninja_core.train import make_step

    net = get_net("mlp")
    cfg = Config(n_hidden=16)
    params = _batch(cfg, dataset)[0]
    monkeypatch.setattr(type(net), "train_step", lambda self, c, p: None)
    assert isinstance(make_step(net, cfg, params, "fast"), TapeStep)
    assert TrainConfig(backward="reference").backward == "reference"
