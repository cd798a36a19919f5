"""One SGD step with the ninja's own backward pass: the readable reference and the fast path.

`reference_grads` is the lecture's exercise 4 written out straight: the forward pass, then the
fused backward (cross-entropy and batchnorm in one step each, the formulas of `tape.FUSED_BLOCKS`)
line by line beside the forward line it differentiates. `FastStep` computes the same gradients with
preallocated buffers, in-place kernels and fewer ops; a test holds it to the reference (allclose).

Why the fast path is plain eager code and not torch.compile: on this 2-core CPU a step is ~40
kernels on (32, 200) tensors, each a few microseconds, so the time goes to dispatch, not FLOPs
(~2 MFLOP a step). Measured at batch 32, n_hidden 200, one thread (steps/s):
    autograd, loss.backward()                     ~3 600
    readable manual step (reference_grads)        ~5 200
    a fused step under torch.compile              ~8 100-8 600, plus 2-16 s to compile per process
    FastStep                                      ~10 000
Inductor's generated call was no faster than FastStep's eager kernels here and costs seconds of
compilation per process, so there is nothing to fall back from: FastStep needs no compiler.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F

from .nets.layers import BN_EPS
from .nets.mlp import NET as MLP_NET

Params = dict[str, torch.Tensor]
Grads = dict[str, torch.Tensor]

# autograd's own kernel for tanh's backward, dh * (1 - h*h) in one op (public aten op, stable
# signature: grad_output, output); the reference writes the formula out instead.
_tanh_backward = torch.ops.aten.tanh_backward.default

PARAMS: tuple[str, ...] = MLP_NET.build_tape(()).params  # C, W1, b1, W2, b2, bngain, bnbias


class ManualPass(NamedTuple):
    loss: torch.Tensor  # () the minibatch loss
    grads: Grads  # the seven parameter gradients, by name
    h: torch.Tensor  # (B, H) the hidden activations, for the saturation statistic


def reference_grads(params: Params, Xb: torch.Tensor, Yb: torch.Tensor) -> ManualPass:
    """Forward, then the fused manual backward of lecture exercise 4. No autograd involved.

    B = batch, T = block_size, E = n_embd, H = n_hidden, V = vocabulary size.
    """
    C, W1, b1, W2, b2, bngain, bnbias = (params[name] for name in PARAMS)
    n = Xb.shape[0]
    with torch.no_grad():
        # ---- forward, as in DESIGN.md's table ---------------------------------------------------
        emb = C[Xb]  # (B, T, E)
        embcat = emb.view(emb.shape[0], -1)  # (B, T*E)
        hprebn = embcat @ W1 + b1  # (B, H)
        bnmeani = 1 / n * hprebn.sum(0, keepdim=True)  # (1, H)
        bndiff = hprebn - bnmeani  # (B, H)
        bndiff2 = bndiff**2  # (B, H)
        bnvar = 1 / (n - 1) * bndiff2.sum(0, keepdim=True)  # (1, H) Bessel's n-1
        bnvar_inv = (bnvar + BN_EPS) ** -0.5  # (1, H)
        bnraw = bndiff * bnvar_inv  # (B, H)
        hpreact = bngain * bnraw + bnbias  # (B, H)
        h = torch.tanh(hpreact)  # (B, H)
        logits = h @ W2 + b2  # (B, V)
        loss = F.cross_entropy(logits, Yb)  # ()

        # ---- backward, bottom-up; each block differentiates the forward line in its comment ------
        # loss = F.cross_entropy(logits, Yb): softmax minus the one-hot target, over n (exercise 2)
        dlogits = F.softmax(logits, 1)  # (B, V)
        dlogits[torch.arange(n), Yb] -= 1
        dlogits /= n
        # logits = h @ W2 + b2
        dh = dlogits @ W2.T  # (B, H)
        dW2 = h.T @ dlogits  # (H, V)
        db2 = dlogits.sum(0)  # (V,)
        # h = torch.tanh(hpreact)
        dhpreact = (1.0 - h**2) * dh  # (B, H)
        # hpreact = bngain * bnraw + bnbias
        dbngain = (bnraw * dhpreact).sum(0, keepdim=True)  # (1, H)
        dbnbias = dhpreact.sum(0, keepdim=True)  # (1, H)
        # bnmeani ... bnraw: batchnorm from dhpreact straight to dhprebn (exercise 3)
        dhprebn = bngain * bnvar_inv / n * (
            n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))  # (B, H)
        # hprebn = embcat @ W1 + b1
        dembcat = dhprebn @ W1.T  # (B, T*E)
        dW1 = embcat.T @ dhprebn  # (T*E, H)
        db1 = dhprebn.sum(0)  # (H,) zero in exact arithmetic: batchnorm subtracts the mean, so b1 cancels
        # embcat = emb.view(emb.shape[0], -1)
        demb = dembcat.view(emb.shape)  # (B, T, E)
        # emb = C[Xb]: every row of C collects the gradients of the positions that looked it up
        dC = torch.zeros_like(C)  # (V, E)
        dC.index_add_(0, Xb.view(-1), demb.view(-1, C.shape[1]))
    grads = {"C": dC, "W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "bngain": dbngain, "bnbias": dbnbias}
    return ManualPass(loss, grads, h)


def sgd_update(params: Params, grads: Grads, lr: float) -> None:
    """The lecture's `p.data += -lr * grad`, in place, as one fused multiply-add per parameter."""
    with torch.no_grad():
        for name, p in params.items():
            p.add_(grads[name], alpha=-lr)


