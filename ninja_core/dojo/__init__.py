"""The dojo: write your own gradient for any node and get judged against autograd, safely.

    from ninja_core import check
    from ninja_core.dojo import check_node, grade_cell
    run = check()
    check_node(run, "h", "dh = dlogits @ W2.T").to_dict()      # status, diagnosis, figure, ...
    grade_cell(run, open("my_cell.py").read()).to_dict()     # the 26-row table, end to end and local

The learner's code is parsed with `ast.parse`, checked whole against an allow-list, and then
interpreted node by node (sandbox.py); it is never compiled or evaluated by Python. Every problem
with it is a DojoError (a ValueError) with a kind, a message, and the line and column.
"""

from .errors import ERROR_KINDS, DojoError, UnknownNodeError
from .grade import GradeReport, GradeRow, grade_cell
from .judge import Verdict, check_node
from .limits import DEFAULT_LIMITS, Limits
from .sandbox import Execution, execute, parse, run_code
from .scope import Scope, cell_scope, node_scope

__all__ = [
    "DEFAULT_LIMITS",
    "ERROR_KINDS",
    "DojoError",
    "Execution",
    "GradeReport",
    "GradeRow",
    "Limits",
    "Scope",
    "UnknownNodeError",
    "Verdict",
    "cell_scope",
    "check_node",
    "execute",
    "grade_cell",
    "node_scope",
    "parse",
    "run_code",
]
