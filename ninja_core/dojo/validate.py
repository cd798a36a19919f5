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

from ..i18n import german, tr
from .allowlist import (
    BUILTINS,
    F_FUNCTIONS,
    KEYWORDS,
    TENSOR_METHODS,
    TORCH_CONSTANTS,
    TORCH_FUNCTIONS,
    Op,
    attribute_names,
)
from .errors import DojoError, ErrorKind
from .limits import DEFAULT_LIMITS, Limits
from .signatures import REFUSED_KEYWORDS, string_allowed

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

german({
    "import is not allowed: torch and F are already there": "import ist nicht erlaubt: torch und F sind schon da",
    "defining functions (def) is not allowed": "Funktionen definieren (def) ist nicht erlaubt",
    "lambda is not allowed": "lambda ist nicht erlaubt",
    "classes are not allowed": "Klassen sind nicht erlaubt",
    "while loops are not allowed: use for i in range(...)": "while-Schleifen sind nicht erlaubt: nimm for i in range(...)",
    "with is not allowed": "with ist nicht erlaubt",
    "try/except is not allowed": "try/except ist nicht erlaubt",
    "raise is not allowed": "raise ist nicht erlaubt",
    "global is not allowed": "global ist nicht erlaubt",
    "nonlocal is not allowed": "nonlocal ist nicht erlaubt",
    "del is not allowed": "del ist nicht erlaubt",
    "assert is not allowed": "assert ist nicht erlaubt",
    "return is not allowed outside a function (and functions are not allowed)":
        "return ist außerhalb einer Funktion nicht erlaubt (und Funktionen sind nicht erlaubt)",
    "type annotations are not allowed: write x = ...": "Typannotationen sind nicht erlaubt: schreib x = ...",
    "the walrus operator := is not allowed": "der Walross-Operator := ist nicht erlaubt",
    "f-strings are not allowed": "f-Strings sind nicht erlaubt",
    "dicts are not allowed": "dicts sind nicht erlaubt",
    "sets are not allowed": "sets sind nicht erlaubt",
    "dict comprehensions are not allowed": "dict-Comprehensions sind nicht erlaubt",
    "set comprehensions are not allowed": "set-Comprehensions sind nicht erlaubt",
    "generator expressions are not allowed: use a list [... for i in range(...)]":
        "Generator-Ausdrücke sind nicht erlaubt: nimm eine Liste [... for i in range(...)]",
    "yield is not allowed": "yield ist nicht erlaubt",
    "await is not allowed": "await ist nicht erlaubt",
    "shift operators are not allowed": "Schiebeoperatoren sind nicht erlaubt",
    "the in operator is not allowed": "der Operator in ist nicht erlaubt",
    "{name} is not allowed in the dojo": "{name} ist im Dojo nicht erlaubt",
    "the code must be text": "der Code muss Text sein",
    "the code is {size:,} bytes; the limit is {limit:,}": "der Code ist {size:,} Bytes groß; die Grenze ist {limit:,}",
    "the code is nested too deeply": "der Code ist zu tief verschachtelt",
    "the code is nested more than {depth} levels deep": "der Code ist mehr als {depth} Ebenen tief verschachtelt",
    "**keyword unpacking is not allowed": "**-Entpacken von Schlüsselwörtern ist nicht erlaubt",
    "the keyword argument {name}= is not allowed in the dojo": "das Schlüsselwortargument {name}= ist im Dojo nicht erlaubt",
    "the keyword argument {name}= is not allowed in the dojo ({why})":
        "das Schlüsselwortargument {name}= ist im Dojo nicht erlaubt ({why})",
    "{label} takes no keyword argument {name}=; it takes {allowed}":
        "{label} nimmt kein Schlüsselwortargument {name}=; es nimmt {allowed}",
    "{label} takes no keyword arguments here": "{label} nimmt hier keine Schlüsselwortargumente",
    "* unpacking is only allowed in a call's arguments, e.g. torch.zeros(*x.shape)":
        "*-Entpacken ist nur in den Argumenten eines Aufrufs erlaubt, z. B. torch.zeros(*x.shape)",
    "for ... else is not allowed": "for ... else ist nicht erlaubt",
    "'{word}' outside a loop": "'{word}' außerhalb einer Schleife",
    "only named functions and methods can be called, e.g. torch.tanh(x) or x.sum(0)":
        "nur benannte Funktionen und Methoden können aufgerufen werden, z. B. torch.tanh(x) oder x.sum(0)",
    "dunder names like {name} are not allowed": "Dunder-Namen wie {name} sind nicht erlaubt",
    "{name} cannot be reassigned": "{name} kann nicht neu zugewiesen werden",
    "{name} is not available in the dojo": "{name} gibt es im Dojo nicht",
    "assigning to an attribute (.{attr} = ...) is not allowed": "einem Attribut zuweisen (.{attr} = ...) ist nicht erlaubt",
    "attributes starting with an underscore (.{attr}) are not allowed":
        "Attribute mit Unterstrich am Anfang (.{attr}) sind nicht erlaubt",
    "{name} is not available in the dojo ({hint})": "{name} gibt es im Dojo nicht ({hint})",

    "{kind} constants are not allowed": "{kind}-Konstanten sind nicht erlaubt",
    "{what} need a single loop variable: for i in range(...)":
        "{what} brauchen eine einzige Schleifenvariable: for i in range(...)",
    "{what} may only go over range(...)": "{what} dürfen nur über range(...) laufen",
    "for loops": "for-Schleifen",
    "comprehensions": "Comprehensions",
    "you can assign to a name (x = ...), an element (x[i] = ...) or a few names (a, b = ...)":
        "zuweisen kannst du einem Namen (x = ...), einem Element (x[i] = ...) oder mehreren Namen (a, b = ...)",
    "it reads files": "es liest Dateien",
    "it writes files": "es schreibt Dateien",
    "use F for torch.nn.functional": "nimm F für torch.nn.functional",
    "it returns uninitialised memory; use torch.zeros": "es liefert nicht initialisierten Speicher; nimm torch.zeros",
    "it exposes raw memory": "es legt rohen Speicher offen",
    "it leaves torch": "es verlässt torch",
    "it exposes a memory address": "es legt eine Speicheradresse offen",
    "text is only allowed where torch reads text: an einsum equation, reduction=, rounding_mode=, approximate=, or "
    "what print() writes":
        "Text ist nur erlaubt, wo torch Text liest: eine einsum-Gleichung, reduction=, rounding_mode=, approximate= "
        "oder was print() ausgibt",
    "it writes into a tensor of any size": "es schreibt in einen Tensor beliebiger Größe",
    "it places or flags a tensor": "es platziert oder markiert einen Tensor",
})

