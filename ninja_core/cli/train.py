"""`python -m ninja_core train | sample | bench | reproduce`: training with the manual backward, from the terminal.

Every network (`--net`) trains with its recipe unless told otherwise: the sizes and the schedule
left out are the network's (`TrainConfig`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import DTYPES
from ..nets import NETS
from ..train.config import BACKWARDS, OPTIMIZERS, TRAIN_LIMITS, TrainConfig
from .args import SIZE_ARGUMENTS, add_net_argument, add_size_arguments, bounded_int, print_json

CLI_LIMITS = {"bench_steps": (1, 1_000_000), "rounds": (1, 100), "n": (1, 1000)}


def train_int(field: str, limits: dict[str, tuple[int, int]] = TRAIN_LIMITS) -> Callable[[str], int]:
    """bounded_int for the training fields."""
    return bounded_int(field, limits)


def _recipes() -> str:
    return "; ".join(f"{name}: {net.recipe.steps} steps, batch {net.recipe.batch_size}, {net.recipe.optimizer} lr "
                     f"{net.recipe.lr:g} then {net.recipe.lr_decayed:g} from step "
                     f"{round(net.recipe.lr_decay_at * net.recipe.steps)}"
                     + "".join(f", {k} {v}" for k, v in net.recipe.sizes)
                     for name, net in NETS.items())


def _add_network_arguments(p: argparse.ArgumentParser) -> None:
    add_net_argument(p)
    add_size_arguments(p)
    d = TrainConfig()
    p.add_argument("--seed", type=bounded_int("seed"), default=d.seed, help=f"generator seed (default {d.seed})")
    p.add_argument("--data", metavar="PATH", default=None, help="word list, one word per line (default: bundled names)")
    p.add_argument("--threads", type=train_int("threads"), default=d.threads,
                   help=f"torch threads, 0 = torch's default (default {d.threads}: one beat two for these tiny tensors)")


def config_from(args: argparse.Namespace, **fields: Any) -> TrainConfig:
    """The TrainConfig the arguments describe (sizes left out: the network's). ConfigError: exit 2."""
    sizes = {name: getattr(args, name) for name, _ in SIZE_ARGUMENTS if getattr(args, name, 0)}
    return TrainConfig(net=args.net, seed=args.seed, data=args.data, threads=args.threads, **sizes, **fields)


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


def cmd_train(args: argparse.Namespace) -> int:
    from ..train import ProgressEvent, TrainEvent, train

    cfg = config_from(args, steps=args.steps, audit_every=args.audit_every, dtype=args.dtype, backward=args.backward,
                      lr=args.lr, optimizer=args.optimizer)
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
    print(result.summary())
    if args.out:
        print(f"saved to {args.out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from ..train.model import load_model

    model = load_model(args.model)
    names = model.sample(args.n, args.seed)
    if args.json:
        print_json({"net": model.net, "samples": names})
    else:
        print("\n".join(names))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ..train.bench import bench

    cfg = config_from(args, dtype=args.dtype)
    result = bench(cfg, steps=args.steps, rounds=args.rounds)
    if args.json:
        doc = result.to_dict()
        print_json({k: doc.pop(k) for k in ("autograd_steps_per_s", "manual_steps_per_s", "ratio")} | doc)
        return 0
    sizes = ", ".join(f"{k} {v}" for k, v in result.sizes.items())
    print(f"{result.net}: {sizes}, {result.optimizer}, {result.threads} torch thread(s), "
          f"best of {result.rounds} rounds of {result.steps} steps")
    print("steps per second of the thread's CPU time (wall time beside it):")
    print(f"autograd (loss.backward())          {result.autograd_steps_per_s:9.0f}   ({result.wall_autograd_steps_per_s:.0f})")
    print(f"manual backward (the training step) {result.manual_steps_per_s:9.0f}   ({result.wall_manual_steps_per_s:.0f})   "
          f"{result.ratio:.2f}x autograd ({result.wall_ratio:.2f}x)")
    print(f"tape's fused manual backward        {result.reference_steps_per_s:9.0f}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from ..train.bench import reproduce

    cfg = config_from(args, steps=args.steps, dtype=args.dtype, lr=args.lr, progress_every=args.every, stats_every=0)
    result = reproduce(cfg, every=args.every)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(f"{result.net}: {cfg.steps} steps from seed {cfg.seed}, the same minibatches and {cfg.optimizer} for both; "
          f"mean minibatch loss since the previous row")
    print(f"{'step':>8}  {'manual backward':>16}  {'autograd':>16}  {'relative difference':>20}")
    for step, m, a, r in zip(result.steps, result.manual, result.autograd, result.rel_diff, strict=True):
        print(f"{step:8d}  {m:16.8f}  {a:16.8f}  {r:20.2e}")
    print(f"largest relative difference {result.max_rel_diff:.2e} ({result.seconds:.1f} s)")
    return 0


def register(sub: Any) -> None:
    """Add train, sample and bench to the main parser's subcommands (`sub` from add_subparsers)."""
    p = sub.add_parser("train", help="train a network with its manual backward; losses, samples, optional audit",
                       description="Trains with the network's recipe unless told otherwise (" + _recipes() + ").")
    p.add_argument("--steps", type=train_int("steps", {**TRAIN_LIMITS, "steps": (1, TRAIN_LIMITS["steps"][1])}),
                   default=None, help="optimizer steps (default: the network's recipe)")
    _add_network_arguments(p)
    p.add_argument("--lr", type=float, default=None, help="learning rate before the decay (default: the recipe's)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="(default: the recipe's: " + ", ".join(f"{n} {net.recipe.optimizer}" for n, net in NETS.items()) + ")")
    p.add_argument("--audit-every", metavar="K", type=train_int("audit_every"), default=0,
                   help="every K steps, compare the manual gradients with autograd's on the same batch (default 0: off)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="(default float32)")
    p.add_argument("--backward", choices=BACKWARDS, default="fast",
                   help="fast: the network's preallocated step; reference: the tape's fused manual backward (default fast)")
    p.add_argument("--out", metavar="FILE", default=None, help="save the trained model to FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object (no progress bar)")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("sample", help="names from a saved model (any network)")
    p.add_argument("--model", metavar="FILE", required=True, help="a model saved by `train --out`")
    p.add_argument("--n", type=train_int("n", CLI_LIMITS), default=20, help="how many names (default 20)")
    p.add_argument("--seed", type=bounded_int("seed"), default=None,
                   help="sampling seed (default: the model's training seed + 10, as in the lecture)")
    p.add_argument("--json", action="store_true", help='print {"net": ..., "samples": [...]}')
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("bench", help="steps/s: autograd training vs the manual-backward training, same model, data, "
                                     "seed, optimizer and thread, in one run")
    p.add_argument("--steps", type=train_int("bench_steps", CLI_LIMITS), default=500,
                   help="timed steps per contender and round (default 500)")
    p.add_argument("--rounds", type=train_int("rounds", CLI_LIMITS), default=10,
                   help="interleaved rounds; the best of each contender counts (default 10)")
    _add_network_arguments(p)
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="(default float32)")
    p.add_argument("--json", action="store_true",
                   help='print {"autograd_steps_per_s", "manual_steps_per_s", "ratio", ...} (by the thread\'s CPU time; '
                        'wall_* by wall time)')
    p.set_defaults(handler=cmd_bench)

    p = sub.add_parser("reproduce", help="train twice in lockstep from the same seed, with the manual backward and "
                                         "with autograd; compare their losses at every logged step",
                       description="Both runs start from the same parameters and take the same minibatch at every step "
                                   "with the same optimizer and schedule (the network's recipe unless told otherwise): "
                                   "where the hand-written gradients are right, the losses differ only by rounding.")
    p.add_argument("--steps", type=train_int("steps"), default=None, help="optimizer steps (default: the network's recipe)")
    p.add_argument("--every", metavar="K", type=train_int("progress_every", {"progress_every": (1, 10_000_000)}),
                   default=1000, help="log both losses every K steps (default 1000)")
    _add_network_arguments(p)
    p.add_argument("--lr", type=float, default=None, help="learning rate before the decay (default: the recipe's)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="(default float32)")
    p.add_argument("--json", action="store_true",
                   help='print {"steps": [...], "manual": [...], "autograd": [...], "rel_diff": [...], "max_rel_diff", ...}')
    p.set_defaults(handler=cmd_reproduce)
