"""Benchmarks, section by section (`make bench` runs them all).

    python scripts/bench.py              # every section
    python scripts/bench.py training     # only the named sections (training: steps/s, recipes: full runs)

A section is a function that measures something and prints its figures. To add one, write the
function and append it to SECTIONS. Each runs its measurement in a fresh process where that
matters (thread settings, allocator state), so sections do not disturb each other.
"""

from __future__ import annotations

import json
import os
import statistics
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


def _load() -> str:
    """The 1-minute load average, printed beside each figure: the machine is shared, and a wall time
    means little without it (the CPU-time figures are what a quiet machine's wall time comes close to)."""
    return f"{os.getloadavg()[0]:.2f}"


def _spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """min / median / max of repeated measurements (this machine is shared: one figure is not enough)."""
    v = sorted(values)
    return f"{fmt.format(v[0])} / {fmt.format(statistics.median(v))} / {fmt.format(v[-1])}"


def training() -> None:
    """Training steps/s, one thread, autograd vs the manual backward, in one process per run (best of
    10 interleaved rounds of 500 steps each, by the thread's CPU time; wall time beside), three runs
    per network: min / median / max."""
    targets = {"mlp": 3.0, "wavenet": 2.0, "gpt": 1.5}
    for net, target in targets.items():
        command = ("-m", "ninja_core", "bench", "--net", net, "--json")
        before = _load()
        runs = [run_json(*command) for _ in range(3)]
        ratio = [float(d["ratio"]) for d in runs]  # type: ignore[arg-type]
        print(f"  {net}: python {' '.join(command)}   (x3; load average {before} before, {_load()} after)")
        for key, label in (("autograd_steps_per_s", "autograd (loss.backward())"),
                           ("manual_steps_per_s", "manual backward (training step)"),
                           ("reference_steps_per_s", "tape's fused manual backward")):
            print(f"    {label:34s} {_spread([float(d[key]) for d in runs])} steps/s (CPU time)")  # type: ignore[arg-type]
        print(f"    {'ratio manual / autograd':34s} {_spread(ratio, '{:.2f}')}x   (target >= {target})")
        wall = [float(d["wall_ratio"]) for d in runs]  # type: ignore[arg-type]
        print(f"    {'the same by wall time':34s} {_spread(wall, '{:.2f}')}x   (biased upwards on a busy machine)")
    lecture = [float(run_json("scripts/bench_lecture_wavenet.py", "--json")["steps_per_s"]) for _ in range(3)]  # type: ignore[arg-type]
    print("  wavenet written the lecture's way with autograd: python scripts/bench_lecture_wavenet.py --json   (x3)")
    print(f"    {'autograd, layer classes, torch.var':34s} {_spread(lecture)} steps/s (CPU time)")


def recipes() -> None:
    """Each network's default recipe end to end (training, evaluation, 20 samples), one thread; for the
    GPT also the same recipe trained with autograd in lockstep (`reproduce`): both losses at every
    logged step."""
    for net, target, val_goal in (("mlp", None, None), ("wavenet", 150, None), ("gpt", 300, 2.05)):
        command = ("-m", "ninja_core", "train", "--net", net, "--json")
        before = _load()
        doc = run_json(*command)
        goal = f"   (target <= {target} s)" if target else ""
        print(f"  {net}: python {' '.join(command)}   (load average {before} before, {_load()} after)")
        wall, cpu, rate = (float(doc[k]) for k in ("seconds", "cpu_seconds", "steps_per_s"))  # type: ignore[arg-type]
        print(f"    {doc['steps']} steps in {wall:.1f} s wall, {cpu:.1f} s of CPU time{goal}, loop {rate:.0f} steps/s")
        val_target = f"   (target val <= {val_goal})" if val_goal else ""
        print(f"    train {float(doc['train_loss']):.4f}  val {float(doc['val_loss']):.4f}  test {float(doc['test_loss']):.4f}"  # type: ignore[arg-type]
              f"{val_target}")
        if net == "gpt":
            print(f"    samples: {' '.join(doc['samples'])}")  # type: ignore[arg-type]
    command = ("-m", "ninja_core", "reproduce", "--net", "gpt", "--json")
    before = _load()
    doc = run_json(*command)
    print(f"  gpt, manual backward vs autograd in lockstep: python {' '.join(command)}   "
          f"(load average {before} before, {_load()} after)")
    rel: list[float] = doc["rel_diff"]  # type: ignore[assignment]
    print(f"    {len(rel)} logged steps up to {doc['steps'][-1]}: largest relative loss difference "  # type: ignore[index]
          f"{max(rel):.2e} (target <= 1e-4), last losses {doc['manual'][-1]:.6f} / {doc['autograd'][-1]:.6f}, "  # type: ignore[index]
          f"{float(doc['seconds']):.0f} s")  # type: ignore[arg-type]


def engine() -> None:
    """One full check (forward + autograd + manual + every comparison), in-process, median."""
    doc = run_json("scripts/bench_engine.py", "--json")
    medians: dict[str, float] = doc["median_ms"]  # type: ignore[assignment]
    print(f"  torch threads {doc['torch_threads']}")
    for label, ms in medians.items():
        print(f"  {label:50s} {ms:8.2f} ms")
    print("  (targets: default <= 3 ms, batch 4096 x n_hidden 1024 <= 500 ms, gpt default <= 10 ms)")


def http() -> None:
    """The real uvicorn on loopback: latency, throughput under 8 clients, the large run."""
    doc = run_json("scripts/bench_http.py", "--json")
    for key, value in doc.items():
        print(f"  {key:32s} {value}")
    print("  (targets: POST p50 <= 5 ms; 8 clients >= 300 req/s, p99 <= 100 ms, 0 errors; node p50 <= 5 ms;")
    print("   batch 4096 x 1024 run <= 1.5 s, node payload <= 1 MB)")


def dojo() -> None:
    """The dojo's one-edit search over the table of wrong formulas (issue 14's bound: <= 300 candidates
    and 300 ms per check): each case's time, then the median and the worst."""
    proc = subprocess.run([sys.executable, "-m", "tests.ninja_core.test_dojo_mistakes"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the dojo measurement failed ({proc.returncode}):\n{proc.stderr}")
    print(proc.stdout.rstrip().splitlines()[-1], f"(load {_load()}; bound 300 ms, 300 candidates)")


SECTIONS: list[tuple[str, Callable[[], None]]] = [
    ("engine", engine),
    ("dojo", dojo),
    ("training", training),
    ("recipes", recipes),
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
