"""What the networks' fast training steps share (generic: it names no node of any network).

A network's fast step (`nets/<name>_train.py`) is built from these parts, each with its forward
and its hand-written backward side by side (llm.c's layout): `Embedding`, `BatchNormTanh` (linear,
batchnorm over the rows with Bessel's n-1, tanh), `SoftmaxCrossEntropy` (the output layer and the
loss). No autograd anywhere: every gradient is one of the lecture's formulas.

All parameters live in one flat buffer and all gradients in another (`FlatBuffers`), each parameter
a view, so SGD is one `add_` for the whole network. The parts are written for speed on a CPU where a
step is ~35 tiny kernels and each torch call costs ~1 us of dispatch (measured on this 2-core EPYC,
one thread, MLP at batch 32, n_hidden 200; per call, `time.thread_time` over 1 000 calls):

- every buffer is allocated once; every op writes with `out=` or in place;
- constants are 0-dim tensors, not Python floats: `x.mul_(0.5)` wraps 0.5 in a new tensor on every
  call (1.9 us), `x.mul_(half)` does not (0.8 us);
- column sums and means are products with a row of ones (or of 1/n): `ones @ x` 0.8-1.1 us against
  1.2-3.2 us for `x.sum(0)` or `x.sum(0) * (1/n)`;
- tanh is computed as 2*sigmoid(2x) - 1: torch's float32 tanh kernel takes 13.6 us on (32, 200)
  here, sigmoid 2.0 us (absolute difference <= ~1e-7 in float32, rounding);
- the output layer is stored padded to a multiple of 16 columns (27 -> 32), the padded logits held
  at a huge negative bias so their probabilities are exactly 0: MKL's small matmuls took 5.1-5.8 us
  at 32 columns against 7.3-7.5 us at 27; its bias is the last row of the same matrix, multiplied by
  a column of ones beside h, so `h1.T @ dlogits` gives dW and db in one product;
- dbngain and dbnbias come from one product, `ones @ [bnraw*dhpreact | dhpreact]`, written straight
  into the two gradients, which lie side by side in the flat buffer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .layers import BN_EPS

Params = dict[str, torch.Tensor]

# autograd's own kernel for (1 - h*h) * dh (public aten op, stable signature), with an out= overload
_tanh_backward = torch.ops.aten.tanh_backward.grad_input
PAD_COLUMNS = 16  # the output layer's width is rounded up to a multiple of this (see the module docstring)
PAD_LOGIT = -1e30  # bias of the padded columns: exp(PAD_LOGIT - max) is exactly 0 in float32 and float64


class FlatBuffers:
    """One buffer holding every parameter and one holding every gradient; `views(i)` is the i-th
    storage shape as (parameter view, gradient view). Gradients start at zero."""

    def __init__(self, shapes: Sequence[tuple[int, ...]], dtype: torch.dtype, device: torch.device) -> None:
        total = sum(math.prod(s) for s in shapes)
        self.params = torch.zeros(total, dtype=dtype, device=device)  # (P,) every parameter
        self.grads = torch.zeros(total, dtype=dtype, device=device)  # (P,) every gradient
        self._views: list[tuple[torch.Tensor, torch.Tensor]] = []
        offset = 0
        for shape in shapes:
            size = math.prod(shape)
            self._views.append((self.params[offset:offset + size].view(shape), self.grads[offset:offset + size].view(shape)))
            offset += size

    def views(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._views[i]


class LossMeter:
    """The mean minibatch loss since the last `take()`, without a host sync per step: each step
    gathers its target probabilities into a slot of a ring buffer (one kernel); the ring is reduced
    to -log p in float64 when it is full and when the loss is asked for."""

    SLOTS = 256

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device) -> None:
        self.ring = torch.empty((self.SLOTS, n, 1), dtype=dtype, device=device)  # (K, B, 1)
        self.slots = list(self.ring.unbind(0))  # views made once: indexing a tensor costs ~0.7 us a step
        self.used = 0
        self.total = 0.0
        self.count = 0
        self.tiny = torch.finfo(dtype).tiny  # a probability that underflowed counts as this (loss <= ~87 in float32)

    def record(self, probs: torch.Tensor, y: torch.Tensor) -> None:
        """probs (B, V), y (B, 1): store probs[range(B), y]."""
        torch.gather(probs, 1, y, out=self.slots[self.used])
        self.used += 1
        if self.used == self.SLOTS:
            self._flush()

    def _flush(self) -> None:
        if self.used:
            p = self.ring[: self.used]
            self.total -= float(p.clamp_min(self.tiny).log().sum(dtype=torch.float64))
            self.count += p.numel()
            self.used = 0

    def take(self) -> float:
        """The mean loss over the steps since the last call (NaN when there were none)."""
        self._flush()
        mean = self.total / self.count if self.count else math.nan
        self.total, self.count = 0.0, 0
        return mean


class TrainStep:
    """One minibatch's forward and hand-written backward, for training (base class).

    `params` maps every parameter of the tape to a view of `flat_params` (the optimizer updates the
    flat buffer in place; the views follow), `grads` maps it to its gradient of the last minibatch,
    a view of `flat_grads`. Subclasses fill `params`, `grads` and `meter`, and implement
    `forward_backward`; `activations` names the tanh outputs for the saturation statistic.
    """

    params: Params
    grads: Params
    flat_params: torch.Tensor  # (P,) may hold padding besides the parameters (see SoftmaxCrossEntropy)
    flat_grads: torch.Tensor  # (P,) the padding's gradient is always 0
    meter: LossMeter

    def forward_backward(self, Xb: torch.Tensor, Yb: torch.Tensor) -> None:
        """Xb (B, T) int64, Yb (B,) int64: the gradients of this minibatch into `grads`; the
        parameters are not touched."""
        raise NotImplementedError

    def activations(self) -> Params:
        """The tanh outputs of the last minibatch, by node name (for the saturation statistic)."""
        return {}

    def take_loss(self) -> float:
        """The mean minibatch loss over the steps since the last call (NaN if there were none)."""
        return self.meter.take()


def _const(value: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device)


class Embedding:
    """emb = C[Xb] and its backward: every row of C collects the gradients of the positions that
    looked it up (the lecture's loop over (i, j), as one index_add_)."""

    def __init__(self, C: torch.Tensor, dC: torch.Tensor, positions: int) -> None:
        self.C, self.dC = C, dC  # (V, E)
        self.emb = torch.empty((positions, C.shape[1]), dtype=C.dtype, device=C.device)  # (B*T, E)
        self.demb = torch.empty_like(self.emb)  # (B*T, E) written by the layer above

    def forward(self, x: torch.Tensor) -> None:
        """x (B*T,) the minibatch's character indices, flattened."""
        torch.index_select(self.C, 0, x, out=self.emb)  # emb = C[Xb]

    def backward(self, x: torch.Tensor) -> None:
        self.dC.zero_().index_add_(0, x, self.demb)  # dC[Xb[i, j]] += demb[i, j]


class BatchNormTanh:
    """One hidden layer: hprebn = x @ W (+ b); batchnorm over the rows (Bessel's n-1, as the
    lecture); h = tanh(hpreact). The batch statistics average over all `rows` rows of x: the
    MLP's batch, or the WaveNet's batch times its positions (n1 = B*4 at level 1).

    x (rows, K) is the buffer the layer below writes; `gainbias` (2, H) holds bngain and bnbias
    as its rows and `dgainbias` (1, 2H) their gradients side by side; `h` (rows, H) is where
    the output goes (a view the layer above reads); `dx` (rows, K) receives the input's gradient
    (None: not needed). `dh_scale`: the dh that `backward` receives is this multiple of the true
    one (the output layer hands back n * dh and the factor is folded into constants here, which
    saves a kernel).
    """

    def __init__(self, x: torch.Tensor, W: torch.Tensor, dW: torch.Tensor, b: torch.Tensor | None,
                 db: torch.Tensor | None, gainbias: torch.Tensor, dgainbias: torch.Tensor, h: torch.Tensor,
                 dx: torch.Tensor | None, dh_scale: float = 1.0) -> None:
        rows, H = x.shape[0], W.shape[1]
        self.x, self.W, self.dW, self.b, self.db, self.h, self.dx = x, W, dW, b, db, h, dx
        self.xT, self.WT = x.T, W.T  # transposed views, made once: a view follows in-place updates
        self.gainbias, self.gain = gainbias, gainbias[0:1]  # (2, H), (1, H)
        self.dgain, self.dbias = dgainbias[:, :H], dgainbias[:, H:]  # (1, H) each
        self.dgainbias = dgainbias

        def buf(*shape: int) -> torch.Tensor:
            return torch.empty(shape, dtype=x.dtype, device=x.device)

        def row(length: int, value: float) -> torch.Tensor:
            return torch.full((1, length), value, dtype=x.dtype, device=x.device)

        self.hprebn, self.bnraw, self.dhprebn = buf(rows, H), buf(rows, H), buf(rows, H)
        self.sq = self.dhprebn  # bndiff**2 lives only in the forward, dhprebn only in the backward
        self.bnmean, self.bnvar_inv, self.scale = buf(1, H), buf(1, H), buf(1, H)
        self.gb2 = buf(2, H)  # 2*bngain, 2*bnbias: tanh(a) = 2*sigmoid(2a) - 1
        self.gain2, self.bias2 = self.gb2[0:1], self.gb2[1:2]
        self.M = buf(rows, 2 * H)  # [bnraw * dhpreact | dhpreact]: one product sums both columns-wise
        self.rdy, self.dy = self.M[:, :H], self.M[:, H:]
        self.mean_row = row(rows, 1.0 / rows)  # bnmeani = mean_row @ hprebn
        self.var_row = row(rows, 1.0 / (rows - 1))  # Bessel's n-1
        self.eps_row = row(H, BN_EPS)
        self.sum_row = row(rows, 1.0 / dh_scale)  # column sums of the true gradient
        self.ones_row = row(rows, 1.0)
        self.two, self.minus_one, self.zero = _const(2.0, x), _const(-1.0, x), _const(0.0, x)
        self.alpha_bias, self.value_gain = dh_scale / rows, -dh_scale / (rows - 1)
        self.inv_scale = 1.0 / dh_scale

    def forward(self) -> None:
        x = self.x
        hprebn = (torch.mm(x, self.W, out=self.hprebn) if self.b is None  # hprebn = x @ W (+ b)   (rows, H)
                  else torch.addmm(self.b, x, self.W, out=self.hprebn))
        bnmeani = torch.mm(self.mean_row, hprebn, out=self.bnmean)  # 1/n * hprebn.sum(0)   (1, H)
        bndiff = torch.sub(hprebn, bnmeani, out=self.bnraw)  # becomes bnraw below
        bndiff2 = torch.mul(bndiff, bndiff, out=self.sq)
        bnvar = torch.addmm(self.eps_row, self.var_row, bndiff2, out=self.bnvar_inv)  # 1/(n-1) * bndiff2.sum(0) + 1e-5
        bnvar_inv = bnvar.rsqrt_()  # (bnvar + 1e-5)**-0.5
        bnraw = bndiff.mul_(bnvar_inv)  # bndiff * bnvar_inv
        torch.mul(self.gainbias, self.two, out=self.gb2)
        z = torch.addcmul(self.bias2, self.gain2, bnraw, out=self.h)  # 2 * (bngain * bnraw + bnbias) = 2 hpreact
        torch.sigmoid(z, out=self.h)
        torch.add(self.minus_one, self.h, alpha=2, out=self.h)  # h = tanh(hpreact) = 2 sigmoid(2 hpreact) - 1

    def backward(self, dh: torch.Tensor) -> None:
        """dh (rows, H): dh_scale times the loss's gradient at h. Writes dW, db, dbngain, dbnbias, dx."""
        dhpreact = _tanh_backward(dh, self.h, grad_input=self.dy)  # (1.0 - h**2) * dh
        torch.mul(self.bnraw, dhpreact, out=self.rdy)
        torch.mm(self.sum_row, self.M, out=self.dgainbias)  # dbngain = (bnraw * dhpreact).sum(0); dbnbias = dhpreact.sum(0)
        # batchnorm from dhpreact straight to dhprebn (lecture exercise 3), with n folded in:
        #   dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))
        #           = bngain*bnvar_inv * (dhpreact - dbnbias/n - bnraw*dbngain/(n-1))
        dhprebn = torch.sub(dhpreact, self.dbias, alpha=self.alpha_bias, out=self.dhprebn)
        dhprebn.addcmul_(self.bnraw, self.dgain, value=self.value_gain)
        dhprebn.mul_(torch.addcmul(self.zero, self.gain, self.bnvar_inv, value=self.inv_scale, out=self.scale))
        torch.mm(self.xT, dhprebn, out=self.dW)  # dW = x.T @ dhprebn
        if self.db is not None:
            torch.mm(self.ones_row, dhprebn, out=self.db)  # db = dhprebn.sum(0)
        if self.dx is not None:
            torch.mm(dhprebn, self.WT, out=self.dx)  # dx = dhprebn @ W.T


class SoftmaxCrossEntropy:
    """The output layer and the loss: logits = h @ W + b, loss = F.cross_entropy(logits, Yb), and
    the backward of both: dlogits = (softmax(logits) - onehot(Yb)) / n (lecture exercise 2),
    dW = h.T @ dlogits, db = dlogits.sum(0), dh = dlogits @ W.T.

    Storage: `Wb` (H+1, Vp) is W (H, V) with b (V,) as its last row, padded to Vp >= V columns (bias
    PAD_LOGIT, weights 0; the padding's probabilities and gradients are exactly 0). `h1` (B, H+1) is
    h with a column of ones, so `h1 @ Wb` is `h @ W + b` and `h1.T @ dlogits` is [dW; db].
    The layer below writes its output into `self.h`.
    """

    def __init__(self, Wb: torch.Tensor, dWb: torch.Tensor, vocab_size: int, n: int, meter: LossMeter) -> None:
        H, Vp = Wb.shape[0] - 1, Wb.shape[1]
        dtype, device = Wb.dtype, Wb.device
        self.Wb, self.dWb, self.meter, self.n = Wb, dWb, meter, n
        self.WT = Wb[:H].T  # (Vp, H)
        self.h1 = torch.ones((n, H + 1), dtype=dtype, device=device)  # [h | 1]
        self.h1T = self.h1.T
        self.h = self.h1[:, :H]  # (B, H)
        self.probs = torch.empty((n, Vp), dtype=dtype, device=device)
        self.dh = torch.empty((n, H), dtype=dtype, device=device)
        self.minus_one = torch.full((n, 1), -1.0, dtype=dtype, device=device)
        self.inv_n = 1.0 / n

    @staticmethod
    def storage_shape(n_hidden: int, vocab_size: int) -> tuple[int, int]:
        return n_hidden + 1, -(-vocab_size // PAD_COLUMNS) * PAD_COLUMNS

    @staticmethod
    def load(Wb: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Copy W (H, V) and b (V,) into the storage Wb; return the views that are W and b."""
        H, V = W.shape
        Wb[:H, V:] = 0.0
        Wb[H, V:] = PAD_LOGIT
        Wb[:H, :V] = W
        Wb[H, :V] = b
        return Wb[:H, :V], Wb[H, :V]

    def forward(self, y: torch.Tensor) -> None:
        """y (B, 1) the targets. Reads self.h; keeps softmax(logits) and records the loss."""
        logits = torch.mm(self.h1, self.Wb, out=self.probs)  # logits = h @ W + b      (B, Vp)
        probs = torch.softmax(logits, 1, out=self.probs)
        self.meter.record(probs, y)  # loss = -probs[range(n), Yb].log().mean()

    def backward(self, y: torch.Tensor) -> torch.Tensor:
        """Writes dW and db; returns n * dh (B, H): the 1/n of dlogits is applied by the products
        that need it, not as a kernel of its own (the layer below takes dh_scale=n)."""
        dlogits_n = self.probs.scatter_add_(1, y, self.minus_one)  # n * dlogits = softmax - onehot
        torch.addmm(self.dWb, self.h1T, dlogits_n, beta=0, alpha=self.inv_n, out=self.dWb)  # [dW; db] = [h | 1].T @ dlogits
        return torch.mm(dlogits_n, self.WT, out=self.dh)  # n * dh = n * dlogits @ W.T


# ---- evaluation helpers ------------------------------------------------------------------------

EVAL_CHUNK = 1024  # rows per forward pass over a whole split: bounded memory, cache-sized (WaveNet level 1: 2 MB)


@torch.no_grad()
def split_moments(X: torch.Tensor, produce: Callable[[torch.Tensor], torch.Tensor],
                  dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance (Bessel's n-1, as the lecture's training statistics) of `produce(chunk)`
    over `dims`, for the chunks of the rows of X, returned in the activations' dtype with keepdim
    shapes. Sums are accumulated in float64 (no float64 copy of a chunk is made) and chunks merged
    with Chan et al.'s pairwise update, in one pass. Raises ValueError for fewer than two entries."""
    count = 0
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None
    dtype = torch.float32
    for i in range(0, X.shape[0], EVAL_CHUNK):
        a = produce(X[i:i + EVAL_CHUNK])
        dtype = a.dtype
        k = math.prod(a.shape[d] for d in dims)
        chunk_mean = a.sum(dims, keepdim=True, dtype=torch.float64) / k
        chunk_m2 = (a - chunk_mean.to(dtype)).square_().sum(dims, keepdim=True, dtype=torch.float64)
        if mean is None or m2 is None:
            mean, m2, count = chunk_mean, chunk_m2, k
            continue
        delta = chunk_mean - mean
        total = count + k
        mean = mean + delta * (k / total)
        m2 = m2 + chunk_m2 + delta**2 * (count * k / total)
        count = total
    if mean is None or m2 is None or count < 2:
        raise ValueError(f"batchnorm statistics need at least 2 entries, got {count}")
    return mean.to(dtype), (m2 / (count - 1)).to(dtype)
