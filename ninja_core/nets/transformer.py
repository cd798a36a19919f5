"""Steps of a transformer block (llm.c's layer set), each forward line beside its backward formula.

`nets/gpt.py` composes them into a GPT the way llm.c's train_gpt2.c lays out gpt2_forward and
gpt2_backward. Tensor names follow llm.c's activations (encoded, ln1, ln1_mean, ln1_rstd, qkv,
preatt, att, atty, attproj, residual2, ln2, fch, fch_gelu, fcproj, residual3, lnf, logits, probs);
where llm.c fuses several primitives into one kernel, the chain variant gives each primitive a
node of its own, named after the lecture's batchnorm and cross-entropy nodes (diff, diff2, var;
maxes, norm, counts, counts_sum, counts_sum_inv), and the fused variant has llm.c's one-step
backward (layernorm_backward, the softmax part of attention_backward, gelu_backward) as a block.

Shapes: B batch, T time (block_size), C channels (n_embd), nh heads, hs = C // nh head size, OC
a linear layer's output channels. Linear weights are stored as llm.c and nn.Linear store them,
(OC, C), so `out = x @ w.T + b` and `dw = dout.T @ x` (llm.c's matmul_backward). Formulas use
the constants B, T, C, nh, hs, scale (= 1/sqrt(hs), llm.c's) and tril (the (T, T) causal mask,
True where a position may look: nanoGPT's `bias` buffer).

Float32 bit-exactness: as in layers.py, every `compute` follows autograd's own order of
floating-point operations for the forward line it differentiates; the formula text is what a
learner writes, and where the two differ in rounding, the note says so.
"""

from __future__ import annotations

import torch

from ..i18n import german, tr
from ..tape import FusedBlock, Grad, Step, Values

LN_EPS = 1e-5  # llm.c's and torch.nn.LayerNorm's epsilon
GELU_SCALING = (2 / torch.pi) ** 0.5  # sqrt(2/pi), llm.c's GELU_SCALING_FACTOR, written as the formulas write it
GELU_CUBE = 0.044715

