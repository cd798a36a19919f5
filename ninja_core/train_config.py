"""The training run's configuration, passed whole (nanoGPT style). Re-exported by `ninja_core.train`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from .config import DTYPES, Config, ConfigError, Dtype

Backward = Literal["fast", "reference"]
BACKWARDS: tuple[str, ...] = ("fast", "reference")

# Ranges of the training-only integer fields; the model's own fields (seed, n_embd, n_hidden,
# block_size, batch_size) are checked by building the engine's Config, whose LIMITS apply.
TRAIN_LIMITS: dict[str, tuple[int, int]] = {
    "steps": (0, 10_000_000),
    "audit_every": (0, 10_000_000),
    "stats_every": (0, 10_000_000),
    "progress_every": (0, 10_000_000),
    "threads": (0, 256),
    "n_samples": (0, 1000),
}


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 2147483647  # the lecture's seed: one generator draws the seven parameters, then every minibatch
    n_embd: int = 10  # dimensions of a character's embedding vector
    n_hidden: int = 200  # hidden units; the lecture trains with 200 (its gradient exercise uses 64)
    block_size: int = 3  # context length: how many characters predict the next one
    batch_size: int = 32  # n, the minibatch size
    steps: int = 200_000  # SGD steps, as in the lecture
    lr: float = 0.1  # learning rate until lr_decay_at
    lr_decay_at: float = 0.5  # fraction of the steps after which the rate drops (lecture: step 100 000 of 200 000)
    lr_decayed: float = 0.01  # learning rate from lr_decay_at on
    audit_every: int = 0  # every K steps, autograd's gradients of the same batch vs the manual ones; 0 = off
    stats_every: int = 1000  # every K steps, update-to-data ratios and tanh saturation; 0 = off
    progress_every: int = 1000  # a progress event every K steps (and at the last); 0 = none
    dtype: Dtype = "float32"  # float32 as in the lecture; float64 trains the same network without rounding noise
    data: str | None = None  # word list, one word per line; None = the bundled names
    backward: Backward = "fast"  # fast: preallocated in-place kernels; reference: the readable straight-line step
    threads: int = 1  # torch threads during the run (0 = leave torch's setting); one beat two for these tiny tensors
    n_samples: int = 20  # names sampled from the trained model at the end

    def __post_init__(self) -> None:
        for name in ("n_embd", "n_hidden", "block_size", "batch_size"):  # 0 would mean "the network's default"
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise ConfigError(name, f"must be a positive integer, got {value}")
        self.model_config()  # seed, n_embd, n_hidden, block_size, batch_size against the engine's LIMITS
        for name, (lo, hi) in TRAIN_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(name, f"must be an integer in {lo}..{hi}, got {value!r}")
            if not lo <= value <= hi:
                raise ConfigError(name, f"must be in {lo}..{hi}, got {value}")
        for name in ("lr", "lr_decay_at", "lr_decayed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(name, f"must be a finite number, got {value!r}")
        if not 0 < self.lr <= 100:
            raise ConfigError("lr", f"must be in (0, 100], got {self.lr}")
        if not 0 <= self.lr_decayed <= 100:
            raise ConfigError("lr_decayed", f"must be in [0, 100], got {self.lr_decayed}")
        if not 0 <= self.lr_decay_at <= 1:
            raise ConfigError("lr_decay_at", f"must be a fraction in [0, 1], got {self.lr_decay_at}")
        if self.dtype not in DTYPES:
            raise ConfigError("dtype", f"must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.backward not in BACKWARDS:
            raise ConfigError("backward", f"must be one of {', '.join(BACKWARDS)}, got {self.backward!r}")
        if self.data is not None and not isinstance(self.data, str):
            raise ConfigError("data", f"must be a path (a string) or None, got {self.data!r}")

    def model_config(self) -> Config:
        """The engine's Config for this network: init_params draws the parameters from it."""
        return Config(seed=self.seed, batch_size=self.batch_size, n_embd=self.n_embd, n_hidden=self.n_hidden,
                      block_size=self.block_size, dtype=self.dtype)

    @property
    def decay_step(self) -> int:
        """The first step (0-based) that uses lr_decayed; round(), so 0.3 * 10 is step 3, not 2."""
        return round(self.lr_decay_at * self.steps)

    def lr_at(self, step: int) -> float:
        """The lecture's schedule: `lr = 0.1 if i < 100000 else 0.01` for step i (0-based)."""
        return self.lr if step < self.decay_step else self.lr_decayed

    @property
    def sample_seed(self) -> int:
        """The lecture samples with its own generator, seeded with the training seed + 10."""
        return self.seed + 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown field; allowed: {', '.join(sorted(known))}")
        return cls(**data)
