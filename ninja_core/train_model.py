"""A trained model: batchnorm calibration, split losses, sampling names, and its file (save / load).

The file is `torch.save` of a plain dict (a format marker, a version, the training config, the
vocabulary, the seven parameters, the batchnorm statistics and the final losses), read back with
`torch.load(..., weights_only=True)`: tensors and plain data only, never arbitrary pickled objects.
"""

from __future__ import annotations

import math
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .config import ConfigError
from .data import MAX_WORD_CHARS, SEPARATOR, Vocab
from .nets.layers import BN_EPS
from .nets.mlp import NET as MLP_NET
from .train_config import TrainConfig

FORMAT = "backprop-ninja-model"
VERSION = 1
MAX_MODEL_BYTES = 64 * 1024 * 1024  # the largest allowed network is ~3 MB; anything far bigger is not ours
ZIP_MAGIC = b"PK\x03\x04"
EVAL_CHUNK = 8192  # rows per forward pass when evaluating a whole split (bounds memory on large data)

Params = dict[str, torch.Tensor]

PARAMS: tuple[str, ...] = MLP_NET.build_tape(()).params  # C, W1, b1, W2, b2, bngain, bnbias


class ModelFileError(ValueError):
    """The file is not a model file this version can read; the message names the file and the problem."""


def _hidden(params: Params, X: torch.Tensor) -> torch.Tensor:
    C, W1, b1 = params["C"], params["W1"], params["b1"]
    emb = C[X]  # (N, T, E)
    return emb.view(emb.shape[0], -1) @ W1 + b1  # (N, H) hprebn


