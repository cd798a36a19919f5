"""Turn any tensor into a 2-D matrix a heatmap can show, small enough to draw quickly.

Statistics are always taken on the full tensor; only the picture is reduced.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import torch

from .config import ConfigError
from .i18n import Text, german, has_german, tr

DEFAULT_MAX_CELLS = 16_384
# The axis words a network gives (`Network.axes`) that make a rank-4 tensor one (T × T or T × hs)
# matrix per sample and head: drawn for one sample at a time, its heads side by side. "query time"
# then "key time" mark attention scores and weights, whose entries above the diagonal the causal mask
# sets (llm.c's attention_forward: preatt = -inf, att = 0 for t2 > t).
PER_HEAD = ("batch", "head")
CAUSAL = ("query time", "key time")


german({
    "a scalar, shown as 1 × 1": "ein Skalar, gezeigt als 1 × 1",
    "shape ({n},) shown as one row": "Form ({n},) gezeigt als eine Zeile",
    "index": "Index",
    "shape {shape} shown as a grid of {a} × {b} blocks of {c} × {d}: row = {r0}·{c} + {r2}, column = {c1}·{d} + {c3}":
        "Form {shape} gezeigt als Raster aus {a} × {b} Blöcken zu {c} × {d}: Zeile = {r0}·{c} + {r2}, "
        "Spalte = {c1}·{d} + {c3}",
    "shape {shape} shown as {rows} × {rest}: row = {row}, column = {cols}":
        "Form {shape} gezeigt als {rows} × {rest}: Zeile = {row}, Spalte = {cols}",
    "({names}) flattened": "({names}) flachgelegt",
    "sample {sample} of {n} ({axis} index): its {nh} {heads}, each {r} × {c} ({row} × {col})":
        "Beispiel {sample} von {n} ({axis}-Index): seine {nh} {heads}, je {r} × {c} ({row} × {col})",
    "{how}; {reduced}": "{how}; {reduced}",
    "reduced to {r} × {c}: each cell is the maximum of a {br} × {bc} block":
        "verkleinert auf {r} × {c}: jede Zelle ist das Maximum eines {br} × {bc}-Blocks",
    "reduced to {r} × {c}: each cell is the mean of a {br} × {bc} block":
        "verkleinert auf {r} × {c}: jede Zelle ist der Mittelwert eines {br} × {bc}-Blocks",
    "reduced from {rows} × {cols} to {r} × {c}: each cell is the maximum of a {br} × {bc} block":
        "verkleinert von {rows} × {cols} auf {r} × {c}: jede Zelle ist das Maximum eines {br} × {bc}-Blocks",
    "reduced from {rows} × {cols} to {r} × {c}: each cell is the mean of a {br} × {bc} block":
        "verkleinert von {rows} × {cols} auf {r} × {c}: jede Zelle ist der Mittelwert eines {br} × {bc}-Blocks",
})
# The words networks use for their axes (`Network.axes`), so that German figures name them in German.
german({
    "batch": "Batch", "time": "Zeit", "channel": "Kanal", "head": "Kopf", "heads": "Köpfe",
    "query time": "Query-Zeit", "key time": "Key-Zeit", "head channel": "Kopfkanal", "token": "Token",
    "output channel": "Ausgabekanal", "input channel": "Eingabekanal", "vocabulary": "Vokabular",
    "position (batch·time)": "Position (Batch·Zeit)",
})


def axis_word(name: str) -> str:
    """An axis name as translatable text where German for it is registered (else as it is: i0, i1, …)."""
    return tr(name) if has_german(name) else name


def per_sample_heads(axes: tuple[str, ...]) -> bool:
    """Whether a tensor with these axis names is drawn one sample at a time, a grid of its heads."""
    return len(axes) == 4 and axes[:2] == PER_HEAD


def check_sample(shape: tuple[int, ...], axes: tuple[str, ...], sample: int) -> None:
    """Raises ConfigError("sample", ...) naming 0..B-1 when `sample` is not a sample of a
    (B, nh, ·, ·) tensor; any value is accepted for other tensors (they show every sample)."""
    if per_sample_heads(axes) and len(shape) == 4 and not 0 <= sample < shape[0]:
        raise ConfigError("sample", tr("must be an integer in {lo}..{hi}, got {value}", lo=0, hi=shape[0] - 1,
                                       value=sample))


@dataclass(frozen=True)
class Heads:
    """How one sample's heads are laid out in a Matrix: a grid of blocks with gaps between them (NaN)
    and a band above each block row for the heads' titles."""

    sample: int  # the sample shown, 0..n_samples-1
    n_samples: int  # B
    names: tuple[str, ...]  # the four axis names (batch, head, rows, columns)
    origins: tuple[tuple[int, int], ...]  # (row, column) of each head's top-left drawn cell
    size: tuple[int, int]  # drawn cells of one head's block (rows, columns)
    step: tuple[int, int]  # tensor indices per drawn cell (1, 1 = none merged)


