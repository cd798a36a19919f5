"""Compare a hand-written gradient with autograd's: shape first, then exact, approx, maxdiff, relerr.

A wrong, wrongly shaped or absent gradient is a finding in the result, never an exception.
`lens` judges the same pair under other named standards than allclose, and `ulp_distance` counts
how many representable floats lie between two answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .i18n import german, tr

german({
    "autograd produced no gradient for this node": "Autograd hat für diesen Knoten keinen Gradienten berechnet",
    "no manual gradient was computed for this node": "für diesen Knoten wurde kein eigener Gradient berechnet",
    "the manual gradient is a {kind}, not a tensor": "der eigene Gradient ist ein {kind}, kein Tensor",
    "shape {got} should be {want}": "Form {got} sollte {want} sein",
    "values differ: maxdiff {maxdiff:.3g}": "die Werte weichen ab: maxdiff {maxdiff:.3g}",
})

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
                          tr("autograd produced no gradient for this node"))
    if manual is None:
        return Comparison("missing", False, False, None, None, ref_shape, None,
                          tr("no manual gradient was computed for this node"))
    if not isinstance(manual, torch.Tensor):
        return Comparison("missing", False, False, None, None, ref_shape, None,
                          tr("the manual gradient is a {kind}, not a tensor", kind=type(manual).__name__))
    assert isinstance(reference, torch.Tensor)
    if man_shape != ref_shape:
        return Comparison("shape_mismatch", False, False, None, None, ref_shape, man_shape,
                          tr("shape {got} should be {want}", got=tuple(man_shape or ()), want=tuple(ref_shape)))
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
    message = "" if approx else tr("values differ: maxdiff {maxdiff:.3g}", maxdiff=maxdiff)
    return Comparison(status, False, approx, maxdiff, relerr, ref_shape, man_shape, message)


# ---- other standards than allclose --------------------------------------------------------------

@dataclass(frozen=True)
class Standard:
    """A named tolerance test |yours - reference| <= atol + rtol * |reference| (per dtype)."""

    name: str
    source: str  # the call and numbers, as the tool's own code or docs state them
    float32: tuple[float, float]  # (rtol, atol)
    float64: tuple[float, float]


# The defaults each tool applies when a user passes no tolerance of their own.
STANDARDS: tuple[Standard, ...] = (
    Standard("torch.allclose", "torch.allclose(rtol=1e-05, atol=1e-08)", (1e-5, 1e-8), (1e-5, 1e-8)),
    Standard("torch.testing.assert_close", "torch.testing.assert_close: float32 rtol=1.3e-06, atol=1e-05; "
             "float64 rtol=1e-07, atol=1e-07", (1.3e-6, 1e-5), (1e-7, 1e-7)),
    Standard("torch.autograd.gradcheck", "torch.autograd.gradcheck(atol=1e-05, rtol=0.001)", (1e-3, 1e-5), (1e-3, 1e-5)),
    Standard("jax check_grads", "jax.test_util.check_grads: default_gradient_tolerance float32 2e-3, "
             "float64 1e-5 (rtol = atol)", (2e-3, 2e-3), (1e-5, 1e-5)),
    Standard("llm.c test_gpt2", "llm.c test_gpt2.c check_tensor: |a - b| <= 2e-2", (0.0, 2e-2), (0.0, 2e-2)),
)


LLMC = STANDARDS[-1]  # llm.c's absolute 2e-2: what a transformer's hand-written backward is usually held to


def standard_passes(standard: Standard, manual: torch.Tensor, reference: torch.Tensor) -> bool:
    """Whether `manual` passes `standard` against `reference` (same shape; compared in its dtype)."""
    rtol, atol = standard.float64 if reference.dtype == torch.float64 else standard.float32
    with torch.no_grad():
        m = manual.detach().to(reference.dtype)
        return bool(((m - reference).abs() <= atol + rtol * reference.abs()).logical_or_(m == reference).all())


def lens(manual: torch.Tensor, reference: torch.Tensor) -> list[dict[str, Any]]:
    """The verdict under each of STANDARDS: passed, and `used`, the largest share of the tolerance
    any entry takes (max |d| / (atol + rtol |reference|); <= 1 passes, None when infinite).
    Both tensors must have the same shape; `manual` is compared in `reference`'s dtype."""
    float64 = reference.dtype == torch.float64
    with torch.no_grad():
        m = manual.detach().to(reference.dtype)
        diff = (m - reference).abs()
        scale = reference.abs()
        rows: list[dict[str, Any]] = []
        for standard in STANDARDS:
            rtol, atol = standard.float64 if float64 else standard.float32
            bound = atol + rtol * scale
            ok = (diff <= bound) | (m == reference)
            used = float((diff / bound).max()) if diff.numel() else 0.0
            rows.append({"standard": standard.name, "rtol": rtol, "atol": atol, "passed": bool(ok.all()),
                         "used": used if math.isfinite(used) else None, "source": standard.source})
    return rows


def _ordered(t: torch.Tensor) -> torch.Tensor:
    """Float bits as integers that count up with the floats (so that neighbours differ by 1)."""
    if t.dtype == torch.float32:
        bits = t.view(torch.int32).to(torch.int64)
        return torch.where(bits < 0, -(2**31) - bits, bits)
    bits = t.to(torch.float64).view(torch.int64)
    return torch.where(bits < 0, torch.iinfo(torch.int64).min - bits, bits)


def ulp_distance(manual: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """How many representable numbers of `reference`'s dtype lie between each pair of entries
    (0 when equal, 1 for neighbours): float32 or float64 tensors of the same shape."""
    m = manual.detach().to(reference.dtype)
    return (_ordered(m) - _ordered(reference.detach())).abs()
