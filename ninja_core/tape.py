"""The forward pass as a tape of steps, each with its local backward beside it.

A `Step` is one forward line (`out = <forward>`) and, for each input it reads, a `Grad`:
the formula a person writes in the lecture's notebook and the code that computes it, side
by side (the way micrograd keeps an op's derivative next to the op). Where the computed
form differs from the lecture's text -- to follow autograd's order of floating-point
operations, so float32 agrees bit for bit -- the `note` says how and why.

A formula is Python that assigns `d<input>`: `=` for the first branch that reaches the
input in backward order, `+=` for the next. It only uses names from the forward pass,
`n`, `Xb`, `Yb`, `torch`, `F` and upstream gradients, so it can be run by the dojo and a
test checks that every one of them does pass there.

The lecture's MLP is `MLP_TAPE`; `FUSED_BLOCKS` are the one-step backward formulas of
lecture exercises 2 and 3 (cross-entropy, batchnorm) that replace a span of the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

Values = dict[str, Any]  # node name -> tensor, plus "n" (int), "Xb", "Yb"
GradFn = Callable[[Values, torch.Tensor], torch.Tensor]  # (values, d<out>) -> contribution to d<input>

BN_EPS = 1e-5


@dataclass(frozen=True)
class Grad:
    wrt: str  # the input this branch sends gradient to
    formula: str  # the lecture's line(s), as a learner writes them
    compute: GradFn  # the same derivative as code: (values, d<out>) -> contribution
    note: str = ""  # where `compute` differs from `formula` in the order of operations, and why


@dataclass(frozen=True)
class Step:
    out: str  # the node this step produces
    forward: str  # its forward line, as in the lecture
    run: Callable[[Values], torch.Tensor]  # the forward line as code
    grads: tuple[Grad, ...]  # local backward, one entry per input that needs a gradient

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(g.wrt for g in self.grads)


@dataclass(frozen=True)
class FusedBlock:
    """One backward formula for a span of steps (lecture exercises 2 and 3)."""

    name: str
    out: str  # the node whose gradient enters the block
    wrt: str  # the node whose gradient the block produces in one step
    inner: tuple[str, ...]  # the nodes the block skips over
    formula: str
    compute: GradFn  # (values, d<out>) -> d<wrt>
    note: str = ""


def _index_one_hot(values: Values, d: torch.Tensor) -> torch.Tensor:
    # loss = -logprobs[range(n), Yb].mean(): autograd's mean backward divides -dloss by n in the
    # tensor's own dtype; for every n in 2..4096 that equals the float32 of the Python -1.0/n.
    n, Yb, logprobs = values["n"], values["Yb"], values["logprobs"]
    dlogprobs = torch.zeros_like(logprobs)  # (B, V)
    dlogprobs[torch.arange(n, device=logprobs.device), Yb] = -d / n
    return dlogprobs


def _scatter_max(values: Values, d: torch.Tensor) -> torch.Tensor:
    logits = values["logits"]
    indices = logits.max(1, keepdim=True).indices  # (B, 1)
    return torch.zeros_like(logits).scatter_(1, indices, d)  # (B, V)


def _embedding_grad(values: Values, d: torch.Tensor) -> torch.Tensor:
    C, Xb = values["C"], values["Xb"]
    dC = torch.zeros_like(C)  # (V, E)
    # index_add_ adds the rows in index order, the order autograd's index_put_ accumulates in.
    return dC.index_add_(0, Xb.view(-1), d.reshape(-1, C.shape[1]))


MLP_TAPE: tuple[Step, ...] = (
    Step("emb", "C[Xb]", lambda v: v["C"][v["Xb"]], (  # (B, T, E)
        Grad("C",
             "dC = torch.zeros_like(C)\n"
             "dC.index_add_(0, Xb.view(-1), demb.view(-1, C.shape[1]))",
             _embedding_grad,
             "The lecture loops over every (i, j) in Python; index_add_ does the same additions in "
             "the same order, vectorised."),
    )),
    Step("embcat", "emb.view(emb.shape[0], -1)", lambda v: v["emb"].view(v["emb"].shape[0], -1), (  # (B, T*E)
        Grad("emb", "demb = dembcat.view(emb.shape)", lambda v, d: d.view(v["emb"].shape)),
    )),
    Step("hprebn", "embcat @ W1 + b1", lambda v: v["embcat"] @ v["W1"] + v["b1"], (  # (B, H)
        Grad("embcat", "dembcat = dhprebn @ W1.T", lambda v, d: d @ v["W1"].T),
        Grad("W1", "dW1 = embcat.T @ dhprebn", lambda v, d: v["embcat"].T @ d),
        Grad("b1", "db1 = dhprebn.sum(0)", lambda v, d: d.sum(0)),
    )),
    Step("bnmeani", "1/n * hprebn.sum(0, keepdim=True)",
         lambda v: 1 / v["n"] * v["hprebn"].sum(0, keepdim=True), (  # (1, H)
        Grad("hprebn", "dhprebn += 1.0/n * (torch.ones_like(hprebn) * dbnmeani)",
             lambda v, d: (d * (1 / v["n"])).expand_as(v["hprebn"])),
    )),
    Step("bndiff", "hprebn - bnmeani", lambda v: v["hprebn"] - v["bnmeani"], (  # (B, H)
        Grad("hprebn", "dhprebn = dbndiff.clone()", lambda v, d: d.clone()),
        Grad("bnmeani", "dbnmeani = (-dbndiff).sum(0, keepdim=True)",
             lambda v, d: (-d).sum(0, keepdim=True),
             "The lecture wrote (-dbndiff).sum(0): shape (H,) instead of (1, H). Its cmp compared "
             "with == and allclose, which broadcast, and printed 'exact' anyway."),
    )),
    Step("bndiff2", "bndiff**2", lambda v: v["bndiff"] ** 2, (  # (B, H)
        Grad("bndiff", "dbndiff += (2*bndiff) * dbndiff2", lambda v, d: d * (2.0 * v["bndiff"])),
    )),
    Step("bnvar", "1/(n-1) * bndiff2.sum(0, keepdim=True)",
         lambda v: 1 / (v["n"] - 1) * v["bndiff2"].sum(0, keepdim=True), (  # (1, H), Bessel's n-1
        Grad("bndiff2", "dbndiff2 = (1.0/(n-1)) * torch.ones_like(bndiff2) * dbnvar",
             lambda v, d: (d * (1 / (v["n"] - 1))).expand_as(v["bndiff2"])),
    )),
    Step("bnvar_inv", "(bnvar + 1e-5)**-0.5", lambda v: (v["bnvar"] + BN_EPS) ** -0.5, (  # (1, H)
        Grad("bnvar", "dbnvar = (-0.5 * (bnvar + 1e-5)**-1.5) * dbnvar_inv",
             lambda v, d: d * (-0.5 * (v["bnvar"] + BN_EPS) ** -1.5)),
    )),
    Step("bnraw", "bndiff * bnvar_inv", lambda v: v["bndiff"] * v["bnvar_inv"], (  # (B, H)
        Grad("bndiff", "dbndiff = bnvar_inv * dbnraw", lambda v, d: d * v["bnvar_inv"]),
        Grad("bnvar_inv", "dbnvar_inv = (bndiff * dbnraw).sum(0, keepdim=True)",
             lambda v, d: (d * v["bndiff"]).sum(0, keepdim=True)),
    )),
    Step("hpreact", "bngain * bnraw + bnbias", lambda v: v["bngain"] * v["bnraw"] + v["bnbias"], (  # (B, H)
        Grad("bngain", "dbngain = (bnraw * dhpreact).sum(0, keepdim=True)",
             lambda v, d: (d * v["bnraw"]).sum(0, keepdim=True)),
        Grad("bnbias", "dbnbias = dhpreact.sum(0, keepdim=True)", lambda v, d: d.sum(0, keepdim=True)),
        Grad("bnraw", "dbnraw = bngain * dhpreact", lambda v, d: d * v["bngain"]),
    )),
    Step("h", "torch.tanh(hpreact)", lambda v: torch.tanh(v["hpreact"]), (  # (B, H)
        Grad("hpreact", "dhpreact = (1.0 - h**2) * dh",
             lambda v, d: torch.addcmul(torch.ones_like(v["h"]), v["h"], v["h"], value=-1) * d,
             "Computed as torch.addcmul(torch.ones_like(h), h, h, value=-1) * dh: autograd's tanh "
             "backward forms 1 - h*h with one fused multiply-add (one rounding), and h**2 rounded "
             "first differs from it in the last bit of float32."),
    )),
    Step("logits", "h @ W2 + b2", lambda v: v["h"] @ v["W2"] + v["b2"], (  # (B, V)
        Grad("h", "dh = dlogits @ W2.T", lambda v, d: d @ v["W2"].T),
        Grad("W2", "dW2 = h.T @ dlogits", lambda v, d: v["h"].T @ d),
        Grad("b2", "db2 = dlogits.sum(0)", lambda v, d: d.sum(0)),
    )),
    Step("logit_maxes", "logits.max(1, keepdim=True).values",
         lambda v: v["logits"].max(1, keepdim=True).values, (  # (B, 1)
        Grad("logits",
             "dlogits += F.one_hot(logits.max(1).indices, num_classes=logits.shape[1]) * dlogit_maxes",
             _scatter_max),
    )),
    Step("norm_logits", "logits - logit_maxes", lambda v: v["logits"] - v["logit_maxes"], (  # (B, V)
        Grad("logits", "dlogits = dnorm_logits.clone()", lambda v, d: d.clone()),
        Grad("logit_maxes", "dlogit_maxes = (-dnorm_logits).sum(1, keepdim=True)",
             lambda v, d: (-d).sum(1, keepdim=True)),
    )),
    Step("counts", "norm_logits.exp()", lambda v: v["norm_logits"].exp(), (  # (B, V)
        Grad("norm_logits", "dnorm_logits = counts * dcounts", lambda v, d: d * v["counts"]),
    )),
    Step("counts_sum", "counts.sum(1, keepdim=True)", lambda v: v["counts"].sum(1, keepdim=True), (  # (B, 1)
        Grad("counts", "dcounts += torch.ones_like(counts) * dcounts_sum", lambda v, d: d.expand_as(v["counts"])),
    )),
    Step("counts_sum_inv", "counts_sum**-1", lambda v: v["counts_sum"] ** -1, (  # (B, 1)
        Grad("counts_sum", "dcounts_sum = (-counts_sum**-2) * dcounts_sum_inv",
             lambda v, d: d * (-1.0 * v["counts_sum"] ** -2)),
    )),
    Step("probs", "counts * counts_sum_inv", lambda v: v["counts"] * v["counts_sum_inv"], (  # (B, V)
        Grad("counts_sum_inv", "dcounts_sum_inv = (counts * dprobs).sum(1, keepdim=True)",
             lambda v, d: (d * v["counts"]).sum(1, keepdim=True)),
        Grad("counts", "dcounts = counts_sum_inv * dprobs", lambda v, d: d * v["counts_sum_inv"]),
    )),
    Step("logprobs", "probs.log()", lambda v: v["probs"].log(), (  # (B, V)
        Grad("probs", "dprobs = (1.0 / probs) * dlogprobs", lambda v, d: d / v["probs"],
             "Computed as dlogprobs / probs, autograd's single division. (1.0 / probs) rounds the "
             "reciprocal first; the two agree bit for bit only while -1/n is a power of two."),
    )),
    Step("loss", "-logprobs[range(n), Yb].mean()",
         lambda v: -v["logprobs"][torch.arange(v["n"], device=v["logprobs"].device), v["Yb"]].mean(), (  # ()
        Grad("logprobs", "dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n", _index_one_hot),
    )),
)

PARAMS: tuple[str, ...] = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")
ALIASES: dict[str, str] = {"zprebn": "hprebn", "apreact": "hpreact", "a": "h"}  # the seed notebook's names


def _fused_cross_entropy(values: Values, d: torch.Tensor) -> torch.Tensor:
    n, Yb = values["n"], values["Yb"]
    dlogits = F.softmax(values["logits"], 1)  # (B, V)
    dlogits[torch.arange(n, device=dlogits.device), Yb] -= 1
    return dlogits * d / n


def _fused_batchnorm(values: Values, d: torch.Tensor) -> torch.Tensor:
    n, bngain, bnvar_inv, bnraw = values["n"], values["bngain"], values["bnvar_inv"], values["bnraw"]
    return bngain * bnvar_inv / n * (n * d - d.sum(0) - n / (n - 1) * bnraw * (d * bnraw).sum(0))  # (B, H)


FUSED_BLOCKS: tuple[FusedBlock, ...] = (
    FusedBlock(
        "cross_entropy", out="loss", wrt="logits",
        inner=("logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "logit_maxes"),
        formula="dlogits = F.softmax(logits, 1)\ndlogits[range(n), Yb] -= 1\ndlogits /= n",
        compute=_fused_cross_entropy,
        note="Softmax minus the one-hot target, over n: the seven steps of the loss in one. Float32 "
             "rounds it differently from the chain, so expect 'approx', not 'exact'.",
    ),
    FusedBlock(
        "batchnorm", out="hpreact", wrt="hprebn",
        inner=("bnraw", "bnvar_inv", "bnvar", "bndiff2", "bndiff", "bnmeani"),
        formula="dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) "
                "- n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))",
        compute=_fused_batchnorm,
        note="Batchnorm's backward from dhpreact straight to dhprebn (with Bessel's n-1, as the "
             "forward). Float32 rounds it differently from the chain: 'approx', not 'exact'.",
    ),
)


def producers(tape: tuple[Step, ...] = MLP_TAPE) -> dict[str, Step]:
    return {step.out: step for step in tape}


def consumers(tape: tuple[Step, ...] = MLP_TAPE) -> dict[str, list[tuple[Step, Grad]]]:
    """For each node, the (step, branch) pairs that send it gradient, in backward order."""
    found: dict[str, list[tuple[Step, Grad]]] = {}
    for step in reversed(tape):
        for grad in step.grads:
            found.setdefault(grad.wrt, []).append((step, grad))
    return found


def backward_order(tape: tuple[Step, ...] = MLP_TAPE) -> tuple[str, ...]:
    """The 26 gradients in the order the lecture's cmp table lists them: a node is listed as soon
    as the last branch of the backward pass that feeds it is done (so counts after counts_sum)."""
    pending = {name: len(branches) for name, branches in consumers(tape).items()}
    order: list[str] = []
    for step in reversed(tape):
        for name in step.inputs:
            pending[name] -= 1
            if pending[name] == 0:
                order.append(name)
    return tuple(order)


def graph_edges(tape: tuple[Step, ...] = MLP_TAPE) -> list[tuple[str, str]]:
    """Forward edges (input -> output), including Xb/Yb, which carry no gradient."""
    edges: list[tuple[str, str]] = []
    for step in tape:
        for name in step.inputs:
            edges.append((name, step.out))
    edges.insert(0, ("Xb", "emb"))
    edges.append(("Yb", "loss"))
    return edges


def resolve(name: str, tape: tuple[Step, ...] = MLP_TAPE) -> str | None:
    """A node name as a user may type it (with the seed notebook's aliases), or None if unknown."""
    name = ALIASES.get(name, name)
    known = {s.out for s in tape} | set(PARAMS)
    return name if name in known else None


def node_formula(name: str, variant: str = "chain", tape: tuple[Step, ...] = MLP_TAPE) -> str:
    """The whole reference solution for d<name>: its branches in the order backward meets them."""
    if variant == "fused":
        for block in FUSED_BLOCKS:
            if block.wrt == name:
                return block.formula
    return "\n".join(grad.formula for _, grad in consumers(tape).get(name, []))


def node_notes(name: str, variant: str = "chain", tape: tuple[Step, ...] = MLP_TAPE) -> list[str]:
    if variant == "fused":
        for block in FUSED_BLOCKS:
            if block.wrt == name:
                return [block.note]
    return [grad.note for _, grad in consumers(tape).get(name, []) if grad.note]


def exercise_cell(tape: tuple[Step, ...] = MLP_TAPE) -> str:
    """The whole of lecture exercise 1 as one notebook cell: every formula in backward order."""
    lines = []
    for step in reversed(tape):
        for grad in step.grads:
            lines.append(grad.formula)
    return "\n".join(lines)
