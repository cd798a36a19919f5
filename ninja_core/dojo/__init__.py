"""The dojo: write your own gradient for any node and get judged against autograd, safely.

    from ninja_core import check
    from ninja_core.dojo import check_node, grade_cell
    run = check()
    check_node(run, "h", "dh = dlogits @ W2.T")               # in Jupyter: the verdict as a small table
    check_node(run, "h", code).to_dict(lang="de")              # status, diagnosis, fix, lens, rounding, batches
    grade_cell(run, open("my_cell.py").read())                 # the network's cmp table, end to end and local

The learner's code is parsed with `ast.parse`, checked whole against an allow-list, and then
interpreted node by node (sandbox.py); it is never compiled or evaluated by Python. Every problem
with it is a DojoError (a ValueError) with a kind, a message, and the line and column. What is
judged and said about an answer: judge.py (one node), grade.py (a cell), diagnose.py (the causes),
edits.py (the one-edit fix), probes.py (other minibatches, float64), trace.py (what the run noticed).
"""

from .edits import Fix, Search
from .errors import ERROR_KINDS, DojoError, UnknownNodeError
from .grade import GradeReport, GradeRow, grade_cell
from .judge import BatchVerdict, Verdict, check_node
from .limits import DEFAULT_LIMITS, Limits, SourceLimits, cell_limits, node_limits, source_limits
from .sandbox import Execution, execute, parse, run_code
from .scope import Scope, cell_scope, node_scope

__all__ = [
    "DEFAULT_LIMITS",
    "ERROR_KINDS",
    "BatchVerdict",
    "DojoError",
    "Execution",
    "Fix",
    "GradeReport",
    "GradeRow",
    "Limits",
    "Scope",
    "Search",
    "SourceLimits",
    "UnknownNodeError",
    "Verdict",
    "cell_limits",
    "cell_scope",
    "check_node",
    "execute",
    "grade_cell",
    "node_limits",
    "node_scope",
    "parse",
    "run_code",
    "source_limits",
]
