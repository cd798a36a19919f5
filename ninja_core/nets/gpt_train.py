"""Training the GPT: its fast manual-backward step, its plain forward, its evaluation windows.

`GPTStep` is llm.c's train_gpt2.c on torch's kernels: every activation and gradient buffer is
allocated once, every op writes with `out=` or in place, and each layer's forward sits next to its
hand-written backward (encoder, layernorm, matmul, attention, GELU, residual, softmax
cross-entropy). No autograd: every gradient is one of the formulas of the tape's fused variant
(`nets/transformer.py`), rearranged where that saves a pass over memory; a test holds the step to
the tape's manual backward and to autograd in float32 and float64.

Measured on this 2-core EPYC, one thread, B 32, T 16, C 64, 2 layers (`time.thread_time` per call):
the four matmuls of a layer take ~100 GFLOP/s and ~1.4 ms forward and backward, so the step is
bound by them; what the step saves is everything around them:

- GELU: torch's float32 tanh kernel takes ~280 us on (512, 256) here, sigmoid ~30 us, so GELU
  is written with 0.5 * (1 + tanh(u)) = sigmoid(2u): gelu(x) = x * sigmoid(2u), and its
  derivative sigmoid(2u) + x * sigmoid(2u) (1 - sigmoid(2u)) * 2u' from the saved x**2 and
  sigmoid(2u) -- five elementwise kernels forward and backward, against 160 us each for
  F.gelu and its backward;
- reductions over the channels of (BT, C) (torch's .mean(-1) / .var(-1): ~200 us) are products
  with a column: layernorm's two backward means are one batched product [dout*norm; dout] @ w/C,
  and its dw, db one product of a row of ones with the same stack (dw and db lie side by side in
  the flat buffer, as ln1w, ln1b follow each other in the tape's order);
- the 1/n of dlogits is the `alpha` of the two products that read it, scale = 1/sqrt(hs) the
  `alpha` of the products that make and read the scores, and the causal mask a (T, T) bias of
  0 / -inf added by the same batched product (baddbmm) that makes the scores;
- q, k and v are copied once into head-major buffers (3, B*nh, T, hs), so every attention product
  is one bmm over B*nh contiguous matrices, and their gradients go back into dqkv by one copy;
- the residual stream's gradient is one buffer: each residual add passes it through unchanged,
  each layernorm backward adds its d x into it in place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .shared_train import FlatBuffers, LossMeter, Params, TrainStep
from .transformer import GELU_CUBE, GELU_SCALING, LN_EPS

if TYPE_CHECKING:
    from ..config import Config

Pass = Callable[[], None]


def _const(value: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device)


class _Buffers:
    """Preallocated tensors of one dtype and device."""

    def __init__(self, like: torch.Tensor) -> None:
        self.dtype, self.device = like.dtype, like.device

    def __call__(self, *shape: int) -> torch.Tensor:
        return torch.empty(shape, dtype=self.dtype, device=self.device)

    def full(self, value: float, *shape: int) -> torch.Tensor:
        return torch.full(shape, value, dtype=self.dtype, device=self.device)


class LayerNorm:
    """llm.c's layernorm_forward / layernorm_backward over the C channels of each of the BT rows.

    forward(): out = (x - mean) * rstd * w + b, rstd = (var + 1e-5)**-0.5 (biased variance);
    backward(dres): with dout the gradient at `out` (written into `self.dout` by the layer above),
    dw = (dout * norm).sum(0), db = dout.sum(0) and
    dx = rstd * (w*dout - mean(w*dout) - norm * mean(w*dout * norm)), added into dres in place
    (the residual stream's gradient; `first`: dres is written instead)."""

    def __init__(self, buf: _Buffers, x: torch.Tensor, wb: torch.Tensor, dwb: torch.Tensor, first: bool = False) -> None:
        BT, C = x.shape
        self.x, self.out = x, buf(BT, C)
        S = buf(BT, 2 * C)  # [dout * norm | dout]: its column sums are [dw | db]
        dnorm_norm, dout = S[:, :C], S[:, C:]
        self.dout = dout  # (BT, C) the layer above writes the gradient here
        w, b = wb[0], wb[1]
        w_col = w.view(C, 1)
        dwb_row = dwb.view(1, 2 * C)  # [dw | db]: side by side in the flat buffer
        ones_row = buf.full(1.0, 1, BT)  # column sums as products: (1, BT) @ (BT, 2C)
        mean_col = buf.full(1.0 / C, C, 1)  # row means as products (MKL's matrix-vector path): (BT, C) @ (C, 1)
        eps_col = buf.full(LN_EPS, BT, 1)
        norm, mean, rstd = buf(BT, C), buf(BT, 1), buf(BT, 1)
        m_n, m_nn = buf(BT, 1), buf(BT, 1)  # -mean(w * dout), -mean(w * dout * norm) over the channels
        t = buf(BT, C)
        sq = t  # (x - mean)**2 lives only in the forward, t only in the backward
        minus_inv_c = -1.0 / C
        mm, addmm, addcmul, mul, sub = torch.mm, torch.addmm, torch.addcmul, torch.mul, torch.sub
        out = self.out

        def forward() -> None:
            mm(x, mean_col, out=mean)  # mean = x.mean(-1, keepdim=True)                 (BT, 1)
            sub(x, mean, out=norm)  # diff = x - mean
            addmm(eps_col, mul(norm, norm, out=sq), mean_col, out=rstd)  # var + 1e-5 (biased var, as llm.c)
            rstd.rsqrt_()  # rstd = (var + 1e-5)**-0.5
            norm.mul_(rstd)  # norm = diff * rstd
            addcmul(b, norm, w, out=out)  # out = norm * w + b

        def backward(dres: torch.Tensor) -> None:
            mul(dout, norm, out=dnorm_norm)
            mm(ones_row, S, out=dwb_row)  # dw = (dout * norm).sum(0); db = dout.sum(0)
            addmm(m_nn, dnorm_norm, w_col, beta=0.0, alpha=minus_inv_c, out=m_nn)  # -mean(dnorm * norm)
            addmm(m_n, dout, w_col, beta=0.0, alpha=minus_inv_c, out=m_n)  # -mean(dnorm), dnorm = w * dout
            addcmul(m_n, dout, w, out=t)  # dnorm - mean(dnorm)
            t.addcmul_(norm, m_nn)  # - norm * mean(dnorm * norm)
            if first:
                mul(t, rstd, out=dres)
            else:
                dres.addcmul_(t, rstd)  # dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))

        self.forward, self.backward = forward, backward


class Block:
    """One transformer block (llm.c's layer l): ln1 -> qkv -> attention -> attproj -> residual2,
    ln2 -> fc -> GELU -> fcproj -> residual3. `x` (BT, C) is its input (the residual stream),
    `self.out` its output; views `p[...]`, `g[...]` are its parameters and their gradients."""

    def __init__(self, buf: _Buffers, x: torch.Tensor, p: Params, g: Params, B: int, T: int, nh: int,
                 ln1: tuple[torch.Tensor, torch.Tensor], ln2: tuple[torch.Tensor, torch.Tensor],
                 scratch: dict[str, torch.Tensor]) -> None:
        BT, C = x.shape
        hs = C // nh
        self.ln1 = LayerNorm(buf, x, *ln1)
        self.res2 = res2 = buf(BT, C)
        self.ln2 = LayerNorm(buf, res2, *ln2)
        self.out = out = buf(BT, C)
        qkv, heads, att, y, atty = buf(BT, 3 * C), buf(3, B * nh, T, hs), buf(B * nh, T, T), buf(B * nh, T, hs), buf(BT, C)
        fch, sig, gelu = buf(BT, 4 * C), buf(BT, 4 * C), buf(BT, 4 * C)
        q, k, v = heads[0], heads[1], heads[2]
        heads5 = heads.view(3, B, nh, T, hs)
        kT, vT = k.transpose(1, 2), v.transpose(1, 2)
        attT = att.transpose(1, 2)
        qkv_heads = qkv.view(B, T, 3, nh, hs).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs) a view
        y_merged = y.view(B, nh, T, hs).transpose(1, 2)  # (B, T, nh, hs) a view
        atty4 = atty.view(B, T, nh, hs)
        mask = buf.full(0.0, T, T).masked_fill_(~torch.ones(T, T, dtype=torch.bool).tril(), -math.inf)
        ln1_out, ln2_out = self.ln1.out, self.ln2.out
        dln1, dln2 = self.ln1.dout, self.ln2.dout
        qkvw, qkvb, attprojw, attprojb, fcw, fcb, fcprojw, fcprojb = (
            p[n] for n in ("qkvw", "qkvb", "attprojw", "attprojb", "fcw", "fcb", "fcprojw", "fcprojb"))
        dqkvw, dqkvb, dattprojw, dattprojb, dfcw, dfcb, dfcprojw, dfcprojb = (
            g[n].view(g[n].shape[0], -1) if g[n].dim() == 2 else g[n].view(1, -1)
            for n in ("qkvw", "qkvb", "attprojw", "attprojb", "fcw", "fcb", "fcprojw", "fcprojb"))
        qkvwT, attprojwT, fcwT, fcprojwT = qkvw.T, attprojw.T, fcw.T, fcprojw.T
        scale = 1.0 / math.sqrt(hs)
        a = 2 * GELU_SCALING * GELU_CUBE  # 2u = x * (b0 + a x**2), u = sqrt(2/pi) (x + 0.044715 x**3)
        b0 = _const(2 * GELU_SCALING, x)
        # backward scratch, shared by all blocks
        dres, dgelu, dfch, r = scratch["dres"], scratch["dgelu"], scratch["dfch"], scratch["r"]
        datty, dy, datt, dheads, dqkv = scratch["datty"], scratch["dy"], scratch["datt"], scratch["dheads"], scratch["dqkv"]
        ones_row, ones_col = scratch["ones_row"], scratch["ones_col"]
        dq, dk, dv = dheads[0], dheads[1], dheads[2]
        dheads5 = dheads.view(3, B, nh, T, hs)
        dqkv_heads = dqkv.view(B, T, 3, nh, hs).permute(2, 0, 3, 1, 4)
        dy_split = dy.view(B, nh, T, hs).transpose(1, 2)  # (B, T, nh, hs) a view
        datt_rows = datt.view(-1, T)
        rowsum = scratch["rowsum"]
        mm, addmm, bmm, baddbmm, mul, addcmul, softmax = (
            torch.mm, torch.addmm, torch.bmm, torch.baddbmm, torch.mul, torch.addcmul, torch.softmax)
        ln1_forward, ln2_forward, ln1_backward, ln2_backward = (
            self.ln1.forward, self.ln2.forward, self.ln1.backward, self.ln2.backward)

        def forward() -> None:
            ln1_forward()  # ln1 = layernorm(x)                                     (BT, C)
            addmm(qkvb, ln1_out, qkvwT, out=qkv)  # qkv = ln1 @ qkvw.T + qkvb         (BT, 3C)
            heads5.copy_(qkv_heads)  # q, k, v: (B*nh, T, hs) each, head-major
            baddbmm(mask, q, kT, alpha=scale, out=att)  # preatt = q @ k.T * scale, masked  (B*nh, T, T)
            softmax(att, -1, out=att)  # att = softmax(preatt)
            bmm(att, v, out=y)  # y = att @ v                                       (B*nh, T, hs)
            atty4.copy_(y_merged)  # atty = heads merged                                  (BT, C)
            addmm(x, atty, attprojwT, out=res2)  # residual2 = x + atty @ attprojw.T + attprojb
            res2.add_(attprojb)
            ln2_forward()  # ln2 = layernorm(residual2)
            addmm(fcb, ln2_out, fcwT, out=fch)  # fch = ln2 @ fcw.T + fcb            (BT, 4C)
            addcmul(b0, fch, fch, value=a, out=sig).mul_(fch).sigmoid_()  # sigmoid(2u) = (1 + tanh(u)) / 2
            mul(fch, sig, out=gelu)  # fch_gelu = 0.5 * x * (1 + tanh(u))
            addmm(res2, gelu, fcprojwT, out=out)  # residual3 = residual2 + fch_gelu @ fcprojw.T + fcprojb
            out.add_(fcprojb)

        def backward() -> None:
            """dres holds d residual3 on entry and d x (the block's input) on exit."""
            mm(dres.T, gelu, out=dfcprojw)  # dfcprojw = dfcproj.T @ fch_gelu (dfcproj = dresidual3)
            mm(ones_row, dres, out=dfcprojb)  # dfcprojb = dfcproj.sum(0)
            mm(dres, fcprojw, out=dgelu)  # dfch_gelu = dfcproj @ fcprojw                (BT, 4C)
            # GELU: dfch = (sigmoid(2u) + x * sigmoid(2u) * (1 - sigmoid(2u)) * 2u') * dfch_gelu,
            #       2u' = 2 sqrt(2/pi) (1 + 3 * 0.044715 x**2)  (= llm.c's gelu_backward, written with sigmoid)
            addcmul(b0, fch, fch, value=3 * a, out=dfch)  # 2u'
            addcmul(sig, sig, sig, value=-1.0, out=r)
            dfch.mul_(r)
            addcmul(sig, dfch, fch, out=dfch)
            dfch.mul_(dgelu)
            mm(dfch.T, ln2_out, out=dfcw)  # dfcw = dfch.T @ ln2
            mm(ones_row, dfch, out=dfcb)
            mm(dfch, fcw, out=dln2)  # dln2 = dfch @ fcw
            ln2_backward(dres)  # dresidual2 = dresidual3 + layernorm backward
            mm(dres.T, atty, out=dattprojw)  # dattprojw = dattproj.T @ atty (dattproj = dresidual2)
            mm(ones_row, dres, out=dattprojb)
            mm(dres, attprojw, out=datty)  # datty = dattproj @ attprojw
            dy_split.copy_(datty.view(B, T, nh, hs))  # dy: the heads apart again           (B*nh, T, hs)
            bmm(attT, dy, out=dv)  # dv = att.T @ dy
            bmm(dy, vT, out=datt)  # datt = dy @ v.T
            datt.mul_(att)  # att * datt
            mm(datt_rows, ones_col, out=rowsum)  # (att * datt).sum(-1)
            datt_rows.addcmul_(att.view(-1, T), rowsum, value=-1.0)  # dpreatt = att * (datt - (att * datt).sum(-1))
            baddbmm(dq, datt, k, beta=0.0, alpha=scale, out=dq)  # dq = dpreatt * scale @ k
            baddbmm(dk, datt.transpose(1, 2), q, beta=0.0, alpha=scale, out=dk)  # dk = (dpreatt * scale).T @ q
            dqkv_heads.copy_(dheads5)  # dqkv: the three slices, heads merged               (BT, 3C)
            mm(dqkv.T, ln1_out, out=dqkvw)  # dqkvw = dqkv.T @ ln1
            mm(ones_row, dqkv, out=dqkvb)
            mm(dqkv, qkvw, out=dln1)  # dln1 = dqkv @ qkvw
            ln1_backward(dres)  # dx = dresidual2 + layernorm backward

        self.forward, self.backward = forward, backward


