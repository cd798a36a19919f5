"""One figure builder for the notebook and the page: a plain dict in plotly's JSON schema.

plotly.js draws the dict as it is; a notebook wraps it with `plotly.graph_objects.Figure(spec)`
(`Run.figure` does). No graph objects are built here, so the request path stays cheap: arrays
travel as base64 float32 (plotly.js's typed-array form), not as lists of numbers.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from .display import DEFAULT_MAX_CELLS, Matrix, NodeView, encode, node_view

DiffScale = Literal["linear", "log"]

DIVERGING = [[0.0, "#2b5b9b"], [0.25, "#8fb4da"], [0.5, "#f7f7f7"], [0.75, "#eda48a"], [1.0, "#b2182b"]]
SEQUENTIAL = [[0.0, "#fbf8f3"], [0.35, "#f6c27b"], [0.7, "#e4572e"], [1.0, "#6b0f1a"]]  # 0 is near white
# space between the 2 × 2 panels, as a fraction of the figure: room for a colour bar and tick
# labels between the columns, and for a title above the x tick labels between the rows
GAP_X, GAP_Y = 0.18, 0.15


def _abs_max(*tensors: torch.Tensor | None) -> float:
    m = 0.0
    for t in tensors:
        if t is not None and t.numel():
            finite = t[torch.isfinite(t)]
            if finite.numel():
                m = max(m, finite.abs().max().item())
    return m or 1.0


def _axes(k: int) -> tuple[str, str]:
    return ("x", "y") if k == 1 else (f"x{k}", f"y{k}")


def _heatmap(k: int, m: Matrix, title: str, colorscale: Any, zrange: tuple[float, float] | None,
             colorbar: dict[str, Any] | None, hover_label: str) -> dict[str, Any]:
    br, bc = m.block
    xa, ya = _axes(k)
    trace: dict[str, Any] = {
        "type": "heatmap",
        "name": title,
        "z": encode(m.data),
        # cell coordinates are the tensor's own indices (the first index of a block when reduced)
        "x": list(range(0, m.as_2d[1], bc)),
        "y": list(range(0, m.as_2d[0], br)),
        "xaxis": xa,
        "yaxis": ya,
        "colorscale": colorscale,
        "showscale": colorbar is not None,
        "hovertemplate": f"[%{{y}}, %{{x}}]  {hover_label} %{{z:.6g}}<extra>{title}</extra>",
        "hoverongaps": False,
    }
    if zrange is not None:
        trace["zmin"], trace["zmax"] = zrange
    if colorbar is not None:
        trace["colorbar"] = colorbar
    return trace


LABELS: dict[str, dict[str, str]] = {
    "en": {"manual": "manual", "yours": "yours", "value": "value", "gradient": "gradient", "row": "row",
           "column": "column", "bit_exact": "all zero: bit-exact", "no_manual": "no manual gradient",
           "no_autograd": "no autograd gradient", "shapes": "shapes differ: {a} vs {b}"},
    "de": {"manual": "manuell", "yours": "deins", "value": "Wert", "gradient": "Gradient", "row": "Zeile",
           "column": "Spalte", "bit_exact": "alles null: bitgenau", "no_manual": "kein manueller Gradient",
           "no_autograd": "kein Autograd-Gradient", "shapes": "Formen verschieden: {a} statt {b}"},
}
Lang = Literal["en", "de"]


def node_figure(name: str, value: torch.Tensor, manual: torch.Tensor | None, reference: torch.Tensor | None,
                max_cells: int = DEFAULT_MAX_CELLS, diff_scale: DiffScale = "linear",
                manual_label: str = "manual", lang: Lang = "en", view: NodeView | None = None) -> dict[str, Any]:
    """Four heatmaps in a 2 × 2 grid: value | manual gradient / autograd gradient | |manual - autograd|.

    Gradients share one diverging scale centred on 0, so the two panels read alike when they agree.
    `manual_label` names the second panel ("manual", or "yours" in the dojo); `lang` the labels;
    `view` reuses display matrices already reduced for these tensors (the API sends both).
    """
    words = LABELS[lang]
    view = view or node_view(value, manual, reference, max_cells, with_stats=False)
    value_m, man_m, ref_m = view.value, view.manual, view.autograd
    manual_ok = manual is not None and reference is not None and tuple(manual.shape) == tuple(reference.shape)
    diff_m: Matrix | None = view.diff if manual_ok else None
    diff_note = ""
    log_diff = False
    if diff_m is not None:
        if not bool((diff_m.data != 0).any()):  # block maxima: no nonzero cell means no nonzero entry
            diff_note = words["bit_exact"]  # and the panel stays linear: log10(0) has nothing to draw
        elif diff_scale == "log":
            log_diff = True
            positive = diff_m.data > 0
            logged = torch.where(positive, diff_m.data.clamp_min(1e-45).log10(), torch.full_like(diff_m.data, math.nan))
            diff_m = Matrix(logged, diff_m.shape, diff_m.as_2d, diff_m.block, diff_m.how, diff_m.row_title, diff_m.col_title)
    elif manual is None:
        diff_note = words["no_manual"]
    elif reference is None:
        diff_note = words["no_autograd"]
    else:
        diff_note = words["shapes"].format(a=tuple(manual.shape), b=tuple(reference.shape))

    # Colour ranges from the drawn (possibly block-reduced) matrices: they fit what is shown, and
    # scanning a small matrix is cheap where the full tensor has millions of entries.
    grad_max = _abs_max(man_m.data if manual_ok and man_m is not None else None, ref_m.data if ref_m is not None else None)
    value_max = _abs_max(value_m.data)
    width, height = (1 - GAP_X) / 2, (1 - GAP_Y) / 2
    cols = [(0.0, width), (width + GAP_X, 1.0)]
    rows = [(height + GAP_Y, 1.0), (0.0, height)]  # top row first
    label = words.get(manual_label, manual_label)
    difference = f"|{label} − autograd|"
    titles = [f"{name}", f"d{name} ({label})", f"d{name} (autograd)", f"log10 {difference}" if log_diff else difference]

    def bar(row: int, col: int, title: str) -> dict[str, Any]:
        return {"x": cols[col][1] + 0.01, "xanchor": "left", "y": sum(rows[row]) / 2, "len": height * 0.95,
                "thickness": 10, "title": {"text": title, "side": "right"}, "tickfont": {"size": 9}}

    traces: list[dict[str, Any]] = [
        _heatmap(1, value_m, titles[0], DIVERGING, (-value_max, value_max), bar(0, 0, words["value"]), words["value"]),
    ]
    if man_m is not None:
        traces.append(_heatmap(2, man_m, titles[1], DIVERGING, (-grad_max, grad_max), None, "grad"))
    if ref_m is not None:
        traces.append(_heatmap(3, ref_m, titles[2], DIVERGING, (-grad_max, grad_max),
                               bar(0, 1, words["gradient"]), "grad"))
    if diff_m is not None:
        zrange = None if log_diff else (0.0, _abs_max(diff_m.data))
        traces.append(_heatmap(4, diff_m, titles[3], SEQUENTIAL, zrange, bar(1, 1, "|diff|"), "|diff|"))

    layout: dict[str, Any] = {
        "margin": {"l": 44, "r": 64, "t": 28, "b": 48},
        "font": {"size": 11},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#eeeeee",
        "annotations": [],
        "meta": {"node": name, "shape": list(value.shape), "how": value_m.how, "diff_scale": diff_scale},
    }
    for k in range(1, 5):
        r, c = divmod(k - 1, 2)
        suffix = "" if k == 1 else str(k)
        layout[f"xaxis{suffix}"] = {"domain": list(cols[c]), "anchor": f"y{suffix}", "showgrid": False,
                                    "zeroline": False, "ticks": "outside", "ticklen": 2}
        layout[f"yaxis{suffix}"] = {"domain": list(rows[r]), "anchor": f"x{suffix}", "autorange": "reversed",
                                    "showgrid": False, "zeroline": False, "ticks": "outside", "ticklen": 2}
        if k == 3:
            col_title = words["column"] if value_m.col_title == "column" else value_m.col_title
            row_title = words["row"] if value_m.row_title == "row" else value_m.row_title
            layout[f"xaxis{suffix}"]["title"] = {"text": col_title, "standoff": 2}
            layout[f"yaxis{suffix}"]["title"] = {"text": row_title, "standoff": 2}
        layout["annotations"].append({
            "text": f"<b>{titles[k - 1]}</b>", "showarrow": False, "xref": "paper", "yref": "paper",
            "x": sum(cols[c]) / 2, "y": rows[r][1], "yanchor": "bottom", "xanchor": "center", "font": {"size": 11},
        })
    if diff_note:
        layout["annotations"].append({
            "text": diff_note, "showarrow": False, "xref": "paper", "yref": "paper",
            "x": sum(cols[1]) / 2, "y": sum(rows[1]) / 2, "font": {"size": 12, "color": "#555"},
        })
    if value_m.how:
        layout["annotations"].append({
            "text": value_m.how, "showarrow": False, "xref": "paper", "yref": "paper",
            "x": 0, "y": -0.1, "xanchor": "left", "yanchor": "top", "font": {"size": 10, "color": "#666"},
        })
    return {"data": traces, "layout": layout}
