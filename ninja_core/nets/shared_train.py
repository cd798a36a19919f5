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
- dbngain and dbnbias come from one batched product, `ones @ [bnraw*dhpreact; dhpreact]`, written
  straight into the two gradients, which lie side by side in the flat buffer;
- each part's passes are closures over local variables, not methods reading attributes (~3 us of
  attribute lookups a step).
Against the first fast step (plain in-place kernels, 106-109 us by CPU time), these took the MLP's
step to 70-77 us, while autograd's takes 207-240 us (`make bench`, section training).
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
        self.record = self._recorder()

    def _recorder(self) -> Callable[[torch.Tensor, torch.Tensor], None]:
        """record(probs (B, V), y (B, 1)): store probs[range(B), y] (a closure over the ring: a step
        calls it every time)."""
        slots, gather, last = self.slots, torch.gather, self.SLOTS - 1

        def record(probs: torch.Tensor, y: torch.Tensor) -> None:
            used = self.used
            gather(probs, 1, y, out=slots[used])
            if used == last:
                self.used = last + 1
                self._flush()
            else:
                self.used = used + 1

        return record

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
        """Xb (B, T) int64, Yb (B,) int64 -- or their flat views (B*T,), (B, 1), as
        `BatchSampler(flat=True)` yields them: the gradients of this minibatch into `grads`; the
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
        emb = torch.empty((positions, C.shape[1]), dtype=C.dtype, device=C.device)  # (B*T, E)
        demb = torch.empty_like(emb)  # (B*T, E) written by the layer above
        self.C, self.dC, self.emb, self.demb = C, dC, emb, demb
        index_select = torch.index_select

        def forward(x: torch.Tensor) -> None:
            """x (B*T,) the minibatch's character indices, flattened."""
            index_select(C, 0, x, out=emb)  # emb = C[Xb]

        def backward(x: torch.Tensor) -> None:
            dC.zero_().index_add_(0, x, demb)  # dC[Xb[i, j]] += demb[i, j]

        # closures over locals, not methods: every name a step uses is a local (see BatchNormTanh)
        self.forward, self.backward = forward, backward


