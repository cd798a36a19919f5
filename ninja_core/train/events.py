"""What a training run reports: its events as they happen, and the result at the end.

Every event has `kind` and `to_dict()` (JSON-ready; the web stream sends exactly that). `TrainResult`
is what `train(...)` returns: a compact `repr` and an HTML table for notebooks, like `Run`.
"""

from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .config import TrainConfig
    from .model import TrainedModel


@dataclass(frozen=True)
class ProgressEvent:
    kind: ClassVar[str] = "progress"
    step: int  # optimizer steps done
    steps: int  # steps of the whole run
    loss: float  # mean minibatch loss over the steps since the previous progress event
    lr: float  # learning rate of the last step
    steps_per_s: float  # over the steps since the previous progress event

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class AuditEvent:
    """Manual vs autograd gradients of one minibatch, taken with the parameters after `step` updates
    (step 0 = at initialisation), before the update they drive."""

    kind: ClassVar[str] = "audit"
    step: int
    max_rel_diff: dict[str, float]  # per parameter: max |manual - autograd| / scale
    max_abs_diff: dict[str, float]  # per parameter: max |manual - autograd|
    scale: float  # the largest |autograd gradient| entry over all parameters of this step
    # Why one scale for all: a gradient that is zero in exact arithmetic (the MLP's b1: batchnorm
    # subtracts the mean, so b1 cancels) is rounding noise on both sides (~1e-9), and dividing by
    # its own size would report ~1 for two equally right answers. Against the step's scale it is ~1e-7.

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    @property
    def worst(self) -> tuple[str, float]:
        """(parameter, max_rel_diff) of the parameter furthest from autograd."""
        name = max(self.max_rel_diff, key=lambda k: self.max_rel_diff[k])
        return name, self.max_rel_diff[name]


@dataclass(frozen=True)
class StatsEvent:
    """The lecture's health checks of a run, after the update of step `step`."""

    kind: ClassVar[str] = "stats"
    step: int  # optimizer steps done
    update_ratio: dict[str, float]  # log10(std(lr * grad) / std(param)) per parameter; ~-3 is healthy
    saturation: float  # fraction of the last minibatch's tanh outputs with |h| > 0.97 (NaN: no tanh)
    lr: float
    saturation_by_node: dict[str, float] = field(default_factory=dict)  # the same per tanh node (WaveNet: h1, h2, h3)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class DoneEvent:
    kind: ClassVar[str] = "done"
    train_loss: float  # over the whole split, batchnorm calibrated on the training split (NaN: empty split)
    val_loss: float
    test_loss: float
    seconds: float  # time spent in training, calibration, evaluation and sampling (not in the consumer)
    steps: int  # optimizer steps done (fewer than asked when stopped)
    steps_per_s: float  # optimizer steps per second of the training loop (audits included when on)
    samples: list[str]  # names sampled from the trained model
    stopped: bool  # should_stop() ended the run early
    model: TrainedModel = field(repr=False, compare=False)  # not part of to_dict(): tensors
    cpu_seconds: float = math.nan  # the same span in the thread's CPU time (not inflated by other processes)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "train_loss": self.train_loss, "val_loss": self.val_loss,
                "test_loss": self.test_loss, "seconds": self.seconds, "cpu_seconds": self.cpu_seconds,
                "steps": self.steps, "steps_per_s": self.steps_per_s, "samples": list(self.samples),
                "stopped": self.stopped}


TrainEvent = ProgressEvent | AuditEvent | StatsEvent | DoneEvent


def _loss(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4f}"


@dataclass(frozen=True, repr=False)
class TrainResult:
    config: TrainConfig
    model: TrainedModel
    train_loss: float
    val_loss: float
    test_loss: float
    steps: int
    seconds: float
    steps_per_s: float
    samples: list[str]
    audit: list[AuditEvent]
    stopped: bool
    cpu_seconds: float = math.nan  # `seconds` in the thread's CPU time

    def to_dict(self) -> dict[str, Any]:
        """The CLI's `train --json` object."""
        return {"train_loss": self.train_loss, "val_loss": self.val_loss, "test_loss": self.test_loss,
                "steps": self.steps, "seconds": self.seconds, "cpu_seconds": self.cpu_seconds,
                "steps_per_s": self.steps_per_s,
                "samples": list(self.samples), "audit": [a.to_dict() for a in self.audit],
                "stopped": self.stopped, "config": self.config.to_dict()}

    def summary(self) -> str:
        """Two or three lines: losses and speed, the audit's worst difference, the samples."""
        cfg = self.config
        lines = [f"{cfg.net}: train {_loss(self.train_loss)} | val {_loss(self.val_loss)} | test {_loss(self.test_loss)}"
                 f"   ({self.steps} steps{' (stopped)' if self.stopped else ''} in {self.seconds:.1f} s "
                 f"({self.cpu_seconds:.1f} s CPU) with evaluation and samples, {self.steps_per_s:.0f} steps/s in the loop)"]
        if self.audit:
            step, (name, rel) = max(((a.step, a.worst) for a in self.audit), key=lambda x: x[1][1])
            lines.append(f"audit: {len(self.audit)} checks against autograd; worst max relative difference "
                         f"{rel:.2e} ({name}, step {step})")
        if self.samples:
            lines.append("samples: " + " ".join(self.samples))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<TrainResult {self.summary()}>"

    def _repr_html_(self) -> str:
        cfg = self.config
        e = html.escape
        head = e(f"{cfg.net} · {cfg.steps} steps · batch {cfg.batch_size} · {cfg.optimizer} lr {cfg.lr:g} → "
                 f"{cfg.lr_decayed:g} · {cfg.dtype} · seed {cfg.seed}")
        rows = [f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in (
            ("train / val / test loss", f"{_loss(self.train_loss)} / {_loss(self.val_loss)} / {_loss(self.test_loss)}"),
            ("steps", f"{self.steps}{' (stopped)' if self.stopped else ''}"),
            ("time", f"{self.seconds:.1f} s ({self.cpu_seconds:.1f} s CPU) with evaluation and samples · "
                     f"{self.steps_per_s:.0f} steps/s in the training loop"),
            ("samples", e(" ".join(self.samples)) or "–"),
        )]
        if self.audit:
            params = list(self.audit[0].max_rel_diff)
            audit_head = "<tr><th>step</th>" + "".join(f"<th><code>{e(p)}</code></th>" for p in params) + "</tr>"
            audit_rows = "".join(
                f"<tr><td>{a.step}</td>" + "".join(f"<td>{a.max_rel_diff[p]:.1e}</td>" for p in params) + "</tr>"
                for a in self.audit)
            rows.append(f"<tr><th>audit (max relative difference, manual vs autograd)</th><td><table>{audit_head}"
                        f"{audit_rows}</table></td></tr>")
        return f"<table><caption>{head}</caption>{''.join(rows)}</table>"
