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
from .i18n import Lang, german, localize, tr

DiffScale = Literal["linear", "log"]

DIVERGING = [[0.0, "#2b5b9b"], [0.25, "#8fb4da"], [0.5, "#f7f7f7"], [0.75, "#eda48a"], [1.0, "#b2182b"]]
SEQUENTIAL = [[0.0, "#fbf8f3"], [0.35, "#f6c27b"], [0.7, "#e4572e"], [1.0, "#6b0f1a"]]  # 0 is near white

# Two arrangements of the same four panels (value, manual, autograd, |diff|). "grid" (2 × 2) is the
# figure's own layout; "column" (4 × 1, for a phone) travels in layout.meta.arrangements as the
# layout and trace keys that differ, and the page merges it in when the figure's box is narrow.
# Gaps are fractions of the plotting area: between the columns a colour bar (10 px), its tick labels
# and the next panel's row numbers; between the rows the column numbers and the next panel's title.
GAP_X, GAP_Y = 0.17, 0.15
COLUMN_GAP_Y = 0.065
RATIO_NOTED = 2.0  # manual and autograd ranges further apart than this get a word in the title

german({
    "manual": "manuell",
    "yours": "deins",
    "value": "Wert",
    "row": "Zeile",
    "column": "Spalte",
    "all zero: bit-exact": "keine Abweichung: bitgenau",
    "no manual gradient": "kein manueller Gradient",
    "no autograd gradient": "kein Autograd-Gradient",
    "shapes differ: {a} vs {b}": "Formen verschieden: {a} statt {b}",
    "{ratio}× autograd's range": "{ratio}× die Spanne von Autograd",
    "1/{ratio} of autograd's range": "1/{ratio} der Spanne von Autograd",
})
WORDS = {"manual": tr("manual"), "yours": tr("yours")}


def _abs_max(t: torch.Tensor | None) -> float:
    """The largest finite |entry| of `t`, or 0.0 for none (absent, empty, all NaN/Inf)."""
    if t is None or not t.numel():
        return 0.0
    finite = t[torch.isfinite(t)]
    return finite.abs().max().item() if finite.numel() else 0.0


def number(x: float) -> str:
    """A tick label a learner reads as a number: 0, 0.005, 2.5, 8e-10, −1.5e-9 (never plotly's SI
    prefixes "800p", "200µ", which read as units)."""
    if x == 0:
        return "0"
    text = f"{x:.4g}" if 1e-3 <= abs(x) < 1e4 else "e"
    if "e" in text:  # also 9999.9, which rounds to 1e+04
        mantissa, exponent = f"{x:.1e}".split("e")
        text = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return text.replace("-", "\u2212", 1) if x < 0 else text


def _step(span: float, count: int) -> float:
    """A round step (1, 2, 2.5 or 5 × 10^k) that cuts `span` into about `count` parts."""
    raw = span / count
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= raw * 0.999)


