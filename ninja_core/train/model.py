"""A trained model: split losses, sampling names, and its file (save / load). Generic: the network
does its own forward (`Network.logits`) and calibration (`Network.calibrate`).

The file is `torch.save` of a plain dict (a format marker, a version, the network's name, the
training config, the vocabulary, the parameters, the inference statistics and the final losses),
read back with `torch.load(..., weights_only=True)`: tensors and plain data only, never arbitrary
pickled objects. Loading checks every tensor's name and shape against the network the file names.
Version 1 files (the MLP, before networks had names) still load.
"""

from __future__ import annotations

import html
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

from ..config import ConfigError
from ..data import MAX_WORD_CHARS, SEPARATOR, Vocab
from ..nets import NETS, get_net
from ..nets.shared_train import EVAL_CHUNK, Params
from .config import TrainConfig

FORMAT = "backprop-ninja-model"
VERSION = 2  # 2: the network's name and its statistics by name; 1: the MLP only ("bn": mean, var)
MAX_MODEL_BYTES = 64 * 1024 * 1024  # the largest allowed networks are a few MB; anything far bigger is not ours
ZIP_MAGIC = b"PK\x03\x04"


class ModelFileError(ValueError):
    """The file is not a model file this version can read; the message names the file and the problem."""


@torch.no_grad()
def split_loss(cfg: TrainConfig, params: Params, stats: Params, X: torch.Tensor, Y: torch.Tensor) -> float:
    """Mean cross-entropy per character over a whole split X (N, T), Y (N,), the network in inference
    mode (`stats`: its calibrated statistics), every target scored once in the windows the network
    evaluates it in (`Network.eval_windows`); NaN for an empty split (tiny word lists have no val rows)."""
    if X.shape[0] == 0:
        return math.nan
    net, model_cfg = get_net(cfg.net), cfg.model_config()
    total, count = 0.0, 0
    for Xw, Yw, keep in net.eval_windows(model_cfg, X, Y, EVAL_CHUNK):
        n = Xw.shape[0]
        logits = net.logits(model_cfg, params, Xw, stats)  # (n*p, V), p predictions per sample
        V = logits.shape[-1]
        scored = logits.view(n, -1, V)[:, -keep:].reshape(-1, V)  # each sample's last `keep` predictions
        targets = Yw.view(n, -1)[:, -keep:].reshape(-1)
        total += F.cross_entropy(scored, targets, reduction="sum").item()
        count += targets.numel()
    return total / count


@torch.no_grad()
def sample_names(cfg: TrainConfig, params: Params, stats: Params, vocab: Vocab, n: int = 20,
                 seed: int = 2147483647 + 10, max_chars: int = MAX_WORD_CHARS) -> list[str]:
    """Names drawn from the model, as in the lecture: the context starts as the network's
    `sample_context` ('.' * context_length for the MLP and the WaveNet, one '.' for the GPT), each
    character is drawn with torch.multinomial from the softmax of the prediction after the whole
    context, the context keeps its last context_length characters, and a name ends at '.'. One
    seeded generator for all names, so the same seed gives the same names. A name that has not
    ended after `max_chars` characters (an untrained model may ramble) is cut there."""
    net, model_cfg = get_net(cfg.net), cfg.model_config()
    g = torch.Generator().manual_seed(seed)
    stop = vocab.stoi[SEPARATOR]
    length = net.context_length(model_cfg)
    names: list[str] = []
    for _ in range(n):
        context = net.sample_context(model_cfg, stop)
        out: list[int] = []
        while len(out) < max_chars:
            logits = net.logits(model_cfg, params, torch.tensor([context]), stats)[-1:]  # (1, V)
            probs = F.softmax(logits, dim=1)
            ix = int(torch.multinomial(probs, num_samples=1, generator=g).item())
            if ix == stop:
                break
            out.append(ix)
            context = [*context, ix][-length:]
        names.append(vocab.decode(out))
    return names


