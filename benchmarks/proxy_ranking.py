"""Ranking quality of every zcp proxy on every benchmark task: Kendall-Tau and Spearman.

``score`` computes every registered per-architecture proxy (``list_proxies()`` without the
population ones; ``zcp_ensemble`` too once it is registered) for the architectures of each task,
through ``score_many`` (one shared context per arch), on ONE fixed ``batch_for_task`` batch of 64
per task (substitutes recorded) and models built with an explicit seed. It appends one row per
architecture to ``<out-dir>/<task>.csv`` (flushed at once: a killed run keeps every finished row;
a rerun skips the archs already there) with a pool of worker processes that interleaves the
tasks, each task's archs in a fixed seeded order, so a time-limited run leaves a uniform subset
of every task. ``report`` joins the CSVs with the benchmarks' ``val_accuracy``, adds the
population scores ``aznas_population`` and ``tenas_population`` from their component columns,
and writes ``benchmarks/results/proxy_ranking.json`` and the generated ``docs/proxy_ranking.md``.

Tasks: ``nb101-cifar10``, ``nb201-{cifar10,cifar100,ImageNet16-120}``, ``nb301-cifar10`` (the
NAS-Bench-Suite-Zero archs, whose stored proxy values are ranked side by side) and
``nb201full-{cifar10,cifar100,ImageNet16-120}`` (one seeded sample of ``--full-sample`` archs of
the whole NB201 table, the same archs for the three datasets).

Full run (GPU machine, repo not installed, shared data in ``$ZCP_SHARED_DATA``); rerun the
``score`` line until it prints "0 left", each call fits a 10-minute limit:

    export PYTHONPATH=. ZCP_SHARED_DATA=/path/to/shared/data
    python benchmarks/proxy_ranking.py score --smoke --device cuda --threads 8  # 1 arch per task
    nvidia-cuda-mps-control -d    # MPS: the workers' kernels share the GPU instead of time-slicing
    python benchmarks/proxy_ranking.py score --tasks all --n 0 --workers 12 --device cuda \\
        --out-dir benchmarks/results/ranking --time-limit 480
    echo quit | nvidia-cuda-mps-control
    python benchmarks/proxy_ranking.py report --out-dir benchmarks/results/ranking

Measured on one H100 (16 cores), every proxy: 12 workers with MPS wrote 738 archs (NB101, NB301
and full-NB201 C10 mixed) in 395 s and 13 workers 336 NB201 archs in 145 s, worker start-up
included; 6 workers without MPS are about half as fast, CPU workers there 10x slower. Each
worker gives its cached CUDA memory back after every arch (``release_cuda_cache``): without it
14 workers ran out of GPU memory on a third of the NB101 rows. All 5,473 archs: about 40 min.
Copying results back from a remote GPU machine: tar the whole ``--out-dir`` (16 small files).
``zcp_ensemble`` needs a reference entry per space/task (``ensemble_reference.json``); where one
is missing its cells stay empty (the error is printed once per worker and task): build the
references first, or later rescore those rows with ``--retry-empty``.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import itertools
import json
import math
import multiprocessing as mp
import os
import re
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from evaluator.metrics import kendall_tau, spearman
from zcproxies import ZcpError, build, get_space
from zcproxies.benchdata.importers import read_nb201_table, read_nsz
from zcproxies.data import Batch, batch_for_task
from zcproxies.errors import UnknownName
from zcproxies.paths import shared_data_dir
from zcproxies.proxies import (
    finite_score,
    get_proxy,
    list_proxies,
    make_context,
    score,
    score_many,
)
from zcproxies.proxies.ensemble import COMPONENTS as ENSEMBLE_COMPONENTS
from zcproxies.proxies.ensemble import combine, pair_stats
from zcproxies.proxies.modern import (
    AZNAS_COMPONENTS,
    TENAS_COMPONENTS,
    aznas_population,
    tenas_population,
)
from zcproxies.spaces.nb201 import EDGES, OPS

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "benchmarks" / "results" / "ranking"
JSON_OUT = ROOT / "benchmarks" / "results" / "proxy_ranking.json"
MARKDOWN_OUT = ROOT / "docs" / "proxy_ranking.md"
BATCH_SIZE = 64
FULL_SAMPLE = 1000  # archs of the nb201full-* tasks
MIN_STRATUM = 10  # within-strata KT: strata with fewer archs are left out
MIN_MEAN_ARCHS = 100  # tasks with fewer scored archs are shown but left out of the mean KT
FIXED_COLUMNS = ("arch", "seconds", "device")  # the CSV columns that are not proxies
POPULATION = {"aznas_population": AZNAS_COMPONENTS, "tenas_population": TENAS_COMPONENTS}
# The VKDNW table (CVPR 2025, Table 1) in the shared docs: its names -> zcp's, datasets -> tasks.
PUBLISHED_NAMES = {
    "FLOPs": "flops",
    "synflow": "synflow",
    "jacov": "jacov",
    "NASWOT": "nwot",
    "ZiCo": "zico",
    "TE-NAS": "tenas_population",
    "AZ-NAS": "aznas_population",
}
PUBLISHED_DATASETS = {
    "CIFAR-10": "cifar10",
    "CIFAR-100": "cifar100",
    "ImageNet16-120": "ImageNet16-120",
}


@dataclass(frozen=True)
class TaskSpec:
    """A benchmark task: space, the space's task, and the table that holds its accuracies."""

    space: str
    task: str
    source: str  # "nsz": zc_<space>.json of NAS-Bench-Suite-Zero; "full": the NB201 table
    file: str  # path under the shared data directory


