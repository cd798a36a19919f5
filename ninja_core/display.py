"""Turn any tensor into a 2-D matrix a heatmap can show, small enough to draw quickly.

Statistics are always taken on the full tensor; only the picture is reduced.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import torch

DEFAULT_MAX_CELLS = 16_384


@dataclass(frozen=True)
class Matrix:
    data: torch.Tensor  # (rows, cols) float32 on the CPU, what is drawn
    shape: tuple[int, ...]  # the tensor's own shape
    as_2d: tuple[int, int]  # the shape after flattening to 2-D, before any reduction
    block: tuple[int, int]  # rows and columns merged into one displayed cell (1, 1 = none)
    how: str  # "" or a sentence saying how the tensor was made 2-D / reduced
    row_title: str
    col_title: str

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
    names = axes if len(axes) == t.dim() else tuple(f"i{k}" for k in range(t.dim()))
    if t.dim() == 0:
        return t.reshape(1, 1), "a scalar, shown as 1 × 1", "", ""
    if t.dim() == 1:
        return t.reshape(1, -1), f"shape ({shape[0]},) shown as one row", "", names[0] if axes else "index"
    if t.dim() == 2:
        return t, "", names[0] if axes else "row", names[1] if axes else "column"
    if t.dim() == 4:
        a, b, c, d = shape
        how = (f"shape {shape} shown as a grid of {a} × {b} blocks of {c} × {d}: row = {names[0]}·{c} + {names[2]}, "
               f"column = {names[1]}·{d} + {names[3]}")
        grid = t.permute(0, 2, 1, 3).reshape(a * c, b * d)
        return grid, how, f"({names[0]}, {names[2]})", f"({names[1]}, {names[3]})"
    rows, rest = shape[0], math.prod(shape[1:])
    terms = [f"{names[k]}·{math.prod(shape[k + 1:])}" for k in range(1, len(shape) - 1)] + [names[-1]]
    how = f"shape {shape} shown as {rows} × {rest}: row = {names[0]}, column = {' + '.join(terms)}"
    col_title = "(" + ", ".join(names[1:]) + ") flattened"
    return t.reshape(rows, rest), how, names[0], col_title


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


def matrix(t: torch.Tensor, max_cells: int = DEFAULT_MAX_CELLS, mode: str = "mean", axes: tuple[str, ...] = ()) -> Matrix:
    t = t.detach().to("cpu", torch.float32)
    m, how, row_title, col_title = to_2d(t, axes)
    rows, cols = m.shape
    block = _block_sizes(rows, cols, max(1, max_cells))
    data = reduce_blocks(m, block, mode)
    if block != (1, 1):
        reduced = (f"reduced from {rows} × {cols} to {data.shape[0]} × {data.shape[1]}: each cell is the "
                   f"{'maximum' if mode == 'max' else 'mean'} of a {block[0]} × {block[1]} block")
        how = f"{how}; {reduced}" if how else reduced
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
              max_cells: int = DEFAULT_MAX_CELLS, with_stats: bool = True, axes: tuple[str, ...] = ()) -> NodeView:
    """`axes` names the value's dimensions (`Network.axes`); a gradient of another shape is drawn without."""
    absdiff = None
    if manual is not None and reference is not None and manual.shape == reference.shape:
        absdiff = (manual.to(reference.dtype) - reference).abs()

    def named(t: torch.Tensor) -> tuple[str, ...]:
        return axes if t.shape == value.shape else ()

    return NodeView(
        value=matrix(value, max_cells, axes=axes),
        manual=matrix(manual, max_cells, axes=named(manual)) if manual is not None else None,
        autograd=matrix(reference, max_cells, axes=named(reference)) if reference is not None else None,
        diff=matrix(absdiff, max_cells, mode="max", axes=named(absdiff)) if absdiff is not None else None,
        stats={"value": stats(value), "manual": stats(manual), "autograd": stats(reference), "diff": stats(absdiff)}
        if with_stats else {},
    )
