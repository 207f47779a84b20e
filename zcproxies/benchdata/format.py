"""The zcp benchmark file format (HDF5, version 1): ``write_benchmark`` and ``load_benchmark``.

One file holds any number of (search space, task) tables, each in the group ``/<space>/<task>``::

    /                       attrs: format="zcp-benchmark", format_version=1, created, generator
    /<space>/<task>/        attrs: space, task, source, units, higher_is_better, dataset, target,
                                   [protocol (JSON)], [any further scalar metadata]
        arch                (N,) variable-length UTF-8: the space's NASLib key (``space.encode``)
        val_accuracy        (N,) float64          the ranking target unless ``target`` says else
        test_accuracy       (N,) float64          optional
        params, flops       (N,) float64          optional, attr ``units``
        <column>_seeds      (N, S) float64        optional per-seed values of an accuracy column
        proxies/<name>      (N,) float64          optional reference proxy values (NaN allowed)

Every table is validated on write and on load (``DataError`` naming file, group and problem).
The full description is ``docs/benchmark_format.md``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from zcproxies.errors import DataError, InvalidArchitecture, UnknownName
from zcproxies.spaces import Arch, get_space

FORMAT_NAME = "zcp-benchmark"
FORMAT_VERSION = 1
ACCURACY_COLUMNS = ("val_accuracy", "test_accuracy")
COLUMNS = ("arch", *ACCURACY_COLUMNS, "params", "flops")  # every 1-D column, in file order
SEEDS_SUFFIX = "_seeds"
PROXIES_GROUP = "proxies"
# Task-group attributes with a fixed meaning; any other scalar attribute is kept in ``attrs``.
RESERVED_ATTRS = (
    "space",
    "task",
    "source",
    "units",
    "higher_is_better",
    "dataset",
    "target",
    "protocol",
)
REQUIRED_ATTRS = ("space", "task", "source", "units", "higher_is_better", "dataset", "target")

TaskKey = tuple[str, str]


@dataclass
class BenchmarkTask:
    """One (space, task) table: architectures, their accuracies and how they were obtained.

    ``frame`` has the columns ``arch`` (NASLib key strings) and ``target`` (``val_accuracy``
    unless the source only has test accuracies), optionally the other ``COLUMNS``.
    """

    space: str
    task: str
    frame: pd.DataFrame
    source: str  # citation and URL/file of the numbers
    units: str = "top-1 accuracy (%)"  # of the accuracy columns
    higher_is_better: bool = True
    dataset: str = ""  # minibatch dataset (``zcproxies.data``); "" -> the space task's dataset
    target: str = "val_accuracy"  # the column a proxy is ranked against
    seeds: dict[str, np.ndarray] = field(default_factory=dict)  # accuracy column -> (N, S)
    proxies: pd.DataFrame | None = None  # one column per reference proxy, rows as ``frame``
    protocol: dict[str, Any] | None = None  # training protocol, where the project trained them
    column_units: dict[str, str] = field(default_factory=dict)  # e.g. {"params": "M"}
    attrs: dict[str, Any] = field(default_factory=dict)  # further scalar metadata

    @property
    def key(self) -> TaskKey:
        """``(space, task)``, the key of this table in ``Benchmark.tasks``."""
        return self.space, self.task

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def accuracy(self) -> np.ndarray:
        """The ranking target column (float64)."""
        return self.frame[self.target].to_numpy(dtype=np.float64)

    @cached_property
    def archs(self) -> list[Arch]:
        """The architectures as values of the space (decoded once)."""
        return [_decode(self.space, key)[0] for key in self.frame["arch"]]

    def seed_kendall_tau(self, column: str | None = None) -> float:
        """Noise ceiling: mean Kendall-Tau (tau-b) over all pairs of seeds of ``column``.

        ``column`` defaults to the target; a table without 2+ seeds of it raises ``DataError``.
        """
        column = column or self.target
        values = self.seeds.get(column)
        if values is None or values.shape[1] < 2:
            raise DataError(
                f"{self.space}/{self.task}: no per-seed values of {column!r} "
                "(need at least 2 seeds)"
            )
        return seed_agreement(values)


def seed_agreement(values: np.ndarray) -> float:
    """Mean Kendall-Tau (tau-b) over all pairs of columns of ``values`` (N archs, S seeds)."""
    taus = [
        kendalltau(values[:, a], values[:, b]).statistic
        for a, b in itertools.combinations(range(values.shape[1]), 2)
    ]
    return float(np.mean(taus))


@dataclass
class Benchmark:
    """A loaded benchmark file: its file attributes and its tables keyed by (space, task)."""

    path: Path | None
    attrs: dict[str, Any]
    tasks: dict[TaskKey, BenchmarkTask]

    def task(self, space: str, task: str | None = None) -> BenchmarkTask:
        """The table of ``space`` (a name or alias) and ``task`` (``None``: its only task)."""
        name = get_space(space).name
        matches = [t for (s, tk), t in self.tasks.items() if s == name and task in (None, tk)]
        if len(matches) == 1:
            return matches[0]
        held = ", ".join(f"{s}/{t}" for s, t in self.tasks)
        if matches:
            raise UnknownName(
                f"{self.path}: {len(matches)} tables of {name}; name the task ({held})"
            )
        raise UnknownName(f"{self.path}: no table {name}/{task or '*'}; tables: {held}")


# ---- validation (shared by write and load) -------------------------------------------------------
def _fail(where: str, problem: str) -> DataError:
    return DataError(f"{where}: {problem}")


def _check_numbers(values: np.ndarray, name: str, where: str, finite: bool) -> np.ndarray:
    """``values`` as float64, refusing non-numbers and (when ``finite``) NaN/inf."""
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(where, f"dataset {name!r} is not numeric") from None
    if finite and not np.isfinite(values).all():
        bad = np.flatnonzero(~np.isfinite(values).reshape(len(values), -1).all(axis=1))
        raise _fail(
            where,
            f"dataset {name!r} has {len(bad)} non-finite value(s), first at row {int(bad[0])}",
        )
    return values


def validate_task(table: BenchmarkTask, where: str) -> BenchmarkTask:
    """``table`` normalised (canonical space name, float64 columns) or a ``DataError``.

    Checks: known space and task, required columns present, equal lengths, finite accuracies,
    params and flops (proxies may be NaN), every arch decodes in the space, no arch twice.
    Arch keys are rewritten in canonical form (``space.encode``, e.g. ``(0, 1, ...)``).
    """
    try:
        space = get_space(table.space)
        spec = space.task(table.task)
    except UnknownName as exc:
        raise _fail(where, str(exc)) from None
    if table.target not in ACCURACY_COLUMNS:
        raise _fail(
            where, f"target must be one of {', '.join(ACCURACY_COLUMNS)}, got {table.target!r}"
        )
    unknown = [c for c in table.frame.columns if c not in COLUMNS]
    if unknown:
        raise _fail(
            where,
            f"unexpected column(s) {', '.join(map(str, unknown))}; known: {', '.join(COLUMNS)}",
        )
    for name in ("arch", table.target):
        if name not in table.frame.columns:
            raise _fail(where, f"missing dataset {name!r}")
    n = len(table.frame)
    if n == 0:
        raise _fail(where, "the table has no rows")
    frame = pd.DataFrame(
        {"arch": [_arch_text(key, i, where) for i, key in enumerate(table.frame["arch"])]}
    )
    for name in COLUMNS[1:]:
        if name in table.frame.columns:
            frame[name] = _check_numbers(table.frame[name].to_numpy(), name, where, finite=True)
    seeds = {}
    for name, values in table.seeds.items():
        label = name + SEEDS_SUFFIX
        if name not in ACCURACY_COLUMNS:
            raise _fail(
                where,
                f"per-seed values of {name!r}: only {', '.join(ACCURACY_COLUMNS)} may have them",
            )
        values = _check_numbers(values, label, where, finite=True)
        if values.ndim != 2 or values.shape[0] != n or values.shape[1] < 1:
            raise _fail(
                where,
                f"length mismatch: dataset {label!r} has shape {values.shape}, "
                f"expected ({n}, seeds)",
            )
        seeds[name] = values
    proxies = None
    if table.proxies is not None:
        if len(table.proxies) != n:
            raise _fail(
                where, f"length mismatch: proxies have {len(table.proxies)} rows, arch has {n}"
            )
        proxies = pd.DataFrame(
            {
                str(name): _check_numbers(col.to_numpy(), f"proxies/{name}", where, finite=False)
                for name, col in table.proxies.items()
            }
        )
    frame["arch"] = _canonical_keys(space.name, frame["arch"], where)
    if table.protocol is not None:
        try:
            json.dumps(table.protocol)
        except (TypeError, ValueError) as exc:
            raise _fail(where, f"protocol is not JSON-serialisable: {exc}") from None
    clash = sorted(set(table.attrs) & set(RESERVED_ATTRS))
    if clash:
        raise _fail(where, f"attrs may not redefine {', '.join(clash)}")
    return BenchmarkTask(
        space.name,
        spec.name,
        frame,
        str(table.source),
        str(table.units),
        bool(table.higher_is_better),
        table.dataset or spec.dataset,
        table.target,
        seeds,
        proxies,
        table.protocol,
        dict(table.column_units),
        dict(table.attrs),
    )


def _arch_text(key: object, row: int, where: str) -> str:
    if isinstance(key, bytes):
        key = key.decode("utf-8")
    if not isinstance(key, str):
        raise _fail(where, f"arch row {row} is {type(key).__name__}, not a key string")
    return key


@lru_cache(maxsize=1 << 18)
def _decode(space_name: str, key: str) -> tuple[Arch, str]:
    """The arch of ``key`` and its canonical key string (``encode``), memoised: the tables of
    one space share their keys."""
    space = get_space(space_name)
    arch = space.decode(key)
    return arch, space.encode(arch)


def _canonical_keys(space_name: str, keys: pd.Series, where: str) -> list[str]:
    """``keys`` in canonical form (``space.encode``); each must decode and appear once."""
    seen: dict[Arch, int] = {}
    canonical = []
    for row, key in enumerate(keys):
        try:
            arch, text = _decode(space_name, key)
        except InvalidArchitecture as exc:
            raise _fail(
                where, f"arch row {row} ({key!r}) is not a {space_name} key: {exc}"
            ) from None
        if arch in seen:
            raise _fail(where, f"duplicate arch {key!r} at rows {seen[arch]} and {row}")
        seen[arch] = row
        canonical.append(text)
    return canonical


# ---- writing -------------------------------------------------------------------------------------
def write_benchmark(
    path: str | os.PathLike[str],
    tables: Iterable[BenchmarkTask] | Mapping[Any, BenchmarkTask] | Benchmark,
    *,
    generator: str = "zcproxies",
    created: str | None = None,
    description: str = "",
) -> Path:
    """Validate ``tables`` and write them to ``path`` (replaced atomically); returns the path.

    ``created`` (ISO 8601) defaults to now in UTC; pass a fixed value for byte-identical files.
    """
    path = Path(path)
    if isinstance(tables, Benchmark):
        tables = tables.tasks
    if isinstance(tables, Mapping):
        tables = tables.values()
    checked: dict[TaskKey, BenchmarkTask] = {}
    for table in tables:
        valid = validate_task(table, f"{path}: table {table.space}/{table.task}")
        if valid.key in checked:
            raise DataError(f"{path}: two tables for {valid.space}/{valid.task}")
        checked[valid.key] = valid
    if not checked:
        raise DataError(f"{path}: no tables to write")
    created = created or dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with h5py.File(tmp, "w", track_order=True) as f:  # groups list in writing order
            f.attrs.update(
                {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "created": created,
                    "generator": generator,
                }
            )
            if description:
                f.attrs["description"] = description
            for table in checked.values():
                space = (
                    f[table.space]
                    if table.space in f
                    else f.create_group(table.space, track_order=True)
                )
                _write_task(space.create_group(table.task, track_order=True), table)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_task(group: h5py.Group, table: BenchmarkTask) -> None:
    group.attrs.update(
        {
            "space": table.space,
            "task": table.task,
            "source": table.source,
            "units": table.units,
            "higher_is_better": table.higher_is_better,
            "dataset": table.dataset,
            "target": table.target,
        }
    )
    if table.protocol is not None:
        group.attrs["protocol"] = json.dumps(table.protocol, sort_keys=True)
    group.attrs.update(table.attrs)
    group.create_dataset("arch", data=list(table.frame["arch"]), dtype=h5py.string_dtype("utf-8"))
    for name in COLUMNS[1:]:
        if name in table.frame.columns:
            ds = group.create_dataset(name, data=table.frame[name].to_numpy(np.float64))
            if name in table.column_units:
                ds.attrs["units"] = table.column_units[name]
    for name, values in table.seeds.items():
        group.create_dataset(name + SEEDS_SUFFIX, data=values)
    if table.proxies is not None:
        proxies = group.create_group(PROXIES_GROUP, track_order=True)
        for name, column in table.proxies.items():
            proxies.create_dataset(name, data=column.to_numpy(np.float64))


# ---- loading -------------------------------------------------------------------------------------
def load_benchmark(path: str | os.PathLike[str]) -> Benchmark:
    """Read and validate a benchmark file; every problem is a ``DataError`` naming its place."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such benchmark file")
    if not h5py.is_hdf5(path):
        raise DataError(
            f"{path}: not an HDF5 file (a zcp benchmark is HDF5; see docs/benchmark_format.md)"
        )
    with h5py.File(path, "r") as f:
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        if attrs.get("format") != FORMAT_NAME:
            raise DataError(
                f"{path}: not a zcp benchmark file (attribute format = "
                f"{attrs.get('format')!r}, expected {FORMAT_NAME!r})"
            )
        if attrs.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{path}: unsupported format_version {attrs.get('format_version')!r} "
                f"(this zcp reads version {FORMAT_VERSION})"
            )
        tasks: dict[TaskKey, BenchmarkTask] = {}
        for space_name, space_group in f.items():
            for task_name, group in _subgroups(space_group, path):
                where = f"{path}: group {group.name}"
                table = validate_task(_read_task(group, space_name, task_name, where), where)
                if table.key in tasks:
                    raise DataError(
                        f"{where}: a second table for {table.space}/{table.task} "
                        "(space given by name and alias?)"
                    )
                tasks[table.key] = table
    if not tasks:
        raise DataError(f"{path}: holds no benchmark tables")
    return Benchmark(path, attrs, tasks)


