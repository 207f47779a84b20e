"""Shared fixtures: the shared-data directory, skipped where absent unless ZCP_REQUIRE_SHARED=1."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from zcproxies.data import FallbackWarning, get_batch
from zcproxies.paths import shared_data_dir

# One intra-op thread: the suite runs many tiny forward passes, where threads only add overhead
# (and oversubscribe a loaded 2-core machine).
torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``shared``-marked tests without ../shared; in CI (ZCP_REQUIRE_SHARED=1) fail instead."""
    if shared_data_dir().is_dir():
        return
    if os.environ.get("ZCP_REQUIRE_SHARED") == "1":
        return  # the ``shared_dir`` fixture fails these tests loudly
    skip = pytest.mark.skip(reason=f"shared data not found at {shared_data_dir()}")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Path of ../shared/data (or $ZCP_SHARED_DATA); fails when required but missing."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.fail(f"shared data required (ZCP_REQUIRE_SHARED=1) but missing: {path}")
    return path


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread for a module's tests (``pytestmark = usefixtures("one_thread")``),
    restored after: in-process code may have set more, and on a shared, oversubscribed CPU two
    threads run small convs many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cifar_batch(shared_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """64 seeded CIFAR-10 test images (NAS-Bench-201's normalisation) and their labels."""
    with warnings.catch_warnings():  # the shared npz may stand in for the official pickles
        warnings.simplefilter("ignore", FallbackWarning)
        batch = get_batch("cifar10", 64, seed=0, split="test")
    return batch.x, batch.y