def reference_step(params: Params, Xb: torch.Tensor, Yb: torch.Tensor, lr: float) -> ManualPass:
    """One SGD step with the readable manual backward: reference_grads, then sgd_update."""
    result = reference_grads(params, Xb, Yb)
    sgd_update(params, result.grads, lr)
    return result


class Stepper(Protocol):
    """What the training loop needs from a step: update the parameters in place, keep the last
    gradients and activations for the audit and the statistics, and the mean loss on request."""

    grads: Grads
    h: torch.Tensor

    def __call__(self, Xb: torch.Tensor, Yb: torch.Tensor, lr: float) -> None: ...

    def take_loss(self) -> float:
        """The mean minibatch loss over the steps since the last call (NaN if there were none)."""
        ...


class ReferenceStep:
    """`reference_step` behind the Stepper interface."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.grads: Grads = {}
        self.h = torch.empty(0)
        self._loss_sum = 0.0
        self._loss_steps = 0

    def __call__(self, Xb: torch.Tensor, Yb: torch.Tensor, lr: float) -> None:
        result = reference_step(self.params, Xb, Yb, lr)
        self.grads, self.h = result.grads, result.h
        self._loss_sum += float(result.loss)
        self._loss_steps += 1

    def take_loss(self) -> float:
        mean = self._loss_sum / self._loss_steps if self._loss_steps else float("nan")
        self._loss_sum, self._loss_steps = 0.0, 0
        return mean


class FastStep:
    """The fused step of `reference_grads` with every tensor preallocated and every op in place.

    The same formulas, rearranged for fewer kernels (each saves a few microseconds of dispatch):
    the batch mean and variance as sum-then-scale (torch.var(0) takes ~50 us on (32, 200) here),
    the cross-entropy gradient as exp(log_softmax) with a scatter of -1 (log_softmax also gives
    the loss), tanh's backward as autograd's own kernel, and batchnorm's backward with n folded in:
        dhprebn = bngain*bnvar_inv * (dhpreact - dbnbias/n - bnraw*dbngain/(n-1))
    which is the lecture's formula, since dbnbias = dhpreact.sum(0) and dbngain = (dhpreact*bnraw).sum(0).
    The update is one _foreach_add_ over the seven parameters.

    The parameters are updated in place and must not be replaced: the buffers hold views of them.
    """

    def __init__(self, params: Params, batch_size: int) -> None:
        self.params = params
        C, W1, W2 = params["C"], params["W1"], params["W2"]
        n = batch_size
        V, E = C.shape
        H = W1.shape[1]
        self.n, self.E = n, E
        T = W1.shape[0] // E
        dtype, device = C.dtype, C.device

        def buf(*shape: int) -> torch.Tensor:
            return torch.empty(shape, dtype=dtype, device=device)

        self.emb = buf(n * T, E)  # (B*T, E) filled by index_select
        self.embcat = self.emb.view(n, T * E)  # (B, T*E)
        self.hprebn, self.bnraw, self.hpreact, self.h = buf(n, H), buf(n, H), buf(n, H), buf(n, H)
        self.scratch = buf(n, H)  # bndiff**2, then bnraw*dhpreact
        self.bnmean, self.bnvar_inv, self.bnscale = buf(1, H), buf(1, H), buf(1, H)
        self.logprobs, self.dlogits = buf(n, V), buf(n, V)
        self.dh, self.dhprebn, self.dembcat = buf(n, H), buf(n, H), buf(n, T * E)
        self.minus_one = torch.full((n, 1), -1.0, dtype=dtype, device=device)
        self.target_logprob = buf(n, 1)
        self._loss_sum = torch.zeros((n, 1), dtype=dtype, device=device)  # -log p(target), summed over steps
        self._loss_steps = 0
        self.grads: Grads = {name: torch.empty_like(params[name]) for name in PARAMS}
        # Transposed views, made once: a view follows its tensor's in-place updates.
        self.embcat_T, self.h_T, self.W1_T, self.W2_T = self.embcat.T, self.h.T, W1.T, W2.T
        self._plist = [params[name] for name in PARAMS]
        self._glist = [self.grads[name] for name in PARAMS]

    def forward_backward(self, Xb: torch.Tensor, Yb: torch.Tensor) -> None:
        """Gradients of this minibatch into self.grads; the parameters are not touched."""
        C, W1, b1, W2, b2, bngain, bnbias = self._plist
        g = self.grads
        n = self.n
        x = Xb.reshape(-1)  # (B*T,)
        y = Yb.view(-1, 1)  # (B, 1)
        # forward
        torch.index_select(C, 0, x, out=self.emb)  # emb = C[Xb]
        hprebn = torch.addmm(b1, self.embcat, W1, out=self.hprebn)  # (B, H)
        bnmean = torch.sum(hprebn, 0, keepdim=True, out=self.bnmean).mul_(1.0 / n)  # (1, H)
        bndiff = torch.sub(hprebn, bnmean, out=self.bnraw)  # (B, H), becomes bnraw below
        bnvar = torch.sum(torch.mul(bndiff, bndiff, out=self.scratch), 0, keepdim=True, out=self.bnvar_inv)
        bnvar_inv = bnvar.mul_(1.0 / (n - 1)).add_(BN_EPS).rsqrt_()  # (1, H)
        bnraw = bndiff.mul_(bnvar_inv)  # (B, H)
        torch.addcmul(bnbias, bngain, bnraw, out=self.hpreact)  # hpreact = bngain * bnraw + bnbias
        h = torch.tanh(self.hpreact, out=self.h)  # (B, H)
        logits = torch.addmm(b2, h, W2, out=self.dlogits)  # (B, V); dlogits reuses the buffer below
        logprobs = torch.log_softmax(logits, 1, out=self.logprobs)  # (B, V)
        self._loss_sum.sub_(torch.gather(logprobs, 1, y, out=self.target_logprob))
        self._loss_steps += 1
        # backward
        dlogits = torch.exp(logprobs, out=self.dlogits)  # softmax
        dlogits.scatter_add_(1, y, self.minus_one).div_(n)  # (softmax - onehot) / n
        torch.mm(self.h_T, dlogits, out=g["W2"])  # dW2 = h.T @ dlogits
        torch.sum(dlogits, 0, out=g["b2"])  # db2
        dh = torch.mm(dlogits, self.W2_T, out=self.dh)  # dh = dlogits @ W2.T
        dhpreact = _tanh_backward(dh, h)  # (1 - h**2) * dh
        dbnbias = torch.sum(dhpreact, 0, keepdim=True, out=g["bnbias"])
        dbngain = torch.sum(torch.mul(bnraw, dhpreact, out=self.scratch), 0, keepdim=True, out=g["bngain"])
        dhprebn = torch.sub(dhpreact, dbnbias, alpha=1.0 / n, out=self.dhprebn)
        dhprebn.addcmul_(bnraw, dbngain, value=-1.0 / (n - 1))
        dhprebn.mul_(torch.mul(bngain, bnvar_inv, out=self.bnscale))  # (B, H)
        torch.mm(self.embcat_T, dhprebn, out=g["W1"])  # dW1 = embcat.T @ dhprebn
        torch.sum(dhprebn, 0, out=g["b1"])  # db1
        torch.mm(dhprebn, self.W1_T, out=self.dembcat)  # dembcat = dhprebn @ W1.T
        g["C"].zero_().index_add_(0, x, self.dembcat.view(-1, self.E))  # dC

    def update(self, lr: float) -> None:
        torch._foreach_add_(self._plist, self._glist, alpha=-lr)

    def __call__(self, Xb: torch.Tensor, Yb: torch.Tensor, lr: float) -> None:
        self.forward_backward(Xb, Yb)
        self.update(lr)

    def take_loss(self) -> float:
        if not self._loss_steps:
            return float("nan")
        mean = self._loss_sum.sum().item() / (self.n * self._loss_steps)
        self._loss_sum.zero_()
        self._loss_steps = 0
        return mean


class BatchSampler:
    """Minibatches exactly as the lecture draws them, `torch.randint(0, N, (n,), generator=g)` once a
    step, but drawn for many steps at a time: the CPU generator hands out the same numbers in the
    same order either way (a test holds it to that), and one draw + one gather for ~1 000 steps
    saves a few microseconds a step. Draws only as many steps as it was asked for in total."""

    CHUNK_ROWS = 32_768  # rows gathered per draw: 1 024 steps at batch 32, bounded memory at batch 4 096

    def __init__(self, X: torch.Tensor, Y: torch.Tensor, batch_size: int, g: torch.Generator, steps: int) -> None:
        self.X, self.Y, self.n, self.g = X, Y, batch_size, g
        self.remaining = steps
        self.per_chunk = max(1, self.CHUNK_ROWS // batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, T = self.n, self.X.shape[1]
        while self.remaining > 0:
            k = min(self.per_chunk, self.remaining)
            ix = torch.randint(0, self.X.shape[0], (k * n,), generator=self.g)  # (k*B,)
            Xc = self.X.index_select(0, ix).view(k, n, T)  # (k, B, T)
            Yc = self.Y.index_select(0, ix).view(k, n)  # (k, B)
            for i in range(k):
                self.remaining -= 1
                yield Xc[i], Yc[i]
