"""The tasks an evaluation scores: (space, task, architectures with accuracies, metadata).

``as_tasks`` accepts a benchmark file (zcp HDF5, read by ``zcproxies.benchdata``) or benchmark
name (``zcp data list``), a loaded ``Benchmark``, ``BenchmarkTask``s or ``EvalTask``s, and
``None`` for the embedded default benchmark; this is the only place that knows the benchmark
format.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zcproxies.benchdata import Benchmark, BenchmarkTask, load_benchmark
from zcproxies.benchdata.registry import resolve_benchmark
from zcproxies.errors import UnknownName
from zcproxies.spaces import get_space

TaskSource = str | os.PathLike[str] | Benchmark | Iterable[Any] | None


@dataclass(frozen=True)
class EvalTask:
    """One (space, task) table: NASLib arch keys and the accuracy they are ranked against."""

    space: str
    task: str
    frame: pd.DataFrame  # columns "arch" (NASLib key strings) and ``target``
    target: str = "val_accuracy"
    higher_is_better: bool = True  # False for losses: the accuracy is negated for ranking
    dataset: str = ""  # minibatch dataset; "" -> the space task's own
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the benchmark file it came from (hidden from workers)
    seeds: np.ndarray | None = field(default=None, repr=False, compare=False)  # (N, S) per seed

    @property
    def key(self) -> str:
        """``space/task``."""
        return f"{self.space}/{self.task}"

    def accuracy(self, rows: np.ndarray) -> np.ndarray:
        """The ranking target of ``rows`` (higher is better)."""
        values = self.frame[self.target].to_numpy(dtype=np.float64)[rows]
        return values if self.higher_is_better else -values

    def seed_accuracy(self, rows: np.ndarray) -> np.ndarray | None:
        """The ranking target of ``rows`` per training seed (N, S), or None when the benchmark
        has no per-seed values of its target (the noise ceiling is then unknown)."""
        if self.seeds is None:
            return None
        values = self.seeds[rows]
        return values if self.higher_is_better else -values


def from_benchmark_task(table: BenchmarkTask, path: Path | None = None) -> EvalTask:
    """An ``EvalTask`` from a table of ``zcproxies.benchdata``."""
    metadata = {"source": table.source, "units": table.units, **table.attrs}
    if table.protocol is not None:
        metadata["protocol"] = table.protocol
    return EvalTask(
        table.space,
        table.task,
        table.frame,
        table.target,
        table.higher_is_better,
        table.dataset,
        metadata,
        path,
        table.seeds.get(table.target),
    )


def as_tasks(source: TaskSource) -> list[EvalTask]:
    """The tasks of ``source`` (see module doc), with canonical space names, each key once."""
    if source is None or isinstance(source, str | os.PathLike):
        path = resolve_benchmark(source)  # a file, a benchmark name, None: the embedded one
        source = [
            from_benchmark_task(t, path.resolve()) for t in load_benchmark(path).tasks.values()
        ]
    elif isinstance(source, Benchmark):
        path = source.path.resolve() if source.path else None
        source = [from_benchmark_task(t, path) for t in source.tasks.values()]
    tasks = []
    for item in source:
        task = from_benchmark_task(item) if isinstance(item, BenchmarkTask) else item
        if not isinstance(task, EvalTask):
            raise TypeError(f"not a task: {type(item).__name__} (give EvalTask or BenchmarkTask)")
        space = get_space(task.space)
        tasks.append(replace(task, space=space.name, task=space.task(task.task).name))
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys) or not tasks:
        raise ValueError(f"tasks must be non-empty and distinct, got {keys}")
    return tasks


def select_tasks(tasks: list[EvalTask], keys: Iterable[str] | None) -> list[EvalTask]:
    """The tasks named by ``keys`` (``space/task``, space aliases allowed, e.g. ``nb201/cifar10``),
    in the benchmark's order; all of them for None. An unknown key is a ValueError listing the
    benchmark's tasks."""
    if keys is None:
        return tasks
    wanted = set()
    available = ", ".join(t.key for t in tasks)
    for key in keys:
        space, _, task = key.strip().partition("/")
        try:
            spec = get_space(space)
            wanted.add(f"{spec.name}/{spec.task(task).name if task else ''}")
        except UnknownName:
            raise ValueError(
                f"--tasks: unknown task {key!r}; the benchmark has: {available}"
            ) from None
    chosen = [t for t in tasks if t.key in wanted]
    missing = wanted - {t.key for t in chosen}
    if missing or not chosen:
        raise ValueError(
            f"--tasks: {', '.join(sorted(missing)) or 'nothing'} not in the benchmark; "
            f"it has: {available}"
        )
    return chosen


def sample_rows(task: EvalTask, n: int, seed: int) -> np.ndarray:
    """``min(n, rows)`` distinct row indices drawn with a generator seeded by (seed, task)."""
    rows = len(task.frame)
    rng = np.random.default_rng([seed, zlib.crc32(task.key.encode())])
    return np.sort(rng.choice(rows, size=min(n, rows), replace=False))


def arch_seed(seed: int, arch_key: str) -> int:
    """The seed of one architecture's initialisation and proxy RNGs, from (run seed, arch):
    the same architecture gets the same weights whatever it is sampled with."""
    digest = hashlib.sha256(f"{seed}:{arch_key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