# Why a construct is refused, in the learner's terms.
REFUSED: dict[type[ast.AST], str] = {
    ast.Import: tr("import is not allowed: torch and F are already there"),
    ast.ImportFrom: tr("import is not allowed: torch and F are already there"),
    ast.FunctionDef: tr("defining functions (def) is not allowed"),
    ast.AsyncFunctionDef: tr("defining functions (def) is not allowed"),
    ast.Lambda: tr("lambda is not allowed"),
    ast.ClassDef: tr("classes are not allowed"),
    ast.While: tr("while loops are not allowed: use for i in range(...)"),
    ast.With: tr("with is not allowed"),
    ast.AsyncWith: tr("with is not allowed"),
    ast.Try: tr("try/except is not allowed"),
    ast.Raise: tr("raise is not allowed"),
    ast.Global: tr("global is not allowed"),
    ast.Nonlocal: tr("nonlocal is not allowed"),
    ast.Delete: tr("del is not allowed"),
    ast.Assert: tr("assert is not allowed"),
    ast.Return: tr("return is not allowed outside a function (and functions are not allowed)"),
    ast.AnnAssign: tr("type annotations are not allowed: write x = ..."),
    ast.NamedExpr: tr("the walrus operator := is not allowed"),
    ast.JoinedStr: tr("f-strings are not allowed"),
    ast.FormattedValue: tr("f-strings are not allowed"),
    ast.Dict: tr("dicts are not allowed"),
    ast.Set: tr("sets are not allowed"),
    ast.DictComp: tr("dict comprehensions are not allowed"),
    ast.SetComp: tr("set comprehensions are not allowed"),
    ast.GeneratorExp: tr("generator expressions are not allowed: use a list [... for i in range(...)]"),
    ast.Yield: tr("yield is not allowed"),
    ast.YieldFrom: tr("yield is not allowed"),
    ast.Await: tr("await is not allowed"),
    ast.LShift: tr("shift operators are not allowed"),
    ast.RShift: tr("shift operators are not allowed"),
    ast.In: tr("the in operator is not allowed"),
    ast.NotIn: tr("the in operator is not allowed"),
    ast.Del: tr("del is not allowed"),
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
    "load": tr("it reads files"), "save": tr("it writes files"), "from_file": tr("it reads files"),
    "nn": tr("use F for torch.nn.functional"),
    "empty": tr("it returns uninitialised memory; use torch.zeros"), "storage": tr("it exposes raw memory"),
    "numpy": tr("it leaves torch"), "data_ptr": tr("it exposes a memory address"),
}
KEYWORD_HINTS: dict[str, str] = {"out": tr("it writes into a tensor of any size")}


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
        raise DojoError("syntax", tr("the code must be text"))
    size = len(source.encode("utf-8", errors="replace"))
    if size > limits.source_bytes:
        raise DojoError("limit", tr("the code is {size:,} bytes; the limit is {limit:,}", size=size,
                                    limit=limits.source_bytes))
    try:
        tree = ast.parse(source, filename=PSEUDO_FILE, mode="exec")
    except SyntaxError as exc:
        message = (exc.msg or "invalid syntax").strip()  # Python's own words: code, not translated
        # the parser's own caps on nesting are limits, like ours
        kind: ErrorKind = "limit" if "too many nested" in message or "too complex" in message else "syntax"
        raise DojoError(kind, message, exc.lineno, exc.offset) from None
    except (RecursionError, MemoryError):
        raise DojoError("limit", tr("the code is nested too deeply")) from None
    except ValueError as exc:  # e.g. a NUL byte in the source
        raise DojoError("syntax", str(exc).splitlines()[0]) from None
    check_tree(tree, limits)
    return Program(source, tree)