german({
    "The embedding table is also the output layer (weight tying, as GPT-2 and llm.c): dwte already holds the "
    "lm head's gradient, so the lookup's gradient is built in a fresh table and added. Adding rows straight "
    "into dwte (dwte.index_add_) is the same sum in another order: right, but not bit for bit.":
        "Die Einbettungstabelle ist zugleich die Ausgabeschicht (Weight Tying, wie GPT-2 und llm.c): dwte "
        "enthält schon den Gradienten des LM-Kopfs, also wird der Gradient des Nachschlagens in einer frischen "
        "Tabelle gebaut und addiert. Zeilen direkt in dwte zu addieren (dwte.index_add_) ist dieselbe Summe in "
        "anderer Reihenfolge: richtig, aber nicht bitgenau.",
    "One position table row per time step, shared by every sample: its gradient sums over the batch.":
        "Eine Zeile der Positionstabelle pro Zeitschritt, für alle Beispiele dieselbe: ihr Gradient summiert "
        "über den Batch.",
    "A 3-D input: d{w} sums over batch and time, so both are folded into the rows of one product "
    "(llm.c's matmul_backward: dweight[o, i] += inp[b, t, i] * dout[b, t, o]).":
        "Eine 3-D-Eingabe: d{w} summiert über Batch und Zeit, also werden beide in die Zeilen eines Produkts "
        "gefaltet (llm.c's matmul_backward: dweight[o, i] += inp[b, t, i] * dout[b, t, o]).",
    "LayerNorm divides by C, not C-1 (the variance is biased, as in llm.c and torch.nn.LayerNorm), and "
    "averages over the channels of one position, dim -1 -- not over the batch as batchnorm does.":
        "LayerNorm teilt durch C, nicht durch C-1 (die Varianz ist verzerrt, wie in llm.c und "
        "torch.nn.LayerNorm), und mittelt über die Kanäle einer Position, Dimension -1 -- nicht über den Batch "
        "wie die Batchnorm.",
    "LayerNorm's backward from d{out} straight to d{x} (llm.c's layernorm_backward): the mean term and the "
    "normalised-mean term, times rstd. Float32 rounds it differently from the chain: 'approx', not 'exact'.":
        "Der Rückwärtsschritt der LayerNorm von d{out} direkt zu d{x} (llm.c's layernorm_backward): der "
        "Mittelwert-Term und der Term mit dem Mittel über norm, mal rstd. Float32 rundet das anders als die "
        "Kette: 'approx', nicht 'exact'.",
    "Each head reads its own hs channels of q, k and v: the slice of qkv is split into nh heads of hs channels "
    "and the head becomes dimension 1. The backward puts the gradient back into the same slice: a transpose "
    "back, then a reshape (a view alone would mix heads and time). The forward's .contiguous() gives q, k and v "
    "memory of their own: without it autograd's batched matmuls read the strided slices in another layout than "
    "the backward's matmuls, and dq and datt came out 'approx' (measured: maxdiff 7e-13 and 3e-11 at the "
    "defaults) instead of bit for bit.":
        "Jeder Kopf liest seine eigenen hs Kanäle von q, k und v: der Ausschnitt von qkv wird in nh Köpfe zu hs "
        "Kanälen geteilt, und der Kopf wird Dimension 1. Der Rückwärtsschritt legt den Gradienten in denselben "
        "Ausschnitt zurück: erst zurück transponieren, dann umformen (ein view allein würde Köpfe und Zeit "
        "vermischen). Das .contiguous() vorwärts gibt q, k und v eigenen Speicher: ohne es lesen Autograds "
        "Batch-Matrixprodukte die versetzten Ausschnitte in einer anderen Anordnung als die Matrixprodukte des "
        "Rückwärtsschritts, und dq und datt wurden 'approx' (gemessen: maxdiff 7e-13 und 3e-11 bei den "
        "Standardgrößen) statt bitgenau.",
    "The scale 1/sqrt(hs) multiplies the gradient as it multiplies the scores. Forgetting it makes dscores "
    "sqrt(hs) times too large: exactly 2 for a head size of 4, which looks like a branch counted twice.":
        "Der Faktor 1/sqrt(hs) multipliziert den Gradienten wie die Scores. Wer ihn vergisst, bekommt dscores "
        "sqrt(hs)-mal zu groß: bei einer Kopfgröße von 4 genau 2, was wie ein doppelt gezählter Zweig aussieht.",
    "Computed with the batched product autograd runs: dscores times the k.transpose(-2, -1) the forward saved, "
    "transposed back. Where a head has one channel (hs 1) and T is above 20, dscores @ k takes another BLAS path "
    "and was measured 'approx' (last bit) instead of bit for bit.":
        "Berechnet mit dem Batch-Matrixprodukt, das Autograd ausführt: dscores mal das k.transpose(-2, -1), das "
        "vorwärts gespeichert wurde, zurück transponiert. Hat ein Kopf nur einen Kanal (hs 1) und ist T größer als "
        "20, nimmt dscores @ k einen anderen BLAS-Weg und war gemessen 'approx' (letztes Bit) statt bitgenau.",
    "Autograd differentiates k.transpose(-2, -1), then transposes back: (q^T dscores)^T. The same sum as "
    "dscores.transpose(-2, -1) @ q, but BLAS adds it in another order there: measured 'approx' (maxdiff 8e-13) "
    "from T = 13 on, bit for bit this way.":
        "Autograd leitet k.transpose(-2, -1) ab und transponiert dann zurück: (q^T dscores)^T. Dieselbe Summe wie "
        "dscores.transpose(-2, -1) @ q, aber BLAS addiert dort in anderer Reihenfolge: gemessen 'approx' "
        "(maxdiff 8e-13) ab T = 13, so bitgenau.",
    "d{m} is 0 in exact arithmetic: shifting a row does not change its softmax. What it holds is rounding noise "
    "(~1e-11 here); the max is subtracted only to keep exp from overflowing.":
        "d{m} ist in exakter Arithmetik 0: eine verschobene Zeile hat dieselbe Softmax. Was darin steht, ist "
        "Rundungsrauschen (hier ~1e-11); das Maximum wird nur abgezogen, damit exp nicht überläuft.",
    "Masked entries (above the diagonal) get gradient 0: the mask replaced them by -inf, a constant. Leaving the "
    "mask out of the backward gives the same result here, since datt is 0 there already (att is 0).":
        "Maskierte Einträge (über der Diagonale) bekommen den Gradienten 0: die Maske hat sie durch -inf ersetzt, "
        "eine Konstante. Die Maske im Rückwärtsschritt wegzulassen ergibt hier dasselbe, denn datt ist dort schon "
        "0 (att ist 0).",
    "The softmax's backward from d{out} straight to d{x} (llm.c's attention_backward): att * (datt - (att * "
    "datt).sum(-1)), the row-sum term included. Masked entries come out 0 by themselves (att is 0 there). "
    "Float32 rounds it differently from the chain: 'approx', not 'exact'.":
        "Der Rückwärtsschritt der Softmax von d{out} direkt zu d{x} (llm.c's attention_backward): att * (datt - "
        "(att * datt).sum(-1)), mit dem Zeilensummen-Term. Maskierte Einträge werden von selbst 0 (att ist dort "
        "0). Float32 rundet das anders als die Kette: 'approx', nicht 'exact'.",
    "Merging the heads is the split's inverse: back to (B, T, nh, hs), then time moves before the heads "
    "again. A view straight to (B, nh, T, hs) would be the right shape with the wrong entries.":
        "Das Zusammenführen der Köpfe ist die Umkehrung der Aufteilung: zurück zu (B, T, nh, hs), dann kommt die "
        "Zeit wieder vor die Köpfe. Ein view direkt zu (B, nh, T, hs) hätte die richtige Form, aber die falschen "
        "Einträge.",
    "A residual connection copies its gradient to both branches: {x} gets all of d{out}, and so does {f}.":
        "Eine Residualverbindung kopiert ihren Gradienten in beide Zweige: {x} bekommt ganz d{out}, und {f} "
        "ebenso.",
    "Computed as autograd does, (dinner * sqrt(2/pi)) * 0.044715: the formula's order. Multiplying the two "
    "constants first rounds differently.":
        "Berechnet wie Autograd, (dinner * sqrt(2/pi)) * 0.044715: die Reihenfolge der Formel. Die beiden "
        "Konstanten zuerst zu multiplizieren rundet anders.",
    "1 - tanh² as autograd forms it: one fused multiply-add, one rounding. The lecture's (1.0 - {t}**2) * d{t} is "
    "right too, but rounds {t}**2 first: in float32 it and every gradient below it come out 'approx', not 'exact'.":
        "1 - tanh² so, wie Autograd es bildet: eine fusionierte Multiplikation-Addition, eine Rundung. Die Form der "
        "Vorlesung (1.0 - {t}**2) * d{t} ist auch richtig, rundet aber zuerst {t}**2: in float32 werden sie und "
        "jeder Gradient darunter 'approx', nicht 'exact'.",
    "GELU's backward in one step (llm.c's gelu_backward, tanh approximation): 0.5(1 + tanh) + 0.5 x sech^2 "
    "sqrt(2/pi) (1 + 3*0.044715 x^2). Float32 rounds it differently from the chain: 'approx', not 'exact'.":
        "Der Rückwärtsschritt der GELU in einem Schritt (llm.c's gelu_backward, tanh-Näherung): 0.5(1 + tanh) + "
        "0.5 x sech^2 sqrt(2/pi) (1 + 3*0.044715 x^2). Float32 rundet das anders als die Kette: 'approx', "
        "nicht 'exact'.",
})


