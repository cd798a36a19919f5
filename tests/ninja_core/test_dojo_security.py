"""The sandbox holds: known escape payloads are refused and nothing of them runs; limits stop
runaway programs; generated programs never raise anything but DojoError and never outlast the
deadline."""

from __future__ import annotations

import ast
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ninja_core.dojo import allowlist, interpreter
from ninja_core.dojo.allowlist import Op
from ninja_core.dojo.edits import MAX_SECONDS
from ninja_core.dojo.errors import DojoError
from ninja_core.dojo.judge import check_node
from ninja_core.dojo.limits import Limits
from ninja_core.dojo.sandbox import run_code
from ninja_core.run import Run

# Generated programs do odd but legal things torch warns about (torch.tensor(a_tensor), ...).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

NAMES: dict[str, Any] = {"C": torch.randn(27, 10), "Xb": torch.randint(0, 27, (32, 3)), "n": 32,
                         "x": torch.randn(4, 5), "y": torch.randn(5)}

# Refused by the validator, before the first statement runs.
STATIC_PAYLOADS: list[tuple[str, str]] = [
    ("().__class__.__bases__[0].__subclasses__()", "forbidden"),
    ("[].__class__.__base__.__subclasses__()", "forbidden"),
    ("(1).__class__", "forbidden"),
    ("int.mro()", "forbidden"),
    ("torch.__builtins__", "forbidden"),
    ("torch.load('x')", "forbidden"),
    ("torch.save(C, '/tmp/x')", "forbidden"),
    ("torch.ops.aten.add", "forbidden"),
    ("torch.utils.cpp_extension.load_inline", "forbidden"),
    ("torch._C._get_tracing_state()", "forbidden"),
    ("torch.nn.Module", "forbidden"),
    ("torch.hub.load", "forbidden"),
    ("torch.from_file", "forbidden"),
    ("torch.compile", "forbidden"),
    ("torch.jit.script", "forbidden"),
    ("torch.sparse", "forbidden"),
    ("torch.empty(3)", "forbidden"),
    ("torch.manual_seed(0)", "forbidden"),
    ("torch.Tensor.__subclasses__()", "forbidden"),
    ("torch.zeros.__call__(3)", "forbidden"),
    ("getattr(torch, 'lo' + 'ad')", "forbidden"),
    ("'{0.__class__}'.format(C)", "forbidden"),
    ("f'{C.__class__}'", "forbidden"),
    ("'a' * 10**9", "forbidden"),
    ("x = b'abc'", "forbidden"),
    ("C.storage()", "forbidden"),
    ("C.untyped_storage()", "forbidden"),
    ("C.data_ptr()", "forbidden"),
    ("C.numpy()", "forbidden"),
    ("Xb.__array_interface__", "forbidden"),
    ("C.__reduce_ex__(2)", "forbidden"),
    ("C.apply_(abs)", "forbidden"),
    ("C.map_(C, abs)", "forbidden"),
    ("C.as_strided((100,), (1,))", "forbidden"),
    ("C.set_()", "forbidden"),
    ("C.register_hook(abs)", "forbidden"),
    ("C.grad_fn", "forbidden"),
    ("C.backward()", "forbidden"),
    ("C.to('cuda')", "forbidden"),
    ("C.type('torch.DoubleTensor')", "forbidden"),
    ("C.T.__class__", "forbidden"),
    ("F.__dict__", "forbidden"),
    ("print.__self__", "forbidden"),
    ("type(C)", "forbidden"),
    ("globals()", "forbidden"),
    ("vars()", "forbidden"),
    ("locals()", "forbidden"),
    ("dir()", "forbidden"),
    ("open('/etc/passwd')", "forbidden"),
    ("exec('1')", "forbidden"),
    ("eval('1')", "forbidden"),
    ("compile('1', 'f', 'exec')", "forbidden"),
    ("breakpoint()", "forbidden"),
    ("input()", "forbidden"),
    ("__import__('os')", "forbidden"),
    ("__builtins__", "forbidden"),
    ("import os", "forbidden"),
    ("from os import system", "forbidden"),
    ("lambda: 0", "forbidden"),
    ("def f():\n    return f()\nf()", "forbidden"),
    ("class A:\n    pass", "forbidden"),
    ("while True:\n    pass", "forbidden"),
    ("try:\n    pass\nexcept Exception:\n    pass", "forbidden"),
    ("with open('x') as f:\n    pass", "forbidden"),
    ("x = [c for c in C]", "forbidden"),
    ("for row in C:\n    pass", "forbidden"),
    ("x = (c for c in range(3))", "forbidden"),
    ("x = {}", "forbidden"),
    ("x = {1, 2}", "forbidden"),
    ("(x := 1)", "forbidden"),
    ("del C", "forbidden"),
    ("assert False", "forbidden"),
    ("raise SystemExit", "forbidden"),
    ("global x", "forbidden"),
    ("yield 1", "forbidden"),
    ("x = 1 << 10**9", "forbidden"),
    ("torch = 1", "forbidden"),
    ("range = torch.zeros", "forbidden"),
    ("C.sum(out=C)", "forbidden"),
    ("torch.zeros(3, device=torch.device)", "forbidden"),
    ("torch.zeros(**{})", "forbidden"),
    ("C.shape = (1,)", "forbidden"),
    ("x = 1\n" * 5 + "x.__init__", "forbidden"),
    ("print(1)\nimport os", "forbidden"),  # the harmless first line must not run either
    # strings: only as data arguments of the calls that read text (issue 14), never a value of their own
    ("''.join(['o', 's'])", "forbidden"),
    ("'a'.__class__", "forbidden"),
    ("'a'.upper()", "forbidden"),
    ("x = 'os'", "forbidden"),
    ("print('%s' % C)", "forbidden"),
    ("print('{}'.format(C))", "forbidden"),
    ("print(f'{C}')", "forbidden"),
    ("print('a' + 'b')", "forbidden"),
    ("print(['a'])", "forbidden"),
    ("print(*('a',))", "forbidden"),
    ("print('a' if True else 'b')", "forbidden"),
    ("print(b'x')", "forbidden"),
    ("print(sep='')", "forbidden"),
    ("torch.einsum(equation='ij->ji')", "forbidden"),
    ("C.sum(dim='a')", "forbidden"),
    ("C.to(dtype='cuda')", "forbidden"),
    ("C.float('x')", "forbidden"),
    ("str(C)", "forbidden"),
    ("bytes(3)", "forbidden"),
    ("F.one_hot(Xb, num_classes='27')", "forbidden"),
    ("torch.einsum('ij->ji', C).__class__", "forbidden"),
    # keywords torch's signatures take, but that a guard does not read: refused, not slipped past the guard
    ("torch.eye(n=10**6)", "forbidden"),
    ("C.repeat(repeats=(10**5, 10**5))", "forbidden"),
    ("torch.matmul(input=C, other=C.T)", "forbidden"),
    ("F.one_hot(x=Xb)", "forbidden"),
    ("C.expand(size=(10**5, 27, 10))", "forbidden"),
    ("torch.tensordot(a=C, b=C, dims=0)", "forbidden"),
    ("C.sum(0, out=C)", "forbidden"),
    ("C.clone(memory_format=torch.contiguous_format)", "forbidden"),
    ("(" * 1000 + "1" + ")" * 1000, "limit"),
    ("-(" * 1000 + "1" + ")" * 1000, "limit"),
    ("-" * 3000 + "1", "limit"),
    ("x" + "[0]" * 1000, "limit"),
    ("x = 1\n" * 1000, "limit"),  # over 4 KB
]


