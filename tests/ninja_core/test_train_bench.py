"""ninja_core.train.bench: one run times autograd training, the manual step and the tape's step on the
same network, data, seed and optimizer (the figures themselves live in `make bench`, not in tests)."""

from __future__ import annotations

import pytest
import torch

from ninja_core.data import Dataset
from ninja_core.train import TrainConfig
from ninja_core.train.bench import bench


@pytest.mark.parametrize("cfg", [TrainConfig(n_hidden=32), TrainConfig(net="wavenet", n_hidden=16),
                                 TrainConfig(n_hidden=16, optimizer="adamw", lr=1e-3)], ids=["mlp", "wavenet", "adamw"])
def test_bench_times_every_contender_and_restores_threads(cfg: TrainConfig, dataset: Dataset) -> None:
    saved = torch.get_num_threads()
    result = bench(cfg, steps=20, rounds=2, data=dataset)
    assert torch.get_num_threads() == saved
    doc = result.to_dict()
    assert {"autograd_steps_per_s", "manual_steps_per_s", "ratio", "reference_steps_per_s", "wall_ratio"} <= set(doc)
    for key in ("autograd_steps_per_s", "manual_steps_per_s", "reference_steps_per_s", "wall_autograd_steps_per_s",
                "wall_manual_steps_per_s"):
        assert doc[key] > 0, key
    assert result.ratio == pytest.approx(result.manual_steps_per_s / result.autograd_steps_per_s)
    assert result.wall_ratio == pytest.approx(result.wall_manual_steps_per_s / result.wall_autograd_steps_per_s)
    assert (result.net, result.threads, result.optimizer, result.steps, result.rounds) == (cfg.net, 1, cfg.optimizer, 20, 2)
    assert repr(result).startswith(f"<BenchResult {cfg.net}: autograd ") and "<table>" in result._repr_html_()


def test_bench_refuses_zero_steps() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        bench(TrainConfig(n_hidden=16), steps=0)
