"""Training the lecture's WaveNet: its fast manual-backward step, its plain forward, batchnorm calibration.

The network (makemore part 5) is three levels of FlattenConsecutive(2) -> Linear without bias ->
BatchNorm1d -> Tanh, then Linear to the vocabulary. A level's (B, T, C) activations are (B*T, C)
rows in memory, and its batchnorm reduces over dims (0, 1) -- over all B*T rows -- so each level is
one `BatchNormTanh` over rows: n1 = B*4 rows at level 1, n2 = B*2 at level 2, B at level 3, exactly
the counts of the tape's constants. FlattenConsecutive(2) is a view: x2 = h1.view(B*2, 2H).
A test holds `WaveNetStep`'s gradients to the tape's manual backward and to autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from .layers import BN_EPS
from .shared_train import (
    BatchNormTanh,
    Embedding,
    FlatBuffers,
    LossMeter,
    Params,
    SoftmaxCrossEntropy,
    TrainStep,
    split_moments,
)

if TYPE_CHECKING:
    from ..config import Config

LEVELS = (1, 2, 3)


class WaveNetStep(TrainStep):
    """emb -> (x_k -> hprebn_k -> batchnorm -> h_k for k = 1, 2, 3) -> logits -> loss, and back.
    B = batch, E = n_embd, H = n_hidden, V = vocabulary. Flat storage: C, then for each level W_k and
    [bngain_k; bnbias_k], then [W4; b4]."""

    def __init__(self, cfg: Config, params: Params) -> None:
        C = params["C"]
        n, (V, E), H = cfg.batch_size, C.shape, cfg.n_hidden
        shapes: list[tuple[int, ...]] = [(V, E)]
        for fan_in in (2 * E, 2 * H, 2 * H):
            shapes += [(fan_in, H), (2, H)]
        shapes.append(SoftmaxCrossEntropy.storage_shape(H, V))
        flat = FlatBuffers(shapes, C.dtype, C.device)
        self.flat_params, self.flat_grads = flat.params, flat.grads
        Cs, dC = flat.views(0)
        Cs.copy_(C)
        self.params, self.grads = {"C": Cs}, {"C": dC}
        self.meter = LossMeter(n, C.dtype, C.device)
        self.embedding = Embedding(Cs, dC, n * 8)  # emb (B*8, E)
        Wb, dWb = flat.views(7)
        W4, b4 = SoftmaxCrossEntropy.load(Wb, params["W4"], params["b4"])
        self.output = SoftmaxCrossEntropy(Wb, dWb, V, n, self.meter)

        x = self.embedding.emb.view(n * 4, 2 * E)  # x1 = FlattenConsecutive(2)(emb)   (B*4, 2E)
        dx = self.embedding.demb.view(n * 4, 2 * E)
        self.levels: list[BatchNormTanh] = []
        self.dh: list[torch.Tensor] = []  # the gradient each level receives
        for k in LEVELS:
            rows = n * 2 ** (3 - k)  # n1 = B*4, n2 = B*2, B
            (W, dW), (gb, dgb) = flat.views(2 * k - 1), flat.views(2 * k)
            W.copy_(params[f"W{k}"])
            gb[0].copy_(params[f"bngain{k}"])
            gb[1].copy_(params[f"bnbias{k}"])
            self.params.update({f"W{k}": W, f"bngain{k}": gb[0], f"bnbias{k}": gb[1]})
            self.grads.update({f"W{k}": dW, f"bngain{k}": dgb[0], f"bnbias{k}": dgb[1]})
            last = k == LEVELS[-1]
            h = self.output.h if last else torch.empty((rows, H), dtype=C.dtype, device=C.device)
            self.levels.append(BatchNormTanh(x, W, dW, None, None, gb, dgb, h, dx,
                                             dh_scale=n if last else 1.0))
            if not last:
                x = h.view(rows // 2, 2 * H)  # x_{k+1} = FlattenConsecutive(2)(h_k)
                dx = torch.empty((rows // 2, 2 * H), dtype=C.dtype, device=C.device)
                self.dh.append(dx.view(rows, H))
        self.params.update({"W4": W4, "b4": b4})
        self.grads.update({"W4": dWb[:H, :V], "b4": dWb[H, :V]})
        level1, level2, level3 = self.levels
        self._passes = (self.embedding, level1, level2, level3, self.output, self.dh[0], self.dh[1])

    def forward_backward(self, Xb: torch.Tensor, Yb: torch.Tensor) -> None:
        embedding, level1, level2, level3, output, dh1, dh2 = self._passes
        x = Xb if Xb.ndim == 1 else Xb.reshape(-1)  # (B*8,)
        y = Yb if Yb.ndim == 2 else Yb.reshape(-1, 1)  # (B, 1)
        embedding.forward(x)  # emb = C[Xb]
        level1.forward()  # x1 = emb.view(B, 4, 2E); hprebn1 = x1 @ W1; batchnorm over (0, 1); h1 = tanh
        level2.forward()  # x2 = h1.view(B, 2, 2H) ...
        level3.forward()  # x3 = h2.view(B, 2H) ...
        output.forward(y)  # logits = h3 @ W4 + b4; loss
        level3.backward(output.backward(y))  # dW4, db4, dh3 -> dW3, dbngain3, dbnbias3, dx3 = dh2
        level2.backward(dh2)
        level1.backward(dh1)  # ... demb
        embedding.backward(x)  # dC

    def activations(self) -> Params:
        return {f"h{k}": level.h for k, level in zip(LEVELS, self.levels, strict=True)}


def _level(params: Params, k: int, x: torch.Tensor, stats: Params | None) -> torch.Tensor:
    """x_k (N, T, 2C) or (N, 2C) -> h_k: Linear without bias, BatchNorm1d over every dim but the
    last, tanh. Training (stats None): the batch's statistics with Bessel's n-1, as sums (as the
    lecture's layer, minus torch.var: slow on this CPU). Evaluation: the calibrated statistics,
    folded into one scale and shift per channel (one pass over the activations instead of four)."""
    hprebn = x @ params[f"W{k}"]
    gain, bias = params[f"bngain{k}"], params[f"bnbias{k}"]
    if stats is None:
        dims = tuple(range(hprebn.dim() - 1))
        count = hprebn.numel() // hprebn.shape[-1]
        bnmean = 1 / count * hprebn.sum(dims, keepdim=True)
        bndiff = hprebn - bnmean
        bnvar = 1 / (count - 1) * (bndiff**2).sum(dims, keepdim=True)
        return torch.tanh(gain * (bndiff * (bnvar + BN_EPS) ** -0.5) + bias)
    scale = gain * (stats[f"bnvar{k}"] + BN_EPS) ** -0.5  # (H,)
    return torch.tanh(torch.addcmul(bias - stats[f"bnmean{k}"] * scale, hprebn, scale))


def _flatten(h: torch.Tensor) -> torch.Tensor:
    """FlattenConsecutive(2) before level k+1: (N, T, C) -> (N, T/2, 2C), squeezed to (N, 2C) at T = 2."""
    N, T = h.shape[0], h.shape[1]
    return h.reshape(N, T // 2, -1) if T > 2 else h.reshape(N, -1)


def logits(cfg: Config, params: Params, X: torch.Tensor, stats: Params | None = None) -> torch.Tensor:
    """X (N, 8) -> logits (N, V), the network as written with autograd (the lecture's layers inlined).
    stats None: batchnorm with the batch's statistics (training); else with the calibrated
    bnmean_k, bnvar_k (H,) (evaluation and sampling)."""
    h = _flatten(params["C"][X])  # emb (N, 8, E) -> x1 (N, 4, 2E)
    for k in LEVELS:
        h = _level(params, k, h, stats)
        if k < LEVELS[-1]:
            h = _flatten(h)
    return h @ params["W4"] + params["b4"]  # (N, V)


def calibrate(cfg: Config, params: Params, X: torch.Tensor) -> Params:
    """bnmean_k, bnvar_k (H,) for k = 1, 2, 3: each level's statistics over the whole split X, level
    by level (level k's inputs come through the already calibrated levels below it)."""
    stats: Params = {}

    def upto(k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def hprebn(x: torch.Tensor) -> torch.Tensor:
            h = _flatten(params["C"][x])
            for j in range(1, k):
                h = _flatten(_level(params, j, h, stats))
            return h @ params[f"W{k}"]

        return hprebn

    for k in LEVELS:
        hdims = 2 if k < 3 else 1  # (N, T, H) at levels 1 and 2, (N, H) at level 3
        mean, var = split_moments(X, upto(k), tuple(range(hdims)))
        stats[f"bnmean{k}"], stats[f"bnvar{k}"] = mean.reshape(-1), var.reshape(-1)
    return stats
