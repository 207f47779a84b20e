"""Build the per-(space, task) reference statistics of the ``zcp_ensemble`` proxy.

For each pair: K architectures drawn with ``space.sample`` from a seeded generator (never
benchmark architectures, never accuracies), each built and scored with the ensemble's components
on the task's standard minibatch (``batch_for_task(task, 64, seed 0)``, the evaluator's default
batch). Per-architecture rows are appended to a cache under ``build/ensemble_reference/`` so an
interrupted run continues where it stopped; a pair whose K rows are all cached is summarised
(``ensemble.reference_stats``) and merged into the reference JSON, keeping the other pairs.

    PYTHONPATH=. python benchmarks/build_ensemble_reference.py \\
        --pairs nasbench201_mini/digits nasbench201/cifar10 --k 100 --workers 2 --device cpu

Exit status: 0 all pairs written, 1 a pair failed (its error is printed), 3 ``--time-limit``
reached (rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluator.runner import DEFAULT_BATCH_SIZE
from zcproxies.data import Batch, batch_for_task
from zcproxies.proxies import score_many
from zcproxies.proxies.ensemble import (
    COMPONENTS,
    REFERENCE_FORMAT,
    REFERENCE_PATH,
    REFERENCE_VERSION,
    pair_key,
    reference_stats,
)
from zcproxies.spaces import get_space, list_spaces

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "build" / "ensemble_reference"
BATCH_SEED = 0  # the evaluator's default run seed, which seeds its minibatch
DEFAULT_PAIRS = tuple(f"{space.name}/{task}" for space in list_spaces() for task in space.tasks)
EXIT_FAILED, EXIT_TIME_LIMIT = 1, 3


@dataclass(frozen=True)
class Job:
    """One reference architecture of one pair to score."""

    pair: str
    index: int
    arch: str  # NASLib key
    seed: int  # model initialisation and proxy seed
    device: str


def reference_archs(pair: str, k: int, seed: int) -> list[tuple[str, int]]:
    """The first ``k`` (arch key, model seed) of the pair's seeded reference stream.

    Drawn one after the other from one generator, so a larger K extends a smaller one.
    """
    space = get_space(pair.split("/")[0])
    rng = np.random.default_rng(seed)
    archs = []
    for _ in range(k):
        arch = space.encode(space.sample(rng))
        archs.append((arch, int(rng.integers(2**31))))
    return archs


@functools.cache
def task_batch(pair: str) -> Batch:
    """The pair's standard minibatch (substitutions are announced by ``batch_for_task``)."""
    space, task = pair.split("/")
    spec = get_space(space).task(task)
    return batch_for_task(spec, size=DEFAULT_BATCH_SIZE, seed=BATCH_SEED)


def init_worker() -> None:
    """One intra-op thread per worker process (workers run side by side); quiet substitutions."""
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")


def score_job(job: Job) -> dict[str, Any]:
    """The components of one reference architecture (or the error it raised), as a cache row."""
    space, task = job.pair.split("/")
    row: dict[str, Any] = {"pair": job.pair, "index": job.index, "arch": job.arch, "seed": job.seed}
    start = time.perf_counter()
    try:
        batch = task_batch(job.pair)
        model = get_space(space).build(job.arch, task, seed=job.seed).to(job.device)
        x, y = batch.x.to(job.device), batch.y.to(job.device)
        row["scores"] = score_many(
            COMPONENTS, model, x, y, batch.num_classes, seed=job.seed, space=space, task=task
        )  # space/task: the task's own loss for ZiCo, as the evaluator's builtin path
    except Exception:
        row["error"] = traceback.format_exc(limit=4)
    row["seconds"] = time.perf_counter() - start
    row["device"] = job.device
    return row


def batch_meta(batch: Batch) -> dict[str, Any]:
    """What the reference records about the minibatch its components were computed on."""
    return {
        "dataset": batch.dataset,
        "substitute_for": batch.substitute_for,
        "split": batch.split,
        "size": int(batch.x.shape[0]),
        "seed": batch.seed,
        "fingerprint": batch.fingerprint,
    }


def cache_path(cache_dir: Path, pair: str, seed: int, fingerprint: str) -> Path:
    """The pair's row cache, specific to the reference seed and the batch's content."""
    return cache_dir / f"{pair.replace('/', '__')}__seed{seed}__{fingerprint[:16]}.jsonl"


