"""Shared fixtures. Tests mirror the packages: tests/ninja_core, tests/app, tests/e2e."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from ninja_core.config import Config
from ninja_core.data import Dataset, load_dataset
from ninja_core.run import Run, check


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="session")
def default_run(dataset: Dataset) -> Run:
    return check(Config(), dataset)


@pytest.fixture(scope="session")
def fused_run(dataset: Dataset) -> Run:
    return check(Config(variant="fused"), dataset)


@pytest.fixture(scope="session")
def gpt_run(dataset: Dataset) -> Run:
    """The GPT at its defaults, float32 chain (read only: several modules share it)."""
    return check(Config(net="gpt"), dataset)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """As the server and training run: one torch thread (two collapse when another process wants a core).
    A module opts in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
