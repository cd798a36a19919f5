from __future__ import annotations

import base64
import itertools
import re

import numpy as np
import pytest
import torch

from ninja_core.display import matrix, stats
from ninja_core.figures import colorbar_ticks, node_figure, number
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
    # each panel has its own scale centred on 0; the manual backward agrees, so the two are the same
    assert spec["data"][1]["zmin"] == -spec["data"][1]["zmax"] == spec["data"][2]["zmin"]
    assert all(t["showscale"] for t in spec["data"][:3])  # a colour bar beside every gradient panel


def test_three_dimensional_emb_is_shown_as_2d_and_says_how(default_run: Run) -> None:
    spec = node_figure("emb", *default_run.tensors("emb"))
    assert spec["data"][0]["z"]["shape"] == "32, 30"
    assert "(32, 3, 10) shown as 32 × 30" in spec["layout"]["meta"]["how"]
    assert "flattened" in spec["layout"]["xaxis3"]["title"]["text"]
    # the one-column arrangement moves the axis titles to the bottom panel, where no title sits below
    column = spec["layout"]["meta"]["arrangements"]["column"]["layout"]
    assert column["xaxis3"]["title"]["text"] == "" and "flattened" in column["xaxis4"]["title"]["text"]


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


def test_tick_labels_are_numbers_not_si_prefixes() -> None:
    assert [number(x) for x in (0.0, 8e-10, -1.5e-9, 2e-4, 0.005, -0.5, 2.5, 12345.0, 9999.9)] == [
        "0", "8e-10", "\u22121.5e-9", "2e-4", "0.005", "\u22120.5", "2.5", "1.2e4", "1e4"]
    ticks = colorbar_ticks(0.0, 8.3e-10)
    assert ticks["tickvals"] == [0.0, 2.5e-10, 5e-10, 7.5e-10]
    assert ticks["ticktext"] == ["0", "2.5e-10", "5e-10", "7.5e-10"]
    assert colorbar_ticks(-9.7, -7.2, log=True) == {"tickvals": [-9.0, -8.0], "ticktext": ["1e-9", "1e-8"]}


def test_every_colour_bar_has_explicit_number_ticks(fused_run: Run) -> None:
    spec = node_figure("logits", *fused_run.tensors("logits"))  # differences around 1e-9
    for trace in spec["data"]:
        bar = trace["colorbar"]
        assert len(bar["tickvals"]) == len(bar["ticktext"]) >= 2
        assert all(re.fullmatch(r"\u2212?\d+(\.\d+)?(e-?\d+)?", text) for text in bar["ticktext"]), bar["ticktext"]
        assert "title" not in bar  # the panel's title names it; a bar title ran into the next panel
    assert any("e-" in text for text in spec["data"][3]["colorbar"]["ticktext"])


def test_a_wrong_answer_keeps_both_gradient_panels_readable(default_run: Run) -> None:
    value, _, reference = default_run.tensors("h")
    assert reference is not None
    yours = 32 * reference  # the classic forgotten 1/n
    spec = node_figure("h", value, yours, reference, manual_label="yours")
    mine, autograd = spec["data"][1], spec["data"][2]
    assert mine["zmax"] == pytest.approx(32 * autograd["zmax"])  # each panel fills its own colour range
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert "<b>dh (yours) · 32× autograd's range</b>" in titles
    german = node_figure("h", value, yours, reference, manual_label="yours", lang="de")
    assert "<b>dh (deins) · 32× die Spanne von Autograd</b>" in [a["text"] for a in german["layout"]["annotations"]]
    smaller = node_figure("h", value, reference / 4, reference, manual_label="yours")
    assert "<b>dh (yours) · 1/4 of autograd's range</b>" in [a["text"] for a in smaller["layout"]["annotations"]]
    right = node_figure("h", value, reference.clone(), reference, manual_label="yours")
    assert "<b>dh (yours)</b>" in [a["text"] for a in right["layout"]["annotations"]]


def test_titles_and_notes_sit_in_their_own_panel(default_run: Run) -> None:
    spec = node_figure("W2", *default_run.tensors("W2"))
    notes = {a["text"]: a for a in spec["layout"]["annotations"]}
    exact = notes["all zero: bit-exact"]
    assert (exact["xref"], exact["yref"], exact["x"], exact["y"]) == ("x4 domain", "y4 domain", 0.5, 0.5)
    assert exact["bgcolor"]  # readable over the panel, never over a neighbour's tick labels
    assert spec["data"][3]["showscale"] is False  # no 0..1 colour bar for an all-zero difference
    for k, title in enumerate(["W2", "dW2 (manual)", "dW2 (autograd)", "|manual − autograd|"], start=1):
        a = notes[f"<b>{title}</b>"]
        axis = "x" if k == 1 else f"x{k}"
        assert (a["xref"], a["yanchor"]) == (f"{axis} domain", "bottom")


def _boxes(spec: dict, arrangement: dict | None = None) -> list[tuple[float, float, float, float]]:  # type: ignore[type-arg]
    layout = {**spec["layout"], **(arrangement or {})}
    out = []
    for k in range(1, 5):
        suffix = "" if k == 1 else str(k)
        x, y = layout[f"xaxis{suffix}"]["domain"], layout[f"yaxis{suffix}"]["domain"]
        out.append((x[0], x[1], y[0], y[1]))
    return out


def test_colour_bars_sit_between_panels_in_both_arrangements(default_run: Run) -> None:
    spec = node_figure("h", *default_run.tensors("h"))
    column = spec["layout"]["meta"]["arrangements"]["column"]
    for boxes, bars in ((_boxes(spec), [t["colorbar"] for t in spec["data"]]),
                        (_boxes(spec, column["layout"]), [t["colorbar"] for t in column["traces"]])):
        for (_, x1, y0, y1), bar in zip(boxes, bars, strict=True):
            assert x1 < bar["x"]  # right of its own panel
            assert y0 <= bar["y"] <= y1
            # and in no other panel
            assert not any(ox0 <= bar["x"] <= ox1 and oy0 <= bar["y"] <= oy1 for ox0, ox1, oy0, oy1 in boxes)
    # the column arrangement stacks four full-width panels, top to bottom, without overlap
    stacked = _boxes(spec, column["layout"])
    assert all(b[0] == 0.0 and b[1] == 1.0 for b in stacked)
    assert all(upper[2] > lower[3] for upper, lower in itertools.pairwise(stacked))


def test_a_matrix_of_one_row_has_whole_number_ticks() -> None:
    """A (1, 1, H) batchnorm mean is one row: its axis must not invent rows at -0.4 .. 0.4."""
    from ninja_core.figures import node_figure

    value = torch.randn(1, 1, 16)
    spec = node_figure("bnmeani1", value, value.clone(), value.clone(), axes=("batch", "time", "channel"))
    assert all(spec["layout"][f"yaxis{s}"]["dtick"] == 1 for s in ("", "2", "3", "4"))
    assert "dtick" not in spec["layout"]["xaxis"]  # 16 columns: plotly's own ticks
