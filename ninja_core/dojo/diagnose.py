"""Say in plain words what is wrong with a learner's gradient, for the common mistakes.

Each check compares the learner's tensor ("yours") with autograd's ("expected") and returns
sentences; `diagnose` runs them in order of how much they explain: not a tensor, NaN/Inf, wrong
shape (with the broadcasting reason), all zeros, sign, transposed, a constant factor (named: n,
1/n, n-1, 2, ...), one accumulation branch missing or doubled, and where the entries differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..compare import ATOL, RTOL, Comparison

if TYPE_CHECKING:
    from ..run import Run

Shape = tuple[int, ...]
CHUNK = 1 << 16
LOOSE = 1e-4  # relative tolerance for "yours is this transformation of autograd's": float32 noise passes


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
    return text + (f", … ({total} in all)" if total > limit else "")


def index_list(indices: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f", … ({len(indices)} in all)" if len(indices) > limit else "")


# ---- shapes ------------------------------------------------------------------------------------

def shape_reason(got: Shape, want: Shape, node: str) -> str:
    """Why `got` is not `want`, in terms of the broadcasting mistake that usually causes it."""
    g, w = fmt(got), fmt(want)
    if not got and want:
        return f"{g} should be {w}: yours is a single number; summed over too many dims?"
    if len(got) == 2 and got == want[::-1]:
        return f"{g} should be {w}: transposed"
    squeezed = tuple(s for s in want if s != 1)
    if got == squeezed and 1 in want:
        dims = [d for d, s in enumerate(want) if s == 1]
        return f"{g} should be {w}: keepdim=True is missing (the sum over dim {dims[0]} dropped that dimension)"
    if len(got) == len(want):
        reduce = [d for d in range(len(want)) if want[d] == 1 and got[d] != 1]
        spread = [d for d in range(len(want)) if got[d] == 1 and want[d] != 1]
        same = all(got[d] == want[d] for d in range(len(want)) if d not in reduce and d not in spread)
        if same and reduce and not spread:
            return f"{g} should be {w}: sum over dim {', '.join(map(str, reduce))} with keepdim=True"
        if same and spread and not reduce:
            return (f"{g} should be {w}: d{node} needs one entry per entry of {node}; broadcast yours over "
                    f"dim {', '.join(map(str, spread))} (e.g. multiply by torch.ones_like({node}))")
    if len(got) > len(want) and tuple(got[len(got) - len(want):]) == tuple(want):
        extra = list(range(len(got) - len(want)))
        if all(got[d] == 1 for d in extra):
            return f"{g} should be {w}: an extra leading dimension of size 1 (from [None] or unsqueeze?)"
        return f"{g} should be {w}: sum over dim {', '.join(map(str, extra))} (without keepdim)"
    if len(got) < len(want) and tuple(want[len(want) - len(got):]) == tuple(got):
        return f"{g} should be {w}: d{node} needs one entry per entry of {node}; broadcast yours over the leading dims"
    if math.prod(got) == math.prod(want):
        return f"{g} should be {w}: the same number of entries in another shape (.view({', '.join(map(str, want))}))"
    return f"{g} should be {w}: a gradient always has the shape of its tensor"


def shape_hints(yours: torch.Tensor, expected: torch.Tensor) -> list[str]:
    """When the shape is wrong, whether the values would be right after the obvious fix."""
    got, want = tuple(yours.shape), tuple(expected.shape)
    if yours.numel() == expected.numel():
        if len(got) == 2 and got == want[::-1] and close(yours.T, expected):
            return ["the values are right: yours.T matches autograd"]
        if close(yours.reshape(want), expected):
            return ["the values are right: only the shape is wrong"]
        return []
    if len(got) == len(want) and all(w in (g, 1) for g, w in zip(got, want, strict=True)):
        dims = tuple(d for d in range(len(want)) if want[d] == 1 and got[d] != 1)
        if dims and close(yours.sum(dims, keepdim=True), expected):
            return [f"summing yours over dim {', '.join(map(str, dims))} (keepdim=True) would match autograd"]
    if len(got) == len(want) + 1 and tuple(got[1:]) == want and close(yours.sum(0), expected):
        return ["summing yours over dim 0 would match autograd"]
    return []


# ---- values ------------------------------------------------------------------------------------

def factor_names(n: int) -> list[tuple[float, str, str]]:
    """(factor, name, hint) for the constant factors learners typically get wrong."""
    return [
        (float(n), f"{n} (= n)", "did you forget 1/n?"),
        (1 / n, f"1/{n} (= 1/n)", "divided by n once too often?"),
        (float(n - 1), f"{n - 1} (= n-1)", "did you forget 1/(n-1)?"),
        (1 / (n - 1), f"1/{n - 1} (= 1/(n-1))", "divided by n-1 once too often?"),
        (n / (n - 1), f"{n / (n - 1):.4g} (= n/(n-1))",
         "1/(n-1) used where 1/n belongs: the batch mean divides by n, the variance (Bessel) by n-1"),
        ((n - 1) / n, f"{(n - 1) / n:.4g} (= (n-1)/n)",
         "1/n used where 1/(n-1) belongs: the variance (Bessel) divides by n-1, the batch mean by n"),
        (2.0, "2", "an extra factor 2, or one branch counted twice?"),
        (0.5, "1/2", "the 2 of d(x**2)/dx = 2*x is missing?"),
    ]


def constant_factor(yours: torch.Tensor, expected: torch.Tensor) -> float | None:
    """c with yours ≈ c · expected (least squares), or None when no single factor explains yours."""
    y, e = yours.double().flatten(), expected.double().flatten()
    ee = float(e @ e)
    if ee == 0.0 or not math.isfinite(ee):
        return None
    c = float(y @ e) / ee
    return c if close(yours.double(), c * expected.double()) else None


def describe_factor(c: float, n: int) -> str:
    sign = ""
    if c < 0:
        if abs(c + 1) <= 1e-3:
            return "the sign is flipped"
        sign, c = "the sign is flipped and it is ", -c
    for value, name, hint in factor_names(n):
        if abs(c - value) <= 1e-3 * value:
            return f"{sign}off by a factor of {name}: {hint}"
    return f"{sign}off by a constant factor: yours ≈ {c:.4g} × autograd's"


def matches_head(bad: int, total: int) -> str:
    share = math.floor(100 * (total - bad) / total)  # floor: 2047 of 2048 is 99%, not 100%
    return f"matches on {share}% of the entries ({total - bad} of {total}); {bad} differ{'s' if bad == 1 else ''}"


def where_pattern(mismatch: torch.Tensor) -> str | None:
    """Where the wrong entries are, when they form a pattern: whole rows, whole columns, exactly
    one entry per row, or a few rows or columns. None when they are scattered."""
    total, bad = mismatch.numel(), int(mismatch.sum())
    head = matches_head(bad, total)
    mostly_right = 2 * bad <= total
    if bad <= 4 and mostly_right:
        return f"{head}: at {positions(mismatch)}"
    m = mismatch.reshape(mismatch.shape[0], -1) if mismatch.dim() > 2 else mismatch
    if m.dim() == 1:
        return f"{head}: entries {index_list(m.nonzero().flatten().tolist())}" if mostly_right else None
    if m.shape[0] < 2 or m.shape[1] < 2:
        return None
    rows = m.any(1).nonzero().flatten().tolist()
    cols = m.any(0).nonzero().flatten().tolist()
    if bool(m[rows].all()) and len(rows) < m.shape[0]:
        return f"{head}: whole rows {index_list(rows)}"
    if bool(m[:, cols].all()) and len(cols) < m.shape[1]:
        return f"{head}: whole columns {index_list(cols)}"
    if bool((m.sum(1) == 1).all()):
        return f"{head}: exactly one entry in every row (columns {index_list(m.float().argmax(1).tolist())})"
    if len(cols) <= m.shape[1] // 4:
        return f"{head}, all in columns {index_list(cols)}"
    if len(rows) <= m.shape[0] // 4:
        return f"{head}, all in rows {index_list(rows)}"
    return None


def branch_findings(node: str, yours: torch.Tensor, run: Run) -> list[str]:
    """For a node that feeds several steps (its gradient is a sum, built with +=): is one branch
    missing, counted twice, or off by a factor? Each branch is computed from autograd's own
    upstream gradient, so this holds whatever the other branches are."""
    branches = run.tape.consumers.get(node, [])
    if len(branches) < 2:
        return []
    expected = run.autograd[node]
    contributions = []
    for step, grad in branches:
        upstream = run.autograd.get(step.out)
        if upstream is None:
            return []
        with torch.no_grad():
            contributions.append((step.out, grad.compute(run.values, upstream).to(expected.dtype)))
    n = int(run.values["n"])
    for i, (source, part) in enumerate(contributions):
        others = [name for j, (name, _) in enumerate(contributions) if j != i]
        rest = yours - (expected - part)  # what yours has in place of this branch
        if not bool(part.any()):
            continue  # a branch that is zero here cannot be told apart
        if close(rest, torch.zeros_like(part), rtol=LOOSE) or close(yours, expected - part):
            return [f"matches the branch{'es' if len(others) > 1 else ''} from {', '.join(others)} only; "
                    f"the branch from {source} (+=) is missing"]
        c = constant_factor(rest, part)
        if c is not None and abs(c - 2) < 1e-3:
            return [f"the branch from {source} is counted twice"]
        if c is not None and abs(c + 1) < 1e-3:
            return [f"the branch from {source} has its sign flipped (-= where += belongs?)"]
        if c is not None:
            return [f"the branch from {source} is {describe_factor(c, n)}"]
    return []


# allclose passes anything within 1e-8 of a gradient that is ~0 (b1's is zero in exact arithmetic:
# batchnorm subtracts the mean, so b1 cancels). Beyond this relative error, "approx" proves little.
SUSPICIOUS_RELERR = 1e-3


def positive(comparison: Comparison, dtype: torch.dtype, expected: torch.Tensor) -> list[str]:
    if comparison.exact:
        return ["exact: bit for bit what autograd computed"]
    precision = str(dtype).replace("torch.", "")
    notes = [f"rounding only: maxdiff {comparison.maxdiff:.1g}, {precision} order of operations"]
    if comparison.relerr is not None and comparison.relerr > SUSPICIOUS_RELERR:
        largest = float(expected.abs().max()) if expected.numel() else 0.0
        notes = [f"approx only because this gradient is tiny (largest |entry| {largest:.1g}), so any small "
                 f"numbers pass allclose; the relative error is {comparison.relerr:.2g}: check the formula "
                 "(it may be right: a gradient that is zero in exact arithmetic is only rounding noise)"]
    return notes


def diagnose(node: str, yours: Any, run: Run, comparison: Comparison) -> list[str]:
    """Plain-words findings about the learner's d<node>, compared with autograd's."""
    expected = run.autograd[node]
    want = tuple(expected.shape)
    if not isinstance(yours, torch.Tensor):
        return [f"your answer is a {type(yours).__name__}, not a tensor of shape {fmt(want)}"]
    notes = []
    if yours.dtype != expected.dtype:
        notes.append(f"yours is {str(yours.dtype).replace('torch.', '')}, autograd's "
                     f"{str(expected.dtype).replace('torch.', '')} (compared after converting yours)")
    if comparison.status in ("exact", "approx"):
        return positive(comparison, expected.dtype, expected) + notes
    y = yours.detach().to(expected.dtype)
    finite = torch.isfinite(y)
    if not bool(finite.all()):
        nans, infs = int(torch.isnan(y).sum()), int(torch.isinf(y).sum())
        notes.append(f"{nans} NaN and {infs} ±Inf entries, at {positions(~finite)}: "
                     "a log of 0, a division by 0 or an overflow?")
        if tuple(y.shape) != want:
            notes.append(shape_reason(tuple(y.shape), want, node))
        return notes
    if tuple(y.shape) != want:
        return [shape_reason(tuple(y.shape), want, node), *shape_hints(y, expected), *notes]
    return value_findings(node, y, expected, run) + notes


def value_findings(node: str, y: torch.Tensor, expected: torch.Tensor, run: Run) -> list[str]:
    """Same shape, different values: what kind of different."""
    n = int(run.values["n"])
    if not bool(y.any()):
        return ["all zeros, where autograd's is not: was the gradient never written (torch.zeros_like and nothing "
                "added), or multiplied by something that is 0?"]
    if close(y, -expected):
        return ["the sign is flipped: yours ≈ -autograd's (check the minus signs, e.g. d(a - b)/db = -1)"]
    if y.dim() == 2 and y.shape[0] == y.shape[1] and close(y, expected.T):
        return ["transposed: yours.T matches autograd's"]
    c = constant_factor(y, expected)
    if c is not None:
        return [describe_factor(c, n)]
    findings = branch_findings(node, y, run)
    mismatch = (y - expected).abs() > ATOL + RTOL * expected.abs()
    pattern = where_pattern(mismatch)
    many = len(run.tape.consumers.get(node, [])) > 1
    if findings:
        return findings + ([pattern] if pattern else [])
    if pattern:
        return [pattern + (": a missing accumulation branch (+=)?" if many else "")]
    bad, total = int(mismatch.sum()), mismatch.numel()
    if 2 * bad <= total:
        return [f"{matches_head(bad, total)}, e.g. at {positions(mismatch)}"
                + (": a missing accumulation branch (+=)?" if many else "")]
    e, d = expected.double(), (y.double() - expected.double())
    relerr = float(d.norm() / max(float(e.norm()), float(y.double().norm()), 1e-300))
    return [f"differs at {bad} of {total} entries: maxdiff {float(d.abs().max()):.3g}, relative error {relerr:.2g}"]