@pytest.fixture
def never_interpreted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every statement and expression the interpreter starts on."""
    calls: list[str] = []
    original_execute, original_evaluate = interpreter.Interpreter.execute, interpreter.Interpreter.evaluate

    def execute(self: Any, node: ast.stmt, top_level: bool = False) -> None:
        calls.append(type(node).__name__)
        original_execute(self, node, top_level)

    def evaluate(self: Any, node: ast.expr) -> Any:
        calls.append(type(node).__name__)
        return original_evaluate(self, node)

    monkeypatch.setattr(interpreter.Interpreter, "execute", execute)
    monkeypatch.setattr(interpreter.Interpreter, "evaluate", evaluate)
    yield calls


def test_there_are_at_least_30_known_escape_payloads() -> None:
    assert len(STATIC_PAYLOADS) >= 30 and len({code for code, _ in STATIC_PAYLOADS}) == len(STATIC_PAYLOADS)


@pytest.mark.parametrize(("code", "kind"), STATIC_PAYLOADS, ids=[c[:40] for c, _ in STATIC_PAYLOADS])
def test_escape_payloads_are_refused_before_anything_runs(code: str, kind: str, never_interpreted: list[str]) -> None:
    with pytest.raises(DojoError) as info:
        run_code(code, NAMES)
    assert info.value.kind == kind, info.value.text()
    assert never_interpreted == []  # not one statement or expression was evaluated
    if kind == "forbidden":
        assert info.value.line is not None and info.value.col is not None


def test_files_processes_and_torch_io_are_never_touched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = tmp_path / "escaped"
    touched: list[str] = []
    for module, name in [(torch, "save"), (torch, "load"), (os, "system"), (subprocess, "Popen"), (os, "open")]:
        original = getattr(module, name)

        def spy(*args: Any, _name: str = name, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            touched.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    payloads = [
        f"torch.save(C, '{sentinel}')",
        f"open('{sentinel}', 'w').write('x')",
        f"__import__('os').system('touch {sentinel}')",
        f"getattr(torch, 'save')(C, '{sentinel}')",
        f"C.numpy().tofile('{sentinel}')",
        "torch.load('/etc/passwd')",
        f"torch.utils.cpp_extension.load_inline('x', '', functions=['f'], build_directory='{tmp_path}')",
        f"x = torch.ones(2)\nx.storage()._share_filename_cpu_('{sentinel}')",
    ]
    for code in payloads:
        with pytest.raises(DojoError):
            run_code(code, NAMES)
    assert not sentinel.exists() and list(tmp_path.iterdir()) == []
    assert touched == []


# Refused while running, by a limit checked before the costly operation.
RUNTIME_PAYLOADS: list[tuple[str, str, tuple[str, str] | None]] = [
    ("for i in range(10**9):\n    pass", "limit", None),
    ("x = [[0] * 100_000 for i in range(100_000)]", "limit", None),
    ("torch.zeros(10**5, 10**5)", "limit", ("torch", "zeros")),
    ("torch.ones((10**4, 10**4))", "limit", ("torch", "ones")),
    ("torch.full((10**8,), 1.0)", "limit", ("torch", "full")),
    ("torch.arange(10**12)", "limit", ("torch", "arange")),
    ("torch.eye(10**5)", "limit", ("torch", "eye")),
    ("torch.ones(1).expand(10**4, 10**4)", "limit", ("tensor", "expand")),
    ("C.repeat(10**4, 10**4)", "limit", ("tensor", "repeat")),
    ("C.new_zeros(10**6, 10**6)", "limit", ("tensor", "new_zeros")),
    ("torch.zeros(10**7).tolist()", "limit", ("tensor", "tolist")),
    ("torch.cat([torch.ones(10**7)] * 3)", "limit", ("torch", "cat")),
    ("F.one_hot(torch.tensor([10**9]))", "limit", ("F", "one_hot")),
    ("torch.tensor([[0] * 1000] * 1000)", "limit", ("torch", "tensor")),
    ("x = torch.ones(3000, 3000)\ny = x @ x", "limit", ("binary", "MatMult")),
    ("x = torch.ones(3000, 3000)\ny = torch.matmul(x, x)", "limit", ("torch", "matmul")),
    ("x = torch.ones(3163, 1)\ny = x * x.T", "limit", None),  # broadcasting to 3163² > 10M elements
    ("C[torch.zeros(10**4, 1).long(), torch.zeros(1, 10**4).long()]", "limit", None),
    ("C[torch.zeros(10**4, 1).long(), torch.zeros(1, 10**4).long()] = 1.0", "limit", None),
    ("C.index_put_((torch.zeros(10**4, 1).long(), torch.zeros(1, 10**4).long()), torch.tensor(1.0))", "limit",
     ("tensor", "index_put_")),
    ("torch.ones(10**7).view(torch.int8) + 1", "forbidden", ("tensor", "view")),
    ("9**9**9", "limit", None),
    ("x = 10**18 * 10**18", "limit", None),
    ("x = 123456789012345678901234567890", "limit", None),
    ("[0] * 10**9", "limit", None),
    ("[0] * torch.tensor(10**9)", "forbidden", None),  # Python would repeat by the tensor's __index__
    ("round(10**18, -10**18)", "limit", ("builtin", "round")),
    ("round(10**18, torch.tensor(-10**18))", "limit", ("builtin", "round")),
    ("max(range(10**18))", "limit", ("builtin", "max")),
    ("sum([C] * 100_000)", "limit", ("builtin", "sum")),
    ("list(range(10**9))", "limit", ("builtin", "list")),
    ("print(*[C] * 100_000)", "limit", None),
    ("a = [0]\nfor i in range(100):\n    a = [a]", "limit", None),
    ("torch.einsum('i,j->ij', torch.ones(10**6), torch.ones(10**6))", "limit", ("torch", "einsum")),
    ("x = torch.ones(4000, 4000)\ny = torch.einsum('ij,jk->ik', x, x)", "limit", ("torch", "einsum")),
    ("torch.einsum('i,j,k->', torch.ones(3000), torch.ones(3000), torch.ones(3000))", "limit", ("torch", "einsum")),
    ("torch.tensordot(torch.ones(10**4), torch.ones(10**4), dims=0)", "limit", ("torch", "tensordot")),
    ("x = torch.ones(5000, 5000)\ny = torch.tensordot(x, x, dims=1)", "limit", ("torch", "tensordot")),
    ("torch.diag(torch.ones(1), 10**5)", "limit", ("torch", "diag")),
    ("torch.ones(10**4).diag_embed()", "limit", ("tensor", "diag_embed")),
    ("torch.index_select(C, 0, torch.zeros(10**7).long())", "limit", ("torch", "index_select")),
]


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], list[Any]]:
    """Replace guarded operations by recording wrappers: a limit must stop them before they run."""
    calls: dict[tuple[str, str], list[Any]] = {}
    tables = {"torch": allowlist.TORCH_FUNCTIONS, "F": allowlist.F_FUNCTIONS, "tensor": allowlist.TENSOR_METHODS,
              "builtin": allowlist.BUILTINS}
    for kind, table in tables.items():
        for name, op in list(table.items()):
            log = calls.setdefault((kind, name), [])

            def fn(*args: Any, _fn: Callable[..., Any] = op.fn, _log: list[Any] = log, **kwargs: Any) -> Any:
                _log.append(args)
                return _fn(*args, **kwargs)

            monkeypatch.setitem(table, name, Op(op.label, fn, op.guard, op.keywords))
    matmul_log = calls.setdefault(("binary", "MatMult"), [])

    def matmul(a: Any, b: Any) -> Any:
        matmul_log.append((a, b))
        return a @ b

    monkeypatch.setitem(interpreter.BINARY, ast.MatMult, matmul)
    return calls


@pytest.mark.parametrize(("code", "kind", "target"), RUNTIME_PAYLOADS, ids=[c[:40] for c, _, _ in RUNTIME_PAYLOADS])
def test_runaway_programs_are_stopped_before_the_costly_step(code: str, kind: str, target: tuple[str, str] | None,
                                                             spies: dict[tuple[str, str], list[Any]]) -> None:
    start = time.perf_counter()
    with pytest.raises(DojoError) as info:
        run_code(code, NAMES)
    assert info.value.kind == kind, info.value.text()
    assert info.value.line is not None
    assert time.perf_counter() - start < 3.0
    if target is not None:
        assert spies[target] == [], f"{target} ran although it was over the limit"


def test_a_busy_loop_is_stopped_by_the_deadline() -> None:
    start = time.perf_counter()
    with pytest.raises(DojoError) as info:
        run_code("x = torch.ones(10**6)\nfor i in range(99_999):\n    x = (x * 1.0001).exp().log()", NAMES)
    elapsed = time.perf_counter() - start
    assert info.value.kind == "timeout" and info.value.line is not None
    assert 1.9 < elapsed < 3.0


def test_live_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = Limits(live_bytes=100 * 2**20)
    code = "\n".join(f"a{i} = torch.ones(10**6)" for i in range(40))  # 4 MB each: 160 MB in all
    with pytest.raises(DojoError) as info:
        run_code(code, NAMES, limits)
    assert info.value.kind == "limit" and "MiB" in info.value.message
    # freed tensors are not counted: the same 40 allocations, each dropped, pass
    run_code("\n".join("a = torch.ones(10**6)" for _ in range(40)), NAMES, limits)


def test_the_dojo_never_hands_out_a_module_or_a_python_function() -> None:
    for code in ["torch", "F", "torch.zeros", "F.softmax", "C.sum", "len", "print"]:
        value = run_code(code, NAMES).last_value
        assert isinstance(value, (allowlist.Namespace, allowlist.Function, allowlist.Method)), code
    with pytest.raises(DojoError):
        run_code("f = torch.zeros\nf.op", NAMES)


# ---- generated programs ---------------------------------------------------------------------------

FUZZ_LIMITS = Limits(seconds=0.5)
FUZZ_MARGIN = 1.0  # the deadline plus one torch op of at most a few hundred ms

TOKENS = ["x", "y", "C", "Xb", "n", "i", "torch", "F", ".", "(", ")", "[", "]", ",", ":", "=", "+=", "+", "-", "*",
          "**", "@", "/", "//", "%", "<", "==", "1", "0", "2", "-1", "3.5", "10**9", "1e300", "range", "for", "in",
          "if", "else", "not", "and", "or", "None", "True", "import", "lambda", "while", "def", "__class__",
          "__globals__", "__subclasses__", "getattr", "'s'", "sum", "max", "len", "print", "zeros", "ones", "expand",
          "view", "T", "shape", "sum(0)", "tanh", "load", "save", "storage", "index_add_", "\n", "\n    ", "...", "*"]

SAFE_FUNCTIONS = ["torch.zeros", "torch.ones", "torch.tanh", "torch.exp", "torch.arange", "torch.cat", "torch.tensor",
                  "torch.where", "torch.matmul", "torch.full", "torch.eye", "F.one_hot", "F.softmax",
                  "F.cross_entropy", "len", "range", "max", "sum", "int", "float", "abs", "print", "list"]
UNSAFE_FUNCTIONS = ["torch.load", "getattr", "open", "eval", "type", "torch._C", "vars"]
SAFE_METHODS = ["sum", "view", "expand", "repeat", "max", "T", "shape", "exp", "index_add_", "tolist", "item", "clone",
                "values", "indices", "unsqueeze", "zero_", "fill_", "new_zeros", "scatter_", "masked_fill", "log",
                "reshape", "permute", "index_put_", "to", "float", "long", "mean", "argmax", "gather", "pow"]
UNSAFE_METHODS = ["__class__", "storage", "numpy", "data_ptr", "apply_"]
# Mostly allowed names, so most programs get past the validator and exercise the interpreter.
FUNCTIONS = SAFE_FUNCTIONS * 4 + UNSAFE_FUNCTIONS
METHODS = SAFE_METHODS * 4 + UNSAFE_METHODS


def expressions() -> st.SearchStrategy[ast.expr]:
    leaves = st.one_of(
        st.sampled_from(["x", "y", "C", "Xb", "n", "i", "torch", "F", "undefined"]).map(lambda s: ast.Name(s, ast.Load())),
        st.integers(min_value=-5, max_value=10**20).map(ast.Constant),
        st.sampled_from([0.0, 0.5, -1e300, float("inf")]).map(ast.Constant),
        st.just(ast.Constant(None)),
    )

    def extend(inner: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
        ops = st.sampled_from([ast.Add(), ast.Sub(), ast.Mult(), ast.Pow(), ast.MatMult(), ast.Div(), ast.Mod()])
        return st.one_of(
            st.builds(ast.BinOp, inner, ops, inner),
            st.builds(ast.UnaryOp, st.sampled_from([ast.USub(), ast.Not()]), inner),
            st.builds(lambda f, args: ast.Call(ast.parse(f, mode="eval").body, args, []),
                      st.sampled_from(FUNCTIONS), st.lists(inner, max_size=3)),
            st.builds(lambda obj, m, args: ast.Call(ast.Attribute(obj, m, ast.Load()), args, []),
                      inner, st.sampled_from(METHODS), st.lists(inner, max_size=3)),
            st.builds(lambda obj, m: ast.Attribute(obj, m, ast.Load()), inner, st.sampled_from(METHODS)),
            st.builds(lambda obj, idx: ast.Subscript(obj, idx, ast.Load()), inner, inner),
            st.builds(lambda obj, a, b: ast.Subscript(obj, ast.Slice(a, b, None), ast.Load()), inner, inner, inner),
            st.lists(inner, max_size=3).map(lambda elts: ast.List(elts, ast.Load())),
            st.lists(inner, min_size=2, max_size=3).map(lambda elts: ast.Tuple(elts, ast.Load())),
            st.builds(lambda a, b: ast.Compare(a, [ast.Lt()], [b]), inner, inner),
        )

    return st.recursive(leaves, extend, max_leaves=12)


def statements() -> st.SearchStrategy[list[ast.stmt]]:
    target = st.sampled_from(["x", "y", "z", "dC", "i"])
    simple = st.one_of(
        st.builds(lambda t, v: ast.Assign([ast.Name(t, ast.Store())], v), target, expressions()),
        st.builds(lambda t, v: ast.AugAssign(ast.Name(t, ast.Store()), ast.Add(), v), target, expressions()),
        st.builds(lambda t, i, v: ast.Assign([ast.Subscript(ast.Name(t, ast.Load()), i, ast.Store())], v),
                  target, expressions(), expressions()),
        st.builds(ast.Expr, expressions()),
    )

    def loop(body: list[ast.stmt], count: ast.expr) -> ast.stmt:
        call = ast.Call(ast.Name("range", ast.Load()), [count], [])
        return ast.For(ast.Name("i", ast.Store()), call, body or [ast.Pass()], [])

    compound = st.one_of(
        simple,
        st.builds(loop, st.lists(simple, min_size=1, max_size=3), expressions()),
        st.builds(lambda test, body: ast.If(test, body, []), expressions(), st.lists(simple, min_size=1, max_size=2)),
    )
    return st.lists(compound, min_size=1, max_size=5)


def run_and_time(code: str) -> float:
    start = time.perf_counter()
    try:
        run_code(code, NAMES, FUZZ_LIMITS)
    except DojoError as exc:
        assert exc.kind in ("forbidden", "limit", "timeout", "runtime", "syntax", "no_answer")
        assert isinstance(exc.to_dict()["message"], str)
    return time.perf_counter() - start


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_token_soup_never_escapes_or_hangs(code: str) -> None:
    assert run_and_time(code) < FUZZ_LIMITS.seconds + FUZZ_MARGIN


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(statements())
def test_generated_programs_never_escape_or_hang(body: list[ast.stmt]) -> None:
    code = ast.unparse(ast.fix_missing_locations(ast.Module(body, [])))
    assert run_and_time(code) < FUZZ_LIMITS.seconds + FUZZ_MARGIN


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_lecture_code_through_check_node_never_escapes(default_run: Run, data: st.DataObject) -> None:
    """Edits of the real cell, judged as a node's answer: the judge (compare, diagnose, figure)
    must survive whatever tensor comes back, of any shape or dtype."""
    cell = default_run.tape.exercise_cell()
    lines = cell.splitlines()
    start = data.draw(st.integers(0, len(lines) - 1))
    chunk = "\n".join(lines[start:start + data.draw(st.integers(1, 4))])
    pos = data.draw(st.integers(0, len(chunk)))
    insert = data.draw(st.sampled_from(["", ".T", ".sum(0)", "[0]", " * 0", ".double()", " > 0", "[:0]",
                                        ".view(-1)", " ** 200", " / 0", ".long()", "[None]", ")", "__class__"]))
    cut = data.draw(st.integers(0, 3))
    code = chunk[:pos] + insert + chunk[pos + cut:]
    node = data.draw(st.sampled_from(["logprobs", "counts", "logits", "h", "hprebn", "bnvar", "emb", "C", "W1", "b2"]))
    started = time.perf_counter()
    try:
        verdict = check_node(default_run, node, code, limits=FUZZ_LIMITS)
        verdict.to_dict()
    except DojoError:
        pass
    # the learner's code on its own minibatch, then on the others and in float64 (as much again), the one-edit search
    assert time.perf_counter() - started < 2 * FUZZ_LIMITS.seconds + MAX_SECONDS + FUZZ_MARGIN


def test_cmp_lines_are_skipped_unevaluated(never_interpreted: list[str]) -> None:
    """A pasted notebook cell keeps its cmp("name", d, t) lines; they are never looked at, whatever is in them."""
    done = run_code("cmp('h', __import__('os').system('x'), open('/etc/passwd'))", NAMES)
    assert done.last_value is None
    assert never_interpreted == ["Expr"]  # the statement was skipped without evaluating a single expression


def test_concurrent_checks_share_nothing(default_run: Run) -> None:
    """The server runs checks in worker threads: each has its own scope, budget and copies."""
    from concurrent.futures import ThreadPoolExecutor

    codes = ["dh = dlogits @ W2.T", "dlogits.zero_()\ndh = dlogits @ W2.T", "W2.mul_(0)\ndh = dlogits @ W2.T"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = list(pool.map(lambda code: check_node(default_run, "h", code, figure=False), codes * 8))
    statuses = [v.status for v in verdicts]
    assert statuses == ["exact", "mismatch", "mismatch"] * 8
