"""Judge a learner's gradient: one node (`check_node`) or a whole exercise cell (`grade_cell`).

    verdict = check_node(run, "h", "dh = dlogits @ W2.T")
    verdict.status, verdict.diagnosis          # "exact", ["exact: bit for bit what autograd computed"]
    report = grade_cell(run, tape.exercise_cell())
    report.totals["passed"]                    # 26

Both return dataclasses whose to_dict() holds only JSON types (non-finite floats become None and
their field names are listed in "nonfinite").
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..compare import Comparison, compare
from ..figures import Lang, node_figure
from .diagnose import diagnose
from .errors import DojoError, UnknownNodeError
from .limits import DEFAULT_LIMITS, Limits
from .sandbox import execute, parse
from .scope import Scope, node_scope

if TYPE_CHECKING:
    from ..run import Run

LAST_EXPRESSION = "last expression"
log = logging.getLogger(__name__)


def finite_or_none(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """JSON has no NaN/Inf: replace them by None and name the fields that were."""
    out: dict[str, Any] = {}
    nonfinite: list[str] = []
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
            nonfinite.append(key)
        else:
            out[key] = value
    return out, nonfinite


def canonical(run: Run, node: str) -> str:
    """The node's own name (an alias resolved). Raises UnknownNodeError naming the network's nodes."""
    tape = run.tape
    name = tape.resolve(node)
    if name is None or name not in tape.backward_order:  # "loss" resolves, but its gradient is not an exercise
        aliases = f" (and {', '.join(tape.aliases)})" if tape.aliases else ""
        raise UnknownNodeError(f"unknown node {node!r}; the nodes of {run.config.net} are: "
                               f"{', '.join(tape.backward_order)}{aliases}")
    return name


def answer_of(run: Run, scope: Scope, node: str) -> tuple[str, Any] | None:
    """(variable, value) of the learner's d<node>, under its own name or its alias, if the code bound it."""
    for name in run.tape.gradient_names(node):
        if name in scope.assigned:
            return name, scope.vars[name]
    return None


@dataclass(frozen=True)
class Verdict:
    node: str  # the node judged (canonical name: "h" even if asked as "a")
    variable: str  # where the answer was read: "dh", "da" or "last expression"
    comparison: Comparison
    diagnosis: list[str]
    dtype: str | None  # the answer's dtype ("float32"), None when it is not a tensor
    expected_dtype: str
    output: list[str] = field(default_factory=list)  # what print() wrote
    figure: dict[str, Any] | None = None  # plotly JSON: value, yours, autograd, |diff|

    @property
    def status(self) -> str:
        return self.comparison.status

    @property
    def passed(self) -> bool:
        return self.comparison.status in ("exact", "approx")

    def to_dict(self, figure: bool = True) -> dict[str, Any]:
        c = self.comparison
        numbers, nonfinite = finite_or_none({"maxdiff": c.maxdiff, "relerr": c.relerr})
        body: dict[str, Any] = {
            "node": self.node, "variable": self.variable, "status": c.status, "passed": self.passed,
            "exact": c.exact, "approx": c.approx, **numbers, "nonfinite": nonfinite,
            "shape": list(c.manual_shape) if c.manual_shape is not None else None,
            "expected_shape": list(c.shape) if c.shape is not None else None,
            "dtype": self.dtype, "expected_dtype": self.expected_dtype,
            "diagnosis": list(self.diagnosis), "output": list(self.output),
        }
        if figure:
            body["figure"] = self.figure
        return body


def dtype_name(value: Any) -> str | None:
    return str(value.dtype).replace("torch.", "") if isinstance(value, torch.Tensor) else None


def judge_value(run: Run, node: str, value: Any) -> tuple[Comparison, list[str]]:
    comparison = compare(value, run.autograd[node])
    try:
        notes = diagnose(node, value, run, comparison)
    except Exception:  # the learner's tensor can be anything; a diagnosis must never turn a verdict into a crash
        log.exception("diagnosis failed for d%s", node)
        notes = [comparison.message or comparison.status]
    return comparison, notes


def figure_for(run: Run, node: str, value: Any, lang: Lang = "en") -> dict[str, Any] | None:
    reference = run.autograd[node]
    yours = value.detach().to(reference.dtype) if isinstance(value, torch.Tensor) else None
    try:
        return node_figure(node, run.values[node], yours, reference, manual_label="yours", lang=lang)
    except Exception:  # as above: no figure rather than no verdict
        log.exception("figure failed for d%s", node)
        return None


def check_node(run: Run, node: str, code: str, *, limits: Limits = DEFAULT_LIMITS, figure: bool = True,
               lang: Lang = "en") -> Verdict:
    """Run the learner's `code` for one node and judge d<node> against autograd.

    The code sees the forward values, parameters, Xb, Yb, n, torch, F, and the true gradient of
    every node between this one and the loss. The answer is d<node> (or its alias) if the code
    assigns it, else the value of the last expression statement. Raises DojoError for anything
    wrong with the code itself (UnknownNodeError, a ValueError, for a node that does not exist)."""
    name = canonical(run, node)
    program = parse(code, limits)
    done = execute(program, node_scope(run, name), limits)
    found = answer_of(run, done.scope, name)
    if found is None:
        if done.last_value is None:
            names = " or ".join(run.tape.gradient_names(name))
            raise DojoError("no_answer", f"no answer: assign {names} = ... (or end with an expression)")
        found = (LAST_EXPRESSION, done.last_value)
    variable, value = found
    comparison, diagnosis = judge_value(run, name, value)
    return Verdict(
        node=name, variable=variable, comparison=comparison, diagnosis=diagnosis,
        dtype=dtype_name(value), expected_dtype=dtype_name(run.autograd[name]) or "",
        output=done.output, figure=figure_for(run, name, value, lang) if figure else None,
    )


__all__ = ["LAST_EXPRESSION", "Verdict", "check_node", "judge_value"]
