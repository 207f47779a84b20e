"""Build the embedded default benchmark ``benchmark_data/nb201mini_shapes.h5`` (and its summary).

Trains ``NUM_ARCHS`` sampled isomorphism classes of ``nasbench201_mini`` on the protocol's data
(``zcproxies.benchdata.embedded.PROTOCOL``) with every seed, one CPU thread per run, in
``--workers`` worker processes, then measures the benchmark against NAS-Bench-201 CIFAR-10
(shared data): Kendall-Tau of its accuracies with NB201's validation accuracies of the same
cells, seed-vs-seed Kendall-Tau, and the Spearman correlation between the proxies' Kendall-Taus
on it and on NB201 CIFAR-10 (``benchmarks/results/ranking/nb201full-cifar10.csv``, 1,062 NB201
archs scored by ``benchmarks/proxy_ranking.py``). Every finished run and proxy score is
appended to a JSON-lines cache at once, so an interrupted build or pilot continues where it
stopped; cache lines of another protocol are ignored. Runs are independent and
single-threaded, hence results do not depend on the number of workers or on interruptions.
``created`` is ``$SOURCE_DATE_EPOCH`` when set (else now).

The tables of ``benchmark_data/README.md`` (the aims, the pilot, the result) and the figures
in the README's competitor path are generated from ``benchmarks/results/embedded_pilot.json``
and the build's summary ``nb201mini_shapes.json``, between ``<!-- begin NAME -->`` and
``<!-- end NAME -->`` markers; a build and a pilot rewrite them, ``--docs`` alone does too.

    python benchmarks/build_embedded_benchmark.py                 # build / resume
    python benchmarks/build_embedded_benchmark.py --pilot 48      # every PILOT protocol
    python benchmarks/build_embedded_benchmark.py --pilot 48 --protocols clean-12px-4k-x4
    python benchmarks/build_embedded_benchmark.py --docs          # only regenerate the tables
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau, spearmanr
from tqdm import tqdm

from zcproxies.benchdata import embedded as emb
from zcproxies.benchdata.format import BenchmarkTask, load_benchmark, write_benchmark
from zcproxies.data.synthetic import ShapesStyle
from zcproxies.paths import shared_data_dir
from zcproxies.proxies import list_proxies, score_many
from zcproxies.proxies.ensemble import COMPONENTS, ComponentStats, combine, reference_stats
from zcproxies.spaces import get_space
from zcproxies.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / "build" / "embedded_benchmark_cache.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "embedded_pilot.json"
NB201_TABLE = "full_tables/nasbench201_val_accuracy.csv"  # under the shared data directory
NB201_PROXIES = ROOT / "benchmarks" / "results" / "ranking" / "nb201full-cifar10.csv"
README = ROOT / "benchmark_data" / "README.md"
MAIN_README = ROOT / "README.md"
# The aims of issue 15, in its order: the measured figure and the bar it should reach.
AIMS = {
    "nb201_kendall_tau": ("agreement: Kendall-Tau with NB201 CIFAR-10 val accuracy", 0.6),
    "seed_kendall_tau": ("noise ceiling: seed-vs-seed Kendall-Tau", 0.8),
    "proxy_ranking_spearman": (
        "proxy ranking: Spearman of the proxies' Kendall-Taus, here vs on NB201 CIFAR-10",
        0.8,
    ),
}
DEFAULT_WORKERS = 2  # the development machine has 2 cores
PROXY_BATCH = 64  # the first 64 fitted images, as the evaluator's batch size
# The pilot's protocols: overrides (top-level, TrainConfig or ShapesStyle fields) of this base,
# written out in full so that the pilot means the same whatever PROTOCOL is kept.
PILOT_BASE = emb.Protocol(
    dataset="shapes",
    style=ShapesStyle(
        size=16, noise=0.08, clutter=2, radius=(0.4, 0.65), max_rotation=0.3, texture=1.0
    ),
    channels=8,
    cells=1,
    train_size=3000,
    val_size=2000,
    test_size=1000,
    train=TrainConfig(epochs=3, batch_size=64, lr=0.05, channels_last=True),
)
CLEAN = {"noise": 0.04, "clutter": 0, "texture": 0.5}  # the clean style (bold shapes, mild noise)
MEDIUM = {"noise": 0.06, "clutter": 1, "texture": 0.75}  # between clean and PILOT_BASE's
PILOT: dict[str, dict[str, Any]] = {
    "old-digits": {"dataset": "digits", "epochs": 3, "batch_size": 128, "lr": 0.03},
    "clean-16px-3k-x3": {**CLEAN},
    "medium-12px-3k-x4": {**MEDIUM, "size": 12, "epochs": 4},
    "hard-12px-4k-x4": {"size": 12, "train_size": 4000, "epochs": 4},
    "medium-12px-N2-3k-x3": {**MEDIUM, "size": 12, "cells": 2},
    "clean-16px-4k-x4": {**CLEAN, "train_size": 4000, "epochs": 4},
    "clean-12px-4k-x4": {**CLEAN, "size": 12, "train_size": 4000, "epochs": 4},
    "clean-16px-N2-3k-x3": {**CLEAN, "cells": 2},
    "clean-12px-N2-4k-x4": {**CLEAN, "size": 12, "cells": 2, "train_size": 4000, "epochs": 4},
    "clean-12px-3k-x3": {**CLEAN, "size": 12},
    "clean-12px-C4-4k-x4": {**CLEAN, "size": 12, "channels": 4, "train_size": 4000, "epochs": 4},
    "clean-12px-C4-N2-4k-x4": {
        **CLEAN,
        "size": 12,
        "channels": 4,
        "cells": 2,
        "train_size": 4000,
        "epochs": 4,
    },
}


def protocol_hash(protocol: emb.Protocol) -> str:
    """Short hash of everything that determines a run's result."""
    return hashlib.sha256(json.dumps(protocol.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def data_hash(protocol: emb.Protocol) -> str:
    """Short hash of what determines a proxy score: skeleton and data, not the training."""
    record = protocol.to_dict()
    del record["train"]
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- workers ---------------
_SPLITS: dict[str, emb.Splits] = {}  # per worker process, by protocol hash


def _init_worker() -> None:
    """One torch thread per worker."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")


def _splits(protocol: emb.Protocol) -> emb.Splits:
    """The protocol's data, made once per worker."""
    key = data_hash(protocol)
    if key not in _SPLITS:
        _SPLITS[key] = emb.make_splits(protocol)
    return _SPLITS[key]


def _train(key: str, seed: int, protocol: emb.Protocol) -> dict[str, Any]:
    result = emb.train_arch(get_space(emb.SPACE).decode(key), seed, _splits(protocol), protocol)
    return {"arch": key, "seed": seed, **result.__dict__}


def proxy_names() -> list[str]:
    """The proxies compared: every registered per-architecture proxy (``zcp proxies``)."""
    return [info.name for info in list_proxies()]


def _score(key: str, protocol: emb.Protocol) -> dict[str, Any]:
    """Every proxy but ``zcp_ensemble`` (made from its components later) on one arch."""
    start = time.process_time()
    x, y = (t[:PROXY_BATCH] for t in _splits(protocol).train)
    model = emb.build_network(get_space(emb.SPACE).decode(key), 0, protocol)
    names = [n for n in proxy_names() if n != "zcp_ensemble"]
    scores = score_many(names, model, x, y, protocol.task.num_classes, seed=0)
    return {"arch": key, "scores": scores, "cpu_seconds": time.process_time() - start}


def read_cache(path: Path, kind: str, tag: str) -> list[dict[str, Any]]:
    """Cached rows of ``kind`` ("run" or "proxies") and tag; a torn line is skipped."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("kind") == kind and row.get("tag") == tag:
                rows.append(row)
    return rows


def run_cached(
    path: Path, kind: str, tag: str, fn: Any, jobs: list[tuple], workers: int, desc: str
) -> list[dict[str, Any]]:
    """``fn(*job)`` for the jobs not yet cached, appended to the cache as they finish."""
    done = read_cache(path, kind, tag)
    have = {(r["arch"], r.get("seed")) for r in done}
    todo = [j for j in jobs if (j[0], j[1] if kind == "run" else None) not in have]
    if not todo:
        return done
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as cache:
        if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            cache.write("\n")  # end a line torn by an interruption
        pool = ProcessPoolExecutor(workers, initializer=_init_worker)
        try:
            futures = [pool.submit(fn, *job) for job in todo]
            for future in tqdm(as_completed(futures), total=len(futures), desc=desc, unit=kind):
                row = {"kind": kind, "tag": tag, **future.result()}
                cache.write(json.dumps(row) + "\n")
                cache.flush()
                os.fsync(cache.fileno())
                done.append(row)
        finally:  # on an interruption, drop the queued jobs instead of finishing them
            pool.shutdown(wait=True, cancel_futures=True)
    return done


def train_all(
    keys: list[str], protocol: emb.Protocol, args: argparse.Namespace, desc: str
) -> dict[tuple[str, int], dict[str, Any]]:
    """Every (arch, seed) run of ``protocol``, trained where not cached."""
    jobs = [(k, s, protocol) for k in keys for s in emb.SEEDS]
    rows = run_cached(args.cache, "run", protocol_hash(protocol), _train, jobs, args.workers, desc)
    return {(r["arch"], r["seed"]): r for r in rows}


def score_all(keys: list[str], protocol: emb.Protocol, args: argparse.Namespace) -> pd.DataFrame:
    """Proxy scores of ``keys`` on the protocol's networks and data (rows: archs)."""
    jobs = [(k, None, protocol) for k in keys]
    rows = run_cached(
        args.cache, "proxies", data_hash(protocol), _score_job, jobs, args.workers, "proxies"
    )
    frame = pd.DataFrame({r["arch"]: r["scores"] for r in rows}).T
    return frame.loc[keys]


def _score_job(key: str, _: None, protocol: emb.Protocol) -> dict[str, Any]:
    return _score(key, protocol)


# ---------------------------------------------------------------- measurements ----------
def nb201_reference() -> tuple[pd.Series, dict[str, float]]:
    """NB201 CIFAR-10 validation accuracy by arch key, and each proxy's Kendall-Tau on the NB201
    archs of ``NB201_PROXIES`` (a row per scoring; an arch's first value of each proxy is used,
    archs without one left out, as ``benchmarks/proxy_ranking.py report`` does)."""
    table = pd.read_csv(shared_data_dir() / NB201_TABLE).set_index("arch")["cifar10"]
    scored = pd.read_csv(NB201_PROXIES).groupby("arch").first()
    taus = {}
    for name in proxy_names():
        if name in scored.columns:
            column = scored[name].dropna()
            taus[name] = tau(column.to_numpy(), table.loc[column.index].to_numpy())
    return table, taus


def tau(scores: np.ndarray, accuracy: np.ndarray) -> float:
    """Kendall tau-b, 0 where undefined (a constant side), as the evaluator counts it."""
    value = kendalltau(scores, accuracy).statistic
    return 0.0 if not np.isfinite(value) else float(value)


def with_ensemble(scores: pd.DataFrame, stats: dict[str, ComponentStats] | None) -> pd.DataFrame:
    """Add ``zcp_ensemble`` from its component columns; ``stats`` None: normalised by this
    population's own statistics (the pilot's pairs have no stored reference)."""
    if stats is None:
        raw = {name: reference_stats(scores[name].to_numpy(), name) for name in COMPONENTS}
        stats = {n: ComponentStats(r["location"], r["scale"]) for n, r in raw.items()}
    out = scores.copy()
    out["zcp_ensemble"] = [
        combine(row, stats) for row in scores[list(COMPONENTS)].to_dict("records")
    ]
    return out


def aims(
    keys: list[str],
    values: np.ndarray,
    scores: pd.DataFrame,
    nb201: pd.Series,
    nb201_taus: dict[str, float],
) -> dict[str, Any]:
    """The three aims on ``keys`` (values: (archs, seeds) val accuracies)."""
    mean = values.mean(1)
    proxy_taus = {name: tau(scores[name].to_numpy(), mean) for name in nb201_taus}
    names = sorted(nb201_taus)
    return {
        "nb201_kendall_tau": round(tau(mean, nb201.loc[keys].to_numpy()), 4),
        "seed_kendall_tau": round(tau(values[:, 0], values[:, 1]), 4),
        "proxy_ranking_spearman": round(
            float(
                spearmanr([proxy_taus[n] for n in names], [nb201_taus[n] for n in names]).statistic
            ),
            4,
        ),
        "proxies": len(names),
        "proxy_kendall_tau": {n: round(proxy_taus[n], 4) for n in names},
        "proxy_kendall_tau_nb201": {n: round(nb201_taus[n], 4) for n in names},
    }


def stats(values: np.ndarray) -> dict[str, float]:
    """Spread of a column (rounded for the summary)."""
    pct = np.percentile(values, [0, 10, 50, 90, 100])
    names = ("min", "p10", "median", "p90", "max", "mean", "std")
    return {
        k: round(float(v), 3)
        for k, v in zip(names, (*pct, values.mean(), values.std()), strict=True)
    }


# ---------------------------------------------------------------- commands --------------
def pilot(args: argparse.Namespace) -> None:
    """Train the first ``args.pilot`` sampled archs under each pilot protocol; print the aims."""
    space = get_space(emb.SPACE)
    keys = [space.encode(a) for a in emb.sample_archs(args.pilot)]
    nb201, nb201_taus = nb201_reference()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in args.protocols or PILOT:
        protocol = PILOT_BASE.replace(**PILOT[name])
        runs = train_all(keys, protocol, args, name)
        values = np.array([[runs[(k, s)]["val_accuracy"] for s in emb.SEEDS] for k in keys])
        scores = with_ensemble(score_all(keys, protocol, args), None)
        cpu = np.array([runs[(k, s)]["cpu_seconds"] for k in keys for s in emb.SEEDS])
        row = {
            "protocol": PILOT[name],
            "archs": len(keys),
            **aims(keys, values, scores, nb201, nb201_taus),
            "val_accuracy": stats(values.mean(1)),
            "cpu_seconds_per_run": round(float(cpu.mean()), 2),
        }
        results[f"{name}@{len(keys)}"] = row
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        print(pilot_line(name, row), flush=True)
    write_docs(results, read_summary(args.summary))


def pilot_line(name: str, row: dict[str, Any], overrides: str = "") -> str:
    """One markdown table row of a pilot result (or of the build, ``build_row``)."""
    acc = row["val_accuracy"]
    return (
        f"| {name} | {overrides} | {row['archs']:,} | {acc['median']:.1f} "
        f"| {acc['p10']:.1f} - {acc['p90']:.1f} "
        f"| {row['nb201_kendall_tau']:.3f} | {row['seed_kendall_tau']:.3f} "
        f"| {row['proxy_ranking_spearman']:.3f} | {row['cpu_seconds_per_run']:.1f} |"
    )


def build(args: argparse.Namespace) -> None:
    """Train what the cache lacks, measure the aims, write the benchmark file and its summary."""
    start = time.perf_counter()
    protocol = emb.PROTOCOL
    space = get_space(emb.SPACE)
    keys = [space.encode(a) for a in emb.sample_archs(args.num_archs)]
    runs = train_all(keys, protocol, args, "training")
    nb201, nb201_taus = nb201_reference()
    values = {
        col: np.array([[runs[(k, s)][col] for s in emb.SEEDS] for k in keys])
        for col in ("val_accuracy", "test_accuracy")
    }
    scores = with_ensemble(score_all(keys, protocol, args), None)
    measured = aims(keys, values["val_accuracy"], scores, nb201, nb201_taus)
    table = make_table(keys, values, protocol, measured)
    created = os.environ.get("SOURCE_DATE_EPOCH")
    write_benchmark(
        args.out,
        [table],
        generator="benchmarks/build_embedded_benchmark.py",
        created=(dt.datetime.fromtimestamp(int(created), dt.UTC).isoformat() if created else None),
        description=emb.DESCRIPTION,
    )
    summary = summarize(load_benchmark(args.out).task(emb.SPACE, emb.TASK), runs, keys, args.out)
    summary["aims"] = measured
    summary["wall_seconds_this_invocation"] = round(time.perf_counter() - start, 1)
    args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    print(pilot_line("kept (build)", build_row(summary)))
    write_docs(read_results(), summary)


def make_table(
    keys: list[str], values: dict[str, np.ndarray], protocol: emb.Protocol, measured: dict
) -> BenchmarkTask:
    """The benchmark table: seed means, per-seed values, params, FLOPs and the measured aims."""
    space = get_space(emb.SPACE)
    sizes = np.array([emb.arch_size(space.decode(k), protocol) for k in keys])
    frame = pd.DataFrame(
        {
            "arch": keys,
            "val_accuracy": values["val_accuracy"].mean(1),
            "test_accuracy": values["test_accuracy"].mean(1),
            "params": sizes[:, 0],
            "flops": sizes[:, 1],
        }
    )
    return BenchmarkTask(
        emb.SPACE,
        emb.TASK,
        frame,
        source="zcp embedded benchmark, trained by benchmarks/build_embedded_benchmark.py "
        "(protocol attribute); data: zcproxies.data.synthetic shapes (generated)",
        seeds=values,
        protocol=emb.protocol_record(protocol),
        column_units={"params": "millions", "flops": "MFLOPs (batch size 1, NASLib convention)"},
        attrs={
            "seeds": list(emb.SEEDS),
            "description": emb.DESCRIPTION,
            **{f"agreement_{k}": measured[k] for k in emb.AGREEMENT_KEYS},
        },
    )


def summarize(
    table: BenchmarkTask, runs: dict[tuple[str, int], dict], keys: list[str], out: Path
) -> dict:
    """The JSON summary: noise ceiling, accuracy spread, protocol, time."""
    cpu = np.array([runs[(k, s)]["cpu_seconds"] for k in keys for s in emb.SEEDS])
    wall = np.array([runs[(k, s)]["seconds"] for k in keys for s in emb.SEEDS])
    frame = table.frame
    return {
        "file": out.name,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "space": table.space,
        "task": table.task,
        "num_archs": len(table),
        "distinct_isomorphism_classes": len(
            {get_space(table.space).canonical_key(a) for a in table.archs}
        ),
        "seeds": list(emb.SEEDS),
        "noise_ceiling": {
            "val_accuracy_seed_kendall_tau": round(table.seed_kendall_tau("val_accuracy"), 4),
            "test_accuracy_seed_kendall_tau": round(table.seed_kendall_tau("test_accuracy"), 4),
        },
        "val_vs_test_kendall_tau": round(tau(frame["val_accuracy"], frame["test_accuracy"]), 4),
        "val_vs_size_kendall_tau": {
            col: round(tau(frame[col], frame["val_accuracy"]), 4) for col in ("params", "flops")
        },
        "val_accuracy": stats(frame["val_accuracy"].to_numpy()),
        "test_accuracy": stats(frame["test_accuracy"].to_numpy()),
        "protocol": table.protocol,
        "time": {
            "runs": int(cpu.size),
            "cpu_seconds_total": round(float(cpu.sum()), 1),
            "cpu_seconds_per_run": round(float(cpu.mean()), 3),
            "train_wall_seconds_total": round(float(wall.sum()), 1),
        },
    }


# ---------------------------------------------------------------- docs ------------------
def read_results() -> dict[str, Any]:
    """The pilot results (``RESULTS``), empty before any pilot."""
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}


def read_summary(path: Path) -> dict[str, Any] | None:
    """The build's summary, None before the build."""
    return json.loads(path.read_text()) if path.is_file() else None


def build_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The build's summary in the form of a pilot row."""
    return {
        **summary["aims"],
        "archs": summary["num_archs"],
        "val_accuracy": summary["val_accuracy"],
        "cpu_seconds_per_run": summary["time"]["cpu_seconds_per_run"],
    }


def kept_pilot() -> str | None:
    """The PILOT protocol that is ``PROTOCOL`` (same hash), if one is."""
    kept = protocol_hash(emb.PROTOCOL)
    return next(
        (n for n, o in PILOT.items() if protocol_hash(PILOT_BASE.replace(**o)) == kept), None
    )


def _figure(value: float, bar: float) -> str:
    return f"{value:.3f} ({'met' if value >= bar else 'not met'})"


def aims_table(results: dict[str, Any], summary: dict[str, Any] | None) -> str:
    """The aims, their bars and the kept protocol's figures (pilot, full build)."""
    kept = kept_pilot()
    pilots = [(k, r) for k, r in results.items() if k.partition("@")[0] == kept]
    heads = [f"kept protocol, pilot ({r['archs']} archs)" for _, r in pilots]
    heads.append(
        f"kept protocol, built ({summary['num_archs']:,} classes x {len(summary['seeds'])} seeds)"
        if summary
        else "kept protocol, built"
    )
    lines = ["| aim | bar | " + " | ".join(heads) + " |", "|---" * (2 + len(heads)) + "|"]
    for key, (label, bar) in AIMS.items():
        cells = [_figure(r[key], bar) for _, r in pilots]
        cells.append(_figure(summary["aims"][key], bar) if summary else "pending the build")
        lines.append(f"| {label} | >= {bar} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pilot_table(results: dict[str, Any], summary: dict[str, Any] | None) -> str:
    """Every piloted protocol's row, then the kept protocol's full build."""
    kept = kept_pilot()
    lines = [
        "| protocol | overrides of `PILOT_BASE` | archs | median val acc | p10 - p90 | NB201 KT "
        "| seed KT | proxy SR | CPU s/run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in results.items():
        name = key.partition("@")[0]
        label = f"**{name} (kept)**" if name == kept else name
        overrides = ", ".join(f"{k} {v}" for k, v in row["protocol"].items())
        lines.append(pilot_line(label, row, overrides))
    if summary:
        lines.append(pilot_line(f"**{kept} (kept), full build**", build_row(summary), "as kept"))
    else:
        lines.append(f"| **{kept} (kept), full build** | pending the build |" + " |" * 7)
    untried = [n for n in PILOT if not any(k.partition("@")[0] == n for k in results)]
    if untried:
        lines += ["", "Declared in `PILOT` but not piloted: " + ", ".join(untried) + "."]
    return "\n".join(lines)


def summary_table(summary: dict[str, Any] | None) -> str:
    """The build's figures (``nb201mini_shapes.json``) and each proxy's Kendall-Tau on it."""
    if not summary:
        return "_Pending: `benchmarks/build_embedded_benchmark.py` writes this table._"
    aims_ = summary["aims"]
    cpu = summary["time"]
    val, test = summary["val_accuracy"], summary["test_accuracy"]
    spread = "{min:.1f} / {p10:.1f} / {median:.1f} / {p90:.1f} / {max:.1f}"
    size = summary["val_vs_size_kendall_tau"]
    rows = [
        (
            "architectures (distinct isomorphism classes)",
            f"{summary['num_archs']:,} "
            f"({summary['distinct_isomorphism_classes']:,}), seeds "
            + ", ".join(map(str, summary["seeds"])),
        ),
        ("Kendall-Tau with NB201 CIFAR-10 val accuracy", f"{aims_['nb201_kendall_tau']:.3f}"),
        (
            "seed-vs-seed Kendall-Tau, val / test accuracy",
            f"{summary['noise_ceiling']['val_accuracy_seed_kendall_tau']:.3f} / "
            f"{summary['noise_ceiling']['test_accuracy_seed_kendall_tau']:.3f}",
        ),
        (
            f"proxy-ranking Spearman ({aims_['proxies']} proxies)",
            f"{aims_['proxy_ranking_spearman']:.3f}",
        ),
        ("Kendall-Tau val vs test accuracy", f"{summary['val_vs_test_kendall_tau']:.3f}"),
        (
            "Kendall-Tau params / FLOPs vs val accuracy",
            f"{size['params']:.3f} / {size['flops']:.3f}",
        ),
        ("val accuracy % (min / p10 / median / p90 / max)", spread.format(**val)),
        ("test accuracy % (min / p10 / median / p90 / max)", spread.format(**test)),
        (
            "training",
            f"{cpu['runs']:,} runs, {cpu['cpu_seconds_total']:,.0f} CPU-s "
            f"({cpu['cpu_seconds_per_run']:.2f} per run), {cpu['train_wall_seconds_total']:,.0f} "
            "s wall summed over runs",
        ),
        ("sha256 of the `.h5`", f"`{summary['sha256']}`"),
    ]
    lines = ["| figure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    lines += [
        "Each proxy's Kendall-Tau with the val accuracy (init seed 0, the 64 first fitted "
        "images) and on NB201 CIFAR-10 (`benchmarks/results/ranking/nb201full-cifar10.csv`):",
        "",
        "| proxy | here | NB201 CIFAR-10 |",
        "|---|---|---|",
    ]
    here, nb201 = aims_["proxy_kendall_tau"], aims_["proxy_kendall_tau_nb201"]
    for name in sorted(nb201, key=nb201.get, reverse=True):
        lines.append(f"| `{name}` | {here[name]:.3f} | {nb201[name]:.3f} |")
    return "\n".join(lines)


def embedded_sentence(summary: dict[str, Any] | None) -> str:
    """The README's one sentence on the default benchmark and its measured agreement."""
    what = "NAS-Bench-201 cells on a reduced skeleton, trained by zcp on generated 12x12 shapes"
    if not summary:
        return f"{what} (its measured agreement with NB201 is written here by its build)."
    aims_ = summary["aims"]
    return (
        f"{what}, {summary['num_archs']:,} isomorphism classes x {len(summary['seeds'])} seeds. "
        f"Over its cells, Kendall-Tau with NB201 CIFAR-10 validation accuracy "
        f"{aims_['nb201_kendall_tau']:.2f}, seed-vs-seed {aims_['seed_kendall_tau']:.2f}; the "
        f"{aims_['proxies']} proxies rank on it as on NB201 CIFAR-10 at Spearman "
        f"{aims_['proxy_ranking_spearman']:.2f}."
    )


def fill(text: str, name: str, body: str) -> str:
    """``text`` with what lies between its ``<!-- begin name -->`` and ``<!-- end name -->``
    markers replaced by ``body``: on lines of their own where the markers are, else inline."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    pattern = re.compile(rf"{re.escape(begin)}(.*?){re.escape(end)}", re.S)
    found = pattern.search(text)
    if found is None:
        raise SystemExit(f"error: no {begin} ... {end} markers")
    sep = "\n" if found[1].startswith("\n") else ""
    return text[: found.start()] + f"{begin}{sep}{body}{sep}{end}" + text[found.end() :]


def render_docs(
    results: dict[str, Any], summary: dict[str, Any] | None, readme: str, main_readme: str
) -> tuple[str, str]:
    """The two READMEs with their generated parts filled in."""
    readme = fill(readme, "aims", aims_table(results, summary))
    readme = fill(readme, "pilot", pilot_table(results, summary))
    readme = fill(readme, "result", summary_table(summary))
    return readme, fill(main_readme, "embedded-figures", embedded_sentence(summary))


def write_docs(results: dict[str, Any], summary: dict[str, Any] | None) -> None:
    """Rewrite the generated parts of ``README`` and ``MAIN_README``."""
    readme, main_readme = render_docs(results, summary, README.read_text(), MAIN_README.read_text())
    README.write_text(readme)
    MAIN_README.write_text(main_readme)
    print(f"wrote the tables of {README.relative_to(ROOT)} and the figures of README.md")


def main(argv: list[str] | None = None) -> None:
    """Command line: build (default), ``--pilot N`` or ``--docs``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-archs", type=int, default=emb.NUM_ARCHS)
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="single-threaded processes"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=emb.embedded_path())
    parser.add_argument("--summary", type=Path, default=emb.embedded_path().with_suffix(".json"))
    parser.add_argument(
        "--pilot", type=int, default=0, metavar="N", help="run the pilot on the first N archs"
    )
    parser.add_argument("--protocols", nargs="+", choices=sorted(PILOT), help="pilot subset")
    parser.add_argument(
        "--docs", action="store_true", help="only regenerate the README tables from the results"
    )
    args = parser.parse_args(argv)
    if args.docs:
        write_docs(read_results(), read_summary(args.summary))
    elif args.pilot:
        pilot(args)
    else:
        build(args)


if __name__ == "__main__":
    main()
