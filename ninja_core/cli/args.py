"""What every command shares: the one-line-error parser, JSON output, and the config arguments."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any, NoReturn

from ..config import DTYPES, LIMITS, Config
from ..nets import NETS


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


def size_int(text: str) -> int:
    """An argparse type for a network size: a positive integer; its range is the network's (Config checks it)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _size_help(name: str, what: str) -> str:
    ranges = []
    for net in NETS.values():
        s = net.size(name)
        if s is not None:
            ranges.append(f"{net.name} {s.default}" + (f" ({s.lo}..{s.hi})" if s.lo != s.hi else " (fixed)"))
    return f"{what}; default and range per network: " + ", ".join(ranges)


SIZE_ARGUMENTS: tuple[tuple[str, str], ...] = (
    ("batch_size", "minibatch size n"),
    ("n_embd", "embedding size"),
    ("n_hidden", "hidden units"),
    ("block_size", "context length"),
    ("n_head", "attention heads"),
    ("n_layer", "transformer blocks"),
)


def add_net_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--net", choices=tuple(NETS), default="mlp",
                   help="the network: " + ", ".join(f"{n} = {net.title}" for n, net in NETS.items()) + " (default mlp)")


def add_size_arguments(p: argparse.ArgumentParser) -> None:
    """--batch-size, --n-embd, ... for the sizes some network has; left out, each is the network's default."""
    for name, what in SIZE_ARGUMENTS:
        if any(net.size(name) is not None for net in NETS.values()):
            p.add_argument("--" + name.replace("_", "-"), type=size_int, default=0, metavar="N", help=_size_help(name, what))


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    add_net_argument(p)
    d = Config()
    p.add_argument("--seed", type=bounded_int("seed"), default=d.seed, help=f"generator seed (default {d.seed})")
    add_size_arguments(p)
    p.add_argument("--dtype", choices=DTYPES, default=d.dtype, help=f"(default {d.dtype})")
    p.add_argument("--device", choices=("cpu", "cuda"), default=d.device, help="(default cpu)")
    p.add_argument("--data", metavar="PATH", default=None, help="word list, one word per line (default: bundled names)")


def config_from(args: argparse.Namespace, **extra: Any) -> Config:
    """The Config the arguments describe. Raises ConfigError (exit 2) for a size the network refuses."""
    sizes = {name: getattr(args, name) for name, _ in SIZE_ARGUMENTS if getattr(args, name, 0)}
    return Config(net=args.net, seed=args.seed, dtype=args.dtype, device=args.device, **sizes, **extra)
