"""What a learner's code may call or read: torch and F functions, tensor methods and properties, builtins.

Nothing outside these tables is reachable: the interpreter resolves every attribute and call
through them, and hands the learner opaque handles (`Namespace`, `Function`, `Method`), never a
module or a Python function. Each operation carries a guard that runs *before* it, to refuse
tensors over the element limit and matmuls over the flop limit while that is still cheap.

Left out on purpose: anything touching files, processes or memory directly (torch.load/save/
from_file, storage, data_ptr, numpy, as_strided, set_), uninitialised memory (empty*, resize_),
Python callbacks (apply_, map_, register_hook), and autograd and global state (backward,
requires_grad_, manual_seed, rand*). The keywords each op takes come from torch's own signatures
(signatures.py); strings only where torch reads one as data (an einsum equation, reduction=).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..i18n import german, tr
from .errors import DojoError
from .limits import Budget
from .signatures import derive_keywords

german({
    "the result of {label}": "das Ergebnis von {label}",
    "an intermediate of {label}": "ein Zwischenergebnis von {label}",
    "{label}: sizes must be whole numbers": "{label}: Größen müssen ganze Zahlen sein",
    "{label} of a range of {count:,} numbers; the limit is {limit:,} (use torch.arange)":
        "{label} eines Bereichs von {count:,} Zahlen; die Grenze ist {limit:,} (nimm torch.arange)",
    "{label} of more than {limit:,} numbers": "{label} von mehr als {limit:,} Zahlen",
    "{label} of {count:,} elements; the limit is {limit:,}": "{label} von {count:,} Elementen; die Grenze ist {limit:,}",
    ".view takes sizes here; to change the dtype use .to(dtype)":
        ".view nimmt hier Größen; um den dtype zu ändern, nimm .to(dtype)",
    ".to(...) takes only a dtype here, e.g. x.to(torch.float64)":
        ".to(...) nimmt hier nur einen dtype, z. B. x.to(torch.float64)",
    "{label}: the equation may use letters, ',', '->' and '...'":
        "{label}: die Gleichung darf Buchstaben, ',', '->' und '...' enthalten",
    "{label}: the equation names {terms} operands, the call gives {count}":
        "{label}: die Gleichung nennt {terms} Operanden, der Aufruf gibt {count}",
    "{label}() of a tensor walks it in Python; use x.{method}() instead":
        "{label}() eines Tensors läuft in Python über ihn; nimm stattdessen x.{method}()",
    "{label}() of a range of {count:,} numbers; the limit is {limit:,}":
        "{label}() eines Bereichs von {count:,} Zahlen; die Grenze ist {limit:,}",
    "{label}() over these tensors": "{label}() über diese Tensoren",
    "sum() of lists is not available (it copies the list once per item)":
        "sum() über Listen gibt es nicht (es kopiert die Liste einmal pro Element)",
    "round(x, ndigits) with more than 100 digits": "round(x, ndigits) mit mehr als 100 Stellen",
})

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
    keywords: frozenset[str] = frozenset()  # the keyword arguments it may be given (from torch's signature)


def op(label: str, fn: Callable[..., Any], guard: Guard, only: frozenset[str] | None = None) -> Op:
    """An allowed operation, with the keywords torch's signature of `fn` accepts (signatures.py).

    `only`: for a guard that reads its sizes from particular arguments, the keywords it reads
    (torch.eye(n=10**5) must not slip past a guard that reads n from the first argument)."""
    keywords = derive_keywords(fn, method=label.startswith("."))
    return Op(label, fn, guard, keywords if only is None else keywords & only)


SIZES_ONLY: frozenset[str] = frozenset()  # ops whose guard reads positional arguments only: no keywords


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
    budget.check_elements(numel, tr("the result of {label}", label=label))
    budget.check_new_bytes(numel * 8, label)  # 8: the widest dtype, to be safe before knowing it


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
        raise DojoError("runtime", tr("{label}: sizes must be whole numbers", label=label)) from None


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
                          tr("the result of {label}", label=label))


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
        budget.check_elements(sum(t.numel() for t in seq if isinstance(t, torch.Tensor)),
                              tr("the result of {label}", label=label))


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
    budget.check_elements(x.numel() * k, tr("the result of {label}", label=label))


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
            raise DojoError("limit", tr("{label} of a range of {count:,} numbers; the limit is {limit:,} (use torch.arange)",
                                        label=label, count=len(data), limit=limit))
    elif count_items(data, limit) > limit:
        raise DojoError("limit", tr("{label} of more than {limit:,} numbers", label=label, limit=limit))


def tolist_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    if args[0].numel() > budget.limits.sequence_items:
        raise DojoError("limit", tr("{label} of {count:,} elements; the limit is {limit:,}", label=label, count=args[0].numel(),
                                    limit=budget.limits.sequence_items))


def view_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """x.view(torch.int8) would reinterpret the bytes: four times the elements of a float32 tensor."""
    if any(isinstance(a, torch.dtype) for a in (*args, *kwargs.values())):
        raise DojoError("forbidden", tr(".view takes sizes here; to change the dtype use .to(dtype)"))


def to_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """x.to(dtype) only: a device or another tensor could move data where it should not go."""
    rest = list(args[1:]) + list(kwargs.values())
    if len(rest) != 1 or not isinstance(rest[0], torch.dtype) or set(kwargs) - {"dtype"}:
        raise DojoError("forbidden", tr(".to(...) takes only a dtype here, e.g. x.to(torch.float64)"))


def _einsum_terms(equation: str, count: int, label: str) -> tuple[list[str], str | None]:
    """The operand subscripts and the output subscript (None: implicit) of an einsum equation."""
    text = equation.replace(" ", "")
    if len(text) > 200 or any(not (c.isascii() and c.isalpha()) and c not in ",.->" for c in text):
        raise DojoError("runtime", tr("{label}: the equation may use letters, ',', '->' and '...'", label=label))
    inputs, arrow, output = text.partition("->")
    terms = inputs.split(",")
    if len(terms) != count:
        raise DojoError("runtime", tr("{label}: the equation names {terms} operands, the call gives {count}",
                                      label=label, terms=len(terms), count=count))
    return terms, output if arrow else None


def einsum_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """torch.einsum("ij,jk->ik", a, b): the result's size from the letters' sizes, and the work as
    the product of every letter's size (what a naive contraction multiplies out), both bounded."""
    if not args or not isinstance(args[0], str):
        return  # torch explains a call without an equation itself
    operands = args[1:]
    if len(operands) == 1 and isinstance(operands[0], (tuple, list)):
        operands = tuple(operands[0])
    if not all(isinstance(t, torch.Tensor) for t in operands):
        return
    terms, output = _einsum_terms(args[0], len(operands), label)
    sizes: dict[str, int] = {}
    ellipsis: list[torch.Size] = []
    for term, t in zip(terms, operands, strict=True):
        letters = term.replace("...", "")
        rest = t.dim() - len(letters)
        if rest < 0 or ("..." not in term and rest != 0):
            return  # the subscripts do not fit the tensor: torch says so without computing
        shape = list(t.shape)
        head, _, tail = term.partition("...")
        ellipsis.append(torch.Size(shape[len(head):len(head) + rest]))
        for letter, size in zip(head + tail, shape[:len(head)] + shape[len(head) + rest:], strict=True):
            sizes[letter] = max(sizes.get(letter, 1), size)
    try:
        batch = math.prod(torch.broadcast_shapes(*ellipsis)) if ellipsis else 1
    except RuntimeError:
        return
    if output is None:  # implicit output: the letters that appear once
        joined = "".join(terms)
        output = "".join(sorted(c for c in sizes if joined.count(c) == 1))
    check_shape([batch, *(sizes.get(c, 1) for c in output.replace("...", ""))], budget, label)
    work = batch * math.prod(sizes.values())
    if len(operands) > 2:  # three or more operands may multiply out every letter at once
        budget.check_elements(work, tr("an intermediate of {label}", label=label))
    budget.check_flops(2.0 * work, label)


