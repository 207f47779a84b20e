"""Importers of the original public benchmark files into ``BenchmarkTask`` tables.

Each reads a file exactly as its authors publish it (see ``KINDS``); ``import_files`` detects
the kind of every file, merges the tables and writes one zcp benchmark file. Supported kinds:
NAS-Bench-Suite-Zero ``zc_<space>.json``, the 2022 zero-cost competition's ``train.json`` /
``test.json``, the NB201 validation table, the NATS-Bench TSS test table, the TransNAS-Bench-101
micro/macro tables, and zcp benchmark files themselves.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from zcproxies.benchdata.format import Benchmark, BenchmarkTask, load_benchmark, write_benchmark
from zcproxies.errors import DataError, InvalidArchitecture, UnknownName
from zcproxies.spaces import SearchSpace, get_space

NSZ_SOURCE = (
    "NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and Benchmarks), "
    "https://github.com/automl/NASLib, file {file}"
)
NSZ_PROXY_NOTE = (
    "NASLib's reference values: CPU, batch of 64 training images (a different "
    "random batch per architecture), PyTorch default init, train-mode BatchNorm"
)
NSZ_COLUMNS = {"val_accuracy": "val_accuracy", "params": "params", "flops": "flops"}
NSZ_UNITS = {"params": "millions", "flops": "MFLOPs (batch size 1)"}
COMPETITION_SOURCE = (
    "AutoML-Conf 2022 zero-cost NAS competition sample data, file {file}; "
    "'accuracy' = NAS-Bench-201 cifar10-valid accuracy after 200 epochs "
    "(NASLib's values)"
)
NB201_SOURCE = (
    "NAS-Bench-201 (Dong & Yang, ICLR 2020) validation accuracy after 200 epochs "
    "(cifar10: the cifar10-valid split) as in NASLib's NB201 data, file {file}"
)
NB201_TASKS = ("cifar10", "cifar100", "ImageNet16-120")
NATS_SOURCE = (
    "NATS-Bench TSS (Dong et al., TPAMI 2021) test accuracy after 200 epochs, "
    "https://github.com/v-tao/nats-bench-landscape, file {file}"
)
NATS_COLUMNS = {
    "CIFAR10TestAccuracy200Epochs": "cifar10",
    "CIFAR100TestAccuracy200Epochs": "cifar100",
    "ImageNetTestAccuracy200Epochs": "ImageNet16-120",
}
NATS_ARCH = "ArchitectureString"
TNB_SOURCE = (
    "TransNAS-Bench-101 (Duan et al., CVPR 2021) validation metric as NASLib queries it "
    "(Metric.VAL_ACCURACY), https://github.com/yawen-d/TransNASBench, file {file}"
)
# Units of each TransNAS-Bench-101 task's validation metric as NASLib queries it
# (``Metric.VAL_ACCURACY``: valid_top1, valid_neg_loss, valid_acc, valid_ssim); all are
# higher-is-better as tabulated.
TNB_UNITS = {
    "class_object": "top-1 accuracy (%)",
    "class_scene": "top-1 accuracy (%)",
    "jigsaw": "top-1 accuracy (%)",
    "room_layout": "negative L2 loss",
    "segmentsemantic": "pixel accuracy (%)",
    "normal": "SSIM",
    "autoencoder": "SSIM",
}
TNB_SPACES = {"micro": "transbench101_micro", "macro": "transbench101_macro"}


@dataclass(frozen=True)
class Kind:
    """A file kind: how to recognise it and how to read it into tables."""

    name: str
    description: str
    detect: Callable[[Path, Any], bool]  # (path, sniffed content) -> is this kind
    read: Callable[[Path], list[BenchmarkTask]]


# ---- helpers -------------------------------------------------------------------------------------
def _space(name: str, path: Path) -> SearchSpace:
    """The registered space ``name``; a clear ``DataError`` when zcp does not have it (yet)."""
    try:
        return get_space(name)
    except UnknownName as exc:
        raise DataError(
            f"{path}: holds search space {name!r}, not registered in zcp ({exc})"
        ) from None


def _keys(space: SearchSpace, archs: Iterable[Any], path: Path, what: str) -> list[str]:
    """NASLib keys (``space.encode``) of archs given as keys, lists or benchmark strings."""
    keys = []
    for row, arch in enumerate(archs):
        try:
            keys.append(space.encode(space.parse(arch)))
        except InvalidArchitecture as exc:
            raise DataError(f"{path}: {what} row {row}: {exc}") from None
    return keys


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None


# pandas before 3.1 reads some decimals one ulp off unless asked for "round_trip" (every decimal
# to its nearest double, as json does); from 3.1 that is the default and the argument deprecated
_EXACT_FLOATS = (
    {}
    if tuple(int(p) for p in pd.__version__.split(".")[:2]) >= (3, 1)
    else {"float_precision": "round_trip"}
)


def _read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, **_EXACT_FLOATS)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


# ---- NAS-Bench-Suite-Zero ------------------------------------------------------------------------
def read_nsz(path: str | os.PathLike[str]) -> list[BenchmarkTask]:
    """Every (space, task) of a NAS-Bench-Suite-Zero ``zc_<space>.json``, proxies kept."""
    path = Path(path)
    content = _read_json(path)
    if not _is_nsz(path, content):
        raise DataError(
            f"{path}: not a NAS-Bench-Suite-Zero file "
            "({space: {task: {arch_key: {'val_accuracy': ...}}}})"
        )
    tables = []
    for space_name, tasks in content.items():
        space = _space(space_name, path)
        for task, rows in tasks.items():
            where = f"{space_name}/{task}"
            records = list(rows.values())
            missing = [i for i, r in enumerate(records) if "val_accuracy" not in r]
            if missing:
                raise DataError(f"{path}: {where}: row {missing[0]} has no val_accuracy")
            frame = pd.DataFrame.from_records(records)
            proxies = frame.drop(columns=[c for c in NSZ_COLUMNS if c in frame.columns])
            frame = frame[[c for c in NSZ_COLUMNS if c in frame.columns]]
            frame.insert(0, "arch", _keys(space, rows, path, where))
            tables.append(
                BenchmarkTask(
                    space.name,
                    task,
                    frame,
                    NSZ_SOURCE.format(file=path.name),
                    proxies=proxies.sort_index(axis=1) if len(proxies.columns) else None,
                    column_units={c: u for c, u in NSZ_UNITS.items() if c in frame.columns},
                    attrs={"proxies_note": NSZ_PROXY_NOTE},
                )
            )
    return tables


def _is_nsz(path: Path, content: Any) -> bool:
    """``{space: {task: {key: {"val_accuracy": ...}}}}``."""
    if not isinstance(content, dict) or not content:
        return False
    tasks = next(iter(content.values()))
    if not isinstance(tasks, dict) or not tasks:
        return False
    rows = next(iter(tasks.values()))
    if not isinstance(rows, dict) or not rows:
        return False
    return isinstance(first := next(iter(rows.values())), dict) and "val_accuracy" in first


# ---- the 2022 zero-cost competition --------------------------------------------------------------
def read_competition(path: str | os.PathLike[str]) -> list[BenchmarkTask]:
    """The competition's NB201 cifar10 ``[{"arch": [6 op indices], "accuracy": ...}]``."""
    path = Path(path)
    content = _read_json(path)
    if not _is_competition(path, content):
        raise DataError(f"{path}: not a competition file ([{{'arch': [...], 'accuracy': ...}}])")
    space = get_space("nasbench201")
    frame = pd.DataFrame(
        {
            "arch": _keys(space, (r["arch"] for r in content), path, "arch"),
            "val_accuracy": [r["accuracy"] for r in content],
        }
    )
    return [BenchmarkTask(space.name, "cifar10", frame, COMPETITION_SOURCE.format(file=path.name))]


