"""ninja_core.train.model: sampling, the model file of either network (round trip, version 1, every bad
file a clear one-line error, nothing unpickled)."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from ninja_core.data import Dataset
from ninja_core.train import ModelFileError, TrainConfig, TrainedModel, load_model, train
from ninja_core.train.model import FORMAT, VERSION

WORDS = "\n".join(a + b + c + d for a in "abc" for b in "aeiou" for c in "lmn" for d in "aey")  # 135 words


@pytest.fixture(scope="module")
def small_model(dataset: Dataset) -> TrainedModel:
    return train(TrainConfig(steps=500, n_hidden=32, n_samples=5, stats_every=0, progress_every=0), dataset).model


@pytest.fixture(scope="module")
def wavenet_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    words = tmp_path_factory.mktemp("words") / "words.txt"  # a small word list: a quick evaluation
    words.write_text(WORDS)
    return train(TrainConfig(net="wavenet", steps=300, n_hidden=32, n_samples=5, stats_every=0, progress_every=0,
                             data=str(words))).model


# ---- sampling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["small_model", "wavenet_model"])
def test_sampling_is_seeded_and_names_stop_at_the_separator(fixture: str, request: pytest.FixtureRequest) -> None:
    model: TrainedModel = request.getfixturevalue(fixture)
    names = model.sample(20, seed=5)
    assert len(names) == 20
    assert names == model.sample(20, seed=5)
    assert names != model.sample(20, seed=6)
    alphabet = set(model.vocab.chars[1:])
    assert all("." not in name and set(name) <= alphabet for name in names)
    # the default seed is the lecture's: the training seed + 10
    assert model.sample(3) == model.sample(3, seed=model.config.seed + 10)


def test_sampling_stops_at_dot_and_cuts_a_name_that_never_ends(small_model: TrainedModel) -> None:
    def rigged(favourite: int) -> TrainedModel:
        params = {k: v.clone() for k, v in small_model.params.items()}
        params["W2"].zero_()
        params["b2"].fill_(-50.0)
        params["b2"][favourite] = 50.0
        return TrainedModel(small_model.config, small_model.vocab, params, small_model.stats)

    assert rigged(0).sample(4) == ["", "", "", ""]  # '.' first: every name ends at once
    a = small_model.vocab.stoi["a"]
    assert rigged(a).sample(2) == ["a" * 64, "a" * 64]


def test_the_model_evaluates_a_split_as_training_reported(small_model: TrainedModel, dataset: Dataset) -> None:
    assert small_model.loss(dataset.Xdev, dataset.Ydev) == pytest.approx(small_model.metrics["val_loss"], rel=1e-12)


# ---- the model file ---------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["small_model", "wavenet_model"])
def test_save_and_load_round_trip(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    model: TrainedModel = request.getfixturevalue(fixture)
    path = tmp_path / "model.pt"
    model.save(path)
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.vocab == model.vocab and loaded.net == model.net
    for name in model.params:
        assert torch.equal(loaded.params[name], model.params[name]), name
    for name in model.stats:
        assert torch.equal(loaded.stats[name], model.stats[name]), name
    assert loaded.sample(10, seed=1) == model.sample(10, seed=1)
    assert loaded.metrics == model.metrics and "val_loss" in loaded.metrics
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind
    doc = torch.load(path, weights_only=True)
    assert doc["net"] == model.net and doc["version"] == VERSION


def test_the_bundled_names_are_recorded_as_none(small_model: TrainedModel) -> None:
    assert small_model.config.data is None


def test_a_version_1_file_of_the_mlp_still_loads(small_model: TrainedModel, tmp_path: Path) -> None:
    old = tmp_path / "v1.pt"
    config = {k: v for k, v in small_model.config.to_dict().items() if k not in ("net", "optimizer", "weight_decay")}
    torch.save({"format": FORMAT, "version": 1, "config": config, "vocab": list(small_model.vocab.chars),
                "params": small_model.params, "bn": {"mean": small_model.stats["bnmean"], "var": small_model.stats["bnvar"]},
                "metrics": small_model.metrics}, old)
    loaded = load_model(old)
    assert loaded.net == "mlp" and loaded.sample(5, seed=2) == small_model.sample(5, seed=2)


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
    net = doc["net"]
    a_weight, a_var = ("W1", "bnvar") if net == "mlp" else ("W2", "bnvar2")
    changes: list[tuple[str, dict[str, Any], str]] = [
        ("nomarker.pt", {"format": "something-else"}, "format marker"),
        ("version3.pt", {"version": VERSION + 1}, "version 3"),
        ("othernet.pt", {"net": "gpt9"}, "network 'gpt9', which this version does not know"),
        ("mixednet.pt", {"net": "wavenet" if net == "mlp" else "mlp"}, "config says"),
        ("badshape.pt", {"params": {**doc["params"], a_weight: torch.zeros(3, 3)}}, f"{a_weight} has shape"),
        ("noparams.pt", {"params": {"C": doc["params"]["C"]}}, "parameters of"),
        ("nostats.pt", {"stats": {}}, "statistics of"),
        ("badconfig.pt", {"config": {**doc["config"], "n_hidden": -1}}, "config: n_hidden"),
        ("nan.pt", {"stats": {**doc["stats"], a_var: torch.full_like(doc["stats"][a_var], math.nan)}}, "NaN"),
        ("negative.pt", {"stats": {**doc["stats"], a_var: -doc["stats"][a_var]}}, "negative"),
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


@pytest.mark.parametrize("fixture", ["small_model", "wavenet_model"])
def test_every_bad_model_file_is_a_clear_error(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    model: TrainedModel = request.getfixturevalue(fixture)
    good = tmp_path / "good.pt"
    model.save(good)
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
