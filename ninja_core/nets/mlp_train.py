"""Training the lecture's MLP: its fast manual-backward step, its plain forward, batchnorm calibration.

`MLPStep` is lecture exercise 4 (forward, then the fused backward: cross-entropy and batchnorm in one
step each) built from the shared parts of `shared_train.py`; a test holds its gradients to the
tape's manual backward and to autograd. `logits` is the network as a learner writes it with
autograd (the benchmark's baseline and, with calibrated statistics, the evaluation). The `MLP`
object in `mlp.py` hands these out through its training hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .layers import BN_EPS
from .shared_train import BatchNormTanh, Embedding, FlatBuffers, LossMeter, Params, SoftmaxCrossEntropy, TrainStep

if TYPE_CHECKING:
    from ..config import Config


class MLPStep(TrainStep):
    """emb -> embcat -> hprebn -> batchnorm -> h -> logits -> loss, and back (B = batch, T = block_size,
    E = n_embd, H = n_hidden, V = vocabulary). Flat storage: C, W1, b1, [bngain; bnbias], [W2; b2]."""

    def __init__(self, cfg: Config, params: Params) -> None:
        C, W1 = params["C"], params["W1"]
        n, T, (V, E), H = cfg.batch_size, cfg.block_size, C.shape, W1.shape[1]
        flat = FlatBuffers([(V, E), (T * E, H), (H,), (2, H), SoftmaxCrossEntropy.storage_shape(H, V)], C.dtype, C.device)
        self.flat_params, self.flat_grads = flat.params, flat.grads
        (Cs, dC), (W1s, dW1), (b1s, db1), (gb, dgb), (Wb, dWb) = (flat.views(i) for i in range(5))
        Cs.copy_(C)
        W1s.copy_(W1)
        b1s.copy_(params["b1"])
        gb[0].copy_(params["bngain"].view(H))
        gb[1].copy_(params["bnbias"].view(H))
        W2, b2 = SoftmaxCrossEntropy.load(Wb, params["W2"], params["b2"])
        self.params = {"C": Cs, "W1": W1s, "b1": b1s, "W2": W2, "b2": b2, "bngain": gb[0:1], "bnbias": gb[1:2]}
        self.grads = {"C": dC, "W1": dW1, "b1": db1, "W2": dWb[:H, :V], "b2": dWb[H, :V], "bngain": dgb[0:1],
                      "bnbias": dgb[1:2]}
        self.meter = LossMeter(n, C.dtype, C.device)
        self.embedding = Embedding(Cs, dC, n * T)  # emb (B*T, E), viewed as embcat (B, T*E)
        self.output = SoftmaxCrossEntropy(Wb, dWb, V, n, self.meter)
        self.hidden = BatchNormTanh(self.embedding.emb.view(n, T * E), W1s, dW1, b1s, db1.view(1, H), gb,
                                    dgb, self.output.h, self.embedding.demb.view(n, T * E), dh_scale=n)

        self._passes = (self.embedding.forward, self.hidden.forward, self.output.forward, self.output.backward,
                        self.hidden.backward, self.embedding.backward)

    def forward_backward(self, Xb: torch.Tensor, Yb: torch.Tensor) -> None:
        embedding, hidden, output, output_backward, hidden_backward, embedding_backward = self._passes
        x = Xb if Xb.ndim == 1 else Xb.reshape(-1)  # (B*T,)
        y = Yb if Yb.ndim == 2 else Yb.reshape(-1, 1)  # (B, 1)
        embedding(x)  # emb = C[Xb]
        hidden()  # hprebn = embcat @ W1 + b1 ... h = torch.tanh(hpreact)
        output(y)  # logits = h @ W2 + b2; loss
        hidden_backward(output_backward(y))  # dlogits -> dW2, db2, dh -> ... dW1, db1, dembcat
        embedding_backward(x)  # dC

    def activations(self) -> Params:
        return {"h": self.output.h}


def logits(cfg: Config, params: Params, X: torch.Tensor, stats: Params | None = None) -> torch.Tensor:
    """X (N, T) -> logits (N, V), the network as written with autograd. stats None: batchnorm with
    the batch's statistics (training; as sums, since torch.var(0) takes ~50 us on (32, 200) here);
    else with the calibrated bnmean, bnvar (1, H) (evaluation and sampling)."""
    emb = params["C"][X]  # (N, T, E)
    hprebn = emb.view(emb.shape[0], -1) @ params["W1"] + params["b1"]  # (N, H)
    if stats is None:
        n = X.shape[0]
        bnmean = 1 / n * hprebn.sum(0, keepdim=True)  # (1, H)
        bndiff = hprebn - bnmean
        bnvar = 1 / (n - 1) * (bndiff**2).sum(0, keepdim=True)  # Bessel's n-1
        hpreact = params["bngain"] * (bndiff * (bnvar + BN_EPS) ** -0.5) + params["bnbias"]
    else:  # the calibrated statistics folded into one scale and shift per unit: one pass over hprebn
        scale = params["bngain"] * (stats["bnvar"] + BN_EPS) ** -0.5  # (1, H)
        hpreact = torch.addcmul(params["bnbias"] - stats["bnmean"] * scale, hprebn, scale)
    return torch.tanh(hpreact) @ params["W2"] + params["b2"]  # (N, V)


def calibrate(cfg: Config, params: Params, X: torch.Tensor) -> Params:
    """bnmean, bnvar (1, H): hprebn's statistics over the whole split X (the lecture's calibration
    after training; Bessel's n-1 as in training)."""
    from .shared_train import split_moments

    def hprebn(x: torch.Tensor) -> torch.Tensor:
        emb = params["C"][x]  # (N, T, E)
        return emb.view(emb.shape[0], -1) @ params["W1"] + params["b1"]  # (N, H)

    bnmean, bnvar = split_moments(X, hprebn, (0,))
    return {"bnmean": bnmean, "bnvar": bnvar}
