"""``batch_for_task``: the minibatch a search-space task is scored on, with explicit substitution.

When the task's dataset files are absent (``DataNotFound``; corrupt files still raise), the
first available of these stands in, resized to the task's input size, with a
``SubstitutionWarning`` and ``Batch.substitute_for`` set:
CIFAR-10 of the same split, CIFAR-10 test (the shared npz fallback), then scikit-learn digits of
the same split (candidates that cannot give the task's channel count are skipped; 1-channel
digits are replicated to 3). Labels keep their own class ids (0..9), already in range for every
10+-class head; a head with fewer classes gets ``y mod num_classes`` (see ``get_batch``).
"""

from __future__ import annotations

import dataclasses
import os
import warnings

from zcproxies.data.batch import Batch
from zcproxies.data.providers import get_batch, get_provider
from zcproxies.data.readers import DataNotFound
from zcproxies.spaces.base import Task


class SubstitutionWarning(UserWarning):
    """A task is scored on another dataset's images because its own are not available."""


def substitutes(split: str) -> tuple[tuple[str, str], ...]:
    """(dataset, split) candidates tried in order when a task's own data is missing."""
    return (("cifar10", split), ("cifar10", "test"), ("digits", split))


def batch_for_task(
    task: Task,
    size: int = 64,
    seed: int = 0,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    allow_substitute: bool = True,
) -> Batch:
    """The batch of ``task.dataset`` at ``task.input_shape`` with ``task.num_classes`` labels.

    Missing data raises ``DataNotFound`` unless ``allow_substitute`` (never silently).
    """
    options = {
        "size": size,
        "seed": seed,
        "root": root,
        "channels": task.input_shape[0],
        "input_size": task.input_shape[1:],
        "num_classes": task.num_classes,
    }
    try:
        return get_batch(task.dataset, split=split, **options)
    except DataNotFound as missing:
        if not allow_substitute:
            raise
        return _substitute(task, split, str(missing), options)


def _substitute(task: Task, split: str, missing: str, options: dict[str, object]) -> Batch:
    """The first available substitute, recorded in the batch and announced by a warning."""
    reasons = [missing]
    for dataset, sub_split in substitutes(split):
        same = (dataset, sub_split) == (task.dataset, split)
        if same or not get_provider(dataset).can_give(task.input_shape[0]):
            continue
        try:
            batch = get_batch(dataset, split=sub_split, **options)
        except DataNotFound as exc:
            reasons.append(str(exc))
            continue
        note = (
            f"{dataset}/{sub_split} stands in for {task.dataset}/{split} of task "
            f"{task.name!r}: {missing}"
        )
        warnings.warn(f"SUBSTITUTED DATA: {note}", SubstitutionWarning, stacklevel=3)
        return dataclasses.replace(
            batch, substitute_for=task.dataset, note="; ".join(filter(None, [batch.note, note]))
        )
    raise DataNotFound(
        "no data for task {!r} and no substitute: {}".format(task.name, " | ".join(reasons))
    )