@torch.no_grad()
def calibrate_batchnorm(params: Params, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batchnorm's mean and variance of hprebn over all of X (the training split), with Bessel's n-1
    as in the training forward: the statistics evaluation and sampling use instead of a batch's.

    Two passes in chunks (mean, then squared deviations), accumulated in float64, so memory stays
    bounded on large data and the sums do not lose precision over 10^5 rows.
    """
    N = X.shape[0]
    if N < 2:
        raise ValueError(f"batchnorm calibration needs at least 2 training rows, got {N}")
    H = params["W1"].shape[1]
    total = torch.zeros((1, H), dtype=torch.float64)
    for i in range(0, N, EVAL_CHUNK):
        total += _hidden(params, X[i:i + EVAL_CHUNK]).sum(0, keepdim=True, dtype=torch.float64)
    mean = total / N
    sq = torch.zeros((1, H), dtype=torch.float64)
    for i in range(0, N, EVAL_CHUNK):
        sq += ((_hidden(params, X[i:i + EVAL_CHUNK]).double() - mean) ** 2).sum(0, keepdim=True)
    var = sq / (N - 1)
    dtype = params["W1"].dtype
    return mean.to(dtype), var.to(dtype)


def _logits(params: Params, bnmean: torch.Tensor, bnvar: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """The inference forward: batchnorm with the calibrated statistics instead of the batch's."""
    hprebn = _hidden(params, X)  # (N, H)
    hpreact = params["bngain"] * (hprebn - bnmean) * (bnvar + BN_EPS) ** -0.5 + params["bnbias"]  # (N, H)
    h = torch.tanh(hpreact)
    return h @ params["W2"] + params["b2"]  # (N, V)


@torch.no_grad()
def split_loss(params: Params, bnmean: torch.Tensor, bnvar: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> float:
    """Mean cross-entropy over a whole split; NaN for an empty split (tiny word lists have no val rows)."""
    N = X.shape[0]
    if N == 0:
        return math.nan
    total = 0.0
    for i in range(0, N, EVAL_CHUNK):
        logits = _logits(params, bnmean, bnvar, X[i:i + EVAL_CHUNK])
        total += F.cross_entropy(logits, Y[i:i + EVAL_CHUNK], reduction="sum").item()
    return total / N


@torch.no_grad()
def sample_names(params: Params, bnmean: torch.Tensor, bnvar: torch.Tensor, vocab: Vocab, block_size: int,
                 n: int = 20, seed: int = 2147483647 + 10, max_chars: int = MAX_WORD_CHARS) -> list[str]:
    """Names drawn from the model, as in the lecture: the context starts as '.' * block_size, each
    character is drawn with torch.multinomial from the softmax, and a name ends at '.'. One seeded
    generator for all names, so the same seed gives the same names. A name that has not ended after
    `max_chars` characters (an untrained model may ramble) is cut there."""
    g = torch.Generator().manual_seed(seed)
    stop = vocab.stoi[SEPARATOR]
    names: list[str] = []
    for _ in range(n):
        context = [stop] * block_size
        out: list[int] = []
        while len(out) < max_chars:
            logits = _logits(params, bnmean, bnvar, torch.tensor([context]))  # (1, V)
            probs = F.softmax(logits, dim=1)
            ix = int(torch.multinomial(probs, num_samples=1, generator=g).item())
            if ix == stop:
                break
            out.append(ix)
            context = [*context[1:], ix]
        names.append(vocab.decode(out))
    return names


@dataclass(frozen=True)
class TrainedModel:
    config: TrainConfig  # how it was trained (network sizes, seed, steps, data path)
    vocab: Vocab
    params: Params  # C, W1, b1, W2, b2, bngain, bnbias
    bnmean: torch.Tensor  # (1, H) batchnorm mean over the training split, after training
    bnvar: torch.Tensor  # (1, H) batchnorm variance over the training split (Bessel's n-1)
    metrics: dict[str, float] = field(default_factory=dict)  # train/val/test loss and steps, when known

    def loss(self, X: torch.Tensor, Y: torch.Tensor) -> float:
        return split_loss(self.params, self.bnmean, self.bnvar, X, Y)

    def sample(self, n: int = 20, seed: int | None = None) -> list[str]:
        """`n` names; seed None = the lecture's sampling seed (training seed + 10)."""
        return sample_names(self.params, self.bnmean, self.bnvar, self.vocab, self.config.block_size, n,
                            self.config.sample_seed if seed is None else seed)

    def save(self, path: str | Path) -> None:
        """Write the model to one file (atomically: a half-written file never has the final name)."""
        p = Path(path)
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "config": self.config.to_dict(),
            "vocab": list(self.vocab.chars),
            "params": {name: self.params[name].detach().cpu().clone() for name in PARAMS},
            "bn": {"mean": self.bnmean.detach().cpu().clone(), "var": self.bnvar.detach().cpu().clone()},
            "metrics": {k: float(v) for k, v in self.metrics.items()},
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(doc, f)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> TrainedModel:
        return load_model(path)


def load_model(path: str | Path) -> TrainedModel:
    """Read a model file; anything else -- missing, random bytes, truncated, JSON, another program's
    torch file, another format version, inconsistent contents -- is a ModelFileError naming the file."""
    p = Path(path)

    def bad(reason: str) -> ModelFileError:
        return ModelFileError(f"{p}: {reason}")

    if not p.exists():
        raise bad("no such file")
    if not p.is_file():
        raise bad("not a regular file")
    size = p.stat().st_size
    if size == 0:
        raise bad("the file is empty; not a Backprop Ninja model file")
    if size > MAX_MODEL_BYTES:
        raise bad(f"{size} bytes is over the limit of {MAX_MODEL_BYTES} bytes for a model file")
    with p.open("rb") as f:
        head = f.read(64)
    if not head.startswith(ZIP_MAGIC):  # torch.save writes a zip archive
        hint = "; it looks like JSON" if head.lstrip()[:1] in (b"{", b"[") else ""
        raise bad(f"not a Backprop Ninja model file (not written by torch.save{hint})")
    if not zipfile.is_zipfile(p):
        raise bad("damaged or truncated model file (its zip archive is incomplete)")
    try:
        doc = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds (UnpicklingError, RuntimeError, EOFError, ...)
        text = " ".join(str(exc).split())
        if "Weights only load failed" in text or "weights_only" in text:
            raise bad("holds Python objects other than tensors and plain data; refusing to unpickle them "
                      "(not a Backprop Ninja model file)") from None
        raise bad(f"not a Backprop Ninja model file (torch cannot read it: {type(exc).__name__}: "
                  f"{text[:160]})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad(f"not a Backprop Ninja model file (no {FORMAT!r} format marker)")
    version = doc.get("version")
    if version != VERSION:
        raise bad(f"model file format version {version!r}; this version of Backprop Ninja reads version {VERSION}")
    return _from_doc(doc, bad)


def _from_doc(doc: dict[str, Any], bad: Callable[[str], ModelFileError]) -> TrainedModel:
    raw_config = doc.get("config")
    if not isinstance(raw_config, dict):
        raise bad("damaged model file: no training config")
    try:
        config = TrainConfig.from_dict(raw_config)
    except (ConfigError, TypeError) as exc:
        raise bad(f"damaged model file: config: {exc}") from None
    chars = doc.get("vocab")
    if (not isinstance(chars, list) or not chars or chars[0] != SEPARATOR
            or not all(isinstance(c, str) and len(c) == 1 for c in chars) or len(set(chars)) != len(chars)):
        raise bad(f"damaged model file: the vocabulary must be distinct characters starting with {SEPARATOR!r}")
    V, E, H, T = len(chars), config.n_embd, config.n_hidden, config.block_size
    expected = {"C": (V, E), "W1": (T * E, H), "b1": (H,), "W2": (H, V), "b2": (V,), "bngain": (1, H), "bnbias": (1, H)}
    raw_params, raw_bn = doc.get("params"), doc.get("bn")
    if not isinstance(raw_params, dict) or set(raw_params) != set(PARAMS):
        raise bad(f"damaged model file: parameters must be exactly {', '.join(PARAMS)}")
    if not isinstance(raw_bn, dict) or set(raw_bn) != {"mean", "var"}:
        raise bad("damaged model file: batchnorm statistics must be 'mean' and 'var'")
    tensors = {**{name: raw_params[name] for name in PARAMS}, "bn mean": raw_bn["mean"], "bn var": raw_bn["var"]}
    expected.update({"bn mean": (1, H), "bn var": (1, H)})
    dtype = raw_params["W1"].dtype if isinstance(raw_params["W1"], torch.Tensor) else None
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.float32, torch.float64) or t.dtype != dtype:
            raise bad(f"damaged model file: {name} must be a float32 or float64 tensor like the others")
        if tuple(t.shape) != expected[name]:
            raise bad(f"damaged model file: {name} has shape {tuple(t.shape)}, expected {expected[name]}")
        if not bool(torch.isfinite(t).all()):
            raise bad(f"damaged model file: {name} holds NaN or infinite values")
    if bool((raw_bn["var"] < 0).any()):
        raise bad("damaged model file: a batchnorm variance is negative")
    raw_metrics = doc.get("metrics", {})
    metrics = ({k: float(v) for k, v in raw_metrics.items() if isinstance(k, str) and isinstance(v, (int, float))}
               if isinstance(raw_metrics, dict) else {})
    return TrainedModel(config, Vocab(tuple(chars)), {name: raw_params[name] for name in PARAMS},
                        raw_bn["mean"], raw_bn["var"], metrics)
