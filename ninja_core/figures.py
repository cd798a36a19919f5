"""One figure builder for the notebook and the page: a plain dict in plotly's JSON schema.

plotly.js draws the dict as it is; a notebook wraps it with `plotly.graph_objects.Figure(spec)`
(`Run.figure` does). No graph objects are built here, so the request path stays cheap: arrays
travel as base64 float32 (plotly.js's typed-array form), not as lists of numbers.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import torch

from .display import DEFAULT_MAX_CELLS, Matrix, NodeView, axis_word, encode, node_view
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
# Masked entries (display.head_grid): a mid grey no colour scale uses (0 is near white in both), with
# a hatch mark in each cell, so a masked entry never reads as a small value.
MASKED = "#9aa3b0"
HATCH = "╱"
FEW_TICKS = 8  # an axis with at most this many rows or columns gets a tick on each
HOVER_TEXT_CELLS = 4_096  # per-cell hover labels (head, row, column) up to this many drawn cells

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
    "head {h}": "Kopf {h}",
    "masked": "maskiert",
    "masked: {col} after {row} (the causal mask)": "maskiert: {col} nach {row} (die kausale Maske)",
    "sample {sample} of {n}": "Beispiel {sample} von {n}",
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


def _head_labels(m: Matrix, lang: Lang) -> list[list[str | None]] | None:
    """Per drawn cell of a head grid: "head 2 · query time 5 · key time 3" (None between the heads);
    None when there are too many cells for labels to be worth their bytes."""
    h = m.heads
    if h is None or m.data.numel() > HOVER_TEXT_CELLS:
        return None
    labels: list[list[str | None]] = [[None] * m.data.shape[1] for _ in range(m.data.shape[0])]
    (rc, cc), (sr, sc) = h.size, h.step
    row, col = localize(axis_word(h.names[2]), lang), localize(axis_word(h.names[3]), lang)
    for head, (r0, c0) in enumerate(h.origins):
        name = localize(tr("head {h}", h=head), lang)
        for i in range(rc):
            for j in range(cc):
                labels[r0 + i][c0 + j] = f"{name} · {row} {i * sr} · {col} {j * sc}"
    return labels


def _heatmap(k: int, m: Matrix, title: str, colorscale: Any, zrange: tuple[float, float] | None,
             show_scale: bool, hover_label: str, labels: list[list[str | None]] | None = None) -> dict[str, Any]:
    br, bc = m.block
    xa, ya = _axes(k)
    if m.heads is not None:  # drawn cells of a head grid: the axes' ticks and the labels name the indices
        grid_trace: dict[str, Any] = {"type": "heatmap", "name": title, "z": encode(m.data), "xaxis": xa, "yaxis": ya,
                 "colorscale": colorscale, "showscale": show_scale, "hoverongaps": False,
                 "hovertemplate": (f"%{{text}}<br>{hover_label} %{{z:.6g}}" if labels else
                                   f"[%{{y}}, %{{x}}]  {hover_label} %{{z:.6g}}") + f"<extra>{title}</extra>"}
        if labels:
            grid_trace["text"] = labels
        if zrange is not None:
            grid_trace["zmin"], grid_trace["zmax"] = zrange
        return grid_trace
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


def _mask_trace(k: int, m: Matrix, title: str, word: str) -> dict[str, Any]:
    """The masked cells of panel k, drawn over its heatmap in MASKED with a hatch mark in each (a text
    array: plotly draws a constant texttemplate in the gaps too); hover says "masked" and why."""
    assert m.masked is not None
    xa, ya = _axes(k)
    z = torch.where(m.masked, torch.ones_like(m.data), torch.full_like(m.data, math.nan))
    hatch = [[HATCH if cell else "" for cell in row] for row in m.masked.tolist()]
    return {
        "type": "heatmap", "name": word, "z": encode(z), "xaxis": xa, "yaxis": ya, "zmin": 0, "zmax": 1,
        "colorscale": [[0.0, MASKED], [1.0, MASKED]], "showscale": False, "hoverongaps": False,
        "text": hatch, "texttemplate": "%{text}", "textfont": {"color": "#ffffff", "size": 10},
        "hovertemplate": f"{word}<extra>{title}</extra>", "meta": {"masked": True},
    }


def _inside_heads(m: Matrix) -> torch.Tensor:
    """(rows, cols) bool: the drawn cells that belong to a head's block (not the gaps between them)."""
    inside = torch.zeros(m.data.shape, dtype=torch.bool)
    if m.heads is None:
        return ~inside
    rc, cc = m.heads.size
    for r0, c0 in m.heads.origins:
        inside[r0:r0 + rc, c0:c0 + cc] = True
    return inside


