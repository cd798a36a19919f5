"""Which keyword arguments and which string arguments a call may take, read from torch's own signatures.

A formula that runs in the learner's notebook should run in the dojo unless it is unsafe, so the
keywords an allowed op accepts are not a hand list: they are the argument names of the op's
native schemas (`torch._C._jit_get_schemas_for_operator("aten::sum")`: `dim`, `keepdim`, `dtype`)
or, for ops written in Python (F.cross_entropy, torch.tensordot), of `inspect.signature`, plus
the NumPy spellings torch's argument parser accepts for some of them (`axis=` for `dim=`,
`keepdims=` for `keepdim=`, `x=` for `input=`, `x2=` for `other=`, see torch's
python_arg_parser.cpp). Refused whatever a signature says: `out=` and every other argument
torch writes into (the `(a!)` of a schema), and the arguments that place or flag a tensor
(`device=`, `layout=`, `pin_memory=`, `requires_grad=`, `generator=`, `memory_format=`, named
dimensions). A test pins the whole derived set, so a torch upgrade that adds a keyword to an
allowed op is reviewed before it reaches learners.

Strings: an allowed call may take a string literal only where torch reads a string as data
(`STRING_PARAMETERS`): an einsum equation, `reduction="sum"`, `rounding_mode=`, and the text a
learner prints. A string is never a value a program holds: it cannot be named, indexed,
formatted, added or have a method called on it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

NUMPY_ALIASES: dict[str, tuple[str, ...]] = {"dim": ("axis",), "keepdim": ("keepdims",), "input": ("x", "a", "x1"),
                                             "other": ("x2",)}
# Keywords refused whatever an op's signature says (why: see the module docstring).
REFUSED_KEYWORDS: frozenset[str] = frozenset({
    "out", "device", "layout", "pin_memory", "requires_grad", "generator", "memory_format", "names", "non_blocking",
    "copy", "sparse_grad", "path", "size_average", "reduce"})

# Op label -> where it takes a string as data: a position (0-based, after the tensor of a method),
# a keyword name, or "*" (every positional argument: print's text).
STRING_PARAMETERS: dict[str, frozenset[int | str]] = {
    "torch.einsum": frozenset({0, "equation"}),
    "F.cross_entropy": frozenset({"reduction"}),
    "F.gelu": frozenset({"approximate"}),
    "torch.div": frozenset({"rounding_mode"}),
    ".div": frozenset({"rounding_mode"}),
    ".div_": frozenset({"rounding_mode"}),
    "print": frozenset({"*"}),
}


def string_allowed(label: str, where: int | str) -> bool:
    """Whether op `label` reads a string at position `where` (an int) or keyword `where` (a str)."""
    allowed = STRING_PARAMETERS.get(label, frozenset())
    return where in allowed or (isinstance(where, int) and "*" in allowed)


def _schema_names(name: str, method: bool) -> set[str] | None:
    """Argument names of aten::<name>'s overloads a Python caller can reach, None when torch has no
    schema for it. Skipped: overloads that write into an argument other than the tensor itself
    (out= variants), take named dimensions, or neither take nor return a tensor."""
    schemas = torch._C._jit_get_schemas_for_operator(f"aten::{name}")
    if not schemas:
        return None
    names: set[str] = set()
    for schema in schemas:
        args = list(schema.arguments)
        writes = any(a.alias_info is not None and a.alias_info.is_write and a.name != "self" for a in args)
        if writes or any("Dimname" in str(a.type) for a in args):
            continue
        if not any("Tensor" in str(x.type) for x in (*args, *schema.returns)):
            continue  # TorchScript's overloads on plain numbers and lists (add.int(int a, int b)): not torch's API
        if method and (not args or args[0].name != "self" or str(args[0].type) != "Tensor"):
            continue  # TorchScript's list/number overloads (sum.int, ...) are no tensor methods
        for a in args:
            if a.name == "self":
                if not method:
                    names.add("input")  # torch.sum(input=x): a function calls its tensor `input`
                continue
            names.add(a.name)
    return names


def _python_names(fn: Callable[..., Any]) -> set[str] | None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return {p.name for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and not p.name.startswith("_")}


def derive_keywords(fn: Callable[..., Any], method: bool, extra: frozenset[str] = frozenset()) -> frozenset[str]:
    """The keyword arguments `fn` accepts, from torch's signatures, minus the refused ones.

    `method`: `fn` is a tensor method (its tensor is `self`, never a keyword). `extra`: keywords of
    a callable torch has no signature for (torch.tensor's `dtype`, ...), given by the caller."""
    is_python = inspect.isfunction(fn) or inspect.ismethod(fn)
    names = _python_names(fn) if is_python else None
    if names is None:
        names = _schema_names(getattr(fn, "__name__", ""), method) or set()
        for base, aliases in NUMPY_ALIASES.items():  # the argument parser's NumPy spellings (C++ ops only)
            if base in names and not (method and base == "input"):
                names.update(aliases)
    return frozenset(names | extra) - REFUSED_KEYWORDS
