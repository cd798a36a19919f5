"""The project as a package: the wheel holds every package, the page's templates and static files and the
bundled data; installed into an empty venv, away from any checkout, `backprop-ninja serve` serves the
page from site-packages and `backprop-ninja check --json` works."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "ninja_core", "app", "templates", "static")
# what the checkout's folders become inside the wheel (pyproject.toml's package-dir)
IN_WHEEL = {"ninja_core": "ninja_core", "app": "app", "templates": "app/templates", "static": "app/static"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel .` on a copy of the sources (an in-place build would reuse a stale build/ folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                           "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr  # setuptools has nothing to complain about
    (built,) = (tmp / "dist").glob("backprop_ninja-*.whl")
    return built


def expected_files() -> set[str]:
    found = set()
    for folder, target in IN_WHEEL.items():
        for f in (ROOT / folder).rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
                found.add(f"{target}/{f.relative_to(ROOT / folder).as_posix()}")
    return found


def test_the_wheel_holds_every_package_page_file_and_the_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
        meta = z.read(f"{dist_info}/METADATA").decode()
    missing = sorted(expected_files() - names)
    assert not missing, f"not in the wheel (list its package in pyproject.toml's [tool.setuptools]): {missing}"
    assert {"ninja_core/data/names.txt", "app/templates/index.html", "app/static/vendor/plotly-cartesian.min.js",
            "app/static/vendor/plotly.js.LICENSE.txt", "ninja_core/dojo/__init__.py", "app/routes/page.py"} <= names
    assert not [n for n in names if n.split("/")[0] in ("tests", "scripts", "templates", "static")]
    assert re.search(r"^backprop-ninja = app\.cli:main$", entry_points, re.M)
    assert "Provides-Extra: notebook" in meta and "Requires-Dist: torch==2.13.0" in meta


def test_backprop_ninja_lists_every_command_and_hands_serve_to_the_server(capsys: pytest.CaptureFixture[str]) -> None:
    from app import cli

    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    listed = re.search(r"\{([a-z,]+)\}", capsys.readouterr().out)
    assert listed is not None
    assert set(listed.group(1).split(",")) >= {"serve", "check", "train", "sample", "dojo", "grade", "bench"}
    with pytest.raises(SystemExit) as done:  # the server's own parser, under the installed command's name
        cli.main(["serve", "--port", "abc"])
    assert done.value.code == 2 and "backprop-ninja serve: error: argument --port" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:  # the other commands are ninja_core's, under the same name
        cli.main(["check", "--seed", "x"])
    assert done.value.code == 2 and capsys.readouterr().err.startswith("backprop-ninja check: error: argument --seed")


def test_ninja_core_and_its_command_line_never_import_app() -> None:
    """Data flows one way: `backprop-ninja` knows `serve` because app.cli adds it, not ninja_core."""
    probe = ("import sys, ninja_core, ninja_core.cli; ninja_core.cli.build_parser(); "
             "print(sorted(m for m in sys.modules if m == 'app' or m.startswith('app.')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


@pytest.mark.slow
def test_installed_in_an_empty_venv_it_serves_the_page_and_checks(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    away = tmp_path / "elsewhere"  # no checkout on the path: not the cwd, not PYTHONPATH
    away.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    py, bin_ = str(venv / "bin" / "python"), venv / "bin"
    try:
        # as README says: torch's CPU build first (PIP_FIND_LINKS finds it here), then the wheel from PyPI
        for args in (["--no-deps", "--retries", "1", "--timeout", "15", "-r", str(ROOT / "requirements-torch.txt")],
                     [f"{wheel}[notebook]"]):
            proc = subprocess.run([py, "-m", "pip", "install", "--quiet", *args], cwd=away, env=env,
                                  capture_output=True, text=True, check=False)
            assert proc.returncode == 0, proc.stderr[-3000:]

        probe = ("import app, ninja_core, torch, anywidget, nbclient, ipykernel, nbformat; "
                 "from app.routes import page; print(app.__file__, ninja_core.__file__, page.ROOT, torch.version.cuda); "
                 # the notebook widget from the installed package: its bundled module, a table and a figure
                 "w = ninja_core.widget(ninja_core.check()); "
                 "assert w._esm.startswith('/* Built by scripts/build_widget.py') and len(w._esm) > 10**6, w._esm[:80]; "
                 "assert len(w.doc['nodes']) == 26 and len(w.view['figure']['data']) == 4")
        out = subprocess.run([py, "-c", probe], cwd=away, env=env, capture_output=True, text=True, check=True).stdout.split()
        site = str(venv / "lib")
        assert all(p.startswith(site) for p in out[:3]), out  # everything from site-packages, nothing from here
        assert out[3] == "None"

        check = subprocess.run([str(bin_ / "backprop-ninja"), "check", "--json", "--no-gradcheck"], cwd=away, env=env,
                               capture_output=True, text=True, timeout=120, check=False)
        assert check.returncode == 0, check.stderr
        doc = json.loads(check.stdout)
        assert doc["counts"] == {"exact": len(doc["nodes"])} and len(doc["nodes"]) >= 26

        port = free_port()
        log = (tmp_path / "serve.log").open("wb")
        server = subprocess.Popen([str(bin_ / "backprop-ninja"), "serve", "--port", str(port), "--log-level", "warning"],
                                  cwd=away, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    status, body = get(f"{base}/healthz", timeout=2)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "no answer on /healthz within 90 s"
                    time.sleep(0.2)
            assert status == 200 and json.loads(body)["status"] == "ok"
            status, page_html = get(f"{base}/")
            html = page_html.decode()
            assert status == 200 and "<title>Backprop Ninja</title>" in html
            assets = set(re.findall(r'(?:src|href)="(/(?:static|vendor)/[^"]+)"', html))
            assert any("/vendor/plotly-" in a for a in assets) and any("main.js" in a for a in assets)
            assert len(assets) >= 10
            for asset in sorted(assets):  # the stylesheet, every module, the icon, plotly.js
                status, content = get(base + asset)
                assert status == 200 and content, asset
            status, docs = get(f"{base}/docs")
            assert status == 200 and b"swagger" in docs.lower()
        finally:
            server.terminate()
            server.wait(timeout=15)
            log.close()
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~1 GB with torch; pytest keeps the last three tmp dirs