def _head_axes(m: Matrix) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tick values and labels for the x and y axes of a head grid: each head's own indices, about four
    per block, so a reader finds "query 5, key 3" in any head."""
    assert m.heads is not None
    (rc, cc), (sr, sc) = m.heads.size, m.heads.step
    x_at = sorted({c0 for _, c0 in m.heads.origins})
    y_at = sorted({r0 for r0, _ in m.heads.origins})

    def ticks(starts: list[int], n: int, step: int) -> dict[str, Any]:
        every = max(1, math.ceil(n / 4))
        picks = [j for j in range(0, n, every)]
        return {"tickmode": "array", "tickvals": [s0 + j for s0 in starts for j in picks],
                "ticktext": [str(j * step) for _ in starts for j in picks]}

    return ticks(x_at, cc, sc), ticks(y_at, rc, sr)


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
    row = localize(tr("row"), lang) if value_m.row_title == "row" else localize(value_m.row_title, lang)
    col = localize(tr("column"), lang) if value_m.col_title == "column" else localize(value_m.col_title, lang)
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
                manual_label: str = "manual", lang: Lang = "en", view: NodeView | None = None,
                axes: tuple[str, ...] = (), sample: int = 0) -> dict[str, Any]:
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

    A (batch, head, ·, ·) tensor (`axes` from `Network.axes`, or the `view` built with them) shows one
    `sample` in every panel: a grid of its heads, each titled, its ticks the head's own indices
    (attention: query time × key time, as llm.c's att[b, h, t, t2]). Entries the causal mask set are
    drawn in grey with a hatch and hover "masked" (display.head_grid says which), and a line under the
    figure says so; `meta.sample` / `meta.samples` tell the page the sample shown and B.
    Raises nothing for absent or mis-shaped gradients: the |diff| panel says what is missing instead;
    raises ConfigError("sample") for a sample outside 0..B-1 of such a tensor.
    """
    view = view or node_view(value, manual, reference, max_cells, with_stats=False, axes=axes, sample=sample)
    value_m, man_m, ref_m = view.value, view.manual, view.autograd
    manual_ok = manual is not None and reference is not None and tuple(manual.shape) == tuple(reference.shape)
    diff_m: Matrix | None = view.diff if manual_ok else None
    diff_note = ""
    log_diff = False
    if diff_m is not None:
        # block maxima: no nonzero cell means no nonzero entry (a head grid's gaps and masked cells are
        # NaN by design; a NaN difference inside a head that is not masked still counts)
        shown = _inside_heads(diff_m) & (~diff_m.masked if diff_m.masked is not None else True)
        if not bool(((diff_m.data != 0) & shown).any()):
            diff_note = localize(tr("all zero: bit-exact"), lang)
        elif diff_scale == "log":
            log_diff = True
            positive = diff_m.data > 0
            logged = torch.where(positive, diff_m.data.clamp_min(1e-45).log10(), torch.full_like(diff_m.data, math.nan))
            diff_m = dataclasses.replace(diff_m, data=logged)
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
    heads = value_m.heads
    sample_words = localize(tr("sample {sample} of {n}", sample=heads.sample, n=heads.n_samples), lang) if heads else ""
    titles = [f"{name} · {sample_words}" if heads else name, f"d{name} ({label})", f"d{name} (autograd)",
              f"log10 {difference}" if log_diff else difference]
    manual_title = titles[1] + _range_words(manual_max, autograd_max, lang)
    value_word = localize(tr("value"), lang)

    labels = {id(m): _head_labels(m, lang) for m in (value_m, man_m, ref_m, diff_m) if m is not None}
    traces: list[dict[str, Any]] = [
        _heatmap(1, value_m, titles[0], DIVERGING, (-value_max, value_max), True, value_word, labels[id(value_m)]),
    ]
    if man_m is not None:
        traces.append(_heatmap(2, man_m, titles[1], DIVERGING, (-(manual_max or 1.0), manual_max or 1.0), True, "grad",
                               labels[id(man_m)]))
    if ref_m is not None:
        traces.append(_heatmap(3, ref_m, titles[2], DIVERGING, (-(autograd_max or 1.0), autograd_max or 1.0), True,
                               "grad", labels[id(ref_m)]))
    if diff_m is not None:
        if log_diff:
            finite = diff_m.data[torch.isfinite(diff_m.data)]
            diff_range = (finite.min().item(), finite.max().item())
        else:
            diff_range = (0.0, _abs_max(diff_m.data) or 1.0)
        # all zero: no colour bar (a 0..1 scale for nothing would mislead); the note says it instead
        traces.append(_heatmap(4, diff_m, titles[3], SEQUENTIAL, diff_range, not diff_note, "|diff|", labels[id(diff_m)]))

    row_title, col_title = _axis_titles(value_m, lang)
    grid_axes, grid_bars = _arrangement(_grid(2, 2, GAP_X, GAP_Y), 3, row_title, col_title)
    column_axes, column_bars = _arrangement(_grid(1, 4, 0.0, COLUMN_GAP_Y), 4, row_title, col_title)
    # the traces present are panels 1.. in order except a missing manual or autograd gradient: match by axis
    panel_of = [1 if t["xaxis"] == "x" else int(t["xaxis"][1:]) for t in traces]
    for trace, k in zip(traces, panel_of, strict=True):
        trace["colorbar"] = {**grid_bars[k - 1]["colorbar"], "tickfont": {"size": 9}, "outlinewidth": 0,
                             **colorbar_ticks(trace["zmin"], trace["zmax"], log=log_diff and k == 4)}
    # the masked cells over each panel's heatmap, after the traces the arrangements index
    masked_word = localize(tr("masked"), lang)
    panels = [(1, value_m), (2, man_m), (3, ref_m), (4, diff_m)]
    traces += [_mask_trace(k, m, titles[k - 1], masked_word)
               for k, m in panels if m is not None and m.masked is not None and bool(m.masked.any())]
    any_masked = any(t.get("meta", {}).get("masked") for t in traces)

    layout: dict[str, Any] = {
        "margin": {"l": 44, "r": 58, "t": 22, "b": 64 if value_m.how else 38},
        "font": {"size": 11},
        "paper_bgcolor": "rgba(0,0,0,0)",
        # a head grid's gaps between heads are background: none, so only the masked grey reads as grey
        "plot_bgcolor": "rgba(0,0,0,0)" if heads else "#eeeeee",
        "annotations": [],
        "meta": {"node": name, "shape": list(value.shape), "how": localize(value_m.how, lang), "diff_scale": diff_scale,
                 "sample": heads.sample if heads else None, "samples": heads.n_samples if heads else None,
                 "arrangements": {"column": {"layout": column_axes,
                                             "traces": [column_bars[k - 1] for k in panel_of]}}},
    }
    for k in range(1, 5):
        suffix = "" if k == 1 else str(k)
        axis = {"anchor": f"y{suffix}", "showgrid": False, "zeroline": False, "ticks": "outside", "ticklen": 2}
        layout[f"xaxis{suffix}"] = {**axis, **grid_axes[f"xaxis{suffix}"]}
        layout[f"yaxis{suffix}"] = {**axis, "anchor": f"x{suffix}", "autorange": "reversed", **grid_axes[f"yaxis{suffix}"]}
        panel_m = panels[k - 1][1]
        if panel_m is not None and panel_m.heads is None:
            # a matrix of a few rows or columns: whole-number ticks (plotly would label a 1-row heatmap
            # -0.4 .. 0.4, as if there were rows between the rows)
            rows, cols = panel_m.data.shape[0], panel_m.data.shape[1]
            if rows <= FEW_TICKS:
                layout[f"yaxis{suffix}"]["dtick"] = 1
            if cols <= FEW_TICKS:
                layout[f"xaxis{suffix}"]["dtick"] = 1
        if panel_m is not None and panel_m.heads is not None:
            x_ticks, y_ticks = _head_axes(panel_m)
            layout[f"xaxis{suffix}"].update(x_ticks, tickfont={"size": 9})
            layout[f"yaxis{suffix}"].update(y_ticks, tickfont={"size": 9})
            xa, ya = _axes(k)
            cc = panel_m.heads.size[1]
            for h, (r0, c0) in enumerate(panel_m.heads.origins):
                layout["annotations"].append({
                    "text": localize(tr("head {h}", h=h), lang), "showarrow": False, "xref": xa, "yref": ya,
                    "x": c0 + (cc - 1) / 2, "y": r0 - 0.5, "xanchor": "center", "yanchor": "bottom",
                    "font": {"size": 10, "color": "#3b4456"}, "name": f"head-title {h}",
                })
        # titles and notes are placed in their panel's own coordinates ("x2 domain"), so they follow
        # the panel in either arrangement and never sit on another panel's tick labels or colour bar
        xa, ya = _axes(k)
        layout["annotations"].append({
            "text": f"<b>{manual_title if k == 2 else titles[k - 1]}</b>", "showarrow": False,
            "xref": f"{xa} domain", "yref": f"{ya} domain", "x": 0.5, "y": 1, "yanchor": "bottom", "xanchor": "center",
            "yshift": 1, "font": {"size": 11},
        })
    if diff_note and heads is not None:  # the panel's centre is a head's title: the note joins the panel's title
        title = next(x for x in layout["annotations"] if x["xref"] == "x4 domain")
        title["text"] += f"<span style='font-weight:normal'> · {diff_note}</span>"
    elif diff_note:
        layout["annotations"].append({
            "text": diff_note, "showarrow": False, "xref": "x4 domain", "yref": "y4 domain", "x": 0.5, "y": 0.5,
            "font": {"size": 12, "color": "#3b4456"}, "bgcolor": "rgba(255,255,255,0.85)", "borderpad": 4,
        })
    if value_m.how:
        # two short lines rather than one long one: a phone's figure is ~370 px wide
        how = localize(value_m.how, lang)
        head, sep, rest = how.partition(": ")
        text = f"{head}:<br>{rest}" if sep else how
        if any_masked and heads is not None:
            legend = localize(tr("masked: {col} after {row} (the causal mask)", row=axis_word(heads.names[2]),
                                 col=axis_word(heads.names[3])), lang)
            text += f"<br><span style='color:{MASKED}'>■</span> {legend}"
            layout["margin"]["b"] = 78
        layout["annotations"].append({
            "text": text, "showarrow": False, "xref": "paper", "yref": "paper",
            "x": 0, "y": 0, "xanchor": "left", "yanchor": "top", "yshift": -34, "align": "left",
            "font": {"size": 10, "color": "#666"},
        })
    return {"data": traces, "layout": layout}
