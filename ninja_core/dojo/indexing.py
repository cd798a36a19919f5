"""Indexing tensors: what an index may contain, and how big the result of advanced indexing is.

Basic indexing (ints, slices, None, ...) returns a view and costs nothing. Advanced indexing
(index tensors, lists, ranges, masks) copies, and its size is bounded before torch makes it.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..i18n import german, tr
from .allowlist import check_shape, count_items
from .errors import DojoError
from .limits import Budget
from .values import describe

german({
    "an index range": "ein Indexbereich",
    "an index list of more than {limit:,} items": "eine Indexliste mit mehr als {limit:,} Elementen",
    "a tensor cannot be indexed with {what}": "ein Tensor kann nicht mit {what} indiziert werden",
    "this indexing": "diese Indizierung",
})


def tensor_index(index: Any, budget: Budget) -> Any:
    """Lists and ranges inside an index become index tensors (what torch would make of them),
    after checking their size; everything else is passed as it is."""
    parts = index if isinstance(index, tuple) else (index,)
    converted = []
    for part in parts:
        if isinstance(part, range):
            check_shape([len(part)], budget, tr("an index range"))
            part = torch.arange(part.start, part.stop, part.step)
        elif isinstance(part, list):
            if count_items(part, budget.limits.sequence_items) > budget.limits.sequence_items:
                raise DojoError("limit", tr("an index list of more than {limit:,} items", limit=budget.limits.sequence_items))
            part = torch.tensor(part)
        elif not (part is None or part is Ellipsis or isinstance(part, (int, slice, torch.Tensor))):
            raise DojoError("runtime", tr("a tensor cannot be indexed with {what}", what=describe(part)))
        converted.append(part)
    return tuple(converted) if isinstance(index, tuple) else converted[0]


def check_index_size(tensor: torch.Tensor, index: Any, budget: Budget) -> None:
    """Advanced indexing copies: bound the result's size before torch makes it."""
    parts = index if isinstance(index, tuple) else (index,)
    advanced = [p for p in parts if isinstance(p, torch.Tensor)]
    if not advanced:
        return  # ints, slices, None, ...: a view, no new memory
    consumed = sum(p.dim() if isinstance(p, torch.Tensor) and p.dtype == torch.bool else
                   0 if p is None or p is Ellipsis else 1 for p in parts)
    if consumed > tensor.dim():
        return  # torch raises "too many indices" before allocating
    shapes = [torch.Size([int(p.numel())]) if p.dtype == torch.bool else p.shape for p in advanced]
    try:
        index_shape = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        return  # torch raises the shape mismatch itself
    # every dimension not consumed by an index tensor or an int is kept (at most its full size)
    kept, dim = 1, 0
    for p in parts:
        if p is Ellipsis:
            for _ in range(tensor.dim() - consumed):
                kept *= tensor.shape[dim]
                dim += 1
        elif p is None:
            continue
        elif isinstance(p, torch.Tensor) and p.dtype == torch.bool:
            dim += p.dim()
        else:
            if isinstance(p, slice):
                kept *= tensor.shape[dim]
            dim += 1
    for size in tensor.shape[dim:]:
        kept *= size
    check_shape([math.prod(index_shape), kept], budget, tr("this indexing"))
