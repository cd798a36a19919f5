"""Rebuild the learner's network on its tape from *their* parameters and minibatch, and check that their
forward tensors are the tape's (generic).

The run is `run.check`'s, on copies of their tensors: the tape's forward with autograd (every
intermediate retains its gradient), autograd as the independent reference, the tape's own manual
backward beside it. Their tensors are only read: `.detach().clone()` makes the copies, so their
values, `.grad`, `requires_grad`, `retain_grad` and autograd graph stay as they were.

Runs are cached by the identity and version (`Tensor._version`, which every in-place change bumps) of
the learner's parameters and minibatch, so cmp() on every line of a cell builds one run.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..compare import compare
from ..data import Dataset, Vocab
from ..i18n import german, tr
from ..run import Run, run_tape
from .namespace import Found, find

german({
    "bit for bit the tape's": "bitgenau die des Bands",
    "the tape's up to rounding (maxdiff {maxdiff:.2g})": "die des Bands bis auf Rundung (maxdiff {maxdiff:.2g})",
    "differs from the tape's by up to {maxdiff:.3g}": "weicht um bis zu {maxdiff:.3g} von der des Bands ab",
    "shape {got} where the tape's is {want}": "Form {got}, wo die des Bands {want} ist",
    "{dtype} where the tape computes {want}": "{dtype}, wo das Band {want} rechnet",
})

CACHED = 2  # runs kept: the namespace judged now, and one before it


@dataclass(frozen=True)
class ForwardCheck:
    """One of the learner's forward tensors against the tape's value of that node."""

    node: str
    variable: str  # their name for it (zprebn for hprebn)
    status: str  # "exact", "approx", "differs", "shape", "dtype"
    maxdiff: float | None
    message: str
    root: bool  # it differs although every input of its step that they hold is the tape's (a cause, not a consequence)
    forward: str  # the tape's forward line for this node

    @property
    def same(self) -> bool:
        return self.status in ("exact", "approx")


@dataclass(frozen=True)
class Rebuilt:
    found: Found
    run: Run
    forward: tuple[ForwardCheck, ...]  # every forward tensor they hold, in forward order

    @property
    def forward_matches(self) -> bool:
        return all(f.same for f in self.forward)


def dataset_from(namespace: Mapping[str, Any], found: Found) -> Dataset:
    """A Dataset for the run: their training split under the lecture's names (Xtr, Ytr) when it fits
    the network, else their minibatch itself; their vocabulary (itos, idx2char, stoi, char2idx, chars)
    when one has vocab_size entries, else placeholders. Used for the other minibatches the dojo draws
    and for the characters diagnoses name."""
    net, cfg = found.net, found.config
    T = net.context_length(cfg)
    Xtr, Ytr = namespace.get("Xtr"), namespace.get("Ytr")
    usable = (isinstance(Xtr, torch.Tensor) and isinstance(Ytr, torch.Tensor) and Xtr.dim() == 2
              and Xtr.shape[1] == T and Ytr.dim() == 1 and Xtr.shape[0] == Ytr.shape[0] > T
              and not Xtr.is_floating_point() and not Ytr.is_floating_point())
    if usable:
        X, Y = Xtr.detach().to("cpu", torch.long), Ytr.detach().to("cpu", torch.long)  # type: ignore[union-attr]
    else:
        X, Y = found.Xb.detach().to("cpu", torch.long), found.Yb.detach().to("cpu", torch.long)
    words = namespace.get("words")
    word_list = tuple(w for w in words if isinstance(w, str)) if isinstance(words, list) else ()
    digest = hashlib.sha1(X.numpy().tobytes() + Y.numpy().tobytes()).hexdigest()[:16]
    empty = X[:0]
    return Dataset(f"<notebook {digest}>", word_list, Vocab(vocab_chars(namespace, found.vocab_size)), T,
                   X.clone(), Y.clone(), empty, Y[:0], empty, Y[:0])


def vocab_chars(namespace: Mapping[str, Any], size: int) -> tuple[str, ...]:
    """The vocabulary's characters in index order, from the learner's own tables (the lecture's itos and
    stoi, the seed notebook's idx2char and char2idx, or a list of the characters after '.')."""
    for name in ("itos", "idx2char", "stoi", "char2idx"):
        table = namespace.get(name)
        if not isinstance(table, dict) or len(table) != size:
            continue
        pairs = {v: k for k, v in table.items()} if name in ("stoi", "char2idx") else table
        if sorted(pairs) == list(range(size)) and all(isinstance(c, str) for c in pairs.values()):
            return tuple(pairs[i] for i in range(size))
    chars = namespace.get("chars")
    if isinstance(chars, list) and len(chars) == size - 1 and all(isinstance(c, str) for c in chars):
        return (".", *chars)
    return tuple(f"#{i}" for i in range(size))


def build(found: Found, data: Dataset) -> Run:
    """`run.check` on copies of the learner's parameters and minibatch (chain variant)."""
    params = {k: v.detach().clone() for k, v in found.params.items()}
    Xb, Yb = found.Xb.detach().clone(), found.Yb.detach().clone()
    return run_tape(found.config, found.net, found.tape, data, params, Xb, Yb)


def forward_checks(found: Found, run: Run) -> tuple[ForwardCheck, ...]:
    """Each forward tensor they hold against the tape's value; `root` marks those that differ while
    every input they hold of the same step agrees (the first wrong line, not its consequences)."""
    checks: dict[str, ForwardCheck] = {}
    producers = found.tape.producers
    for node, (variable, theirs) in found.forward.items():
        ours = run.values[node]
        t = theirs.detach()
        if tuple(t.shape) != tuple(ours.shape):
            status, maxdiff = "shape", None
            message = tr("shape {got} where the tape's is {want}", got=tuple(t.shape), want=tuple(ours.shape))
        elif t.dtype != ours.dtype and t.is_floating_point():
            status, maxdiff = "dtype", None
            message = tr("{dtype} where the tape computes {want}", dtype=str(t.dtype).replace("torch.", ""),
                         want=str(ours.dtype).replace("torch.", ""))
        else:
            c = compare(t.to(ours.device), ours)
            status = "exact" if c.status == "exact" else "approx" if c.status == "approx" else "differs"
            maxdiff = c.maxdiff
            message = tr("bit for bit the tape's") if status == "exact" else \
                tr("the tape's up to rounding (maxdiff {maxdiff:.2g})", maxdiff=maxdiff or 0.0) if status == "approx" \
                else tr("differs from the tape's by up to {maxdiff:.3g}", maxdiff=maxdiff if maxdiff is not None else
                        float("nan"))
        step = producers[node]
        inputs = [i for i in (*step.inputs, *step.reads) if i in checks]
        root = status not in ("exact", "approx") and all(checks[i].same for i in inputs)
        checks[node] = ForwardCheck(node, variable, status, maxdiff, message, root, f"{node} = {step.forward}")
    return tuple(checks.values())


_lock = threading.Lock()
_cache: OrderedDict[tuple[Any, ...], Rebuilt] = OrderedDict()  # holds their tensors: ids stay unique


def _key(found: Found, namespace: Mapping[str, Any]) -> tuple[Any, ...]:
    def mark(t: Any) -> tuple[int, int] | None:
        return (id(t), t._version) if isinstance(t, torch.Tensor) else None

    return (found.config, tuple(mark(t) for t in (*found.params.values(), found.Xb, found.Yb)),
            tuple((node, variable, mark(t)) for node, (variable, t) in found.forward.items()),
            mark(namespace.get("Xtr")), mark(namespace.get("Ytr")), found.vocab_size)


def rebuild(namespace: Mapping[str, Any], net: str | None = None) -> Rebuilt:
    """The learner's network rebuilt from their tensors, cached (see the module docstring). Raises
    JudgeError when the namespace holds no network it can rebuild."""
    found = find(namespace, net)
    key = _key(found, namespace)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    run = build(found, dataset_from(namespace, found))
    rebuilt = Rebuilt(found, run, forward_checks(found, run))
    with _lock:
        _cache[key] = rebuilt
        while len(_cache) > CACHED:
            _cache.popitem(last=False)
    return rebuilt