def _is_competition(path: Path, content: Any) -> bool:
    return (
        isinstance(content, list)
        and bool(content)
        and all(isinstance(r, dict) and {"arch", "accuracy"} <= set(r) for r in content)
    )


# ---- full tables ---------------------------------------------------------------------------------
def read_nb201_table(path: str | os.PathLike[str]) -> list[BenchmarkTask]:
    """The NB201 validation table: ``arch`` key and one accuracy column per task."""
    path = Path(path)
    frame = _read_csv(path, ("arch", *NB201_TASKS))
    space = get_space("nasbench201")
    keys = _keys(space, frame["arch"], path, "arch")
    return [
        BenchmarkTask(
            space.name,
            task,
            pd.DataFrame({"arch": keys, "val_accuracy": frame[task].to_numpy()}),
            NB201_SOURCE.format(file=path.name),
        )
        for task in NB201_TASKS
    ]


def read_nats_table(path: str | os.PathLike[str]) -> list[BenchmarkTask]:
    """The NATS-Bench TSS test table; only test accuracies exist, so they are the target."""
    path = Path(path)
    frame = _read_csv(path, (NATS_ARCH, *NATS_COLUMNS))
    space = get_space("nasbench201")
    keys = _keys(space, frame[NATS_ARCH], path, NATS_ARCH)
    return [
        BenchmarkTask(
            space.name,
            task,
            pd.DataFrame({"arch": keys, "test_accuracy": frame[column].to_numpy()}),
            NATS_SOURCE.format(file=path.name),
            target="test_accuracy",
        )
        for column, task in NATS_COLUMNS.items()
    ]


