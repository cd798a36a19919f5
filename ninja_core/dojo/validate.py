"""Parse a learner's code and check the whole tree before any of it runs.

`ast.parse` only builds a tree; nothing is compiled or evaluated. The tree is walked once,
iteratively (a recursive walk would itself be a way to exhaust the stack), and every node is
checked against an allow-list of constructs, names, attributes and keywords. The first
problem found is reported with its line and column, and then nothing has run.
"""

from __future__ import annotations

import ast
import builtins
import re
import warnings
from dataclasses import dataclass

from .allowlist import (
    BUILTINS,
    F_FUNCTIONS,
    KEYWORDS,
    TORCH_CONSTANTS,
    TORCH_FUNCTIONS,
    attribute_names,
)
from .errors import DojoError, ErrorKind
from .limits import DEFAULT_LIMITS, Limits

STATEMENTS: tuple[type[ast.AST], ...] = (ast.Assign, ast.AugAssign, ast.Expr, ast.For, ast.If, ast.Pass, ast.Break,
                                         ast.Continue)
EXPRESSIONS: tuple[type[ast.AST], ...] = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Attribute,
                                          ast.Subscript, ast.Slice, ast.Name, ast.Constant, ast.Tuple, ast.List,
                                          ast.IfExp, ast.ListComp, ast.Starred)
OPERATORS: tuple[type[ast.AST], ...] = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult, ast.BitAnd, ast.BitOr, ast.BitXor,
    ast.UAdd, ast.USub, ast.Not, ast.Invert, ast.And, ast.Or,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot,
    ast.Load, ast.Store,
)
OTHER: tuple[type[ast.AST], ...] = (ast.Module, ast.keyword, ast.comprehension)
ALLOWED: tuple[type[ast.AST], ...] = STATEMENTS + EXPRESSIONS + OPERATORS + OTHER

# Why a construct is refused, in the learner's terms.
REFUSED: dict[type[ast.AST], str] = {
    ast.Import: "import is not allowed: torch and F are already there",
    ast.ImportFrom: "import is not allowed: torch and F are already there",
    ast.FunctionDef: "defining functions (def) is not allowed",
    ast.AsyncFunctionDef: "defining functions (def) is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ClassDef: "classes are not allowed",
    ast.While: "while loops are not allowed: use for i in range(...)",
    ast.With: "with is not allowed",
    ast.AsyncWith: "with is not allowed",
    ast.Try: "try/except is not allowed",
    ast.Raise: "raise is not allowed",
    ast.Global: "global is not allowed",
    ast.Nonlocal: "nonlocal is not allowed",
    ast.Delete: "del is not allowed",
    ast.Assert: "assert is not allowed",
    ast.Return: "return is not allowed outside a function (and functions are not allowed)",
    ast.AnnAssign: "type annotations are not allowed: write x = ...",
    ast.NamedExpr: "the walrus operator := is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Set: "sets are not allowed",
    ast.DictComp: "dict comprehensions are not allowed",
    ast.SetComp: "set comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed: use a list [... for i in range(...)]",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Await: "await is not allowed",
    ast.LShift: "shift operators are not allowed",
    ast.RShift: "shift operators are not allowed",
    ast.In: "the in operator is not allowed",
    ast.NotIn: "the in operator is not allowed",
    ast.Del: "del is not allowed",
}

# The parser warns about some odd code (e.g. "1if x") on stderr: not for a server's log. The
# filter matches only warnings about code parsed under this file name, i.e. learners' code.
PSEUDO_FILE = "<dojo>"
warnings.filterwarnings("ignore", category=SyntaxWarning, module=re.escape(PSEUDO_FILE))

