"""Shared fixtures: the shared-data directory, skipped where absent unless ZCP_REQUIRE_SHARED=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

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