def _op(first: bool) -> str:
    return "=" if first else "+="


# ---- encoder: token and position embeddings (llm.c's encoder_forward / encoder_backward) ----------

def token_embedding(out: str, wte: str, index: str, tied: bool) -> Step:
    """`out = wte[index]`, (B, T) indices -> (B, T, C). With `tied`, wte is also the output layer and
    already holds a gradient when the backward reaches this step, so the lookup's gradient adds to it."""

    def grad(v: Values, d: torch.Tensor) -> torch.Tensor:
        table = v[wte]
        # index_add_ adds the rows in index order, the order autograd's index_put_ accumulates in
        return torch.zeros_like(table).index_add_(0, v[index].view(-1), d.reshape(-1, table.shape[1]))

    note: str = ""
    if tied:
        formula = f"d{wte} += torch.zeros_like({wte}).index_add_(0, {index}.view(-1), d{out}.view(-1, C))"
        note = tr("The embedding table is also the output layer (weight tying, as GPT-2 and llm.c): dwte already "
                  "holds the lm head's gradient, so the lookup's gradient is built in a fresh table and added. "
                  "Adding rows straight into dwte (dwte.index_add_) is the same sum in another order: right, but "
                  "not bit for bit.")
    else:
        formula = f"d{wte} = torch.zeros_like({wte})\nd{wte}.index_add_(0, {index}.view(-1), d{out}.view(-1, C))"
    return Step(out, f"{wte}[{index}]", lambda v: v[wte][v[index]], (Grad(wte, formula, grad, note),), reads=(index,))


def add_positions(out: str, tok: str, wpe: str) -> Step:
    """`out = tok + wpe`: (B, T, C) + (T, C), one position row per time step, broadcast over the batch."""
    return Step(out, f"{tok} + {wpe}", lambda v: v[tok] + v[wpe], (
        Grad(tok, f"d{tok} = d{out}.clone()", lambda v, d: d.clone()),
        Grad(wpe, f"d{wpe} = d{out}.sum(0)", lambda v, d: d.sum(0),
             tr("One position table row per time step, shared by every sample: its gradient sums over the batch.")),
    ))


