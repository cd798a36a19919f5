"""The classic backward mistakes of standard operations, recognised from the tape's tags (`tape.Op`).

People who write a transformer's backward by hand report the same few mistakes again and again
(llm.c's issues and discussions, nanoGPT's, the lecture's comments): the softmax's backward with only
the diagonal s(1-s) of its Jacobian; the causal mask's -inf copied onto the gradient, or the wrong
triangle kept; the GELU derivative of the erf form for a tanh forward, or without its sech^2 term; a
layernorm's backward without its mean or its normalised-mean term, or with Bessel's n-1; the scale
1/sqrt(hs) forgotten; heads merged or split with a view where a transpose belongs; a residual's
gradient sent down one branch only.

For each tagged operation of the tape (`Tape.ops`) that reaches the learner's node, `candidates`
builds the whole gradient d<node> as each typical mistake would make it -- the operation's own branch
replaced by the wrong one, every other branch right (autograd's) -- and `op_findings` names the mistake
that yours is far nearer to than to autograd's answer. Nothing here names a node of a network: the
tags' roles do (the builders set them), and the operation kinds are the field's standard operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..i18n import Text, german, tr
from ..tape import GradFn, Op

if TYPE_CHECKING:
    from ..run import Run

# Yours is named by a mistake when it is at least 1/NEARER times nearer to it than to autograd's answer
# (in the 2-norm). Float32 rounding puts a right formula ~1e-7 (relative) from autograd's; the mistakes
# below differ from the right answer by 1e-5 (the erf GELU at GPT-2's initialisation) to 1 (relative).
NEARER = 0.05
GELU_SCALING = math.sqrt(2 / math.pi)
GELU_CUBE = 0.044715

german({
    # softmax
    "the softmax's backward is only the diagonal of its Jacobian, {out} * (1 - {out}) * d{out}: the row-sum term "
    "is missing. Every output of a row depends on every input of that row (they share one normaliser), so "
    "d{x} = {out} * (d{out} - ({out} * d{out}).sum({dim}, keepdim=True))":
        "der Rückwärtsschritt der Softmax ist nur die Diagonale ihrer Jacobi-Matrix, {out} * (1 - {out}) * d{out}: "
        "der Zeilensummen-Term fehlt. Jede Ausgabe einer Zeile hängt von jeder Eingabe dieser Zeile ab (sie teilen "
        "sich einen Normierer), also d{x} = {out} * (d{out} - ({out} * d{out}).sum({dim}, keepdim=True))",
    "the row sum of the softmax's backward runs over another dim than the softmax: it normalises over dim {dim}, "
    "so the sum is ({out} * d{out}).sum({dim}, keepdim=True)":
        "die Zeilensumme im Rückwärtsschritt der Softmax läuft über eine andere Dimension als die Softmax: sie "
        "normiert über Dimension {dim}, also ist die Summe ({out} * d{out}).sum({dim}, keepdim=True)",
    # causal mask
    "your d{x} holds {count} non-finite entries, all where the mask hides an entry: the -inf belongs to the forward "
    "pass only (there it makes exp give 0). The forward replaced those entries by a constant, so their gradient is "
    "0: d{x} = d{out}.masked_fill({mask} == 0, 0), or simply d{out}, which is 0 there already":
        "dein d{x} hat {count} nicht endliche Einträge, alle dort, wo die Maske einen Eintrag verdeckt: das -inf "
        "gehört nur in den Vorwärtsschritt (dort macht es exp zu 0). Der Vorwärtsschritt hat diese Einträge durch "
        "eine Konstante ersetzt, also ist ihr Gradient 0: d{x} = d{out}.masked_fill({mask} == 0, 0), oder einfach "
        "d{out}, das dort schon 0 ist",
    "your d{x} keeps the wrong entries of d{out}: {which}. The forward hid the entries where {mask} is False, so "
    "exactly those get gradient 0: d{x} = d{out}.masked_fill({mask} == 0, 0) (leaving the mask out of the backward "
    "is right too, since d{out} is 0 there already)":
        "dein d{x} behält die falschen Einträge von d{out}: {which}. Der Vorwärtsschritt hat die Einträge verdeckt, "
        "wo {mask} False ist, also bekommen genau diese den Gradienten 0: d{x} = d{out}.masked_fill({mask} == 0, 0) "
        "(die Maske im Rückwärtsschritt wegzulassen ist auch richtig, denn d{out} ist dort schon 0)",
    "the upper triangle ({mask}.T or triu where {mask} belongs?)":
        "das obere Dreieck ({mask}.T oder triu, wo {mask} hingehört?)",
    "the diagonal is zeroed too ({mask}(-1), or < where <= belongs?): a position may look at itself":
        "die Diagonale wird auch auf 0 gesetzt ({mask}(-1), oder < statt <=?): eine Position darf sich selbst sehen",
    "at a causal mask, masked_fill({mask} == 1, 0) would do this: it zeroes exactly the entries that may look, and "
    "d{out} is 0 at the hidden ones already; == 0 belongs there":
        "bei einer kausalen Maske würde masked_fill({mask} == 1, 0) genau das tun: es setzt die Einträge auf 0, die "
        "sehen dürfen, und d{out} ist bei den verdeckten schon 0; == 0 gehört dorthin",
    # GELU
    "this is the derivative of the exact GELU, 0.5 * x * (1 + erf(x / sqrt(2))), but the forward computes the tanh "
    "approximation (GPT-2's and llm.c's): differentiate what the forward computes, d{x} = (0.5 * (1 + {t}) + "
    "0.5 * {x} * (1 - {t}**2) * sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2)) * d{out}":
        "das ist die Ableitung der exakten GELU, 0.5 * x * (1 + erf(x / sqrt(2))), aber der Vorwärtsschritt "
        "berechnet die tanh-Näherung (wie GPT-2 und llm.c): leite ab, was der Vorwärtsschritt berechnet, d{x} = "
        "(0.5 * (1 + {t}) + 0.5 * {x} * (1 - {t}**2) * sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2)) * d{out}",
    "the GELU's sech^2 term is missing: {t} depends on {x} too, d tanh(u)/dx = (1 - tanh(u)**2) * du/dx, so "
    "d{x} adds 0.5 * {x} * (1 - {t}**2) * sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2) * d{out}":
        "der sech^2-Term der GELU fehlt: {t} hängt auch von {x} ab, d tanh(u)/dx = (1 - tanh(u)**2) * du/dx, also "
        "kommt 0.5 * {x} * (1 - {t}**2) * sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2) * d{out} zu d{x} hinzu",
    "the GELU's inner derivative du/dx = sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2) is missing from the sech^2 term "
    "(the chain rule through u = sqrt(2/pi) * ({x} + 0.044715 * {x}**3))":
        "die innere Ableitung der GELU, du/dx = sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2), fehlt im sech^2-Term "
        "(die Kettenregel durch u = sqrt(2/pi) * ({x} + 0.044715 * {x}**3))",
    "the cube's part of the GELU's inner derivative is missing: u = sqrt(2/pi) * ({x} + 0.044715 * {x}**3), so "
    "du/dx = sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2), not sqrt(2/pi)":
        "der Anteil der dritten Potenz an der inneren Ableitung der GELU fehlt: u = sqrt(2/pi) * ({x} + 0.044715 * "
        "{x}**3), also du/dx = sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2), nicht sqrt(2/pi)",
    # layernorm
    "the layernorm's backward misses its mean term: the mean the forward subtracts depends on every entry of the "
    "row, so d{x} also gets -dnorm.mean(-1, keepdim=True), with dnorm = {w} * d{out}: d{x} = {rstd} * (dnorm - "
    "dnorm.mean(-1, keepdim=True) - {norm} * (dnorm * {norm}).mean(-1, keepdim=True))":
        "dem Rückwärtsschritt der LayerNorm fehlt der Mittelwert-Term: der Mittelwert, den der Vorwärtsschritt "
        "abzieht, hängt von jedem Eintrag der Zeile ab, also bekommt d{x} auch -dnorm.mean(-1, keepdim=True), mit "
        "dnorm = {w} * d{out}: d{x} = {rstd} * (dnorm - dnorm.mean(-1, keepdim=True) - {norm} * (dnorm * "
        "{norm}).mean(-1, keepdim=True))",
    "the layernorm's backward misses its normalised-mean term -{norm} * (dnorm * {norm}).mean(-1, keepdim=True), "
    "with dnorm = {w} * d{out}: {rstd} depends on every entry of the row through the variance":
        "dem Rückwärtsschritt der LayerNorm fehlt der Term mit dem Mittel über norm, -{norm} * (dnorm * "
        "{norm}).mean(-1, keepdim=True), mit dnorm = {w} * d{out}: {rstd} hängt über die Varianz von jedem Eintrag "
        "der Zeile ab",
    "the layernorm's backward treats the mean and {rstd} as constants: both the mean term -dnorm.mean(-1, "
    "keepdim=True) and the normalised-mean term -{norm} * (dnorm * {norm}).mean(-1, keepdim=True) are missing "
    "(dnorm = {w} * d{out})":
        "der Rückwärtsschritt der LayerNorm behandelt den Mittelwert und {rstd} als Konstanten: sowohl der "
        "Mittelwert-Term -dnorm.mean(-1, keepdim=True) als auch der Term mit dem Mittel über norm, -{norm} * "
        "(dnorm * {norm}).mean(-1, keepdim=True), fehlen (dnorm = {w} * d{out})",
    "n-1 used where the forward divides by {count}: the layernorm's variance is biased ({var} = {diff2}.mean(-1), "
    "as in llm.c and torch.nn.LayerNorm), so its backward has 1/{count} = 1/{value}, not Bessel's 1/({count}-1)":
        "n-1 verwendet, wo der Vorwärtsschritt durch {count} teilt: die Varianz der LayerNorm ist verzerrt ({var} "
        "= {diff2}.mean(-1), wie in llm.c und torch.nn.LayerNorm), also hat ihr Rückwärtsschritt 1/{count} = "
        "1/{value}, nicht Bessels 1/({count}-1)",
    "the layernorm's gain {w} is missing: the gradient that reaches the normalised values is dnorm = {w} * d{out}":
        "die Verstärkung {w} der LayerNorm fehlt: der Gradient, der bei den normierten Werten ankommt, ist dnorm = "
        "{w} * d{out}",
    # scale
    "yours is sqrt({root}) = {inv:.4g} times autograd's: the factor {factor} = 1/sqrt({root}) of {out} = {x} * "
    "{factor} is missing. The gradient is multiplied by {factor} on its way back too: d{x} = d{out} * {factor}":
        "deins ist sqrt({root}) = {inv:.4g}-mal Autograds: der Faktor {factor} = 1/sqrt({root}) von {out} = {x} * "
        "{factor} fehlt. Auch der Gradient wird auf dem Rückweg mit {factor} multipliziert: d{x} = d{out} * {factor}",
    "yours is exactly {inv:g} times autograd's, sqrt({root}) with {root} = {value}: not a branch counted twice, but "
    "the factor {factor} = 1/sqrt({root}) of {out} = {x} * {factor} is missing. The gradient is multiplied by "
    "{factor} on its way back too: d{x} = d{out} * {factor}":
        "deins ist genau {inv:g}-mal Autograds, sqrt({root}) mit {root} = {value}: kein doppelt gezählter Zweig, "
        "sondern der Faktor {factor} = 1/sqrt({root}) von {out} = {x} * {factor} fehlt. Auch der Gradient wird auf "
        "dem Rückweg mit {factor} multipliziert: d{x} = d{out} * {factor}",
    "yours is {root} = {value} times autograd's: divided by the factor {factor} = 1/sqrt({root}) where {out} = {x} * "
    "{factor} multiplies by it: d{x} = d{out} * {factor}":
        "deins ist {root} = {value}-mal Autograds: durch den Faktor {factor} = 1/sqrt({root}) geteilt, wo {out} = "
        "{x} * {factor} mit ihm multipliziert: d{x} = d{out} * {factor}",
    "yours is 1/sqrt({root}) = {scale:.4g} times autograd's: the factor {factor} of {out} = {x} * {factor} is "
    "applied twice":
        "deins ist 1/sqrt({root}) = {scale:.4g}-mal Autograds: der Faktor {factor} von {out} = {x} * {factor} ist "
        "doppelt angewandt",
    # heads
    "d{x} puts the gradient of {outs} back with a view or reshape where a transpose belongs: the forward split the "
    "channels into heads and then swapped dims {i} and {j}, so the backward swaps them back before merging the "
    "heads: {formula}. A view alone gives the right shape with heads and time mixed":
        "d{x} legt den Gradienten von {outs} mit einem view oder reshape zurück, wo ein transpose hingehört: der "
        "Vorwärtsschritt hat die Kanäle in Köpfe geteilt und dann die Dimensionen {i} und {j} vertauscht, also "
        "vertauscht der Rückwärtsschritt sie zurück, bevor er die Köpfe zusammenführt: {formula}. Ein view allein "
        "ergibt die richtige Form mit vermischten Köpfen und Zeiten",
    "d{x} is d{out} viewed straight as {x}'s shape: the right shape with heads and time mixed. The forward swapped "
    "dims {i} and {j} before merging the heads, so the backward views d{out} the other way round and swaps them "
    "back: {formula}":
        "d{x} ist d{out}, direkt in die Form von {x} gebracht (view): die richtige Form mit vermischten Köpfen und "
        "Zeiten. Der Vorwärtsschritt hat die Dimensionen {i} und {j} vor dem Zusammenführen der Köpfe vertauscht, "
        "also bringt der Rückwärtsschritt d{out} in die umgekehrte Form und vertauscht sie zurück: {formula}",
    # residual
    "the residual connection's own branch is missing: {out} = {x} + {f} sends d{out} to both of its inputs "
    "unchanged, so d{x} gets all of d{out} (d{x} = d{out}.clone()) besides what comes back through {others} (+=)":
        "der eigene Zweig der Residualverbindung fehlt: {out} = {x} + {f} schickt d{out} unverändert an beide "
        "Eingaben, also bekommt d{x} ganz d{out} (d{x} = d{out}.clone()) zusätzlich zu dem, was über {others} "
        "zurückkommt (+=)",
    "your d{x} is only the residual branch d{out}: the gradient that comes back through {others} (+=) is missing. "
    "A residual connection adds the skip to the layer's path, it does not replace it":
        "dein d{x} ist nur der Residualzweig d{out}: der Gradient, der über {others} zurückkommt (+=), fehlt. Eine "
        "Residualverbindung fügt den direkten Weg zum Pfad durch die Schicht hinzu, sie ersetzt ihn nicht",
    "the residual connection's branch to {node} is halved: {out} = {x} + {f} copies d{out} to both of its inputs, "
    "it does not split it: d{node} gets all of d{out}":
        "der Zweig der Residualverbindung zu {node} ist halbiert: {out} = {x} + {f} kopiert d{out} an beide "
        "Eingaben, es teilt ihn nicht auf: d{node} bekommt ganz d{out}",
})


@dataclass(frozen=True)
class Mistake:
    wrong: torch.Tensor  # the whole d<node> as the mistake makes it (float64), every other branch right
    sentence: Text


Maker = Callable[[Op, str, torch.Tensor, "Run"], Iterator[Mistake]]


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64)


def _value(run: Run, name: str) -> torch.Tensor:
    return _f64(run.values[name])


def _grad(run: Run, name: str) -> torch.Tensor | None:
    g = run.autograd.get(name)
    return _f64(g) if isinstance(g, torch.Tensor) else None


def _others(run: Run, node: str, besides: set[str]) -> list[str]:
    """The steps besides `besides` that send `node` gradient (the other branches of its sum)."""
    return [step.out for step, _ in run.tape.consumers.get(node, []) if step.out not in besides]


# ---- one maker per kind of operation ----------------------------------------------------------------

def _softmax(op: Op, node: str, expected: torch.Tensor, run: Run) -> Iterator[Mistake]:
    x, out, dim = op["x"], op["out"], op.get("dim", "-1")
    s, ds = _value(run, out), _grad(run, out)
    if node != x or ds is None:
        return
    d = int(dim)
    right = s * (ds - (s * ds).sum(d, keepdim=True))
    yield Mistake(expected - right + s * (1 - s) * ds, tr(
        "the softmax's backward is only the diagonal of its Jacobian, {out} * (1 - {out}) * d{out}: the row-sum term "
        "is missing. Every output of a row depends on every input of that row (they share one normaliser), so "
        "d{x} = {out} * (d{out} - ({out} * d{out}).sum({dim}, keepdim=True))", out=out, x=x, dim=dim))
    if s.dim() >= 2:
        other = -2 if d in (-1, s.dim() - 1) else -1
        yield Mistake(expected - right + s * (ds - (s * ds).sum(other, keepdim=True)), tr(
            "the row sum of the softmax's backward runs over another dim than the softmax: it normalises over dim "
            "{dim}, so the sum is ({out} * d{out}).sum({dim}, keepdim=True)", out=out, dim=dim))


def _keep(run: Run, op: Op) -> torch.Tensor | None:
    keep = run.constants.get(op["mask"])
    return keep if isinstance(keep, torch.Tensor) and keep.dtype == torch.bool else None


def _causal_mask(op: Op, node: str, expected: torch.Tensor, run: Run) -> Iterator[Mistake]:
    x, out, mask = op["x"], op["out"], op["mask"]
    keep, d = _keep(run, op), _grad(run, out)
    if node != x or keep is None or d is None or keep.dim() != 2 or keep.shape[0] != keep.shape[1]:
        return
    right = d.masked_fill(~keep, 0)
    eye = torch.eye(keep.shape[0], dtype=torch.bool, device=keep.device)
    for kept, which in ((keep.T, tr("the upper triangle ({mask}.T or triu where {mask} belongs?)", mask=mask)),
                        (keep & ~eye, tr("the diagonal is zeroed too ({mask}(-1), or < where <= belongs?): a position "
                                         "may look at itself", mask=mask))):
        yield Mistake(expected - right + d.masked_fill(~kept, 0), tr(
            "your d{x} keeps the wrong entries of d{out}: {which}. The forward hid the entries where {mask} is False, "
            "so exactly those get gradient 0: d{x} = d{out}.masked_fill({mask} == 0, 0) (leaving the mask out of the "
            "backward is right too, since d{out} is 0 there already)", x=x, out=out, which=which, mask=mask))


def _gelu_tanh(op: Op, node: str, expected: torch.Tensor, run: Run) -> Iterator[Mistake]:
    x, out, th = op["x"], op["out"], op["tanh"]
    d = _grad(run, out)
    if node != x or d is None:
        return
    xv, t = _value(run, x), _value(run, th)
    sech2 = 1 - t**2
    inner = GELU_SCALING * (1 + 3 * GELU_CUBE * xv**2)
    right = (0.5 * (1 + t) + 0.5 * xv * sech2 * inner) * d
    erf = 0.5 * (1 + torch.erf(xv / math.sqrt(2))) + xv * torch.exp(-0.5 * xv**2) / math.sqrt(2 * math.pi)
    for local, sentence in (
        (erf, tr("this is the derivative of the exact GELU, 0.5 * x * (1 + erf(x / sqrt(2))), but the forward computes "
                 "the tanh approximation (GPT-2's and llm.c's): differentiate what the forward computes, d{x} = (0.5 * "
                 "(1 + {t}) + 0.5 * {x} * (1 - {t}**2) * sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2)) * d{out}",
                 x=x, t=th, out=out)),
        (0.5 * (1 + t), tr("the GELU's sech^2 term is missing: {t} depends on {x} too, d tanh(u)/dx = (1 - "
                           "tanh(u)**2) * du/dx, so d{x} adds 0.5 * {x} * (1 - {t}**2) * sqrt(2/pi) * (1 + 3 * 0.044715 "
                           "* {x}**2) * d{out}", x=x, t=th, out=out)),
        (0.5 * (1 + t) + 0.5 * xv * sech2, tr(
            "the GELU's inner derivative du/dx = sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2) is missing from the sech^2 "
            "term (the chain rule through u = sqrt(2/pi) * ({x} + 0.044715 * {x}**3))", x=x)),
        (0.5 * (1 + t) + 0.5 * xv * sech2 * GELU_SCALING, tr(
            "the cube's part of the GELU's inner derivative is missing: u = sqrt(2/pi) * ({x} + 0.044715 * {x}**3), "
            "so du/dx = sqrt(2/pi) * (1 + 3 * 0.044715 * {x}**2), not sqrt(2/pi)", x=x)),
    ):
        yield Mistake(expected - right + local * d, sentence)


def _layernorm(op: Op, node: str, expected: torch.Tensor, run: Run) -> Iterator[Mistake]:
    x, out, w, norm, rstd, count = op["x"], op["out"], op["w"], op["norm"], op["rstd"], op.get("count", "C")
    d = _grad(run, out)
    if d is None:
        return
    C = run.values[x].shape[-1]
    if node == op.get("diff2"):  # the chain's variance step: var = diff2.mean(-1), so ddiff2 = dvar / C
        dvar = _grad(run, op["var"])
        if dvar is not None and C > 1:
            right = (dvar / C).expand_as(expected)
            yield Mistake(expected - right + (dvar / (C - 1)).expand_as(expected), _bessel(op, count, C))
        return
    if node != x:
        return
    nv, r = _value(run, norm), _value(run, rstd)

    def backward(dn: torch.Tensor, mean: bool = True, normed: bool = True, bessel: float = 1.0) -> torch.Tensor:
        dx = dn.clone()
        if mean:
            dx = dx - dn.mean(-1, keepdim=True)
        if normed:
            dx = dx - bessel * nv * (dn * nv).mean(-1, keepdim=True)
        return r * dx

    dn = _value(run, w) * d
    right = backward(dn)
    names = {"x": x, "out": out, "w": w, "norm": norm, "rstd": rstd}
    yield Mistake(expected - right + backward(dn, mean=False), tr(
        "the layernorm's backward misses its mean term: the mean the forward subtracts depends on every entry of the "
        "row, so d{x} also gets -dnorm.mean(-1, keepdim=True), with dnorm = {w} * d{out}: d{x} = {rstd} * (dnorm - "
        "dnorm.mean(-1, keepdim=True) - {norm} * (dnorm * {norm}).mean(-1, keepdim=True))", **names))
    yield Mistake(expected - right + backward(dn, normed=False), tr(
        "the layernorm's backward misses its normalised-mean term -{norm} * (dnorm * {norm}).mean(-1, keepdim=True), "
        "with dnorm = {w} * d{out}: {rstd} depends on every entry of the row through the variance", **names))
    yield Mistake(expected - right + backward(dn, mean=False, normed=False), tr(
        "the layernorm's backward treats the mean and {rstd} as constants: both the mean term -dnorm.mean(-1, "
        "keepdim=True) and the normalised-mean term -{norm} * (dnorm * {norm}).mean(-1, keepdim=True) are missing "
        "(dnorm = {w} * d{out})", **names))
    if C > 1:
        yield Mistake(expected - right + backward(dn, bessel=C / (C - 1)), _bessel(op, count, C))
    yield Mistake(expected - right + backward(d), tr(
        "the layernorm's gain {w} is missing: the gradient that reaches the normalised values is dnorm = {w} * d{out}",
        w=w, out=out))


def _bessel(op: Op, count: str, C: int) -> Text:
    return tr("n-1 used where the forward divides by {count}: the layernorm's variance is biased ({var} = "
              "{diff2}.mean(-1), as in llm.c and torch.nn.LayerNorm), so its backward has 1/{count} = 1/{value}, not "
              "Bessel's 1/({count}-1)", count=count, var=op.get("var", "var"), diff2=op.get("diff2", "diff2"), value=C)


def _funnels(run: Run, node: str, through: str) -> bool:
    """Whether every path from `node` to the loss passes through the node `through`: then d<node> is
    linear in d<through> alone, and a constant factor there is the same factor here."""
    seen: dict[str, bool] = {}

    def walk(name: str) -> bool:
        if name == through:
            return True
        if name not in seen:
            seen[name] = False  # a cycle cannot occur on a tape; this only stops repeated work
            outs = [step.out for step, _ in run.tape.consumers.get(name, [])]
            seen[name] = bool(outs) and all(walk(o) for o in outs)
        return seen[name]

    return walk(node)


def _scale(op: Op, node: str, expected: torch.Tensor, run: Run) -> Iterator[Mistake]:
    x, out, factor, root = op["x"], op["out"], op["factor"], op["root"]
    scale, size = run.constants.get(factor), run.constants.get(root)
    if not isinstance(scale, float) or not isinstance(size, int) or abs(scale - 1) < 1e-6:
        return
    if node == out or not _funnels(run, node, out):  # a factor is the scale's only where all of d<node> passes it
        return
    inv = 1 / scale
    names = {"x": x, "out": out, "factor": factor, "root": root, "value": size}
    if abs(inv - round(inv)) < 1e-9:
        forgot = tr("yours is exactly {inv:g} times autograd's, sqrt({root}) with {root} = {value}: not a branch counted "
                    "twice, but the factor {factor} = 1/sqrt({root}) of {out} = {x} * {factor} is missing. The gradient "
                    "is multiplied by {factor} on its way back too: d{x} = d{out} * {factor}", inv=round(inv), **names)
    else:
        forgot = tr("yours is sqrt({root}) = {inv:.4g} times autograd's: the factor {factor} = 1/sqrt({root}) of {out} = "
                    "{x} * {factor} is missing. The gradient is multiplied by {factor} on its way back too: d{x} = "
                    "d{out} * {factor}", inv=inv, **names)
    yield Mistake(expected * inv, forgot)
    yield Mistake(expected * inv**2, tr(
        "yours is {root} = {value} times autograd's: divided by the factor {factor} = 1/sqrt({root}) where {out} = {x} * "
        "{factor} multiplies by it: d{x} = d{out} * {factor}", **names))
    yield Mistake(expected * scale, tr(
        "yours is 1/sqrt({root}) = {scale:.4g} times autograd's: the factor {factor} of {out} = {x} * {factor} is "
        "applied twice", scale=scale, **{k: v for k, v in names.items() if k != "value"}))


def _dims(op: Op) -> tuple[int, int]:
    i, j = (int(part) for part in op.get("dims", "1,2").split(","))
    return i, j


def _branch(run: Run, op: Op) -> tuple[torch.Tensor, GradFn] | None:
    """(d<out>, the step's compute for its branch to x) of a tagged step, or None."""
    step = run.tape.producers.get(op["out"])
    d = run.autograd.get(op["out"])
    grad = next((g for g in step.grads if g.wrt == op["x"]), None) if step is not None else None
    if grad is None or not isinstance(d, torch.Tensor):
        return None
    return d, grad.compute


def _formula(run: Run, op: Op) -> str:
    """The reference formula of the op's branch to x, its last line (the one that does the work)."""
    step = run.tape.producers[op["out"]]
    grad = next(g for g in step.grads if g.wrt == op["x"])
    return grad.formula.splitlines()[-1]


def _split_heads(run: Run, node: str, expected: torch.Tensor) -> Iterator[Mistake]:
    """Every split of `node` into heads at once: each branch put back without its transpose."""
    ops = [op for op in run.tape.ops if op.kind == "split_heads" and op["x"] == node]
    if not ops:
        return
    rights, wrongs, outs = [], [], []
    for op in ops:
        found = _branch(run, op)
        if found is None:
            return
        d, compute = found
        i, j = _dims(op)
        shape = list(d.shape)
        shape[i], shape[j] = shape[j], shape[i]
        with torch.no_grad():
            rights.append(_f64(compute(run.values, d)))
            wrongs.append(_f64(compute(run.values, d.reshape(shape).transpose(i, j))))  # d viewed, not transposed back
        outs.append(op["out"])
    i, j = _dims(ops[0])
    formula = _formula(run, ops[0])
    whole = expected - sum(rights, torch.zeros_like(expected)) + sum(wrongs, torch.zeros_like(expected))
    yield Mistake(whole, tr("d{x} puts the gradient of {outs} back with a view or reshape where a transpose belongs: the "
                            "forward split the channels into heads and then swapped dims {i} and {j}, so the backward "
                            "swaps them back before merging the heads: {formula}. A view alone gives the right shape "
                            "with heads and time mixed", x=node, outs=", ".join(outs), i=i, j=j, formula=formula))
    if len(ops) > 1:
        for op, right, wrong in zip(ops, rights, wrongs, strict=True):
            yield Mistake(expected - right + wrong, tr(
                "d{x} puts the gradient of {outs} back with a view or reshape where a transpose belongs: the forward "
                "split the channels into heads and then swapped dims {i} and {j}, so the backward swaps them back "
                "before merging the heads: {formula}. A view alone gives the right shape with heads and time mixed",
                x=node, outs=op["out"], i=i, j=j, formula=_formula(run, op)))


def _merge_heads(op: Op, node: str, expected: torch.Tensor, run: Run) -> Iterator[Mistake]:
    x, out = op["x"], op["out"]
    found = _branch(run, op)
    if node != x or found is None:
        return
    d, compute = found
    i, j = _dims(op)
    with torch.no_grad():
        right = _f64(compute(run.values, d))
    yield Mistake(expected - right + _f64(d.reshape(run.values[x].shape)), tr(
        "d{x} is d{out} viewed straight as {x}'s shape: the right shape with heads and time mixed. The forward swapped "
        "dims {i} and {j} before merging the heads, so the backward views d{out} the other way round and swaps them "
        "back: {formula}", x=x, out=out, i=i, j=j, formula=_formula(run, op)))


def _residual(op: Op, node: str, expected: torch.Tensor, run: Run) -> Iterator[Mistake]:
    x, f, out = op["x"], op["f"], op["out"]
    d = _grad(run, out)
    if node not in (x, f) or d is None or x == f:
        return
    names = {"x": x, "f": f, "out": out}
    others = _others(run, node, {out})
    if node == x and others:
        listed = ", ".join(others)
        yield Mistake(expected - d, tr(
            "the residual connection's own branch is missing: {out} = {x} + {f} sends d{out} to both of its inputs "
            "unchanged, so d{x} gets all of d{out} (d{x} = d{out}.clone()) besides what comes back through {others} "
            "(+=)", others=listed, **names))
        yield Mistake(d.expand_as(expected), tr(
            "your d{x} is only the residual branch d{out}: the gradient that comes back through {others} (+=) is "
            "missing. A residual connection adds the skip to the layer's path, it does not replace it",
            others=listed, **names))
    yield Mistake(expected - 0.5 * d, tr(
        "the residual connection's branch to {node} is halved: {out} = {x} + {f} copies d{out} to both of its inputs, "
        "it does not split it: d{node} gets all of d{out}", node=node, **names))


MAKERS: dict[str, Maker] = {"softmax": _softmax, "causal_mask": _causal_mask, "gelu_tanh": _gelu_tanh,
                            "layernorm": _layernorm, "scale": _scale, "merge_heads": _merge_heads, "residual": _residual}


def candidates(node: str, expected: torch.Tensor, run: Run) -> list[Mistake]:
    """Every typical mistake of every tagged operation that reaches `node`, as the whole d<node> it makes."""
    e = _f64(expected)
    found: list[Mistake] = list(_split_heads(run, node, e))
    with torch.no_grad():
        for op in run.tape.ops:
            maker = MAKERS.get(op.kind)
            if maker is not None:
                found.extend(m for m in maker(op, node, e, run) if tuple(m.wrong.shape) == tuple(e.shape))
    return found


def op_findings(node: str, yours: torch.Tensor, expected: torch.Tensor, run: Run) -> list[Text]:
    """The typical mistake yours is (far) nearer to than to autograd's answer, named; [] when none is."""
    if yours.shape != expected.shape or not bool(torch.isfinite(yours).all()):
        return []
    y, e = _f64(yours), _f64(expected)
    off = float(torch.linalg.vector_norm(y - e))
    if off == 0.0:
        return []
    best: tuple[float, Text] | None = None
    for mistake in candidates(node, expected, run):
        near = float(torch.linalg.vector_norm(y - mistake.wrong))
        if near <= NEARER * off and (best is None or near < best[0]):
            best = (near, mistake.sentence)
    return [best[1]] if best is not None else []


def nonfinite_findings(node: str, yours: torch.Tensor, run: Run) -> list[Text]:
    """A causal mask's -inf carried into the gradient: every non-finite entry of yours is one the mask hides."""
    bad = ~torch.isfinite(yours)
    for op in run.tape.ops:
        if op.kind != "causal_mask" or op["x"] != node:
            continue
        keep = _keep(run, op)
        if keep is None:
            continue
        try:
            hidden = (~keep).expand_as(yours)
        except RuntimeError:
            continue
        if bool(bad.any()) and not bool((bad & ~hidden).any()):
            return [tr("your d{x} holds {count} non-finite entries, all where the mask hides an entry: the -inf belongs "
                       "to the forward pass only (there it makes exp give 0). The forward replaced those entries by a "
                       "constant, so their gradient is 0: d{x} = d{out}.masked_fill({mask} == 0, 0), or simply d{out}, "
                       "which is 0 there already", x=node, count=int(bad.sum()), out=op["out"], mask=op["mask"])]
    return []


def zero_findings(node: str, run: Run) -> list[Text]:
    """All zeros at a causal mask's input: what zeroing the wrong entries there does."""
    return [tr("at a causal mask, masked_fill({mask} == 1, 0) would do this: it zeroes exactly the entries that may "
               "look, and d{out} is 0 at the hidden ones already; == 0 belongs there", mask=op["mask"], out=op["out"])
            for op in run.tape.ops if op.kind == "causal_mask" and op["x"] == node]
