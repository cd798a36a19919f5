"""One check of a network: forward, autograd, the manual backward, and one comparison per gradient.

    >>> from ninja_core import check, Config
    >>> run = check()                         # the lecture's MLP, float32, chain: 26 gradients
    >>> run                                   # in Jupyter: the cmp table
    >>> run.figure("h")                       # plotly Figure: value, manual, autograd, |diff|
    >>> check(Config(net="wavenet"))          # the lecture's WaveNet: 51 gradients
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .backward import Grads, both_passes, local_backward
from .compare import Comparison, compare
from .config import Config
from .data import Dataset, load_dataset
from .i18n import german, tr
from .nets import Network, generator, get_net
from .tape import Tape, Values


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
    net: Network  # the network of config.net
    tape: Tape  # its forward pass with the local backward, for this config
    data: Dataset
    values: Values  # forward values (detached)
    autograd: Grads  # autograd's gradients
    manual: Grads  # the hand-written backward pass
    local: Grads  # each step alone, fed autograd's upstream gradient
    nodes: dict[str, NodeResult] = field(default_factory=dict)  # in backward (cmp table) order
    constants: dict[str, Any] = field(default_factory=dict)  # the network's numbers the formulas use (n, ...)

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
        """The minibatch as text: each context and the character it should predict."""
        return self.net.batch_text(self.values["Xb"], self.values["Yb"], self.data.vocab.chars)

    def table(self) -> str:
        """The lecture's cmp table as plain text, loss first."""
        lines = [f"loss {self.loss:.4f}   ({self.config.net}, {self.config.dtype}, {self.config.variant})"]
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
        caption = html.escape(f"loss {self.loss:.4f} · {self.config.net} · {self.config.dtype} · {self.config.variant} · "
                              + ", ".join(f"{v} {k}" for k, v in self.counts.items()))
        return f"<table><caption>{caption}</caption>{head}{''.join(rows)}</table>"

    def tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(value, manual gradient, autograd gradient) of a node."""
        return self.values[name], self.manual.get(name), self.autograd.get(name)

    def figure(self, name: str) -> Any:
        """A plotly Figure of four heatmaps: value, manual gradient, autograd gradient, |diff|."""
        import plotly.graph_objects as go

        from .display import node_view
        from .figures import node_figure

        value, manual, reference = self.tensors(name)
        view = node_view(value, manual, reference, with_stats=False, axes=self.net.axes(name, value.dim()))
        return go.Figure(node_figure(name, value, manual, reference, view=view))

    def graph(self) -> dict[str, Any]:
        """The forward graph: parameters, the minibatch, every step's node, and the forward edges."""
        tape = self.tape
        nodes = [{"name": p, "kind": "param"} for p in tape.params]
        nodes += [{"name": d, "kind": "data"} for d in tape.data]
        nodes += [{"name": s.out, "kind": "loss" if s.out == tape.loss else "intermediate"} for s in tape.steps]
        return {"nodes": nodes, "edges": [list(e) for e in tape.edges]}


german({
    "values differ: maxdiff {maxdiff:.3g}, yet this node's own step is {local} given autograd's upstream "
    "gradient: the difference comes from upstream":
        "Werte verschieden: maxdiff {maxdiff:.3g}, doch der eigene Schritt dieses Knotens ist {local}, wenn er "
        "Autograds Gradienten von oben bekommt: der Unterschied kommt von oben",
    "{said}; its relative error {relerr:.1e} is the size of float32 rounding, which torch.allclose's atol 1e-8 "
    "does not absorb where entries are near 0":
        "{said}; sein relativer Fehler {relerr:.1e} hat die Größe der float32-Rundung, die torch.allclose mit "
        "atol 1e-8 dort nicht auffängt, wo Einträge nahe 0 sind",
})
# A relative error this small between a correct step's result and autograd's is float32 rounding: a wrong
# formula is off by a term or a factor (relative errors of 1e-3 .. 1), rounding by a few ulps (~1e-7).
ROUNDING_RELERR = 1e-5


