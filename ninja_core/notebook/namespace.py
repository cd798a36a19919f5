"""Find a network in a learner's namespace: which one, at which sizes, and their tensors (generic).

`find(namespace)` looks for each network's parameters and minibatch under the names its tape uses
(`Tape.params`, `Tape.data`: the lecture's C, W1, ..., Xb, Yb), in the order of `nets.NETS` (the MLP
first). The sizes come from the tensors themselves: every size the parameters' shapes depend on is
the one value that makes `Network.param_shapes` give exactly their shapes; batch_size and the context
length are Xb's (B, T); a size no parameter shows (the GPT's n_head) is the learner's own variable of
that name if there is one, else the value that makes the forward pass give the shapes of the learner's
forward tensors, else the network's default. float32 or float64 and the device are the parameters'.

Nothing here changes the learner's tensors: they are only read (shapes, dtypes, `.detach()`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..config import Config, ConfigError
from ..i18n import german, tr
from ..nets import NETS, Network, get_net
from ..tape import Tape

german({
    "no network found in this namespace: judge() looks for a network's parameters and minibatch under the "
    "lecture's names. {nets}":
        "kein Netz in diesem Namensraum gefunden: judge() sucht die Parameter und den Minibatch eines Netzes "
        "unter den Namen der Vorlesung. {nets}",
    "{net} needs {names}; {problems}": "{net} braucht {names}; {problems}",
    "missing: {names}": "es fehlt: {names}",
    "{name} has shape {got} where {net} at these sizes needs {want}":
        "{name} hat die Form {got}, wo {net} bei diesen Größen {want} braucht",
    "no sizes of {net} give these shapes: {shapes}": "keine Größen von {net} ergeben diese Formen: {shapes}",
    "{name} is a {kind}, not a tensor": "{name} ist ein {kind}, kein Tensor",
    "{names} must hold integer indices, got {dtype}": "{names} muss ganzzahlige Indizes enthalten, nicht {dtype}",
    "your parameters mix dtypes ({dtypes}): judge() runs float32 or float64, one for all":
        "deine Parameter mischen Datentypen ({dtypes}): judge() rechnet float32 oder float64, einen für alle",
    "your parameters are {dtype}: judge() runs float32 or float64":
        "deine Parameter sind {dtype}: judge() rechnet float32 oder float64",
    "your parameters are on several devices ({devices})": "deine Parameter liegen auf mehreren Geräten ({devices})",
    "your {field} of {value} is outside what {net} runs here: {reason}":
        "dein {field} von {value} liegt außerhalb dessen, was {net} hier rechnet: {reason}",
})

DTYPES = {torch.float32: "float32", torch.float64: "float64"}
SMALL_RANGE = 16  # a size whose whole range is this short is searched over all of it (GPT's n_layer 1..6)


class JudgeError(ValueError):
    """The namespace holds no network judge() can rebuild; the message says what was looked for."""


@dataclass(frozen=True)
class Found:
    """A network in a namespace: its config (sizes, dtype, device as the learner's tensors have them)
    and the learner's own tensors (never copied or changed here)."""

    net: Network
    config: Config
    tape: Tape
    params: dict[str, torch.Tensor]  # the tape's parameter name -> the learner's tensor
    Xb: torch.Tensor  # (B, T) their minibatch's contexts
    Yb: torch.Tensor  # their targets: (B,) for the MLP and WaveNet, (B*T,) for the GPT
    forward: dict[str, tuple[str, torch.Tensor]]  # node -> (the learner's variable, their tensor)
    vocab_size: int
    inferred: dict[str, str]  # size -> how it was found ("shapes", "your n_embd", "forward", "default")


def tensor(namespace: Mapping[str, Any], name: str) -> torch.Tensor | None:
    value = namespace.get(name)
    return value if isinstance(value, torch.Tensor) else None


def forward_tensors(tape: Tape, namespace: Mapping[str, Any]) -> dict[str, tuple[str, torch.Tensor]]:
    """The learner's forward tensors: each step's output under its own name, else under an alias
    (the seed notebook's zprebn, apreact, a), in forward order."""
    found: dict[str, tuple[str, torch.Tensor]] = {}
    aliases: dict[str, list[str]] = {}
    for alias, target in tape.aliases.items():
        aliases.setdefault(target, []).append(alias)
    for step in tape.steps:
        for name in (step.out, *aliases.get(step.out, [])):
            value = tensor(namespace, name)
            if value is not None:
                found[step.out] = (name, value)
                break
    return found


def _ints(namespace: Mapping[str, Any], name: str) -> int | None:
    value = namespace.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dims(tensors: list[torch.Tensor]) -> set[int]:
    return {int(d) for t in tensors for d in t.shape}


def _shapes_depend_on(net: Network, size: str, vocab: int) -> bool:
    """Whether the parameters' shapes change with `size` (the GPT's n_head and every batch_size do not)."""
    spec = net.size(size)
    if spec is None or spec.lo == spec.hi:
        return False
    base = Config(net=net.name)
    shapes = net.param_shapes(base, vocab)
    for other in (spec.lo, spec.hi, spec.default + 1, spec.default - 1):
        if other == spec.default or not spec.lo <= other <= spec.hi:
            continue
        kwargs: dict[str, Any] = {size: other}
        try:
            changed = Config(net=net.name, **kwargs)
        except ConfigError:
            continue
        if net.param_shapes(changed, vocab) != shapes:
            return True
    return False


def _configs(net: Network, candidates: dict[str, list[int]], fixed: dict[str, Any],
             refused: list[ConfigError]) -> Iterator[Config]:
    """Every valid Config over the candidates; the refusals are collected (the first few) to explain
    a namespace whose sizes are out of range."""
    names = list(candidates)
    for values in itertools.product(*(candidates[n] for n in names)):
        kwargs: dict[str, Any] = {**fixed, **dict(zip(names, values, strict=True))}
        try:
            yield Config(net=net.name, **kwargs)
        except ConfigError as exc:
            if len(refused) < 8:
                refused.append(exc)


def _match(net: Network, namespace: Mapping[str, Any]) -> tuple[Found | None, str]:
    """This network in the namespace, or (None, why not)."""
    default = Config(net=net.name)
    needed = list(net.param_shapes(default, 27)) + list(net.tape(default).data)
    # the parameters' names may depend on sizes (a GPT's layers): look at every name the namespace has
    present = {k: v for k, v in namespace.items() if isinstance(v, torch.Tensor)}
    Xb, Yb = tensor(namespace, "Xb"), tensor(namespace, "Yb")
    data_names = net.tape(default).data
    if Xb is None or Yb is None or any(tensor(namespace, d) is None for d in data_names):
        missing = [n for n in needed if n not in present]
        return None, tr("{net} needs {names}; {problems}", net=net.name, names=", ".join(needed),
                        problems=tr("missing: {names}", names=", ".join(missing)))
    held = [n for n in net.param_shapes(default, 27) if n in present]
    if not held:
        missing = [n for n in needed if n not in present]
        return None, tr("{net} needs {names}; {problems}", net=net.name, names=", ".join(needed),
                        problems=tr("missing: {names}", names=", ".join(missing)))
    vocab_candidates = sorted(_dims([present[n] for n in held]))
    learner_forward = [t for _, t in forward_tensors(net.tape(default), namespace).values()]
    dims = _dims([*(present[n] for n in held), Xb, *learner_forward])
    fixed: dict[str, Any] = {}
    candidates: dict[str, list[int]] = {}
    later: list[str] = []  # sizes the parameters' shapes do not show
    inferred: dict[str, str] = {}
    for spec in net.sizes:
        own = _ints(namespace, spec.name)
        if spec.lo == spec.hi:
            fixed[spec.name] = spec.lo
            inferred[spec.name] = "fixed"
        elif spec.name == "batch_size":
            fixed[spec.name] = int(Xb.shape[0]) if Xb.dim() else 0
            inferred[spec.name] = "Xb"
        elif not _shapes_depend_on(net, spec.name, vocab_candidates[-1]):
            later.append(spec.name)
        elif own is not None:
            candidates[spec.name] = [own]
            inferred[spec.name] = f"your {spec.name}"
        else:
            span = range(spec.lo, spec.hi + 1)
            candidates[spec.name] = list(span) if len(span) <= SMALL_RANGE else sorted(d for d in dims if d in span)
            inferred[spec.name] = "shapes"
    matches: list[tuple[Config, int]] = []
    refused: list[ConfigError] = []
    for vocab in vocab_candidates:
        for cfg in _configs(net, candidates, {**fixed, **{n: _ints(namespace, n) or 0 for n in later}}, refused):
            shapes = net.param_shapes(cfg, vocab)
            if all(n in present and tuple(present[n].shape) == s for n, s in shapes.items()) \
                    and tuple(Xb.shape) == (cfg.batch_size, net.context_length(cfg)):
                matches.append((cfg, vocab))
    if not matches:
        known = [n for n in needed if n in present]
        missing = [n for n in needed if n not in present]
        theirs = [e for e in refused if _ints(namespace, e.field) is not None or e.field == "batch_size"]
        if missing:
            problem = tr("missing: {names}", names=", ".join(missing))
        elif theirs:  # their own n_hidden = 2000, or a batch of 1: say which size and the range
            value = _ints(namespace, theirs[0].field) if theirs[0].field != "batch_size" else fixed["batch_size"]
            problem = tr("your {field} of {value} is outside what {net} runs here: {reason}", field=theirs[0].field,
                         value=value, net=net.name, reason=theirs[0].message)
        else:
            problem = tr("no sizes of {net} give these shapes: {shapes}", net=net.name,
                         shapes=", ".join(f"{n} {tuple(present[n].shape)}" for n in known))
        return None, tr("{net} needs {names}; {problems}", net=net.name, names=", ".join(needed), problems=problem)
    # the most parameters matched first (a GPT of 2 layers over its first layer alone), then the smallest sizes
    matches.sort(key=lambda m: -len(net.param_shapes(*m)))
    cfg, vocab = matches[0]
    cfg, how = _later_sizes(net, cfg, later, namespace, vocab)
    inferred.update(how)
    tape = net.tape(cfg)
    params = {n: present[n] for n in tape.params}
    return Found(net, cfg, tape, params, Xb, Yb, forward_tensors(tape, namespace), vocab, inferred), ""


def _later_sizes(net: Network, cfg: Config, later: list[str], namespace: Mapping[str, Any],
                 vocab: int) -> tuple[Config, dict[str, str]]:
    """Sizes the parameters do not show: the learner's variable of that name, else the value whose
    forward pass gives the learner's forward tensors' shapes, else the network's default."""
    how: dict[str, str] = {}
    for name in later:
        own = _ints(namespace, name)
        if own is not None:
            how[name] = f"your {name}"
            continue
        spec = net.size(name)
        assert spec is not None
        theirs = forward_tensors(net.tape(cfg), namespace)
        options = [v for v in range(spec.lo, min(spec.hi, spec.lo + 64) + 1)]
        best: tuple[int, int] | None = None
        for value in options:
            try:
                trial = cfg.replace(**{name: value})
            except ConfigError:
                continue
            if not theirs:
                break
            score = _shape_score(net, trial, namespace, theirs, vocab)
            if best is None or score > best[0] or (score == best[0] and value == spec.default):
                best = (score, value)
        if best is not None and best[0] > 0:
            cfg = cfg.replace(**{name: best[1]})
            how[name] = "forward"
        else:
            how[name] = "default"
    return cfg, how


def _shape_score(net: Network, cfg: Config, namespace: Mapping[str, Any],
                 theirs: dict[str, tuple[str, torch.Tensor]], vocab: int) -> int:
    """How many of the learner's forward tensors have the shape the tape gives at `cfg` (shapes only:
    the forward runs on zeros of their minibatch's shape, under no_grad)."""
    from ..backward import forward

    tape = net.tape(cfg)
    Xb = namespace["Xb"]
    try:
        with torch.no_grad():
            params = {n: torch.zeros(s) for n, s in net.param_shapes(cfg, vocab).items()}
            values = forward(tape, params, torch.zeros_like(Xb), torch.zeros_like(namespace["Yb"]), net.constants(cfg, Xb))
    except Exception:  # a size that does not fit their minibatch at all
        return -1
    return sum(1 for node, (_, t) in theirs.items() if node in values and tuple(values[node].shape) == tuple(t.shape))


def find(namespace: Mapping[str, Any], net: str | None = None) -> Found:
    """The first network of `nets.NETS` (or `net`) whose parameters and minibatch the namespace holds,
    with its sizes, dtype and device as the learner's tensors have them.

    Raises JudgeError saying, for each network, what it needs and what is missing or mis-shaped;
    and when the tensors are there but unusable: mixed or non-float dtypes, several devices, non-integer
    Xb or Yb, or sizes beyond a network's ranges (ConfigError's message)."""
    nets = [get_net(net)] if net is not None else list(NETS.values())
    reasons: list[str] = []
    for candidate in nets:
        found, why = _match(candidate, namespace)
        if found is not None:
            return _settled(found)
        reasons.append(why)
    raise JudgeError(tr("no network found in this namespace: judge() looks for a network's parameters and minibatch "
                        "under the lecture's names. {nets}", nets=" ".join(f"{r}." for r in reasons)))


def _settled(found: Found) -> Found:
    """The found network with its dtype and device set from the learner's parameters."""
    dtypes = sorted({str(p.dtype).replace("torch.", "") for p in found.params.values()})
    if len(dtypes) > 1:
        raise JudgeError(tr("your parameters mix dtypes ({dtypes}): judge() runs float32 or float64, one for all",
                            dtypes=", ".join(dtypes)))
    dtype = next(iter(found.params.values())).dtype
    if dtype not in DTYPES:
        raise JudgeError(tr("your parameters are {dtype}: judge() runs float32 or float64", dtype=dtypes[0]))
    devices = sorted({p.device.type for p in found.params.values()})
    if len(devices) > 1:
        raise JudgeError(tr("your parameters are on several devices ({devices})", devices=", ".join(devices)))
    for name in found.tape.data:
        t = found.Xb if name == "Xb" else found.Yb
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise JudgeError(tr("{names} must hold integer indices, got {dtype}", names=name,
                                dtype=str(t.dtype).replace("torch.", "")))
    try:
        cfg = found.config.replace(dtype=DTYPES[dtype], device=devices[0])
    except ConfigError as exc:
        raise JudgeError(exc.message) from None
    return Found(found.net, cfg, found.tape, found.params, found.Xb, found.Yb, found.forward, found.vocab_size,
                 found.inferred)

