"""Say in plain words what is wrong with a learner's gradient, for the mistakes learners really make.

Each check compares the learner's tensor ("yours") with autograd's ("expected") and returns
sentences; `diagnose` runs them in order of how much they explain: not a tensor, NaN/Inf (a causal
mask's -inf carried into the gradient), wrong shape (with the broadcasting reason, naming the
network's dimensions: batch, time, ...; two dims swapped), all zeros, a write through repeated
indices, sign, transposed or two dims swapped, the classic backward mistakes of a tagged standard
operation (ops.py: softmax, causal mask, GELU, layernorm, the scale 1/sqrt(hs), heads, residual),
the local derivative without the upstream gradient (the chain rule forgotten), a constant factor
(named: n, 1/n, n-1, n1/n, 2, ...; among equal counts, the one of the dims the forward reduces),
one accumulation branch missing or doubled, and where the entries differ. A wrong answer that
llm.c's absolute 2e-2 would pass gets one more line: how far above rounding it is.

Every sentence is a `Text` (ninja_core.i18n): English as a str, German on `localize(..., "de")`.
The network is known only through `run.tape` and `run.net` (axes, constant_axes): nothing here
names a node of one network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..compare import ATOL, LLMC, RTOL, Comparison, standard_passes
from ..i18n import Text, german, has_german, tr
from .ops import nonfinite_findings, op_findings, zero_findings
from .trace import Event, OneHotWidth, RepeatedIndex

if TYPE_CHECKING:
    from ..run import Run

Shape = tuple[int, ...]
CHUNK = 1 << 16
LOOSE = 1e-4  # relative tolerance for "yours is this transformation of autograd's": float32 noise passes

german({
    # dimensions as networks name them (Network.axes)
    "batch": "Batch", "time": "Zeit", "channel": "Kanal", "head": "Kopf", "vocabulary": "Vokabular",
    "head channel": "Kopfkanal", "query time": "Abfragezeit", "key time": "Schlüsselzeit", "token": "Token",
    "output channel": "Ausgabekanal", "input channel": "Eingabekanal", "position (batch·time)": "Position (Batch·Zeit)",
    # dims swapped (heads and time)
    "{got} should be {want}: dims {dims} are swapped: yours.transpose({i}, {j}) matches autograd's (a transpose is "
    "missing; a view or reshape would give the right shape with the wrong entries)":
        "{got} sollte {want} sein: die Dimensionen {dims} sind vertauscht: deins.transpose({i}, {j}) stimmt mit "
        "Autograds überein (ein transpose fehlt; ein view oder reshape würde die richtige Form mit falschen Einträgen ergeben)",
    "dims {dims} are swapped: yours.transpose({i}, {j}) matches autograd's (the same shape here, since both dims "
    "have {size} entries)":
        "die Dimensionen {dims} sind vertauscht: deins.transpose({i}, {j}) stimmt mit Autograds überein (hier "
        "dieselbe Form, weil beide Dimensionen {size} Einträge haben)",
    # far above rounding
    "{standard}'s check (|yours - autograd's| <= {atol:g}) would pass this, but only because these gradients are "
    "small (largest |entry| {largest:.2g}): the largest difference, {maxdiff:.2g}, is {ratio:,.0f} times {dtype}'s "
    "rounding at that size ({ulp:.1g}), far above rounding: a wrong formula, which small shapes make visible":
        "die Prüfung von {standard} (|deins - Autograds| <= {atol:g}) würde das durchgehen lassen, aber nur, weil "
        "diese Gradienten klein sind (größter |Eintrag| {largest:.2g}): die größte Abweichung, {maxdiff:.2g}, ist "
        "{ratio:,.0f}-mal die Rundung von {dtype} bei dieser Größe ({ulp:.1g}), weit über Rundung: eine falsche "
        "Formel, die kleine Formen sichtbar machen",
    "approx, yet nearer to a typical mistake than to autograd's answer: {finding}":
        "approx, aber näher an einem typischen Fehler als an Autograds Antwort: {finding}",
    "{dims} ({names})": "{dims} ({names})",
    # shapes
    "{got} should be {want}: yours is a single number; summed over too many dims?":
        "{got} sollte {want} sein: deins ist eine einzelne Zahl; über zu viele Dimensionen summiert?",
    "{got} should be {want}: transposed": "{got} sollte {want} sein: transponiert",
    "{got} should be {want}: keepdim=True is missing (the sum over dim {dim} dropped that dimension)":
        "{got} sollte {want} sein: keepdim=True fehlt (die Summe über Dimension {dim} hat diese Dimension entfernt)",
    "{got} should be {want}: dim {missing} is missing from your reduction: reduce over dims {dims} with "
    "keepdim=True, as the forward pass does":
        "{got} sollte {want} sein: Dimension {missing} fehlt in deiner Reduktion: reduziere über die Dimensionen "
        "{dims} mit keepdim=True, wie es der Vorwärtsschritt tut",
    "{got} should be {want}: sum over dim {dims} with keepdim=True":
        "{got} sollte {want} sein: summiere über Dimension {dims} mit keepdim=True",
    "{got} should be {want}: d{node} needs one entry per entry of {node}; broadcast yours over dim {dims} "
    "(e.g. multiply by torch.ones_like({node}))":
        "{got} sollte {want} sein: d{node} braucht einen Eintrag pro Eintrag von {node}; broadcaste deins über "
        "Dimension {dims} (z. B. mal torch.ones_like({node}))",
    "{got} should be {want}: an extra leading dimension of size 1 (from [None] or unsqueeze?)":
        "{got} sollte {want} sein: eine zusätzliche führende Dimension der Größe 1 (von [None] oder unsqueeze?)",
    "{got} should be {want}: sum over dim {dims} (without keepdim)":
        "{got} sollte {want} sein: summiere über Dimension {dims} (ohne keepdim)",
    "{got} should be {want}: d{node} needs one entry per entry of {node}; broadcast yours over the leading dims":
        "{got} sollte {want} sein: d{node} braucht einen Eintrag pro Eintrag von {node}; broadcaste deins über "
        "die führenden Dimensionen",
    "{got} should be {want}: the same number of entries in another shape (.view({view}))":
        "{got} sollte {want} sein: dieselbe Anzahl Einträge in anderer Form (.view({view}))",
    "{got} should be {want}: a gradient always has the shape of its tensor":
        "{got} sollte {want} sein: ein Gradient hat immer die Form seines Tensors",
    "{got} should be {want}: your sum leaves out dim {missing} of d{out}: sum over dims {dims}, all the dims the "
    "forward pass broadcasts {node} over":
        "{got} sollte {want} sein: deine Summe lässt Dimension {missing} von d{out} aus: summiere über die "
        "Dimensionen {dims}, alle Dimensionen, über die der Vorwärtsschritt {node} broadcastet",
    "1/({small}-1) used where 1/({big}-1) belongs?": "1/({small}-1) verwendet, wo 1/({big}-1) hingehört?",
    "the values are right: yours.T matches autograd": "die Werte stimmen: deins.T stimmt mit Autograd überein",
    "the values are right: only the shape is wrong": "die Werte stimmen: nur die Form ist falsch",
    "summing yours over dim {dims} (keepdim=True) would match autograd":
        "deins über Dimension {dims} summiert (keepdim=True) würde mit Autograd übereinstimmen",
    "summing yours over dim 0 would match autograd": "deins über Dimension 0 summiert würde mit Autograd übereinstimmen",
    "line {line}, column {col}: F.one_hot without num_classes makes as many columns as the largest index in "
    "this batch + 1 ({width} here, {want} needed): pass num_classes={want}":
        "Zeile {line}, Spalte {col}: F.one_hot ohne num_classes macht so viele Spalten wie der größte Index in "
        "diesem Batch + 1 ({width} hier, {want} nötig): gib num_classes={want} an",
    # factors
    "did you forget 1/{c}?": "1/{c} vergessen?",
    "divided by {c} once too often?": "einmal zu oft durch {c} geteilt?",
    "1/({c}-1) used where 1/{c} belongs: the mean divides by {c}, the variance (Bessel) by {c}-1":
        "1/({c}-1) verwendet, wo 1/{c} hingehört: der Mittelwert teilt durch {c}, die Varianz (Bessel) durch {c}-1",
    "1/{c} used where 1/({c}-1) belongs: the variance (Bessel) divides by {c}-1, the mean by {c}":
        "1/{c} verwendet, wo 1/({c}-1) hingehört: die Varianz (Bessel) teilt durch {c}-1, der Mittelwert durch {c}",
    "did you forget 1/({c}-1)?": "1/({c}-1) vergessen?",
    "divided by {c}-1 once too often?": "einmal zu oft durch {c}-1 geteilt?",
    "1/{small} used where 1/{big} belongs?": "1/{small} verwendet, wo 1/{big} hingehört?",
    "1/{small} used where 1/{big} belongs: {big} counts {big_axes}, {small} only {small_axes}: the {missing} "
    "dimension is left out":
        "1/{small} verwendet, wo 1/{big} hingehört: {big} zählt {big_axes}, {small} nur {small_axes}: die "
        "Dimension {missing} fehlt",
    "an extra factor 2, or one branch counted twice?": "ein zusätzlicher Faktor 2, oder ein Zweig doppelt gezählt?",
    "the 2 of d(x**2)/dx = 2*x is missing?": "fehlt die 2 aus d(x**2)/dx = 2*x?",
    "the sign is flipped": "das Vorzeichen ist vertauscht",
    "the sign is flipped and {rest}": "das Vorzeichen ist vertauscht und {rest}",
    "off by a factor of {name}: {hint}": "um den Faktor {name} daneben: {hint}",
    "off by a constant factor: yours ≈ {c:.4g} × autograd's": "um einen konstanten Faktor daneben: deins ≈ {c:.4g} × Autograds",
    # where
    "matches on {share}% of the entries ({good} of {total}); {bad} differ":
        "stimmt bei {share}% der Einträge ({good} von {total}); {bad} weichen ab",
    "matches on {share}% of the entries ({good} of {total}); 1 differs":
        "stimmt bei {share}% der Einträge ({good} von {total}); 1 weicht ab",
    "{head}: at {where}": "{head}: bei {where}",
    "{head}: entries {where}": "{head}: Einträge {where}",
    "{head}: whole rows {where}": "{head}: ganze Zeilen {where}",
    "{head}: whole columns {where}": "{head}: ganze Spalten {where}",
    "{head}: exactly one entry in every row (columns {where})": "{head}: genau ein Eintrag in jeder Zeile (Spalten {where})",
    "{head}, all in columns {where}": "{head}, alle in den Spalten {where}",
    "{head}, all in rows {where}": "{head}, alle in den Zeilen {where}",
    "{text}: a missing accumulation branch (+=)?": "{text}: fehlt ein Akkumulationszweig (+=)?",
    "{head}, e.g. at {where}": "{head}, z. B. bei {where}",
    "{shown}, … ({total} in all)": "{shown}, … ({total} insgesamt)",
    "differs at {bad} of {total} entries: maxdiff {maxdiff:.3g}, relative error {relerr:.2g}":
        "weicht bei {bad} von {total} Einträgen ab: maxdiff {maxdiff:.3g}, relativer Fehler {relerr:.2g}",
    # branches
    "matches the branch from {others} only; the branch from {source} (+=) is missing":
        "stimmt nur mit dem Zweig von {others} überein; der Zweig von {source} (+=) fehlt",
    "matches the branches from {others} only; the branch from {source} (+=) is missing":
        "stimmt nur mit den Zweigen von {others} überein; der Zweig von {source} (+=) fehlt",
    "the branch from {source} is counted twice": "der Zweig von {source} ist doppelt gezählt",
    "the branch from {source} has its sign flipped (-= where += belongs?)":
        "der Zweig von {source} hat das falsche Vorzeichen (-= statt +=?)",
    "the branch from {source} is {factor}": "der Zweig von {source} ist {factor}",
    # the chain rule
    "your d{node} is the local derivative alone: multiply it by {upstream} (the chain rule)":
        "dein d{node} ist nur die lokale Ableitung: multipliziere sie mit {upstream} (Kettenregel)",
    "your d{node} is the local derivative of the branch from {source} alone: multiply it by d{source} "
    "(the chain rule)":
        "dein d{node} ist nur die lokale Ableitung des Zweigs von {source}: multipliziere sie mit d{source} "
        "(Kettenregel)",
    # repeated indices
    "line {line}: {target}[...] {how} with repeated indices keeps only one contribution per index: {rows} occur "
    "several times in the index, so each gets one update instead of one per occurrence; use "
    "{target}.index_add_(...), {target}.index_put_(..., accumulate=True) or the lecture's loop":
        "Zeile {line}: {target}[...] {how} mit wiederholten Indizes behält nur einen Beitrag pro Index: {rows} "
        "kommen mehrfach im Index vor und bekommen so nur eine Aktualisierung statt einer pro Vorkommen; nimm "
        "{target}.index_add_(...), {target}.index_put_(..., accumulate=True) oder die Schleife der Vorlesung",
    "line {line}: {target}.index_put_ without accumulate=True keeps only one contribution per repeated index: "
    "{rows} occur several times; pass accumulate=True or use {target}.index_add_(...)":
        "Zeile {line}: {target}.index_put_ ohne accumulate=True behält nur einen Beitrag pro wiederholtem Index: "
        "{rows} kommen mehrfach vor; gib accumulate=True an oder nimm {target}.index_add_(...)",
    "rows {rows}": "die Zeilen {rows}",
    "rows {rows} (characters {chars})": "die Zeilen {rows} (Zeichen {chars})",
    "entries {rows}": "die Einträge {rows}",
    # everything else
    "your answer is a {kind}, not a tensor of shape {want}": "deine Antwort ist ein {kind}, kein Tensor der Form {want}",
    "yours is {dtype}, autograd's {expected} (compared after converting yours)":
        "deins ist {dtype}, Autograds {expected} (verglichen nach Umwandlung von deinem)",
    "{nans} NaN and {infs} ±Inf entries, at {where}: a log of 0, a division by 0 or an overflow?":
        "{nans} NaN- und {infs} ±Inf-Einträge, bei {where}: ein Logarithmus von 0, eine Division durch 0 oder ein "
        "Überlauf?",
    "all zeros, where autograd's is not: was the gradient never written (torch.zeros_like and nothing added), or "
    "multiplied by something that is 0?":
        "lauter Nullen, wo Autograds es nicht ist: wurde der Gradient nie geschrieben (torch.zeros_like und nichts "
        "addiert) oder mit etwas multipliziert, das 0 ist?",
    "the sign is flipped: yours ≈ -autograd's (check the minus signs, e.g. d(a - b)/db = -1)":
        "das Vorzeichen ist vertauscht: deins ≈ -Autograds (prüfe die Minuszeichen, z. B. d(a - b)/db = -1)",
    "transposed: yours.T matches autograd's": "transponiert: deins.T stimmt mit Autograds überein",
    "exact: bit for bit what autograd computed": "exakt: Bit für Bit, was Autograd berechnet hat",
    "rounding only: maxdiff {maxdiff:.1g}, {precision} order of operations":
        "nur Rundung: maxdiff {maxdiff:.1g}, Reihenfolge der Operationen in {precision}",
    "approx only because this gradient is tiny (largest |entry| {largest:.1g}), so any small numbers pass "
    "allclose; the relative error is {relerr:.2g}: check the formula (it may be right: a gradient that is zero in "
    "exact arithmetic is only rounding noise)":
        "approx nur, weil dieser Gradient winzig ist (größter |Eintrag| {largest:.1g}), so dass beliebige kleine "
        "Zahlen allclose bestehen; der relative Fehler ist {relerr:.2g}: prüfe die Formel (sie kann stimmen: ein "
        "Gradient, der exakt gerechnet 0 ist, ist nur Rundungsrauschen)",
})


def fmt(shape: Sequence[int]) -> str:
    return str(tuple(int(s) for s in shape))


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = LOOSE) -> bool:
    """a ≈ b up to float rounding, scaled by the size of b (so near-zero entries do not decide)."""
    if a.shape != b.shape:
        return False
    scale = float(b.abs().max()) if b.numel() else 0.0
    return bool(((a - b).abs() <= rtol * scale + ATOL).all()) if math.isfinite(scale) else False


def first_true(mask: torch.Tensor, limit: int) -> list[list[int]]:
    """Indices of the first `limit` True entries, scanning in chunks: mask.nonzero() would list
    all of them, up to millions of index rows for a learner's big tensor."""
    flat = mask.reshape(-1)
    found: list[list[int]] = []
    for start in range(0, flat.numel(), CHUNK):
        for offset in flat[start:start + CHUNK].nonzero().flatten()[: limit - len(found)].tolist():
            index, rest = [], start + offset
            for size in reversed(mask.shape):
                rest, i = divmod(rest, size)
                index.append(i)
            found.append(index[::-1])
        if len(found) >= limit:
            break
    return found