def read_tnb_table(path: str | os.PathLike[str], space: str | None = None) -> list[BenchmarkTask]:
    """A TransNAS-Bench-101 table (``arch`` + one column per task) of the micro or macro space.

    ``space`` defaults to the one named in the file name (``micro`` or ``macro``).
    """
    path = Path(path)
    space_name = space or _tnb_space_from_name(path)
    if space_name is None:
        raise DataError(
            f"{path}: cannot tell a TransNAS-Bench-101 micro table from a macro "
            "one: put 'micro' or 'macro' in the file name"
        )
    tnb = _space(space_name, path)
    frame = _read_csv(path, ("arch",))
    tasks = [c for c in frame.columns if c != "arch"]
    unknown = [t for t in tasks if t not in TNB_UNITS]
    if unknown or not tasks:
        raise DataError(
            f"{path}: columns {', '.join(unknown) or '(none)'} are not "
            f"TransNAS-Bench-101 tasks ({', '.join(TNB_UNITS)})"
        )
    keys = _keys(tnb, frame["arch"], path, "arch")
    return [
        BenchmarkTask(
            tnb.name,
            task,
            pd.DataFrame({"arch": keys, "val_accuracy": frame[task].to_numpy()}),
            TNB_SOURCE.format(file=path.name),
            units=TNB_UNITS[task],
        )
        for task in tasks
    ]


def _tnb_space_from_name(path: Path) -> str | None:
    found = [space for word, space in TNB_SPACES.items() if word in path.name.lower()]
    return found[0] if len(found) == 1 else None


# ---- detection -----------------------------------------------------------------------------------
def _sniff(path: Path) -> Any:
    """What detection looks at: ``"hdf5"``, parsed JSON, a CSV header (list) or ``None``."""
    if h5py.is_hdf5(path):
        return "hdf5"
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    text = head.lstrip()
    if text[:1] in (b"{", b"["):
        try:
            return _read_json(path)
        except DataError:
            return None
    try:
        first = head.decode("utf-8").splitlines()[0] if head else ""
    except UnicodeDecodeError:
        return None
    return next(csv.reader([first]), None)


def _csv_has(*columns: str) -> Callable[[Path, Any], bool]:
    return lambda path, sniffed: isinstance(sniffed, list) and set(columns) <= set(sniffed)


def _is_tnb(path: Path, sniffed: Any) -> bool:
    return (
        isinstance(sniffed, list)
        and "arch" in sniffed
        and len(sniffed) > 1
        and all(c in TNB_UNITS for c in sniffed if c != "arch")
    )


