"""A drop-in for the lecture's `cmp(name, dt, t)`: the same signature and output line, and what it missed.

    from ninja_core import cmp
    cmp("dh", dh, h)
    # dh              | exact: True  | approx: True  | maxdiff: 0.0 | exact | exact: bit for bit what autograd computed

The lecture's cmp compared with `==` and `allclose`, which broadcast (a (64,) gradient passed for a
(1, 64) one: karpathy/nn-zero-to-hero #59, PR #36), and crashed with a TypeError when `t.grad` was
None (the seed notebook's never-retained bnvar). This one checks the shape first, never raises, and
ends the line with the status and one diagnosis.

What it can see: `dt` and `t.grad`, and -- the choice made here -- the namespace it is called from
(the caller's globals, i.e. the notebook's, and its locals when cmp is called inside a function).
When that namespace holds a network judge() can rebuild (the same search and the same cached run as
judge(); built once for a whole cell of cmp lines), the diagnosis is the dojo's full one against
autograd on the tape (factors named n, n-1, a missing accumulation branch, ...), a None `t.grad` is
replaced by the tape's autograd gradient of that node (with a line saying why it was None), and a
name that does not match `t` (the seed's `cmp("dh", dh, zprebn)`) or a `dt` that is another node's
gradient (its da) is said. Without one, the diagnosis uses only the dojo's checks that need no run:
shapes (keepdim, transposed, broadcast), the sign, a constant factor, where the entries differ.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..compare import Comparison, compare
from ..dojo.diagnose import close, constant_factor, positive, shape_hints, shape_reason, where_pattern
from ..dojo.judge import judge_value
from ..i18n import german, localize, tr
from .namespace import JudgeError
from .rerun import Rebuilt, rebuild

log = logging.getLogger(__name__)
PASSING = ("exact", "approx")

german({
    "{variable}.grad is None: autograd keeps .grad only for leaf tensors; call {variable}.retain_grad() before "
    "loss.backward()":
        "{variable}.grad ist None: Autograd behält .grad nur für Blatt-Tensoren; ruf {variable}.retain_grad() vor "
        "loss.backward() auf",
    "{variable}.grad is None: {variable} does not require grad":
        "{variable}.grad ist None: {variable} verlangt keinen Gradienten",
    "{variable}.grad is None: has loss.backward() run since {variable} was made?":
        "{variable}.grad ist None: lief loss.backward(), seit {variable} berechnet wurde?",
    "judged against the tape's autograd gradient of {node} instead": "stattdessen gegen Autograds Gradienten von {node} "
                                                                     "auf dem Band bewertet",
    "t is a {kind}, not a tensor: pass the forward tensor whose gradient this is, e.g. cmp('h', dh, h)":
        "t ist ein {kind}, kein Tensor: gib den Vorwärts-Tensor, dessen Gradient das ist, z. B. cmp('h', dh, h)",
    "the name says d{named} but t is {variable} ({node}): for d{named} pass {names}; against {named}'s gradient "
    "yours is {status}":
        "der Name sagt d{named}, aber t ist {variable} ({node}): für d{named} gib {names} an; gegen den Gradienten "
        "von {named} ist deins {status}",
    "your {name} is the gradient of {other} ({names}), not of {node}":
        "dein {name} ist der Gradient von {other} ({names}), nicht von {node}",
})


@dataclass(frozen=True)
class CmpLine:
    """One cmp line: the lecture's columns, the status and the diagnosis."""

    name: str
    comparison: Comparison  # dt against t.grad (or the tape's gradient when t.grad is None)
    diagnosis: list[str]
    node: str | None  # the network's node, when the namespace holds a network

    @property
    def status(self) -> str:
        return self.comparison.status

    def text(self, lang: str = "en") -> str:
        c = self.comparison
        maxdiff = "-" if c.maxdiff is None else f"{c.maxdiff}"
        first = localize(self.diagnosis[0], lang) if self.diagnosis else ""
        more = "; ".join(localize(d, lang) for d in self.diagnosis[1:2])
        tail = f"{first}; {more}" if more else first
        return f"{self.name:15s} | exact: {c.exact!s:5s} | approx: {c.approx!s:5s} | maxdiff: {maxdiff} | {c.status} | {tail}"

    def __str__(self) -> str:
        return self.text()