def _stored_names(tree: ast.Module) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def static_op(call: ast.Call) -> Op | None:
    """The allowed op a call reaches, when the code says it without running: torch.sum(...),
    F.one_hot(...), x.sum(...) (a method: whatever x is, only a tensor has methods here), print(...).
    torch, F and the builtins cannot be rebound, so these names always mean the same."""
    func = call.func
    if isinstance(func, ast.Name):
        return BUILTINS.get(func.id)
    if not isinstance(func, ast.Attribute):
        return None
    base = func.value.id if isinstance(func.value, ast.Name) else None
    if base == "torch":
        return TORCH_FUNCTIONS.get(func.attr)
    if base == "F":
        return F_FUNCTIONS.get(func.attr)
    return TENSOR_METHODS.get(func.attr)


def check_tree(tree: ast.Module, limits: Limits = DEFAULT_LIMITS) -> None:
    stored = _stored_names(tree)  # ast.walk is iterative
    texts: set[int] = set()  # ids of string constants a call reads as text (an einsum equation, print's)
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
                raise refuse(located, tr("the code is nested more than {depth} levels deep", depth=limits.depth), "limit")
            check_node(node, parent, in_loop, stored, texts)
        except DojoError as exc:
            line, col = _where(located)
            raise exc.at(line, col) from None
        loop_body = in_loop or isinstance(node, ast.For)
        # reversed, so nodes are checked in source order and the first problem is the one reported
        for child in reversed(list(ast.iter_child_nodes(node))):
            stack.append((child, depth + 1, node, located, loop_body))


def check_node(node: ast.AST, parent: ast.AST | None, in_loop: bool, stored: set[str],
               texts: set[int] | None = None) -> None:
    """Check one node of the tree (its children are checked on their own). `texts` collects the
    string constants that calls read as text: a Call is checked before its arguments."""
    texts = set() if texts is None else texts
    if not isinstance(node, ALLOWED):
        message = REFUSED.get(type(node), tr("{name} is not allowed in the dojo", name=type(node).__name__))
        raise refuse(node, message)
    if isinstance(node, ast.Name):
        _check_name(node, stored)
    elif isinstance(node, ast.Attribute):
        _check_attribute(node)
    elif isinstance(node, ast.Constant):
        _check_constant(node, parent, texts)
    elif isinstance(node, ast.keyword):
        if node.arg is None:
            raise refuse(node, tr("**keyword unpacking is not allowed"))
        if node.arg in REFUSED_KEYWORDS or node.arg not in KEYWORDS:
            hint = KEYWORD_HINTS.get(node.arg)
            raise refuse(node, tr("the keyword argument {name}= is not allowed in the dojo ({why})", name=node.arg,
                                  why=hint) if hint else tr("the keyword argument {name}= is not allowed in the dojo",
                                                            name=node.arg))
    elif isinstance(node, ast.Starred):
        if not (isinstance(parent, ast.Call) and node in parent.args):
            raise refuse(node, tr("* unpacking is only allowed in a call's arguments, e.g. torch.zeros(*x.shape)"))
    elif isinstance(node, ast.For):
        _check_loop_header(node, node.target, node.iter, tr("for loops"))
        if node.orelse:
            raise refuse(node, tr("for ... else is not allowed"))
    elif isinstance(node, ast.comprehension):
        _check_loop_header(node.iter, node.target, node.iter, tr("comprehensions"))
    elif isinstance(node, (ast.Break, ast.Continue)) and not in_loop:
        raise refuse(node, tr("'{word}' outside a loop", word=type(node).__name__.lower()), "syntax")
    elif isinstance(node, (ast.Assign, ast.AugAssign)):
        for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
            _check_target(target, allow_unpack=isinstance(node, ast.Assign))
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, (ast.Name, ast.Attribute)):
            raise refuse(node, tr("only named functions and methods can be called, e.g. torch.tanh(x) or x.sum(0)"))
        _check_call(node, texts)


