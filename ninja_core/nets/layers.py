"""Steps that several networks share: embedding, view, linear, batchnorm, tanh, cross-entropy.

Each builder returns tape steps named as the caller says, with the forward line, the backward
formula a learner writes and the code that computes it side by side. The networks compose them
(`nets/mlp.py` is the lecture's part 4 network, `nets/wavenet.py` its part 5 network); the
cross-entropy tail is the same nodes in every network, so a learner meets a familiar ending.

Float32 bit-exactness: every `compute` follows autograd's own order of floating-point operations
for the forward line it differentiates (the notes say where that differs from the formula's text).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..i18n import german, tr
from ..tape import FusedBlock, Grad, Step, Values

BN_EPS = 1e-5
BATCHNORM_NODES = ("bnmeani", "bndiff", "bndiff2", "bnvar", "bnvar_inv", "bnraw")
CROSS_ENTROPY_NODES = ("logit_maxes", "norm_logits", "counts", "counts_sum", "counts_sum_inv", "probs", "logprobs")

german({
    "The lecture loops over every (i, j) in Python; index_add_ does the same additions in the same order, "
    "vectorised.":
        "Die Vorlesung läuft in Python über jedes (i, j); index_add_ macht dieselben Additionen in derselben "
        "Reihenfolge, vektorisiert.",
    "Computed as torch.addcmul(torch.ones_like({h}), {h}, {h}, value=-1) * d{h}: autograd's tanh backward forms "
    "1 - {h}*{h} with one fused multiply-add (one rounding), and {h}**2 rounded first differs from it in the last "
    "bit of float32.":
        "Berechnet als torch.addcmul(torch.ones_like({h}), {h}, {h}, value=-1) * d{h}: Autograds Rückwärtsschritt "
        "von tanh bildet 1 - {h}*{h} mit einer einzigen fusionierten Multiplikation-Addition (eine Rundung); "
        "{h}**2 zuerst gerundet weicht davon im letzten Bit von float32 ab.",
    "Computed as dlogprobs / probs, autograd's single division. (1.0 / probs) rounds the reciprocal first; the "
    "two agree bit for bit only while -1/n is a power of two.":
        "Berechnet als dlogprobs / probs, Autograds einzelne Division. (1.0 / probs) rundet zuerst den Kehrwert; "
        "beide stimmen nur bitgenau überein, solange -1/n eine Zweierpotenz ist.",
    "Softmax minus the one-hot target, over n: the seven steps of the loss in one. Float32 rounds it differently "
    "from the chain, so expect 'approx', not 'exact'.":
        "Softmax minus das One-Hot-Ziel, geteilt durch n: die sieben Schritte des Verlusts in einem. Float32 rundet "
        "das anders als die Kette: 'approx' ist zu erwarten, nicht 'exact'.",
    "Batchnorm's backward from d{out} straight to d{x} (with Bessel's {count}-1, as the forward). Float32 rounds "
    "it differently from the chain: 'approx', not 'exact'.":
        "Der Rückwärtsschritt der Batchnorm von d{out} direkt zu d{x} (mit Bessels {count}-1, wie vorwärts). "
        "Float32 rundet das anders als die Kette: 'approx', nicht 'exact'.",
    "A 3-D input: the matmul runs on the {x} rows folded into one matrix ({x}.view(-1, {x}.shape[-1])), so "
    "d{W} sums over batch and time in one product.":
        "Eine 3-D-Eingabe: die Matrixmultiplikation läuft auf den zu einer Matrix gefalteten Zeilen von {x} "
        "({x}.view(-1, {x}.shape[-1])), also summiert d{W} in einem Produkt über Batch und Zeit.",
})


def suffixed(name: str, suffix: str) -> str:
    """`name` + `suffix` (a level or layer number); an underscore between two digits (bndiff2_3)."""
    return f"{name}_{suffix}" if suffix and name[-1].isdigit() and suffix[0].isdigit() else name + suffix


def _dims_text(dims: tuple[int, ...]) -> str:
    return str(dims[0]) if len(dims) == 1 else "(" + ", ".join(map(str, dims)) + ")"


# ---- embedding and views ------------------------------------------------------------------------

def embedding(out: str, table: str, index: str) -> Step:
    """`out = table[index]`, (B, T) integer indices -> (B, T, E); the gradient scatters back by index."""

    def grad(v: Values, d: torch.Tensor) -> torch.Tensor:
        dtable = torch.zeros_like(v[table])  # (V, E)
        # index_add_ adds the rows in index order, the order autograd's index_put_ accumulates in.
        return dtable.index_add_(0, v[index].view(-1), d.reshape(-1, v[table].shape[1]))

    return Step(out, f"{table}[{index}]", lambda v: v[table][v[index]], (
        Grad(table,
             f"d{table} = torch.zeros_like({table})\n"
             f"d{table}.index_add_(0, {index}.view(-1), d{out}.view(-1, {table}.shape[1]))",
             grad,
             tr("The lecture loops over every (i, j) in Python; index_add_ does the same additions in the same "
                "order, vectorised.")),
    ), reads=(index,))


def view(out: str, src: str, forward: str, shape: Callable[[Values], tuple[int, ...]]) -> Step:
    """`out = src.view(...)`: a reshape whose gradient is the upstream gradient in src's shape.
    `shape(v)` gives the new shape from the values (the forward line says the same in code)."""
    return Step(out, forward, lambda v: v[src].view(*shape(v)), (
        Grad(src, f"d{src} = d{out}.view({src}.shape)", lambda v, d: d.view(v[src].shape)),
    ))


# ---- linear ---------------------------------------------------------------------------------------

def linear(out: str, x: str, W: str, b: str | None = None, rank: int = 2) -> Step:
    """`out = x @ W (+ b)`, x (B, K) or (B, T, K) with `rank=3`, W (K, H), b (H,)."""
    if rank == 2:
        dW = Grad(W, f"d{W} = {x}.T @ d{out}", lambda v, d: v[x].T @ d)
    else:
        # autograd folds a 3-D @ 2-D matmul into one (B*T, K) @ (K, H) product and differentiates that
        dW = Grad(W, f"d{W} = {x}.view(-1, {x}.shape[-1]).T @ d{out}.view(-1, d{out}.shape[-1])",
                  lambda v, d: v[x].reshape(-1, v[x].shape[-1]).T @ d.reshape(-1, d.shape[-1]),
                  tr("A 3-D input: the matmul runs on the {x} rows folded into one matrix ({x}.view(-1, "
                     "{x}.shape[-1])), so d{W} sums over batch and time in one product.", x=x, W=W))
    grads = [Grad(x, f"d{x} = d{out} @ {W}.T", lambda v, d: d @ v[W].T), dW]
    if b is None:
        return Step(out, f"{x} @ {W}", lambda v: v[x] @ v[W], tuple(grads))
    grads.append(Grad(b, f"d{b} = d{out}.sum(0)", lambda v, d: d.sum(0)))
    return Step(out, f"{x} @ {W} + {b}", lambda v: v[x] @ v[W] + v[b], tuple(grads))


# ---- batchnorm, decomposed as in the lecture's exercise 1 ----------------------------------------

def batchnorm(x: str, out: str, gain: str, bias: str, count: str, dims: tuple[int, ...] = (0,), suffix: str = "",
              param_keepdim: bool = True, mean_note: str = "") -> list[Step]:
    """bnmeani .. `out` for batchnorm over `dims` of x, with Bessel's n-1 in the variance (as
    torch.var); `count` names the constant holding how many entries each statistic averages.

    Nodes: bnmeani, bndiff, bndiff2, bnvar, bnvar_inv, bnraw (each + `suffix`: bndiff2_3), then `out`.
    `param_keepdim`: the gain and bias are (1, H) (the lecture's part 4) or (H,) (its part 5)."""
    mean, diff, diff2, var, var_inv, raw = (suffixed(name, suffix) for name in BATCHNORM_NODES)
    dt = _dims_text(dims)
    kd = ", keepdim=True" if param_keepdim else ""
    return [
        Step(mean, f"1/{count} * {x}.sum({dt}, keepdim=True)",
             lambda v: 1 / v[count] * v[x].sum(dims, keepdim=True), (
            Grad(x, f"d{x} += 1.0/{count} * (torch.ones_like({x}) * d{mean})",
                 lambda v, d: (d * (1 / v[count])).expand_as(v[x])),
        )),
        Step(diff, f"{x} - {mean}", lambda v: v[x] - v[mean], (
            Grad(x, f"d{x} = d{diff}.clone()", lambda v, d: d.clone()),
            Grad(mean, f"d{mean} = (-d{diff}).sum({dt}, keepdim=True)",
                 lambda v, d: (-d).sum(dims, keepdim=True), mean_note),
        )),
        Step(diff2, f"{diff}**2", lambda v: v[diff] ** 2, (
            Grad(diff, f"d{diff} += (2*{diff}) * d{diff2}", lambda v, d: d * (2.0 * v[diff])),
        )),
        Step(var, f"1/({count}-1) * {diff2}.sum({dt}, keepdim=True)",
             lambda v: 1 / (v[count] - 1) * v[diff2].sum(dims, keepdim=True), (  # Bessel's n-1
            Grad(diff2, f"d{diff2} = (1.0/({count}-1)) * torch.ones_like({diff2}) * d{var}",
                 lambda v, d: (d * (1 / (v[count] - 1))).expand_as(v[diff2])),
        )),
        Step(var_inv, f"({var} + 1e-5)**-0.5", lambda v: (v[var] + BN_EPS) ** -0.5, (
            Grad(var, f"d{var} = (-0.5 * ({var} + 1e-5)**-1.5) * d{var_inv}",
                 lambda v, d: d * (-0.5 * (v[var] + BN_EPS) ** -1.5)),
        )),
        Step(raw, f"{diff} * {var_inv}", lambda v: v[diff] * v[var_inv], (
            Grad(diff, f"d{diff} = {var_inv} * d{raw}", lambda v, d: d * v[var_inv]),
            Grad(var_inv, f"d{var_inv} = ({diff} * d{raw}).sum({dt}, keepdim=True)",
                 lambda v, d: (d * v[diff]).sum(dims, keepdim=True)),
        )),
        Step(out, f"{gain} * {raw} + {bias}", lambda v: v[gain] * v[raw] + v[bias], (
            Grad(gain, f"d{gain} = ({raw} * d{out}).sum({dt}{kd})",
                 lambda v, d: (d * v[raw]).sum(dims, keepdim=param_keepdim)),
            Grad(bias, f"d{bias} = d{out}.sum({dt}{kd})", lambda v, d: d.sum(dims, keepdim=param_keepdim)),
            Grad(raw, f"d{raw} = {gain} * d{out}", lambda v, d: d * v[gain]),
        )),
    ]


def fused_batchnorm(x: str, out: str, gain: str, count: str, dims: tuple[int, ...] = (0,), suffix: str = "") -> FusedBlock:
    """Lecture exercise 3: batchnorm's backward from d<out> straight to d<x>, over `dims`."""
    var_inv, raw = suffixed("bnvar_inv", suffix), suffixed("bnraw", suffix)
    dt = _dims_text(dims)

    def compute(v: Values, d: torch.Tensor) -> torch.Tensor:
        n = v[count]
        return v[gain] * v[var_inv] / n * (n * d - d.sum(dims) - n / (n - 1) * v[raw] * (d * v[raw]).sum(dims))

    inner = tuple(suffixed(name, suffix) for name in reversed(BATCHNORM_NODES))
    return FusedBlock(
        f"batchnorm{suffix}", out=out, wrt=x, inner=inner,
        formula=f"d{x} = {gain}*{var_inv}/{count} * ({count}*d{out} - d{out}.sum({dt}) "
                f"- {count}/({count}-1)*{raw}*(d{out}*{raw}).sum({dt}))",
        compute=compute,
        note=tr("Batchnorm's backward from d{out} straight to d{x} (with Bessel's {count}-1, as the forward). "
                "Float32 rounds it differently from the chain: 'approx', not 'exact'.", out=out, x=x, count=count),
    )


# ---- tanh -----------------------------------------------------------------------------------------

def tanh(out: str, x: str) -> Step:
    return Step(out, f"torch.tanh({x})", lambda v: torch.tanh(v[x]), (
        Grad(x, f"d{x} = (1.0 - {out}**2) * d{out}",
             lambda v, d: torch.addcmul(torch.ones_like(v[out]), v[out], v[out], value=-1) * d,
             tr("Computed as torch.addcmul(torch.ones_like({h}), {h}, {h}, value=-1) * d{h}: autograd's tanh "
                "backward forms 1 - {h}*{h} with one fused multiply-add (one rounding), and {h}**2 rounded first "
                "differs from it in the last bit of float32.", h=out)),
    ))


# ---- cross-entropy, decomposed as in the lecture's exercise 1 ------------------------------------

def _index_one_hot(v: Values, d: torch.Tensor) -> torch.Tensor:
    # loss = -logprobs[range(n), Yb].mean(): autograd's mean backward divides -dloss by n in the
    # tensor's own dtype; for every n in 2..4096 that equals the float32 of the Python -1.0/n.
    n, Yb, logprobs = v["n"], v["Yb"], v["logprobs"]
    dlogprobs = torch.zeros_like(logprobs)  # (n, V)
    dlogprobs[torch.arange(n, device=logprobs.device), Yb] = -d / n
    return dlogprobs


def _scatter_max(v: Values, d: torch.Tensor) -> torch.Tensor:
    logits = v["logits"]
    indices = logits.max(1, keepdim=True).indices  # (n, 1)
    return torch.zeros_like(logits).scatter_(1, indices, d)  # (n, V)


def cross_entropy() -> list[Step]:
    """logits (n, V) and targets Yb (n,) -> loss, through the lecture's seven intermediate nodes.
    Uses the constant `n`: the number of rows of logits (the predictions the loss averages)."""
    return [
        Step("logit_maxes", "logits.max(1, keepdim=True).values",
             lambda v: v["logits"].max(1, keepdim=True).values, (  # (n, 1)
            Grad("logits",
                 "dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes",
                 _scatter_max),
        )),
        Step("norm_logits", "logits - logit_maxes", lambda v: v["logits"] - v["logit_maxes"], (  # (n, V)
            Grad("logits", "dlogits = dnorm_logits.clone()", lambda v, d: d.clone()),
            Grad("logit_maxes", "dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)",
                 lambda v, d: (-d).sum(1, keepdim=True)),
        )),
        Step("counts", "norm_logits.exp()", lambda v: v["norm_logits"].exp(), (  # (n, V)
            Grad("norm_logits", "dnorm_logits = counts * dcounts", lambda v, d: d * v["counts"]),
        )),
        Step("counts_sum", "counts.sum(1, keepdim=True)", lambda v: v["counts"].sum(1, keepdim=True), (  # (n, 1)
            Grad("counts", "dcounts += torch.ones_like(counts) * dcounts_sum", lambda v, d: d.expand_as(v["counts"])),
        )),
        Step("counts_sum_inv", "counts_sum**-1", lambda v: v["counts_sum"] ** -1, (  # (n, 1)
            Grad("counts_sum", "dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv",
                 lambda v, d: d * (-1.0 * v["counts_sum"] ** -2)),
        )),
        Step("probs", "counts * counts_sum_inv", lambda v: v["counts"] * v["counts_sum_inv"], (  # (n, V)
            Grad("counts_sum_inv", "dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)",
                 lambda v, d: (d * v["counts"]).sum(1, keepdim=True)),
            Grad("counts", "dcounts = counts_sum_inv * dprobs", lambda v, d: d * v["counts_sum_inv"]),
        )),
        Step("logprobs", "probs.log()", lambda v: v["probs"].log(), (  # (n, V)
            Grad("probs", "dprobs = (1.0 / probs) * dlogprobs", lambda v, d: d / v["probs"],
                 tr("Computed as dlogprobs / probs, autograd's single division. (1.0 / probs) rounds the "
                    "reciprocal first; the two agree bit for bit only while -1/n is a power of two.")),
        )),
        Step("loss", "-logprobs[range(n), Yb].mean()",
             lambda v: -v["logprobs"][torch.arange(v["n"], device=v["logprobs"].device), v["Yb"]].mean(), (  # ()
            Grad("logprobs", "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n",
                 _index_one_hot),
        ), reads=("Yb",)),
    ]


def _fused_cross_entropy(v: Values, d: torch.Tensor) -> torch.Tensor:
    n, Yb = v["n"], v["Yb"]
    dlogits = F.softmax(v["logits"], 1)  # (n, V)
    dlogits[torch.arange(n, device=dlogits.device), Yb] -= 1
    return dlogits * d / n


def fused_cross_entropy() -> FusedBlock:
    """Lecture exercise 2: softmax minus the one-hot target, over n, from dloss straight to dlogits."""
    return FusedBlock(
        "cross_entropy", out="loss", wrt="logits", inner=tuple(reversed(CROSS_ENTROPY_NODES)),
        formula="dlogits = F.softmax(logits, 1)\ndlogits[range(n), Yb] -= 1\ndlogits /= n",
        compute=_fused_cross_entropy,
        note=tr("Softmax minus the one-hot target, over n: the seven steps of the loss in one. Float32 rounds it "
                "differently from the chain, so expect 'approx', not 'exact'."),
    )
