"""Build the embedded default benchmark ``benchmark_data/nb201mini_digits.h5`` (and its summary).

Trains ``NUM_ARCHS`` sampled isomorphism classes of ``nasbench201_mini`` on digits with every
seed of the protocol (``zcproxies.benchdata.embedded``), one CPU thread per run, in ``--workers``
worker processes. Every finished run is appended to a JSON-lines cache at once, so an
interrupted build continues where it stopped; cache lines of another protocol are ignored.
Runs are independent and single-threaded, hence the result does not depend on the number of
workers or on interruptions. ``created`` is ``$SOURCE_DATE_EPOCH`` when set (else now).

    python benchmarks/build_embedded_benchmark.py            # build / resume
    python benchmarks/build_embedded_benchmark.py --pilot 24 # compare candidate protocols
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau
from tqdm import tqdm

from zcproxies.benchdata import embedded as emb
from zcproxies.benchdata.format import (
    BenchmarkTask,
    load_benchmark,
    seed_agreement,
    write_benchmark,
)
from zcproxies.spaces import get_space
from zcproxies.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / "build" / "embedded_benchmark_cache.jsonl"
DEFAULT_WORKERS = 2  # the development machine has 2 cores
# Candidate protocols of the pilot (``--pilot``): TrainConfig overrides.
PILOT_CONFIGS = (
    {"epochs": 3, "batch_size": 64, "lr": 0.05},
    {"epochs": 2, "batch_size": 64, "lr": 0.05},
    {"epochs": 3, "batch_size": 256, "lr": 0.05},
    {"epochs": 5, "batch_size": 256, "lr": 0.02},
    {"epochs": 4, "batch_size": 128, "lr": 0.02},
    {"epochs": 4, "batch_size": 64, "lr": 0.02},
    {"epochs": 6, "batch_size": 128, "lr": 0.02},
    {"epochs": 8, "batch_size": 128, "lr": 0.01},
)

_SPLITS: emb.Splits | None = None  # per worker process


def _init_worker() -> None:
    """One torch thread per worker and the protocol's data, read once."""
    global _SPLITS
    torch.set_num_threads(1)
    _SPLITS = emb.digits_splits()


def _run(key: str, seed: int, config: dict) -> tuple[str, int, emb.RunResult]:
    arch = get_space(emb.SPACE).decode(key)
    return key, seed, emb.train_arch(arch, seed, _SPLITS, TrainConfig(**config))


def protocol_hash(protocol: dict) -> str:
    """Short hash of everything that determines a run's result.

    ``num_archs`` is left out: the sample of N archs is the first N of a larger one.
    """
    relevant = {k: v for k, v in protocol.items() if k not in ("num_archs",)}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def read_cache(path: Path, tag: str) -> dict[tuple[str, int], dict]:
    """Finished runs of protocol ``tag``; a torn last line (interrupted write) is skipped."""
    done: dict[tuple[str, int], dict] = {}
    if not path.is_file():
        return done
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("protocol") == tag:
            done[(row["arch"], row["seed"])] = row
    return done


def run_all(
    jobs: list[tuple[str, int]], config: dict, workers: int, desc: str
) -> Iterator[tuple[str, int, emb.RunResult]]:
    """Results of ``jobs`` as they finish, in ``workers`` single-threaded processes."""
    if not jobs:
        return
    pool = ProcessPoolExecutor(workers, initializer=_init_worker)
    try:
        futures = [pool.submit(_run, key, seed, config) for key, seed in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="run"):
            yield future.result()
    finally:  # on an interruption, drop the queued runs instead of finishing them
        pool.shutdown(wait=True, cancel_futures=True)


def stats(values: np.ndarray) -> dict[str, float]:
    """Spread of a column (rounded for the summary)."""
    pct = np.percentile(values, [0, 10, 50, 90, 100])
    names = ("min", "p10", "median", "p90", "max", "mean", "std")
    return {
        k: round(float(v), 3)
        for k, v in zip(names, (*pct, values.mean(), values.std()), strict=True)
    }


def build(args: argparse.Namespace) -> None:
    """Train what the cache lacks, then write the benchmark file and its JSON summary."""
    start = time.perf_counter()
    protocol = emb.protocol()
    protocol["num_archs"] = args.num_archs
    tag = protocol_hash(protocol)
    space = get_space(emb.SPACE)
    keys = [space.encode(a) for a in emb.sample_archs(args.num_archs)]
    done = read_cache(args.cache, tag)
    jobs = [(k, s) for k in keys for s in emb.SEEDS if (k, s) not in done]
    print(
        f"{len(keys)} archs x {len(emb.SEEDS)} seeds: {len(done)} runs cached in "
        f"{args.cache}, {len(jobs)} to train with {args.workers} worker(s)",
        file=sys.stderr,
    )
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    with open(args.cache, "a") as cache:
        if not args.cache.read_bytes().endswith(b"\n") and args.cache.stat().st_size:
            cache.write("\n")  # end a line torn by an interruption
        for key, seed, result in run_all(
            jobs, emb.TRAIN_CONFIG.to_dict(), args.workers, "training"
        ):
            row = {
                "protocol": tag,
                "arch": key,
                "seed": seed,
                "val_accuracy": result.val_accuracy,
                "test_accuracy": result.test_accuracy,
                "seconds": result.seconds,
            }
            cache.write(json.dumps(row) + "\n")
            cache.flush()
            os.fsync(cache.fileno())
            done[(key, seed)] = row
    table = make_table(keys, done, protocol)
    created = os.environ.get("SOURCE_DATE_EPOCH")
    write_benchmark(
        args.out,
        [table],
        generator="benchmarks/build_embedded_benchmark.py",
        created=(dt.datetime.fromtimestamp(int(created), dt.UTC).isoformat() if created else None),
        description="zcp's embedded default benchmark: NAS-Bench-201 cells on a reduced "
        "skeleton, trained by the project on scikit-learn's digits",
    )
    summary = summarize(load_benchmark(args.out).task(emb.SPACE, emb.TASK), done, keys, args.out)
    summary["wall_seconds_this_invocation"] = round(time.perf_counter() - start, 1)
    args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["noise_ceiling"]), file=sys.stderr)


