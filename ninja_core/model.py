"""Parameters and minibatch: every random draw comes from one generator seeded by the config."""

from __future__ import annotations

import torch

from .config import Config
from .data import Dataset

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda was asked for, but torch sees no CUDA device here; use cpu")
    return torch.device(name)


def init_params(cfg: Config, vocab_size: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """The lecture's initialisation, drawn in this order: C, W1, b1, W2, b2, bngain, bnbias.

    Always drawn in float32 on the CPU and then converted, so a float64 run is the same network
    as the float32 run of its config, only computed more precisely.
    """
    fan_in = cfg.n_embd * cfg.block_size
    C = torch.randn((vocab_size, cfg.n_embd), generator=g)  # (V, E)
    W1 = torch.randn((fan_in, cfg.n_hidden), generator=g) * (5 / 3) / fan_in**0.5  # (T*E, H), tanh gain
    b1 = torch.randn(cfg.n_hidden, generator=g) * 0.1  # (H,) useless under batchnorm, kept as in the lecture
    W2 = torch.randn((cfg.n_hidden, vocab_size), generator=g) * 0.1  # (H, V) small: near-uniform first guess
    b2 = torch.randn(vocab_size, generator=g) * 0.1  # (V,)
    bngain = torch.randn((1, cfg.n_hidden), generator=g) * 0.1 + 1.0  # (1, H) not exactly 1, to expose bugs
    bnbias = torch.randn((1, cfg.n_hidden), generator=g) * 0.1  # (1, H) not exactly 0, likewise
    params = {"C": C, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "bngain": bngain, "bnbias": bnbias}
    device = resolve_device(cfg.device)
    return {k: v.to(device=device, dtype=DTYPES[cfg.dtype]) for k, v in params.items()}


def sample_batch(cfg: Config, data: Dataset, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    ix = torch.randint(0, data.Xtr.shape[0], (cfg.batch_size,), generator=g)  # (B,)
    device = resolve_device(cfg.device)
    return data.Xtr[ix].to(device), data.Ytr[ix].to(device)  # (B, T), (B,)


def generator(cfg: Config) -> torch.Generator:
    return torch.Generator().manual_seed(cfg.seed)