# ---- matmul (llm.c's matmul_forward / matmul_backward) --------------------------------------------

def matmul(out: str, x: str, w: str, b: str, oc: str, ic: str) -> Step:
    """`out = x @ w.T + b`: x (B, T, IC), w (OC, IC), b (OC,) -> (B, T, OC). `oc` and `ic` are the
    channel counts as the formulas write them ("3*C", "C")."""
    return Step(out, f"{x} @ {w}.T + {b}", lambda v: v[x] @ v[w].T + v[b], (
        Grad(x, f"d{x} = d{out} @ {w}", lambda v, d: d @ v[w]),
        Grad(w, f"d{w} = d{out}.view(-1, {oc}).T @ {x}.view(-1, {ic})",
             lambda v, d: d.reshape(-1, d.shape[-1]).T @ v[x].reshape(-1, v[x].shape[-1]),
             tr("A 3-D input: d{w} sums over batch and time, so both are folded into the rows of one product "
                "(llm.c's matmul_backward: dweight[o, i] += inp[b, t, i] * dout[b, t, o]).", w=w)),
        Grad(b, f"d{b} = d{out}.sum((0, 1))", lambda v, d: d.sum((0, 1))),
    ))


def lm_head(out: str, x: str, wte: str) -> Step:
    """`out = x.view(-1, C) @ wte.T`: (B, T, C) -> (B*T, V), the rows the cross-entropy averages over.
    The output layer is the token embedding table itself (weight tying, as GPT-2 and llm.c)."""
    return Step(out, f"{x}.view(-1, C) @ {wte}.T", lambda v: v[x].reshape(-1, v[x].shape[-1]) @ v[wte].T, (
        Grad(x, f"d{x} = (d{out} @ {wte}).view(B, T, C)", lambda v, d: (d @ v[wte]).view(v[x].shape)),
        Grad(wte, f"d{wte} = d{out}.T @ {x}.view(-1, C)", lambda v, d: d.T @ v[x].reshape(-1, v[x].shape[-1])),
    ))


# ---- layernorm, decomposed like the lecture's batchnorm -------------------------------------------

def layernorm_names(prefix: str, suffix: str) -> tuple[str, ...]:
    """mean, diff, diff2, var, rstd, norm of one layernorm: ln1_mean_0 .. ln1_norm_0."""
    return tuple(f"{prefix}_{part}{suffix}" for part in ("mean", "diff", "diff2", "var", "rstd", "norm"))


def layernorm(x: str, prefix: str, w: str, b: str, suffix: str = "", residual: bool = False) -> list[Step]:
    """llm.c's layernorm_forward, one primitive per node: over the channels of each position (dim -1),
    biased variance (divide by C), eps 1e-5. Nodes <prefix>_mean .. <prefix>_norm, then <prefix> (the
    output, ln1_0). `residual`: x also feeds a later residual add, whose gradient the backward meets
    first, so x's branches here accumulate (+=)."""
    mean, diff, diff2, var, rstd, norm = layernorm_names(prefix, suffix)
    out = prefix + suffix
    return [
        Step(mean, f"{x}.mean(-1, keepdim=True)", lambda v: v[x].mean(-1, keepdim=True), (  # (B, T, 1)
            Grad(x, f"d{x} += torch.ones_like({x}) * d{mean} / C", lambda v, d: (d / v[x].shape[-1]).expand_as(v[x])),
        )),
        Step(diff, f"{x} - {mean}", lambda v: v[x] - v[mean], (  # (B, T, C)
            Grad(x, f"d{x} {_op(not residual)} d{diff}.clone()", lambda v, d: d.clone()),
            Grad(mean, f"d{mean} = (-d{diff}).sum(-1, keepdim=True)", lambda v, d: (-d).sum(-1, keepdim=True)),
        )),
        Step(diff2, f"{diff}**2", lambda v: v[diff] ** 2, (  # (B, T, C)
            Grad(diff, f"d{diff} += (2*{diff}) * d{diff2}", lambda v, d: d * (2.0 * v[diff])),
        )),
        Step(var, f"{diff2}.mean(-1, keepdim=True)", lambda v: v[diff2].mean(-1, keepdim=True), (  # (B, T, 1)
            Grad(diff2, f"d{diff2} = torch.ones_like({diff2}) * d{var} / C",
                 lambda v, d: (d / v[diff2].shape[-1]).expand_as(v[diff2]),
                 tr("LayerNorm divides by C, not C-1 (the variance is biased, as in llm.c and torch.nn.LayerNorm), "
                    "and averages over the channels of one position, dim -1 -- not over the batch as batchnorm "
                    "does.")),
        )),
        Step(rstd, f"({var} + 1e-5)**-0.5", lambda v: (v[var] + LN_EPS) ** -0.5, (  # (B, T, 1)
            Grad(var, f"d{var} = (-0.5 * ({var} + 1e-5)**-1.5) * d{rstd}",
                 lambda v, d: d * (-0.5 * (v[var] + LN_EPS) ** -1.5)),
        )),
        Step(norm, f"{diff} * {rstd}", lambda v: v[diff] * v[rstd], (  # (B, T, C)
            Grad(diff, f"d{diff} = {rstd} * d{norm}", lambda v, d: d * v[rstd]),
            Grad(rstd, f"d{rstd} = ({diff} * d{norm}).sum(-1, keepdim=True)",
                 lambda v, d: (d * v[diff]).sum(-1, keepdim=True)),
        )),
        Step(out, f"{norm} * {w} + {b}", lambda v: v[norm] * v[w] + v[b], (  # (B, T, C)
            Grad(w, f"d{w} = ({norm} * d{out}).sum((0, 1))", lambda v, d: (d * v[norm]).sum((0, 1))),
            Grad(b, f"d{b} = d{out}.sum((0, 1))", lambda v, d: d.sum((0, 1))),
            Grad(norm, f"d{norm} = {w} * d{out}", lambda v, d: d * v[w]),
        )),
    ]


