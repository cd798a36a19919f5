"""The dojo's sandbox in two calls: `parse` (check everything, run nothing) and `execute`.

    program = parse("dh = dlogits @ W2.T")        # DojoError(kind="forbidden", ...) before running
    done = execute(program, node_scope(run, "h"))  # DojoError(kind="runtime" | "limit" | "timeout")
    done.scope.get("dh")

Nothing but a DojoError leaves `parse` or `execute`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..i18n import tr
from .errors import DojoError
from .interpreter import Interpreter
from .limits import DEFAULT_LIMITS, Budget, Limits
from .scope import Scope
from .trace import Event
from .validate import Program, parse

__all__ = ["Execution", "Program", "execute", "parse", "run_code"]


@dataclass
class Execution:
    scope: Scope
    last_value: Any  # the value of the last top-level expression statement that ran (None if none)
    output: list[str] = field(default_factory=list)  # what print() wrote
    error: DojoError | None = None  # only with raise_errors=False: where the program stopped
    failed_at: int | None = None  # index (in the statements run) of the top-level statement that failed
    events: list[Event] = field(default_factory=list)  # what the interpreter noticed (trace.py)


def execute(program: Program, scope: Scope, limits: Limits = DEFAULT_LIMITS, *,
            statements: Sequence[ast.stmt] | None = None, budget: Budget | None = None,
            raise_errors: bool = True, after: Callable[[int, Scope], None] | None = None) -> Execution:
    """Run `program` (or some of its top-level `statements`) in `scope`.

    `budget` lets several executions share one deadline. With raise_errors=False a DojoError is
    returned in the Execution instead, with the scope as the program left it. `after(i, scope)`
    is called after each top-level statement that completed (the grader watches gradients change)."""
    budget = budget or Budget.start(limits)
    interpreter = Interpreter(scope, budget)
    body = program.tree.body if statements is None else statements
    index = 0
    error: DojoError | None = None
    try:
        for index, statement in enumerate(body):
            interpreter.execute(statement, top_level=True)
            if after is not None:
                after(index, scope)
    except DojoError as exc:
        error = exc
    except RecursionError:
        error = DojoError("limit", tr("the code is nested too deeply"))
    except MemoryError:
        error = DojoError("limit", tr("out of memory"))
    except Exception as exc:  # never expected: the interpreter converts errors itself
        error = DojoError("runtime", f"{type(exc).__name__}: {str(exc)[:200]}")
    if error is not None and raise_errors:
        error.events = interpreter.events
        raise error
    return Execution(scope, interpreter.last_value, interpreter.output, error, index if error is not None else None,
                     interpreter.events)


def run_code(source: str, names: Mapping[str, Any] | None = None, limits: Limits = DEFAULT_LIMITS) -> Execution:
    """Parse and run `source` with `names` in scope (tensors are copied on first read)."""
    return execute(parse(source, limits), Scope(names or {}), limits)
