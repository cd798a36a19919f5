"""Imported only by the training processes' forkserver (app/trainer.py): the server's word list is
loaded there once, and every training child forked from it starts with it in memory instead of
reading and encoding it again (0.3 s on a quiet machine, 2 s on a busy one -- most of a short
training's time). A child whose data differs (a test's own Settings) loads its own."""

from __future__ import annotations

import os
from pathlib import Path

from ninja_core.data import DataError, Dataset, load_dataset

DATASET: Dataset | None
try:
    DATASET = load_dataset(os.environ.get("NINJA_DATA_PATH") or None)
except (DataError, OSError):  # the server reports a bad word list itself, in one line
    DATASET = None


def dataset_for(path: str | Path) -> Dataset | str:
    """The preloaded dataset when it is the one at `path`, else the path (the caller loads it)."""
    if DATASET is not None and Path(DATASET.path).resolve() == Path(path).resolve():
        return DATASET
    return str(path)
