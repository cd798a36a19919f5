"""The dojo's language: the Python subset a learner writes, interpreted from its tree."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ninja_core.dojo.errors import DojoError
from ninja_core.dojo.limits import Limits
from ninja_core.dojo.sandbox import run_code
from ninja_core.dojo.scope import Scope


def run(source: str, **names: Any) -> Any:
    """The value of the last expression, or of `out` if the code assigned it."""
    done = run_code(source, names)
    return done.scope.get("out") if "out" in done.scope.assigned else done.last_value


def test_arithmetic_comparisons_and_precedence() -> None:
    assert run("1 + 2 * 3 ** 2 - 10 // 3 % 2") == 1 + 2 * 3**2 - 10 // 3 % 2
    assert run("out = -(2 ** -1) + 7 / 2") == 3.0
    assert run("1 < 2 <= 2 != 3") is True
    assert run("3 > 2 > 2") is False
    assert run("x = None\nx is None and not (x is not None)") is True
    assert run("0 or 5") == 5 and run("2 and 0") == 0
    assert run("7 if 1 > 2 else 8") == 8


def test_tensor_operators_and_in_place_augmented_assignment() -> None:
    out = run("a = torch.ones(2, 3)\nb = a\nb += 1\nout = a * 2 - 1", )
    assert torch.equal(out, torch.full((2, 3), 3.0))  # b += 1 changed a too, as in Python
    assert torch.equal(run("torch.arange(6).view(2, 3) @ torch.ones(3, dtype=torch.long)"), torch.tensor([3, 12]))
    mask = run("x = torch.tensor([1.0, -2.0, 3.0])\n(x > 0) & (x < 2) | (x == -2)")
    assert mask.tolist() == [True, True, False]


def test_indexing_slicing_and_element_assignment() -> None:
    x = torch.arange(12.0).view(3, 4)
    assert torch.equal(run("x[1:, ::2]", x=x), x[1:, ::2])
    assert torch.equal(run("x[..., -1]", x=x), x[..., -1])
    assert torch.equal(run("x[None, 0].shape[0] + x[[0, 2]].sum()", x=x), x[None, 0].shape[0] + x[[0, 2]].sum())
    out = run("y = torch.zeros(3, 4)\ny[range(3), torch.tensor([0, 1, 2])] = -1.0\ny[0] += 5\nout = y")
    expected = torch.zeros(3, 4)
    expected[[0, 1, 2], [0, 1, 2]] = -1.0
    expected[0] += 5
    assert torch.equal(out, expected)


def test_tuples_lists_unpacking_and_starred_arguments() -> None:
    assert run("a, b = (1, 2)\n[b, a]") == [2, 1]
    assert run("values, indices = torch.tensor([[1.0, 5.0], [7.0, 2.0]]).max(1)\nindices.tolist()") == [1, 0]
    assert run("torch.zeros(*(2, 3)).shape") == (2, 3)
    assert run("s = torch.ones(4, 5).shape\n(s[0], s[-1], len(s), s + (1,))") == (4, 5, 2, (4, 5, 1))
    assert run("[0] * 3 + [1]") == [0, 0, 0, 1]


def test_loops_over_range_with_break_continue_and_if() -> None:
    source = """
total = 0
for i in range(10):
    if i % 2 == 0:
        continue
    if i > 7:
        break
    total += i
