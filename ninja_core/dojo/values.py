"""The kinds of value a learner's program may hold, and how they are described and printed.

Tensors, numbers, None, Ellipsis, tuples and lists of those, slices, ranges, torch.Size, dtypes,
max/min results, and the dojo's own handles (`torch`, `F`, functions, bound methods): `admit`
lets a value in only if it is one of these, and counts new tensors against the budget.
"""

from __future__ import annotations

from typing import Any

import torch

from .allowlist import Function, Method, Namespace, count_items
from .errors import DojoError
from .limits import Budget

HANDLES = (Namespace, Function, Method)
MAX_NESTING = 32  # lists in lists in ...: torch allows at most 32 dimensions anyway
PRINT_ELEMENTS = 1000  # torch's own summarising threshold


def is_result(value: Any) -> bool:
    """torch's named results of max/min(dim): (values, indices)."""
    return type(value).__module__ == "torch.return_types"


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, HANDLES):
        return repr(value)
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def runtime_error(exc: BaseException) -> DojoError:
    """torch's or Python's own message, first line, trimmed."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if isinstance(exc, ZeroDivisionError) and "zero" not in text:
        text = f"division by zero ({text})"
    return DojoError("runtime", text[:300] + ("…" if len(text) > 300 else ""))


def admit(value: Any, budget: Budget) -> Any:
    """Let a value into the program only if it is one of the dojo's kinds; count new tensors."""
    if value is None or value is Ellipsis or isinstance(value, (bool, float, torch.dtype, range, slice, *HANDLES)):
        return value
    if isinstance(value, int):
        return budget.check_int(value)
    if isinstance(value, torch.Tensor):
        budget.track(value)
        return value
    if isinstance(value, (tuple, list)):  # torch.Size, max/min results, lists from tolist() or literals
        limit = budget.limits.sequence_items
        if count_items(value, limit) > limit:
            raise DojoError("limit", f"a list of more than {limit:,} items")
        # Nesting is bounded too: torch.tensor, ==, and repr walk nested lists recursively.
        stack: list[tuple[Any, int]] = [(item, 1) for item in value]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, (list, tuple)):
                if depth >= MAX_NESTING:
                    raise DojoError("limit", f"lists nested more than {MAX_NESTING} deep")
                stack.extend((inner, depth + 1) for inner in item)
            elif item is None or item is Ellipsis or isinstance(item, (bool, float, int, torch.Tensor, torch.dtype, range,
                                                                       slice, *HANDLES)):
                if isinstance(item, torch.Tensor):
                    budget.track(item)
                elif isinstance(item, int) and not isinstance(item, bool):
                    budget.check_int(item)
            else:
                raise DojoError("forbidden", f"a {type(item).__name__} value is not allowed in the dojo")
        return value
    if isinstance(value, complex):
        raise DojoError("runtime", "the result is a complex number (e.g. a negative number to a fractional power)")
    raise DojoError("forbidden", f"a {type(value).__name__} value is not allowed in the dojo")


def short_repr(value: Any, limit: int) -> str:
    """repr for print(), never longer than about `limit` characters, whatever the nesting.

    Big tensors get a one-line summary: torch summarises only dimensions longer than 6, so a
    tensor of shape (2,) * 23 would be printed in full, 8 million numbers, inside one call."""
    if isinstance(value, torch.Tensor) and value.numel() > PRINT_ELEMENTS:
        first = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value.flatten()[:6].tolist())
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype}, first values [{first}, …])"
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size) and not is_result(value):
        opener, closer = ("[", "]") if isinstance(value, list) else ("(", ")")
        parts: list[str] = []
        used = 0
        for item in value:
            if used > limit:
                parts.append("…")
                break
            text = short_repr(item, limit - used)
            parts.append(text)
            used += len(text) + 2
        return opener + ", ".join(parts) + closer
    return repr(value)[: max(limit, 0) + 1]
