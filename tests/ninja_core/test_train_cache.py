"""ninja_core.train.cache: trained parameters for the engine's check, for either network, cached."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from ninja_core.config import Config
from ninja_core.data import Dataset
from ninja_core.nets import get_net
from ninja_core.run import check
from ninja_core.train import (
    TrainConfig,
    remember_trained_params,
    resolve_dataset,
    train,
    trained_params,
    trained_params_cache_clear,
    trained_params_cache_info,
)


def test_trained_params_are_deterministic_and_cached(dataset: Dataset) -> None:
    cfg = Config(n_hidden=32)
    trained_params_cache_clear()
    first = trained_params(cfg, 200, dataset)
    again = trained_params(cfg, 200, dataset)
    assert trained_params_cache_info()["hits"] == 1 and trained_params_cache_info()["misses"] == 1
    again["W1"].zero_()  # callers get copies: the cache is not theirs to change
    trained_params_cache_clear()
    fresh = trained_params(cfg, 200, dataset)  # recomputed from scratch
    for name in first:
        assert torch.equal(first[name], fresh[name]), name
    assert not torch.equal(first["W1"], trained_params(cfg, 201, dataset)["W1"])
    # the variant, dtype and the check's own train_steps do not change the trained network
    assert torch.equal(first["W1"], trained_params(cfg.replace(dtype="float64", variant="fused"), 200, dataset)["W1"])


@pytest.mark.parametrize("net", ["mlp", "wavenet"])
def test_check_uses_trained_params_when_train_steps_is_set(net: str, dataset: Dataset) -> None:
    cfg = Config(net=net, n_hidden=32, train_steps=200)
    run = check(cfg, dataset)
    trained = trained_params(cfg, 200, dataset)
    untrained = check(cfg.replace(train_steps=0), dataset)
    assert set(trained) == set(get_net(net).tape(cfg).params)
    for name, p in trained.items():
        assert torch.equal(run.values[name], p), name
    assert not torch.equal(run.values["W1"], untrained.values["W1"])
    assert torch.equal(run.values["Xb"], untrained.values["Xb"])  # the same minibatch, a trained network
    assert run.loss < untrained.loss
    assert {node.status for node in run.nodes.values()} <= {"exact", "approx"}
    run64 = check(cfg.replace(dtype="float64"), dataset)
    assert torch.equal(run64.values["W1"], trained["W1"].double())


def test_a_finished_stream_run_is_remembered(dataset: Dataset) -> None:
    """The web's training stream hands its weights over: the gradient view after it trains nothing."""
    trained_params_cache_clear()
    cfg = TrainConfig(net="wavenet", n_hidden=16, steps=60, stats_every=20, progress_every=20, n_samples=0)
    words = resolve_dataset(dataset, 8)
    result = train(cfg, words)
    assert remember_trained_params(cfg, words, result.model.params)
    params = trained_params(Config(net="wavenet", n_hidden=16), 60, words)
    assert trained_params_cache_info() == {"hits": 1, "misses": 0, "size": 1, "maxsize": 8}
    for name, p in params.items():
        assert torch.equal(p, result.model.params[name]), name
    assert not remember_trained_params(TrainConfig(net="wavenet", n_hidden=16, steps=60, dtype="float64"), words, params)


def test_a_network_with_only_the_base_hooks_trains_on_its_tape_with_its_recipes_optimizer(
        dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    """A network without a fast step (the GPT with its hook taken away) trains on its tape's manual
    backward (AdamW, its recipe), with its own minibatches, for the engine's check of a trained network."""
    from ninja_core.nets.base import Network
    from ninja_core.nets.gpt import GPT

    monkeypatch.setattr(GPT, "train_step", Network.train_step)
    # what this test trains on the tape stays out of the other tests' cache
    import importlib

    monkeypatch.setattr(importlib.import_module("ninja_core.train.cache"), "_trained_cache", OrderedDict())
    cfg = Config(net="gpt", n_layer=1, n_embd=16, n_head=2, batch_size=4)
    assert TrainConfig(net="gpt").optimizer == "adamw"
    trained = trained_params(cfg, 5, dataset)
    initial = check(cfg.replace(train_steps=0), dataset)
    assert set(trained) == set(get_net("gpt").tape(cfg).params)
    assert all(not torch.equal(trained[name], initial.values[name]) for name in ("wte", "qkvw_0", "lnfw"))
    run = check(cfg.replace(train_steps=5), dataset)
    assert {node.status for node in run.nodes.values()} <= {"exact", "approx"}


def test_the_gpt_is_checked_after_training_with_its_fast_step(dataset: Dataset) -> None:
    cfg = Config(net="gpt", n_layer=1, n_embd=16, n_head=2)
    trained = trained_params(cfg, 200, dataset)
    run = check(cfg.replace(train_steps=200), dataset)
    assert all(torch.equal(run.values[name], trained[name]) for name in trained)
    assert run.values["loss"].item() < check(cfg, dataset).values["loss"].item() - 0.3  # it learned
    assert {node.status for node in run.nodes.values()} <= {"exact", "approx"}
