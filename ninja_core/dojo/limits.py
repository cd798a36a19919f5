"""How much a learner's program may do, and the running account that enforces it.

Torch ops cannot be interrupted, so time is bounded in two ways: the interpreter checks the
deadline before every statement, loop iteration and call, and the size caps keep any single
op short (a 10-million-element op takes ~30 ms here; a matmul of 1e10 flops ~60 ms).

The source limit fits the network (`source_limits`): twice its largest reference -- the longest
formula of one node, the whole exercise cell at the sizes that make it longest (a GPT's cell grows
with n_layer, 4 KB to 19 KB) -- and never below 4 KiB for a node and 16 KiB for a cell.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import torch

from ..i18n import german, tr
from .errors import DojoError

if TYPE_CHECKING:
    from ..nets import Network

german({
    "stopped: the time limit of {seconds:g} s is up": "angehalten: die Zeitgrenze von {seconds:g} s ist erreicht",
    "more than {limit:,} loop iterations in total": "mehr als {limit:,} Schleifendurchläufe insgesamt",
    "{what} would have {numel:,} elements; the limit is {limit:,}":
        "{what} hätte {numel:,} Elemente; die Grenze ist {limit:,}",
    "{what} would take {flops:.2g} floating-point operations; the limit is {limit:.0g}":
        "{what} bräuchte {flops:.2g} Gleitkommaoperationen; die Grenze ist {limit:.0g}",
    "{what} would bring the tensors alive at once to {mib:,.0f} MiB; the limit is {limit:,.0f} MiB":
        "{what} brächte die gleichzeitig lebenden Tensoren auf {mib:,.0f} MiB; die Grenze ist {limit:,.0f} MiB",
    "a tensor": "ein Tensor",
    "the tensors alive at once exceed {limit:,.0f} MiB": "die gleichzeitig lebenden Tensoren übersteigen {limit:,.0f} MiB",
    "an integer with {bits} bits; the limit is {limit}": "eine ganze Zahl mit {bits} Bits; die Grenze ist {limit}",
})


@dataclass(frozen=True)
class Limits:
    source_bytes: int = 4096
    iterations: int = 100_000  # loop and comprehension iterations, across the whole program
    elements: int = 10_000_000  # per tensor, checked before allocating where the size is known
    # Per matmul. 1e10 admits the lecture's largest legitimate product at the biggest config
    # (dembcat = dhprebn @ W1.T: 2·4096·1024·512 ≈ 4.3e9) and is ~60 ms of float32 here.
    flops: float = 1e10
    seconds: float = 2.0
    depth: int = 100  # AST nesting; keeps both ast.parse and the interpreter far from Python's recursion limit
    int_bits: int = 64  # Python ints beyond ±2**64 are refused (9**9**9 would take minutes)
    sequence_items: int = 100_000  # items in a list/tuple, counted through nesting
    # Bytes of tensors the program itself creates that are alive at once (the scope's own copies of
    # the run's tensors are not counted: the run's config already bounds them).
    live_bytes: int = 1 << 30
    output_chars: int = 4000  # print() output kept


DEFAULT_LIMITS = Limits()

NODE_SOURCE_FLOOR = 4096  # bytes: one node's formula with comments (the MLP's longest formula is 118 bytes)
CELL_SOURCE_FLOOR = 16 * 1024  # bytes: a whole MLP or WaveNet cell (1.2 KB, 2.5 KB) with the learner's comments
SOURCE_HEADROOM = 2  # times the reference: a learner's own spelling, comments and prints
SOURCE_STEP = 4096  # limits are whole 4 KiB


@dataclass(frozen=True)
class SourceLimits:
    """How long a learner's code may be for one network, in bytes of UTF-8, and what that is based on."""

    node: int  # one node's code (check_node, POST /api/runs/{id}/check)
    cell: int  # a whole exercise cell (grade_cell, POST /api/runs/{id}/grade)
    reference_node: int  # the longest reference formula of one node, over both variants
    reference_cell: int  # the network's reference exercise cell at the sizes that make it longest


