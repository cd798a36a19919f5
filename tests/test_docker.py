"""The Docker image, without a Docker Engine: lint the Dockerfile, and replay its install and
start steps in a fresh virtualenv (the same requirement files, the same COPYs, the same CMD)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            found.append((op.upper(), rest.strip()))
    return found


def test_hadolint_is_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(hadolint), "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_has_what_the_image_promises() -> None:
    ops = instructions()
    first = dict(ops)
    assert first["FROM"] == "python:3.11-slim"
    assert first["EXPOSE"] == "8000"
    assert "HEALTHCHECK" in first and "/healthz" in first["HEALTHCHECK"]
    users = [rest for op, rest in ops if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    cmd = json.loads(first["CMD"])
    assert cmd[:3] == ["python", "-m", "app"] and "0.0.0.0" in cmd
    # torch's CPU build from PyTorch's CPU index, with the Makefile's command: tests/test_install.py
    assert (ROOT / ".dockerignore").read_text().count(".venv") == 1


@pytest.mark.slow
def test_image_install_and_start_steps_in_a_fresh_venv(tmp_path: Path) -> None:
    ops = instructions()
    args = {}
    for op, rest in ops:
        if op == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
    # The commands run as written. Where PyTorch's CPU index cannot be reached (here), pip gives up on it
    # at once (--retries 1) and finds the same CPU wheel through PIP_FIND_LINKS.
    image = tmp_path / "srv"
    image.mkdir()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    workdir_env: dict[str, str] = {}
    for op, rest in ops:
        if op == "COPY":
            *sources, dest = rest.split()
            for src in sources:
                target = image / (src if dest in ("./", ".") else dest)
                if (ROOT / src).is_dir():
                    shutil.copytree(ROOT / src, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(ROOT / src, target)
        elif op == "RUN" and "pip install" in rest:
            command = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest)
            for part in command.split("&&"):
                words = shlex.split(part)
                assert words[:2] == ["pip", "install"]
                subprocess.run([str(venv / "bin" / "python"), "-m", *words, "--quiet"], cwd=image, env=env, check=True)
        elif op == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                workdir_env[key] = value
    # the image's torch is the CPU build, with no CUDA package beside it
    probe_torch = ("import torch, importlib.metadata as m; print(torch.version.cuda, sorted(d.metadata['Name'] "
                   "for d in m.distributions() if d.metadata['Name'].lower().startswith(('nvidia', 'cuda-', 'triton'))))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe_torch], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "None []", out
    cmd = json.loads(dict(ops)["CMD"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(venv / "bin" / "python") if c == "python" else (str(port) if c == "8000" else c) for c in cmd]
    run_env = {**env, **workdir_env, "PORT": str(port)}
    proc = subprocess.Popen(cmd, cwd=image, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body = None
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    body = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.2)
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert body is not None and body["status"] == "ok"
        # the image runs from its own copy: ninja_core comes from there, not from this checkout
        probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import ninja_core; print(ninja_core.__file__)"],
                               cwd=image, env=env, capture_output=True, text=True, check=True)
        assert probe.stdout.strip().startswith(str(image))
        # the HEALTHCHECK command itself passes
        check = dict(ops)["HEALTHCHECK"].split("CMD", 1)[1].strip()
        hc = [str(venv / "bin" / "python") if c == "python" else c.replace("8000", str(port)) for c in json.loads(check)]
        assert subprocess.run(hc, env=env, timeout=10).returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(venv, ignore_errors=True)  # ~1 GB with torch; pytest keeps the last three tmp dirs