def fused_layernorm(x: str, prefix: str, w: str, suffix: str = "", residual: bool = False) -> FusedBlock:
    """llm.c's layernorm_backward: d<x> from d<out> in one step (the parameter gradients stay with
    the output's step). `residual`: x's residual branch comes first, so this one accumulates."""
    mean, diff, diff2, var, rstd, norm = layernorm_names(prefix, suffix)
    out = prefix + suffix

    def compute(v: Values, d: torch.Tensor) -> torch.Tensor:
        dnorm = v[w] * d
        return v[rstd] * (dnorm - dnorm.mean(-1, keepdim=True) - v[norm] * (dnorm * v[norm]).mean(-1, keepdim=True))

    return FusedBlock(
        f"layernorm_{out}", out=out, wrt=x, inner=(norm, rstd, var, diff2, diff, mean),
        formula=f"d{x} {_op(not residual)} {rstd} * ({w}*d{out} - ({w}*d{out}).mean(-1, keepdim=True) "
                f"- {norm} * ({w}*d{out}*{norm}).mean(-1, keepdim=True))",
        compute=compute,
        note=tr("LayerNorm's backward from d{out} straight to d{x} (llm.c's layernorm_backward): the mean term and "
                "the normalised-mean term, times rstd. Float32 rounds it differently from the chain: 'approx', not "
                "'exact'.", out=out, x=x),
    )


# ---- attention (llm.c's attention_forward / attention_backward, one primitive per node) -----------

HEAD_SLICES = {"q": ("", "C"), "k": ("C", "2*C"), "v": ("2*C", "")}


def split_heads(out: str, qkv: str, which: str, first: bool) -> Step:
    """q, k or v of every head: `qkv[:, :, slice].view(B, T, nh, hs).transpose(1, 2)` -> (B, nh, T, hs).
    `first`: the first of the three branches the backward meets creates dqkv (the others fill their slice)."""
    lo, hi = HEAD_SLICES[which]
    part = f"[:, :, {lo}:{hi}]"

    def run(v: Values) -> torch.Tensor:
        C = v["C"]
        start = {"q": 0, "k": C, "v": 2 * C}[which]
        return v[qkv][:, :, start:start + C].view(v["B"], v["T"], v["nh"], v["hs"]).transpose(1, 2).contiguous()

    def grad(v: Values, d: torch.Tensor) -> torch.Tensor:
        C = v["C"]
        start = {"q": 0, "k": C, "v": 2 * C}[which]
        full = torch.zeros_like(v[qkv])  # autograd's slice backward: zeros outside the slice
        full[:, :, start:start + C] = d.transpose(1, 2).reshape(v["B"], v["T"], C)
        return full

    create = f"d{qkv} = torch.zeros_like({qkv})\n" if first else ""
    return Step(out, f"{qkv}{part}.view(B, T, nh, hs).transpose(1, 2).contiguous()", run, (
        Grad(qkv, f"{create}d{qkv}{part} = d{out}.transpose(1, 2).reshape(B, T, C)", grad,
             tr("Each head reads its own hs channels of q, k and v: the slice of qkv is split into nh heads of hs "
                "channels and the head becomes dimension 1. The backward puts the gradient back into the same "
                "slice: a transpose back, then a reshape (a view alone would mix heads and time). The forward's "
                ".contiguous() gives q, k and v memory of their own: without it autograd's batched matmuls read the "
                "strided slices in another layout than the backward's matmuls, and dq and datt came out 'approx' "
                "(measured: maxdiff 7e-13 and 3e-11 at the defaults) instead of bit for bit.")),
    ))