class BatchNormTanh:
    """One hidden layer: hprebn = x @ W (+ b); batchnorm over the rows (Bessel's n-1, as the
    lecture); h = tanh(hpreact). The batch statistics average over all `rows` rows of x: the
    MLP's batch, or the WaveNet's batch times its positions (n1 = B*4 at level 1).

    x (rows, K) is the buffer the layer below writes; `gainbias` (2, H) holds bngain and bnbias
    as its rows and `dgainbias` (2, H) their gradients likewise; `h` (rows, H) is where
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
        self.dgain, self.dbias = dgainbias[0:1], dgainbias[1:2]  # (1, H) each
        self.dgainbias = dgainbias.view(2, 1, H)  # what the batched sum below writes

        def buf(*shape: int) -> torch.Tensor:
            return torch.empty(shape, dtype=x.dtype, device=x.device)

        def row(length: int, value: float) -> torch.Tensor:
            return torch.full((1, length), value, dtype=x.dtype, device=x.device)

        self.hprebn, self.bnraw, self.dhprebn = buf(rows, H), buf(rows, H), buf(rows, H)
        self.sq = self.dhprebn  # bndiff**2 lives only in the forward, dhprebn only in the backward
        self.bnmean, self.bnvar_inv, self.scale = buf(1, H), buf(1, H), buf(1, H)
        self.gb2 = buf(2, H)  # 2*bngain, 2*bnbias: tanh(a) = 2*sigmoid(2a) - 1
        self.gain2, self.bias2 = self.gb2[0:1], self.gb2[1:2]
        self.M = buf(2, rows, H)  # [bnraw * dhpreact; dhpreact]: one batched product sums both over the rows
        self.rdy, self.dy = self.M[0], self.M[1]
        self.mean_row = row(rows, 1.0 / rows)  # bnmeani = mean_row @ hprebn
        self.var_row = row(rows, 1.0 / (rows - 1))  # Bessel's n-1
        self.eps_row = row(H, BN_EPS)
        self.sum_row = torch.full((2, 1, rows), 1.0 / dh_scale, dtype=x.dtype, device=x.device)  # of the true gradient
        self.ones_row = row(rows, 1.0)
        self.two, self.minus_one, self.zero = _const(2.0, x), _const(-1.0, x), _const(0.0, x)
        self.alpha_bias, self.value_gain = dh_scale / rows, -dh_scale / (rows - 1)
        self.inv_scale = 1.0 / dh_scale

        self.forward, self.backward = self._passes()

    def _passes(self) -> tuple[Callable[[], None], Callable[[torch.Tensor], None]]:
        """forward() and backward(dh) as closures: every tensor they touch is a local of this
        function, so a step looks up no attribute (~2 us of a ~70 us MLP step went to lookups)."""
        x, W, b, hprebn, bnmean, bnraw, sq, bnvar_inv, gb2, h = (
            self.x, self.W, self.b, self.hprebn, self.bnmean, self.bnraw, self.sq, self.bnvar_inv, self.gb2, self.h)
        mean_row, var_row, eps_row, sum_row, ones_row = self.mean_row, self.var_row, self.eps_row, self.sum_row, self.ones_row
        gainbias, gain, gain2, bias2, two, minus_one, zero = (
            self.gainbias, self.gain, self.gain2, self.bias2, self.two, self.minus_one, self.zero)
        dy, rdy, M, dgainbias, dgain, dbias, dhprebn, scale = (
            self.dy, self.rdy, self.M, self.dgainbias, self.dgain, self.dbias, self.dhprebn, self.scale)
        xT, dW, db, dx, WT = self.xT, self.dW, self.db, self.dx, self.WT
        alpha_bias, value_gain, inv_scale = self.alpha_bias, self.value_gain, self.inv_scale
        mm, addmm, sub, mul, addcmul, add = torch.mm, torch.addmm, torch.sub, torch.mul, torch.addcmul, torch.add

        def forward() -> None:
            if b is None:
                mm(x, W, out=hprebn)  # hprebn = x @ W                        (rows, H)
            else:
                addmm(b, x, W, out=hprebn)  # hprebn = x @ W + b
            mm(mean_row, hprebn, out=bnmean)  # bnmeani = 1/n * hprebn.sum(0)     (1, H)
            bndiff = sub(hprebn, bnmean, out=bnraw)  # bndiff = hprebn - bnmeani; becomes bnraw below
            addmm(eps_row, var_row, mul(bndiff, bndiff, out=sq), out=bnvar_inv)  # bnvar + 1e-5, Bessel's n-1
            bndiff.mul_(bnvar_inv.rsqrt_())  # bnraw = bndiff * (bnvar + 1e-5)**-0.5
            mul(gainbias, two, out=gb2)
            addcmul(bias2, gain2, bnraw, out=h)  # 2 * hpreact = 2 * (bngain * bnraw + bnbias)
            h.sigmoid_()
            add(minus_one, h, alpha=2, out=h)  # h = tanh(hpreact) = 2 sigmoid(2 hpreact) - 1

        def backward(dh: torch.Tensor) -> None:
            """dh (rows, H): dh_scale times the loss's gradient at h. Writes dW, db, dbngain, dbnbias, dx."""
            _tanh_backward(dh, h, grad_input=dy)  # dhpreact = (1.0 - h**2) * dh
            mul(bnraw, dy, out=rdy)
            torch.bmm(sum_row, M, out=dgainbias)  # dbngain = (bnraw * dhpreact).sum(0); dbnbias = dhpreact.sum(0)
            # batchnorm from dhpreact straight to dhprebn (lecture exercise 3), with n folded in:
            #   dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))
            #           = bngain*bnvar_inv * (dhpreact - dbnbias/n - bnraw*dbngain/(n-1))
            sub(dy, dbias, alpha=alpha_bias, out=dhprebn)
            dhprebn.addcmul_(bnraw, dgain, value=value_gain)
            dhprebn.mul_(addcmul(zero, gain, bnvar_inv, value=inv_scale, out=scale))
            mm(xT, dhprebn, out=dW)  # dW = x.T @ dhprebn
            if db is not None:
                mm(ones_row, dhprebn, out=db)  # db = dhprebn.sum(0)
            if dx is not None:
                mm(dhprebn, WT, out=dx)  # dx = dhprebn @ W.T

        return forward, backward


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
        self.forward, self.backward = self._passes()

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

    def _passes(self) -> tuple[Callable[[torch.Tensor], None], Callable[[torch.Tensor], torch.Tensor]]:
        """forward(y) and backward(y) as closures over locals (see BatchNormTanh._passes)."""
        h1, h1T, Wb, WT, dWb, probs, dh, minus_one, inv_n = (
            self.h1, self.h1T, self.Wb, self.WT, self.dWb, self.probs, self.dh, self.minus_one, self.inv_n)
        record, mm, addmm, softmax = self.meter.record, torch.mm, torch.addmm, torch.softmax

        def forward(y: torch.Tensor) -> None:
            """y (B, 1) the targets. Reads h; keeps softmax(logits) and records the loss."""
            mm(h1, Wb, out=probs)  # logits = h @ W + b                  (B, Vp)
            softmax(probs, 1, out=probs)
            record(probs, y)  # loss = -probs[range(n), Yb].log().mean()

        def backward(y: torch.Tensor) -> torch.Tensor:
            """Writes dW and db; returns n * dh (B, H): the 1/n of dlogits is applied by the product
            that needs it, not as a kernel of its own (the layer below takes dh_scale=n)."""
            dlogits_n = probs.scatter_add_(1, y, minus_one)  # n * dlogits = softmax - onehot
            addmm(dWb, h1T, dlogits_n, beta=0, alpha=inv_n, out=dWb)  # [dW; db] = [h | 1].T @ dlogits
            return mm(dlogits_n, WT, out=dh)  # n * dh = n * dlogits @ W.T

        return forward, backward


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
