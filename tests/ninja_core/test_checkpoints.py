"""The checkpoint store: keys, atomic writes, damaged files treated as absent, single flight by lock."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import torch

from ninja_core.checkpoints import CheckpointStore, FileLock, checkpoint_key


def params() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"W1": torch.randn(3, 4, generator=g), "b1": torch.randn(4, generator=g)}


def test_key_depends_on_every_field_and_the_data_but_not_on_their_order() -> None:
    base = checkpoint_key({"seed": 1, "train_steps": 10}, "abcd1234")
    assert base == checkpoint_key({"train_steps": 10, "seed": 1}, "abcd1234")
    assert base != checkpoint_key({"seed": 2, "train_steps": 10}, "abcd1234")
    assert base != checkpoint_key({"seed": 1, "train_steps": 10}, "abcd1235")
    assert len(base) == 32 and all(c in "0123456789abcdef" for c in base)


def test_save_then_load_gives_the_same_tensors_and_meta(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    key = checkpoint_key({"seed": 1}, "x")
    assert store.load(key) is None
    store.save(key, params(), {"steps": 10})
    doc = store.load_document(key)
    assert doc is not None and doc["meta"] == {"steps": 10}
    assert all(torch.equal(doc["params"][k], v) for k, v in params().items())
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.pt"]  # no temporary file left behind
    assert store.stats() == {"hits": 1, "misses": 1, "writes": 1, "damaged": 0}


def test_damaged_or_foreign_files_are_absent_and_moved_aside(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    key = checkpoint_key({"seed": 1}, "x")
    path = store.path(key)
    for content in (b"", b"random bytes", b"PK\x03\x04 truncated zip"):
        path.write_bytes(content)
        assert store.load(key) is None and not path.exists() and path.with_suffix(".damaged").exists()
    store.save(key, params())
    path.write_bytes(path.read_bytes()[:-100])  # cut short
    assert store.load(key) is None
    torch.save({"format": "something-else", "params": params()}, path)  # a torch file, not ours
    assert store.load(key) is None
    other = checkpoint_key({"seed": 2}, "x")
    store.save(other, params())
    path.write_bytes(store.path(other).read_bytes())  # ours, but saved under another key
    assert store.load(key) is None
    assert store.stats()["damaged"] == 6


class Boom:
    def __reduce__(self) -> tuple[object, ...]:
        return (print, ("this must never run",))


def test_a_pickle_with_code_is_never_unpickled(tmp_path: Path, capsys: object) -> None:
    store = CheckpointStore(tmp_path)
    key = checkpoint_key({"seed": 1}, "x")
    store.save(key, params())
    # a torch file whose pickle would call print(): weights_only refuses it
    torch.save({"format": "backprop-ninja-checkpoint", "version": 1, "key": key, "params": params(), "x": Boom()},
               store.path(key), pickle_module=pickle)
    assert store.load(key) is None
    assert "this must never run" not in capsys.readouterr().out  # type: ignore[attr-defined]


def test_prune_keeps_the_directory_within_its_bytes(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, max_bytes=1 << 20)
    big = {"W": torch.zeros(100_000)}  # ~400 KB each
    keys = [checkpoint_key({"seed": i}, "x") for i in range(4)]
    for key in keys:
        store.save(key, big)
    assert sum(p.stat().st_size for p in tmp_path.glob("*.pt")) <= 1 << 20
    assert store.exists(keys[-1]) and not store.exists(keys[0])  # the oldest went first


def test_the_lock_is_exclusive_across_processes_and_freed_when_its_holder_dies(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    key = checkpoint_key({"seed": 1}, "x")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"), str(tmp_path / f"{key}.lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with store.lock(key) as mine:
            assert not mine  # another process computes it
        holder.kill()
        holder.wait(timeout=10)
        with store.lock(key) as mine:
            assert mine  # the kernel dropped the dead holder's lock
            assert FileLock.acquire(tmp_path / f"{key}.lock") is None  # and now this process holds it
    finally:
        holder.kill()
        holder.wait(timeout=10)