total
"""
    assert run(source) == 1 + 3 + 5 + 7


def test_list_comprehensions_over_range_keep_their_variable_to_themselves() -> None:
    assert run("i = 100\nsquares = [i * i for i in range(4) if i != 2]\n(squares, i)") == ([0, 1, 9], 100)
    assert run("[[i, j] for i in range(2) for j in range(2)]") == [[0, 0], [0, 1], [1, 0], [1, 1]]


def test_keyword_arguments_reach_torch() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    assert torch.equal(run("x.sum(dim=1, keepdim=True)", x=x), x.sum(1, keepdim=True))
    assert run("F.one_hot(torch.tensor([2]), num_classes=4).tolist()") == [[0, 0, 1, 0]]
    assert run("torch.zeros(2, dtype=torch.float64).dtype") == torch.float64


def test_builtins_and_constants() -> None:
    assert run("(len(range(5)), int(3.7), float(2), abs(-3), round(2.5), min(3, 1), max([4, 9]), sum([1, 2]))") == \
        (5, 3, 2.0, 3, 2, 1, 9, 3)
    assert run("torch.inf > 10 ** 18") is True
    assert run("list(range(3)) + list((7,))") == [0, 1, 2, 7]


def test_print_is_captured_and_bounded() -> None:
    done = run_code("print(1, torch.zeros(2))\nprint([0] * 1000)", {}, Limits(output_chars=200))
    assert done.output[0] == "1 tensor([0., 0.])"
    assert sum(len(line) for line in done.output) <= 200 + len(" … (output cut)")


def test_docstrings_are_comments_and_last_expression_is_the_value() -> None:
    done = run_code('"""my answer"""\nx = 2\nx * 21', {})
    assert done.last_value == 42
    assert run_code("x = 2", {}).last_value is None


def test_given_tensors_are_copied_so_the_run_never_changes() -> None:
    h = torch.ones(3)
    scope = Scope({"h": h})
    from ninja_core.dojo.sandbox import execute, parse

    execute(parse("h *= 0\nh.add_(5)\nv = h.view(-1)\nv.zero_()"), scope)
    assert torch.equal(h, torch.ones(3))
    assert torch.equal(scope.get("h"), torch.zeros(3))


def test_the_lecture_double_loop_for_dC_works() -> None:
    C = torch.randn(5, 2)
    Xb = torch.tensor([[1, 2], [2, 4], [1, 1]])
    demb = torch.randn(3, 2, 2)
    source = """
dC = torch.zeros_like(C)
for k in range(Xb.shape[0]):
    for j in range(Xb.shape[1]):
        ix = Xb[k, j]
        dC[ix] += demb[k, j]
"""
    done = run_code(source, {"C": C, "Xb": Xb, "demb": demb})
    expected = torch.zeros_like(C).index_add_(0, Xb.view(-1), demb.view(-1, 2))
    assert torch.allclose(done.scope.get("dC"), expected)


@pytest.mark.parametrize(("source", "kind", "line", "col", "words"), [
    ("x = 1\ny = x @ 2", "runtime", 2, 5, "unsupported operand"),
    ("a = torch.ones(2, 3)\nb = a @ a", "runtime", 2, 5, "cannot be multiplied"),
    ("x = 1\ny = undefined_name + 1", "runtime", 2, 5, "name 'undefined_name' is not defined"),
    ("dh = dlogit @ W2", "runtime", 1, 6, "did you mean dlogits"),
    ("x = (1,\n", "syntax", 1, None, ""),
    ("x = 1 / 0", "runtime", 1, 5, "division by zero"),
    ("a, b = [1, 2, 3]", "runtime", 1, 1, "cannot unpack 3 values into 2"),
    ("torch.ones(3).sum().foo", "forbidden", 1, 1, ".foo is not available"),
    ("if torch.ones(3):\n    pass", "runtime", 1, 1, "ambiguous"),
])
def test_errors_name_their_line_and_column(source: str, kind: str, line: int, col: int | None, words: str) -> None:
    with pytest.raises(DojoError) as info:
        run_code(source, {"dlogits": torch.ones(2, 3), "W2": torch.ones(3, 2)})
    err = info.value
    assert err.kind == kind
    assert err.line == line
    if col is not None:
        assert err.col == col
    assert words in err.message
    assert err.to_dict()["text"].startswith(f"line {line}")


def test_dojo_error_is_a_value_error_with_a_json_shape() -> None:
    err = DojoError("runtime", "boom", 3, 7)
    assert isinstance(err, ValueError)
    assert err.to_dict() == {"kind": "runtime", "message": "boom", "line": 3, "col": 7, "text": "line 3, column 7: boom"}
    assert str(err) == "line 3, column 7: boom"
