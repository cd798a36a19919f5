"""Training with the manual backward: it learns, the audit holds, the fast path equals the reference,
runs reproduce, stopping works, sampling, the model file, the CLI, the benchmark, trained_params."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ninja_core.backward import forward, manual_backward
from ninja_core.cli import main
from ninja_core.config import Config, ConfigError
from ninja_core.data import Dataset
from ninja_core.nets import generator, get_net
from ninja_core.run import check
from ninja_core.train import (
    AuditEvent,
    DoneEvent,
    ProgressEvent,
    StatsEvent,
    TrainConfig,
    TrainEvent,
    TrainResult,
    audit_grads,
    autograd_param_grads,
    iter_training,
    resolve_dataset,
    train,
    trained_params,
    trained_params_cache_clear,
    trained_params_cache_info,
)
from ninja_core.train_model import FORMAT, VERSION, ModelFileError, TrainedModel, load_model
from ninja_core.train_step import BatchSampler, FastStep, reference_grads

ROOT = Path(__file__).resolve().parents[2]
SMALL: dict[str, Any] = {"n_hidden": 32, "n_samples": 5}  # quick runs for everything that is not about quality

MLP = get_net("mlp")
MLP_TAPE = MLP.tape(Config())
PARAMS = MLP_TAPE.params


def init_params(cfg, vocab_size, g):  # type: ignore[no-untyped-def]
    return MLP.init_params(cfg, vocab_size, g)


def sample_batch(cfg, dataset, g):  # type: ignore[no-untyped-def]
    return MLP.batch(cfg, dataset, g)


@pytest.fixture(scope="module")
def short_run(dataset: Dataset) -> tuple[TrainResult, list[TrainEvent]]:
    """The lecture's network and recipe, shortened: 3 000 steps, audited every 500."""
    events: list[TrainEvent] = []
    cfg = TrainConfig(steps=3000, audit_every=500, stats_every=500, progress_every=500)
    return train(cfg, dataset, on_event=events.append), events


def _batch(cfg: Config, dataset: Dataset) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    dataset = resolve_dataset(dataset, cfg.block_size)  # the same words, contexts of the config's length
    g = generator(cfg)
    params = init_params(cfg, dataset.vocab.size, g)
    Xb, Yb = sample_batch(cfg, dataset, g)
    return params, Xb, Yb


# ---- it learns, and the audit holds -----------------------------------------------------------

def test_a_short_run_clearly_lowers_the_loss(short_run: tuple[TrainResult, list[TrainEvent]]) -> None:
    result, events = short_run
    first = next(e for e in events if isinstance(e, ProgressEvent))
    assert first.loss > result.train_loss
    assert result.val_loss < 2.6  # ln(27) = 3.30 at uniform guessing; the initial loss is ~3.3
    assert result.train_loss < 2.6 and result.test_loss < 2.6
    assert result.steps == 3000 and not result.stopped
    assert len(result.samples) == 20 and all(isinstance(s, str) for s in result.samples)


def test_audit_differences_stay_within_1e_5_relative_in_float32(short_run: tuple[TrainResult, list[TrainEvent]]) -> None:
    result, _ = short_run
    assert [a.step for a in result.audit] == [0, 500, 1000, 1500, 2000, 2500]
    for audit in result.audit:
        assert set(audit.max_rel_diff) == set(PARAMS)
        assert max(audit.max_rel_diff.values()) <= 1e-5, audit
        assert audit.scale > 0
    # float32 rounds the fused formulas differently from autograd: different, but by rounding only
    assert max(max(a.max_rel_diff.values()) for a in result.audit) > 0


def test_audit_in_float64_agrees_to_rounding(dataset: Dataset) -> None:
    events = list(iter_training(TrainConfig(steps=40, audit_every=20, dtype="float64", **SMALL), dataset))
    audits = [e for e in events if isinstance(e, AuditEvent)]
    assert [a.step for a in audits] == [0, 20]
    assert all(max(a.max_rel_diff.values()) <= 1e-12 for a in audits)


def test_audit_with_two_threads_holds_too(dataset: Dataset) -> None:
    # more than one thread: autograd's reference runs under the engine's deterministic() switch
    events = list(iter_training(TrainConfig(steps=20, audit_every=10, threads=2, **SMALL), dataset))
    audits = [e for e in events if isinstance(e, AuditEvent)]
    assert len(audits) == 2 and all(max(a.max_rel_diff.values()) <= 1e-5 for a in audits)


