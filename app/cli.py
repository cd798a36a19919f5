"""`backprop-ninja`, the installed command: `serve` runs the web app, the same server as `python -m app`;
every other command (check, dojo, grade, train, sample, bench) is ninja_core's own command line.

The dispatcher lives here, not in ninja_core, because serving needs the web layer and ninja_core never
imports app: it only lets this module add `serve` to its list of commands.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ninja_core import cli as core_cli

PROG = "backprop-ninja"
SERVE_HELP = "serve the page and the JSON API (the same server as `python -m app`; `serve --help` for options)"


def _list_serve(sub: Any) -> None:
    """Name `serve` in `backprop-ninja --help`. `main` hands `serve …` to the server before argparse
    sees it, so the server's own parser (app/server.py) is the one place its options are defined."""
    sub.add_parser("serve", help=SERVE_HELP, add_help=False).add_argument("options", nargs=argparse.REMAINDER)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        from . import server  # imported only to serve: the other commands need no web stack

        return server.main(args[1:], prog=f"{PROG} serve")
    return core_cli.main(args, prog=PROG, extra=_list_serve)


if __name__ == "__main__":
    sys.exit(main())
