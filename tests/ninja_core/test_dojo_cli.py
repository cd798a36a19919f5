"""`python -m ninja_core dojo` and `grade`: verdicts in the terminal, JSON for scripts, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ninja_core.cli import main
from ninja_core.config import Config
from ninja_core.nets import get_net

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--batch-size", "8", "--n-hidden", "16"]  # fast runs; the dojo does not care about the size


def test_dojo_prints_the_verdict_and_exits_0_when_right(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dojo", "--node", "h", "--code", "dh = dlogits @ W2.T", *SMALL]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("dh: exact (read from dh")
    assert out[1].strip() == "exact: bit for bit what autograd computed"


def test_dojo_wrong_answer_exits_1_with_its_diagnosis(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dojo", "--node", "bnmeani", "--code", "dbnmeani = (-dbndiff).sum(0)"]) == 1
    out = capsys.readouterr().out
    assert "shape_mismatch" in out and "(64,) should be (1, 64): keepdim=True is missing" in out


def test_dojo_code_error_is_a_verdict_with_line_and_column(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dojo", "--node", "h", "--code", "x = 1\ndh = dlogits @ W2", *SMALL]) == 1
    assert capsys.readouterr().out.startswith("runtime error: line 2, column 6: mat1 and mat2 shapes")


def test_dojo_json_reads_a_file_and_leaves_the_figure_out_unless_asked(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "answer.py"
    source.write_text("da = dlogits @ W2.T\n")
    assert main(["dojo", "--node", "a", "--file", str(source), "--json", *SMALL]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["node"] == "h" and doc["variable"] == "da" and doc["status"] == "exact" and "figure" not in doc
    assert main(["dojo", "--node", "a", "--file", str(source), "--json", "--figure", *SMALL]) == 0
    assert json.loads(capsys.readouterr().out)["figure"]["data"]


def test_dojo_json_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dojo", "--node", "h", "--code", "import os", "--json", *SMALL]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == {
        "kind": "forbidden", "message": "import is not allowed: torch and F are already there", "line": 1, "col": 1,
        "text": "line 1, column 1: import is not allowed: torch and F are already there"}


def test_grade_a_whole_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cell = tmp_path / "cell.py"
    cell.write_text(get_net('mlp').tape(Config()).exercise_cell())
    assert main(["grade", str(cell), *SMALL]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "26/26 right end to end, 26/26 locally" and out[1].startswith("logprobs")
    assert main(["grade", str(cell), "--json", *SMALL]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"]["passed"] == 26 and len(doc["nodes"]) == 26 and doc["complete"] is True


def test_grade_an_incomplete_cell_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cell = tmp_path / "cell.py"
    cell.write_text("dlogprobs = torch.zeros_like(logprobs)\ndlogprobs[range(n), Yb] = -1.0/n\ndprobs = 1 / 0\n")
    assert main(["grade", str(cell), "--json", *SMALL]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"]["passed"] == 1 and doc["error"]["line"] == 3 and doc["complete"] is False


@pytest.mark.parametrize("argv", [
    ["dojo", "--node", "nope", "--code", "x = 1"],
    ["dojo", "--node", "h"],
    ["dojo", "--node", "h", "--code", "x", "--file", "y"],
    ["dojo", "--node", "h", "--file", "/definitely/not/here.py"],
    ["grade", "/definitely/not/here.py"],
    ["grade"],
])
def test_bad_arguments_exit_2_with_one_line(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "ninja_core", *argv], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "error" in lines[0] and "Traceback" not in proc.stderr
