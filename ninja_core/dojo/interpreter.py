"""Run a validated program by walking its tree, one node at a time (micrograd-sized, no compile/eval).

Every value the program holds is one of a few kinds (`admit`): tensors, numbers, None, tuples and
lists of those, slices, ranges, torch.Size, dtypes, max/min results, and the dojo's own handles.
Every call goes through the allow-list's guard first; every statement, loop iteration, call and
operator checks the deadline. Errors are DojoErrors placed at the innermost node that failed.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..i18n import german, tr
from .allowlist import (
    BUILTINS,
    F_FUNCTIONS,
    FUNCTIONAL,
    RESULT_FIELDS,
    TENSOR_METHODS,
    TENSOR_PROPERTIES,
    TORCH,
    TORCH_CONSTANTS,
    TORCH_FUNCTIONS,
    Function,
    Method,
    Op,
    broadcast_guard,
    count_items,
    matmul_guard,
)
from .errors import DojoError
from .indexing import check_index_size, tensor_index
from .limits import Budget
from .scope import Scope
from .signatures import string_allowed
from .trace import Event, OneHotWidth, RepeatedIndex, repeated_entries
from .validate import is_cmp_line
from .values import admit, describe, is_result, runtime_error, short_repr

german({
    "{what} is not allowed": "{what} ist nicht erlaubt",
    "for loops may only go over range(...)": "for-Schleifen dürfen nur über range(...) laufen",
    "comprehensions may only go over range(...)": "Comprehensions dürfen nur über range(...) laufen",
    "cannot assign to this": "hierhin kann nicht zugewiesen werden",
    "cannot unpack {what} into {count} names": "{what} lässt sich nicht auf {count} Namen verteilen",
    "cannot unpack {length} values into {count} names": "{length} Werte lassen sich nicht auf {count} Namen verteilen",
    "break/continue outside a loop": "break/continue außerhalb einer Schleife",
    "the code is nested too deeply": "der Code ist zu tief verschachtelt",
    "out of memory": "kein Speicher mehr",
    "name '{name}' is not defined; did you mean {close}?": "der Name '{name}' ist nicht definiert; meintest du {close}?",
    "name '{name}' is not defined; available: {names}, …": "der Name '{name}' ist nicht definiert; vorhanden: {names}, …",
    "a list can only be repeated by a whole number, not {what}":
        "eine Liste lässt sich nur mit einer ganzen Zahl vervielfachen, nicht mit {what}",
    "a list of more than {limit:,} items": "eine Liste mit mehr als {limit:,} Elementen",
    "{left} ** {right} is too large; integers are limited to {bits} bits":
        "{left} ** {right} ist zu groß; ganze Zahlen sind auf {bits} Bits begrenzt",
    "a comparison": "ein Vergleich",
    "{what} has no attribute .{name} in the dojo": "{what} hat im Dojo kein Attribut .{name}",
    ".T needs a 2-D tensor, this one has {dims} dimensions (use .permute)":
        ".T braucht einen 2-D-Tensor, dieser hat {dims} Dimensionen (nimm .permute)",
    "{what} can only be indexed with a whole number or a slice":
        "{what} lässt sich nur mit einer ganzen Zahl oder einem Slice indizieren",
    "{what} cannot be indexed": "{what} lässt sich nicht indizieren",
    "only tensor elements can be assigned (x[i] = ...), not those of {what}":
        "zuweisen lassen sich nur Elemente eines Tensors (x[i] = ...), nicht die von {what}",
    "* needs a tuple or a list, not {what}": "* braucht ein Tupel oder eine Liste, nicht {what}",
    "more than {limit} arguments in one call": "mehr als {limit} Argumente in einem Aufruf",
    "{what} cannot be called": "{what} lässt sich nicht aufrufen",
    "{label} takes no text as argument {where}": "{label} nimmt keinen Text als Argument {where}",
})

BINARY: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.MatMult: operator.matmul,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}
INPLACE: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Add: operator.iadd, ast.Sub: operator.isub, ast.Mult: operator.imul, ast.Div: operator.itruediv,
    ast.FloorDiv: operator.ifloordiv, ast.Mod: operator.imod, ast.Pow: operator.ipow, ast.MatMult: operator.imatmul,
    ast.BitAnd: operator.iand, ast.BitOr: operator.ior, ast.BitXor: operator.ixor,
}
SYMBOLS: dict[type[ast.AST], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
                                     ast.Mod: "%", ast.Pow: "**", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|",
                                     ast.BitXor: "^"}
COMPARE: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
UNARY: dict[type[ast.AST], Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos,
                                                    ast.Invert: operator.invert}
MAX_CALL_ARGS = 64


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Interpreter:
    def __init__(self, scope: Scope, budget: Budget) -> None:
        self.scope = scope
        self.budget = budget
        self.output: list[str] = []
        self._output_left = budget.limits.output_chars
        self.last_value: Any = None  # the value of the most recent top-level expression statement
        self.events: list[Event] = []  # what the diagnosis may need to explain (trace.py)

    # ---- statements ----------------------------------------------------------------------------

    def run(self, statements: Sequence[ast.stmt], top_level: bool = True) -> None:
        for statement in statements:
            self.execute(statement, top_level)

    def execute(self, node: ast.stmt, top_level: bool = False) -> None:
        self.budget.tick()
        try:
            self._execute(node, top_level)
        except (_Break, _Continue):
            raise  # the enclosing loop handles them
        except DojoError as exc:
            raise exc.at(node.lineno, node.col_offset + 1) from None
        except Exception as exc:
            raise self._convert(exc).at(node.lineno, node.col_offset + 1) from None

    def _execute(self, node: ast.stmt, top_level: bool) -> None:
        if isinstance(node, ast.Expr):
            if (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)) or is_cmp_line(node):
                return  # a docstring, or the lecture's cmp(...): comments here
            value = self.evaluate(node.value)
            if top_level:
                self.last_value = value
        elif isinstance(node, ast.Assign):
            value = self.evaluate(node.value)
            for target in node.targets:
                self.assign(target, value)
        elif isinstance(node, ast.AugAssign):
            self.augmented_assign(node)
        elif isinstance(node, ast.For):
            self.loop(node)
        elif isinstance(node, ast.If):
            self.run(node.body if self.truth(self.evaluate(node.test)) else node.orelse, top_level=False)
        elif isinstance(node, ast.Break):
            raise _Break
        elif isinstance(node, ast.Continue):
            raise _Continue
        elif not isinstance(node, ast.Pass):  # validation refused everything else already
            raise DojoError("forbidden", tr("{what} is not allowed", what=type(node).__name__))

    def loop(self, node: ast.For) -> None:
        iterable = self.evaluate(node.iter)
        if not isinstance(iterable, range):
            raise DojoError("runtime", tr("for loops may only go over range(...)"))
        assert isinstance(node.target, ast.Name)
        for i in iterable:
            self.budget.iterate()
            self.scope.set(node.target.id, i)
            try:
                self.run(node.body, top_level=False)
            except _Break:
                break
            except _Continue:
                continue

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.scope.set(target.id, value)
        elif isinstance(target, ast.Subscript):
            self.set_item(self.evaluate(target.value), self.evaluate(target.slice), value, target, "=")
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = self.unpack(value, len(target.elts))
            for element, item in zip(target.elts, items, strict=True):
                self.assign(element, item)
        else:
            raise DojoError("forbidden", tr("cannot assign to this"))

    def unpack(self, value: Any, count: int) -> list[Any]:
        if not isinstance(value, (tuple, list, torch.Tensor)) and not is_result(value):
            raise DojoError("runtime", tr("cannot unpack {what} into {count} names", what=describe(value), count=count))
        length = value.shape[0] if isinstance(value, torch.Tensor) and value.dim() else len(value)
        if length != count:  # checked before iterating: a tensor could be millions long
            raise DojoError("runtime", tr("cannot unpack {length} values into {count} names", length=length, count=count))
        return [self.admit(item) for item in value]

    def augmented_assign(self, node: ast.AugAssign) -> None:
        """x += v and x[i] += v as Python does them, in its order: read the target, evaluate v,
        combine in place, write back (for x[i], the write-back is what changes x)."""
        target = node.target
        if isinstance(target, ast.Name):
            current = self.lookup(target.id)
            self.scope.set(target.id, self.binary(node.op, current, self.evaluate(node.value), in_place=True))
        elif isinstance(target, ast.Subscript):
            obj, index = self.evaluate(target.value), self.evaluate(target.slice)
            current = self.get_item(obj, index)
            self.set_item(obj, index, self.binary(node.op, current, self.evaluate(node.value), in_place=True), target,
                          SYMBOLS[type(node.op)] + "=")
        else:
            raise DojoError("forbidden", tr("cannot assign to this"))

    # ---- expressions ---------------------------------------------------------------------------

    def evaluate(self, node: ast.expr) -> Any:
        self.budget.tick()
        try:
            return self._evaluate(node)
        except DojoError as exc:
            raise exc.at(node.lineno, node.col_offset + 1) from None
        except Exception as exc:
            raise self._convert(exc).at(node.lineno, node.col_offset + 1) from None

    def _convert(self, exc: Exception) -> DojoError:
        if isinstance(exc, (_Break, _Continue)):
            return DojoError("syntax", tr("break/continue outside a loop"))
        if isinstance(exc, RecursionError):
            return DojoError("limit", tr("the code is nested too deeply"))
        if isinstance(exc, MemoryError):
            return DojoError("limit", tr("out of memory"))
        return runtime_error(exc)

    def _evaluate(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return self.budget.check_int(node.value) if type(node.value) is int else node.value
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.BinOp):
            return self.binary(node.op, self.evaluate(node.left), self.evaluate(node.right))
        if isinstance(node, ast.UnaryOp):
            operand = self.evaluate(node.operand)
            if isinstance(node.op, ast.Not):
                return not self.truth(operand)
            return self.admit(UNARY[type(node.op)](operand))
        if isinstance(node, ast.Call):
            return self.call_node(node)
        if isinstance(node, ast.Attribute):
            return self.attribute(self.evaluate(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            return self.get_item(self.evaluate(node.value), self.evaluate(node.slice))
        if isinstance(node, ast.Slice):
            parts = [None if part is None else self.evaluate(part) for part in (node.lower, node.upper, node.step)]
            return slice(*parts)
        if isinstance(node, ast.Tuple):  # admitted: [a, a] nests lists, and the items are what is counted
            return self.admit(tuple(self.evaluate(element) for element in node.elts))
        if isinstance(node, ast.List):
            return self.admit([self.evaluate(element) for element in node.elts])
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BoolOp):
            return self.boolean(node)
        if isinstance(node, ast.IfExp):
            return self.evaluate(node.body if self.truth(self.evaluate(node.test)) else node.orelse)
        if isinstance(node, ast.ListComp):
            found: list[Any] = []
            self.comprehension(node.generators, 0, node.elt, found, [0])
            return found
        raise DojoError("forbidden", tr("{what} is not allowed", what=type(node).__name__))

    def lookup(self, name: str) -> Any:
        try:
            return self.scope.get(name)
        except KeyError:
            pass
        if name == "torch":
            return TORCH
        if name == "F":
            return FUNCTIONAL
        if name in BUILTINS:
            return Function(BUILTINS[name])
        close = difflib.get_close_matches(name, self.scope.names(), n=3)
        if close:
            raise DojoError("runtime", tr("name '{name}' is not defined; did you mean {close}?", name=name,
                                          close=", ".join(close)))
        raise DojoError("runtime", tr("name '{name}' is not defined; available: {names}, …", name=name,
                                      names=", ".join(self.scope.names()[:12])))

    def truth(self, value: Any) -> bool:
        return bool(value)  # a tensor of several elements raises torch's "ambiguous" error: runtime

    def binary(self, op: ast.operator, left: Any, right: Any, in_place: bool = False) -> Any:
        self.check_operands(op, left, right)
        table = INPLACE if in_place else BINARY
        return self.admit(table[type(op)](left, right))

    def check_operands(self, op: ast.operator, left: Any, right: Any) -> None:
        """Refuse, before computing it, a result that would be too big: a list repeated too often,
        a tensor broadcast or a matmul over the limits, an integer power with too many bits."""
        limits = self.budget.limits
        if isinstance(op, ast.Mult) and (isinstance(left, (list, tuple)) or isinstance(right, (list, tuple))):
            seq, times = (left, right) if isinstance(left, (list, tuple)) else (right, left)
            if not isinstance(times, int):  # Python would also repeat by a 0-d tensor (via __index__)
                raise DojoError("forbidden", tr("a list can only be repeated by a whole number, not {what}",
                                                what=describe(times)))
            if count_items(seq, limits.sequence_items) * times > limits.sequence_items:
                raise DojoError("limit", tr("a list of more than {limit:,} items", limit=limits.sequence_items))
        elif isinstance(left, torch.Tensor) or isinstance(right, torch.Tensor):
            guard = matmul_guard if isinstance(op, ast.MatMult) else broadcast_guard
            guard((left, right), {}, self.budget, SYMBOLS[type(op)])
        elif isinstance(op, ast.Pow) and isinstance(left, int) and isinstance(right, int) and right > 0 \
                and abs(left) > 1 and right * math.log2(abs(left)) > limits.int_bits:
            raise DojoError("limit", tr("{left} ** {right} is too large; integers are limited to {bits} bits", left=left,
                                        right=right, bits=limits.int_bits))

    def compare(self, node: ast.Compare) -> Any:
        left = self.evaluate(node.left)
        result: Any = True
        for i, (op, comparator) in enumerate(zip(node.ops, node.comparators, strict=True)):
            right = self.evaluate(comparator)
            if isinstance(left, torch.Tensor) or isinstance(right, torch.Tensor):
                broadcast_guard((left, right), {}, self.budget, tr("a comparison"))
            result = self.admit(COMPARE[type(op)](left, right))
            if i < len(node.ops) - 1 and not self.truth(result):
                return result  # a < b < c stops at the first false link, like Python
            left = right
        return result

    def boolean(self, node: ast.BoolOp) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.evaluate(operand)
            if isinstance(node.op, ast.And) != self.truth(value):
                return value  # `and` stops at the first false, `or` at the first true
        return value

    def comprehension(self, generators: list[ast.comprehension], level: int, element: ast.expr, found: list[Any],
                      items: list[int]) -> None:
        """[element for i in range(...) if ... for j in range(...)]; `items` counts what `found` holds,
        through nesting, so [[0] * 100_000 for i in range(100_000)] stops early."""
        if level == len(generators):
            value = self.evaluate(element)
            limit = self.budget.limits.sequence_items
            items[0] += count_items(value, limit - items[0])
            if items[0] > limit:
                raise DojoError("limit", tr("a list of more than {limit:,} items", limit=limit))
            found.append(value)
            return
        gen = generators[level]
        iterable = self.evaluate(gen.iter)
        if not isinstance(iterable, range):
            raise DojoError("runtime", tr("comprehensions may only go over range(...)"))
        assert isinstance(gen.target, ast.Name)
        name = gen.target.id
        outer = self.scope.vars.get(name, _MISSING)  # the loop variable is the comprehension's own, as in Python 3
        try:
            for i in iterable:
                self.budget.iterate()
                self.scope.vars[name] = i
                if all(self.truth(self.evaluate(cond)) for cond in gen.ifs):
                    self.comprehension(generators, level + 1, element, found, items)
        finally:
            if outer is _MISSING:
                self.scope.vars.pop(name, None)
            else:
                self.scope.vars[name] = outer

    # ---- attributes, indexing, calls ------------------------------------------------------------

    def attribute(self, obj: Any, name: str) -> Any:
        if obj is TORCH:
            if name in TORCH_FUNCTIONS:
                return Function(TORCH_FUNCTIONS[name])
            if name in TORCH_CONSTANTS:
                return TORCH_CONSTANTS[name]
        elif obj is FUNCTIONAL:
            if name in F_FUNCTIONS:
                return Function(F_FUNCTIONS[name])
        elif isinstance(obj, torch.Tensor):
            if name == "T" and obj.dim() != 2:  # torch warns it will become an error; say so now
                raise DojoError("runtime", tr(".T needs a 2-D tensor, this one has {dims} dimensions (use .permute)",
                                              dims=obj.dim()))
            if name in TENSOR_PROPERTIES:
                return self.admit(getattr(obj, name))
            if name in TENSOR_METHODS:
                return Method(obj, TENSOR_METHODS[name])
        elif is_result(obj) and name in RESULT_FIELDS:
            return getattr(obj, name)
        raise DojoError("runtime", tr("{what} has no attribute .{name} in the dojo", what=describe(obj), name=name))

    def get_item(self, obj: Any, index: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            index = tensor_index(index, self.budget)
            check_index_size(obj, index, self.budget)
            return self.admit(obj[index])
        if isinstance(obj, (list, tuple, range)):  # also torch.Size and max/min results
            if isinstance(index, torch.Tensor) and index.dim() == 0 and not index.is_floating_point():
                index = int(index)
            if not isinstance(index, (int, slice)):
                raise DojoError("runtime", tr("{what} can only be indexed with a whole number or a slice",
                                              what=describe(obj)))
            return self.admit(obj[index])
        raise DojoError("runtime", tr("{what} cannot be indexed", what=describe(obj)))

    def set_item(self, obj: Any, index: Any, value: Any, target: ast.Subscript | None = None, how: str = "=") -> None:
        if not isinstance(obj, torch.Tensor):
            raise DojoError("runtime", tr("only tensor elements can be assigned (x[i] = ...), not those of {what}",
                                          what=describe(obj)))
        index = tensor_index(index, self.budget)
        check_index_size(obj, index, self.budget)
        limit = self.budget.limits.sequence_items
        if isinstance(value, list) and count_items(value, limit) > limit:
            raise DojoError("limit", tr("a list of more than {limit:,} items", limit=limit))
        if target is not None and (how != "=" or (isinstance(value, torch.Tensor) and value.numel() > 1)):
            self.note_repeats(index, target, how)  # x[idx] = one value for all is no accumulation
        obj[index] = value

    def note_repeats(self, index: Any, where: ast.expr, how: str) -> None:
        """Record a write through an index that addresses some position twice (trace.py)."""
        found = repeated_entries(index)
        if found is not None:
            dim, repeated, count = found
            base: ast.expr = where
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            name = base.id if isinstance(base, ast.Name) else None
            self.events.append(RepeatedIndex(where.lineno, where.col_offset + 1, name, how, dim, repeated, count))

    def call_node(self, node: ast.Call) -> Any:
        func = self.evaluate(node.func)
        args: list[Any] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                spread = self.evaluate(arg.value)
                if not isinstance(spread, (tuple, list)):
                    raise DojoError("runtime", tr("* needs a tuple or a list, not {what}", what=describe(spread)))
                if len(spread) > MAX_CALL_ARGS:
                    raise DojoError("limit", tr("more than {limit} arguments in one call", limit=MAX_CALL_ARGS))
                args.extend(spread)
            else:
                args.append(self.evaluate(arg))
        if len(args) > MAX_CALL_ARGS:
            raise DojoError("limit", tr("more than {limit} arguments in one call", limit=MAX_CALL_ARGS))
        kwargs = {kw.arg: self.evaluate(kw.value) for kw in node.keywords if kw.arg is not None}
        return self.call(func, tuple(args), kwargs, node)

    def call(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], node: ast.Call | None = None) -> Any:
        if isinstance(func, Function):
            op, full = func.op, args
        elif isinstance(func, Method):
            op, full = func.op, (func.obj, *args)
        else:
            raise DojoError("runtime", tr("{what} cannot be called", what=describe(func)))
        self.check_arguments(op, args, kwargs)
        if op.label == "print":
            self.print(args)
            return None
        self.budget.tick()
        op.guard(full, kwargs, self.budget, op.label)
        result = self.admit(op.fn(*full, **kwargs))
        if node is not None:
            self.notice(op, full, kwargs, result, node)
        return result

    def check_arguments(self, op: Op, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """The op's own keywords (from torch's signature), and text only where the op reads text.
        The validator checked both already where the code names the op; this holds for every call."""
        for name, value in kwargs.items():
            if name not in op.keywords:
                allowed = ", ".join(f"{k}=" for k in sorted(op.keywords))
                raise DojoError("forbidden", tr("{label} takes no keyword argument {name}=; it takes {allowed}",
                                                label=op.label, name=name, allowed=allowed) if allowed else
                                tr("{label} takes no keyword arguments here", label=op.label))
            if isinstance(value, str) and not string_allowed(op.label, name):
                raise DojoError("forbidden", tr("{label} takes no text as argument {where}", label=op.label, where=name))
        for position, value in enumerate(args):
            if isinstance(value, str) and not string_allowed(op.label, position):
                raise DojoError("forbidden", tr("{label} takes no text as argument {where}", label=op.label,
                                                where=position + 1))

    def notice(self, op: Op, full: tuple[Any, ...], kwargs: dict[str, Any], result: Any, node: ast.Call) -> None:
        """Record what the diagnosis may need to explain later (trace.py)."""
        if op.label == "F.one_hot" and isinstance(result, torch.Tensor) and result.dim() > 0:
            classes = full[1] if len(full) > 1 else kwargs.get("num_classes", -1)
            if classes is None or (isinstance(classes, int) and classes == -1):
                self.events.append(OneHotWidth(node.lineno, node.col_offset + 1, int(result.shape[-1])))
        elif op.label in (".index_put_", ".index_put") and not (full[3] if len(full) > 3 else kwargs.get("accumulate")):
            indices = full[1] if len(full) > 1 else kwargs.get("indices")
            if isinstance(indices, (tuple, list)):
                self.note_repeats(tuple(indices), node.func, op.label)

    def print(self, args: tuple[Any, ...]) -> None:
        if self._output_left <= 0:
            return
        text = " ".join(a if isinstance(a, str) else short_repr(a, self._output_left) for a in args)
        if len(text) > self._output_left:
            text = text[: self._output_left] + " … (output cut)"
        self._output_left -= len(text)
        self.output.append(text)

    # ---- values --------------------------------------------------------------------------------

    def admit(self, value: Any) -> Any:
        return admit(value, self.budget)


_MISSING = object()