TASKS = {
    "nb101-cifar10": TaskSpec(
        "nasbench101", "cifar10", "nsz", "nas_bench_suite_zero/zc_nasbench101.json"
    ),
    **{
        f"nb201-{t}": TaskSpec("nasbench201", t, "nsz", "nas_bench_suite_zero/zc_nasbench201.json")
        for t in ("cifar10", "cifar100", "ImageNet16-120")
    },
    "nb301-cifar10": TaskSpec(
        "nasbench301", "cifar10", "nsz", "nas_bench_suite_zero/zc_nasbench301.json"
    ),
    **{
        f"nb201full-{t}": TaskSpec(
            "nasbench201", t, "full", "full_tables/nasbench201_val_accuracy.csv"
        )
        for t in ("cifar10", "cifar100", "ImageNet16-120")
    },
}


# ---- benchmark tables ----------------------------------------------------------------------------
@cache
def _tables(file: str) -> dict[tuple[str, str], Any]:
    """The project's importer's tables of one shared file, by (space, task)."""
    path = shared_data_dir() / file
    reader = read_nsz if file.endswith(".json") else read_nb201_table
    return {(t.space, t.task): t for t in reader(path)}


def accuracy_table(name: str) -> pd.DataFrame:
    """Arch key (the importer's NASLib key), ``val_accuracy`` and, for NSZ tasks, NSZ's proxies."""
    spec = TASKS[name]
    table = _tables(spec.file)[(spec.space, spec.task)]
    frame = table.frame[["arch", "val_accuracy"]]
    if table.proxies is not None:
        frame = pd.concat([frame, table.proxies.add_prefix("nsz:")], axis=1)
    return frame.set_index("arch")


def arch_order(name: str, seed: int, full_sample: int = FULL_SAMPLE) -> list[str]:
    """The task's architectures in the fixed order they are scored in (a seeded permutation).

    NSZ tasks: all archs of the table; ``full`` tasks: ``full_sample`` archs drawn without
    replacement from the whole table (the same for every dataset, the seed being the same).
    """
    keys = sorted(accuracy_table(name).index)
    rng = np.random.default_rng(seed)
    if TASKS[name].source == "full":
        return [keys[i] for i in rng.choice(len(keys), size=full_sample, replace=False)]
    return [keys[i] for i in rng.permutation(len(keys))]


def interleave(orders: dict[str, list[str]]) -> Iterator[tuple[str, str]]:
    """(task, key) pairs round-robin over the tasks: the i-th arch of every task, then the next."""
    for column in itertools.zip_longest(*orders.values()):
        for task, key in zip(orders, column, strict=True):
            if key is not None:
                yield task, key


