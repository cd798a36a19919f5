"""Engine benchmark: one full check (forward + autograd + manual backward + every comparison,
end to end and local), in-process, median of repeated runs, for each network.

    python scripts/bench_engine.py [--json] [--threads N] [--only gpt]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from ninja_core.config import Config
from ninja_core.data import load_dataset
from ninja_core.nets import get_net
from ninja_core.perf import tune_allocator
from ninja_core.run import check

CASES = [
    ("default (batch 32, n_hidden 64), chain", Config(), 200),
    ("default (batch 32, n_hidden 64), fused", Config(variant="fused"), 200),
    ("batch 4096, n_hidden 1024, chain", Config(batch_size=4096, n_hidden=1024), 9),
    ("batch 4096, n_hidden 1024, fused", Config(batch_size=4096, n_hidden=1024, variant="fused"), 9),
    ("wavenet default (batch 32, n_hidden 128), chain", Config(net="wavenet"), 100),
    ("wavenet default, fused", Config(net="wavenet", variant="fused"), 100),
    ("gpt default (batch 32, block 8, n_embd 32, 4 heads, 2 layers), chain", Config(net="gpt"), 100),
    ("gpt default, fused", Config(net="gpt", variant="fused"), 100),
]


def median_ms(cfg: Config, repeats: int) -> float:
    data = load_dataset(block_size=get_net(cfg.net).context_length(cfg))
    check(cfg, data)  # warm-up: first-touch allocations, lazy init
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        check(cfg, data)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, as the server: a second thread only waits here; 0: torch's own)")
    parser.add_argument("--only", default="", help="only the cases whose label contains this text (e.g. gpt)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_allocator()  # as the server and CLI do
    results = {label: round(median_ms(cfg, repeats), 2) for label, cfg, repeats in CASES if args.only in label}
    if args.json:
        print(json.dumps({"torch_threads": torch.get_num_threads(), "median_ms": results}))
        return
    print(f"engine check, in-process, median ms ({torch.get_num_threads()} torch threads)")
    for label, ms in results.items():
        print(f"  {label:70s} {ms:8.2f} ms")


if __name__ == "__main__":
    main()
