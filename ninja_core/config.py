"""One configuration object for a run, passed whole (nanoGPT style).

`net` chooses the network (`ninja_core.nets`); the integer sizes default to 0, which means "the
network's default", and a size the network does not have stays 0 (and is left out of `to_dict`).
So `Config()` is the lecture's MLP exercise and `Config(net="wavenet")` the lecture's WaveNet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from .i18n import german, tr

Dtype = Literal["float32", "float64"]
Variant = Literal["chain", "fused"]

DTYPES: tuple[str, ...] = ("float32", "float64")
VARIANTS: tuple[str, ...] = ("chain", "fused")
DEVICES: tuple[str, ...] = ("cpu", "cuda")
SIZE_FIELDS: tuple[str, ...] = ("batch_size", "n_embd", "n_hidden", "block_size", "n_head", "n_layer")
# Ranges of the fields every network shares; the sizes' ranges are each network's own (nets/*.py).
LIMITS: dict[str, tuple[int, int]] = {
    "seed": (0, 2**63 - 1),
    "train_steps": (0, 200_000),
}

german({
    "must be an integer in {lo}..{hi}, got {value}": "muss eine ganze Zahl in {lo}..{hi} sein, nicht {value}",
    "must be in {lo}..{hi}, got {value}": "muss in {lo}..{hi} liegen, nicht {value}",
    "must be a whole number, got {value}": "muss eine ganze Zahl sein, nicht {value}",
    "must be one of {allowed}, got {value}": "muss eines von {allowed} sein, nicht {value}",
    "unknown field; allowed: {allowed}": "unbekanntes Feld; erlaubt: {allowed}",
    "unknown network {value}; the networks are: {allowed}": "unbekanntes Netz {value}; die Netze sind: {allowed}",
})


class ConfigError(ValueError):
    """A configuration value is out of range or not one of the allowed choices."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Config:
    net: str = "mlp"  # the network: mlp (lecture part 4), wavenet (part 5), gpt (llm.c's GPT-2 layers)
    seed: int = 2147483647  # the lecture's seed; one torch.Generator draws the parameters, then the batch
    batch_size: int = 0  # minibatch size (0: the network's default, 32)
    n_embd: int = 0  # dimensions of each character's embedding vector (0: the network's default)
    n_hidden: int = 0  # hidden units of the MLP and WaveNet (0: the network's default)
    block_size: int = 0  # context length: how many characters predict the next one (0: the network's default)
    n_head: int = 0  # attention heads of the GPT (0: its default)
    n_layer: int = 0  # transformer blocks of the GPT (0: its default)
    dtype: Dtype = "float32"  # float32 shows rounding; float64 shows formulas agree to ~1e-15
    variant: Variant = "chain"  # chain: every intermediate; fused: the network's one-step backward formulas
    device: str = "cpu"  # cpu, or cuda when present and asked for
    train_steps: int = 0  # 0 = gradients at initialisation; N = after N training steps with the manual backward

    def __post_init__(self) -> None:
        from .nets import NETS, get_net  # the networks import this module's ConfigError

        if not isinstance(self.net, str) or self.net not in NETS:
            raise ConfigError("net", tr("unknown network {value}; the networks are: {allowed}", value=repr(self.net),
                                        allowed=", ".join(NETS)))
        for name, (lo, hi) in LIMITS.items():
            _check_int(name, getattr(self, name), lo, hi)
        net = get_net(self.net)
        sizes = {}
        for name in SIZE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(name, tr("must be a whole number, got {value}", value=repr(value)))
            spec = net.size(name)
            if spec is None:
                if value != 0:
                    raise ConfigError(name, tr("{net} has no {field}; its sizes are: {sizes}", net=self.net, field=name,
                                               sizes=", ".join(s.name for s in net.sizes)))
                continue
            sizes[name] = value or spec.default
            object.__setattr__(self, name, sizes[name])  # frozen: resolved once, here
        net.check_sizes(sizes)
        for name, allowed in (("dtype", DTYPES), ("variant", VARIANTS), ("device", DEVICES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(name, tr("must be one of {allowed}, got {value}", allowed=", ".join(allowed),
                                           value=repr(getattr(self, name))))

    def to_dict(self) -> dict[str, Any]:
        """Every field, without the sizes the network does not have (they are 0)."""
        return {k: v for k, v in asdict(self).items() if not (k in SIZE_FIELDS and v == 0)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], tr("unknown field; allowed: {allowed}", allowed=", ".join(sorted(known))))
        return cls(**data)

    def replace(self, **changes: Any) -> Config:
        return replace(self, **changes)

    def key(self) -> str:
        """A short stable id for this config: the same config always gives the same key."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, tr("must be an integer in {lo}..{hi}, got {value}", lo=lo, hi=hi, value=repr(value)))
    if not lo <= value <= hi:
        raise ConfigError(name, tr("must be in {lo}..{hi}, got {value}", lo=lo, hi=hi, value=value))