def test_the_audit_measure_catches_a_wrong_gradient(dataset: Dataset) -> None:
    params, Xb, Yb = _batch(Config(n_hidden=200), dataset)
    reference = autograd_param_grads(params, Xb, Yb)
    manual = dict(reference_grads(params, Xb, Yb).grads)
    rel, _, _ = audit_grads(manual, reference)
    assert max(rel.values()) <= 1e-5
    manual["bngain"] = manual["bngain"] * 1.01  # one percent off
    rel, absdiff, scale = audit_grads(manual, reference)
    assert rel["bngain"] > 1e-4 and max(v for k, v in rel.items() if k != "bngain") <= 1e-5
    assert rel["bngain"] == pytest.approx(absdiff["bngain"] / scale)


# ---- the fast path is the reference -----------------------------------------------------------

@pytest.mark.parametrize("cfg", [
    Config(n_hidden=200),
    Config(seed=1, batch_size=7, n_embd=3, n_hidden=13, block_size=1),
    Config(seed=5, batch_size=100, n_embd=17, n_hidden=33, block_size=8),
    Config(n_hidden=200, dtype="float64"),
], ids=["lecture", "tiny", "odd-sizes", "float64"])
def test_fast_path_gives_the_reference_gradients(cfg: Config, dataset: Dataset) -> None:
    params, Xb, Yb = _batch(cfg, dataset)
    ref = reference_grads(params, Xb, Yb)
    fast = FastStep({k: v.clone() for k, v in params.items()}, cfg.batch_size)
    fast.forward_backward(Xb, Yb)
    scale = max(float(g.abs().max()) for g in ref.grads.values())
    tol = 1e-6 if cfg.dtype == "float32" else 1e-14
    for name in PARAMS:
        torch.testing.assert_close(fast.grads[name], ref.grads[name], rtol=tol, atol=tol * scale, msg=name)
    torch.testing.assert_close(fast.h, ref.h)
    assert fast.take_loss() == pytest.approx(float(ref.loss), rel=1e-6)


def test_fast_step_updates_like_the_reference_step(dataset: Dataset) -> None:
    params, Xb, Yb = _batch(Config(n_hidden=64), dataset)
    a = {k: v.clone() for k, v in params.items()}
    b = {k: v.clone() for k, v in params.items()}
    FastStep(a, 32)(Xb, Yb, 0.1)
    grads = reference_grads(b, Xb, Yb).grads
    for name in PARAMS:
        b[name] -= 0.1 * grads[name]
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-7)
        if name != "b1":  # b1's gradient (~1e-9, zero in exact arithmetic) is below float32's spacing at b1
            assert not torch.equal(a[name], params[name]), name


def test_reference_step_uses_the_engines_fused_formulas(dataset: Dataset) -> None:
    cfg = Config(n_hidden=200, dtype="float64")
    params, Xb, Yb = _batch(cfg, dataset)
    engine = manual_backward(MLP_TAPE, forward(MLP_TAPE, params, Xb, Yb, {"n": Xb.shape[0]}), "fused")
    ours = reference_grads(params, Xb, Yb).grads
    for name in PARAMS:
        torch.testing.assert_close(ours[name], engine[name], rtol=1e-12, atol=1e-15, msg=name)


def test_training_with_the_reference_backward_follows_the_fast_one(dataset: Dataset) -> None:
    cfg = TrainConfig(steps=300, stats_every=0, progress_every=0, **SMALL)
    fast = train(cfg, dataset)
    ref = train(TrainConfig(**{**cfg.to_dict(), "backward": "reference"}), dataset)
    for name in PARAMS:
        torch.testing.assert_close(fast.model.params[name], ref.model.params[name], rtol=1e-4, atol=1e-5)
    assert fast.val_loss == pytest.approx(ref.val_loss, abs=1e-4)


# ---- reproducibility, schedule, minibatches ---------------------------------------------------

