"""Turn ninja_core results into JSON-ready dicts (the shapes app/schemas.py documents).

No gradient is derived here: everything comes from the Run; this only formats it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import orjson
from fastapi import Response

from ninja_core.display import Matrix, encode, node_view
from ninja_core.figures import DiffScale, Lang, node_figure
from ninja_core.i18n import localize
from ninja_core.run import NodeResult, Run

Encoding = Literal["b64", "list"]


class ORJSON(Response):
    """orjson bytes: ~10× faster than FastAPI's jsonable_encoder on arrays; NaN/Inf become null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def node_summary(node: NodeResult, lang: Lang = "en") -> dict[str, Any]:
    """One row of the cmp table; its notes and message in `lang` (formulas and code stay as they are)."""
    e = node.end_to_end
    return {
        "name": node.name, "kind": node.kind, "shape": list(node.shape),
        "manual_shape": list(e.manual_shape) if e.manual_shape is not None else None,
        "forward": node.forward, "formula": node.formula, "notes": [localize(n, lang) for n in node.notes], "fused": node.fused,
        "skipped_by": node.skipped_by,
        "status": e.status, "local_status": node.local.status, "exact": e.exact, "approx": e.approx,
        "maxdiff": finite(e.maxdiff), "relerr": finite(e.relerr), "local_maxdiff": finite(node.local.maxdiff),
        "nonfinite": (e.maxdiff is not None and not math.isfinite(e.maxdiff)), "message": localize(e.message, lang),
    }


def run_document(run_id: str, run: Run, schedule: int = 0, lang: Lang = "en") -> dict[str, Any]:
    """The run as JSON, its prose in `lang`; `schedule` is the length of a stopped training's schedule
    (0: it ran whole)."""
    graph = run.graph()
    for node in graph["nodes"]:
        result = run.nodes.get(node["name"])
        node["status"] = result.status if result else None
        node["skipped_by"] = result.skipped_by if result else None
    cfg = run.config.to_dict()
    cfg.pop("device", None)
    cfg["train_schedule_steps"] = schedule
    loss = run.loss
    return {
        "run_id": run_id,
        "config": cfg,
        "loss": finite(loss),
        "loss_finite": math.isfinite(loss),
        "counts": run.counts,
        "batch": run.batch(),
        "nodes": [node_summary(node, lang) for node in run.nodes.values()],
        "graph": graph,
        "data": {"name": _data_name(run), "words": len(run.data.words), "vocab": "".join(run.data.vocab.chars),
                 "fingerprint": run_id.rsplit("-d", 1)[-1]},
    }


def _data_name(run: Run) -> str:
    return Path(run.data.path).name


def _array(m: Matrix | None, encoding: Encoding) -> Any:
    if m is None:
        return None
    if encoding == "b64":
        return encode(m.data)
    return [[v if math.isfinite(v) else None for v in row] for row in m.data.tolist()]


def node_detail(run_id: str, run: Run, name: str, requested_as: str | None, max_cells: int, encoding: Encoding,
                diff_scale: DiffScale, with_arrays: bool, with_figure: bool, lang: Lang = "en",
                sample: int = 0) -> dict[str, Any]:
    """Raises ConfigError("sample") when `sample` is outside 0..B-1 of a (batch, head, ·, ·) node."""
    node = run.nodes[name]
    value, manual, reference = run.tensors(name)
    view = node_view(value, manual, reference, max_cells, axes=run.net.axes(name, value.dim()), sample=sample)
    heads = view.value.heads
    arrays = {key: _array(getattr(view, key), encoding) if with_arrays else None
              for key in ("value", "manual", "autograd", "diff")}
    return {
        "run_id": run_id,
        "name": name,
        "requested_as": requested_as,
        "kind": node.kind,
        "shape": list(value.shape),
        "display_shape": list(view.value.data.shape),
        "downsampled": view.value.downsampled,
        "how": localize(view.value.how, lang),
        "block": list(view.value.block),
        "encoding": encoding,
        "sample": heads.sample if heads else None,
        "samples": heads.n_samples if heads else None,
        **arrays,
        "stats": view.stats,
        "summary": node_summary(node, lang),
        "figure": node_figure(name, value, manual, reference, max_cells=max_cells, diff_scale=diff_scale, lang=lang,
                              view=view) if with_figure else None,
    }
