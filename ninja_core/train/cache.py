"""Trained parameters for the engine's check (`Config.train_steps`): trained once, then cached."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..config import SIZE_FIELDS, Config
from ..data import Dataset
from ..nets import get_net
from ..nets.shared_train import Params
from .config import TrainConfig
from .loop import _training, resolve_dataset

TRAINED_CACHE_SIZE = 8  # entries are small (~50 KB for the MLP at n_hidden 200, ~300 KB for the WaveNet)
_trained_cache: OrderedDict[tuple[Any, ...], Params] = OrderedDict()
_trained_lock = threading.Lock()
_trained_stats = {"hits": 0, "misses": 0}


def trained_params(config: Config, steps: int, data: Dataset | str | Path | None = None) -> dict[str, torch.Tensor]:
    """The parameters after `steps` optimizer steps with the manual backward, for `run.check` to
    show gradients of a trained network (Config.train_steps).

    Trains config.net with the config's seed and sizes (batch_size included), the network's
    recipe scaled to `steps` (MLP: lr 0.1, then 0.01 from half-way), always in float32 on one
    torch thread: a float64 check then looks at the same trained network, and the same inputs give
    the same tensors. Cached (bounded LRU, keyed by those fields and the words); returns fresh copies.
    """
    net = get_net(config.net)
    dataset = resolve_dataset(data, net.context_length(config))
    sizes = {name: getattr(config, name) for name in SIZE_FIELDS}
    cfg = _quiet(TrainConfig(net=config.net, seed=config.seed, steps=steps, **sizes))
    key = _trained_key(cfg, dataset)
    with _trained_lock:
        cached = _trained_cache.get(key)
        if cached is not None:
            _trained_cache.move_to_end(key)
            _trained_stats["hits"] += 1
    if cached is None:
        run = _training(cfg, dataset, None, evaluate=False)
        while True:  # no events are configured; drain the generator for its return value
            try:
                next(run)
            except StopIteration as finished:
                cached = finished.value
                break
        with _trained_lock:
            _trained_stats["misses"] += 1
            _trained_cache[key] = cached
            while len(_trained_cache) > TRAINED_CACHE_SIZE:
                _trained_cache.popitem(last=False)
    assert cached is not None
    return {name: t.clone() for name, t in cached.items()}


def _quiet(cfg: TrainConfig) -> TrainConfig:
    """The same training without events: audits, stats and progress do not change the weights."""
    return replace(cfg, audit_every=0, stats_every=0, progress_every=0, dtype="float32", threads=1, n_samples=0,
                   backward="fast", data=None)


def _trained_key(cfg: TrainConfig, dataset: Dataset) -> tuple[Any, ...]:
    return (_quiet(cfg), dataset.path, len(dataset.words), hash(dataset.words))


def remember_trained_params(cfg: TrainConfig, dataset: Dataset, params: Params) -> bool:
    """Offer the weights of a finished training run (e.g. the web's live stream) to the cache that
    `trained_params` reads, so the gradient view after training is instant. Only runs that
    `trained_params` would reproduce bit for bit qualify (float32, fast backward, one thread, all
    steps done); returns whether it was stored."""
    if cfg.dtype != "float32" or cfg.backward != "fast" or cfg.threads != 1:
        return False
    key = _trained_key(cfg, dataset)
    with _trained_lock:
        _trained_cache[key] = {name: t.detach().clone() for name, t in params.items()}
        _trained_cache.move_to_end(key)
        while len(_trained_cache) > TRAINED_CACHE_SIZE:
            _trained_cache.popitem(last=False)
    return True


def trained_params_cache_info() -> dict[str, int]:
    with _trained_lock:
        return {**_trained_stats, "size": len(_trained_cache), "maxsize": TRAINED_CACHE_SIZE}


def trained_params_cache_clear() -> None:
    with _trained_lock:
        _trained_cache.clear()
        _trained_stats.update(hits=0, misses=0)