@dataclass(frozen=True)
class Matrix:
    data: torch.Tensor  # (rows, cols) float32 on the CPU, what is drawn
    shape: tuple[int, ...]  # the tensor's own shape
    as_2d: tuple[int, int]  # the shape after flattening to 2-D, before any reduction
    block: tuple[int, int]  # rows and columns merged into one displayed cell (1, 1 = none)
    how: str  # "" or a sentence saying how the tensor was made 2-D / reduced
    row_title: str
    col_title: str
    masked: torch.Tensor | None = None  # (rows, cols) bool: cells the causal mask set, drawn as "masked"
    heads: Heads | None = None  # one sample's heads as a grid (per_sample_heads)

    @property
    def downsampled(self) -> bool:
        return self.block != (1, 1)


def to_2d(t: torch.Tensor, axes: tuple[str, ...] = ()) -> tuple[torch.Tensor, str, str, str]:
    """(matrix, how, row axis title, column axis title) for a tensor of any rank.

    Rank 3 (a, b, c): one row per i0, the rest side by side. Rank 4 (a, b, c, d), e.g. attention
    (B, nh, T, T): a grid of a × b blocks, each c × d -- one row of blocks per i0 (sample), one
    column of blocks per i1 (head), so every block is one c × d matrix as it is (query × key).
    `axes` names the dimensions (`Network.axes`) for the titles; without it they are i0, i1, ..."""
    shape = tuple(t.shape)
    names = tuple(axis_word(n) for n in axes) if len(axes) == t.dim() else tuple(f"i{k}" for k in range(t.dim()))
    if t.dim() == 0:
        return t.reshape(1, 1), tr("a scalar, shown as 1 × 1"), "", ""
    if t.dim() == 1:
        return t.reshape(1, -1), tr("shape ({n},) shown as one row", n=shape[0]), "", names[0] if axes else tr("index")
    if t.dim() == 2:
        return t, "", names[0] if axes else "row", names[1] if axes else "column"
    if t.dim() == 4:
        a, b, c, d = shape
        how = tr("shape {shape} shown as a grid of {a} × {b} blocks of {c} × {d}: row = {r0}·{c} + {r2}, "
                 "column = {c1}·{d} + {c3}", shape=shape, a=a, b=b, c=c, d=d, r0=names[0], r2=names[2],
                 c1=names[1], c3=names[3])
        grid = t.permute(0, 2, 1, 3).reshape(a * c, b * d)
        return grid, how, _seq("(", names[0], ", ", names[2], ")"), _seq("(", names[1], ", ", names[3], ")")
    rows, rest = shape[0], math.prod(shape[1:])
    # "time·10 + channel": each axis word stays translatable, the numbers and signs are a formula
    cols = _seq(*[part for k in range(1, len(shape) - 1) for part in (names[k], f"·{math.prod(shape[k + 1:])} + ")],
                names[-1])
    how = tr("shape {shape} shown as {rows} × {rest}: row = {row}, column = {cols}",
             shape=shape, rows=rows, rest=rest, row=names[0], cols=cols)
    col_title = tr("({names}) flattened", names=_seq(*[p for k, n in enumerate(names[1:]) for p in ((", ", n) if k else (n,))]))
    return t.reshape(rows, rest), how, names[0], col_title


def _seq(*parts: str) -> Text:
    """Parts side by side as one Text: each translatable axis word among them is rendered in the reader's
    language, the rest (numbers, signs, brackets) as it is."""
    return Text("".join(f"{{p{k}}}" for k in range(len(parts))), {f"p{k}": p for k, p in enumerate(parts)})


def _block_sizes(rows: int, cols: int, max_cells: int) -> tuple[int, int]:
    br = bc = 1
    while math.ceil(rows / br) * math.ceil(cols / bc) > max_cells:
        # reduce the longer displayed side first, so cells stay roughly square
        if math.ceil(rows / br) >= math.ceil(cols / bc):
            br *= 2
        else:
            bc *= 2
    return br, bc