def colorbar_ticks(lo: float, hi: float, log: bool = False) -> dict[str, Any]:
    """Explicit tick values and labels for a colour bar from `lo` to `hi`. For a log10 panel the
    values are exponents and the labels the numbers they stand for (-9 → "1e-9")."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return {}
    values: list[float]
    if log:
        values = [float(e) for e in range(math.ceil(lo), math.floor(hi) + 1)] or [lo, hi]
        return {"tickvals": values, "ticktext": [number(10.0 ** v) for v in values]}
    step = _step(hi - lo, 4)
    first = math.ceil(lo / step - 1e-9)
    values = [float(f"{k * step:.12g}") for k in range(first, math.floor(hi / step + 1e-9) + 1)]
    return {"tickvals": values, "ticktext": [number(v) for v in values]}


def _axes(k: int) -> tuple[str, str]:
    return ("x", "y") if k == 1 else (f"x{k}", f"y{k}")


def _heatmap(k: int, m: Matrix, title: str, colorscale: Any, zrange: tuple[float, float] | None,
             show_scale: bool, hover_label: str) -> dict[str, Any]:
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
        "showscale": show_scale,
        "hovertemplate": f"[%{{y}}, %{{x}}]  {hover_label} %{{z:.6g}}<extra>{title}</extra>",
        "hoverongaps": False,
    }
    if zrange is not None:
        trace["zmin"], trace["zmax"] = zrange
    return trace


def _grid(cols: int, rows: int, gap_x: float, gap_y: float) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """(x domain, y domain) of each panel, row by row from the top left."""
    w, h = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    cells = []
    for k in range(cols * rows):
        r, c = divmod(k, cols)
        x0, y1 = c * (w + gap_x), 1 - r * (h + gap_y)
        cells.append(((round(x0, 4), round(x0 + w, 4)), (round(y1 - h, 4), round(y1, 4))))
    return cells


def _colorbar(x: tuple[float, float], y: tuple[float, float]) -> dict[str, Any]:
    """Beside its own panel, as tall as the panel; no title (the panel's title says what it is)."""
    return {"x": round(x[1] + 0.01, 4), "xanchor": "left", "y": round(sum(y) / 2, 4), "yanchor": "middle",
            "len": round((y[1] - y[0]) * 0.95, 4), "thickness": 10}


def _axis_titles(value_m: Matrix, lang: Lang) -> tuple[str, str]:
    row = localize(tr("row"), lang) if value_m.row_title == "row" else value_m.row_title
    col = localize(tr("column"), lang) if value_m.col_title == "column" else value_m.col_title
    return row, col


def _arrangement(cells: list[tuple[tuple[float, float], tuple[float, float]]], titled: int,
                 row_title: str, col_title: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The layout axes and each trace's colour bar position for one arrangement; `titled` is the
    panel (1-4) whose axes carry the axis titles: the bottom-left one, where no neighbour sits."""
    layout: dict[str, Any] = {}
    for k, (x, y) in enumerate(cells, start=1):
        suffix = "" if k == 1 else str(k)
        layout[f"xaxis{suffix}"] = {"domain": list(x), "title": {"text": col_title if k == titled else "", "standoff": 2}}
        layout[f"yaxis{suffix}"] = {"domain": list(y), "title": {"text": row_title if k == titled else "", "standoff": 2}}
    return layout, [{"colorbar": _colorbar(x, y)} for x, y in cells]


def _range_words(manual_max: float, autograd_max: float, lang: Lang) -> str:
    """" · 32× autograd's range" when the two gradients' ranges are far apart, else ""."""
    if not manual_max or not autograd_max:
        return ""
    ratio = manual_max / autograd_max
    if 1 / RATIO_NOTED <= ratio <= RATIO_NOTED:
        return ""
    if ratio > 1:
        return " · " + localize(tr("{ratio}× autograd's range", ratio=f"{ratio:.3g}"), lang)
    return " · " + localize(tr("1/{ratio} of autograd's range", ratio=f"{1 / ratio:.3g}"), lang)


def node_figure(name: str, value: torch.Tensor, manual: torch.Tensor | None, reference: torch.Tensor | None,
                max_cells: int = DEFAULT_MAX_CELLS, diff_scale: DiffScale = "linear",
                manual_label: str = "manual", lang: Lang = "en", view: NodeView | None = None) -> dict[str, Any]:
    """Four heatmaps in a 2 × 2 grid: value | manual gradient / autograd gradient | |manual - autograd|.

    Shapes: `value`, `manual` and `reference` are the node's tensors (any rank; rank 0-1 and ≥ 3 are
    drawn in 2-D, as `display.to_2d` says, and block-reduced to at most `max_cells` cells).

    Every panel has its own colour scale and its own colour bar (gradients: centred on 0; |diff|: from
    0). A shared gradient scale made a learner's 32× too large answer leave autograd's panel white;
    with a scale each, both patterns stay visible and the colour bars (and a note in the manual
    panel's title when the ranges differ more than 2×) tell the sizes. When the two agree, the two
    scales are the same anyway. The |diff| panel is linear, or log10 for `diff_scale="log"` (all-zero
    differences stay linear: log10(0) has nothing to draw, and the panel says "bit-exact").
    `manual_label` names the second panel ("manual", or "yours" in the dojo); `lang` the labels;
    `view` reuses display matrices already reduced for these tensors (the API sends both).
    The layout meta carries a one-column arrangement for narrow screens (`meta.arrangements.column`).
    Raises nothing for absent or mis-shaped gradients: the |diff| panel says what is missing instead.
    """
    view = view or node_view(value, manual, reference, max_cells, with_stats=False)
    value_m, man_m, ref_m = view.value, view.manual, view.autograd
    manual_ok = manual is not None and reference is not None and tuple(manual.shape) == tuple(reference.shape)
    diff_m: Matrix | None = view.diff if manual_ok else None
    diff_note = ""
    log_diff = False
    if diff_m is not None:
        if not bool((diff_m.data != 0).any()):  # block maxima: no nonzero cell means no nonzero entry
            diff_note = localize(tr("all zero: bit-exact"), lang)
        elif diff_scale == "log":
            log_diff = True
            positive = diff_m.data > 0
            logged = torch.where(positive, diff_m.data.clamp_min(1e-45).log10(), torch.full_like(diff_m.data, math.nan))
            diff_m = Matrix(logged, diff_m.shape, diff_m.as_2d, diff_m.block, diff_m.how, diff_m.row_title, diff_m.col_title)
    elif manual is None:
        diff_note = localize(tr("no manual gradient"), lang)
    elif reference is None:
        diff_note = localize(tr("no autograd gradient"), lang)
    else:
        diff_note = localize(tr("shapes differ: {a} vs {b}", a=tuple(manual.shape), b=tuple(reference.shape)), lang)

    # Colour ranges from the drawn (possibly block-reduced) matrices: they fit what is shown, and
    # scanning a small matrix is cheap where the full tensor has millions of entries.
    value_max = _abs_max(value_m.data) or 1.0
    manual_max = _abs_max(man_m.data) if man_m is not None else 0.0
    autograd_max = _abs_max(ref_m.data) if ref_m is not None else 0.0
    label = localize(WORDS[manual_label], lang) if manual_label in WORDS else manual_label
    difference = f"|{label} − autograd|"
    titles = [name, f"d{name} ({label})", f"d{name} (autograd)", f"log10 {difference}" if log_diff else difference]
    manual_title = titles[1] + _range_words(manual_max, autograd_max, lang)
    value_word = localize(tr("value"), lang)

    traces: list[dict[str, Any]] = [
        _heatmap(1, value_m, titles[0], DIVERGING, (-value_max, value_max), True, value_word),
    ]
    if man_m is not None:
        traces.append(_heatmap(2, man_m, titles[1], DIVERGING, (-(manual_max or 1.0), manual_max or 1.0), True, "grad"))
    if ref_m is not None:
        traces.append(_heatmap(3, ref_m, titles[2], DIVERGING, (-(autograd_max or 1.0), autograd_max or 1.0), True, "grad"))
    if diff_m is not None:
        if log_diff:
            finite = diff_m.data[torch.isfinite(diff_m.data)]
            diff_range = (finite.min().item(), finite.max().item())
        else:
            diff_range = (0.0, _abs_max(diff_m.data) or 1.0)
        # all zero: no colour bar (a 0..1 scale for nothing would mislead); the note says it instead
        traces.append(_heatmap(4, diff_m, titles[3], SEQUENTIAL, diff_range, not diff_note, "|diff|"))

    row_title, col_title = _axis_titles(value_m, lang)
    grid_axes, grid_bars = _arrangement(_grid(2, 2, GAP_X, GAP_Y), 3, row_title, col_title)
    column_axes, column_bars = _arrangement(_grid(1, 4, 0.0, COLUMN_GAP_Y), 4, row_title, col_title)
    # the traces present are panels 1.. in order except a missing manual or autograd gradient: match by axis
    panel_of = [1 if t["xaxis"] == "x" else int(t["xaxis"][1:]) for t in traces]
    for trace, k in zip(traces, panel_of, strict=True):
        trace["colorbar"] = {**grid_bars[k - 1]["colorbar"], "tickfont": {"size": 9}, "outlinewidth": 0,
                             **colorbar_ticks(trace["zmin"], trace["zmax"], log=log_diff and k == 4)}

    layout: dict[str, Any] = {
        "margin": {"l": 44, "r": 58, "t": 22, "b": 64 if value_m.how else 38},
        "font": {"size": 11},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#eeeeee",
        "annotations": [],
        "meta": {"node": name, "shape": list(value.shape), "how": value_m.how, "diff_scale": diff_scale,
                 "arrangements": {"column": {"layout": column_axes,
                                             "traces": [column_bars[k - 1] for k in panel_of]}}},
    }
    for k in range(1, 5):
        suffix = "" if k == 1 else str(k)
        axis = {"anchor": f"y{suffix}", "showgrid": False, "zeroline": False, "ticks": "outside", "ticklen": 2}
        layout[f"xaxis{suffix}"] = {**axis, **grid_axes[f"xaxis{suffix}"]}
        layout[f"yaxis{suffix}"] = {**axis, "anchor": f"x{suffix}", "autorange": "reversed", **grid_axes[f"yaxis{suffix}"]}
        # titles and notes are placed in their panel's own coordinates ("x2 domain"), so they follow
        # the panel in either arrangement and never sit on another panel's tick labels or colour bar
        xa, ya = _axes(k)
        layout["annotations"].append({
            "text": f"<b>{manual_title if k == 2 else titles[k - 1]}</b>", "showarrow": False,
            "xref": f"{xa} domain", "yref": f"{ya} domain", "x": 0.5, "y": 1, "yanchor": "bottom", "xanchor": "center",
            "yshift": 1, "font": {"size": 11},
        })
    if diff_note:
        layout["annotations"].append({
            "text": diff_note, "showarrow": False, "xref": "x4 domain", "yref": "y4 domain", "x": 0.5, "y": 0.5,
            "font": {"size": 12, "color": "#3b4456"}, "bgcolor": "rgba(255,255,255,0.85)", "borderpad": 4,
        })
    if value_m.how:
        # two short lines rather than one long one: a phone's figure is ~370 px wide
        head, sep, rest = value_m.how.partition(": ")
        layout["annotations"].append({
            "text": f"{head}:<br>{rest}" if sep else value_m.how, "showarrow": False, "xref": "paper", "yref": "paper",
            "x": 0, "y": 0, "xanchor": "left", "yanchor": "top", "yshift": -34, "align": "left",
            "font": {"size": 10, "color": "#666"},
        })
    return {"data": traces, "layout": layout}
