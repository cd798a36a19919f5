"""Compare a hand-written gradient with autograd's: shape first, then exact, approx, maxdiff, relerr.

A wrong, wrongly shaped or absent gradient is a finding in the result, never an exception.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

Status = Literal["exact", "approx", "mismatch", "shape_mismatch", "missing"]
RTOL, ATOL = 1e-5, 1e-8  # torch.allclose's defaults, the lecture's "approx"
STATUSES: tuple[str, ...] = ("exact", "approx", "mismatch", "shape_mismatch", "missing")


@dataclass(frozen=True)
class Comparison:
    status: Status
    exact: bool  # every element equal (the lecture's `==`), after the shapes matched
    approx: bool  # torch.allclose with its default tolerances (rtol 1e-5, atol 1e-8)
    maxdiff: float | None  # max |manual - autograd|; None when the shapes differ or one is missing
    relerr: float | None  # ||manual - autograd|| / max(||manual||, ||autograd||), 0 when both are 0
    shape: tuple[int, ...] | None  # autograd's shape: the shape the gradient must have
    manual_shape: tuple[int, ...] | None
    message: str = ""  # a sentence for the reader when the status is not exact/approx

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exact": self.exact,
            "approx": self.approx,
            "maxdiff": self.maxdiff,
            "relerr": self.relerr,
            "shape": list(self.shape) if self.shape is not None else None,
            "manual_shape": list(self.manual_shape) if self.manual_shape is not None else None,
            "message": self.message,
        }


def _shape(t: object) -> tuple[int, ...] | None:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


def relative_error(manual: torch.Tensor, reference: torch.Tensor) -> float:
    """||manual - reference|| / max(||manual||, ||reference||): 0 when equal, ~1 when unrelated."""
    diff = torch.linalg.vector_norm(manual - reference).item()
    scale = max(torch.linalg.vector_norm(manual).item(), torch.linalg.vector_norm(reference).item())
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


def compare(manual: object, reference: object) -> Comparison:
    """Judge `manual` against `reference` (autograd). Accepts anything: None, wrong types, wrong shapes."""
    ref_shape, man_shape = _shape(reference), _shape(manual)
    if reference is None or ref_shape is None:
        return Comparison("missing", False, False, None, None, None, man_shape,
                          "autograd produced no gradient for this node")
    if manual is None:
        return Comparison("missing", False, False, None, None, ref_shape, None,
                          "no manual gradient was computed for this node")
    if not isinstance(manual, torch.Tensor):
        return Comparison("missing", False, False, None, None, ref_shape, None,
                          f"the manual gradient is a {type(manual).__name__}, not a tensor")
    assert isinstance(reference, torch.Tensor)
    if man_shape != ref_shape:
        return Comparison("shape_mismatch", False, False, None, None, ref_shape, man_shape,
                          f"shape {tuple(man_shape or ())} should be {tuple(ref_shape)}")
    if manual.dtype != reference.dtype or manual.device != reference.device:
        manual = manual.to(device=reference.device, dtype=reference.dtype)
    with torch.no_grad():
        if torch.equal(manual, reference):  # the common case in float32 chain: one cheap op
            return Comparison("exact", True, True, 0.0, 0.0, ref_shape, man_shape)
        # torch.allclose's test (rtol 1e-5, atol 1e-8, equal infinities are close, NaN is not),
        # written out so that |manual - reference| is computed once for approx and maxdiff.
        absdiff = (manual - reference).abs()
        close = (absdiff <= ATOL + RTOL * reference.abs()) | (manual == reference)
        approx = bool(close.all())
        maxdiff = absdiff.max().item() if manual.numel() else 0.0
        relerr = relative_error(manual, reference) if manual.numel() else 0.0
    status: Status = "approx" if approx else "mismatch"
    message = "" if approx else f"values differ: maxdiff {maxdiff:.3g}"
    return Comparison(status, False, approx, maxdiff, relerr, ref_shape, man_shape, message)