def positions(mask: torch.Tensor, limit: int = 4) -> str:
    """'[0, 3], [5, 1], … (12 in all)' for the True entries of a mask."""
    text = ", ".join(str(p) for p in first_true(mask, limit))
    total = int(mask.sum())
    return tr("{shown}, … ({total} in all)", shown=text, total=total) if total > limit else text


def index_list(indices: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return tr("{shown}, … ({total} in all)", shown=shown, total=len(indices)) if len(indices) > limit else shown


def axis_word(name: str) -> str:
    """A dimension's name as the network gives it, in the reader's language where known."""
    return tr(name) if has_german(name) else name


def dims_text(dims: Sequence[int], axes: Sequence[str]) -> str:
    """'1 (time)' or '0, 1 (batch, time)' when the network names its dimensions, else '1' / '0, 1'."""
    numbers = ", ".join(map(str, dims))
    if axes and all(d < len(axes) for d in dims):
        return tr("{dims} ({names})", dims=numbers, names=_joined([axis_word(axes[d]) for d in dims]))
    return numbers


def _joined(words: Sequence[str]) -> str:
    """"batch, time", each word rendered in the reader's language (a list of Text stays translatable)."""
    fields = {f"w{i}": w for i, w in enumerate(words)}
    return Text(", ".join("{" + k + "}" for k in fields), fields)


# ---- shapes ------------------------------------------------------------------------------------

def shape_reason(got: Shape, want: Shape, node: str, axes: Sequence[str] = ()) -> Text:
    """Why `got` is not `want`, in terms of the broadcasting mistake that usually causes it.
    `axes` names the dimensions of the node's tensor (Network.axes), () when the network does not."""
    g, w = fmt(got), fmt(want)
    if not got and want:
        return tr("{got} should be {want}: yours is a single number; summed over too many dims?", got=g, want=w)
    if len(got) == 2 and got == want[::-1]:
        return tr("{got} should be {want}: transposed", got=g, want=w)
    squeezed = tuple(s for s in want if s != 1)
    if got == squeezed and 1 in want:
        dims = [d for d, s in enumerate(want) if s == 1]
        return tr("{got} should be {want}: keepdim=True is missing (the sum over dim {dim} dropped that dimension)",
                  got=g, want=w, dim=dims[0])
    if len(got) == len(want):
        reduce = [d for d in range(len(want)) if want[d] == 1 and got[d] != 1]
        spread = [d for d in range(len(want)) if got[d] == 1 and want[d] != 1]
        same = all(got[d] == want[d] for d in range(len(want)) if d not in reduce and d not in spread)
        if same and reduce and not spread:
            already = [d for d in range(len(want)) if want[d] == 1 and got[d] == 1]
            if already:  # reduced over some of the dims, not all: the part-5 trap names its dimension
                everything = sorted([*already, *reduce])
                return tr("{got} should be {want}: dim {missing} is missing from your reduction: reduce over dims "
                          "{dims} with keepdim=True, as the forward pass does", got=g, want=w,
                          missing=dims_text(reduce, axes), dims=dims_text(everything, axes))
            return tr("{got} should be {want}: sum over dim {dims} with keepdim=True", got=g, want=w,
                      dims=dims_text(reduce, axes))
        if same and spread and not reduce:
            return tr("{got} should be {want}: d{node} needs one entry per entry of {node}; broadcast yours over dim "
                      "{dims} (e.g. multiply by torch.ones_like({node}))", got=g, want=w, node=node,
                      dims=dims_text(spread, axes))
    if len(got) > len(want) and tuple(got[len(got) - len(want):]) == tuple(want):
        extra = list(range(len(got) - len(want)))
        if all(got[d] == 1 for d in extra):
            return tr("{got} should be {want}: an extra leading dimension of size 1 (from [None] or unsqueeze?)",
                      got=g, want=w)
        return tr("{got} should be {want}: sum over dim {dims} (without keepdim)", got=g, want=w,
                  dims=", ".join(map(str, extra)))
    if len(got) < len(want) and tuple(want[len(want) - len(got):]) == tuple(got):
        return tr("{got} should be {want}: d{node} needs one entry per entry of {node}; broadcast yours over the "
                  "leading dims", got=g, want=w, node=node)
    if math.prod(got) == math.prod(want):
        return tr("{got} should be {want}: the same number of entries in another shape (.view({view}))", got=g,
                  want=w, view=", ".join(map(str, want)))
    return tr("{got} should be {want}: a gradient always has the shape of its tensor", got=g, want=w)


def partial_reduction(got: Shape, want: Shape, node: str, run: Run) -> Text | None:
    """A gradient summed over some, not all, of the dims the forward pass broadcast `node` over
    (the part-5 trap for a batchnorm gain: (4, H) where (H,) belongs means time was not summed):
    `got` is an upstream gradient's shape with some dims summed away, and more are left to sum."""
    for step, _ in run.tape.consumers.get(node, []):
        upstream = tuple(run.autograd[step.out].shape) if step.out in run.autograd else ()
        axes = run.net.axes(step.out, len(upstream))
        lead = len(upstream) - len(want)
        if lead < 2 or tuple(upstream[lead:]) != want:
            continue
        for mask in range(1, 1 << lead):
            summed = [d for d in range(lead) if mask >> d & 1]
            dropped = tuple(upstream[d] for d in range(len(upstream)) if d not in summed)
            kept = tuple(1 if d in summed else upstream[d] for d in range(len(upstream)))
            if got in (dropped, kept) and len(summed) < lead:
                missing = [d for d in range(lead) if d not in summed]
                return tr("{got} should be {want}: your sum leaves out dim {missing} of d{out}: sum over dims {dims}, "
                          "all the dims the forward pass broadcasts {node} over", got=fmt(got), want=fmt(want),
                          missing=dims_text(missing, axes), out=step.out, dims=dims_text(list(range(lead)), axes),
                          node=node)
    return None


def shape_hints(yours: torch.Tensor, expected: torch.Tensor) -> list[Text]:
    """When the shape is wrong, whether the values would be right after the obvious fix."""
    got, want = tuple(yours.shape), tuple(expected.shape)
    if yours.numel() == expected.numel():
        if len(got) == 2 and got == want[::-1] and close(yours.T, expected):
            return [tr("the values are right: yours.T matches autograd")]
        if close(yours.reshape(want), expected):
            return [tr("the values are right: only the shape is wrong")]
        return []
    if len(got) == len(want) and all(w in (g, 1) for g, w in zip(got, want, strict=True)):
        dims = tuple(d for d in range(len(want)) if want[d] == 1 and got[d] != 1)
        if dims and close(yours.sum(dims, keepdim=True), expected):
            return [tr("summing yours over dim {dims} (keepdim=True) would match autograd", dims=", ".join(map(str, dims)))]
    if len(got) == len(want) + 1 and tuple(got[1:]) == want and close(yours.sum(0), expected):
        return [tr("summing yours over dim 0 would match autograd")]
    return []


def one_hot_findings(events: Sequence[Event], classes: int) -> list[Text]:
    """F.one_hot without num_classes made fewer columns than `classes` (the vocabulary: every one-hot
    code of the network's data, targets or argmax has one column per character): its width came from
    the largest index in this batch."""
    for event in events:
        if isinstance(event, OneHotWidth) and event.width < classes:
            return [tr("line {line}, column {col}: F.one_hot without num_classes makes as many columns as the largest "
                       "index in this batch + 1 ({width} here, {want} needed): pass num_classes={want}",
                       line=event.line, col=event.col, width=event.width, want=classes)]
    return []


# ---- values ------------------------------------------------------------------------------------

def factor_names(run: Run) -> list[tuple[float, str, Text]]:
    """(factor, name, hint) for the constant factors learners typically get wrong, from the network's
    counting constants (n; WaveNet's n1, n2): c, 1/c, c-1, Bessel's c/(c-1), ratios between them, 2."""
    return [(value, name, hint) for value, name, hint, _ in _factor_entries(run)]


def _factor_entries(run: Run) -> list[tuple[float, str, Text, str]]:
    """factor_names with the count each entry says belongs there ("" for the plain 2 and 1/2)."""
    counts = {k: int(v) for k, v in run.constants.items() if isinstance(v, int) and not isinstance(v, bool) and v > 1}
    found: list[tuple[float, str, Text, str]] = []
    for name, c in counts.items():
        found += [
            (float(c), f"{c} (= {name})", tr("did you forget 1/{c}?", c=name), name),
            (1 / c, f"1/{c} (= 1/{name})", tr("divided by {c} once too often?", c=name), name),
            (float(c - 1), f"{c - 1} (= {name}-1)", tr("did you forget 1/({c}-1)?", c=name), name),
            (1 / (c - 1), f"1/{c - 1} (= 1/({name}-1))", tr("divided by {c}-1 once too often?", c=name), name),
            (c / (c - 1), f"{c / (c - 1):.4g} (= {name}/({name}-1))",
             tr("1/({c}-1) used where 1/{c} belongs: the mean divides by {c}, the variance (Bessel) by {c}-1", c=name),
             name),
            ((c - 1) / c, f"{(c - 1) / c:.4g} (= ({name}-1)/{name})",
             tr("1/{c} used where 1/({c}-1) belongs: the variance (Bessel) divides by {c}-1, the mean by {c}", c=name),
             name),
        ]
    for big, b in counts.items():
        for small, s in counts.items():
            if b > s and b % s == 0 and _nested(run, small, big):  # 1/small where 1/big belongs, or back
                found.append((b / s, f"{b // s} (= {big}/{small})", _count_hint(run, small, big), big))
                found.append((s / b, f"1/{b // s} (= {small}/{big})", _count_hint(run, big, small), small))
                found.append(((b - 1) / (s - 1), f"{(b - 1) / (s - 1):.4g} (= ({big}-1)/({small}-1))",
                              tr("1/({small}-1) used where 1/({big}-1) belongs?", small=small, big=big), big))
                found.append(((s - 1) / (b - 1), f"{(s - 1) / (b - 1):.4g} (= ({small}-1)/({big}-1))",
                              tr("1/({small}-1) used where 1/({big}-1) belongs?", small=big, big=small), small))
    found += [(2.0, "2", tr("an extra factor 2, or one branch counted twice?"), ""),
              (0.5, "1/2", tr("the 2 of d(x**2)/dx = 2*x is missing?"), "")]
    return found


def reduced_axes(run: Run, node: str) -> set[str]:
    """The named dimensions of `node` that the steps reading it reduce over (a mean over dim -1 of a
    (B, T, C) tensor: {"channel"}): what a count in its gradient most likely counts."""
    value = run.values.get(node)
    if not isinstance(value, torch.Tensor):
        return set()
    axes = run.net.axes(node, value.dim())
    found: set[str] = set()
    for step, _ in run.tape.consumers.get(node, []):
        out = run.values.get(step.out)
        if not isinstance(out, torch.Tensor) or not axes:
            continue
        if out.dim() == 0:
            found.update(axes)
        elif out.dim() == value.dim():
            found.update(axes[d] for d in range(value.dim()) if out.shape[d] == 1 and value.shape[d] > 1)
    return found


def _nested(run: Run, small: str, big: str) -> bool:
    """Whether 1/small where 1/big belongs is a mistake worth naming: the network says which dimensions
    each count counts (Network.constant_axes) and small's are among big's (n1 = batch·time over n =
    batch). Sizes that merely divide each other (a GPT's nh = 4 and T = 8) are not such a pair."""
    small_axes, big_axes = run.net.constant_axes(small), run.net.constant_axes(big)
    return bool(small_axes) and set(small_axes) <= set(big_axes)


def _count_hint(run: Run, small: str, big: str) -> Text:
    """Why 1/small where 1/big belongs, in the network's dimensions when it names them."""
    small_axes, big_axes = run.net.constant_axes(small), run.net.constant_axes(big)
    missing = [a for a in big_axes if a not in small_axes]
    if small_axes and missing:
        return tr("1/{small} used where 1/{big} belongs: {big} counts {big_axes}, {small} only {small_axes}: the "
                  "{missing} dimension is left out", small=small, big=big, big_axes=_joined([axis_word(a) for a in big_axes]),
                  small_axes=_joined([axis_word(a) for a in small_axes]), missing=_joined([axis_word(a) for a in missing]))
    return tr("1/{small} used where 1/{big} belongs?", small=small, big=big)


def constant_factor(yours: torch.Tensor, expected: torch.Tensor) -> float | None:
    """c with yours ≈ c · expected (least squares), or None when no single factor explains yours."""
    y, e = yours.double().flatten(), expected.double().flatten()
    ee = float(e @ e)
    if ee == 0.0 or not math.isfinite(ee):
        return None
    c = float(y @ e) / ee
    return c if close(yours.double(), c * expected.double()) else None


def describe_factor(c: float, run: Run, node: str | None = None) -> Text:
    """The factor c named by the count it most likely is. Where several counts have that value (a GPT's
    B and C are both 32), the one counting the dimensions `node`'s readers reduce over comes first."""
    if c < 0:
        if abs(c + 1) <= 1e-3:
            return tr("the sign is flipped")
        return tr("the sign is flipped and {rest}", rest=describe_factor(-c, run, node))
    matches = [entry for entry in _factor_entries(run) if abs(c - entry[0]) <= 1e-3 * entry[0]]
    if node is not None and len(matches) > 1:
        reduced = reduced_axes(run, node)
        matches.sort(key=lambda entry: not (reduced and entry[3] and set(run.net.constant_axes(entry[3])) == reduced))
    if matches:
        _, name, hint, _ = matches[0]
        return tr("off by a factor of {name}: {hint}", name=name, hint=hint)
    return tr("off by a constant factor: yours ≈ {c:.4g} × autograd's", c=c)


def matches_head(bad: int, total: int) -> Text:
    share = math.floor(100 * (total - bad) / total)  # floor: 2047 of 2048 is 99%, not 100%
    if bad == 1:
        return tr("matches on {share}% of the entries ({good} of {total}); 1 differs", share=share, good=total - bad,
                  total=total)
    return tr("matches on {share}% of the entries ({good} of {total}); {bad} differ", share=share, good=total - bad,
              total=total, bad=bad)


def where_pattern(mismatch: torch.Tensor) -> Text | None:
    """Where the wrong entries are, when they form a pattern: whole rows, whole columns, exactly
    one entry per row, or a few rows or columns. None when they are scattered."""
    total, bad = mismatch.numel(), int(mismatch.sum())
    head = matches_head(bad, total)
    mostly_right = 2 * bad <= total
    if bad <= 4 and mostly_right:
        return tr("{head}: at {where}", head=head, where=positions(mismatch))
    m = mismatch.reshape(mismatch.shape[0], -1) if mismatch.dim() > 2 else mismatch
    if m.dim() == 1:
        return tr("{head}: entries {where}", head=head, where=index_list(m.nonzero().flatten().tolist())) \
            if mostly_right else None
    if m.shape[0] < 2 or m.shape[1] < 2:
        return None
    rows = m.any(1).nonzero().flatten().tolist()
    cols = m.any(0).nonzero().flatten().tolist()
    if bool(m[rows].all()) and len(rows) < m.shape[0]:
        return tr("{head}: whole rows {where}", head=head, where=index_list(rows))
    if bool(m[:, cols].all()) and len(cols) < m.shape[1]:
        return tr("{head}: whole columns {where}", head=head, where=index_list(cols))
    if bool((m.sum(1) == 1).all()):
        return tr("{head}: exactly one entry in every row (columns {where})", head=head,
                  where=index_list(m.float().argmax(1).tolist()))
    if len(cols) <= m.shape[1] // 4:
        return tr("{head}, all in columns {where}", head=head, where=index_list(cols))
    if len(rows) <= m.shape[0] // 4:
        return tr("{head}, all in rows {where}", head=head, where=index_list(rows))
    return None


def _branches(node: str, run: Run, upstream: dict[str, torch.Tensor] | None = None) -> list[tuple[str, torch.Tensor]]:
    """(source node, contribution) of every branch that sends `node` gradient, computed from
    autograd's upstream gradients (or `upstream`, e.g. all ones for the local derivative alone)."""
    expected = run.autograd[node]
    found = []
    for step, grad in run.tape.consumers.get(node, []):
        d_out = (upstream or run.autograd).get(step.out)
        if d_out is None:
            return []
        with torch.no_grad():
            found.append((step.out, grad.compute(run.values, d_out).to(expected.dtype)))
    return found


def branch_findings(node: str, yours: torch.Tensor, run: Run) -> list[Text]:
    """For a node that feeds several steps (its gradient is a sum, built with +=): is one branch
    missing, counted twice, or off by a factor? Each branch is computed from autograd's own
    upstream gradient, so this holds whatever the other branches are."""
    if len(run.tape.consumers.get(node, [])) < 2:
        return []
    expected = run.autograd[node]
    contributions = _branches(node, run)
    for i, (source, part) in enumerate(contributions):
        others = [name for j, (name, _) in enumerate(contributions) if j != i]
        rest = yours - (expected - part)  # what yours has in place of this branch
        if not bool(part.any()):
            continue  # a branch that is zero here cannot be told apart
        if close(rest, torch.zeros_like(part), rtol=LOOSE) or close(yours, expected - part):
            template = ("matches the branches from {others} only; the branch from {source} (+=) is missing"
                        if len(others) > 1 else "matches the branch from {others} only; the branch from {source} (+=) "
                        "is missing")
            return [tr(template, others=", ".join(others), source=source)]
        c = constant_factor(rest, part)
        if c is not None and abs(c - 2) < 1e-3:
            return [tr("the branch from {source} is counted twice", source=source)]
        if c is not None and abs(c + 1) < 1e-3:
            return [tr("the branch from {source} has its sign flipped (-= where += belongs?)", source=source)]
        if c is not None:
            return [tr("the branch from {source} is {factor}", source=source, factor=describe_factor(c, run))]
    return []


def chain_rule_findings(node: str, yours: torch.Tensor, run: Run) -> list[Text]:
    """Yours equals the local derivative alone (the upstream gradient taken as all ones): the
    chain rule's multiplication by the upstream gradient is missing."""
    branches = run.tape.consumers.get(node, [])
    ones = {step.out: torch.ones_like(run.autograd[step.out]) for step, _ in branches if step.out in run.autograd}
    try:
        local = _branches(node, run, ones)
    except RuntimeError:
        return []
    if not local:
        return []
    total = sum((part for _, part in local), torch.zeros_like(yours))
    if tuple(total.shape) == tuple(yours.shape) and bool(total.any()) and close(yours, total):
        upstream = " + ".join(f"d{source}" for source, _ in local) if len(local) > 1 else f"d{local[0][0]}"
        return [tr("your d{node} is the local derivative alone: multiply it by {upstream} (the chain rule)",
                   node=node, upstream=upstream)]
    for source, part in local if len(local) > 1 else []:
        if tuple(part.shape) == tuple(yours.shape) and bool(part.any()) and close(yours, part):
            return [tr("your d{node} is the local derivative of the branch from {source} alone: multiply it by "
                       "d{source} (the chain rule)", node=node, source=source)]
    return []


def repeated_index_findings(node: str, y: torch.Tensor, expected: torch.Tensor, run: Run,
                            events: Sequence[Event]) -> list[Text]:
    """A write to d<node> through an index with repeated entries, where the wrong entries are
    (some of) the repeated ones: torch kept one contribution per index."""
    names = set(run.tape.gradient_names(node))
    for event in events:
        if not (isinstance(event, RepeatedIndex) and event.target in names):
            continue
        wrong = (y - expected).abs() > ATOL + RTOL * expected.abs()
        if not bool(wrong.any()):
            continue
        rows = sorted({entry[0] for entry in event.repeated})
        if event.dim == 0 and y.dim() > 0:
            bad_rows = set(wrong.reshape(wrong.shape[0], -1).any(1).nonzero().flatten().tolist())
            if bad_rows and not bad_rows & set(rows):
                continue  # the wrong rows are elsewhere: another mistake
        listed = index_list(rows)
        chars = _characters(node, run, rows) if event.dim == 0 else None
        what = tr("rows {rows} (characters {chars})", rows=listed, chars=chars) if chars else \
            tr("rows {rows}", rows=listed) if event.dim == 0 else tr("entries {rows}", rows=listed)
        if event.how.startswith(".index_put"):
            return [tr("line {line}: {target}.index_put_ without accumulate=True keeps only one contribution per "
                       "repeated index: {rows} occur several times; pass accumulate=True or use "
                       "{target}.index_add_(...)", line=event.line, target=event.target, rows=what)]
        return [tr("line {line}: {target}[...] {how} with repeated indices keeps only one contribution per index: "
                   "{rows} occur several times in the index, so each gets one update instead of one per occurrence; "
                   "use {target}.index_add_(...), {target}.index_put_(..., accumulate=True) or the lecture's loop",
                   line=event.line, target=event.target, how=event.how, rows=what)]
    return []


def _characters(node: str, run: Run, rows: Sequence[int]) -> str | None:
    """The vocabulary's characters for rows of a table the network indexes with its data (C[Xb])."""
    reads_data = any(set(step.reads) & set(run.tape.data) for step, _ in run.tape.consumers.get(node, []))
    chars = run.data.vocab.chars
    if not reads_data or not rows or max(rows) >= len(chars) or run.values[node].shape[0] != len(chars):
        return None
    return index_list([repr(chars[r]) for r in rows])


# allclose passes anything within 1e-8 of a gradient that is ~0 (b1's is zero in exact arithmetic:
# batchnorm subtracts the mean, so b1 cancels). Beyond this relative error, "approx" proves little.
SUSPICIOUS_RELERR = 1e-3


def positive(comparison: Comparison, dtype: torch.dtype, expected: torch.Tensor) -> list[Text]:
    if comparison.exact:
        return [tr("exact: bit for bit what autograd computed")]
    precision = str(dtype).replace("torch.", "")
    notes = [tr("rounding only: maxdiff {maxdiff:.1g}, {precision} order of operations", maxdiff=comparison.maxdiff,
                precision=precision)]
    if suspicious(comparison):
        largest = float(expected.abs().max()) if expected.numel() else 0.0
        notes = [tr("approx only because this gradient is tiny (largest |entry| {largest:.1g}), so any small numbers "
                    "pass allclose; the relative error is {relerr:.2g}: check the formula (it may be right: a "
                    "gradient that is zero in exact arithmetic is only rounding noise)", largest=largest,
                    relerr=comparison.relerr)]
    return notes


def suspicious(comparison: Comparison) -> bool:
    """approx, but only because every entry is tiny (see SUSPICIOUS_RELERR)."""
    return comparison.relerr is not None and comparison.relerr > SUSPICIOUS_RELERR and not comparison.exact


def diagnose(node: str, yours: Any, run: Run, comparison: Comparison, events: Sequence[Event] = ()) -> list[Text]:
    """Plain-words findings about the learner's d<node>, compared with autograd's. `events`: what the
    interpreter noticed while the learner's code ran (trace.py)."""
    expected = run.autograd[node]
    want = tuple(expected.shape)
    if not isinstance(yours, torch.Tensor):
        return [tr("your answer is a {kind}, not a tensor of shape {want}", kind=type(yours).__name__, want=fmt(want))]
    notes = []
    if yours.dtype != expected.dtype:
        notes.append(tr("yours is {dtype}, autograd's {expected} (compared after converting yours)",
                        dtype=str(yours.dtype).replace("torch.", ""), expected=str(expected.dtype).replace("torch.", "")))
    if comparison.status in ("exact", "approx"):
        near = op_findings(node, yours.detach().to(expected.dtype), expected, run) if not comparison.exact else []
        if near:  # allclose passes it, but it is one of the classic mistakes, not rounding (the erf GELU can be)
            return [tr("approx, yet nearer to a typical mistake than to autograd's answer: {finding}", finding=near[0]),
                    *notes]
        return positive(comparison, expected.dtype, expected) + notes
    y = yours.detach().to(expected.dtype)
    finite = torch.isfinite(y)
    axes = run.net.axes(node, len(want))
    if not bool(finite.all()):
        masked = nonfinite_findings(node, y, run) if tuple(y.shape) == want else []
        if masked:
            return masked + notes
        nans, infs = int(torch.isnan(y).sum()), int(torch.isinf(y).sum())
        notes.append(tr("{nans} NaN and {infs} ±Inf entries, at {where}: a log of 0, a division by 0 or an overflow?",
                        nans=nans, infs=infs, where=positions(~finite)))
        if tuple(y.shape) != want:
            notes.append(shape_reason(tuple(y.shape), want, node, axes))
        return notes
    if tuple(y.shape) != want:
        swapped = swapped_dims(y, expected)
        if swapped is not None:
            i, j = swapped
            return [tr("{got} should be {want}: dims {dims} are swapped: yours.transpose({i}, {j}) matches autograd's "
                       "(a transpose is missing; a view or reshape would give the right shape with the wrong entries)",
                       got=fmt(y.shape), want=fmt(want), dims=dims_text([i, j], axes), i=i, j=j), *notes]
        reason = partial_reduction(tuple(y.shape), want, node, run) or shape_reason(tuple(y.shape), want, node, axes)
        return [*one_hot_findings(events, run.data.vocab.size), reason, *shape_hints(y, expected), *notes]
    return value_findings(node, y, expected, run, events) + far_above_rounding(y, expected) + notes


def swapped_dims(yours: torch.Tensor, expected: torch.Tensor) -> tuple[int, int] | None:
    """(i, j) when yours.transpose(i, j) matches autograd's (rank 3 and up; rank 2 is 'transposed'):
    heads and time merged or split with a view where a transpose belongs."""
    if yours.dim() < 3 or yours.dim() != expected.dim() or yours.numel() != expected.numel():
        return None
    for i in range(yours.dim()):
        for j in range(i + 1, yours.dim()):
            t = yours.transpose(i, j)
            if tuple(t.shape) == tuple(expected.shape) and close(t, expected):
                return i, j
    return None


# Far above rounding: a difference this many times the dtype's rounding at the gradient's own size
# (eps x largest |entry|) is a formula's, not rounding's (the approx answers here stay below ~10).
FAR_ABOVE_ROUNDING = 100.0


def far_above_rounding(yours: torch.Tensor, expected: torch.Tensor) -> list[Text]:
    """For a wrong answer that llm.c's absolute tolerance would still pass: how far above rounding it is
    (small shapes at GPT-2's initialisation make small gradients, where 2e-2 hides every mistake)."""
    if not expected.is_floating_point() or not expected.numel() or not standard_passes(LLMC, yours, expected):
        return []
    largest = float(expected.abs().max())
    maxdiff = float((yours.double() - expected.double()).abs().max())
    ulp = torch.finfo(expected.dtype).eps * largest
    if ulp == 0.0 or maxdiff < FAR_ABOVE_ROUNDING * ulp:
        return []
    atol = (LLMC.float64 if expected.dtype == torch.float64 else LLMC.float32)[1]
    return [tr("{standard}'s check (|yours - autograd's| <= {atol:g}) would pass this, but only because these gradients "
               "are small (largest |entry| {largest:.2g}): the largest difference, {maxdiff:.2g}, is {ratio:,.0f} times "
               "{dtype}'s rounding at that size ({ulp:.1g}), far above rounding: a wrong formula, which small shapes "
               "make visible", standard=LLMC.name, atol=atol, largest=largest, maxdiff=maxdiff, ratio=maxdiff / ulp,
               dtype=str(expected.dtype).replace("torch.", ""), ulp=ulp)]


def value_findings(node: str, y: torch.Tensor, expected: torch.Tensor, run: Run,
                   events: Sequence[Event] = ()) -> list[Text]:
    """Same shape, different values: what kind of different."""
    if not bool(y.any()):
        return [tr("all zeros, where autograd's is not: was the gradient never written (torch.zeros_like and nothing "
                   "added), or multiplied by something that is 0?"), *zero_findings(node, run)]
    repeated = repeated_index_findings(node, y, expected, run, events)
    if repeated:
        pattern = where_pattern((y - expected).abs() > ATOL + RTOL * expected.abs())
        return repeated + ([pattern] if pattern else [])
    if close(y, -expected):
        return [tr("the sign is flipped: yours ≈ -autograd's (check the minus signs, e.g. d(a - b)/db = -1)")]
    if y.dim() == 2 and y.shape[0] == y.shape[1] and close(y, expected.T):
        return [tr("transposed: yours.T matches autograd's")]
    swapped = swapped_dims(y, expected)
    if swapped is not None:
        i, j = swapped
        return [tr("dims {dims} are swapped: yours.transpose({i}, {j}) matches autograd's (the same shape here, since "
                   "both dims have {size} entries)", dims=dims_text([i, j], run.net.axes(node, y.dim())), i=i, j=j,
                   size=y.shape[i])]
    named = op_findings(node, y, expected, run)
    if named:
        return named
    chain = chain_rule_findings(node, y, run)
    if chain:
        return chain
    c = constant_factor(y, expected)
    if c is not None:
        return [describe_factor(c, run, node)]
    findings = branch_findings(node, y, run)
    mismatch = (y - expected).abs() > ATOL + RTOL * expected.abs()
    pattern = where_pattern(mismatch)
    many = len(run.tape.consumers.get(node, [])) > 1
    if findings:
        return findings + ([pattern] if pattern else [])
    if pattern:
        return [tr("{text}: a missing accumulation branch (+=)?", text=pattern) if many else pattern]
    bad, total = int(mismatch.sum()), mismatch.numel()
    if 2 * bad <= total:
        text = tr("{head}, e.g. at {where}", head=matches_head(bad, total), where=positions(mismatch))
        return [tr("{text}: a missing accumulation branch (+=)?", text=text) if many else text]
    e, d = expected.double(), (y.double() - expected.double())
    relerr = float(d.norm() / max(float(e.norm()), float(y.double().norm()), 1e-300))
    return [tr("differs at {bad} of {total} entries: maxdiff {maxdiff:.3g}, relative error {relerr:.2g}", bad=bad,
               total=total, maxdiff=float(d.abs().max()), relerr=relerr)]
