"""One check of the exercise: forward, autograd, manual backward, and 26 comparisons.

    >>> from ninja_core import check
    >>> run = check()                 # the lecture's defaults, float32, chain
    >>> run                           # in Jupyter: the cmp table
    >>> run.figure("h")               # plotly Figure: value, manual, autograd, |diff|
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .backward import Grads, both_passes, local_backward
from .compare import Comparison, compare
from .config import Config
from .data import Dataset, load_dataset
from .model import generator, init_params, sample_batch
from .tape import (
    FUSED_BLOCKS,
    MLP_TAPE,
    PARAMS,
    Values,
    backward_order,
    graph_edges,
    node_formula,
    node_notes,
    producers,
)


@dataclass(frozen=True)
class NodeResult:
    name: str
    kind: str  # "param" or "intermediate"
    shape: tuple[int, ...]
    forward: str  # the forward line that makes this node ("" for a parameter)
    formula: str  # the backward formula that computes d<name> in this variant
    notes: tuple[str, ...]  # where the computed form differs from the formula's text
    fused: str | None  # the fused block that produced this gradient, if any
    skipped_by: str | None  # in `fused`: the block whose one-step formula skips over this node, if any
    end_to_end: Comparison  # the manual backward pass against autograd
    local: Comparison  # this node's step alone, fed autograd's upstream gradient

    @property
    def status(self) -> str:
        return self.end_to_end.status

    @property
    def local_status(self) -> str:
        return self.local.status

    def summary(self) -> dict[str, Any]:
        e = self.end_to_end
        return {
            "name": self.name, "kind": self.kind, "shape": list(self.shape),
            "manual_shape": list(e.manual_shape) if e.manual_shape is not None else None,
            "status": e.status, "local_status": self.local.status,
            "exact": e.exact, "approx": e.approx, "maxdiff": e.maxdiff, "relerr": e.relerr,
            "local_maxdiff": self.local.maxdiff, "skipped_by": self.skipped_by,
        }


@dataclass
class Run:
    config: Config
    data: Dataset
    values: Values  # forward values (detached)
    autograd: Grads  # autograd's gradients
    manual: Grads  # the hand-written backward pass
    local: Grads  # each step alone, fed autograd's upstream gradient
    nodes: dict[str, NodeResult] = field(default_factory=dict)  # in backward (cmp table) order

    @property
    def loss(self) -> float:
        return float(self.values["loss"].item())

    @property
    def counts(self) -> dict[str, int]:
        tally: dict[str, int] = {}
        for node in self.nodes.values():
            tally[node.status] = tally.get(node.status, 0) + 1
        return tally

    def batch(self) -> list[dict[str, str]]:
        chars = self.data.vocab.chars
        Xb, Yb = self.values["Xb"].tolist(), self.values["Yb"].tolist()
        return [{"context": "".join(chars[i] for i in ctx), "target": chars[y]} for ctx, y in zip(Xb, Yb, strict=False)]

    def table(self) -> str:
        """The lecture's cmp table as plain text, loss first."""
        lines = [f"loss {self.loss:.4f}   ({self.config.dtype}, {self.config.variant})"]
        for node in self.nodes.values():
            e = node.end_to_end
            maxdiff = "-" if e.maxdiff is None else f"{e.maxdiff:.3g}"
            lines.append(
                f"{node.name:15s} | exact: {e.exact!s:5s} | approx: {e.approx!s:5s} | maxdiff: {maxdiff:9s}"
                f" | {e.status:14s} | local: {node.local.status}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        colours = {"exact": "#1a7f37", "approx": "#9a6700", "mismatch": "#cf222e",
                   "shape_mismatch": "#cf222e", "missing": "#6e7781"}
        rows = []
        for node in self.nodes.values():
            e = node.end_to_end
            maxdiff = "–" if e.maxdiff is None else f"{e.maxdiff:.3g}"
            rows.append(
                f"<tr><td><code>{html.escape(node.name)}</code></td><td>{e.exact}</td><td>{e.approx}</td>"
                f"<td>{maxdiff}</td><td style='color:{colours[e.status]}'><b>{e.status}</b></td>"
                f"<td style='color:{colours[node.local.status]}'>{node.local.status}</td></tr>"
            )
        head = ("<tr><th>node</th><th>exact</th><th>approx</th><th>maxdiff</th>"
                "<th>status</th><th>local</th></tr>")
        caption = html.escape(f"loss {self.loss:.4f} · {self.config.dtype} · {self.config.variant} · "
                              + ", ".join(f"{v} {k}" for k, v in self.counts.items()))
        return f"<table><caption>{caption}</caption>{head}{''.join(rows)}</table>"

    def tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(value, manual gradient, autograd gradient) of a node."""
        return self.values[name], self.manual.get(name), self.autograd.get(name)

    def figure(self, name: str) -> Any:
        """A plotly Figure of four heatmaps: value, manual gradient, autograd gradient, |diff|."""
        import plotly.graph_objects as go

        from .figures import node_figure

        value, manual, reference = self.tensors(name)
        return go.Figure(node_figure(name, value, manual, reference))

    def graph(self) -> dict[str, Any]:
        nodes = [{"name": p, "kind": "param"} for p in PARAMS]
        nodes += [{"name": "Xb", "kind": "data"}, {"name": "Yb", "kind": "data"}]
        nodes += [{"name": s.out, "kind": "loss" if s.out == "loss" else "intermediate"} for s in MLP_TAPE]
        return {"nodes": nodes, "edges": [list(e) for e in graph_edges()]}


def judge(values: Values, manual: Grads, reference: Grads, local: Grads, variant: str) -> dict[str, NodeResult]:
    """Compare every one of the 26 gradients, end to end and locally, in cmp-table order."""
    steps = producers()
    fused_by = {b.wrt: b.name for b in FUSED_BLOCKS} if variant == "fused" else {}
    skipped_by = {inner: b.name for b in FUSED_BLOCKS for inner in b.inner} if variant == "fused" else {}
    results: dict[str, NodeResult] = {}
    for name in backward_order():
        is_param = name in PARAMS
        end_to_end = compare(manual.get(name), reference.get(name))
        # local_backward hands back the manual gradient itself where it would recompute the same bits
        reused = name in local and local[name] is manual.get(name)
        results[name] = NodeResult(
            name=name,
            kind="param" if is_param else "intermediate",
            shape=tuple(values[name].shape),
            forward="" if is_param else f"{name} = {steps[name].forward}",
            formula=node_formula(name, variant),
            notes=tuple(node_notes(name, variant)),
            fused=fused_by.get(name),
            skipped_by=skipped_by.get(name),
            end_to_end=end_to_end,
            local=end_to_end if reused else compare(local.get(name), reference.get(name)),
        )
    return results


def check(config: Config | None = None, data: Dataset | str | Path | None = None,
          params: dict[str, torch.Tensor] | None = None) -> Run:
    """Forward + autograd + manual backward + 26 comparisons for one config.

    `params` replaces the initial parameters (e.g. trained ones); the minibatch is still drawn
    from the config's generator after the seven parameter draws, so it does not change.
    """
    cfg = config or Config()
    dataset = data if isinstance(data, Dataset) else load_dataset(data, cfg.block_size)
    if dataset.block_size != cfg.block_size:  # same words, contexts of the config's length
        dataset = load_dataset(dataset.path, cfg.block_size)
    if params is None and cfg.train_steps > 0:  # gradients of the network after N manual-backward SGD steps
        from .train import trained_params  # imported on use: only a check of a trained network needs it

        params = trained_params(cfg, cfg.train_steps, dataset)
    g = generator(cfg)
    initial = init_params(cfg, dataset.vocab.size, g)
    if params is not None:
        initial = {k: v.detach().to(device=initial[k].device, dtype=initial[k].dtype).clone()
                   for k, v in params.items()}
    Xb, Yb = sample_batch(cfg, dataset, g)
    detached, reference, manual = both_passes(initial, Xb, Yb, cfg.variant)
    local = local_backward(detached, reference, cfg.variant, manual)
    run = Run(cfg, dataset, detached, reference, manual, local)
    run.nodes = judge(detached, manual, reference, local, cfg.variant)
    return run
