"""Command line: `python -m ninja_core <command> ...` (check, and the commands other modules add)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .config import DTYPES, LIMITS, VARIANTS, Config, ConfigError
from .data import DataError

Handler = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument ends with exit 2 and a single line that says what was wrong."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def jsonable(x: Any) -> Any:
    """Replace NaN / ±Inf by None so the output is valid JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    return x


def print_json(obj: Any) -> None:
    print(json.dumps(jsonable(obj), allow_nan=False))


def bounded_int(field: str, limits: dict[str, tuple[int, int]] = LIMITS) -> Callable[[str], int]:
    """An argparse type: an integer within `limits[field]` (the engine's Config ranges by default)."""
    lo, hi = limits[field]

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, got {value}")
        return value

    return parse


def add_config_arguments(p: argparse.ArgumentParser, defaults: Config | None = None) -> None:
    d = defaults or Config()
    p.add_argument("--seed", type=bounded_int("seed"), default=d.seed, help=f"generator seed (default {d.seed})")
    p.add_argument("--batch-size", type=bounded_int("batch_size"), default=d.batch_size,
                   help=f"minibatch size n, {LIMITS['batch_size'][0]}..{LIMITS['batch_size'][1]} (default {d.batch_size})")
    p.add_argument("--n-embd", type=bounded_int("n_embd"), default=d.n_embd, help=f"embedding size (default {d.n_embd})")
    p.add_argument("--n-hidden", type=bounded_int("n_hidden"), default=d.n_hidden, help=f"hidden units (default {d.n_hidden})")
    p.add_argument("--block-size", type=bounded_int("block_size"), default=d.block_size,
                   help=f"context length (default {d.block_size})")
    p.add_argument("--dtype", choices=DTYPES, default=d.dtype, help=f"(default {d.dtype})")
    p.add_argument("--device", choices=("cpu", "cuda"), default=d.device, help="(default cpu)")
    p.add_argument("--data", metavar="PATH", default=None, help="word list, one word per line (default: bundled names)")


def config_from(args: argparse.Namespace, **extra: Any) -> Config:
    return Config(seed=args.seed, batch_size=args.batch_size, n_embd=args.n_embd, n_hidden=args.n_hidden,
                  block_size=args.block_size, dtype=args.dtype, device=args.device, **extra)


def cmd_check(args: argparse.Namespace) -> int:
    from .gradcheck import finite_differences
    from .run import check

    run = check(config_from(args, variant=args.variant), args.data)
    fd = finite_differences(run) if not args.no_gradcheck else {}
    if args.json:
        print_json({
            "loss": run.loss,
            "config": run.config.to_dict(),
            "counts": run.counts,
            "nodes": [node.summary() for node in run.nodes.values()],
            "gradcheck": {name: r.to_dict() for name, r in fd.items()},
        })
        return 0
    print(run.table())
    if fd:
        print("\nfinite differences (float64, 4th-order central, sampled entries) vs autograd and manual:")
        for name, r in fd.items():
            print(f"{name:15s} | relerr autograd: {r.relerr:.1e} | relerr manual: {r.relerr_manual:.1e}"
                  f" | {len(r.entries)} entries")
    return 0


Register = Callable[[Any], None]  # adds commands to the subparsers action it is given


def build_parser(prog: str = "python -m ninja_core", extra: Register | None = None) -> argparse.ArgumentParser:
    """The command line; `extra` lets a front end add its own commands (the installed `backprop-ninja`
    adds `serve` from app.cli) without this package knowing them."""
    parser = OneLineParser(prog=prog,
                           description="Backprop Ninja: the manual backward pass of the lecture's MLP, checked.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("check", help="forward + manual backward + autograd: the cmp table of all 26 gradients")
    add_config_arguments(p)
    p.add_argument("--variant", choices=VARIANTS, default="chain",
                   help="chain: every intermediate; fused: cross-entropy and batchnorm in one step")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--no-gradcheck", action="store_true", help="skip the finite-difference check of the parameters")
    p.set_defaults(handler=cmd_check)

    # Commands that live beside the code they drive add themselves here: `register(sub)`.
    from . import train_cli  # imported here: train_cli imports this module's helpers
    train_cli.register(sub)
    from .dojo import cli as dojo_cli  # imported here: it imports this module's helpers
    dojo_cli.register(sub)
    if extra is not None:
        extra(sub)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m ninja_core", extra: Register | None = None) -> int:
    parser = build_parser(prog, extra)
    args = parser.parse_args(argv)
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