NAMESPACES: frozenset[str] = frozenset({"torch", "F"})
PROTECTED: frozenset[str] = NAMESPACES | frozenset(BUILTINS)  # names a program may not rebind
# Python's builtins the dojo does not offer: named in a clear refusal (rather than "not defined")
# when a program reads one it never assigned. getattr, eval, open, type, vars, __import__, ...
UNOFFERED_BUILTINS: frozenset[str] = frozenset(dir(builtins)) - frozenset(BUILTINS) - {"True", "False", "None"}
ANY_ATTRIBUTE: frozenset[str] = attribute_names()
HINTS: dict[str, str] = {
    "load": "it reads files", "save": "it writes files", "from_file": "it reads files",
    "nn": "use F for torch.nn.functional", "einsum": "it needs a string; use @, * and .sum(dim)",
    "empty": "it returns uninitialised memory; use torch.zeros", "storage": "it exposes raw memory",
    "numpy": "it leaves torch", "data_ptr": "it exposes a memory address",
}


@dataclass(frozen=True)
class Program:
    source: str
    tree: ast.Module


def is_cmp_line(node: ast.AST) -> bool:
    """`cmp("h", dh, h)` on a line of its own: the lecture's check, which the dojo does itself. Such a
    line is skipped, never validated or run, so a whole notebook cell can be pasted as it is."""
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "cmp")


def _where(node: ast.AST) -> tuple[int | None, int | None]:
    line = getattr(node, "lineno", None)
    col = getattr(node, "col_offset", None)
    return line, None if col is None else col + 1


def refuse(node: ast.AST, message: str, kind: ErrorKind = "forbidden") -> DojoError:
    line, col = _where(node)
    return DojoError(kind, message, line, col)


def parse(source: str, limits: Limits = DEFAULT_LIMITS) -> Program:
    """Parse and validate; raises DojoError (syntax, limit or forbidden) before anything runs."""
    if not isinstance(source, str):
        raise DojoError("syntax", "the code must be text")
    size = len(source.encode("utf-8", errors="replace"))
    if size > limits.source_bytes:
        raise DojoError("limit", f"the code is {size:,} bytes; the limit is {limits.source_bytes:,}")
    try:
        tree = ast.parse(source, filename=PSEUDO_FILE, mode="exec")
    except SyntaxError as exc:
        message = (exc.msg or "invalid syntax").strip()
        # the parser's own caps on nesting are limits, like ours
        kind: ErrorKind = "limit" if "too many nested" in message or "too complex" in message else "syntax"
        raise DojoError(kind, message, exc.lineno, exc.offset) from None
    except (RecursionError, MemoryError):
        raise DojoError("limit", "the code is nested too deeply") from None
    except ValueError as exc:  # e.g. a NUL byte in the source
        raise DojoError("syntax", str(exc).splitlines()[0]) from None
    check_tree(tree, limits)
    return Program(source, tree)


def _stored_names(tree: ast.Module) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def check_tree(tree: ast.Module, limits: Limits = DEFAULT_LIMITS) -> None:
    stored = _stored_names(tree)  # ast.walk is iterative
    # (node, depth, parent, nearest node with a position, inside a for loop); operators, contexts and
    # comprehension clauses have no line and column of their own, so they report their parent's.
    stack: list[tuple[ast.AST, int, ast.AST | None, ast.AST, bool]] = [(tree, 0, None, tree, False)]
    while stack:
        node, depth, parent, located, in_loop = stack.pop()
        if is_cmp_line(node):
            continue
        located = node if hasattr(node, "lineno") else located
        try:
            if depth > limits.depth:
                raise refuse(located, f"the code is nested more than {limits.depth} levels deep", "limit")
            check_node(node, parent, in_loop, stored)
        except DojoError as exc:
            line, col = _where(located)
            raise exc.at(line, col) from None
        loop_body = in_loop or isinstance(node, ast.For)
        # reversed, so nodes are checked in source order and the first problem is the one reported
        for child in reversed(list(ast.iter_child_nodes(node))):
            stack.append((child, depth + 1, node, located, loop_body))


