"""ninja_core.train.config: TrainConfig resolves each network's recipe and sizes, checks every field."""

from __future__ import annotations

import math

import pytest

from ninja_core.config import ConfigError
from ninja_core.train import TrainConfig


def test_left_out_fields_are_the_networks_recipe() -> None:
    mlp = TrainConfig()
    assert (mlp.net, mlp.steps, mlp.batch_size, mlp.lr, mlp.lr_decayed) == ("mlp", 200_000, 32, 0.1, 0.01)
    assert mlp.decay_step == 100_000  # the lecture: lr = 0.1 if i < 100000 else 0.01
    assert (mlp.n_embd, mlp.n_hidden, mlp.block_size, mlp.optimizer) == (10, 200, 3, "sgd")  # the lecture trains n_hidden 200
    wavenet = TrainConfig(net="wavenet")
    assert (wavenet.steps, wavenet.batch_size, wavenet.lr, wavenet.lr_decayed) == (200_000, 32, 0.1, 0.01)
    assert wavenet.decay_step == 150_000  # the lecture: lr = 0.1 if i < 150000 else 0.01
    assert (wavenet.n_embd, wavenet.n_hidden, wavenet.block_size) == (24, 128, 8)
    assert (wavenet.n_head, wavenet.n_layer) == (0, 0)
    assert TrainConfig(net="wavenet", n_hidden=64, steps=1000).decay_step == 750  # the schedule scales with steps
    gpt = TrainConfig(net="gpt")  # AdamW; the check's sizes but a context of 16 (nets/gpt.py says why)
    assert (gpt.steps, gpt.batch_size, gpt.optimizer, gpt.lr, gpt.lr_decayed, gpt.decay_step, gpt.weight_decay) == (
        40_000, 32, "adamw", 1e-3, 1e-4, 30_000, 0.1)
    assert (gpt.n_embd, gpt.block_size, gpt.n_head, gpt.n_layer, gpt.n_hidden) == (32, 16, 4, 2, 0)
    assert TrainConfig(net="gpt", block_size=8).block_size == 8  # a size given wins over the recipe's


def test_the_model_config_is_the_engines() -> None:
    cfg = TrainConfig(net="wavenet", seed=5, n_hidden=64, dtype="float64").model_config()
    assert (cfg.net, cfg.seed, cfg.n_hidden, cfg.n_embd, cfg.block_size, cfg.dtype) == ("wavenet", 5, 64, 24, 8, "float64")


def test_the_learning_rate_schedule() -> None:
    cfg = TrainConfig(steps=10)
    assert [cfg.lr_at(i) for i in range(10)] == [0.1] * 5 + [0.01] * 5
    assert TrainConfig(steps=10, lr_decay_at=0.3).decay_step == 3  # rounded, not truncated
    assert {TrainConfig(steps=10, lr_decay_at=0.0).lr_at(i) for i in range(10)} == {0.01}
    assert {TrainConfig(steps=10, lr_decay_at=1.0).lr_at(i) for i in range(10)} == {0.1}


@pytest.mark.parametrize("changes, field", [
    ({"net": "gpt9"}, "net"),
    ({"n_hidden": -1}, "n_hidden"),
    ({"n_hidden": 2048}, "n_hidden"),
    ({"net": "wavenet", "block_size": 3}, "block_size"),
    ({"n_head": 4}, "n_head"),
    ({"batch_size": 1}, "batch_size"),
    ({"steps": -1}, "steps"),
    ({"steps": 1.5}, "steps"),
    ({"audit_every": True}, "audit_every"),
    ({"lr": 0.0}, "lr"),
    ({"lr": math.nan}, "lr"),
    ({"lr": "fast"}, "lr"),
    ({"lr_decay_at": 1.5}, "lr_decay_at"),
    ({"weight_decay": -1.0}, "weight_decay"),
    ({"optimizer": "adam"}, "optimizer"),
    ({"dtype": "float16"}, "dtype"),
    ({"backward": "sideways"}, "backward"),
    ({"data": 3}, "data"),
])
def test_bad_train_configs_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        TrainConfig(**changes)  # type: ignore[arg-type]
    assert exc.value.field == field


def test_a_bad_network_names_the_networks() -> None:
    with pytest.raises(ConfigError, match="mlp, wavenet"):
        TrainConfig(net="gpt9")


def test_train_config_round_trips_and_rejects_unknown_fields() -> None:
    for cfg in (TrainConfig(steps=123, data="x.txt"), TrainConfig(net="wavenet", n_hidden=64, optimizer="adamw", lr=1e-3)):
        doc = cfg.to_dict()
        assert TrainConfig.from_dict(doc) == cfg
        assert "n_head" not in doc and doc["net"] == cfg.net  # sizes the network lacks are left out
    with pytest.raises(ConfigError, match="unknown field"):
        TrainConfig.from_dict({"stepz": 1})