def _read_zcp(path: Path) -> list[BenchmarkTask]:
    return list(load_benchmark(path).tasks.values())


KINDS: tuple[Kind, ...] = (
    Kind("zcp", "a zcp benchmark file (HDF5)", lambda p, s: s == "hdf5", _read_zcp),
    Kind(
        "nas-bench-suite-zero",
        "NAS-Bench-Suite-Zero zc_<space>.json (NASLib)",
        _is_nsz,
        read_nsz,
    ),
    Kind(
        "competition",
        "zero-cost competition 2022 train.json/test.json (NB201 cifar10)",
        _is_competition,
        read_competition,
    ),
    Kind(
        "nb201-table",
        "NB201 validation table: arch, cifar10, cifar100, ImageNet16-120 (CSV)",
        _csv_has("arch", *NB201_TASKS),
        read_nb201_table,
    ),
    Kind(
        "nats-table",
        "NATS-Bench TSS test table: ArchitectureString, <X>TestAccuracy200Epochs",
        _csv_has(NATS_ARCH, *NATS_COLUMNS),
        read_nats_table,
    ),
    Kind(
        "transnas-table",
        "TransNAS-Bench-101 table: arch + task columns (CSV; 'micro' or 'macro' in the file name)",
        _is_tnb,
        read_tnb_table,
    ),
)


def detect_kind(path: str | os.PathLike[str]) -> Kind:
    """The kind of ``path`` by content (and, for TransNAS tables, by name), or a ``DataError``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    sniffed = _sniff(path)
    for kind in KINDS:
        if kind.detect(path, sniffed):
            return kind
    known = "; ".join(f"{k.name}: {k.description}" for k in KINDS)
    raise DataError(f"{path}: unknown benchmark file kind. Known kinds: {known}")


def import_file(path: str | os.PathLike[str]) -> list[BenchmarkTask]:
    """The tables of one file of any known kind."""
    return detect_kind(path).read(Path(path))


def merge_tables(tables: Iterable[BenchmarkTask]) -> list[BenchmarkTask]:
    """Tables of the same (space, task) concatenated (e.g. competition train + test).

    They must agree on target, units, dataset, columns, seeds and proxies; an arch held by two
    of them is an error (the format allows each arch once), raised when the result is written.
    """
    merged: dict[tuple[str, str], BenchmarkTask] = {}
    for table in tables:
        key = (get_space(table.space).name, table.task)
        if key not in merged:
            merged[key] = table
            continue
        first = merged[key]
        same = (
            first.target,
            first.units,
            first.dataset,
            list(first.frame.columns),
            sorted(first.seeds),
            None if first.proxies is None else list(first.proxies),
        )
        other = (
            table.target,
            table.units,
            table.dataset,
            list(table.frame.columns),
            sorted(table.seeds),
            None if table.proxies is None else list(table.proxies),
        )
        if same != other:
            raise DataError(
                f"cannot merge two {key[0]}/{key[1]} tables of different layout "
                f"({first.source} | {table.source}): import them into separate files"
            )
        merged[key] = replace(
            first,
            frame=pd.concat([first.frame, table.frame], ignore_index=True),
            source=f"{first.source}; {table.source}",
            seeds={k: np.concatenate([first.seeds[k], table.seeds[k]]) for k in first.seeds},
            proxies=(
                None
                if first.proxies is None
                else pd.concat([first.proxies, table.proxies], ignore_index=True)
            ),
        )
    return list(merged.values())


def import_files(
    paths: Iterable[str | os.PathLike[str]], out_path: str | os.PathLike[str], **write_options: Any
) -> Benchmark:
    """Detect, read and merge every file of ``paths``, write ``out_path``, return it loaded.

    ``write_options`` go to ``write_benchmark`` (``generator``, ``created``, ``description``).
    """
    tables = [table for path in paths for table in import_file(path)]
    if not tables:
        raise DataError("no files to import")
    write_options.setdefault("generator", "zcproxies.benchdata.import_files")
    write_benchmark(out_path, merge_tables(tables), **write_options)
    return load_benchmark(out_path)
