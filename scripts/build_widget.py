"""The notebook widget's ES module and stylesheet: the page's own drawing modules and plotly.js, bundled.

    python scripts/build_widget.py            # npm ci (scripts/widget/), esbuild, write ninja_core/notebook/widget.{js,css}
    python scripts/build_widget.py --check    # offline: the committed bundle was built from the current inputs

An anywidget's front end is one ES module handed over as a string, so it has no URL: the page's modules
cannot load their siblings with `await import(`./dom.js${v}`)` there. This script copies them to a
temporary folder with each such line made a static import (`const { el } = await import(...)` becomes
`import { el } from "./dom.js"`; nothing else in them changes), adds the page's plotly.js bundle
(static/vendor/plotly-cartesian.min.js, the pinned build of scripts/refresh_plotly.py) as a module
exporting `Plotly`, and bundles scripts/widget/src/widget.js with esbuild into one file. The widget's
stylesheet is the page's app.css nested under `.ninja-widget` (so it styles the widget and nothing else
in the notebook; esbuild lowers the nesting) followed by scripts/widget/src/widget.css.

Reproducible: scripts/widget/package-lock.json pins esbuild with its integrity hash (`npm ci` checks
it) and esbuild's output is deterministic. The bundle's first lines record every input file and one
sha256 over them, which `--check` recomputes without npm: a test fails when a page module the widget
uses changes and the widget was not rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "scripts" / "widget"  # package.json, package-lock.json, src/
OUT = ROOT / "ninja_core" / "notebook"
BUNDLE, STYLES = OUT / "widget.js", OUT / "widget.css"
PAGE_JS = ROOT / "static" / "js"
PAGE_CSS = ROOT / "static" / "css" / "app.css"
PLOTLY = ROOT / "static" / "vendor" / "plotly-cartesian.min.js"
PLOTLY_LICENCE = ROOT / "static" / "vendor" / "plotly.js.LICENSE.txt"
# `const { a, b } = await import(`./x.js${v}`);` and `const x = await import(`./x.js${v}`);`
DYNAMIC = re.compile(r"^const\s+(\{[^}]*\}|\w+)\s*=\s*await import\(`\./([\w-]+)\.js\$\{v\}`\);", re.M)
VERSION_LINE = re.compile(r"^const v = new URL\(import\.meta\.url\)\.search;.*$", re.M)
# browsers the notebook front ends run in (JupyterLab 4 and VS Code's Electron are recent Chromium)
CSS_TARGET = "--target=chrome105,firefox110,safari16"
JS_ARGS = ["--bundle", "--format=esm", "--minify", "--target=es2020", "--legal-comments=eof", "--charset=utf8",
           "--log-level=warning"]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def static_imports(source: str) -> str:
    """A page module with its sibling imports made static (see the module docstring)."""
    def replace(m: re.Match[str]) -> str:
        names, module = m.group(1), m.group(2)
        target = f'"./{module}.js"'
        return f"import {names} from {target};" if names.startswith("{") else f"import * as {names} from {target};"

    return VERSION_LINE.sub("const v = \"\";  // (bundled: siblings are static imports)", DYNAMIC.sub(replace, source))


def digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths, key=rel):
        h.update(rel(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def header(inputs: list[Path]) -> str:
    listed = " ".join(rel(p) for p in sorted(inputs, key=rel))
    return (f"/* Built by scripts/build_widget.py: do not edit. inputs-sha256 {digest(inputs)}\n"
            f" * inputs: {listed}\n */")


def recorded(path: Path) -> tuple[str, list[Path]] | None:
    """(sha256, input files) from a built file's header, or None when it has none."""
    if not path.is_file():
        return None
    head = path.read_text(encoding="utf-8", errors="replace")[:4000]
    sha = re.search(r"inputs-sha256 ([0-9a-f]{64})", head)
    files = re.search(r"\* inputs: (.*)", head)
    if sha is None or files is None:
        return None
    return sha.group(1), [ROOT / name for name in files.group(1).split()]


def problems() -> list[str]:
    """What is stale or missing in the committed bundle (empty when it matches its inputs)."""
    found = []
    for path in (BUNDLE, STYLES):
        mark = recorded(path)
        if mark is None:
            found.append(f"{rel(path)} is missing or has no inputs header: run scripts/build_widget.py")
            continue
        sha, inputs = mark
        missing = [rel(p) for p in inputs if not p.is_file()]
        if missing:
            found.append(f"{rel(path)} was built from files that are gone: {', '.join(missing)}")
        elif digest(inputs) != sha:
            found.append(f"{rel(path)} is stale: its inputs changed since it was built; run scripts/build_widget.py")
    return found


