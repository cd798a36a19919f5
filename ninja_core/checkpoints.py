"""Trained weights computed once and kept: a directory of checkpoint files that every process able to
see it shares (the worker processes of one server; the replicas of a deployment on a shared volume).

    store = CheckpointStore("/var/lib/backprop-ninja/checkpoints")
    key = checkpoint_key({"seed": 42, "n_hidden": 200, "train_steps": 200_000}, fingerprint="5b1f3c2a")
    params = store.load(key)                      # None when absent, damaged or not ours
    with store.lock(key) as mine:                 # single flight across processes
        if mine and store.load(key) is None:
            store.save(key, train(...), meta={...})

Generic: the key is a hash of whatever fields decide the weights (the caller passes them, e.g. a
config's `to_dict()` without the fields that only change how a run is checked) plus a fingerprint of
the data; the store names no network and no field.

Safety: a file is read with `torch.load(weights_only=True)` (tensors and plain data, never arbitrary
pickled objects) and must carry this module's format marker, version and its own key; anything else
-- truncated, random bytes, another program's file -- is treated as absent and moved aside, never
raised to the caller. Files are written to a temporary name and renamed (atomic on POSIX), so a
reader never sees half a file, and a crash leaves at most a stray temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

FORMAT = "backprop-ninja-checkpoint"
VERSION = 1
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024  # the largest network is a few MB; anything far bigger is not ours
ZIP_MAGIC = b"PK\x03\x04"

log = logging.getLogger("ninja_core.checkpoints")

Params = dict[str, torch.Tensor]


def checkpoint_key(fields: Mapping[str, Any], fingerprint: str) -> str:
    """A stable name for the weights that `fields` (JSON-able values) and the data produce.

    Returns 32 hex digits (128 bits of SHA-256 over the canonical JSON of the fields, the data
    fingerprint and this format's version), safe as a file name. Raises TypeError for fields that
    are not JSON-able."""
    canonical = json.dumps({"fields": dict(fields), "data": fingerprint, "version": VERSION}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _valid_key(key: str) -> bool:
    return 8 <= len(key) <= 64 and all(c in "0123456789abcdef" for c in key)


class CheckpointStore:
    """A directory of `<key>.pt` files plus `<key>.lock` files for single-flight computation.

    `max_bytes` bounds the directory: after a write, the oldest checkpoints (by modification time,
    i.e. first written) are removed until the total fits. Counters (`stats()`) are per process."""

    def __init__(self, root: str | Path, max_bytes: int = 1 << 30) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._stats = {"hits": 0, "misses": 0, "writes": 0, "damaged": 0}

    def path(self, key: str) -> Path:
        if not _valid_key(key):
            raise ValueError(f"not a checkpoint key: {key[:80]!r}")
        return self.root / f"{key}.pt"

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def load(self, key: str) -> Params | None:
        """The parameters saved under `key` (fresh CPU tensors), or None when there is no usable file.
        A damaged file is moved aside (`.damaged`) and logged, so the weights are computed again."""
        doc = self.load_document(key)
        return None if doc is None else doc["params"]

    def load_document(self, key: str) -> dict[str, Any] | None:
        """{"params": {name: tensor}, "meta": {...}} as saved, or None (see load)."""
        p = self.path(key)
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            self._count("misses")
            return None
        reason = self._problem(p, size)
        doc: Any = None
        if reason is None:
            try:
                doc = torch.load(p, map_location="cpu", weights_only=True)
            except FileNotFoundError:  # removed (pruned) between stat and read
                self._count("misses")
                return None
            except Exception as exc:  # torch.load raises many kinds (UnpicklingError, RuntimeError, EOFError, ...)
                reason = f"torch cannot read it ({type(exc).__name__})"
        if reason is None:
            reason = self._check(doc, key)
        if reason is not None:
            self._set_aside(p, reason)
            self._count("misses")
            return None
        self._count("hits")
        return {"params": dict(doc["params"]), "meta": dict(doc.get("meta") or {})}

    @staticmethod
    def _problem(p: Path, size: int) -> str | None:
        if size == 0:
            return "empty file"
        if size > MAX_CHECKPOINT_BYTES:
            return f"{size} bytes is over {MAX_CHECKPOINT_BYTES}"
        try:
            with p.open("rb") as f:
                if not f.read(4).startswith(ZIP_MAGIC):  # torch.save writes a zip archive
                    return "not written by torch.save"
            if not zipfile.is_zipfile(p):
                return "truncated (incomplete zip archive)"
        except OSError as exc:
            return f"unreadable ({exc.strerror})"
        return None

    @staticmethod
    def _check(doc: Any, key: str) -> str | None:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            return f"no {FORMAT!r} format marker"
        if doc.get("version") != VERSION:
            return f"format version {doc.get('version')!r}, expected {VERSION}"
        if doc.get("key") != key:
            return "saved under another key"
        params = doc.get("params")
        if not isinstance(params, dict) or not params:
            return "no parameters"
        if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in params.items()):
            return "parameters must be named tensors"
        return None

    def _set_aside(self, p: Path, reason: str) -> None:
        self._count("damaged")
        log.warning("checkpoint %s is unusable (%s); it will be computed again", p.name, reason)
        with contextlib.suppress(OSError):
            os.replace(p, p.with_suffix(".damaged"))

    def save(self, key: str, params: Mapping[str, torch.Tensor], meta: Mapping[str, Any] | None = None) -> Path:
        """Write `params` (and JSON-able `meta`: how they were made) under `key`, atomically.
        Raises OSError when the directory cannot be written (full disk, read-only volume)."""
        p = self.path(key)
        doc = {"format": FORMAT, "version": VERSION, "key": key, "saved_at": time.time(),
               "meta": dict(meta or {}),
               "params": {name: t.detach().to("cpu").clone().contiguous() for name, t in params.items()}}
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.root)
        try:
            os.fchmod(fd, 0o644)  # readable by the other replicas' users on a shared volume (mkstemp makes 0600)
            with os.fdopen(fd, "wb") as f:
                torch.save(doc, f)
                f.flush()
                os.fsync(f.fileno())  # the rename must not publish a file whose bytes are not on disk
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._count("writes")
        self.prune()
        return p

    def prune(self) -> int:
        """Remove the oldest checkpoints until the directory holds at most max_bytes; returns how many."""
        entries = []
        for f in self.root.glob("*.pt"):
            with contextlib.suppress(OSError):
                st = f.stat()
                entries.append((st.st_mtime, st.st_size, f))
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, f in sorted(entries):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                f.unlink()
                removed += 1
            total -= size
        return removed

    @contextlib.contextmanager
    def lock(self, key: str, wait: bool = False) -> Iterator[bool]:
        """Hold the computation lock of `key` (an flock on `<key>.lock`, shared by every process that
        sees the directory, released by the kernel if the holder dies). Yields True when this caller
        holds it; with wait=False, False at once when another holder has it."""
        held = self.acquire(key, wait)
        try:
            yield held is not None
        finally:
            if held is not None:
                held.release()

    def acquire(self, key: str, wait: bool = False) -> FileLock | None:
        """The computation lock of `key` as an object to release later (see lock), or None when busy."""
        return FileLock.acquire(self.root / f"{key}.lock", wait)


class FileLock:
    """An exclusive flock on a file, held until release() (or until the process dies)."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, path: Path, wait: bool = False) -> FileLock | None:
        """None when another open file holds the lock (wait=False). Raises OSError when the file
        cannot be created."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        return cls(fd, path)

    def note(self, text: str) -> None:
        """Write a short note into the locked file (e.g. when its holder expects to finish), for
        others to read while it is held."""
        if self.fd is not None:
            data = text.encode()[:200]
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor of the open file drops its flock
            self.fd = None

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
