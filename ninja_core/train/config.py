"""The training run's configuration, passed whole (nanoGPT style): the network, its sizes, the recipe.

Left out, every size and every recipe field is the network's training default (its `Recipe`):
`TrainConfig()` is the lecture's MLP training (n_hidden 200, 200 000 SGD steps at batch 32, lr 0.1
then 0.01 from half-way), `TrainConfig(net="wavenet")` the lecture's WaveNet training (200 000 steps,
batch 32, lr 0.1 then 0.01 from step 150 000). They are resolved in `__post_init__`, so a built config
holds plain numbers (and `to_dict` / `from_dict` round-trip it). As with `Config`, sizes use 0 for
"the default"; the recipe fields use None. `dataclasses.replace(cfg, net=...)` keeps the resolved
values of the old network: build a new TrainConfig to switch networks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from ..config import DTYPES, SIZE_FIELDS, Config, ConfigError, Dtype
from ..i18n import german, tr
from ..nets import get_net

Backward = Literal["fast", "reference"]
BACKWARDS: tuple[str, ...] = ("fast", "reference")
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
RECIPE: Any = None  # a recipe field left out: the network's own value (typed Any so fields stay int / float)

# Ranges of the training-only integer fields; the network's sizes are checked by building the
# engine's Config (each network's ranges), the seed by Config's LIMITS.
TRAIN_LIMITS: dict[str, tuple[int, int]] = {
    "steps": (0, 10_000_000),
    "audit_every": (0, 10_000_000),
    "stats_every": (0, 10_000_000),
    "progress_every": (0, 10_000_000),
    "threads": (0, 256),
    "n_samples": (0, 1000),
}

german({
    "must be a finite number, got {value}": "muss eine endliche Zahl sein, nicht {value}",
    "must be in (0, 100], got {value}": "muss in (0, 100] liegen, nicht {value}",
    "must be in [0, 100], got {value}": "muss in [0, 100] liegen, nicht {value}",
    "must be a fraction in [0, 1], got {value}": "muss ein Anteil in [0, 1] sein, nicht {value}",
    "must be in [0, 10], got {value}": "muss in [0, 10] liegen, nicht {value}",
    "must be a path (a string) or None, got {value}": "muss ein Pfad (eine Zeichenkette) oder None sein, nicht {value}",
})


@dataclass(frozen=True)
class TrainConfig:
    net: str = "mlp"  # the network: mlp (lecture part 4), wavenet (part 5), ... (ninja_core.nets)
    seed: int = 2147483647  # the lecture's seed: one generator draws the parameters, then every minibatch
    batch_size: int = 0  # minibatch size (0: the recipe's, 32)
    n_embd: int = 0  # embedding dimensions (0: the network's default)
    n_hidden: int = 0  # hidden units (0: the recipe's; the MLP trains with 200, its gradient exercise uses 64)
    block_size: int = 0  # context length (0: the network's)
    n_head: int = 0  # attention heads (networks that have them; 0: the default)
    n_layer: int = 0  # transformer blocks (networks that have them; 0: the default)
    steps: int = RECIPE  # optimizer steps (the lecture: 200 000)
    lr: float = RECIPE  # learning rate until lr_decay_at
    lr_decay_at: float = RECIPE  # fraction of the steps after which the rate drops (MLP 0.5, WaveNet 0.75)
    lr_decayed: float = RECIPE  # learning rate from lr_decay_at on
    optimizer: str = RECIPE  # sgd (the lecture's p.data += -lr * grad) or adamw (torch.optim.AdamW)
    weight_decay: float = RECIPE  # AdamW's decoupled weight decay on the matrices
    audit_every: int = 0  # every K steps, autograd's gradients of the same batch vs the manual ones; 0 = off
    stats_every: int = 1000  # every K steps, update-to-data ratios and tanh saturation; 0 = off
    progress_every: int = 1000  # a progress event every K steps (and at the last); 0 = none
    dtype: Dtype = "float32"  # float32 as in the lecture; float64 trains the same network without rounding noise
    data: str | None = None  # word list, one word per line; None = the bundled names
    backward: Backward = "fast"  # fast: the network's preallocated step; reference: the tape's fused manual backward
    threads: int = 1  # torch threads during the run (0 = leave torch's setting); one beat two for these tiny tensors
    n_samples: int = 20  # names sampled from the trained model at the end

    def __post_init__(self) -> None:
        net = get_net(self.net)  # ConfigError naming the networks
        recipe = net.recipe
        trained_sizes = dict(recipe.sizes)
        for name in SIZE_FIELDS:
            value, spec = getattr(self, name), net.size(name)
            if value == 0 and spec is not None and not isinstance(value, bool):
                value = recipe.batch_size if name == "batch_size" else trained_sizes.get(name, spec.default)
                object.__setattr__(self, name, value)  # frozen: resolved once, here
        for name in ("steps", "lr", "lr_decay_at", "lr_decayed", "optimizer", "weight_decay"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(recipe, name))
        self.model_config()  # seed and sizes against the network's ranges (ConfigError)
        for name, (lo, hi) in TRAIN_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(name, tr("must be an integer in {lo}..{hi}, got {value}", lo=lo, hi=hi, value=repr(value)))
            if not lo <= value <= hi:
                raise ConfigError(name, tr("must be in {lo}..{hi}, got {value}", lo=lo, hi=hi, value=value))
        for name in ("lr", "lr_decay_at", "lr_decayed", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(name, tr("must be a finite number, got {value}", value=repr(value)))
        if not 0 < self.lr <= 100:
            raise ConfigError("lr", tr("must be in (0, 100], got {value}", value=self.lr))
        if not 0 <= self.lr_decayed <= 100:
            raise ConfigError("lr_decayed", tr("must be in [0, 100], got {value}", value=self.lr_decayed))
        if not 0 <= self.lr_decay_at <= 1:
            raise ConfigError("lr_decay_at", tr("must be a fraction in [0, 1], got {value}", value=self.lr_decay_at))
        if not 0 <= self.weight_decay <= 10:
            raise ConfigError("weight_decay", tr("must be in [0, 10], got {value}", value=self.weight_decay))
        for name, allowed in (("dtype", DTYPES), ("backward", BACKWARDS), ("optimizer", OPTIMIZERS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(name, tr("must be one of {allowed}, got {value}", allowed=", ".join(allowed),
                                           value=repr(getattr(self, name))))
        if self.data is not None and not isinstance(self.data, str):
            raise ConfigError("data", tr("must be a path (a string) or None, got {value}", value=repr(self.data)))

    def model_config(self) -> Config:
        """The engine's Config of this network: init_params draws the parameters from it."""
        sizes = {name: getattr(self, name) for name in SIZE_FIELDS}
        return Config(net=self.net, seed=self.seed, dtype=self.dtype, **sizes)

    @property
    def decay_step(self) -> int:
        """The first step (0-based) that uses lr_decayed; round(), so 0.3 * 10 is step 3, not 2."""
        return round(self.lr_decay_at * self.steps)

    def lr_at(self, step: int) -> float:
        """The lecture's schedule: `lr = 0.1 if i < 100000 else 0.01` for step i (0-based; WaveNet: 150000)."""
        return self.lr if step < self.decay_step else self.lr_decayed

    @property
    def sample_seed(self) -> int:
        """The lecture samples with its own generator, seeded with the training seed + 10."""
        return self.seed + 10

    def to_dict(self) -> dict[str, Any]:
        """Every field, without the sizes the network does not have (they are 0)."""
        return {k: v for k, v in asdict(self).items() if not (k in SIZE_FIELDS and v == 0)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], tr("unknown field; allowed: {allowed}", allowed=", ".join(sorted(known))))
        return cls(**data)
