from __future__ import annotations

import base64

import numpy as np
import torch

from ninja_core.display import matrix, stats
from ninja_core.figures import node_figure
from ninja_core.run import Run


def _decode(z: dict) -> np.ndarray:  # type: ignore[type-arg]
    rows, cols = (int(s) for s in z["shape"].split(","))
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype="<f4").reshape(rows, cols)


def test_figure_has_four_heatmaps_and_is_a_plotly_figure(default_run: Run) -> None:
    fig = default_run.figure("h")
    assert [t.type for t in fig.data] == ["heatmap"] * 4
    spec = node_figure("h", *default_run.tensors("h"))
    value = _decode(spec["data"][0]["z"])
    assert value.shape == (32, 64)
    assert np.array_equal(value, default_run.values["h"].numpy())
    # manual and autograd share one scale centred on 0
    assert spec["data"][1]["zmin"] == -spec["data"][1]["zmax"] == spec["data"][2]["zmin"]


def test_three_dimensional_emb_is_shown_as_2d_and_says_how(default_run: Run) -> None:
    spec = node_figure("emb", *default_run.tensors("emb"))
    assert spec["data"][0]["z"]["shape"] == "32, 30"
    assert "(32, 3, 10) shown as 32 × 30" in spec["layout"]["meta"]["how"]
    assert "flattened" in spec["layout"]["xaxis3"]["title"]["text"]


def test_exact_node_says_bit_exact_and_log_scale_works(default_run: Run, fused_run: Run) -> None:
    spec = node_figure("W2", *default_run.tensors("W2"), diff_scale="log")
    texts = [a["text"] for a in spec["layout"]["annotations"]]
    assert "all zero: bit-exact" in texts
    assert "log10" not in spec["data"][3]["name"]  # log10(0) has nothing to draw: the zeros stay linear
    logged = node_figure("logits", *fused_run.tensors("logits"), diff_scale="log")
    assert "log10" in logged["data"][3]["name"]
    z = _decode(logged["data"][3]["z"])
    assert np.nanmax(z) < -6  # float32 rounding: differences around 1e-9


def test_german_labels(default_run: Run) -> None:
    spec = node_figure("h", *default_run.tensors("h"), lang="de")
    assert spec["data"][1]["name"] == "dh (manuell)"
    assert spec["layout"]["yaxis3"]["title"]["text"] == "Zeile"
    assert "keine Abweichung: bitgenau" in [a["text"] for a in spec["layout"]["annotations"]]


def test_downsampling_keeps_the_largest_difference() -> None:
    t = torch.zeros(1000, 1000)
    t[777, 333] = 5.0
    m = matrix(t, max_cells=1024, mode="max")
    assert m.data.numel() <= 1024 and m.downsampled
    assert m.data.max().item() == 5.0
    assert "maximum" in m.how
    mean = matrix(torch.ones(999, 37), max_cells=100)
    assert torch.allclose(mean.data, torch.ones_like(mean.data))  # partial blocks average real cells only


def test_stats_are_on_the_full_tensor_and_count_nonfinite() -> None:
    t = torch.tensor([1.0, 2.0, float("nan"), 3.0])
    s = stats(t)
    assert s is not None
    assert s["nonfinite"] == 1 and s["mean"] == 2.0 and s["max"] == 3.0
