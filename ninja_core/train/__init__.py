"""Training any network with its hand-written backward pass (lecture exercise 4, and part 5's WaveNet).

    from ninja_core.train import TrainConfig, train
    result = train(TrainConfig(net="wavenet", steps=20_000))
    result                       # losses, time, samples (a table in a notebook)
    result.model.save("wavenet.pt")

Modules: `config` (TrainConfig: the network, its sizes, the recipe), `step` (minibatches, the
manual-backward step, SGD / AdamW), `loop` (iter_training, train), `audit` (manual vs autograd,
health statistics), `events`, `model` (evaluation, sampling, the model file), `cache` (trained
parameters for the engine's check), `bench` (autograd vs manual steps/s). Each network brings its
own parts through its `Network` object (`train_step`, `logits`, `calibrate`, ...; the code lives in
`nets/<name>_train.py`); nothing here names a node of one network.
"""

from .audit import SATURATION, audit_grads, autograd_param_grads, health
from .cache import (
    remember_trained_params,
    trained_params,
    trained_params_cache_clear,
    trained_params_cache_info,
)
from .config import BACKWARDS, OPTIMIZERS, TRAIN_LIMITS, TrainConfig
from .events import AuditEvent, DoneEvent, ProgressEvent, StatsEvent, TrainEvent, TrainResult
from .loop import dataset_for, iter_training, require_forward, resolve_dataset, train
from .model import ModelFileError, TrainedModel, load_model, sample_names, split_loss
from .step import BatchSampler, TapeStep, make_optimizer, make_step, minibatches

__all__ = [
    "BACKWARDS",
    "OPTIMIZERS",
    "SATURATION",
    "TRAIN_LIMITS",
    "AuditEvent",
    "BatchSampler",
    "DoneEvent",
    "ModelFileError",
    "ProgressEvent",
    "StatsEvent",
    "TapeStep",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "TrainedModel",
    "audit_grads",
    "autograd_param_grads",
    "dataset_for",
    "health",
    "iter_training",
    "load_model",
    "make_optimizer",
    "make_step",
    "minibatches",
    "remember_trained_params",
    "require_forward",
    "resolve_dataset",
    "sample_names",
    "split_loss",
    "train",
    "trained_params",
    "trained_params_cache_clear",
    "trained_params_cache_info",
]
