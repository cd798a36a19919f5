"""`python -m ninja_core dojo --node h --code 'dh = dlogits @ W2.T'` and `python -m ninja_core grade FILE`.

Exit codes: 0 the answer is right (every node, for grade), 1 it is not or the code has an error
(printed with its line and column, like any other verdict), 2 bad command-line arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..dojo.errors import DojoError
from .args import add_config_arguments, config_from, print_json

MAX_FILE_BYTES = 1 << 20  # far above the dojo's own 4 KB limit, which then says what is wrong


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dojo", help="judge your own gradient for one node against autograd")
    p.add_argument("--node", required=True, help="the node whose gradient you write, e.g. h (or an alias: a)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--code", help="the code, e.g. 'dh = dlogits @ W2.T'")
    source.add_argument("--file", metavar="PATH", help="read the code from a file ('-' for stdin)")
    add_config_arguments(p)
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    p.add_argument("--figure", action="store_true", help="with --json: include the plotly figure")
    p.set_defaults(handler=cmd_dojo)

    g = sub.add_parser("grade", help="grade a whole exercise cell: every gradient of the network, end to end and locally")
    g.add_argument("file", metavar="FILE", help="the cell's code ('-' for stdin)")
    add_config_arguments(g)
    g.add_argument("--json", action="store_true", help="print the report as one JSON object")
    g.set_defaults(handler=cmd_grade)


def read_code(path: str, command: str, prog: str = "python -m ninja_core") -> str | None:
    """The file's text, or None after printing one line on stderr (exit 2: a bad argument)."""
    try:
        if path == "-":
            return sys.stdin.read(MAX_FILE_BYTES)
        file = Path(path)
        if file.stat().st_size > MAX_FILE_BYTES:
            raise OSError(f"{path} is larger than {MAX_FILE_BYTES:,} bytes")
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"{prog} {command}: error: cannot read {path}: no such file", file=sys.stderr)
        return None
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{prog} {command}: error: cannot read {path}: {exc}", file=sys.stderr)
        return None


def report_error(exc: DojoError, as_json: bool) -> int:
    if as_json:
        print_json({"error": exc.to_dict()})
    else:
        print(f"{exc.kind} error: {exc.text()}")
    return 1


def cmd_dojo(args: argparse.Namespace) -> int:
    from ..dojo.judge import canonical, check_node
    from ..run import check

    code = args.code if args.code is not None else read_code(args.file, "dojo", args.prog)
    if code is None:
        return 2
    cfg = config_from(args)
    run = check(cfg, args.data)
    canonical(run, args.node)  # an unknown node is a bad argument (ValueError: exit 2)
    try:
        verdict = check_node(run, args.node, code, figure=args.json and args.figure)
    except DojoError as exc:
        return report_error(exc, args.json)
    if args.json:
        print_json(verdict.to_dict(figure=args.figure))
    else:
        c = verdict.comparison
        maxdiff = "" if c.maxdiff is None else f", maxdiff {c.maxdiff:.3g}"
        print(f"d{verdict.node}: {verdict.status} (read from {verdict.variable}{maxdiff})")
        for line in verdict.diagnosis:
            print(f"  {line}")
        for line in verdict.output:
            print(f"  print: {line}")
    return 0 if verdict.passed else 1


def cmd_grade(args: argparse.Namespace) -> int:
    from ..dojo.grade import grade_cell
    from ..run import check

    code = read_code(args.file, "grade", args.prog)
    if code is None:
        return 2
    run = check(config_from(args), args.data)
    try:
        report = grade_cell(run, code)
    except DojoError as exc:
        return report_error(exc, args.json)
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.table())
    return 0 if report.complete and report.totals["passed"] == report.totals["total"] else 1