def cmp(s: str, dt: Any, t: Any, *, lang: str = "en") -> None:
    """Print the lecture's cmp line for `dt` against `t.grad`, with the status and a diagnosis.

    `s` is the name shown (the lecture passes "logprobs", the seed notebook "dcounts"); `dt` the
    hand-written gradient, `t` the forward tensor whose `.grad` autograd filled. Never raises: a None,
    a wrong type or a wrong shape is a finding on the line. `lang`: "en" or "de" for the diagnosis."""
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    namespace: dict[str, Any] = {}
    if caller is not None:
        namespace = {**caller.f_globals, **caller.f_locals}
    del frame, caller
    try:
        line = cmp_line(s, dt, t, namespace)
    except Exception as exc:  # a check of the learner's work must never crash their cell
        log.exception("cmp failed")
        print(f"{s!s:15s} | cmp could not check this: {type(exc).__name__}: {exc}")
        return
    print(line.text(lang))


def _rebuilt(namespace: Mapping[str, Any]) -> Rebuilt | None:
    try:
        found = rebuild(namespace)
    except JudgeError:
        return None
    except Exception:
        log.exception("rebuilding the notebook's network failed")
        return None
    return found if found.forward_matches else None


def _names_of(t: Any, namespace: Mapping[str, Any]) -> list[str]:
    return [k for k, v in namespace.items() if v is t and not k.startswith("_")]


def cmp_line(s: str, dt: Any, t: Any, namespace: Mapping[str, Any] | None = None) -> CmpLine:
    """The line cmp prints, as data. `namespace` (the notebook's) lets it use the rebuilt network."""
    namespace = namespace or {}
    name = str(s)
    if isinstance(dt, torch.Tensor):
        dt = dt.detach()
    if not isinstance(t, torch.Tensor):
        return CmpLine(name, compare(dt, None), [tr("t is a {kind}, not a tensor: pass the forward tensor whose gradient "
                                                    "this is, e.g. cmp('h', dh, h)", kind=type(t).__name__)], None)
    rebuilt = _rebuilt(namespace) if namespace else None
    variable = next(iter(_names_of(t, namespace)), "t")
    tape = rebuilt.run.tape if rebuilt is not None else None
    t_node = next((tape.resolve(v) for v in _names_of(t, namespace) if tape.resolve(v)), None) if tape else None
    named = None
    if tape is not None:
        named = tape.resolve(name) or (tape.resolve(name[1:]) if name.startswith("d") else None)
    node = t_node or named
    with warnings.catch_warnings():  # torch warns on a non-leaf's .grad; the line says what it means instead
        warnings.simplefilter("ignore", UserWarning)
        reference = t.grad
    notes: list[str] = []
    if reference is None:
        notes.append(_why_none(t, variable))
        if rebuilt is not None and node is not None and node in rebuilt.run.autograd:
            reference = rebuilt.run.autograd[node]
            notes.append(tr("judged against the tape's autograd gradient of {node} instead", node=node))
    comparison = compare(dt, reference)
    if reference is None:
        return CmpLine(name, comparison, notes, node)
    if rebuilt is None or node is None:
        return CmpLine(name, comparison, [*_free(name, dt, reference, comparison), *notes], node)
    run = rebuilt.run
    if named is not None and t_node is not None and named != t_node and named in run.autograd:
        mine, _ = judge_value(run, named, dt)
        names = ", ".join(n for n in _names_of_node(run, named, namespace)) or named
        return CmpLine(name, comparison, [tr("the name says d{named} but t is {variable} ({node}): for d{named} pass "
                                             "{names}; against {named}'s gradient yours is {status}", named=named,
                                             variable=variable, node=t_node, names=names, status=mine.status),
                                          *notes], node)
    found: list[str] = list(judge_value(run, node, dt)[1])
    if comparison.status not in PASSING:
        found = [*_other_node(run, name, node, dt), *found]
    elif not notes:
        found = list(positive(comparison, reference.dtype, reference))
    return CmpLine(name, comparison, [*found, *notes] if comparison.status not in PASSING else [*notes, *found], node)