@dataclass(frozen=True, repr=False)
class TrainedModel:
    config: TrainConfig  # how it was trained (network, sizes, seed, steps, data path)
    vocab: Vocab
    params: Params  # every parameter of the network's tape, by name
    stats: Params  # the network's inference statistics (batchnorm mean and variance per layer), by name
    metrics: dict[str, float] = field(default_factory=dict)  # train/val/test loss and steps, when known

    @property
    def net(self) -> str:
        return self.config.net

    def loss(self, X: torch.Tensor, Y: torch.Tensor) -> float:
        """Mean cross-entropy over X (N, T), Y (N,)."""
        return split_loss(self.config, self.params, self.stats, X, Y)

    def sample(self, n: int = 20, seed: int | None = None) -> list[str]:
        """`n` names; seed None = the lecture's sampling seed (training seed + 10)."""
        return sample_names(self.config, self.params, self.stats, self.vocab, n,
                            self.config.sample_seed if seed is None else seed)

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.params.values())
        losses = "".join(f", {k} {v:.4f}" for k, v in self.metrics.items() if k.endswith("_loss"))
        return f"<TrainedModel {self.config.net}: {n} parameters, {len(self.vocab.chars)} characters{losses}>"

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{tuple(v.shape)}</td></tr>"
                       for k, v in self.params.items())
        return f"<table><caption>{html.escape(repr(self))}</caption><tr><th>parameter</th><th>shape</th></tr>{rows}</table>"

    def save(self, path: str | Path) -> None:
        """Write the model to one file (atomically: a half-written file never has the final name)."""
        p = Path(path)
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "net": self.config.net,
            "config": self.config.to_dict(),
            "vocab": list(self.vocab.chars),
            "params": {name: t.detach().cpu().contiguous().clone() for name, t in self.params.items()},
            "stats": {name: t.detach().cpu().contiguous().clone() for name, t in self.stats.items()},
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
    """Read a model file of any network; anything else -- missing, random bytes, truncated, JSON,
    another program's torch file, another format version, an unknown network, tensors that do not
    fit the network -- is a ModelFileError naming the file."""
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
    if version == 1:
        doc = _from_version_1(doc)
    elif version != VERSION:
        raise bad(f"model file format version {version!r}; this version of Backprop Ninja reads versions 1 and {VERSION}")
    return _from_doc(doc, bad)


def _from_version_1(doc: dict[str, Any]) -> dict[str, Any]:
    """A version-1 file (the MLP; its batchnorm statistics as "bn": {"mean", "var"}) as version 2."""
    bn = doc.get("bn")
    stats = {"bnmean": bn.get("mean"), "bnvar": bn.get("var")} if isinstance(bn, dict) and set(bn) == {"mean", "var"} else bn
    config = doc.get("config")
    if isinstance(config, dict):
        config = {"net": "mlp", **config}
    return {**doc, "version": VERSION, "net": "mlp", "config": config, "stats": stats}


def _from_doc(doc: dict[str, Any], bad: Callable[[str], ModelFileError]) -> TrainedModel:
    name = doc.get("net")
    if name not in NETS:
        raise bad(f"a model of network {name!r}, which this version does not know; the networks are: {', '.join(NETS)}")
    raw_config = doc.get("config")
    if not isinstance(raw_config, dict):
        raise bad("damaged model file: no training config")
    try:
        config = TrainConfig.from_dict(raw_config)
    except (ConfigError, TypeError) as exc:
        raise bad(f"damaged model file: config: {exc}") from None
    if config.net != name:
        raise bad(f"damaged model file: it says network {name!r} but its config says {config.net!r}")
    chars = doc.get("vocab")
    if (not isinstance(chars, list) or not chars or chars[0] != SEPARATOR
            or not all(isinstance(c, str) and len(c) == 1 for c in chars) or len(set(chars)) != len(chars)):
        raise bad(f"damaged model file: the vocabulary must be distinct characters starting with {SEPARATOR!r}")
    net, model_cfg = get_net(name), config.model_config()
    param_shapes = net.param_shapes(model_cfg, len(chars))
    stat_shapes = net.calibration_shapes(model_cfg)
    raw_params, raw_stats = doc.get("params"), doc.get("stats")
    if not isinstance(raw_params, dict) or set(raw_params) != set(param_shapes):
        raise bad(f"damaged model file: the parameters of {name} are exactly {', '.join(param_shapes)}")
    if not isinstance(raw_stats, dict) or set(raw_stats) != set(stat_shapes):
        raise bad(f"damaged model file: the statistics of {name} are exactly {', '.join(stat_shapes) or 'none'}")
    tensors = {**raw_params, **raw_stats}
    expected = {**param_shapes, **stat_shapes}
    first = next(iter(raw_params.values()))
    dtype = first.dtype if isinstance(first, torch.Tensor) else None
    for key, t in tensors.items():
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.float32, torch.float64) or t.dtype != dtype:
            raise bad(f"damaged model file: {key} must be a float32 or float64 tensor like the others")
        if tuple(t.shape) != expected[key]:
            raise bad(f"damaged model file: {key} has shape {tuple(t.shape)}, expected {expected[key]}")
        if not bool(torch.isfinite(t).all()):
            raise bad(f"damaged model file: {key} holds NaN or infinite values")
    for key in net.calibration_variances(model_cfg):
        if bool((raw_stats[key] < 0).any()):
            raise bad(f"damaged model file: the variance {key} is negative")
    raw_metrics = doc.get("metrics", {})
    metrics = ({k: float(v) for k, v in raw_metrics.items() if isinstance(k, str) and isinstance(v, (int, float))}
               if isinstance(raw_metrics, dict) else {})
    return TrainedModel(config, Vocab(tuple(chars)), dict(raw_params), dict(raw_stats), metrics)
