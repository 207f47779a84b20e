"""Overhead of the evaluator: wall time of ``zcp evaluate`` minus the time inside the proxy.

Runs ``evaluator.evaluate`` (what ``zcp evaluate --proxy NAME`` calls, reports included) with
built-in proxies on the NAS-Bench-Suite-Zero NB201 table of one task (imported from
``../shared`` with ``zcproxies.benchdata``), after one unrecorded warm-up run of 2
architectures (the process's one-off imports), and splits each wall time with what
``results.json`` records: evaluator side (sampling, minibatch, opening the submission, metrics,
reports), worker start-up (sandbox, interpreter, torch import), submission set-up, model
building (plus batch copy and seeding), proxy, and the rest (job files, protocol IPC, event
handling, worker exit). Prints a table and writes ``benchmarks/results/evaluator_overhead.json``.

    python benchmarks/evaluator_overhead.py --n 200 --proxies params synflow snip
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from evaluator import Limits, evaluate
from evaluator.runner import DEFAULT_BATCH_SIZE
from zcproxies.benchdata import BenchmarkTask, import_file
from zcproxies.paths import shared_data_dir

RESULT = Path(__file__).resolve().parent / "results" / "evaluator_overhead.json"
NSZ_NB201 = Path("nas_bench_suite_zero") / "zc_nasbench201.json"
PARTS = {  # part of the wall time -> column label
    "evaluator_side": "eval-side",
    "worker_startup": "startup",
    "setup": "setup",
    "build": "build",
    "proxy": "proxy",
    "rest": "IPC+rest",
}


def nb201_table(task: str) -> BenchmarkTask:
    """The NAS-Bench-Suite-Zero NB201 table of ``task``, read from the shared data."""
    path = shared_data_dir() / NSZ_NB201
    if not path.is_file():
        sys.exit(f"missing {path}: this benchmark needs the shared data ($ZCP_SHARED_DATA)")
    (table,) = [t for t in import_file(path) if t.task == task]
    return table


def breakdown(wall: float, results: dict[str, Any]) -> dict[str, float]:
    """Seconds of each part of ``PARTS`` (they sum to ``wall``) from one run's results.json."""
    tasks = results["tasks"]
    archs = [a for t in tasks for a in t["archs"]]
    launches = [info for t in tasks for info in t["launches"]]
    parts = {
        "evaluator_side": wall - sum(t["wall_seconds"] for t in tasks),
        "worker_startup": sum(info.get("startup_seconds") or 0.0 for info in launches),
        "setup": sum(info.get("setup_seconds") or 0.0 for info in launches),
        "build": sum(a["build_seconds"] or 0.0 for a in archs),
        "proxy": sum(a["seconds"] or 0.0 for a in archs),
    }
    parts["rest"] = wall - sum(parts.values())
    return parts


def measure(proxy: str, table: BenchmarkTask, args: argparse.Namespace) -> dict[str, Any]:
    """One evaluation of ``proxy:NAME``: wall time, its breakdown and the task's outcome."""
    with tempfile.TemporaryDirectory(prefix="zcp-overhead-") as tmp:
        began = time.perf_counter()
        frame = evaluate(
            f"proxy:{proxy}",
            [table],
            n_archs=args.n,
            seed=args.seed,
            limits=Limits(threads=1),
            out_dir=tmp,
            batch_size=args.batch_size,
            progress=False,
        )
        wall = time.perf_counter() - began
        results = json.loads((Path(tmp) / "results.json").read_text())
    parts = breakdown(wall, results)
    n = int(frame["n_archs"].iloc[0])
    overhead = wall - parts["proxy"]
    return {
        "proxy": proxy,
        "status": str(frame["status"].iloc[0]),
        "kendall_tau": round(float(frame["kendall_tau"].iloc[0]), 4),
        "isolation": results["isolation"]["mode"],
        "launches": len(results["tasks"][0]["launches"]),
        "n_archs": n,
        "wall_seconds": round(wall, 3),
        "overhead_seconds": round(overhead, 3),
        "overhead_per_arch_seconds": round(overhead / n, 4),
        "seconds": {k: round(v, 3) for k, v in parts.items()},
        "per_arch_seconds": {k: round(v / n, 4) for k, v in parts.items()},
    }


def main() -> None:
    """Parse options, evaluate each proxy, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="architectures sampled")
    parser.add_argument("--task", default="cifar10", help="NB201 task of NAS-Bench-Suite-Zero")
    parser.add_argument("--proxies", nargs="+", default=["params", "synflow", "snip"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the evaluator side too: a shared 2-core machine
    table = nb201_table(args.task)
    # one-off imports of the process (scipy, matplotlib, the dataset) would land on the first row
    measure(args.proxies[0], table, argparse.Namespace(**{**vars(args), "n": 2}))
    load_before = os.getloadavg()
    rows = [measure(proxy, table, args) for proxy in args.proxies]
    report = {
        "command": "python benchmarks/evaluator_overhead.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "task": f"nasbench201/{args.task} (NAS-Bench-Suite-Zero)",
        "n_archs": args.n,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "threads": 1,
        "rows": rows,
    }
    print(f"\nnasbench201/{args.task}, n={args.n}, batch {args.batch_size}, 1 thread; seconds")
    labels = [label for part, label in PARTS.items() if part != "proxy"]
    print(f"{'proxy':10} {'wall':>7} {'proxy':>7} {'overhead':>8} {'per arch':>8}", end="")
    print("".join(f"{label:>10}" for label in labels))
    for r in rows:
        print(
            f"{r['proxy']:10} {r['wall_seconds']:7.1f} {r['seconds']['proxy']:7.1f} "
            f"{r['overhead_seconds']:8.1f} {r['overhead_per_arch_seconds']:8.4f}",
            end="",
        )
        print("".join(f"{r['seconds'][p]:10.2f}" for p in PARTS if p != "proxy"))
    print(f"load average before {load_before}, after {os.getloadavg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