def run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"build_widget: {' '.join(cmd[:3])} … failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def scoped_css(text: str) -> str:
    """app.css nested under .ninja-widget: `:root` and `body` become the widget itself; @keyframes stay
    outside (they cannot be nested); the page's screen-size @media blocks are left out (they follow the
    window, the widget follows its output area: widget.css's @container rules). Top-level blocks are
    found by counting braces (app.css has no braces in strings that would confuse it; comments are
    removed first)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    inner, outer = [], []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                block = text[start:i + 1].strip()
                start = i + 1
                selector = block.split("{", 1)[0].strip()
                if selector.startswith("@keyframes"):
                    outer.append(block)
                elif selector.startswith("@media") and re.search(r"\b(min|max)-(width|height)\b", selector):
                    continue  # the page's screen-size layouts: the widget follows its own box (widget.css)
                elif selector in (":root", "body"):
                    inner.append("&" + block[len(selector):])
                elif selector == "html, body":
                    continue  # the page's full-height layout: not the widget's
                else:
                    inner.append(block)
    return "\n".join(outer) + "\n.ninja-widget {\n" + "\n".join(inner) + "\n}\n"


def build(staged: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("build_widget: npm is needed to build the bundle (apt-get install npm)")
    work = staged / "build"
    src = work / "src"
    src.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(SPEC / name, work / name)
    # --ignore-scripts: no package's install script runs; esbuild's binary comes as a plain optional package
    run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], work)
    esbuild = str(work / "node_modules" / ".bin" / "esbuild")
    origin: dict[str, Path] = {}
    for page in sorted(PAGE_JS.glob("*.js")):
        (src / page.name).write_text(static_imports(page.read_text(encoding="utf-8")), encoding="utf-8")
        origin[f"src/{page.name}"] = page
    for own in sorted((SPEC / "src").glob("*.js")):
        shutil.copyfile(own, src / own.name)
        origin[f"src/{own.name}"] = own
    # the vendored IIFE defines `var Plotly`; as a module it exports it (nothing of it goes on window)
    (src / "plotly.js").write_text(PLOTLY.read_text(encoding="utf-8") + "\nexport default Plotly;\n", encoding="utf-8")
    origin["src/plotly.js"] = PLOTLY
    meta = work / "meta.json"
    run([esbuild, "src/widget.js", *JS_ARGS, f"--metafile={meta}", f"--outfile={staged / BUNDLE.name}"], work)
    used = [origin[name] for name in json.loads(meta.read_text())["inputs"]]
    js_inputs = [*used, SPEC / "package-lock.json", ROOT / "scripts" / "build_widget.py", PLOTLY_LICENCE]
    body = (staged / BUNDLE.name).read_text(encoding="utf-8")
    licence = PLOTLY_LICENCE.read_text(encoding="utf-8")
    (staged / BUNDLE.name).write_text(f"{header(js_inputs)}\n{body}/* plotly.js licence:\n{licence}*/\n",
                                      encoding="utf-8")

    (src / "widget.css").write_text(scoped_css(PAGE_CSS.read_text(encoding="utf-8")) +
                                    (SPEC / "src" / "widget.css").read_text(encoding="utf-8"), encoding="utf-8")
    run([esbuild, "src/widget.css", "--bundle", "--loader:.css=css", CSS_TARGET, "--log-level=warning",
         f"--outfile={staged / STYLES.name}"], work)
    css_inputs = [PAGE_CSS, SPEC / "src" / "widget.css", SPEC / "package-lock.json", ROOT / "scripts" / "build_widget.py"]
    css = (staged / STYLES.name).read_text(encoding="utf-8")
    (staged / STYLES.name).write_text(f"{header(css_inputs)}\n{css}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the committed bundle against its inputs (offline)")
    args = parser.parse_args(argv)
    if args.check:
        bad = problems()
        for line in bad:
            print(f"build_widget: {line}", file=sys.stderr)
        if not bad:
            print(f"build_widget: {rel(BUNDLE)} and {rel(STYLES)} match their inputs")
        return 1 if bad else 0
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        build(staged)
        for path in (BUNDLE, STYLES):
            shutil.copyfile(staged / path.name, path)
    print(f"build_widget: {rel(BUNDLE)} ({BUNDLE.stat().st_size:,} bytes), {rel(STYLES)} "
          f"({STYLES.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