def test_two_runs_are_identical_bit_for_bit(dataset: Dataset) -> None:
    cfg = TrainConfig(steps=400, audit_every=200, stats_every=100, progress_every=100, **SMALL)
    a, b = train(cfg, dataset), train(cfg, dataset)
    for name in PARAMS:
        assert torch.equal(a.model.params[name], b.model.params[name]), name
    assert torch.equal(a.model.bnmean, b.model.bnmean) and torch.equal(a.model.bnvar, b.model.bnvar)
    assert (a.train_loss, a.val_loss, a.samples) == (b.train_loss, b.val_loss, b.samples)
    assert [x.max_rel_diff for x in a.audit] == [x.max_rel_diff for x in b.audit]
    other = train(TrainConfig(**{**cfg.to_dict(), "seed": 7}), dataset)
    assert not torch.equal(a.model.params["W1"], other.model.params["W1"])


def test_the_parameters_are_the_engines_initialisation(dataset: Dataset) -> None:
    cfg = TrainConfig(steps=0, n_hidden=48, n_samples=0, progress_every=0, stats_every=0)
    result = train(cfg, dataset)
    init = init_params(cfg.model_config(), dataset.vocab.size, generator(cfg.model_config()))
    for name in PARAMS:
        assert torch.equal(result.model.params[name], init[name]), name


def test_the_learning_rate_schedule() -> None:
    cfg = TrainConfig(steps=10)
    assert [cfg.lr_at(i) for i in range(10)] == [0.1] * 5 + [0.01] * 5
    assert TrainConfig().decay_step == 100_000  # the lecture: lr = 0.1 if i < 100000 else 0.01
    assert TrainConfig(steps=10, lr_decay_at=0.3).decay_step == 3  # rounded, not truncated
    assert {TrainConfig(steps=10, lr_decay_at=0.0).lr_at(i) for i in range(10)} == {0.01}
    assert {TrainConfig(steps=10, lr_decay_at=1.0).lr_at(i) for i in range(10)} == {0.1}


def test_the_loop_applies_the_schedule(dataset: Dataset) -> None:
    # With the rate after the decay set to 0, steps 5..9 must leave the parameters as step 5 left them.
    quiet = {"stats_every": 0, "progress_every": 0, **SMALL}
    frozen = train(TrainConfig(steps=10, lr_decayed=0.0, **quiet), dataset)
    five = train(TrainConfig(steps=5, lr_decay_at=1.0, **quiet), dataset)
    ten = train(TrainConfig(steps=10, lr_decay_at=1.0, **quiet), dataset)
    for name in PARAMS:
        assert torch.equal(frozen.model.params[name], five.model.params[name]), name
    assert not torch.equal(frozen.model.params["W1"], ten.model.params["W1"])
    events = list(iter_training(TrainConfig(steps=10, progress_every=1, stats_every=0, **SMALL), dataset))
    assert [e.lr for e in events if isinstance(e, ProgressEvent)] == [0.1] * 5 + [0.01] * 5


def test_batches_are_the_lectures_per_step_draws(dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BatchSampler, "CHUNK_ROWS", 96)  # 3 steps a chunk: cross chunk boundaries
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    batches = list(BatchSampler(dataset.Xtr, dataset.Ytr, 32, g1, 10))
    assert len(batches) == 10
    for Xb, Yb in batches:
        ix = torch.randint(0, dataset.Xtr.shape[0], (32,), generator=g2)
        assert torch.equal(Xb, dataset.Xtr[ix]) and torch.equal(Yb, dataset.Ytr[ix])
    assert torch.equal(g1.get_state(), g2.get_state())  # drew exactly what was asked for


@pytest.mark.parametrize("changes, field", [
    ({"n_hidden": 0}, "n_hidden"),
    ({"n_hidden": 2048}, "n_hidden"),
    ({"batch_size": 1}, "batch_size"),
    ({"steps": -1}, "steps"),
    ({"audit_every": True}, "audit_every"),
    ({"lr": 0.0}, "lr"),
    ({"lr": math.nan}, "lr"),
    ({"lr_decay_at": 1.5}, "lr_decay_at"),
    ({"dtype": "float16"}, "dtype"),
    ({"backward": "sideways"}, "backward"),
])
def test_bad_train_configs_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        TrainConfig(**changes)  # type: ignore[arg-type]
    assert exc.value.field == field


