"""Shared fixtures. Tests mirror the packages: tests/ninja_core, tests/app, tests/e2e."""

from __future__ import annotations

import pytest

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