def read_rows(path: Path, archs: list[tuple[str, int]]) -> dict[int, dict[str, Any]]:
    """Cached rows by index, checked against the expected (arch, seed) stream."""
    rows: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        row = json.loads(line)
        index = row["index"]
        if index < len(archs) and (row["arch"], row["seed"]) != archs[index]:
            raise SystemExit(f"{path}: row {index} is not the expected architecture; delete it")
        rows[index] = row
    return rows


def write_pair(out: Path, pair: str, k: int, seed: int, rows: list[dict]) -> None:
    """Summarise the pair's first K rows and merge them into the reference JSON at ``out``."""
    space, task = pair.split("/")
    entry = {
        "space": space,
        "task": task,
        "k": k,
        "seed": seed,
        "batch": batch_meta(task_batch(pair)),
        "torch": torch.__version__,
        "device": ",".join(sorted({row["device"] for row in rows})),
        "stats": {n: reference_stats([r["scores"][n] for r in rows], n) for n in COMPONENTS},
    }
    header = {
        "format": REFERENCE_FORMAT,
        "version": REFERENCE_VERSION,
        "generator": "benchmarks/build_ensemble_reference.py",
        "components": [{"name": n, "transform": t} for n, t in COMPONENTS.items()],
    }
    old = json.loads(out.read_text()) if out.exists() else {}
    same = all(old.get(field) == value for field, value in header.items())
    pairs = old["pairs"] if same else {}
    if old and not same:
        print(f"{out}: built for other components or version; its pairs are dropped")
    pairs[pair] = entry
    out.write_text(json.dumps({**header, "pairs": dict(sorted(pairs.items()))}, indent=1) + "\n")
    print(f"{pair}: reference of K={k} written to {out}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Score the missing reference rows of every pair in parallel and write finished pairs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS), help="space/task")
    parser.add_argument("--k", type=int, default=100, help="reference architectures per pair")
    parser.add_argument("--seed", type=int, default=0, help="seed of the reference sample")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (spawned)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds, then stop")
    parser.add_argument("--out", type=Path, default=REFERENCE_PATH)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.time_limit if args.time_limit else None
    torch.set_num_threads(1)
    args.cache_dir.mkdir(parents=True, exist_ok=True)

    if any("/" not in p for p in args.pairs):
        parser.error(f"--pairs takes space/task names, got {args.pairs}")
    pairs = [pair_key(*p.split("/", 1)) for p in args.pairs]
    archs, caches, rows = {}, {}, {}
    for pair in pairs:
        archs[pair] = reference_archs(pair, args.k, args.seed)
        caches[pair] = cache_path(args.cache_dir, pair, args.seed, task_batch(pair).fingerprint)
        rows[pair] = read_rows(caches[pair], archs[pair])
    jobs = [
        Job(pair, i, arch, seed, args.device)
        for pair in pairs
        for i, (arch, seed) in enumerate(archs[pair])
        if i not in rows[pair]
    ]
    failed: dict[str, str] = {}

    def finish(pair: str) -> None:
        if pair not in failed and all(i in rows[pair] for i in range(args.k)):
            ordered = [rows[pair][i] for i in range(args.k)]
            write_pair(args.out, pair, args.k, args.seed, ordered)

    for pair in pairs:
        if not any(job.pair == pair for job in jobs):
            finish(pair)
    if not jobs:
        return 0
    print(f"{len(jobs)} architectures to score on {args.workers} worker(s)", flush=True)
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, initializer=init_worker) as pool:
        results = pool.imap_unordered(score_job, jobs)
        for done in range(1, len(jobs) + 1):
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                row = results.next(timeout)
            except multiprocessing.TimeoutError:
                pool.terminate()
                print(f"time limit reached after {done - 1}/{len(jobs)}; rerun to resume")
                return EXIT_TIME_LIMIT
            pair = row["pair"]
            if "error" in row:
                failed.setdefault(pair, row["error"])
                print(f"{pair} #{row['index']} {row['arch']}: FAILED\n{row['error']}", flush=True)
                continue
            rows[pair][row["index"]] = row
            with caches[pair].open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"[{done}/{len(jobs)}] {pair} #{row['index']} {row['seconds']:.1f}s", flush=True)
            finish(pair)
    for pair, error in failed.items():
        print(f"{pair}: not written, a component failed:\n{error}", file=sys.stderr)
    return EXIT_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
