"""The widget in real JupyterLab and Notebook 7, in headless Chromium: a manual check, not a test (it needs
JupyterLab and Notebook installed somewhere, which the project does not pin).

    python3 -m venv /tmp/jupyter && /tmp/jupyter/bin/pip install jupyterlab notebook
    .venv/bin/python scripts/widget/check_jupyter.py --jupyter /tmp/jupyter/bin/jupyter [--port 30100]

It writes the seed notebook (with a planted sign mistake, `judge(globals()).widget()` and a GPT run's
widget) to a temporary folder, starts `jupyter lab` there with a kernel of this checkout's .venv (whose
share/jupyter holds the anywidget and ipywidgets front ends), opens the notebook at /lab and at
/notebooks (Notebook 7), runs all cells from the Run menu, and reports: both widgets drawn, a click on a
table row answered by the kernel with that node's figure, the language switched to German, requests
that left the server (none expected) and console errors. Screenshots go to artifacts/. The server and
its kernels are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def notebook(folder: Path) -> None:
    import nbformat

    from tests.ninja_core import notebook_support as seed

    cells = seed.cells(backward=seed.planted("sign"))
    cells[-1] = "judge(globals()).widget()"
    cells.append("from ninja_core import Config, check, widget\nwidget(check(Config(net='gpt', n_layer=1)))")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "ninja", "display_name": "backprop-ninja (.venv)", "language": "python"}
    nbformat.write(nb, folder / "seed.ipynb")


def check(page: object, url: str, base: str, shot: Path) -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    foreign: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith((base, "blob:", "data:")) else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    time.sleep(5)  # the kernel starts
    page.click("li.lm-MenuBar-item:has-text('Run')")
    page.click("li.lm-Menu-item:has-text('Run All Cells')")
    started = time.monotonic()
    page.wait_for_function("document.querySelectorAll('.ninja-widget[data-figure]').length == 2", timeout=300_000)
    print(f"{url}: both widgets drawn {time.monotonic() - started:.1f} s after Run All Cells")
    first = page.locator(".ninja-widget").first
    first.scroll_into_view_if_needed()
    print(f"  judge widget: {first.locator('.cmp tbody tr[data-node]').count()} rows, node "
          f"{first.get_attribute('data-figure')}, {first.locator('.nw-figure .hm image').count()} heatmaps")
    page.screenshot(path=str(shot.with_name(shot.name + "-judge.png")))
    first.locator(".cmp tbody tr[data-node='counts']").click()
    started = time.monotonic()
    page.wait_for_selector(".ninja-widget[data-figure='counts']", timeout=60_000)
    print(f"  a click on counts: its figure from the kernel in {time.monotonic() - started:.2f} s")
    first.locator(".lang-toggle button[data-lang='de']").click()
    page.wait_for_function("document.querySelector('.ninja-widget').dataset.lang === 'de'", timeout=60_000)
    time.sleep(1)
    print(f"  in German: {first.locator('.nw-headline p').first.inner_text()[:80]}")
    second = page.locator(".ninja-widget").nth(1)
    second.scroll_into_view_if_needed()
    print(f"  GPT run widget: {second.locator('.cmp tbody tr[data-node]').count()} rows")
    page.screenshot(path=str(shot.with_name(shot.name + "-gpt.png")))
    print(f"  requests that left the server: {foreign or 'none'}; console errors: {errors or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jupyter", required=True, help="the `jupyter` command of an environment with jupyterlab and notebook")
    parser.add_argument("--port", type=int, default=30100)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder, kernels = Path(tmp) / "notebooks", Path(tmp) / "path" / "kernels" / "ninja"
        folder.mkdir()
        kernels.mkdir(parents=True)
        (kernels / "kernel.json").write_text(json.dumps({
            "argv": [str(ROOT / ".venv" / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "backprop-ninja (.venv)", "language": "python"}))
        notebook(folder)
        env = {**os.environ, "JUPYTER_PATH": f"{Path(tmp) / 'path'}:{ROOT / '.venv' / 'share' / 'jupyter'}"}
        base = f"http://127.0.0.1:{args.port}"
        server = subprocess.Popen([args.jupyter, "lab", "--no-browser", "--allow-root", f"--port={args.port}",
                                   "--ServerApp.port_retries=0", "--ServerApp.token=", "--ServerApp.password=",
                                   f"--ServerApp.root_dir={folder}"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(120):
                try:
                    with urllib.request.urlopen(f"{base}/api/status", timeout=2):
                        break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
                for url, shot in ((f"{base}/lab/tree/seed.ipynb", "jupyterlab"), (f"{base}/notebooks/seed.ipynb", "notebook7")):
                    context = browser.new_context(viewport={"width": 1440, "height": 1000})
                    check(context.new_page(), url, base, artifacts / f"widget-{shot}")
                    context.close()
                browser.close()
        finally:
            server.terminate()  # jupyter stops its kernels on SIGTERM
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