def _subgroups(group: h5py.Group | h5py.Dataset, path: Path) -> list[tuple[str, h5py.Group]]:
    """The task groups of a space group (anything else there is an error)."""
    if not isinstance(group, h5py.Group):
        raise DataError(f"{path}: {group.name} is a dataset; the root holds only space groups")
    items = list(group.items())
    for name, item in items:
        if not isinstance(item, h5py.Group):
            raise DataError(
                f"{path}: {item.name} is a dataset; a space group holds only task groups ({name!r})"
            )
    return items


def _plain(value: Any) -> Any:
    """An HDF5 attribute value as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_task(group: h5py.Group, space_name: str, task_name: str, where: str) -> BenchmarkTask:
    """The raw table of a task group; the group path must agree with its attributes."""
    attrs = {k: _plain(v) for k, v in group.attrs.items()}
    missing = [a for a in REQUIRED_ATTRS if a not in attrs]
    if missing:
        raise _fail(where, f"missing attribute(s) {', '.join(missing)}")
    if (attrs["space"], attrs["task"]) != (space_name, task_name):
        raise _fail(
            where,
            f"attributes say {attrs['space']}/{attrs['task']}, the group path "
            f"says {space_name}/{task_name}",
        )
    target = attrs["target"]
    for name in ("arch", target):
        if name not in group:
            raise _fail(where, f"missing dataset {name!r}")
    columns: dict[str, np.ndarray] = {}
    seeds: dict[str, np.ndarray] = {}
    proxies: dict[str, np.ndarray] | None = None
    column_units = {}
    for name, item in group.items():
        if name == PROXIES_GROUP and isinstance(item, h5py.Group):
            proxies = {k: _dataset(v, f"{PROXIES_GROUP}/{k}", where, 1) for k, v in item.items()}
            continue
        if name.endswith(SEEDS_SUFFIX):
            seeds[name[: -len(SEEDS_SUFFIX)]] = _dataset(item, name, where, 2)
            continue
        if name not in COLUMNS:
            raise _fail(
                where,
                f"unexpected dataset {name!r}; known: {', '.join(COLUMNS)}, "
                f"<accuracy>{SEEDS_SUFFIX}, {PROXIES_GROUP}/<name>",
            )
        columns[name] = _dataset(item, name, where, 1)
        if "units" in item.attrs:
            column_units[name] = _plain(item.attrs["units"])
    columns["arch"] = np.array(
        [_arch_text(k, i, where) for i, k in enumerate(columns["arch"])], dtype=object
    )
    lengths = {name: len(values) for name, values in columns.items()}
    lengths.update({f"{name}{SEEDS_SUFFIX}": len(values) for name, values in seeds.items()})
    lengths.update({f"{PROXIES_GROUP}/{name}": len(v) for name, v in (proxies or {}).items()})
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise _fail(where, f"length mismatch between datasets: {listed}")
    try:
        protocol = json.loads(attrs["protocol"]) if "protocol" in attrs else None
    except json.JSONDecodeError as exc:
        raise _fail(where, f"attribute 'protocol' is not JSON: {exc}") from None
    return BenchmarkTask(
        space_name,
        task_name,
        pd.DataFrame(columns),
        attrs["source"],
        attrs["units"],
        bool(attrs["higher_is_better"]),
        attrs["dataset"],
        target,
        seeds,
        None if proxies is None else pd.DataFrame(proxies),
        protocol,
        column_units,
        {k: v for k, v in attrs.items() if k not in RESERVED_ATTRS},
    )


def _dataset(item: h5py.Group | h5py.Dataset, name: str, where: str, ndim: int) -> np.ndarray:
    """The array of dataset ``name``, which must be ``ndim``-dimensional."""
    if not isinstance(item, h5py.Dataset) or item.ndim != ndim:
        shape = item.shape if isinstance(item, h5py.Dataset) else "a group"
        raise _fail(where, f"{name!r} must be a {ndim}-D dataset, got {shape}")
    return item[()]