def _round_up(size: int) -> int:
    return -(-size // SOURCE_STEP) * SOURCE_STEP


@lru_cache(maxsize=16)
def source_limits(net: Network) -> SourceLimits:
    """The source limits for `net`: SOURCE_HEADROOM times its longest reference (node formula, whole
    cell at every size's maximum, where the tape is longest), rounded up to 4 KiB, at least the floors.
    Measured: mlp 1,240 bytes -> 16 KiB, wavenet 2,513 -> 16 KiB, gpt (n_layer 6) 19,020 -> 40 KiB."""
    from ..config import Config, ConfigError  # here: config resolves sizes through the networks
    from ..tape import VARIANTS

    configs = [Config(net=net.name)]
    maxima: dict[str, Any] = {s.name: s.hi for s in net.sizes}
    try:
        configs.append(Config(net=net.name, **maxima))
    except ConfigError:  # a rule across sizes refuses all maxima at once: each alone, then
        for name, hi in maxima.items():
            try:
                configs.append(Config(net=net.name, **{name: hi}))
            except ConfigError:
                continue
    tapes = [net.tape(cfg) for cfg in configs]
    cell = max(len(tape.exercise_cell().encode()) for tape in tapes)
    node = max(len(tape.node_formula(name, variant).encode())
               for tape in tapes for name in tape.backward_order for variant in VARIANTS)
    return SourceLimits(node=max(NODE_SOURCE_FLOOR, _round_up(SOURCE_HEADROOM * node)),
                        cell=max(CELL_SOURCE_FLOOR, _round_up(SOURCE_HEADROOM * cell)),
                        reference_node=node, reference_cell=cell)


def node_limits(net: Network, base: Limits = DEFAULT_LIMITS) -> Limits:
    """`base` with the source limit for one node of `net`."""
    return replace(base, source_bytes=source_limits(net).node)


def cell_limits(net: Network, base: Limits = DEFAULT_LIMITS) -> Limits:
    """`base` with the source limit for a whole exercise cell of `net`."""
    return replace(base, source_bytes=source_limits(net).cell)


@dataclass
class Budget:
    """One program's running account: deadline, iterations, live tensor memory."""

    limits: Limits
    deadline: float = 0.0
    iterations: int = 0
    live_bytes: int = 0
    _live: dict[int, int] = field(default_factory=dict)  # id of a tracked tensor -> its bytes

    @classmethod
    def start(cls, limits: Limits, deadline: float | None = None) -> Budget:
        """A fresh account; `deadline` (time.monotonic) lets several programs share one clock."""
        return cls(limits, deadline if deadline is not None else time.monotonic() + limits.seconds)

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise DojoError("timeout", tr("stopped: the time limit of {seconds:g} s is up", seconds=self.limits.seconds))

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.iterations:
            raise DojoError("limit", tr("more than {limit:,} loop iterations in total", limit=self.limits.iterations))
        self.tick()

    def check_elements(self, numel: int, what: str) -> None:
        if numel > self.limits.elements:
            raise DojoError("limit", tr("{what} would have {numel:,} elements; the limit is {limit:,}", what=what, numel=numel,
                                        limit=self.limits.elements))

    def check_flops(self, flops: float, what: str) -> None:
        if flops > self.limits.flops:
            raise DojoError("limit", tr("{what} would take {flops:.2g} floating-point operations; the limit is {limit:.0g}",
                                        what=what, flops=flops, limit=self.limits.flops))

    def check_new_bytes(self, nbytes: int, what: str) -> None:
        """Before allocating `nbytes` more, where the size is known."""
        if self.live_bytes + nbytes > self.limits.live_bytes:
            raise DojoError("limit", tr("{what} would bring the tensors alive at once to {mib:,.0f} MiB; the limit is "
                                        "{limit:,.0f} MiB", what=what, mib=(self.live_bytes + nbytes) / 2**20,
                                        limit=self.limits.live_bytes / 2**20))

    def track(self, t: torch.Tensor) -> None:
        """Count a tensor a call returned against the live-memory limit until it is freed.

        Views (t._base is set) share memory already counted; a tensor seen before is not counted
        twice (in-place ops return their input)."""
        key = id(t)  # by identity: a WeakSet would compare tensors with ==, which is elementwise
        if t._base is not None or key in self._live:
            return
        self.check_elements(t.numel(), tr("a tensor"))
        nbytes = t.numel() * t.element_size()
        if self.live_bytes + nbytes > self.limits.live_bytes:
            raise DojoError("limit", tr("the tensors alive at once exceed {limit:,.0f} MiB",
                                        limit=self.limits.live_bytes / 2**20))
        self._live[key] = nbytes
        self.live_bytes += nbytes
        release = weakref.finalize(t, self._release, key)  # runs when the tensor is freed, before its id is reused
        release.atexit = False  # nothing to release when the process ends

    def _release(self, key: int) -> None:
        self.live_bytes -= self._live.pop(key, 0)

    def check_int(self, value: int) -> int:
        if abs(value) >= 1 << self.limits.int_bits:
            raise DojoError("limit", tr("an integer with {bits} bits; the limit is {limit}", bits=value.bit_length(),
                                        limit=self.limits.int_bits))
        return value


@dataclass
class SharedClock:
    """One time limit for several executions (a cell and its per-node re-runs): only the time the
    learner's code runs counts, not the judging in between."""

    seconds: float
    spent: float = 0.0

    def budget(self, limits: Limits) -> Budget:
        """A fresh budget (iterations, memory) whose deadline is the time that is left."""
        return Budget.start(limits, time.monotonic() + max(0.0, self.seconds - self.spent))

    @contextmanager
    def running(self) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.spent += time.monotonic() - started