def scores(out: str, q: str, k: str) -> Step:
    """`out = q @ k.transpose(-2, -1)`: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T), every query
    against every key of its head."""
    def dq(v: Values, d: torch.Tensor) -> torch.Tensor:
        # autograd's BmmBackward: dscores (as B*nh matrices) times the k.transpose(-2, -1) the forward
        # saved, transposed back -- the operand layout that decides BLAS's order of additions
        T, hs = d.shape[-1], v[k].shape[-1]
        return d.reshape(-1, T, T).bmm(v[k].transpose(-2, -1).reshape(-1, hs, T).transpose(1, 2)).view(v[q].shape)

    return Step(out, f"{q} @ {k}.transpose(-2, -1)", lambda v: v[q] @ v[k].transpose(-2, -1), (
        Grad(q, f"d{q} = d{out} @ {k}", dq,
             tr("Computed with the batched product autograd runs: dscores times the k.transpose(-2, -1) the "
                "forward saved, transposed back. Where a head has one channel (hs 1) and T is above 20, dscores @ k "
                "takes another BLAS path and was measured 'approx' (last bit) instead of bit for bit.")),
        Grad(k, f"d{k} = ({q}.transpose(-2, -1) @ d{out}).transpose(-2, -1)",
             lambda v, d: (v[q].transpose(-2, -1) @ d).transpose(-2, -1),
             tr("Autograd differentiates k.transpose(-2, -1), then transposes back: (q^T dscores)^T. The same sum "
                "as dscores.transpose(-2, -1) @ q, but BLAS adds it in another order there: measured 'approx' "
                "(maxdiff 8e-13) from T = 13 on, bit for bit this way.")),
    ))


def scale_scores(out: str, x: str) -> Step:
    """`out = x * scale`, scale = 1/sqrt(hs) (llm.c's preatt is the scaled scores)."""
    return Step(out, f"{x} * scale", lambda v: v[x] * v["scale"], (
        Grad(x, f"d{x} = d{out} * scale", lambda v, d: d * v["scale"],
             tr("The scale 1/sqrt(hs) multiplies the gradient as it multiplies the scores. Forgetting it makes "
                "dscores sqrt(hs) times too large: exactly 2 for a head size of 4, which looks like a branch counted "
                "twice.")),
    ))


def causal_mask(out: str, x: str) -> Step:
    """`out = x.masked_fill(tril == 0, -inf)`: position t may only look at positions <= t."""
    return Step(out, f"{x}.masked_fill(tril == 0, -torch.inf)", lambda v: v[x].masked_fill(~v["tril"], -torch.inf), (
        Grad(x, f"d{x} = d{out}.masked_fill(tril == 0, 0)", lambda v, d: d.masked_fill(~v["tril"], 0),
             tr("Masked entries (above the diagonal) get gradient 0: the mask replaced them by -inf, a constant. "
                "Leaving the mask out of the backward gives the same result here, since datt is 0 there already "
                "(att is 0).")),
    ))


def softmax_names(prefix: str, suffix: str) -> tuple[str, ...]:
    """maxes, norm, counts, counts_sum, counts_sum_inv of one softmax: att_maxes_0 .. att_counts_sum_inv_0."""
    return tuple(f"{prefix}_{part}{suffix}" for part in ("maxes", "norm", "counts", "counts_sum", "counts_sum_inv"))