# ---- CSV resume ----------------------------------------------------------------------------------
def repair_tail(path: Path) -> None:
    """Cut a partial last line (a run killed while writing it): every kept line is a whole row."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def done_keys(path: Path, columns: Sequence[str], complete_only: bool = False) -> set[str]:
    """Keys already in the task's CSV (repaired first); an error if it has other columns.

    ``complete_only``: only rows without an empty proxy cell count (the others are scored again;
    the report keeps an arch's last row).
    """
    if not path.exists():
        return set()
    repair_tail(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return set()
    if rows[0] != list(columns):
        raise SystemExit(
            f"{path} has columns {rows[0]}, this run scores {list(columns)} (the registered "
            "proxies changed?): use another --out-dir, or delete the file to rescore the task"
        )
    return {row[0] for row in rows[1:] if not (complete_only and "" in row[1:-2])}


def append_row(path: Path, columns: Sequence[str], row: dict[str, Any]) -> None:
    """Append one row (header first for a new file) and flush it to disk at once."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(columns)
        writer.writerow([row.get(c, "") for c in columns])  # floats: repr, exact round trip
        f.flush()
        os.fsync(f.fileno())


# ---- scoring (one process per worker) ------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def configure_torch(threads: int) -> None:
    """Intra-op threads, and no TF32 (full float32 matmuls and convolutions, as on the CPU)."""
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def device_label(device: str) -> str:
    """``cpu`` or ``cuda:<GPU name>``: what the CSV's ``device`` column records."""
    return f"cuda:{torch.cuda.get_device_name()}" if device == "cuda" else "cpu"


def init_worker(
    batches: dict[str, tuple[np.ndarray, np.ndarray, int]],
    names: list[str],
    device: str,
    threads: int,
    seed: int,
    deadline: float | None,
) -> None:
    """Per worker process: torch settings, and the task batches (x, y, classes) on the device."""
    configure_torch(threads)
    _WORKER.update(
        batches={
            t: (torch.from_numpy(x).to(device), torch.from_numpy(y).to(device), classes)
            for t, (x, y, classes) in batches.items()
        },
        names=names,
        device=device,
        label=device_label(device),
        seed=seed,
        deadline=deadline,
        failing={},  # task -> {proxy: error}: left out of later score_many calls of that task
    )


@cache
def task_kwargs(name: str) -> dict[str, str]:
    """``space=``/``task=`` for the scoring calls where taken (``zcp_ensemble`` needs them)."""
    if "space" not in inspect.signature(score_many).parameters:
        return {}
    return {"space": TASKS[name].space, "task": TASKS[name].task}


def release_cuda_cache() -> None:
    """Give this worker's cached CUDA blocks back: workers sharing one GPU must not hoard them."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def proxy_retrying_oom(name: str, ctx: Any) -> float:
    """One proxy's value; after CUDA runs out of memory (other workers' peaks), once more."""
    try:
        return get_proxy(name).fn(ctx)
    except torch.OutOfMemoryError:
        release_cuda_cache()
        return get_proxy(name).fn(ctx)


def score_item(item: tuple[str, str]) -> dict[str, Any] | None:
    """Every proxy of one (task, arch key), or ``None`` when the time limit has passed.

    A proxy that raises gets an empty cell; the others are scored again through one shared
    context, as ``score_many`` does. A ``ZcpError`` (a set-up error, not a runtime one such as
    CUDA running out of memory) leaves the proxy out of the task's later calls in this worker.
    """
    task, key = item
    w = _WORKER
    if w["deadline"] is not None and time.time() > w["deadline"]:
        return None
    spec = TASKS[task]
    space = get_space(spec.space)
    x, y, classes = w["batches"][task]
    model = build(space, space.decode(key), spec.task, seed=w["seed"]).to(w["device"])
    failing = w["failing"].setdefault(task, {})
    names = [n for n in w["names"] if n not in failing]
    errors = {}
    start = time.perf_counter()
    try:
        values = score_many(names, model, x, y, classes, w["seed"], **task_kwargs(task))
    except Exception:
        ctx = make_context(model, x, y, classes, w["seed"], **task_kwargs(task))
        values = {}
        for name in names:
            try:
                values[name] = finite_score(proxy_retrying_oom(name, ctx))
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, ZcpError):  # a set-up error, e.g. no ensemble reference
                    failing[name] = errors[name]
    seconds = time.perf_counter() - start
    del model
    release_cuda_cache()
    return {
        "task": task,
        "row": {"arch": key, **values, "seconds": round(seconds, 4), "device": w["label"]},
        "errors": errors,
    }


def run_items(
    items: list[tuple[str, str]], workers: int, initargs: tuple[Any, ...], hard_stop: float | None
) -> Iterator[dict[str, Any] | None]:
    """Results of ``score_item`` as they finish: in this process (1 worker) or a spawn pool.

    At ``hard_stop``, or when a worker dies (out of memory), the workers are terminated and the
    archs still running are dropped.
    """
    if workers == 1:
        init_worker(*initargs)
        yield from map(score_item, items)
        return
    context = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, context, init_worker, initargs) as pool:
        futures = [pool.submit(score_item, item) for item in items]
        timeout = None if hard_stop is None else max(hard_stop - time.time(), 0.0)
        try:
            for future in as_completed(futures, timeout):
                yield future.result()
        except (TimeoutError, BrokenProcessPool) as exc:
            reason = "hard time limit" if isinstance(exc, TimeoutError) else "a worker died"
            print(f"{reason}: dropping the archs in flight (rerun to resume)", flush=True)
            pool.shutdown(wait=False, cancel_futures=True)
            for process in mp.active_children():
                process.terminate()


def task_batches(tasks: Iterable[str], seed: int) -> dict[str, Batch]:
    """The one batch of each task (substitutions are announced by ``batch_for_task``)."""
    return {
        t: batch_for_task(get_space(TASKS[t].space).task(TASKS[t].task), BATCH_SIZE, seed=seed)
        for t in tasks
    }


def proxy_names(only: str | None) -> list[str]:
    """The per-architecture proxies scored: every registered non-population one, or ``only``."""
    names = [p.name for p in list_proxies() if not p.population]
    if only:
        chosen = only.split(",")
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            raise SystemExit(f"unknown proxies {unknown}; registered: {', '.join(names)}")
        names = [n for n in names if n in chosen]
    return names


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """The task's run settings next to its CSV; a rerun must use the same ones."""
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(k for k in meta if k not in ("torch", "batch") and old.get(k) != meta[k])
        if changed:
            raise SystemExit(
                f"{path}: settings {changed} differ from the earlier run's; use another --out-dir"
            )
    path.write_text(json.dumps(meta, indent=1) + "\n")