def _check_call(node: ast.Call, texts: set[int]) -> None:
    """The keywords of a call whose op is known from the code alone, and which of its arguments may
    be text. (A call through a variable, f = torch.sum; f(axis=0), is checked when it runs.)"""
    found = static_op(node)
    if found is None:
        return
    for kw in node.keywords:
        if kw.arg is not None and kw.arg not in REFUSED_KEYWORDS and kw.arg not in found.keywords:
            allowed = ", ".join(f"{k}=" for k in sorted(found.keywords))
            raise refuse(kw.value, tr("{label} takes no keyword argument {name}=; it takes {allowed}", label=found.label,
                                      name=kw.arg, allowed=allowed) if allowed else
                         tr("{label} takes no keyword arguments here", label=found.label))
    for position, arg in enumerate(node.args):
        if _is_text(arg) and string_allowed(found.label, position):
            texts.add(id(arg))
    for kw in node.keywords:
        if kw.arg is not None and _is_text(kw.value) and string_allowed(found.label, kw.arg):
            texts.add(id(kw.value))


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _check_name(node: ast.Name, stored: set[str]) -> None:
    name = node.id
    if name.startswith("__") and name.endswith("__"):
        raise refuse(node, tr("dunder names like {name} are not allowed", name=name))
    if isinstance(node.ctx, ast.Store) and name in PROTECTED:
        raise refuse(node, tr("{name} cannot be reassigned", name=name))
    if isinstance(node.ctx, ast.Load) and name in UNOFFERED_BUILTINS and name not in stored:
        raise refuse(node, tr("{name} is not available in the dojo", name=name))


def _check_attribute(node: ast.Attribute) -> None:
    attr = node.attr
    if not isinstance(node.ctx, ast.Load):
        raise refuse(node, tr("assigning to an attribute (.{attr} = ...) is not allowed", attr=attr))
    if attr.startswith("_"):
        raise refuse(node, tr("attributes starting with an underscore (.{attr}) are not allowed", attr=attr))
    base = node.value.id if isinstance(node.value, ast.Name) else None
    if base == "torch":
        if attr not in TORCH_FUNCTIONS and attr not in TORCH_CONSTANTS:
            _unavailable(node, f"torch.{attr}", attr)
    elif base == "F":
        if attr not in F_FUNCTIONS:
            _unavailable(node, f"F.{attr}", attr)
    elif attr not in ANY_ATTRIBUTE:
        _unavailable(node, f".{attr}", attr)


def _unavailable(node: ast.AST, name: str, attr: str) -> None:
    hint = HINTS.get(attr)
    raise refuse(node, tr("{name} is not available in the dojo ({hint})", name=name, hint=hint) if hint
                 else tr("{name} is not available in the dojo", name=name))


def _check_constant(node: ast.Constant, parent: ast.AST | None, texts: set[int]) -> None:
    value = node.value
    if isinstance(value, str):
        if isinstance(parent, ast.Expr) or id(node) in texts:
            return  # a docstring or a comment-string on its own line, or text a call reads (print, einsum)
        raise refuse(node, tr("text is only allowed where torch reads text: an einsum equation, reduction=, "
                              "rounding_mode=, approximate=, or what print() writes"))
    if isinstance(value, (bytes, complex)):
        raise refuse(node, tr("{kind} constants are not allowed", kind=type(value).__name__))


def _check_loop_header(where: ast.AST, target: ast.AST, iterable: ast.AST, what: str) -> None:
    if not isinstance(target, ast.Name):
        raise refuse(where, tr("{what} need a single loop variable: for i in range(...)", what=what))
    is_range = (isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and iterable.func.id == "range"
                and not iterable.keywords)
    if not is_range:
        raise refuse(iterable, tr("{what} may only go over range(...)", what=what))


def _check_target(target: ast.AST, allow_unpack: bool) -> None:
    if isinstance(target, (ast.Name, ast.Subscript)):
        return
    if allow_unpack and isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _check_target(element, allow_unpack=False)
        return
    if isinstance(target, ast.Attribute):
        return  # refused with its own message by _check_attribute
    raise refuse(target, tr("you can assign to a name (x = ...), an element (x[i] = ...) or a few names (a, b = ...)"))