def reduce_blocks(m: torch.Tensor, block: tuple[int, int], mode: str) -> torch.Tensor:
    """Block reduction: `mean` for values and gradients, `max` for |diff| (no error hides)."""
    br, bc = block
    if block == (1, 1):
        return m
    rows, cols = m.shape
    pr, pc = (-rows) % br, (-cols) % bc
    x = m.unsqueeze(0).unsqueeze(0)  # (1, 1, R, C)
    if mode == "max":
        x = torch.nn.functional.pad(x, (0, pc, 0, pr), value=float("-inf"))
        return torch.nn.functional.max_pool2d(x, (br, bc))[0, 0]
    # mean over the real cells only: pad with 0 and divide by how many real cells each block has
    x = torch.nn.functional.pad(x, (0, pc, 0, pr), value=0.0)
    ones = torch.nn.functional.pad(torch.ones_like(m).unsqueeze(0).unsqueeze(0), (0, pc, 0, pr), value=0.0)
    sums = torch.nn.functional.avg_pool2d(x, (br, bc), divisor_override=1)
    counts = torch.nn.functional.avg_pool2d(ones, (br, bc), divisor_override=1)
    return (sums / counts)[0, 0]


def _reduce_unmasked(m: torch.Tensor, masked: torch.Tensor, block: tuple[int, int],
                     mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`reduce_blocks` over the entries the mask left (a masked 0 must not dilute a mean); a drawn
    cell is masked when every entry of its block is."""
    kept = (~masked).to(m.dtype)
    fill = float("-inf") if mode == "max" else 0.0
    data = reduce_blocks(torch.where(masked, torch.full_like(m, fill), m), block, mode)
    if mode != "max":  # reduce_blocks' mean counts every cell: rescale to the kept ones
        share = reduce_blocks(kept, block, "mean")
        data = torch.where(share > 0, data / share.clamp_min(1e-30), torch.full_like(data, math.nan))
    cell_masked = reduce_blocks(kept, block, "max") == 0
    return torch.where(cell_masked, torch.full_like(data, math.nan), data), cell_masked


def head_grid(t: torch.Tensor, sample: int, axes: tuple[str, ...], max_cells: int = DEFAULT_MAX_CELLS,
              mode: str = "mean", inf_is_masked: bool = True) -> Matrix:
    """One sample of a (B, nh, R, C) tensor as a grid of its nh heads, each an R × C block (rows =
    axes[2], columns = axes[3]), NaN between the blocks and in a title band above each row of them.

    With the CAUSAL axis names, an entry above the diagonal (column > row) is masked when it holds what
    the causal mask leaves: -inf or 0 in a value (`inf_is_masked`), exactly 0 in a gradient or a
    difference. It is NaN in `data` and True in `masked`, so it is drawn as masked and never as a 0
    that looks like data; anything else there (scores before the mask, a nonzero gradient, an error)
    stays data. Heads are block-reduced to share `max_cells`. Raises ConfigError for a bad sample."""
    check_sample(tuple(t.shape), axes, sample)
    B, nh, R, C = t.shape
    x = t[sample]
    future = torch.ones(R, C, dtype=torch.bool).triu(1) if axes[2:] == CAUSAL else torch.zeros(R, C, dtype=torch.bool)
    hit = (x == 0) | (x == float("-inf")) if inf_is_masked else x == 0
    masked = future & hit
    block = _block_sizes(R, C, max(1, max_cells // nh))
    blocks = [_reduce_unmasked(x[h], masked[h], block, mode) for h in range(nh)]
    rc, cc = blocks[0][0].shape
    cols = math.ceil(math.sqrt(nh))
    rows = math.ceil(nh / cols)
    band, gap = max(1, math.ceil(rc / 4)), max(1, math.ceil(cc / 6))  # title band, space between columns
    data = torch.full((rows * (band + rc), cols * cc + (cols - 1) * gap), math.nan)
    cell_masked = torch.zeros(data.shape, dtype=torch.bool)
    origins = []
    for h, (d, mk) in enumerate(blocks):
        r0, c0 = (h // cols) * (band + rc) + band, (h % cols) * (cc + gap)
        data[r0:r0 + rc, c0:c0 + cc] = d
        cell_masked[r0:r0 + rc, c0:c0 + cc] = mk
        origins.append((r0, c0))
    words = [axis_word(a) for a in axes]
    how: str = tr("sample {sample} of {n} ({axis} index): its {nh} {heads}, each {r} × {c} ({row} × {col})",
                  sample=sample, n=B, axis=words[0], nh=nh, heads=axis_word(axes[1] + "s"), r=R, c=C,
                  row=words[2], col=words[3])
    if block != (1, 1):
        reduced = (tr("reduced to {r} × {c}: each cell is the maximum of a {br} × {bc} block", r=rc, c=cc,
                      br=block[0], bc=block[1]) if mode == "max" else
                   tr("reduced to {r} × {c}: each cell is the mean of a {br} × {bc} block", r=rc, c=cc,
                      br=block[0], bc=block[1]))
        how = tr("{how}; {reduced}", how=how, reduced=reduced)
    heads = Heads(sample, B, axes, tuple(origins), (rc, cc), block)
    return Matrix(data, tuple(t.shape), (data.shape[0], data.shape[1]), block, how, words[2], words[3], cell_masked,
                  heads)


def matrix(t: torch.Tensor, max_cells: int = DEFAULT_MAX_CELLS, mode: str = "mean", axes: tuple[str, ...] = (),
           sample: int = 0, inf_is_masked: bool = True) -> Matrix:
    """The display matrix of `t`; a (batch, head, ·, ·) tensor (per_sample_heads) is shown for
    `sample` only, as `head_grid` says. Raises ConfigError for a sample outside 0..B-1 there."""
    t = t.detach().to("cpu", torch.float32)
    if t.dim() == 4 and per_sample_heads(axes):
        return head_grid(t, sample, axes, max_cells, mode, inf_is_masked)
    m, how, row_title, col_title = to_2d(t, axes)
    rows, cols = m.shape
    block = _block_sizes(rows, cols, max(1, max_cells))
    data = reduce_blocks(m, block, mode)
    if block != (1, 1):
        size = {"rows": rows, "cols": cols, "r": data.shape[0], "c": data.shape[1], "br": block[0], "bc": block[1]}
        reduced = (tr("reduced from {rows} × {cols} to {r} × {c}: each cell is the maximum of a {br} × {bc} block",
                      **size) if mode == "max" else
                   tr("reduced from {rows} × {cols} to {r} × {c}: each cell is the mean of a {br} × {bc} block",
                      **size))
        how = tr("{how}; {reduced}", how=how, reduced=reduced) if how else reduced
    return Matrix(data.contiguous(), tuple(t.shape), (rows, cols), block, how, row_title, col_title)


def encode(m: torch.Tensor) -> dict[str, Any]:
    """A 2-D float32 matrix as plotly.js's typed-array form: base64 little-endian float32."""
    data = m.detach().to("cpu", torch.float32).contiguous()
    raw = data.numpy().astype("<f4", copy=False).tobytes()
    return {"dtype": "f4", "bdata": base64.b64encode(raw).decode("ascii"),
            "shape": f"{data.shape[0]}, {data.shape[1]}" if data.dim() == 2 else str(data.numel())}


def stats(t: torch.Tensor | None) -> dict[str, Any] | None:
    """min, max, mean, std, norm of the full tensor; non-finite values are counted, not averaged."""
    if t is None:
        return None
    x = t.detach().double()
    finite = torch.isfinite(x)
    n_nonfinite = int((~finite).sum().item())
    f = x[finite]
    if f.numel() == 0:
        return {"min": None, "max": None, "mean": None, "std": None, "norm": None,
                "numel": x.numel(), "nonfinite": n_nonfinite}
    return {
        "min": f.min().item(), "max": f.max().item(), "mean": f.mean().item(),
        "std": f.std().item() if f.numel() > 1 else 0.0, "norm": torch.linalg.vector_norm(f).item(),
        "numel": x.numel(), "nonfinite": n_nonfinite,
    }


@dataclass(frozen=True)
class NodeView:
    """What a viewer needs of one node: the four display matrices and statistics of the full tensors."""

    value: Matrix
    manual: Matrix | None
    autograd: Matrix | None
    diff: Matrix | None  # |manual - autograd|, block maximum when reduced; None when not comparable
    stats: dict[str, dict[str, Any] | None]  # value, manual, autograd, diff: on the full tensors


def node_view(value: torch.Tensor, manual: torch.Tensor | None, reference: torch.Tensor | None,
              max_cells: int = DEFAULT_MAX_CELLS, with_stats: bool = True, axes: tuple[str, ...] = (),
              sample: int = 0) -> NodeView:
    """`axes` names the value's dimensions (`Network.axes`); a gradient of another shape is drawn without.
    `sample`: the one sample drawn of a (batch, head, ·, ·) tensor (statistics stay on the full
    tensors). Raises ConfigError("sample") when it is outside 0..B-1 for such a tensor."""
    check_sample(tuple(value.shape), axes, sample)
    absdiff = None
    if manual is not None and reference is not None and manual.shape == reference.shape:
        absdiff = (manual.to(reference.dtype) - reference).abs()

    def named(t: torch.Tensor) -> tuple[str, ...]:
        return axes if t.shape == value.shape else ()

    return NodeView(
        value=matrix(value, max_cells, axes=axes, sample=sample),
        manual=matrix(manual, max_cells, axes=named(manual), sample=sample, inf_is_masked=False)
        if manual is not None else None,
        autograd=matrix(reference, max_cells, axes=named(reference), sample=sample, inf_is_masked=False)
        if reference is not None else None,
        diff=matrix(absdiff, max_cells, mode="max", axes=named(absdiff), sample=sample, inf_is_masked=False)
        if absdiff is not None else None,
        stats={"value": stats(value), "manual": stats(manual), "autograd": stats(reference), "diff": stats(absdiff)}
        if with_stats else {},
    )