def softmax(x: str, prefix: str, suffix: str) -> list[Step]:
    """Softmax over the last dim, decomposed as the lecture's cross-entropy: maxes, norm, counts,
    counts_sum, counts_sum_inv, then <prefix> (att_0 = counts * counts_sum_inv)."""
    maxes, norm, counts, counts_sum, counts_sum_inv = softmax_names(prefix, suffix)
    out = prefix + suffix

    def scatter_max(v: Values, d: torch.Tensor) -> torch.Tensor:
        indices = v[x].max(-1, keepdim=True).indices  # the entry autograd's max backward sends dmaxes to
        return torch.zeros_like(v[x]).scatter_(-1, indices, d)

    return [
        Step(maxes, f"{x}.max(-1, keepdim=True).values", lambda v: v[x].max(-1, keepdim=True).values, (  # (B, nh, T, 1)
            Grad(x, f"d{x} += F.one_hot({x}.max(-1).indices, num_classes=T) * d{maxes}", scatter_max),
        )),
        Step(norm, f"{x} - {maxes}", lambda v: v[x] - v[maxes], (  # (B, nh, T, T)
            Grad(x, f"d{x} = d{norm}.clone()", lambda v, d: d.clone()),
            Grad(maxes, f"d{maxes} = (-d{norm}).sum(-1, keepdim=True)", lambda v, d: (-d).sum(-1, keepdim=True),
                 tr("d{m} is 0 in exact arithmetic: shifting a row does not change its softmax. What it holds is "
                    "rounding noise (~1e-11 here); the max is subtracted only to keep exp from overflowing.", m=maxes)),
        )),
        Step(counts, f"{norm}.exp()", lambda v: v[norm].exp(), (
            Grad(norm, f"d{norm} = {counts} * d{counts}", lambda v, d: d * v[counts]),
        )),
        Step(counts_sum, f"{counts}.sum(-1, keepdim=True)", lambda v: v[counts].sum(-1, keepdim=True), (
            Grad(counts, f"d{counts} += torch.ones_like({counts}) * d{counts_sum}", lambda v, d: d.expand_as(v[counts])),
        )),
        Step(counts_sum_inv, f"{counts_sum}**-1", lambda v: v[counts_sum] ** -1, (
            Grad(counts_sum, f"d{counts_sum} = (-{counts_sum}**-2) * d{counts_sum_inv}",
                 lambda v, d: d * (-1.0 * v[counts_sum] ** -2)),
        )),
        Step(out, f"{counts} * {counts_sum_inv}", lambda v: v[counts] * v[counts_sum_inv], (
            Grad(counts_sum_inv, f"d{counts_sum_inv} = ({counts} * d{out}).sum(-1, keepdim=True)",
                 lambda v, d: (d * v[counts]).sum(-1, keepdim=True)),
            Grad(counts, f"d{counts} = {counts_sum_inv} * d{out}", lambda v, d: d * v[counts_sum_inv]),
        )),
    ]


def fused_softmax(x: str, masked: str, prefix: str, suffix: str) -> FusedBlock:
    """llm.c's attention_backward, its softmax part: d<x> (preatt) from d<out> (att) in one step,
    over the causal mask and the softmax's nodes."""
    out = prefix + suffix

    def compute(v: Values, d: torch.Tensor) -> torch.Tensor:
        att = v[out]
        return att * (d - (att * d).sum(-1, keepdim=True))

    return FusedBlock(
        f"softmax_{out}", out=out, wrt=x, inner=(*reversed(softmax_names(prefix, suffix)), masked),
        formula=f"d{x} = {out} * (d{out} - ({out} * d{out}).sum(-1, keepdim=True))",
        compute=compute,
        note=tr("The softmax's backward from d{out} straight to d{x} (llm.c's attention_backward): att * (datt - "
                "(att * datt).sum(-1)), the row-sum term included. Masked entries come out 0 by themselves (att is 0 "
                "there). Float32 rounds it differently from the chain: 'approx', not 'exact'.", out=out, x=x),
    )


def attend(out: str, att: str, v_: str) -> Step:
    """`out = att @ v`: (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs), each query's weighted values."""
    return Step(out, f"{att} @ {v_}", lambda v: v[att] @ v[v_], (
        Grad(att, f"d{att} = d{out} @ {v_}.transpose(-2, -1)", lambda v, d: d @ v[v_].transpose(-2, -1)),
        Grad(v_, f"d{v_} = {att}.transpose(-2, -1) @ d{out}", lambda v, d: v[att].transpose(-2, -1) @ d),
    ))


def merge_heads(out: str, y: str) -> Step:
    """`out = y.transpose(1, 2).contiguous().view(B, T, C)`: the heads side by side again (llm.c's atty)."""
    return Step(out, f"{y}.transpose(1, 2).contiguous().view(B, T, C)",
                lambda v: v[y].transpose(1, 2).contiguous().view(v["B"], v["T"], v["C"]), (
        Grad(y, f"d{y} = d{out}.view(B, T, nh, hs).transpose(1, 2)",
             lambda v, d: d.view(v["B"], v["T"], v["nh"], v["hs"]).transpose(1, 2),
             tr("Merging the heads is the split's inverse: back to (B, T, nh, hs), then time moves before the heads "
                "again. A view straight to (B, nh, T, hs) would be the right shape with the wrong entries.")),
    ))