def test_train_config_round_trips_and_rejects_unknown_fields() -> None:
    cfg = TrainConfig(steps=123, data="x.txt")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown field"):
        TrainConfig.from_dict({"stepz": 1})


# ---- events and stopping ----------------------------------------------------------------------

def test_events_come_in_order_with_their_fields(short_run: tuple[TrainResult, list[TrainEvent]]) -> None:
    _, events = short_run
    assert isinstance(events[0], AuditEvent) and events[0].step == 0
    assert isinstance(events[-1], DoneEvent) and sum(isinstance(e, DoneEvent) for e in events) == 1
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    assert [p.step for p in progress] == [500, 1000, 1500, 2000, 2500, 3000]
    assert all(p.steps == 3000 and p.steps_per_s > 0 and math.isfinite(p.loss) for p in progress)
    assert progress[-1].loss < progress[0].loss
    stats = [e for e in events if isinstance(e, StatsEvent)]
    assert [s.step for s in stats] == [500, 1000, 1500, 2000, 2500, 3000]
    for s in stats:
        assert set(s.update_ratio) == set(PARAMS) and 0.0 <= s.saturation <= 1.0
        assert -6 < s.update_ratio["W1"] < 0  # log10 of a small ratio: the lecture aims at ~-3
    # within a step: audit of the gradient, then stats and progress after the update
    kinds = [(type(e).__name__, getattr(e, "step", None)) for e in events]
    assert kinds.index(("StatsEvent", 500)) < kinds.index(("ProgressEvent", 500)) < kinds.index(("AuditEvent", 500))
    for e in events:
        doc = e.to_dict()
        assert doc["kind"] == e.kind and json.dumps(doc)
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert {"train_loss", "val_loss", "test_loss", "seconds", "steps", "steps_per_s", "samples"} <= set(done.to_dict())
    assert "model" not in done.to_dict()


def test_should_stop_ends_the_run_early_and_is_asked_every_step(dataset: Dataset) -> None:
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 250

    events = list(iter_training(TrainConfig(steps=100_000, progress_every=100, **SMALL), dataset, should_stop))
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.stopped and done.steps == 250
    assert calls == 251  # asked before every step, and the 251st said stop
    assert len(done.samples) == SMALL["n_samples"] and math.isfinite(done.val_loss)


def test_closing_the_stream_stops_it_and_restores_the_consumers_threads(dataset: Dataset) -> None:
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        stream = iter_training(TrainConfig(steps=1_000_000, progress_every=100, threads=1, **SMALL), dataset)
        first = next(stream)
        assert isinstance(first, ProgressEvent) and first.step == 100
        assert torch.get_num_threads() == 2  # the run's setting applies only while it runs
        stream.close()
        with pytest.raises(StopIteration):
            next(stream)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


def test_training_on_another_word_list(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("\n".join(a + b + c for a in "xyz" for b in "qxyz" for c in "wxyz"))  # 48 words, 5 letters
    result = train(TrainConfig(steps=200, n_hidden=16, block_size=2, stats_every=0, n_samples=10, data=str(words)))
    assert result.model.vocab.chars == (".", "q", "w", "x", "y", "z")
    assert result.model.config.data == str(words) and result.model.config.block_size == 2
    assert all(set(name) <= set("qwxyz") for name in result.samples)
    assert result.model.params["C"].shape == (6, 10)


def test_a_bad_word_list_fails_at_the_call_not_at_the_first_event(tmp_path: Path) -> None:
    from ninja_core.data import DataError

    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="only blank lines"):
        iter_training(TrainConfig(steps=10), str(tmp_path / "empty.txt"))


# ---- sampling ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_model(dataset: Dataset) -> TrainedModel:
    return train(TrainConfig(steps=500, stats_every=0, progress_every=0, **SMALL), dataset).model


def test_sampling_is_seeded_and_names_stop_at_the_separator(small_model: TrainedModel) -> None:
    names = small_model.sample(20, seed=5)
    assert len(names) == 20
    assert names == small_model.sample(20, seed=5)
    assert names != small_model.sample(20, seed=6)
    alphabet = set(small_model.vocab.chars[1:])
    assert all("." not in name and set(name) <= alphabet for name in names)
    # the default seed is the lecture's: the training seed + 10
    assert small_model.sample(3) == small_model.sample(3, seed=small_model.config.seed + 10)