def _inherited(end_to_end: Comparison, local: Comparison, dtype: torch.dtype) -> Comparison:
    """A mismatch whose own step is right (its local check passes) says so: the cause is upstream. In
    float32 with a relative error <= ROUNDING_RELERR it is rounding that allclose's absolute tolerance
    misses near 0, and the status is "approx" (its `approx` field stays allclose's False)."""
    if end_to_end.status != "mismatch" or local.status not in ("exact", "approx") or end_to_end.maxdiff is None:
        return end_to_end
    said = tr("values differ: maxdiff {maxdiff:.3g}, yet this node's own step is {local} given autograd's upstream "
              "gradient: the difference comes from upstream", maxdiff=end_to_end.maxdiff, local=local.status)
    if dtype == torch.float32 and end_to_end.relerr is not None and end_to_end.relerr <= ROUNDING_RELERR:
        said = tr("{said}; its relative error {relerr:.1e} is the size of float32 rounding, which torch.allclose's "
                  "atol 1e-8 does not absorb where entries are near 0", said=said, relerr=end_to_end.relerr)
        # the status says what the learner should conclude: a right formula, rounding (not red); the
        # `approx` field stays allclose's own answer, as the lecture's cmp prints it
        return dataclasses.replace(end_to_end, status="approx", message=said)
    return dataclasses.replace(end_to_end, message=said)


def judge_nodes(tape: Tape, values: Values, manual: Grads, reference: Grads, local: Grads,
                variant: str) -> dict[str, NodeResult]:
    """Compare every gradient of the tape, end to end and locally, in cmp-table order."""
    steps = tape.producers
    fused_by = {b.wrt: b.name for b in tape.blocks(variant).values()}
    skipped_by = tape.skipped(variant)
    results: dict[str, NodeResult] = {}
    for name in tape.backward_order:
        is_param = name in tape.params
        end_to_end = compare(manual.get(name), reference.get(name))
        # local_backward hands back the manual gradient itself where it would recompute the same bits
        reused = name in local and local[name] is manual.get(name)
        local_cmp = end_to_end if reused else compare(local.get(name), reference.get(name))
        end_to_end = _inherited(end_to_end, local_cmp, values[name].dtype)
        results[name] = NodeResult(
            name=name,
            kind="param" if is_param else "intermediate",
            shape=tuple(values[name].shape),
            forward="" if is_param else f"{name} = {steps[name].forward}",
            formula=tape.node_formula(name, variant),
            notes=tuple(tape.node_notes(name, variant)),
            fused=fused_by.get(name),
            skipped_by=skipped_by.get(name),
            end_to_end=end_to_end,
            local=local_cmp,
        )
    return results


def check(config: Config | None = None, data: Dataset | str | Path | None = None,
          params: dict[str, torch.Tensor] | None = None) -> Run:
    """Forward + autograd + manual backward + one comparison per gradient, for one config.

    `params` replaces the initial parameters (e.g. trained ones); the minibatch is still drawn
    from the config's generator after the parameter draws, so it does not change. Raises
    ConfigError for a config the network refuses, DataError for an unusable word list.
    """
    cfg = config or Config()
    net = get_net(cfg.net)
    tape = net.tape(cfg)
    dataset = data if isinstance(data, Dataset) else load_dataset(data, net.context_length(cfg))
    if dataset.block_size != net.context_length(cfg):  # same words, contexts of the network's length
        dataset = load_dataset(dataset.path, net.context_length(cfg))
    if params is None and cfg.train_steps > 0:  # gradients of the network after N manual-backward training steps
        from .train import trained_params  # imported on use: only a check of a trained network needs it

        params = trained_params(cfg, cfg.train_steps, dataset)
    g = generator(cfg)
    initial = net.init_params(cfg, dataset.vocab.size, g)
    if params is not None:
        initial = {k: v.detach().to(device=initial[k].device, dtype=initial[k].dtype).clone()
                   for k, v in params.items()}
    Xb, Yb = net.batch(cfg, dataset, g)
    return run_tape(cfg, net, tape, dataset, initial, Xb, Yb)


def run_tape(cfg: Config, net: Network, tape: Tape, dataset: Dataset, params: dict[str, torch.Tensor],
             Xb: torch.Tensor, Yb: torch.Tensor) -> Run:
    """The tape on these parameters and this minibatch (Xb (B, T), Yb (B,) or (B, T)): forward, autograd,
    the manual backward, the local checks and one comparison per gradient. `check` draws what it
    passes from the config; a notebook's judge passes the learner's own."""
    constants = net.constants(cfg, Xb)
    detached, reference, manual = both_passes(tape, params, Xb, Yb, constants, cfg.variant)
    local = local_backward(tape, detached, reference, cfg.variant, manual)
    run = Run(cfg, net, tape, dataset, detached, reference, manual, local, constants=constants)
    run.nodes = judge_nodes(tape, detached, manual, reference, local, cfg.variant)
    return run
