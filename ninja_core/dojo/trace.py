"""What the interpreter noticed while running a learner's program, for the diagnosis to explain.

Some mistakes cannot be read off the wrong tensor alone; they are visible only while the code runs:
- a write through an index with repeated entries (`dC[Xb.view(-1)] += demb.view(-1, 10)`): torch
  keeps one contribution per repeated index, so rows that several characters share get only one;
- `F.one_hot(x)` without `num_classes`: as many columns as the largest index in *this* batch + 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

MAX_LISTED = 16  # repeated index entries kept per event


@dataclass(frozen=True)
class RepeatedIndex:
    """x[idx] += v, x[idx] = v or x.index_put_(idx, v) with repeated entries in idx."""

    line: int
    col: int
    target: str | None  # the variable written: "dC"
    how: str  # "+=", "=", ".index_put_"
    dim: int  # the first dimension the index tensors address
    repeated: tuple[tuple[int, ...], ...]  # the index entries that occur more than once (first MAX_LISTED)
    count: int  # how many distinct entries occur more than once


@dataclass(frozen=True)
class OneHotWidth:
    """F.one_hot(x) without num_classes: `width` columns, read from this batch's largest index."""

    line: int
    col: int
    width: int


Event = RepeatedIndex | OneHotWidth


def repeated_entries(index: Any) -> tuple[int, tuple[tuple[int, ...], ...], int] | None:
    """(first dimension, repeated entries, how many) for an index (after tensor_index) whose integer
    index tensors address some position more than once; None when every position is addressed once."""
    parts = index if isinstance(index, tuple) else (index,)
    advanced: list[torch.Tensor] = []
    first: int | None = None
    dim = 0
    for part in parts:
        if isinstance(part, torch.Tensor) and part.dtype == torch.bool:
            return None  # a mask addresses each position at most once
        if isinstance(part, torch.Tensor) and part.dim() > 0:
            advanced.append(part)
            first = dim if first is None else first
        if part is not None:
            dim += 1
    if not advanced or any(t.is_floating_point() for t in advanced):
        return None
    try:
        keys = torch.stack([t.reshape(-1) for t in torch.broadcast_tensors(*advanced)], dim=1)  # (N, k)
    except RuntimeError:
        return None  # torch refuses such an index itself
    if keys.shape[0] < 2:
        return None
    unique, counts = torch.unique(keys, dim=0, return_counts=True)
    repeated = unique[counts > 1]
    if repeated.shape[0] == 0:
        return None
    listed = tuple(tuple(int(v) for v in row) for row in repeated[:MAX_LISTED].tolist())
    return first or 0, listed, int(repeated.shape[0])
