"""The kinds of value a learner's program may hold, and how they are described and printed.

Tensors, numbers, None, Ellipsis, tuples and lists of those, slices, ranges, torch.Size, dtypes,
max/min results, and the dojo's own handles (`torch`, `F`, functions, bound methods): `admit`
lets a value in only if it is one of these, and counts new tensors against the budget.
"""

from __future__ import annotations

from typing import Any

import torch

from ..i18n import german, tr
from .allowlist import Function, Method, Namespace, count_items
from .errors import DojoError
from .limits import Budget

german({
    "a tensor of shape {shape}": "ein Tensor der Form {shape}",
    "a value of type {kind}": "ein Wert vom Typ {kind}",
    "division by zero ({text})": "Division durch 0 ({text})",
    "{torch_message}": "torch meldet: {torch_message}",
    "a list of more than {limit:,} items": "eine Liste mit mehr als {limit:,} Elementen",
    "lists nested more than {depth} deep": "Listen, tiefer als {depth} Ebenen verschachtelt",
    "a {kind} value is not allowed in the dojo": "ein Wert vom Typ {kind} ist im Dojo nicht erlaubt",
    "the result is a complex number (e.g. a negative number to a fractional power)":
        "das Ergebnis ist eine komplexe Zahl (z. B. eine negative Zahl hoch einen Bruch)",
})

HANDLES = (Namespace, Function, Method)
MAX_NESTING = 32  # lists in lists in ...: torch allows at most 32 dimensions anyway
PRINT_ELEMENTS = 1000  # torch's own summarising threshold


def is_result(value: Any) -> bool:
    """torch's named results of max/min(dim): (values, indices)."""
    return type(value).__module__ == "torch.return_types"


def describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return tr("a tensor of shape {shape}", shape=tuple(value.shape))
    if isinstance(value, HANDLES):
        return repr(value)
    return tr("a value of type {kind}", kind=type(value).__name__)


def runtime_error(exc: BaseException) -> DojoError:
    """torch's or Python's own message, first line, trimmed."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if isinstance(exc, ZeroDivisionError) and "zero" not in text:
        text = tr("division by zero ({text})", text=text)
    # torch's or Python's own words, quoted as they are (like code); a German reader gets a German lead-in
    return DojoError("runtime", tr("{torch_message}", torch_message=text if len(text) <= 300 else text[:300] + "…"))


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
            raise DojoError("limit", tr("a list of more than {limit:,} items", limit=limit))
        # Nesting is bounded too: torch.tensor, ==, and repr walk nested lists recursively.
        stack: list[tuple[Any, int]] = [(item, 1) for item in value]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, (list, tuple)):
                if depth >= MAX_NESTING:
                    raise DojoError("limit", tr("lists nested more than {depth} deep", depth=MAX_NESTING))
                stack.extend((inner, depth + 1) for inner in item)
            elif item is None or item is Ellipsis or isinstance(item, (bool, float, int, torch.Tensor, torch.dtype, range,
                                                                       slice, *HANDLES)):
                if isinstance(item, torch.Tensor):
                    budget.track(item)
                elif isinstance(item, int) and not isinstance(item, bool):
                    budget.check_int(item)
            else:
                raise DojoError("forbidden", tr("a {kind} value is not allowed in the dojo", kind=type(item).__name__))
        return value
    if isinstance(value, complex):
        raise DojoError("runtime", tr("the result is a complex number (e.g. a negative number to a fractional power)"))
    raise DojoError("forbidden", tr("a {kind} value is not allowed in the dojo", kind=type(value).__name__))


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