def check_node(node: ast.AST, parent: ast.AST | None, in_loop: bool, stored: set[str]) -> None:
    if not isinstance(node, ALLOWED):
        message = REFUSED.get(type(node), f"{type(node).__name__} is not allowed in the dojo")
        raise refuse(node, message)
    if isinstance(node, ast.Name):
        _check_name(node, stored)
    elif isinstance(node, ast.Attribute):
        _check_attribute(node)
    elif isinstance(node, ast.Constant):
        _check_constant(node, parent)
    elif isinstance(node, ast.keyword):
        if node.arg is None:
            raise refuse(node, "**keyword unpacking is not allowed")
        if node.arg not in KEYWORDS:
            raise refuse(node, f"the keyword argument {node.arg}= is not allowed in the dojo")
    elif isinstance(node, ast.Starred):
        if not (isinstance(parent, ast.Call) and node in parent.args):
            raise refuse(node, "* unpacking is only allowed in a call's arguments, e.g. torch.zeros(*x.shape)")
    elif isinstance(node, ast.For):
        _check_loop_header(node, node.target, node.iter, "for loops")
        if node.orelse:
            raise refuse(node, "for ... else is not allowed")
    elif isinstance(node, ast.comprehension):
        _check_loop_header(node.iter, node.target, node.iter, "comprehensions")
    elif isinstance(node, (ast.Break, ast.Continue)) and not in_loop:
        raise refuse(node, f"'{type(node).__name__.lower()}' outside a loop", "syntax")
    elif isinstance(node, (ast.Assign, ast.AugAssign)):
        for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
            _check_target(target, allow_unpack=isinstance(node, ast.Assign))
    elif isinstance(node, ast.Call) and not isinstance(node.func, (ast.Name, ast.Attribute)):
        raise refuse(node, "only named functions and methods can be called, e.g. torch.tanh(x) or x.sum(0)")


def _check_name(node: ast.Name, stored: set[str]) -> None:
    name = node.id
    if name.startswith("__") and name.endswith("__"):
        raise refuse(node, f"dunder names like {name} are not allowed")
    if isinstance(node.ctx, ast.Store) and name in PROTECTED:
        raise refuse(node, f"{name} cannot be reassigned")
    if isinstance(node.ctx, ast.Load) and name in UNOFFERED_BUILTINS and name not in stored:
        raise refuse(node, f"{name} is not available in the dojo")


def _check_attribute(node: ast.Attribute) -> None:
    attr = node.attr
    if not isinstance(node.ctx, ast.Load):
        raise refuse(node, f"assigning to an attribute (.{attr} = ...) is not allowed")
    if attr.startswith("_"):
        raise refuse(node, f"attributes starting with an underscore (.{attr}) are not allowed")
    base = node.value.id if isinstance(node.value, ast.Name) else None
    if base == "torch":
        if attr not in TORCH_FUNCTIONS and attr not in TORCH_CONSTANTS:
            hint = HINTS.get(attr)
            raise refuse(node, f"torch.{attr} is not available in the dojo" + (f" ({hint})" if hint else ""))
    elif base == "F":
        if attr not in F_FUNCTIONS:
            raise refuse(node, f"F.{attr} is not available in the dojo")
    elif attr not in ANY_ATTRIBUTE:
        hint = HINTS.get(attr)
        raise refuse(node, f".{attr} is not available in the dojo" + (f" ({hint})" if hint else ""))


def _check_constant(node: ast.Constant, parent: ast.AST | None) -> None:
    value = node.value
    if isinstance(value, str):
        if isinstance(parent, ast.Expr):
            return  # a docstring or a string on its own line: a comment, never evaluated
        raise refuse(node, "text strings are not allowed in the dojo")
    if isinstance(value, (bytes, complex)):
        raise refuse(node, f"{type(value).__name__} constants are not allowed")


def _check_loop_header(where: ast.AST, target: ast.AST, iterable: ast.AST, what: str) -> None:
    if not isinstance(target, ast.Name):
        raise refuse(where, f"{what} need a single loop variable: for i in range(...)")
    is_range = (isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and iterable.func.id == "range"
                and not iterable.keywords)
    if not is_range:
        raise refuse(iterable, f"{what} may only go over range(...)")


def _check_target(target: ast.AST, allow_unpack: bool) -> None:
    if isinstance(target, (ast.Name, ast.Subscript)):
        return
    if allow_unpack and isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _check_target(element, allow_unpack=False)
        return
    if isinstance(target, ast.Attribute):
        return  # refused with its own message by _check_attribute
    raise refuse(target, "you can assign to a name (x = ...), an element (x[i] = ...) or a few names (a, b = ...)")
