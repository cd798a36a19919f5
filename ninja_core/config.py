"""One configuration object for a run, passed whole (nanoGPT style)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Dtype = Literal["float32", "float64"]
Variant = Literal["chain", "fused"]

# The allowed ranges, in one place: the CLI, the API schemas and the error messages read them.
LIMITS: dict[str, tuple[int, int]] = {
    "seed": (0, 2**63 - 1),
    "batch_size": (2, 4096),  # batchnorm's Bessel correction divides by n - 1
    "n_embd": (1, 64),
    "n_hidden": (1, 1024),
    "block_size": (1, 8),
    "train_steps": (0, 200_000),
}
DTYPES: tuple[str, ...] = ("float32", "float64")
VARIANTS: tuple[str, ...] = ("chain", "fused")
DEVICES: tuple[str, ...] = ("cpu", "cuda")


class ConfigError(ValueError):
    """A configuration value is out of range or not one of the allowed choices."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Config:
    seed: int = 2147483647  # the lecture's seed; one torch.Generator draws params, then the batch
    batch_size: int = 32  # n, the minibatch size
    n_embd: int = 10  # dimensions of each character's embedding vector
    n_hidden: int = 64  # hidden units (the lecture uses 64 for the exercise, 200 for training)
    block_size: int = 3  # context length: how many characters predict the next one
    dtype: Dtype = "float32"  # float32 shows rounding; float64 shows formulas agree to ~1e-15
    variant: Variant = "chain"  # chain: every intermediate; fused: cross-entropy and batchnorm in one step
    device: str = "cpu"  # cpu, or cuda when present and asked for
    train_steps: int = 0  # 0 = gradients at initialisation; N = after N SGD steps with the manual backward

    def __post_init__(self) -> None:
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(name, f"must be an integer in {lo}..{hi}, got {value!r}")
            if not lo <= value <= hi:
                raise ConfigError(name, f"must be in {lo}..{hi}, got {value}")
        if self.dtype not in DTYPES:
            raise ConfigError("dtype", f"must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.variant not in VARIANTS:
            raise ConfigError("variant", f"must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.device not in DEVICES:
            raise ConfigError("device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown field; allowed: {', '.join(sorted(known))}")
        return cls(**data)

    def replace(self, **changes: Any) -> Config:
        return replace(self, **changes)

    def key(self) -> str:
        """A short stable id for this config: the same config always gives the same key."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