class GPTStep(TrainStep):
    """tok_emb + wpe -> n_layer blocks -> lnf -> logits = lnf @ wte.T -> loss, and back.

    B batch, T block_size, C n_embd, nh n_head, V vocabulary; BT = B*T rows, one per position,
    every position predicting its next character (n = BT). Flat storage: the tape's parameters in
    its order (so ln1w, ln1b and the other layernorm pairs lie side by side)."""

    def __init__(self, cfg: Config, params: Params) -> None:
        from .gpt import NET

        wte = params["wte"]
        B, T, C, nh, L = cfg.batch_size, cfg.block_size, cfg.n_embd, cfg.n_head, cfg.n_layer
        V, BT = wte.shape[0], B * T
        names = NET.tape(cfg).params
        # storage order: the decayed matrices, then the rest (AdamW updates each run as one tensor);
        # each layernorm's w and b stay side by side
        stored = sorted(names, key=lambda n: not NET.decays(n, tuple(params[n].shape)))
        flat = FlatBuffers([tuple(params[n].shape) for n in stored], wte.dtype, wte.device)
        self.flat_params, self.flat_grads = flat.params, flat.grads
        views = {name: flat.views(i) for i, name in enumerate(stored)}
        self.params, self.grads = {}, {}
        for name in names:  # the tape's order
            self.params[name], self.grads[name] = views[name]
            self.params[name].copy_(params[name])
        buf = _Buffers(wte)

        def pair(w: str, b: str) -> tuple[torch.Tensor, torch.Tensor]:
            """[w; b] of a layernorm as one (2, C) view of the parameters and one of the gradients."""
            pw, gw = self.params[w], self.grads[w]
            return (torch.as_strided(pw, (2, C), (C, 1)), torch.as_strided(gw, (2, C), (C, 1)))

        self.meter = LossMeter(BT, wte.dtype, wte.device)
        x0 = buf(BT, C)
        tok = buf(BT, C)
        scratch = {"dres": buf(BT, C), "dgelu": buf(BT, 4 * C), "dfch": buf(BT, 4 * C), "r": buf(BT, 4 * C),
                   "datty": buf(BT, C), "dy": buf(B * nh, T, C // nh), "datt": buf(B * nh, T, T),
                   "dheads": buf(3, B * nh, T, C // nh), "dqkv": buf(BT, 3 * C), "ones_row": buf.full(1.0, 1, BT),
                   "ones_col": buf.full(1.0, T, 1), "rowsum": buf(B * nh * T, 1)}
        blocks: list[Block] = []
        x = x0
        for l in range(L):
            s = f"_{l}"
            p = {k: self.params[k + s] for k in ("qkvw", "qkvb", "attprojw", "attprojb", "fcw", "fcb", "fcprojw", "fcprojb")}
            g = {k: self.grads[k + s] for k in p}
            block = Block(buf, x, p, g, B, T, nh, pair(f"ln1w{s}", f"ln1b{s}"), pair(f"ln2w{s}", f"ln2b{s}"), scratch)
            blocks.append(block)
            x = block.out
        lnf = LayerNorm(buf, x, *pair("lnfw", "lnfb"), first=True)
        wte_p, dwte, wpe, dwpe = self.params["wte"], self.grads["wte"], self.params["wpe"], self.grads["wpe"]
        probs = buf(BT, V)
        minus_one = buf.full(-1.0, BT, 1)
        inv_n = 1.0 / BT
        dres = scratch["dres"]
        ones_b = buf.full(1.0, 1, B)
        dwpe_row, dres_bt = dwpe.view(1, T * C), dres.view(B, T * C)
        lnf_out, dlnf = lnf.out, lnf.dout
        record = self.meter.record
        mm, addmm, softmax, index_select, add = torch.mm, torch.addmm, torch.softmax, torch.index_select, torch.add
        forwards = [b.forward for b in blocks]
        backwards = [b.backward for b in reversed(blocks)]
        lnf_forward, lnf_backward = lnf.forward, lnf.backward
        x0_3, tok_3 = x0.view(B, T, C), tok.view(B, T, C)

        def forward_backward(Xb: torch.Tensor, Yb: torch.Tensor) -> None:
            xi = Xb.reshape(-1)  # (BT,)
            y = Yb.view(-1, 1)  # (BT, 1)
            index_select(wte_p, 0, xi, out=tok)  # tok_emb = wte[Xb]                 (BT, C)
            add(tok_3, wpe, out=x0_3)  # encoded = tok_emb + wpe
            for f in forwards:
                f()
            lnf_forward()
            mm(lnf_out, wte_p.T, out=probs)  # logits = lnf @ wte.T               (BT, V)
            softmax(probs, 1, out=probs)
            record(probs, y)  # loss = -log probs[range(n), Yb], averaged
            dl = probs.scatter_add_(1, y, minus_one)  # n * dlogits = probs - onehot(Yb)
            addmm(dwte, dl.T, lnf_out, beta=0.0, alpha=inv_n, out=dwte)  # dwte = dlogits.T @ lnf (lm head)
            addmm(dlnf, dl, wte_p, beta=0.0, alpha=inv_n, out=dlnf)  # dlnf = dlogits @ wte
            lnf_backward(dres)  # dresidual3 of the last layer
            for b in backwards:
                b()
            mm(ones_b, dres_bt, out=dwpe_row)  # dwpe = dencoded.sum(0)
            dwte.index_add_(0, xi, dres)  # dwte += the lookup's gradient (weight tying)

        self._forward_backward = forward_backward

    def forward_backward(self, Xb: torch.Tensor, Yb: torch.Tensor) -> None:
        """Xb (B, T), Yb (B*T,) (or (B*T, 1)): the gradients of this minibatch into `grads`."""
        self._forward_backward(Xb, Yb)


# ---- the plain forward (autograd), evaluation and sampling -------------------------------------

def logits(cfg: Config, params: Params, X: torch.Tensor, stats: Params | None = None) -> torch.Tensor:
    """X (N, t), t <= block_size -> logits (N*t, V): every position's next-character logits, rows in
    order (sample, position), as nanoGPT's model.py writes the network with autograd: F.layer_norm,
    F.linear, F.scaled_dot_product_attention (causal), F.gelu (tanh), the tied lm head. `stats` is
    unused (no batchnorm)."""
    N, t = X.shape
    C, nh, V = cfg.n_embd, cfg.n_head, params["wte"].shape[0]
    x = params["wte"][X] + params["wpe"][:t]  # (N, t, C)
    for l in range(cfg.n_layer):
        s = f"_{l}"
        h = F.layer_norm(x, (C,), params[f"ln1w{s}"], params[f"ln1b{s}"], LN_EPS)
        q, k, v = F.linear(h, params[f"qkvw{s}"], params[f"qkvb{s}"]).split(C, dim=2)
        q, k, v = (z.view(N, t, nh, C // nh).transpose(1, 2) for z in (q, k, v))  # (N, nh, t, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(N, t, C)
        x = x + F.linear(y, params[f"attprojw{s}"], params[f"attprojb{s}"])
        h = F.layer_norm(x, (C,), params[f"ln2w{s}"], params[f"ln2b{s}"], LN_EPS)
        h = F.gelu(F.linear(h, params[f"fcw{s}"], params[f"fcb{s}"]), approximate="tanh")
        x = x + F.linear(h, params[f"fcprojw{s}"], params[f"fcprojb{s}"])
    x = F.layer_norm(x, (C,), params["lnfw"], params["lnfb"], LN_EPS)
    return (x @ params["wte"].T).view(N * t, V)


def eval_windows(cfg: Config, Y: torch.Tensor, rows: int, stride: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """The windows that score every target of a split's text Y (N,) once: the text with a "." in
    front (the start of its first word) cut into windows of T = block_size characters, `stride`
    apart; the first window scores all its T predictions, each later one its last `stride`
    (so each of those sees at least T - stride + 1 characters), a last window ending at the text's
    end scores what is left. Yields (Xw (n, t), Yw (n*t,), keep) in chunks of at most `rows` windows."""
    N, T = Y.shape[0], cfg.block_size
    inputs = torch.cat([Y.new_zeros(1), Y[:-1]])  # the character before each target ("." = index 0 first)
    if N <= T:
        yield inputs[None], Y, N
        return
    yield inputs[None, :T], Y[:T], T
    full = (N - stride - T) // stride + 1 if N - stride >= T else 0  # windows at stride, 2*stride, ... inside Y
    if full:
        Xs, Ys = inputs[stride:].unfold(0, T, stride), Y[stride:].unfold(0, T, stride)  # (full, T) views
        for i in range(0, full, rows):
            yield Xs[i:i + rows], Ys[i:i + rows].reshape(-1), stride
    end = T + full * stride  # the targets scored so far: Y[:end]
    if end < N:
        yield inputs[None, N - T:], Y[N - T:], N - end