def make_table(keys: list[str], done: dict[tuple[str, int], dict], protocol: dict) -> BenchmarkTask:
    """The benchmark table: seed means, per-seed values, params and FLOPs, in sample order."""
    space = get_space(emb.SPACE)
    seeds = {
        col: np.array([[done[(k, s)][col] for s in emb.SEEDS] for k in keys])
        for col in ("val_accuracy", "test_accuracy")
    }
    sizes = np.array([emb.arch_size(space.decode(k)) for k in keys])
    frame = pd.DataFrame(
        {
            "arch": keys,
            "val_accuracy": seeds["val_accuracy"].mean(1),
            "test_accuracy": seeds["test_accuracy"].mean(1),
            "params": sizes[:, 0],
            "flops": sizes[:, 1],
        }
    )
    return BenchmarkTask(
        emb.SPACE,
        emb.TASK,
        frame,
        source="zcp embedded benchmark, trained by benchmarks/build_embedded_benchmark.py "
        "(protocol attribute); data: scikit-learn digits (UCI optdigits test set)",
        seeds=seeds,
        protocol=protocol,
        column_units={"params": "millions", "flops": "MFLOPs (batch size 1, NASLib convention)"},
        attrs={"seeds": list(emb.SEEDS)},
    )


def summarize(
    table: BenchmarkTask, done: dict[tuple[str, int], dict], keys: list[str], out: Path
) -> dict:
    """The JSON summary: noise ceiling, accuracy spread, protocol, time."""
    seconds = np.array([done[(k, s)]["seconds"] for k in keys for s in emb.SEEDS])
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
        "val_vs_test_kendall_tau": round(
            float(kendalltau(table.frame["val_accuracy"], table.frame["test_accuracy"]).statistic),
            4,
        ),
        "val_vs_size_kendall_tau": {
            col: round(
                float(kendalltau(table.frame[col], table.frame["val_accuracy"]).statistic), 4
            )
            for col in ("params", "flops")
        },
        "val_accuracy": stats(table.frame["val_accuracy"].to_numpy()),
        "test_accuracy": stats(table.frame["test_accuracy"].to_numpy()),
        "protocol": table.protocol,
        "time": {
            "runs": int(seconds.size),
            "train_seconds_total": round(float(seconds.sum()), 1),
            "train_seconds_per_run_mean": round(float(seconds.mean()), 3),
        },
    }


def pilot(args: argparse.Namespace) -> None:
    """Train the first ``args.pilot`` sampled archs under each candidate config; print stats."""
    space = get_space(emb.SPACE)
    keys = [space.encode(a) for a in emb.sample_archs(args.pilot)]
    jobs = [(k, s) for k in keys for s in emb.SEEDS]
    params = [emb.arch_size(space.decode(k))[0] for k in keys]
    base = emb.TRAIN_CONFIG.to_dict()
    for overrides in args.configs or PILOT_CONFIGS:
        acc: dict[tuple[str, int], float] = {}
        seconds = []
        for key, seed, result in run_all(jobs, base | overrides, args.workers, str(overrides)):
            acc[(key, seed)] = result.val_accuracy
            seconds.append(result.seconds)
        values = np.array([[acc[(k, s)] for s in emb.SEEDS] for k in keys])
        print(
            json.dumps(
                {
                    "config": overrides,
                    "seconds_per_run": round(float(np.mean(seconds)), 2),
                    "val_accuracy": stats(values.mean(1)),
                    "seed_kendall_tau": round(seed_agreement(values), 3),
                    "params_kendall_tau": round(
                        float(kendalltau(params, values.mean(1)).statistic), 3
                    ),
                }
            ),
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    """Command line: build (default) or ``--pilot N``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-archs", type=int, default=emb.NUM_ARCHS)
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="single-threaded processes"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=emb.embedded_path())
    parser.add_argument("--summary", type=Path, default=emb.embedded_path().with_suffix(".json"))
    parser.add_argument(
        "--pilot",
        type=int,
        default=0,
        metavar="N",
        help="compare PILOT_CONFIGS on the first N sampled archs instead",
    )
    parser.add_argument(
        "--configs",
        type=json.loads,
        nargs="+",
        metavar="JSON",
        help="TrainConfig overrides for --pilot (default: PILOT_CONFIGS)",
    )
    args = parser.parse_args(argv)
    if args.pilot:
        pilot(args)
    else:
        build(args)


if __name__ == "__main__":
    main()
