"""What a learner's code may call or read: torch and F functions, tensor methods and properties, builtins.

Nothing outside these tables is reachable: the interpreter resolves every attribute and call
through them, and hands the learner opaque handles (`Namespace`, `Function`, `Method`), never a
module or a Python function. Each operation carries a guard that runs *before* it, to refuse
tensors over the element limit and matmuls over the flop limit while that is still cheap.

Left out on purpose: anything touching files, processes or memory directly (torch.load/save/
from_file, storage, data_ptr, numpy, as_strided, set_), uninitialised memory (empty*, resize_),
Python callbacks (apply_, map_, register_hook), autograd and global state (backward,
requires_grad_, manual_seed, rand*), and strings (so no einsum, no reduction="sum").
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .errors import DojoError
from .limits import Budget

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
Guard = Callable[[Args, Kwargs, Budget, str], None]  # (args, kwargs, budget, label) -> raises DojoError


@dataclass(frozen=True)
class Namespace:
    """`torch` or `F` as the learner sees them: a name, not the module."""

    name: str

    def __repr__(self) -> str:
        return f"<{self.name}>"


@dataclass(frozen=True)
class Op:
    label: str  # as the learner writes it: "torch.zeros", "F.one_hot", ".sum", "range"
    fn: Callable[..., Any]
    guard: Guard


@dataclass(frozen=True)
class Function:
    """A callable the learner can hold and call: torch.zeros, F.softmax, len, ..."""

    op: Op

    def __repr__(self) -> str:
        return f"<function {self.op.label}>"


@dataclass(frozen=True, eq=False)
class Method:
    """A tensor method bound to its tensor: `x.sum` before the call."""

    obj: torch.Tensor
    op: Op

    def __repr__(self) -> str:
        return f"<method {self.op.label}>"


TORCH = Namespace("torch")
FUNCTIONAL = Namespace("F")


# ---- guards: estimate what an op would make, before it makes it ----------------------------------

def tensors_in(values: Iterable[Any]) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            found.append(v)
        elif isinstance(v, (tuple, list)) and len(v) <= 64:  # e.g. index_put_'s tuple of indices
            found.extend(x for x in v if isinstance(x, torch.Tensor))
    return found


def check_shape(shape: Iterable[int], budget: Budget, label: str) -> None:
    numel = math.prod(shape)
    budget.check_elements(numel, f"the result of {label}")
    budget.check_new_bytes(numel * 8, f"{label}")  # 8: the widest dtype, to be safe before knowing it


def broadcast_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """Elementwise ops, reductions and views: the result is never bigger than the inputs broadcast."""
    shapes = [t.shape for t in tensors_in((*args, *kwargs.values()))]
    if len(shapes) < 2:
        return  # one tensor: the result is at most its size, which was checked when it was made
    try:
        shape = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        return  # incompatible: torch will say so itself, without allocating
    check_shape(shape, budget, label)


def read_sizes(values: Args, label: str) -> list[int]:
    """Sizes given as `f(2, 3)`, `f((2, 3))` or `f(torch.Size)`, as Python ints."""
    if len(values) == 1 and isinstance(values[0], (tuple, list, torch.Size)):
        values = tuple(values[0])
    try:
        return [operator.index(v) for v in values]
    except TypeError:
        raise DojoError("runtime", f"{label}: sizes must be whole numbers") from None


def factory_guard(first: int) -> Guard:
    """torch.zeros(2, 3), torch.full((2, 3), x), x.new_zeros(2, 3): the sizes start at `first`."""

    def guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
        if "size" in kwargs:
            sizes = read_sizes((kwargs["size"],), label)
        elif label.endswith("full"):  # full(size, fill_value): one size argument
            sizes = read_sizes(args[first:first + 1], label)
        else:
            sizes = read_sizes(args[first:], label)
        check_shape(sizes, budget, label)

    return guard


def arange_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    bounds = list(args[:3])
    for key in ("start", "end", "step")[len(bounds):]:
        if key in kwargs:
            bounds.append(kwargs[key])
    try:
        numbers = [float(b) for b in bounds]
    except (TypeError, ValueError, RuntimeError):
        return  # torch reports bad arguments without allocating
    start, end, step = (0.0, numbers[0], 1.0) if len(numbers) == 1 else (*numbers[:2], numbers[2] if len(numbers) > 2 else 1.0)
    if step == 0 or not all(math.isfinite(x) for x in (start, end, step)):
        return
    check_shape([max(0, math.ceil((end - start) / step))], budget, label)


def eye_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    sizes = read_sizes(args[:2], label)
    if sizes:  # torch.eye() without a size: torch says what is missing
        check_shape([sizes[0], sizes[-1]], budget, label)


def expand_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """x.expand(4, -1), torch.broadcast_to(x, shape): a view, but everything after it is this big."""
    base = args[0]
    sizes = read_sizes(args[1:] if label.startswith(".") else args[1:2], label)
    own = list(base.shape) if isinstance(base, torch.Tensor) else []
    own = [1] * (len(sizes) - len(own)) + own
    check_shape([o if s == -1 else s for s, o in zip(sizes, own[-len(sizes):] if sizes else [], strict=False)],
                budget, label)


def repeat_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    base = args[0]
    sizes = read_sizes(args[1:], label)
    budget.check_elements(math.prod(sizes) * (base.numel() if isinstance(base, torch.Tensor) else 1),
                          f"the result of {label}")


def matmul_shape(a: torch.Size, b: torch.Size) -> tuple[list[int], float] | None:
    """(result shape, flops) of a @ b, or None when torch will refuse the shapes itself."""
    if a.numel() == 0 or b.numel() == 0 or len(a) == 0 or len(b) == 0:
        return None
    a2 = [1, a[0]] if len(a) == 1 else list(a)
    b2 = [b[0], 1] if len(b) == 1 else list(b)
    if a2[-1] != b2[-2]:
        return None
    try:
        batch = list(torch.broadcast_shapes(torch.Size(a2[:-2]), torch.Size(b2[:-2])))
    except RuntimeError:
        return None
    shape = [*batch, *([a2[-2]] if len(a) > 1 else []), *([b2[-1]] if len(b) > 1 else [])]
    return shape, 2.0 * math.prod(batch) * a2[-2] * a2[-1] * b2[-1]


SLOW_MATMUL = 10  # how much more a non-BLAS matmul flop counts against the limit


def matmul_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    a, b = (*args, None, None)[:2]
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return
    if label.endswith("outer"):
        check_shape([a.numel(), b.numel()], budget, label)
        return
    found = matmul_shape(a.shape, b.shape)
    if found is not None:
        shape, flops = found
        check_shape(shape, budget, label)
        # Only float32/float64 go through BLAS; integer and half matmuls are ~10-30x slower here.
        fast = torch.promote_types(a.dtype, b.dtype) in (torch.float32, torch.float64)
        budget.check_flops(flops if fast else flops * SLOW_MATMUL, label)


def concat_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    seq = args[0] if args else kwargs.get("tensors", ())
    if isinstance(seq, (tuple, list)):
        budget.check_elements(sum(t.numel() for t in seq if isinstance(t, torch.Tensor)), f"the result of {label}")


def one_hot_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    x = args[0] if args else kwargs.get("input")
    classes = args[1] if len(args) > 1 else kwargs.get("num_classes", -1)
    if not isinstance(x, torch.Tensor) or x.numel() == 0 or x.dtype != torch.int64:
        return
    try:
        k = operator.index(classes)
    except TypeError:
        return
    if k == -1:
        k = int(x.max().item()) + 1  # one_hot reads the class count from the data: check it first
    budget.check_elements(x.numel() * k, f"the result of {label}")


def index_put_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """x.index_put_((i, j), v): torch broadcasts the index tensors against each other first, and
    (10**4, 1) with (1, 10**4) would make 10**8 of them."""
    indices = args[1] if len(args) > 1 else kwargs.get("indices")
    if not isinstance(indices, (tuple, list)):
        return
    shapes = [t.shape for t in indices if isinstance(t, torch.Tensor)]
    try:
        shape = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        return  # torch says the indices do not fit together
    check_shape(shape, budget, label)


def count_items(value: Any, limit: int) -> int:
    """Items in a nested list/tuple, counted through the nesting (shared inner lists count each time
    they appear), stopping as soon as the count passes `limit` so the walk itself stays short."""
    count = 0
    stack = [value]
    while stack:
        v = stack.pop()
        count += 1
        if count > limit:
            return count
        if isinstance(v, (list, tuple)):
            stack.extend(v)
    return count


def tensor_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    data = args[0] if args else kwargs.get("data")
    limit = budget.limits.sequence_items
    if isinstance(data, range):
        if len(data) > limit:
            raise DojoError("limit", f"{label} of a range of {len(data):,} numbers; the limit is {limit:,} (use torch.arange)")
    elif count_items(data, limit) > limit:
        raise DojoError("limit", f"{label} of more than {limit:,} numbers")


def tolist_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    if args[0].numel() > budget.limits.sequence_items:
        raise DojoError("limit", f"{label} of {args[0].numel():,} elements; the limit is {budget.limits.sequence_items:,}")


def view_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """x.view(torch.int8) would reinterpret the bytes: four times the elements of a float32 tensor."""
    if any(isinstance(a, torch.dtype) for a in (*args, *kwargs.values())):
        raise DojoError("forbidden", ".view takes sizes here; to change the dtype use .to(dtype)")


def to_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """x.to(dtype) only: a device or another tensor could move data where it should not go."""
    rest = list(args[1:]) + list(kwargs.values())
    if len(rest) != 1 or not isinstance(rest[0], torch.dtype) or set(kwargs) - {"dtype"}:
        raise DojoError("forbidden", ".to(...) takes only a dtype here, e.g. x.to(torch.float64)")


# ---- the tables ---------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    return text.split()


def _ops(prefix: str, source: Any, names: str, guard: Guard = broadcast_guard) -> dict[str, Op]:
    return {name: Op(f"{prefix}{name}", getattr(source, name), guard) for name in words(names)}


_ELEMENTWISE = ("tanh exp log sqrt rsqrt abs neg sigmoid relu sign reciprocal square log1p expm1 log2 log10 "
                "sin cos floor ceil round trunc pow clamp clip maximum minimum where add sub mul div "
                "addcmul addcdiv isnan isinf isfinite isclose eq ne lt le gt ge logical_not logical_and logical_or")
_REDUCTIONS = "sum mean max min amax amin argmax argmin prod std var logsumexp all any softmax log_softmax cumsum"
_SHAPES = "transpose t reshape flatten squeeze unsqueeze permute clone zeros_like ones_like full_like allclose equal numel"

TORCH_FUNCTIONS: dict[str, Op] = {
    **_ops("torch.", torch, f"{_ELEMENTWISE} {_REDUCTIONS} {_SHAPES} gather scatter scatter_add index_add masked_fill"),
    "zeros": Op("torch.zeros", torch.zeros, factory_guard(0)),
    "ones": Op("torch.ones", torch.ones, factory_guard(0)),
    "full": Op("torch.full", torch.full, factory_guard(0)),
    "arange": Op("torch.arange", torch.arange, arange_guard),
    "eye": Op("torch.eye", torch.eye, eye_guard),
    "tensor": Op("torch.tensor", torch.tensor, tensor_guard),
    "broadcast_to": Op("torch.broadcast_to", torch.broadcast_to, expand_guard),
    **_ops("torch.", torch, "matmul mm bmm dot outer", matmul_guard),
    **_ops("torch.", torch, "cat stack", concat_guard),
}

TORCH_CONSTANTS: dict[str, Any] = {
    **{name: getattr(torch, name) for name in words(
        "float32 float64 float16 bfloat16 float double half int64 int32 int16 int8 uint8 long int short bool")},
    "inf": math.inf, "nan": math.nan, "pi": math.pi, "e": math.e,
}

F_FUNCTIONS: dict[str, Op] = {
    **_ops("F.", F, "softmax log_softmax cross_entropy relu"),
    "one_hot": Op("F.one_hot", F.one_hot, one_hot_guard),
}

TENSOR_METHODS: dict[str, Op] = {
    **_ops(".", torch.Tensor, f"{_ELEMENTWISE} {_REDUCTIONS}"),
    **_ops(".", torch.Tensor, (
        "view_as reshape reshape_as flatten t transpose permute unsqueeze squeeze expand_as contiguous "
        "clone detach float double long int bool half type_as item dim size numel masked_fill gather scatter "
        "scatter_add index_add index_fill allclose equal "
        # in place: the result is the tensor itself, never bigger
        "add_ sub_ mul_ div_ pow_ exp_ neg_ clamp_ zero_ fill_ copy_ masked_fill_ index_add_ "
        "index_fill_ scatter_ scatter_add_ addcmul_ tanh_")),
    "view": Op(".view", torch.Tensor.view, view_guard),
    "expand": Op(".expand", torch.Tensor.expand, expand_guard),
    "index_put": Op(".index_put", torch.Tensor.index_put, index_put_guard),
    "index_put_": Op(".index_put_", torch.Tensor.index_put_, index_put_guard),
    "repeat": Op(".repeat", torch.Tensor.repeat, repeat_guard),
    "new_zeros": Op(".new_zeros", torch.Tensor.new_zeros, factory_guard(1)),
    "new_ones": Op(".new_ones", torch.Tensor.new_ones, factory_guard(1)),
    "new_full": Op(".new_full", torch.Tensor.new_full, factory_guard(1)),
    "tolist": Op(".tolist", torch.Tensor.tolist, tolist_guard),
    "to": Op(".to", torch.Tensor.to, to_guard),
    **_ops(".", torch.Tensor, "matmul mm dot outer", matmul_guard),
}

TENSOR_PROPERTIES: frozenset[str] = frozenset({"shape", "T", "mT", "dtype", "ndim"})
RESULT_FIELDS: frozenset[str] = frozenset({"values", "indices"})  # of max/min(dim) results

# Keyword arguments a call may name. Left out: out= (writes into a tensor of any size), device=,
# layout=, pin_memory=, requires_grad=, generator=, memory_format=.
KEYWORDS: frozenset[str] = frozenset(words(
    "dim keepdim dtype num_classes value min max alpha size fill_value start end step exponent index "
    "source src accumulate mask other input target dim0 dim1 dims rtol atol equal_nan unbiased correction "
    "tensors ignore_index label_smoothing weight"))


def attribute_names() -> frozenset[str]:
    """Every attribute name a program may write after a dot, whatever it is applied to."""
    return frozenset(TORCH_FUNCTIONS) | frozenset(TORCH_CONSTANTS) | frozenset(F_FUNCTIONS) \
        | frozenset(TENSOR_METHODS) | TENSOR_PROPERTIES | RESULT_FIELDS


# ---- Python builtins the lecture's code uses ----------------------------------------------------

def sequence_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """min/max/sum/list/tuple of one sequence: never a tensor, never a long range. Python would walk
    them element by element inside one call, where the deadline cannot reach (max(range(10**18)))."""
    if len(args) != 1 and not (label == "sum" and len(args) == 2):
        return  # min(a, b): a few values
    seq, limit = args[0], budget.limits.sequence_items
    if isinstance(seq, torch.Tensor):
        method = "tolist" if label in ("list", "tuple") else label
        raise DojoError("forbidden", f"{label}() of a tensor walks it in Python; use x.{method}() instead")
    if isinstance(seq, range) and len(seq) > limit:
        raise DojoError("limit", f"{label}() of a range of {len(seq):,} numbers; the limit is {limit:,}")
    if isinstance(seq, (list, tuple)):  # sum([x] * 100_000) would add a big tensor 100 000 times
        budget.check_elements(sum(v.numel() for v in seq if isinstance(v, torch.Tensor)), f"{label}() over these tensors")
    if label == "sum" and len(args) > 1 and isinstance(args[1], (list, tuple)):
        raise DojoError("forbidden", "sum() of lists is not available (it copies the list once per item)")


def no_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    return None


def _round_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """round(10**18, -10**18) computes 10**(10**18): keep ndigits small (a 0-d tensor counts too)."""
    if len(args) > 1:
        try:
            digits = operator.index(args[1])
        except TypeError:
            return  # Python refuses it itself
        if abs(digits) > 100:
            raise DojoError("limit", "round(x, ndigits) with more than 100 digits")


BUILTINS: dict[str, Op] = {
    "range": Op("range", range, no_guard),
    "len": Op("len", len, no_guard),
    "int": Op("int", int, no_guard),
    "float": Op("float", float, no_guard),
    "bool": Op("bool", bool, no_guard),
    "abs": Op("abs", abs, no_guard),
    "round": Op("round", round, _round_guard),
    "min": Op("min", min, sequence_guard),
    "max": Op("max", max, sequence_guard),
    "sum": Op("sum", sum, sequence_guard),
    "list": Op("list", list, sequence_guard),
    "tuple": Op("tuple", tuple, sequence_guard),
    "print": Op("print", print, no_guard),  # the interpreter captures the text; this fn is never called
}
