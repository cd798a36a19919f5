"""Command line: `python -m ninja_core <command> ...`: check, dojo, grade, train, sample, bench.

Each command lives in its own module here and adds itself with `register(sub)`; they share
`args.py`. (`backprop-ninja serve`, which needs the web layer, is added by the app package.)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..config import ConfigError
from ..data import DataError
from . import check, dojo, train
from .args import OneLineParser

Handler = Callable[[argparse.Namespace], int]
Register = Callable[[Any], None]  # adds commands to the subparsers action it is given


def build_parser(prog: str = "python -m ninja_core", extra: Register | None = None) -> argparse.ArgumentParser:
    """The command line; `extra` lets a front end add its own commands (the installed `backprop-ninja`
    adds `serve` from app.cli) without this package knowing them."""
    parser = OneLineParser(prog=prog,
                           description="Backprop Ninja: backward passes written by hand, checked against autograd.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in (check, dojo, train):
        command.register(sub)
    if extra is not None:
        extra(sub)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m ninja_core", extra: Register | None = None) -> int:
    parser = build_parser(prog, extra)
    args = parser.parse_args(argv)
    args.prog = parser.prog  # handlers name the program as the user called it (backprop-ninja, python -m …)
    try:
        handler: Handler = args.handler
        return handler(args)
    except (ConfigError, DataError, ValueError) as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
