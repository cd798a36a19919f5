"""`python -m ninja_core train | sample | bench` for either network: the JSON keys, the model file
round trip, bad arguments exit 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ninja_core.cli import main
from ninja_core.train import load_model

ROOT = Path(__file__).resolve().parents[2]
TRAIN_KEYS = {"train_loss", "val_loss", "test_loss", "steps", "seconds", "steps_per_s", "samples", "audit", "stopped"}


@pytest.mark.parametrize("net", ["mlp", "wavenet"])
def test_cli_train_json_has_every_key_and_its_model_samples(net: str, capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    argv = ["train", "--net", net, "--steps", "300", "--n-hidden", "32", "--audit-every", "100", "--json", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert set(doc) >= TRAIN_KEYS and doc["config"]["net"] == net
    assert doc["steps"] == 300 and len(doc["samples"]) == 20 and len(doc["audit"]) == 3
    assert doc["cpu_seconds"] > 0 and doc["cpu_seconds"] <= doc["seconds"] * 1.05
    assert all(max(a["max_rel_diff"].values()) <= 1e-5 for a in doc["audit"])
    assert captured.err == ""  # no progress bar with --json (nor without a terminal)
    assert main(["sample", "--model", str(out), "--n", "5", "--seed", "3"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert names == load_model(out).sample(5, seed=3)
    assert main(["sample", "--model", str(out), "--json"]) == 0
    sampled = json.loads(capsys.readouterr().out)
    assert sampled["net"] == net and len(sampled["samples"]) == 20


def test_cli_train_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--steps", "50", "--n-hidden", "16", "--audit-every", "25"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mlp: train ") and "| val " in out and "samples: " in out and "audit: 2 checks" in out


@pytest.mark.parametrize("net", ["mlp", "wavenet"])
def test_cli_bench_json_keys(net: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--net", net, "--json", "--steps", "20", "--rounds", "1", "--n-hidden", "32"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc)[:3] == ["autograd_steps_per_s", "manual_steps_per_s", "ratio"]
    assert doc["autograd_steps_per_s"] > 0 and doc["manual_steps_per_s"] > 0
    assert doc["ratio"] == pytest.approx(doc["manual_steps_per_s"] / doc["autograd_steps_per_s"])
    assert doc["net"] == net and doc["threads"] == 1 and doc["sizes"]["n_hidden"] == 32


@pytest.mark.parametrize("argv", [
    ["train", "--net", "gpt9"],
    ["train", "--steps", "-1"],
    ["train", "--audit-every", "often"],
    ["train", "--n-hidden", "5000"],
    ["train", "--net", "wavenet", "--block-size", "3"],
    ["train", "--n-head", "2"],
    ["train", "--lr", "nan"],
    ["train", "--optimizer", "adam"],
    ["sample"],
    ["sample", "--model", "x.pt", "--n", "0"],
    ["bench", "--rounds", "0"],
    ["bench", "--net", "nope"],
])
def test_cli_bad_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)  # a size out of the network's range is refused by its config
    except SystemExit as exc:  # argparse refuses the rest
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


def test_a_network_without_a_plain_forward_is_one_clear_line(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from ninja_core.nets.base import Network
    from ninja_core.nets.gpt import GPT

    monkeypatch.setattr(GPT, "logits", Network.logits)  # as the GPT was before its training hooks
    assert main(["train", "--net", "gpt", "--steps", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gpt cannot be trained here yet" in err[0] and "mlp, wavenet" in err[0]


def test_a_bad_net_names_the_networks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--net", "gpt9"])
    assert "'mlp', 'wavenet'" in capsys.readouterr().err


def test_cli_train_refuses_an_unwritable_out_before_training(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "--out", str(tmp_path / "nope" / "m.pt")]) == 2  # 200 000 steps would take half a minute
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such directory" in err[0]


@pytest.mark.parametrize("command", ["train", "bench"])
def test_cli_a_missing_word_list_exits_2_naming_it(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--net", "wavenet", "--data", "/definitely/not/here.txt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/definitely/not/here.txt: no such file" in err[0]


def test_cli_sample_from_a_bad_file_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": "world"}')
    proc = subprocess.run([sys.executable, "-m", "ninja_core", "sample", "--model", str(bad)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "not a Backprop Ninja model file" in lines[0]
    assert "Traceback" not in proc.stderr


def test_train_needs_at_least_one_step(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--steps", "0"])
    assert exc.value.code == 2 and "--steps: must be in 1..10000000, got 0" in capsys.readouterr().err


def test_a_missing_cell_file_is_one_line_naming_the_program(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", "/nonexistent/cell.py"], prog="backprop-ninja") == 2
    assert capsys.readouterr().err == "backprop-ninja grade: error: cannot read /nonexistent/cell.py: no such file\n"
