"""Benchmarks, section by section (`make bench` runs them all).

    python scripts/bench.py              # every section
    python scripts/bench.py training     # only the named sections

A section is a function that measures something and prints its figures. To add one, write the
function and append it to SECTIONS. Each runs its measurement in a fresh process where that
matters (thread settings, allocator state), so sections do not disturb each other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_json(*args: str) -> dict[str, object]:
    """Run `python <args>` in the repository and parse its one JSON object (stdout)."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def training() -> None:
    """SGD steps/s at the lecture's batch 32, n_hidden 200: autograd vs the manual backward."""
    doc = run_json("-m", "ninja_core", "bench", "--json")
    print(f"  autograd SGD (loss.backward())   {doc['autograd_steps_per_s']:9.0f} steps/s")
    print(f"  manual SGD (FastStep)            {doc['manual_steps_per_s']:9.0f} steps/s")
    print(f"  ratio manual / autograd          {doc['ratio']:9.2f}x   (target >= 2.0)")
    print(f"  readable manual step (reference) {doc['reference_steps_per_s']:9.0f} steps/s")
    manual = float(doc["manual_steps_per_s"])  # type: ignore[arg-type]
    print(f"  => 200 000 steps: ~{200_000 / manual:.0f} s of SGD (target: the whole run <= 75 s)")


def engine() -> None:
    """One full check (forward + autograd + manual + every comparison), in-process, median."""
    doc = run_json("scripts/bench_engine.py", "--json")
    medians: dict[str, float] = doc["median_ms"]  # type: ignore[assignment]
    print(f"  torch threads {doc['torch_threads']}")
    for label, ms in medians.items():
        print(f"  {label:50s} {ms:8.2f} ms")
    print("  (targets: default <= 3 ms, batch 4096 x n_hidden 1024 <= 500 ms)")


def http() -> None:
    """The real uvicorn on loopback: latency, throughput under 8 clients, the large run."""
    doc = run_json("scripts/bench_http.py", "--json")
    for key, value in doc.items():
        print(f"  {key:32s} {value}")
    print("  (targets: POST p50 <= 5 ms; 8 clients >= 300 req/s, p99 <= 100 ms, 0 errors; node p50 <= 5 ms;")
    print("   batch 4096 x 1024 run <= 1.5 s, node payload <= 1 MB)")


SECTIONS: list[tuple[str, Callable[[], None]]] = [
    ("engine", engine),
    ("training", training),
    ("http", http),
]


def main(argv: list[str]) -> int:
    known = dict(SECTIONS)
    unknown = [name for name in argv if name not in known]
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    for name, section in SECTIONS:
        if argv and name not in argv:
            continue
        print(f"== {name}")
        section()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