def tensordot_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """torch.tensordot(a, b, dims=([0], [0])): the free dimensions make the result, the
    contracted ones the work."""
    a, b = (*args, None, None)[:2]
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return
    dims = args[2] if len(args) > 2 else kwargs.get("dims", 2)
    try:
        if isinstance(dims, int):
            da, db = list(range(a.dim() - dims, a.dim())), list(range(dims))
        else:
            da, db = [int(d) for d in dims[0]], [int(d) for d in dims[1]]
        da = [d % a.dim() for d in da]
        db = [d % b.dim() for d in db]
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return  # torch refuses such dims itself
    free_a = [s for d, s in enumerate(a.shape) if d not in da]
    free_b = [s for d, s in enumerate(b.shape) if d not in db]
    check_shape([*free_a, *free_b], budget, label)
    budget.check_flops(2.0 * math.prod(free_a) * math.prod(free_b) * math.prod(a.shape[d] for d in da), label)


def index_select_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """x.index_select(dim, index): index.numel() slices of x along dim."""
    x = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    index = args[2] if len(args) > 2 else kwargs.get("index")
    if not (isinstance(x, torch.Tensor) and isinstance(index, torch.Tensor) and x.dim()):
        return
    try:
        size = x.shape[operator.index(dim)]
    except (TypeError, IndexError):
        return  # torch refuses such a dim itself
    budget.check_elements(index.numel() * (x.numel() // max(1, size)), tr("the result of {label}", label=label))


def diag_guard(args: Args, kwargs: Kwargs, budget: Budget, label: str) -> None:
    """torch.diag(v, k) and diag_embed(v, offset) make an (n + |k|) x (n + |k|) matrix per vector."""
    x = args[0]
    offset: Any = args[1] if len(args) > 1 else kwargs.get("diagonal", kwargs.get("offset", 0))
    try:
        k = abs(operator.index(offset))
    except TypeError:
        return  # torch refuses a non-integer offset itself
    if isinstance(x, torch.Tensor) and x.dim():
        side = x.shape[-1] + k
        check_shape([max(1, x.numel() // max(1, x.shape[-1])), side, side], budget, label)


# ---- the tables ---------------------------------------------------------------------------------

def words(text: str) -> list[str]:
    return text.split()


def _ops(prefix: str, source: Any, names: str, guard: Guard = broadcast_guard,
         only: frozenset[str] | None = None) -> dict[str, Op]:
    return {name: op(f"{prefix}{name}", getattr(source, name), guard, only) for name in words(names)}


# erf (the exact GELU), cosh/sinh (sech^2 = 1/cosh^2) and tril/triu (a causal mask) are what learners write for
# a transformer's backward; each makes a tensor of its input's size.
_ELEMENTWISE = ("tanh exp log sqrt rsqrt abs neg sigmoid relu sign reciprocal square log1p expm1 log2 log10 "
                "sin cos cosh sinh erf erfc tril triu floor ceil round trunc pow clamp clip maximum minimum where add sub "
                "mul div "
                "addcmul addcdiv isnan isinf isfinite isclose eq ne lt le gt ge logical_not logical_and logical_or")
_REDUCTIONS = "sum mean max min amax amin argmax argmin prod std var logsumexp all any softmax log_softmax cumsum"
_SHAPES = ("transpose t reshape flatten squeeze unsqueeze permute clone zeros_like ones_like full_like allclose equal numel "
           "swapaxes swapdims moveaxis movedim")

TORCH_FUNCTIONS: dict[str, Op] = {
    **_ops("torch.", torch, f"{_ELEMENTWISE} {_REDUCTIONS} {_SHAPES} gather scatter scatter_add index_add masked_fill"),
    "zeros": op("torch.zeros", torch.zeros, factory_guard(0), frozenset({"size", "dtype"})),
    "ones": op("torch.ones", torch.ones, factory_guard(0), frozenset({"size", "dtype"})),
    "full": op("torch.full", torch.full, factory_guard(0), frozenset({"size", "fill_value", "dtype"})),
    "arange": op("torch.arange", torch.arange, arange_guard, frozenset({"start", "end", "step", "dtype"})),
    "eye": op("torch.eye", torch.eye, eye_guard, frozenset({"dtype"})),
    "tensor": op("torch.tensor", torch.tensor, tensor_guard, frozenset({"data", "dtype"})),
    "broadcast_to": op("torch.broadcast_to", torch.broadcast_to, expand_guard, SIZES_ONLY),
    **_ops("torch.", torch, "matmul mm bmm dot outer", matmul_guard, SIZES_ONLY),
    **_ops("torch.", torch, "cat stack", concat_guard, frozenset({"tensors", "dim", "axis"})),
    "einsum": op("torch.einsum", torch.einsum, einsum_guard, SIZES_ONLY),
    "tensordot": op("torch.tensordot", torch.tensordot, tensordot_guard, frozenset({"dims"})),
    "index_select": op("torch.index_select", torch.index_select, index_select_guard, frozenset({"dim", "index"})),
    "diag": op("torch.diag", torch.diag, diag_guard, frozenset({"diagonal"})),
    "diag_embed": op("torch.diag_embed", torch.diag_embed, diag_guard, frozenset({"offset", "dim1", "dim2"})),
}

TORCH_CONSTANTS: dict[str, Any] = {
    **{name: getattr(torch, name) for name in words(
        "float32 float64 float16 bfloat16 float double half int64 int32 int16 int8 uint8 long int short bool")},
    "inf": math.inf, "nan": math.nan, "pi": math.pi, "e": math.e,
}

F_FUNCTIONS: dict[str, Op] = {
    **_ops("F.", F, "softmax log_softmax cross_entropy relu gelu"),
    "one_hot": op("F.one_hot", F.one_hot, one_hot_guard, frozenset({"input", "num_classes"})),
}

TENSOR_METHODS: dict[str, Op] = {
    **_ops(".", torch.Tensor, f"{_ELEMENTWISE} {_REDUCTIONS}"),
    **_ops(".", torch.Tensor, (
        "view_as reshape reshape_as flatten t transpose permute unsqueeze squeeze expand_as contiguous "
        "clone detach float double long int bool half type_as item dim size numel masked_fill gather scatter "
        "scatter_add index_add index_fill allclose equal swapaxes swapdims moveaxis movedim sum_to_size "
        # in place: the result is the tensor itself, never bigger
        "add_ sub_ mul_ div_ pow_ exp_ neg_ clamp_ zero_ fill_ copy_ masked_fill_ index_add_ "
        "index_fill_ scatter_ scatter_add_ addcmul_ tanh_")),
    "view": op(".view", torch.Tensor.view, view_guard),
    "expand": op(".expand", torch.Tensor.expand, expand_guard, SIZES_ONLY),
    "index_put": op(".index_put", torch.Tensor.index_put, index_put_guard, frozenset({"indices", "values", "accumulate"})),
    "index_put_": op(".index_put_", torch.Tensor.index_put_, index_put_guard, frozenset({"indices", "values", "accumulate"})),
    "repeat": op(".repeat", torch.Tensor.repeat, repeat_guard, SIZES_ONLY),
    "new_zeros": op(".new_zeros", torch.Tensor.new_zeros, factory_guard(1), frozenset({"size", "dtype"})),
    "new_ones": op(".new_ones", torch.Tensor.new_ones, factory_guard(1), frozenset({"size", "dtype"})),
    "new_full": op(".new_full", torch.Tensor.new_full, factory_guard(1), frozenset({"size", "fill_value", "dtype"})),
    "tolist": op(".tolist", torch.Tensor.tolist, tolist_guard, SIZES_ONLY),
    "to": op(".to", torch.Tensor.to, to_guard),
    **_ops(".", torch.Tensor, "matmul mm dot outer", matmul_guard, SIZES_ONLY),
    "index_select": op(".index_select", torch.Tensor.index_select, index_select_guard, frozenset({"dim", "index"})),
    "diag": op(".diag", torch.Tensor.diag, diag_guard, frozenset({"diagonal"})),
    "diag_embed": op(".diag_embed", torch.Tensor.diag_embed, diag_guard, frozenset({"offset", "dim1", "dim2"})),
}

TENSOR_PROPERTIES: frozenset[str] = frozenset({"shape", "T", "mT", "dtype", "ndim"})
RESULT_FIELDS: frozenset[str] = frozenset({"values", "indices"})  # of max/min(dim) results

# Every keyword some allowed op takes (from torch's signatures, see signatures.py): what the validator
# accepts where it cannot tell which op a call reaches; each call checks its own op's keywords.
KEYWORDS: frozenset[str] = frozenset().union(*(o.keywords for table in (TORCH_FUNCTIONS, F_FUNCTIONS, TENSOR_METHODS)
                                                for o in table.values()))


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
        raise DojoError("forbidden", tr("{label}() of a tensor walks it in Python; use x.{method}() instead", label=label,
                                            method=method))
    if isinstance(seq, range) and len(seq) > limit:
        raise DojoError("limit", tr("{label}() of a range of {count:,} numbers; the limit is {limit:,}", label=label,
                                    count=len(seq), limit=limit))
    if isinstance(seq, (list, tuple)):  # sum([x] * 100_000) would add a big tensor 100 000 times
        budget.check_elements(sum(v.numel() for v in seq if isinstance(v, torch.Tensor)),
                              tr("{label}() over these tensors", label=label))
    if label == "sum" and len(args) > 1 and isinstance(args[1], (list, tuple)):
        raise DojoError("forbidden", tr("sum() of lists is not available (it copies the list once per item)"))


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
            raise DojoError("limit", tr("round(x, ndigits) with more than 100 digits"))


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