def residual(out: str, x: str, f: str, first: bool) -> Step:
    """`out = x + f` (llm.c's residual_forward): the block's input plus what the block added.
    `first`: x has no gradient yet when the backward reaches this step (always, in a GPT)."""
    note = tr("A residual connection copies its gradient to both branches: {x} gets all of d{out}, and so does {f}.",
              x=x, out=out, f=f)
    return Step(out, f"{x} + {f}", lambda v: v[x] + v[f], (
        Grad(x, f"d{x} {_op(first)} d{out}.clone()", lambda v, d: d.clone(), note),
        Grad(f, f"d{f} = d{out}.clone()", lambda v, d: d.clone()),
    ))


# ---- GELU, tanh approximation (llm.c's gelu_forward / gelu_backward), one primitive per node -----

def gelu_names(x: str, suffix: str) -> tuple[str, ...]:
    """cube, inner, tanh of fch_0's GELU: fch_cube_0, fch_inner_0, fch_tanh_0."""
    base = x[: -len(suffix)] if suffix else x
    return tuple(f"{base}_{part}{suffix}" for part in ("cube", "inner", "tanh"))


def gelu(x: str, out: str, suffix: str) -> list[Step]:
    """out = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3))), GPT-2's and llm.c's GELU:
    nodes cube, inner, tanh, then out (fch_gelu_0)."""
    cube, inner, th = gelu_names(x, suffix)
    return [
        Step(cube, f"{x}**3", lambda v: v[x] ** 3, (
            Grad(x, f"d{x} += (3 * {x}**2) * d{cube}", lambda v, d: d * (3.0 * v[x] ** 2)),
        )),
        Step(inner, f"(2 / torch.pi)**0.5 * ({x} + 0.044715 * {cube})",
             lambda v: GELU_SCALING * (v[x] + GELU_CUBE * v[cube]), (
            Grad(x, f"d{x} += (2 / torch.pi)**0.5 * d{inner}", lambda v, d: d * GELU_SCALING),
            Grad(cube, f"d{cube} = (2 / torch.pi)**0.5 * d{inner} * 0.044715", lambda v, d: d * GELU_SCALING * GELU_CUBE,
                 tr("Computed as autograd does, (dinner * sqrt(2/pi)) * 0.044715: the formula's order. Multiplying "
                    "the two constants first rounds differently.")),
        )),
        Step(th, f"torch.tanh({inner})", lambda v: torch.tanh(v[inner]), (
            Grad(inner, f"d{inner} = torch.addcmul(torch.ones_like({th}), {th}, {th}, value=-1) * d{th}",
                 lambda v, d: torch.addcmul(torch.ones_like(v[th]), v[th], v[th], value=-1) * d,
                 tr("1 - tanh² as autograd forms it: one fused multiply-add, one rounding. The lecture's (1.0 - "
                    "{t}**2) * d{t} is right too, but rounds {t}**2 first: in float32 it and every gradient below it "
                    "come out 'approx', not 'exact'.", t=th)),
        )),
        Step(out, f"0.5 * {x} * (1 + {th})", lambda v: 0.5 * v[x] * (1 + v[th]), (
            Grad(x, f"d{x} = 0.5 * (1 + {th}) * d{out}", lambda v, d: d * (1 + v[th]) * 0.5),
            Grad(th, f"d{th} = 0.5 * {x} * d{out}", lambda v, d: d * (0.5 * v[x])),
        )),
    ]


def fused_gelu(x: str, out: str, suffix: str) -> FusedBlock:
    """llm.c's gelu_backward: d<x> from d<out> in one step, over cube, inner and tanh."""
    cube, inner, th = gelu_names(x, suffix)

    def compute(v: Values, d: torch.Tensor) -> torch.Tensor:
        xv, t = v[x], v[th]
        local = 0.5 * (1 + t) + 0.5 * xv * (1 - t**2) * GELU_SCALING * (1 + 3 * GELU_CUBE * xv**2)
        return local * d

    return FusedBlock(
        f"gelu_{out}", out=out, wrt=x, inner=(th, inner, cube),
        formula=f"d{x} = (0.5 * (1 + {th}) + 0.5 * {x} * (1 - {th}**2) * (2 / torch.pi)**0.5 "
                f"* (1 + 3 * 0.044715 * {x}**2)) * d{out}",
        compute=compute,
        note=tr("GELU's backward in one step (llm.c's gelu_backward, tanh approximation): 0.5(1 + tanh) + 0.5 x "
                "sech^2 sqrt(2/pi) (1 + 3*0.044715 x^2). Float32 rounds it differently from the chain: 'approx', "
                "not 'exact'."),
    )
