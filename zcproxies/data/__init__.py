"""Minibatch data: one fixed, fingerprinted batch per (dataset, split, size, seed, input size).

``get_batch("cifar10", 64, seed=0)`` reads the original files under the data root (``root``,
``$ZCP_DATA_ROOT`` or the shared data directory); ``batch_for_task(task)`` does so for a
search-space task and substitutes, loudly, when the task's dataset is unavailable.
"""

from zcproxies.data.batch import Batch
from zcproxies.data.providers import (
    DATASETS,
    ROOT_ENV,
    FallbackWarning,
    Provider,
    data_root,
    get_batch,
    get_provider,
)
from zcproxies.data.readers import DataNotFound
from zcproxies.data.tasks import SubstitutionWarning, batch_for_task

__all__ = [
    "DATASETS",
    "ROOT_ENV",
    "Batch",
    "DataNotFound",
    "FallbackWarning",
    "Provider",
    "SubstitutionWarning",
    "batch_for_task",
    "data_root",
    "get_batch",
    "get_provider",
]
