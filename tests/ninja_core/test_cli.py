from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ninja_core.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_check_json_has_26_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", "--no-gradcheck"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["nodes"]) == 26
    assert {"loss", "config", "nodes"} <= set(doc)
    assert doc["config"]["n_hidden"] == 64
    assert {n["status"] for n in doc["nodes"]} == {"exact"}
    for key in ("name", "shape", "status", "local_status", "exact", "approx", "maxdiff", "relerr"):
        assert key in doc["nodes"][0]


def test_check_plain_prints_the_cmp_table_loss_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--variant", "fused", "--dtype", "float64"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("loss ")
    assert out[1].startswith("logprobs")
    assert any(line.startswith("hprebn") and "approx" in line for line in out)
    assert any("relerr autograd" in line for line in out)


@pytest.mark.parametrize("argv", [
    ["check", "--batch-size", "1"],
    ["check", "--n-hidden", "abc"],
    ["check", "--variant", "sideways"],
    ["check", "--data", "/definitely/not/here.txt"],
    ["frobnicate"],
    ["check", "--net", "resnet"],
    ["check", "--net", "wavenet", "--block-size", "3"],
    ["dojo", "--net", "wavenet", "--node", "h", "--code", "1"],
    ["grade", "--net", "gpt2", "-"],
])
def test_bad_arguments_exit_2_with_one_line(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "ninja_core", *argv], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "error" in lines[0]
    assert "Traceback" not in proc.stderr


def test_a_reader_that_goes_away_is_no_traceback() -> None:
    """`python -m ninja_core check | head -1`: the pipe closes before the table is written."""
    proc = subprocess.Popen([sys.executable, "-m", "ninja_core", "check", "--no-gradcheck"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the process has written anything
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_check_net_wavenet_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--net", "wavenet", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["net"] == "wavenet" and doc["n_params"] == 76_579
    assert len(doc["nodes"]) == 51 and {n["status"] for n in doc["nodes"]} == {"exact"}
    assert {n["local_status"] for n in doc["nodes"]} == {"exact"}
    assert max(r["relerr"] for r in doc["gradcheck"].values()) <= 1e-6
    for key in ("name", "shape", "status", "local_status", "exact", "approx", "maxdiff", "relerr"):
        assert key in doc["nodes"][0]


def test_dojo_net_wavenet_judges_a_level_node(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dojo", "--net", "wavenet", "--node", "h3", "--code", "dh3 = dlogits @ W4.T", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "exact"
