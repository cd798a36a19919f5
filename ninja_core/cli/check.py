"""`python -m ninja_core check`: the cmp table of every gradient, and finite differences."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import VARIANTS
from .args import add_config_arguments, config_from, print_json


def cmd_check(args: argparse.Namespace) -> int:
    import torch

    from ..gradcheck import finite_differences
    from ..run import check

    # One torch thread, as the server: two collapse as soon as another process wants a core (DESIGN.md).
    # Measured here under load: `check --net gpt` with finite differences 4 min 10 s with two, 25 s with one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = check(config_from(args, variant=args.variant), args.data)
        fd = finite_differences(run) if not args.no_gradcheck else {}
    finally:
        torch.set_num_threads(threads)
    if args.json:
        print_json({
            "loss": run.loss,
            "config": run.config.to_dict(),
            "n_params": run.net.n_params(run.config, run.data.vocab.size),
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


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="forward + manual backward + autograd: the cmp table of every gradient")
    add_config_arguments(p)
    p.add_argument("--variant", choices=VARIANTS, default="chain",
                   help="chain: every intermediate; fused: the network's one-step formulas (cross-entropy, batchnorm; "
                        "the gpt's layernorm, softmax and GELU)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--no-gradcheck", action="store_true", help="skip the finite-difference check of the parameters")
    p.set_defaults(handler=cmd_check)
