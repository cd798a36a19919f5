"""The page's plotly.js: plotly's cartesian partial bundle, built from the plotly.js npm package and
vendored under static/vendor/ with plotly.js's licence beside it.

    python scripts/refresh_plotly.py            # npm ci (scripts/plotly/), esbuild, check the sha256, write
    python scripts/refresh_plotly.py --check    # offline: the committed files match the pins

What it is: exactly the trace set of plotly's published cartesian bundle (lib/index-cartesian.js:
bar, box, contour, heatmap, histogram, histogram2d, histogram2dcontour, image, pie, scatter,
scatterternary, violin, and calendars) — heatmap for ninja_core's node figures, scatter for the Train
view's charts, the rest as headroom — at the version the Python package `plotly` embeds (so the
figure specs ninja_core writes meet the plotly.js they were written for).

Why build it rather than copy the published `plotly.js-cartesian-dist-min`: measured in headless
Chromium here (scripts/bench_page.py and a page that only loads the script), the published file took
~2.5x longer to evaluate than the same modules bundled by esbuild as a plain IIFE — its UMD wrapper
hands the whole library to a function V8 compiles lazily on the main thread, while an IIFE is
compiled in the background as it streams in. The full 4.8 MB plotly.min.js took ~0.7 s.

The build is reproducible: scripts/plotly/package-lock.json pins every package with its integrity
hash (`npm ci` checks them), esbuild's output is deterministic, and this script checks the result
against SHA256 below. To move to another plotly.js version: change it in scripts/plotly/package.json
and VERSION, `npm install --package-lock-only --omit-lockfile-registry-resolved` there, run this
script; it stops with the new sha256 (nothing written), review and pin it, run again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "static" / "vendor"
BUILD_SPEC = ROOT / "scripts" / "plotly"  # package.json + package-lock.json
VERSION = "4.1.1"
BUNDLE = VENDOR / "plotly-cartesian.min.js"
LICENCE = VENDOR / "plotly.js.LICENSE.txt"
SHA256 = {
    BUNDLE.name: "9571237e1a36f6ffbbcb79e16c6c1e7163c654e5c22729cdc6b1ebce36b15d51",
    LICENCE.name: "8c45d9eaf50c2f72dd9c7ab9ef440788ba58a3538484b5c51c1f17d5128752e7",
}
BANNER = (f"/**\n* plotly.js (cartesian - minified) v{VERSION}\n* Copyright 2012-2026, Plotly, Inc.\n"
          "* All rights reserved.\n* Licensed under the MIT license\n"
          "* Built by scripts/refresh_plotly.py from the plotly.js npm package (lib/index-cartesian.js) with esbuild\n*/")
# plotly.js's own esbuild settings (esbuild-config.js in its package), less the plugins the cartesian
# traces never reach (GLSL shaders, inline CSS, process.env), plus minification as in its dist files.
ESBUILD_ARGS = ["node_modules/plotly.js/lib/index-cartesian.js", "--bundle", "--minify", "--format=iife",
                "--global-name=Plotly", "--target=es2016", "--define:global=window", "--define:define.amd=false",
                "--alias:stream=stream-browserify", "--legal-comments=eof", "--log-level=warning"]


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


def run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"refresh_plotly: {' '.join(cmd[:3])} … failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def build(staged: Path) -> None:
    """npm ci the pinned packages into a temporary folder and bundle lib/index-cartesian.js there."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("refresh_plotly: npm is needed to build the bundle (apt-get install npm)")
    work = staged / "build"
    work.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(BUILD_SPEC / name, work / name)
    # --ignore-scripts: no package's install script runs; esbuild's binary comes as a plain optional package
    run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], work)
    installed = json.loads((work / "node_modules" / "plotly.js" / "package.json").read_text())["version"]
    if installed != VERSION:
        raise SystemExit(f"refresh_plotly: scripts/plotly/ installs plotly.js {installed}, VERSION says {VERSION}")
    run([str(work / "node_modules" / ".bin" / "esbuild"), *ESBUILD_ARGS, f"--banner:js={BANNER}",
         f"--outfile={staged / BUNDLE.name}"], work)
    shutil.copyfile(work / "node_modules" / "plotly.js" / "LICENSE", staged / LICENCE.name)


def refresh() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        build(staged)
        bad = problems(staged)
        if bad:
            print("refresh_plotly: the built files do not match the pins (nothing written):", file=sys.stderr)
            for line in bad:
                print(f"  {line}", file=sys.stderr)
            return 1
        VENDOR.mkdir(parents=True, exist_ok=True)
        for name in SHA256:
            shutil.copyfile(staged / name, VENDOR / name)
    print(f"refresh_plotly: plotly.js {VERSION} (cartesian) written to {VENDOR.relative_to(ROOT)}/"
          f" ({BUNDLE.stat().st_size:,} bytes)")
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
            print(f"refresh_plotly: {VENDOR.relative_to(ROOT)}/ holds plotly.js {VERSION} (cartesian) as pinned")
        return 1 if bad else 0
    return refresh()


if __name__ == "__main__":
    sys.exit(main())