def score_command(args: argparse.Namespace) -> None:
    """Score the archs not yet in the CSVs, interleaving tasks, until done or the time limit."""
    start = time.time()
    tasks = list(TASKS) if args.tasks == ["all"] else args.tasks
    names = proxy_names(args.proxies)
    columns = ["arch", *names, "seconds", "device"]
    batches = task_batches(tasks, args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    orders = {}
    for task in tasks:
        order = arch_order(task, args.seed, args.full_sample)
        write_meta(
            args.out_dir / f"{task}.meta.json",
            {
                "task": task,
                "seed": args.seed,
                "full_sample": args.full_sample if TASKS[task].source == "full" else None,
                "batch": batches[task].describe(),
                "batch_fingerprint": batches[task].fingerprint,
                "proxies": names,
                "torch": torch.__version__,
            },
        )
        done = done_keys(args.out_dir / f"{task}.csv", columns, args.retry_empty)
        orders[task] = [k for k in (order[: args.n] if args.n else order) if k not in done]
    items = list(interleave(orders))
    print(f"{len(items)} archs to score: " + ", ".join(f"{t} {len(o)}" for t, o in orders.items()))
    deadline = None if args.time_limit is None else start + args.time_limit
    hard_stop = None if deadline is None else deadline + args.grace
    arrays = {t: (b.x.numpy(), b.y.numpy(), b.num_classes) for t, b in batches.items()}
    initargs = (arrays, names, args.device, args.threads, args.seed, deadline)
    written = {t: 0 for t in tasks}
    for result in run_items(items, args.workers, initargs, hard_stop):
        if result is None:  # past the time limit
            continue
        task = result["task"]
        for name, error in result["errors"].items():
            print(f"{task} {result['row']['arch']}: {name} FAILED, cell left empty: {error}")
        append_row(args.out_dir / f"{task}.csv", columns, result["row"])
        written[task] += 1
        if sum(written.values()) % 20 == 0:
            print(f"{sum(written.values())} archs, {time.time() - start:.0f} s", flush=True)
    left = len(items) - sum(written.values())
    print(
        f"wrote {sum(written.values())} rows in {time.time() - start:.0f} s ("
        + ", ".join(f"{t} {n}" for t, n in written.items())
        + f"); {left} left"
    )


def smoke_command(args: argparse.Namespace) -> None:
    """One arch per task, every proxy alone (seconds each); on a GPU, also the CPU value."""
    tasks = list(TASKS) if args.tasks == ["all"] else args.tasks
    names = proxy_names(args.proxies)
    configure_torch(args.threads)
    batches = task_batches(tasks, args.seed)
    devices = [args.device] if args.device == "cpu" else [args.device, "cpu"]
    failures = 0
    for task in tasks:
        spec = TASKS[task]
        space = get_space(spec.space)
        key = arch_order(task, args.seed, args.full_sample)[0]
        print(f"\n{task} {key} ({batches[task].describe()})")
        print(f"{'proxy':<18}" + "".join(f"{d + ' s':>10}{d + ' value':>24}" for d in devices))
        for name in names:
            cells = []
            for device in devices:
                b = batches[task]
                model = build(space, space.decode(key), spec.task, seed=args.seed).to(device)
                x, y = b.x.to(device), b.y.to(device)
                begin = time.perf_counter()
                try:
                    value = score(name, model, x, y, b.num_classes, args.seed, **task_kwargs(task))
                    cells.append(f"{time.perf_counter() - begin:>10.3f}{value:>24.10g}")
                except Exception as exc:
                    failures += 1
                    cells.append(f"{'FAILED':>10} {type(exc).__name__}: {str(exc)[:120]}")
            print(f"{name:<18}" + "".join(cells), flush=True)
    print(f"\nsmoke: {failures} failure(s)")


# ---- metrics -------------------------------------------------------------------------------------
def live_convs(arch: Sequence[int]) -> int:
    """Convolution edges of an NB201 cell on a path from its input to its output.

    A path uses non-``none`` edges only; a conv whose source is not reachable from the input
    computes on zeros, one whose target does not reach the output is never read.
    """
    names = [OPS[i] for i in arch]
    reached, reaching = {1}, {4}
    for e, (src, dst) in sorted(enumerate(EDGES), key=lambda item: item[1][1]):
        if src in reached and names[e] != "none":
            reached.add(dst)
    for e, (src, dst) in sorted(enumerate(EDGES), key=lambda item: -item[1][0]):
        if dst in reaching and names[e] != "none":
            reaching.add(src)
    return sum(
        names[e].startswith("nor_conv") and src in reached and dst in reaching
        for e, (src, dst) in enumerate(EDGES)
    )


def ranking(scores: Sequence[float], accuracy: Sequence[float]) -> dict[str, float]:
    """Kendall tau-b and Spearman of ``scores`` vs ``accuracy`` over the pairs with a score.

    NaN scores (a proxy that failed there) are left out; fewer than 2 pairs give NaN; a
    correlation undefined otherwise (a constant side) is 0, as in the evaluator.
    """
    s, a = np.asarray(scores, dtype=float), np.asarray(accuracy, dtype=float)
    keep = ~np.isnan(s)
    if keep.sum() < 2:
        return {"kt": math.nan, "spearman": math.nan, "n": int(keep.sum())}
    return {
        "kt": kendall_tau(s[keep], a[keep]),
        "spearman": spearman(s[keep], a[keep]),
        "n": int(keep.sum()),
    }


def strata_kt(
    scores: Sequence[float],
    accuracy: Sequence[float],
    groups: Sequence[int],
    min_size: int = MIN_STRATUM,
) -> dict[str, Any]:
    """Mean Kendall tau-b within groups of at least ``min_size`` archs, weighted by group size.

    NaN scores are left out first; ``strata`` lists each used group's value, size and KT.
    """
    s, a, g = (np.asarray(v, dtype=float) for v in (scores, accuracy, groups))
    keep = ~np.isnan(s)
    s, a, g = s[keep], a[keep], g[keep]
    strata = []
    for value in np.unique(g):
        members = g == value
        if members.sum() >= min_size:
            strata.append(
                {
                    "group": int(value),
                    "n": int(members.sum()),
                    "kt": kendall_tau(s[members], a[members]),
                }
            )
    total = sum(st["n"] for st in strata)
    mean = sum(st["n"] * st["kt"] for st in strata) / total if total else math.nan
    return {"kt": mean, "n": total, "strata": strata}


def parse_published(text: str, marker: str = "VKDNW") -> dict[str, dict[str, tuple[float, float]]]:
    """The Markdown table after the first line containing ``marker``: zcp proxy -> task -> (KT, SR).

    Cells read ``.623/.799`` (Kendall tau / Spearman); names and columns are mapped through
    ``PUBLISHED_NAMES`` and ``PUBLISHED_DATASETS``; unknown ones are skipped.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if marker in line), None)
    if start is None:
        return {}
    rest = itertools.dropwhile(lambda line: not line.startswith("|"), lines[start + 1 :])
    table = list(itertools.takewhile(lambda line: line.startswith("|"), rest))
    if len(table) < 3:
        return {}
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table]
    header = [PUBLISHED_DATASETS.get(c) for c in cells[0]]
    result: dict[str, dict[str, tuple[float, float]]] = {}
    for row in cells[2:]:
        name = PUBLISHED_NAMES.get(row[0])
        if name is None:
            continue
        for task, cell in zip(header[1:], row[1:], strict=False):
            match = re.fullmatch(r"(-?[\d.]+)\s*/\s*(-?[\d.]+)", cell)
            if task and match:
                result.setdefault(name, {})[task] = (float(match[1]), float(match[2]))
    return result


# ---- report --------------------------------------------------------------------------------------
def ensemble_from_components(frame: pd.DataFrame, space: str, task: str) -> np.ndarray | None:
    """``zcp_ensemble`` of every row from its component columns and the CURRENT reference file.

    Recomputed rather than read, so rows scored before a reference existed (empty cells) get it
    too and every row uses the same reference; None without a reference for (space, task).
    """
    if not all(c in frame.columns for c in ENSEMBLE_COMPONENTS):
        return None
    try:
        stats = pair_stats(space, task)
    except UnknownName:
        return None
    values = np.full(len(frame), math.nan)
    for i, row in enumerate(frame[list(ENSEMBLE_COMPONENTS)].itertuples(index=False)):
        parts = dict(zip(ENSEMBLE_COMPONENTS, row, strict=True))
        if not any(math.isnan(v) for v in parts.values()):
            values[i] = finite_score(combine(parts, stats))
    return values


def task_report(
    name: str, frame: pd.DataFrame, published: dict[str, dict[str, tuple[float, float]]]
) -> dict[str, Any]:
    """Per proxy of one task's CSV rows: KT, Spearman, n, strata KT (NB201), reference values."""
    spec = TASKS[name]
    table = accuracy_table(name)
    frame = frame.drop_duplicates("arch", keep="last").set_index("arch")
    accuracy = table.loc[frame.index, "val_accuracy"].to_numpy()
    proxies = {c: frame[c].to_numpy(dtype=float) for c in frame.columns if c not in FIXED_COLUMNS}
    for pop, components in POPULATION.items():
        if all(c in proxies for c in components):
            rows = np.all([~np.isnan(proxies[c]) for c in components], axis=0)
            values = np.full(len(frame), math.nan)
            values[rows] = (aznas_population if pop == "aznas_population" else tenas_population)(
                frame.loc[rows, list(components)]
            )
            proxies[pop] = values
    ensemble = ensemble_from_components(frame, spec.space, spec.task)
    if ensemble is not None:
        proxies["zcp_ensemble"] = ensemble
    space = get_space(spec.space)
    groups = (
        [live_convs(space.decode(k)) for k in frame.index] if spec.space == "nasbench201" else None
    )
    result = {}
    for proxy, values in proxies.items():
        entry: dict[str, Any] = ranking(values, accuracy)
        if groups is not None:
            entry["strata"] = strata_kt(values, accuracy, groups)
        if f"nsz:{proxy}" in table.columns:
            entry["nsz"] = ranking(table.loc[frame.index, f"nsz:{proxy}"].to_numpy(), accuracy)
        if spec.space == "nasbench201" and spec.task in published.get(proxy, {}):
            kt, sr = published[proxy][spec.task]
            entry["published"] = {"kt": kt, "spearman": sr, "source": "VKDNW (CVPR 2025) Table 1"}
        result[proxy] = entry
    return result


def report_command(args: argparse.Namespace) -> None:
    """Read every task's CSV under ``--out-dir`` and write the JSON and the Markdown report."""
    published = parse_published(args.published.read_text()) if args.published.is_file() else {}
    tasks: dict[str, Any] = {}
    for name in TASKS:
        path = args.out_dir / f"{name}.csv"
        if not path.exists():
            continue
        repair_tail(path)
        frame = pd.read_csv(path)
        meta_path = args.out_dir / f"{name}.meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        seconds = frame["seconds"].to_numpy(dtype=float)
        tasks[name] = {
            "space": TASKS[name].space,
            "task": TASKS[name].task,
            "archs": len(frame),
            "batch": meta.get("batch", "unknown (no meta file)"),
            "seed": meta.get("seed"),
            "devices": sorted(frame["device"].astype(str).unique()),
            "seconds_per_arch": {
                "median": statistics.median(seconds) if len(seconds) else math.nan,
                "mean": float(seconds.mean()) if len(seconds) else math.nan,
            },
            "proxies": task_report(name, frame, published),
        }
    summary = summary_table(tasks)
    command = f"python benchmarks/proxy_ranking.py report --out-dir {display(args.out_dir)}"
    data = {
        "generated_by": command,
        "json": display(args.json),
        "published_source": str(args.published) if published else None,
        "min_stratum": MIN_STRATUM,
        "tasks": tasks,
        "summary": summary,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rounded(data), indent=1) + "\n")
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(markdown(data))
    print(args.markdown.read_text())
    print(f"wrote {args.json} and {args.markdown}")


