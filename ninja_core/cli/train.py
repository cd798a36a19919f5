"""`python -m ninja_core train | sample | bench`: training with the manual backward, from the terminal."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import DTYPES
from ..train_config import BACKWARDS, TRAIN_LIMITS, TrainConfig
from .args import bounded_int, print_json, size_int

DEFAULTS = TrainConfig()
CLI_LIMITS = {"bench_steps": (1, 1_000_000), "rounds": (1, 100), "n": (1, 1000)}


def train_int(field: str, limits: dict[str, tuple[int, int]] = TRAIN_LIMITS) -> Callable[[str], int]:
    """bounded_int for the training fields."""
    return bounded_int(field, limits)


def _add_network_arguments(p: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    p.add_argument("--n-hidden", type=size_int, default=d.n_hidden, help=f"hidden units (default {d.n_hidden})")
    p.add_argument("--n-embd", type=size_int, default=d.n_embd, help=f"embedding size (default {d.n_embd})")
    p.add_argument("--block-size", type=size_int, default=d.block_size,
                   help=f"context length (default {d.block_size})")
    p.add_argument("--batch-size", type=size_int, default=d.batch_size,
                   help=f"minibatch size (default {d.batch_size})")
    p.add_argument("--seed", type=bounded_int("seed"), default=d.seed, help=f"generator seed (default {d.seed})")
    p.add_argument("--data", metavar="PATH", default=None, help="word list, one word per line (default: bundled names)")
    p.add_argument("--threads", type=train_int("threads"), default=d.threads,
                   help=f"torch threads, 0 = torch's default (default {d.threads}: one beat two for these tiny tensors)")


def _check_writable(out: str) -> None:
    """Fail before a long run, not after it, when the model could not be written."""
    p = Path(out)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise ValueError(f"--out {out}: is a directory")
    if not parent.is_dir():
        raise ValueError(f"--out {out}: no such directory {parent}")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"--out {out}: directory {parent} is not writable")


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4f}"


def cmd_train(args: argparse.Namespace) -> int:
    from ..train import ProgressEvent, TrainEvent, train

    cfg = TrainConfig(seed=args.seed, n_embd=args.n_embd, n_hidden=args.n_hidden, block_size=args.block_size,
                      batch_size=args.batch_size, steps=args.steps, audit_every=args.audit_every, dtype=args.dtype,
                      data=args.data, backward=args.backward, threads=args.threads)
    if args.out:
        _check_writable(args.out)
    bar: Any = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, unit="step", file=sys.stderr, dynamic_ncols=True, leave=False)

    def on_event(event: TrainEvent) -> None:
        if bar is not None and isinstance(event, ProgressEvent):
            bar.update(event.step - bar.n)
            bar.set_postfix(loss=f"{event.loss:.4f}", lr=f"{event.lr:g}", refresh=False)

    try:
        result = train(cfg, on_event=on_event)
    finally:
        if bar is not None:
            bar.close()
    if args.out:
        try:
            result.model.save(args.out)
        except OSError as exc:
            raise ValueError(f"--out {args.out}: cannot write the model: {exc.strerror or exc}") from None
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"train {_fmt(result.train_loss)} | val {_fmt(result.val_loss)} | test {_fmt(result.test_loss)}"
          f"   ({result.steps} steps in {result.seconds:.1f} s, {result.steps_per_s:.0f} steps/s)")
    if result.audit:
        worst = max(result.audit, key=lambda a: max(a.max_rel_diff.values()))
        name = max(worst.max_rel_diff, key=lambda k: worst.max_rel_diff[k])
        print(f"audit: {len(result.audit)} checks against autograd; worst max relative difference "
              f"{worst.max_rel_diff[name]:.2e} ({name}, step {worst.step})")
    print("samples: " + " ".join(result.samples))
    if args.out:
        print(f"saved to {args.out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from ..train_model import load_model

    model = load_model(args.model)
    names = model.sample(args.n, args.seed)
    if args.json:
        print_json({"samples": names})
    else:
        print("\n".join(names))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ..train_bench import bench

    cfg = TrainConfig(seed=args.seed, n_embd=args.n_embd, n_hidden=args.n_hidden, block_size=args.block_size,
                      batch_size=args.batch_size, data=args.data, threads=args.threads)
    result = bench(cfg, steps=args.steps, rounds=args.rounds)
    if args.json:
        print_json({"autograd_steps_per_s": result.autograd_steps_per_s,
                    "manual_steps_per_s": result.manual_steps_per_s, "ratio": result.ratio,
                    **{k: v for k, v in result.to_dict().items()
                       if k not in ("autograd_steps_per_s", "manual_steps_per_s", "ratio")}})
        return 0
    print(f"batch {result.batch_size}, n_hidden {result.n_hidden}, {result.threads} torch thread(s), "
          f"best of {result.rounds} rounds of {result.steps} steps")
    print(f"autograd SGD (loss.backward())   {result.autograd_steps_per_s:9.0f} steps/s")
    print(f"manual SGD (FastStep)            {result.manual_steps_per_s:9.0f} steps/s   {result.ratio:.2f}x autograd")
    print(f"readable manual step (reference) {result.reference_steps_per_s:9.0f} steps/s")
    return 0


def register(sub: Any) -> None:
    """Add train, sample and bench to the main parser's subcommands (`sub` from add_subparsers)."""
    p = sub.add_parser("train", help="train the MLP with the manual backward; losses, samples, optional audit")
    p.add_argument("--steps", type=train_int("steps"), default=DEFAULTS.steps,
                   help=f"SGD steps (default {DEFAULTS.steps}; lr {DEFAULTS.lr}, then {DEFAULTS.lr_decayed} "
                        "from half-way)")
    _add_network_arguments(p)
    p.add_argument("--audit-every", metavar="K", type=train_int("audit_every"), default=0,
                   help="every K steps, compare the manual gradients with autograd's on the same batch (default 0: off)")
    p.add_argument("--dtype", choices=DTYPES, default=DEFAULTS.dtype, help=f"(default {DEFAULTS.dtype})")
    p.add_argument("--backward", choices=BACKWARDS, default=DEFAULTS.backward,
                   help="fast: the preallocated in-place step; reference: the readable step (default fast)")
    p.add_argument("--out", metavar="FILE", default=None, help="save the trained model to FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("sample", help="names from a saved model")
    p.add_argument("--model", metavar="FILE", required=True, help="a model saved by `train --out`")
    p.add_argument("--n", type=train_int("n", CLI_LIMITS), default=20, help="how many names (default 20)")
    p.add_argument("--seed", type=bounded_int("seed"), default=None,
                   help="sampling seed (default: the model's training seed + 10, as in the lecture)")
    p.add_argument("--json", action="store_true", help='print {"samples": [...]}')
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("bench", help="steps/s: autograd SGD vs the manual-backward SGD, same model, data and seed")
    p.add_argument("--steps", type=train_int("bench_steps", CLI_LIMITS), default=2000,
                   help="timed steps per contender and round (default 2000)")
    p.add_argument("--rounds", type=train_int("rounds", CLI_LIMITS), default=3,
                   help="interleaved rounds; the best of each contender counts (default 3)")
    _add_network_arguments(p)
    p.add_argument("--json", action="store_true",
                   help='print {"autograd_steps_per_s", "manual_steps_per_s", "ratio", ...}')
    p.set_defaults(handler=cmd_bench)
