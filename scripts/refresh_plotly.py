"""The page's plotly.js: plotly's cartesian partial bundle, vendored under static/vendor/.

    python scripts/refresh_plotly.py            # fetch the pinned version from npm, check its sha256, write it
    python scripts/refresh_plotly.py --check    # offline: the committed files match the pins

Why the partial bundle: the full plotly.min.js (4.8 MB) took ~0.7 s of main-thread parsing before the
first heatmap could be drawn; the cartesian bundle (1.5 MB) has every trace type the page uses
(heatmap for the node figures in ninja_core/figures.py, scatter for the Train view's charts in
static/js/charts.js, plus bar, box, contour, histogram, image, pie, violin). Its version is the one
the Python package `plotly` (requirements.txt) embeds, so the page draws the figure specs that
ninja_core builds with the plotly.js they were written for.

To move to another version: set VERSION, run the script once without --check; it stops with the new
files' sha256 (npm checks the tarball against the registry's integrity hash, this script checks the
file against a pin reviewed here), put those into the pins and run it again.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "static" / "vendor"
PACKAGE = "plotly.js-cartesian-dist-min"
VERSION = "4.1.1"
# what the npm tarball holds → where it goes; and the sha256 each file must have
FILES = {
    "package/plotly-cartesian.min.js": "plotly-cartesian.min.js",
    "package/LICENSE": "plotly.js.LICENSE.txt",
}
SHA256 = {
    "plotly-cartesian.min.js": "79542150855a52c567260e3137095dbe2b744e6d702a5cabe67da246942fba7a",
    "plotly.js.LICENSE.txt": "8c45d9eaf50c2f72dd9c7ab9ef440788ba58a3538484b5c51c1f17d5128752e7",
}
BUNDLE = VENDOR / "plotly-cartesian.min.js"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def header_version(path: Path) -> str | None:
    """The version in the bundle's banner comment: `* plotly.js (cartesian - minified) v4.1.1`."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[:5]:
        if "plotly.js" in line and " v" in line:
            return line.rsplit(" v", 1)[1].strip()
    return None


def problems(folder: Path) -> list[str]:
    """What is wrong with the vendored files in `folder` (empty when they match the pins)."""
    found = []
    for name, digest in SHA256.items():
        path = folder / name
        if not path.is_file():
            found.append(f"{path} is missing")
        elif (actual := sha256(path)) != digest:
            found.append(f"{path}: sha256 {actual}, pinned {digest}")
    bundle = folder / BUNDLE.name
    if bundle.is_file() and header_version(bundle) != VERSION:
        found.append(f"{bundle} says version {header_version(bundle)!r}, pinned {VERSION}")
    return found


def fetch(dest: Path) -> Path:
    """`npm pack` the pinned version into `dest` (npm verifies the registry's integrity hash)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("refresh_plotly: npm is needed to fetch the bundle (apt-get install npm)")
    proc = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", str(dest)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"refresh_plotly: npm pack {PACKAGE}@{VERSION} failed:\n{proc.stderr.strip()}")
    return dest / proc.stdout.strip().splitlines()[-1]


def refresh() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tarball = fetch(Path(tmp))
        staged = Path(tmp) / "staged"
        staged.mkdir()
        with tarfile.open(tarball) as tar:
            for member, name in FILES.items():
                source = tar.extractfile(member)
                if source is None:
                    raise SystemExit(f"refresh_plotly: {tarball.name} has no {member}")
                (staged / name).write_bytes(source.read())
        bad = problems(staged)
        if bad:
            print("refresh_plotly: the fetched files do not match the pins (nothing written):", file=sys.stderr)
            for line in bad:
                print(f"  {line}", file=sys.stderr)
            return 1
        VENDOR.mkdir(parents=True, exist_ok=True)
        for name in SHA256:
            shutil.copyfile(staged / name, VENDOR / name)
    print(f"refresh_plotly: {PACKAGE}@{VERSION} written to {VENDOR.relative_to(ROOT)}/ ({BUNDLE.stat().st_size:,} bytes)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the committed files against the pins (offline)")
    args = parser.parse_args(argv)
    if args.check:
        bad = problems(VENDOR)
        for line in bad:
            print(f"refresh_plotly: {line}", file=sys.stderr)
        if not bad:
            print(f"refresh_plotly: {VENDOR.relative_to(ROOT)}/ holds {PACKAGE}@{VERSION} as pinned")
        return 1 if bad else 0
    return refresh()


if __name__ == "__main__":
    sys.exit(main())