def summary_table(tasks: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Proxy -> task -> KT, plus ``mean`` over the tasks it has among those of at least
    ``MIN_MEAN_ARCHS`` scored archs (a KT over fewer is too noisy to weigh the same); sorted by
    that mean, best first."""
    table: dict[str, dict[str, float]] = {}
    for task, entry in tasks.items():
        for proxy, values in entry["proxies"].items():
            if not math.isnan(values["kt"]):
                table.setdefault(proxy, {})[task] = values["kt"]
    for row in table.values():
        counted = [kt for task, kt in row.items() if tasks[task]["archs"] >= MIN_MEAN_ARCHS]
        row["mean"] = statistics.fmean(counted) if counted else math.nan
    return dict(sorted(table.items(), key=lambda item: -item[1]["mean"]))


def rounded(value: Any) -> Any:
    """JSON-ready copy: floats to 4 decimals, NaN to null."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


def display(path: Path) -> str:
    """``path`` relative to the repository root when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def fmt(value: float | None) -> str:
    """A correlation as ``.623``/``-.120``; ``—`` when missing."""
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.3f}".replace("0.", ".", 1)


def markdown(data: dict[str, Any]) -> str:
    """The generated report: a summary table, then one table per task."""
    tasks = data["tasks"]
    lines = [
        "# Ranking quality of every proxy on every benchmark task",
        "",
        f"GENERATED FILE, do not edit: `{data['generated_by']}` wrote it from the per-task CSVs "
        "that `python benchmarks/proxy_ranking.py score` appends to (command lines: the script's "
        f"docstring). Numbers: `{data['json']}`.",
        "",
        "KT = Kendall tau-b, SR = Spearman, of each proxy's score against the benchmark's "
        "`val_accuracy` over the scored archs (n: archs with a value, — below 2; a correlation "
        "undefined by a constant side counts 0, as in the evaluator). Every arch of a task is "
        f"scored on ONE fixed batch of {BATCH_SIZE} (listed per task, with any substitute data) "
        "with models and proxies seeded. "
        "`aznas_population` and `tenas_population` rank the components over the task's scored "
        "archs. Strata KT (NB201): mean KT among archs with the same number of convolutions on "
        f"a path from the cell's input to its output, over strata of at least {MIN_STRATUM} archs, "
        "weighted by stratum size. NSZ KT/SR: NAS-Bench-Suite-Zero's own stored values of that "
        "proxy on the same archs (its own random batch and init per arch). Published: VKDNW "
        "(CVPR 2025) Table 1, authors' code, mean of 5 runs on NB201 (not the same archs).",
        "",
        "## Summary: KT per task",
        "",
    ]
    names = list(tasks)
    small = [t for t in names if tasks[t]["archs"] < MIN_MEAN_ARCHS]
    if small:
        lines += [
            f"Mean: over the tasks of at least {MIN_MEAN_ARCHS} scored archs; not in it (fewer "
            "archs so far, marked *): "
            + ", ".join(f"{t} ({tasks[t]['archs']})" for t in small)
            + ".",
            "",
        ]
    lines += [
        "| proxy | " + " | ".join(t + "*" * (t in small) for t in names) + " | mean |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for proxy, row in data["summary"].items():
        cells = [fmt(row.get(t)) for t in names] + [fmt(row["mean"])]
        lines.append(f"| {proxy} | " + " | ".join(cells) + " |")
    for name, entry in tasks.items():
        strata = entry["space"] == "nasbench201"
        seconds = entry["seconds_per_arch"]
        lines += [
            "",
            f"## {name}",
            "",
            f"{entry['archs']} archs, seed {entry['seed']}, on {', '.join(entry['devices'])}; "
            f"all proxies of one arch: median {seconds['median']:.2f} s, mean "
            f"{seconds['mean']:.2f} s. Batch: {entry['batch']}",
            "",
            "| proxy | KT | SR | n |"
            + (" strata KT | strata n |" if strata else "")
            + " NSZ KT | NSZ SR | published KT | published SR |",
            "|---|---:|---:|---:|" + ("---:|---:|" if strata else "") + "---:|---:|---:|---:|",
        ]
        for proxy, v in sorted(entry["proxies"].items(), key=lambda item: -_sortable(item[1])):
            cells = [fmt(v["kt"]), fmt(v["spearman"]), str(v["n"])]
            if strata:
                cells += [fmt(v["strata"]["kt"]), str(v["strata"]["n"])]
            nsz, pub = v.get("nsz", {}), v.get("published", {})
            cells += [fmt(nsz.get("kt")), fmt(nsz.get("spearman"))]
            cells += [fmt(pub.get("kt")), fmt(pub.get("spearman"))]
            lines.append(f"| {proxy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _sortable(entry: dict[str, Any]) -> float:
    """KT for sorting, missing ones last."""
    return -math.inf if math.isnan(entry["kt"]) else entry["kt"]


# ---- command line --------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    """``score`` (or ``score --smoke``) and ``report``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("score", help="score archs into <out-dir>/<task>.csv (resumable)")
    run.add_argument("--tasks", nargs="+", default=["all"], choices=["all", *TASKS])
    run.add_argument("--n", type=int, default=0, help="first N archs of each task's order (0: all)")
    run.add_argument("--full-sample", type=int, default=FULL_SAMPLE, help="archs of nb201full-*")
    run.add_argument("--workers", type=int, default=1, help="processes (1: this process)")
    run.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    run.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    run.add_argument("--seed", type=int, default=0, help="arch order, batch, model init, proxies")
    run.add_argument("--out-dir", type=Path, default=OUT_DIR)
    run.add_argument("--time-limit", type=float, help="seconds: no arch starts after it")
    run.add_argument(
        "--grace", type=float, default=30.0, help="seconds after the limit before dropping archs"
    )
    run.add_argument("--proxies", help="comma-separated subset (default: every registered one)")
    run.add_argument(
        "--retry-empty",
        action="store_true",
        help="score again the archs whose row has an empty cell (a proxy that failed there)",
    )
    run.add_argument("--smoke", action="store_true", help="1 arch per task, timed per proxy")
    rep = commands.add_parser("report", help="aggregate the CSVs into JSON and Markdown")
    rep.add_argument("--out-dir", type=Path, default=OUT_DIR)
    rep.add_argument("--json", type=Path, default=JSON_OUT)
    rep.add_argument("--markdown", type=Path, default=MARKDOWN_OUT)
    rep.add_argument(
        "--published",
        type=Path,
        default=shared_data_dir().parent / "docs" / "proxies.md",
        help="Markdown holding the VKDNW table (skipped when absent)",
    )
    args = parser.parse_args(argv)
    if args.command == "report":
        report_command(args)
    elif args.smoke:
        smoke_command(args)
    else:
        score_command(args)


if __name__ == "__main__":
    sys.exit(main())