def _names_of_node(run: Any, node: str, namespace: Mapping[str, Any]) -> list[str]:
    """The learner's variables for a node's forward tensor (h, or the seed's a)."""
    names = [node, *(a for a, target in run.tape.aliases.items() if target == node)]
    return [n for n in names if isinstance(namespace.get(n), torch.Tensor)]


def _why_none(t: torch.Tensor, variable: str) -> str:
    if not t.requires_grad:
        return tr("{variable}.grad is None: {variable} does not require grad", variable=variable)
    if not t.is_leaf and not t.retains_grad:
        return tr("{variable}.grad is None: autograd keeps .grad only for leaf tensors; call {variable}.retain_grad() "
                  "before loss.backward()", variable=variable)
    return tr("{variable}.grad is None: has loss.backward() run since {variable} was made?", variable=variable)


def _other_node(run: Any, name: str, node: str, dt: Any) -> list[str]:
    """dt is right, but for another node (the seed notebook's da holds d(apreact), not d(a))."""
    if not isinstance(dt, torch.Tensor):
        return []
    for other, expected in run.autograd.items():
        if other in (node, run.tape.loss) or tuple(expected.shape) != tuple(dt.shape):
            continue
        if compare(dt, expected).status in PASSING:
            return [tr("your {name} is the gradient of {other} ({names}), not of {node}", name=name, other=other,
                       names=" or ".join(run.tape.gradient_names(other)), node=node)]
    return []


def _free(name: str, dt: Any, reference: torch.Tensor, comparison: Comparison) -> list[str]:
    """The dojo's diagnoses that need no run: shapes, sign, transposition, a constant factor, where."""
    if comparison.status in PASSING:
        return list(positive(comparison, reference.dtype, reference))
    if not isinstance(dt, torch.Tensor):
        return [comparison.message]
    y, e = dt.to(reference.dtype), reference
    node = name[1:] if name.startswith("d") else name
    if comparison.status == "shape_mismatch":
        return [shape_reason(tuple(y.shape), tuple(e.shape), node), *shape_hints(y, e)]
    if not bool(torch.isfinite(y).all()):
        return [comparison.message]
    if not bool(y.any()):
        return [tr("all zeros, where autograd's is not: was the gradient never written (torch.zeros_like and nothing "
                   "added), or multiplied by something that is 0?")]
    if close(y, -e):
        return [tr("the sign is flipped: yours ≈ -autograd's (check the minus signs, e.g. d(a - b)/db = -1)")]
    if y.dim() == 2 and y.shape[0] == y.shape[1] and close(y, e.T):
        return [tr("transposed: yours.T matches autograd's")]
    c = constant_factor(y, e)
    if c is not None:
        return [tr("off by a constant factor: yours ≈ {c:.4g} × autograd's", c=c)]
    from ..compare import ATOL, RTOL

    mismatch = (y - e).abs() > ATOL + RTOL * e.abs()
    pattern = where_pattern(mismatch) if y.dim() else None
    if pattern is not None:
        return [pattern]
    return [tr("differs at {bad} of {total} entries: maxdiff {maxdiff:.3g}, relative error {relerr:.2g}",
               bad=int(mismatch.sum()), total=mismatch.numel(), maxdiff=comparison.maxdiff or 0.0,
               relerr=comparison.relerr or 0.0)]