def test_sampling_stops_at_dot_and_cuts_a_name_that_never_ends(small_model: TrainedModel) -> None:
    def rigged(favourite: int) -> TrainedModel:
        params = {k: v.clone() for k, v in small_model.params.items()}
        params["W2"].zero_()
        params["b2"].fill_(-50.0)
        params["b2"][favourite] = 50.0
        return TrainedModel(small_model.config, small_model.vocab, params, small_model.bnmean, small_model.bnvar)

    assert rigged(0).sample(4) == ["", "", "", ""]  # '.' first: every name ends at once
    a = small_model.vocab.stoi["a"]
    assert rigged(a).sample(2) == ["a" * 64, "a" * 64]


# ---- the model file ---------------------------------------------------------------------------

def test_save_and_load_round_trip(small_model: TrainedModel, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    small_model.save(path)
    loaded = load_model(path)
    assert loaded.config == small_model.config and loaded.vocab == small_model.vocab
    for name in PARAMS:
        assert torch.equal(loaded.params[name], small_model.params[name])
    assert torch.equal(loaded.bnmean, small_model.bnmean) and torch.equal(loaded.bnvar, small_model.bnvar)
    assert loaded.sample(10, seed=1) == small_model.sample(10, seed=1)
    assert loaded.metrics == small_model.metrics and "val_loss" in loaded.metrics
    assert loaded.config.data is None  # trained on the bundled names
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


class _Payload:
    """Unpickling this would create a file: a model file must never run code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Path, str]]:
        return (Path.write_text, (Path(self.marker), "pwned"))


def _write_bad_files(good: Path, d: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a phrase its error must contain)"""
    files: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, phrase: str) -> None:
        (d / name).write_bytes(data)
        files[name] = (d / name, phrase)

    blob = good.read_bytes()
    put("random.pt", bytes(range(256)) * 40, "not a Backprop Ninja model file")
    put("truncated.pt", blob[: len(blob) // 2], "truncated")
    put("empty.pt", b"", "empty")
    put("model.json", json.dumps({"format": FORMAT, "version": VERSION}).encode(), "it looks like JSON")
    doc: dict[str, Any] = torch.load(good, weights_only=True)
    changes: list[tuple[str, dict[str, Any], str]] = [
        ("nomarker.pt", {"format": "something-else"}, "format marker"),
        ("version2.pt", {"version": VERSION + 1}, "version 2"),
        ("badshape.pt", {"params": {**doc["params"], "W1": torch.zeros(3, 3)}}, "W1 has shape"),
        ("noparams.pt", {"params": {"C": doc["params"]["C"]}}, "parameters must be exactly"),
        ("badconfig.pt", {"config": {**doc["config"], "n_hidden": 0}}, "config: n_hidden"),
        ("nan.pt", {"bn": {**doc["bn"], "var": torch.full_like(doc["bn"]["var"], math.nan)}}, "NaN"),
    ]
    for name, change, phrase in changes:
        torch.save({**doc, **change}, d / name)
        files[name] = (d / name, phrase)
    torch.save([1, 2, 3], d / "list.pt")
    files["list.pt"] = (d / "list.pt", "format marker")
    marker = d / "pwned.txt"
    (d / "evil.pt").write_bytes(pickle.dumps(_Payload(str(marker)), protocol=2))  # a bare pickle
    files["evil.pt"] = (d / "evil.pt", "not a Backprop Ninja model file")
    torch.save({"format": FORMAT, "obj": _Payload(str(marker))}, d / "evil_torch.pt")
    files["evil_torch.pt"] = (d / "evil_torch.pt", "refusing to unpickle")
    return files


def test_every_bad_model_file_is_a_clear_error(small_model: TrainedModel, tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    small_model.save(good)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    for name, (path, phrase) in _write_bad_files(good, bad_dir).items():
        with pytest.raises(ModelFileError) as exc:
            load_model(path)
        message = str(exc.value)
        assert str(path) in message and phrase in message, (name, message)
        assert "\n" not in message
    assert not (bad_dir / "pwned.txt").exists()  # nothing was unpickled
    for path, phrase in [(tmp_path / "missing.pt", "no such file"), (tmp_path, "not a regular file")]:
        with pytest.raises(ModelFileError, match=phrase):
            load_model(path)
    assert issubclass(ModelFileError, ValueError)


# ---- the CLI ----------------------------------------------------------------------------------

def test_cli_train_json_has_every_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    argv = ["train", "--steps", "300", "--n-hidden", "32", "--audit-every", "100", "--json", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert {"train_loss", "val_loss", "test_loss", "steps", "seconds", "steps_per_s", "samples", "audit"} <= set(doc)
    assert doc["steps"] == 300 and len(doc["samples"]) == 20 and len(doc["audit"]) == 3
    assert all(max(a["max_rel_diff"].values()) <= 1e-5 for a in doc["audit"])
    assert captured.err == ""  # no progress bar with --json (nor without a terminal)
    assert main(["sample", "--model", str(out), "--n", "5", "--seed", "3"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert names == load_model(out).sample(5, seed=3)
    assert main(["sample", "--model", str(out), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["samples"]) == 20


def test_cli_train_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--steps", "50", "--n-hidden", "16", "--audit-every", "25"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("train ") and "| val " in out and "samples: " in out and "audit: 2 checks" in out


def test_cli_bench_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--json", "--steps", "20", "--rounds", "1", "--n-hidden", "32"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"autograd_steps_per_s", "manual_steps_per_s", "ratio"} <= set(doc)
    assert doc["autograd_steps_per_s"] > 0 and doc["manual_steps_per_s"] > 0
    assert doc["ratio"] == pytest.approx(doc["manual_steps_per_s"] / doc["autograd_steps_per_s"])


@pytest.mark.parametrize("argv", [
    ["train", "--steps", "-1"],
    ["train", "--audit-every", "often"],
    ["train", "--n-hidden", "5000"],
    ["sample"],
    ["sample", "--model", "x.pt", "--n", "0"],
    ["bench", "--rounds", "0"],
])
def test_cli_bad_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)  # a size out of the network's range is refused by its Config
    except SystemExit as exc:  # argparse refuses the rest
        code = exc.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


def test_cli_train_refuses_an_unwritable_out_before_training(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "--out", str(tmp_path / "nope" / "m.pt")]) == 2  # 200 000 steps would take 25 s
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such directory" in err[0]


@pytest.mark.parametrize("command", ["train", "bench"])
def test_cli_a_missing_word_list_exits_2_naming_it(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--data", "/definitely/not/here.txt"]) == 2
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


# ---- trained parameters for check -------------------------------------------------------------

def test_trained_params_are_deterministic_and_cached(dataset: Dataset) -> None:
    cfg = Config(n_hidden=32)
    trained_params_cache_clear()
    first = trained_params(cfg, 200, dataset)
    again = trained_params(cfg, 200, dataset)
    assert trained_params_cache_info()["hits"] == 1 and trained_params_cache_info()["misses"] == 1
    again["W1"].zero_()  # callers get copies: the cache is not theirs to change
    trained_params_cache_clear()
    fresh = trained_params(cfg, 200, dataset)  # recomputed from scratch
    for name in PARAMS:
        assert torch.equal(first[name], fresh[name]), name
    assert not torch.equal(first["W1"], trained_params(cfg, 201, dataset)["W1"])
    # the variant, dtype and the check's own train_steps do not change the trained network
    assert torch.equal(first["W1"], trained_params(cfg.replace(dtype="float64", variant="fused"), 200, dataset)["W1"])


def test_check_uses_trained_params_when_train_steps_is_set(dataset: Dataset) -> None:
    cfg = Config(n_hidden=32, train_steps=200)
    run = check(cfg, dataset)
    trained = trained_params(cfg, 200, dataset)
    untrained = check(cfg.replace(train_steps=0), dataset)
    for name in PARAMS:
        assert torch.equal(run.values[name], trained[name]), name
    assert not torch.equal(run.values["W1"], untrained.values["W1"])
    assert torch.equal(run.values["Xb"], untrained.values["Xb"])  # the same minibatch, a trained network
    assert run.loss < untrained.loss
    assert {node.status for node in run.nodes.values()} <= {"exact", "approx"}
    run64 = check(cfg.replace(dtype="float64"), dataset)
    assert torch.equal(run64.values["W1"], trained["W1"].double())
