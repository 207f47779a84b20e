"""Containment of an upload's whole process tree: how far each limit is overshot, and its cost.

1. Overshoot per limit: the hostile uploads of ``tests/submissions`` (five forked children of
   1,000 MB, 40 memfds of 60 MB, 1.5 GB into /tmp beyond the memory cap, 1.5 GB into /tmp and
   into /dev/shm, 200,000 files, a fork bomb, 200 forks, an endless loop) are evaluated with
   small caps; per limit, the largest value the launch's cgroup or tmpfs measured against the
   cap (memory peak of the whole tree, processes, bytes and files written, CPU seconds against
   the CPU budget, wall seconds after the task limit until the tree was dead).
2. Cost: the batch throughput (units per minute, 2 local workers) of the built-in ``params``
   proxy (native-form uploads) on the embedded benchmark with containment ``off`` (per-process
   rlimits, a host directory as /tmp) and ``require`` (cgroup + private tmpfs), alternated in
   one run; and the start of one launch (trampoline, cgroup, tmpfs) against a plain start.

Prints tables and writes ``benchmarks/results/containment.json``. Needs root (or a delegated
cgroup v2 subtree) and bubblewrap; refuses to run without them.

    nice -n 10 python benchmarks/containment.py --uploads 8 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from batch_timing import timed_batch

from evaluator import Limits, evaluate, resolve_isolation
from evaluator.cgroups import GroupLimits
from evaluator.sandbox import BWRAP_PROCESSES, WorkerProcess, _start_contained
from evaluator.tasks import EvalTask
from zcproxies.measure import count_params
from zcproxies.spaces import get_space

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "tests" / "submissions"
RESULT = ROOT / "benchmarks" / "results" / "containment.json"
CAPS = Limits(task_timeout=20, memory_mb=2048, max_processes=32, disk_mb=64, max_files=1000)
# (upload, limits, the limit it must hit); shm_filler is filler writing into /dev/shm
CASES = [
    ("fork_memory", CAPS, "memory"),
    ("memfd_hog", CAPS, "memory"),
    ("filler", Limits(task_timeout=20, memory_mb=768, disk_mb=1536), "memory"),
    ("filler", CAPS, "disk"),
    ("shm_filler", CAPS, "disk"),
    ("many_files", CAPS, "disk"),
    ("fork_bomb", CAPS, "processes"),
    ("fork_count", CAPS, "processes"),
    ("infinite_loop", Limits(task_timeout=5), "timeout"),
]
NATIVE = "from zcproxies.proxies import score as builtin\n\n\ndef score(model, batch):\n"
NATIVE += "    return builtin('params', model, batch)\n"


def params_task(n: int) -> EvalTask:
    """nasbench201_mini/digits with ``n`` sampled architectures ranked by parameter count."""
    import numpy as np
    import pandas as pd

    space = get_space("nasbench201_mini")
    rng = np.random.default_rng(0)
    keys: list[str] = []
    while len(keys) < n:
        key = space.encode(space.sample(rng))
        keys += [] if key in keys else [key]
    params = [float(count_params(space.build(k, "digits"))) for k in keys]
    return EvalTask(
        "nasbench201_mini", "digits", pd.DataFrame({"arch": keys, "val_accuracy": params})
    )


def overshoot_cases(work: Path) -> list[dict[str, Any]]:
    """Run every hostile case contained: what each launch measured against its caps."""
    rows = []
    task = params_task(4)
    shutil.copytree(SUBMISSIONS / "filler", work / "shm_filler")
    (work / "shm_filler" / "target.txt").write_text("/dev/shm\n")
    for name, limits, expected in CASES:
        out = work / f"case-{len(rows)}"
        upload = work / name if name == "shm_filler" else SUBMISSIONS / name
        frame = evaluate(
            str(upload),
            [task],
            n_archs=4,
            limits=limits,
            out_dir=out,
            progress=False,
            containment="require",
        )
        record = json.loads((out / "results.json").read_text())["tasks"][0]
        launch = record["launches"][-1]
        held = launch["containment"]
        rows.append(
            {
                "upload": name,
                "status": frame["status"].iloc[0],
                "expected": expected,
                "memory_cap_mb": limits.memory_mb,
                "memory_peak_mb": held["memory_peak_mb"],
                "processes_cap": limits.max_processes,
                "processes_peak": None
                if held["processes_peak"] is None
                else held["processes_peak"] - BWRAP_PROCESSES,
                "disk_cap_mb": limits.disk_mb,
                "disk_peak_mb": held["disk_peak_mb"],
                "files_cap": limits.max_files,
                "files_peak": held["files_peak"],
                "task_timeout": limits.task_timeout,
                "wall_after_start": record["wall_seconds"] - (launch["startup_seconds"] or 0),
            }
        )
        print(f"  {name:14} {rows[-1]['status']:9} (expected {expected})", flush=True)
    return rows


def cpu_case() -> dict[str, Any]:
    """Two busy processes against a 2 s CPU budget: CPU seconds used when the tree was killed."""
    hierarchy = resolve_isolation("none", "require").containment.hierarchy
    assert hierarchy is not None
    group = hierarchy.create(GroupLimits(512 << 20, 16, frozenset(os.sched_getaffinity(0))))
    burn = "import os; print('started', flush=True); os.fork()\nwhile True: pass"
    argv = [sys.executable, "-I", "-S", "-c", burn]
    proc = WorkerProcess(argv, {"PATH": "/usr/bin"}, "/", None, group, None, Limits(), 2.0)
    deadline = time.monotonic() + 300
    while proc.next_line(deadline) is not None:
        pass
    proc.kill()
    hit = proc.limit_hit()
    return {
        "status": hit[0] if hit else "none",
        "budget": proc.cpu_budget,
        "cpu_seconds": proc.containment().cpu_seconds,
    }


def start_cost(rounds: int) -> dict[str, float]:
    """Median ms to start ``python -I -S -c pass`` and reap it: plain (``Popen``), and contained
    (the trampoline's supervisor, a fresh cgroup joined, killed and removed, a tmpfs)."""
    held = resolve_isolation("none", "require").containment
    assert held.hierarchy is not None
    argv = [sys.executable, "-I", "-S", "-c", "pass"]
    plain, contained = [], []
    with tempfile.TemporaryDirectory(prefix="zcp-start-") as tmp:
        for _ in range(rounds):
            began = time.perf_counter()
            subprocess.Popen(argv).wait()
            plain.append(time.perf_counter() - began)
            began = time.perf_counter()
            group = held.hierarchy.create(GroupLimits(1 << 30, 64, frozenset({0})))
            area = {"path": tmp, "bytes": 64 << 20, "inodes": 1000, "uid": None}
            _start_contained(argv, {}, "/", group.join_files(), area).wait()
            group.kill()
            group.remove()
            contained.append(time.perf_counter() - began)
    return {
        "plain_ms": 1000 * statistics.median(plain),
        "contained_ms": 1000 * statistics.median(contained),
    }


def throughput(work: Path, uploads: int, rounds: int, n_archs: int) -> list[dict[str, Any]]:
    """Units per minute of a 2-worker batch, containment off and required, alternated."""
    folder = work / "uploads"
    for i in range(uploads):
        (folder / f"params_{i}").mkdir(parents=True)
        (folder / f"params_{i}" / "proxy.py").write_text(NATIVE + f"# copy {i}\n")
    limits = Limits(task_timeout=120, max_restarts=1)
    runs = []
    for round_ in range(rounds):
        for containment in ("off", "require"):
            out = work / f"batch-{containment}-{round_}"
            summary, timed = timed_batch(
                folder, out, n_archs=n_archs, limits=limits, workers=2, containment=containment
            )
            runs.append({"containment": containment, "round": round_, **timed})
            print(f"  {containment:8} round {round_}: {summary.describe()}", flush=True)
    return runs


def main() -> None:
    """Run both parts, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=8, help="params uploads per batch")
    parser.add_argument("--rounds", type=int, default=2, help="alternated off/require batches")
    parser.add_argument("--n", type=int, default=20, help="architectures per unit")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    held = resolve_isolation("auto", "require").containment
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="zcp-containment-") as tmp:
        work = Path(tmp)
        print("overshoot cases:", flush=True)
        cases = overshoot_cases(work)
        cpu = cpu_case()
        starts = start_cost(20)
        print("throughput:", flush=True)
        runs = throughput(work, args.uploads, args.rounds, args.n)
    per = {
        c: statistics.mean(r["units_per_minute"] for r in runs if r["containment"] == c)
        for c in ("off", "require")
    }
    limits = {
        "memory (MB over the cap, whole tree)": max(
            c["memory_peak_mb"] - c["memory_cap_mb"] for c in cases
        ),
        "processes (over the cap)": max(
            c["processes_peak"] - c["processes_cap"] for c in cases if c["processes_peak"]
        ),
        "disk (MB over the cap)": max(c["disk_peak_mb"] - c["disk_cap_mb"] for c in cases),
        "files (over the cap)": max(c["files_peak"] - c["files_cap"] for c in cases),
        "cpu (s over the budget)": cpu["cpu_seconds"] - cpu["budget"],
        "timeout (s of wall clock after the task limit)": max(
            c["wall_after_start"] - c["task_timeout"] for c in cases if c["expected"] == "timeout"
        ),
    }
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before_after": [load_before, os.getloadavg()[0]],
        },
        "containment": held.to_dict(),
        "cases": cases,
        "cpu_case": cpu,
        "largest_overshoot": limits,
        "launch_start_ms": starts,
        "throughput_runs": runs,
        "units_per_minute": per,
        "containment_cost": round(1 - per["require"] / per["off"], 3),
    }
    print(
        f"\ncontainment: cgroup {held.cgroup}, tmpfs {held.tmpfs}; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after on {os.cpu_count()} CPUs"
    )
    print(f"{'upload':14} {'status':9} {'memory MB':>16} {'procs':>8} {'disk MB':>9} {'files':>10}")
    for c in cases:
        print(
            f"{c['upload']:14} {c['status']:9} "
            f"{c['memory_peak_mb']:>7.0f}/{c['memory_cap_mb']:<8} "
            f"{c['processes_peak'] or 0:>3}/{c['processes_cap']:<4} "
            f"{c['disk_peak_mb']:>4.0f}/{c['disk_cap_mb']:<4} "
            f"{c['files_peak']:>5}/{c['files_cap']:<5}"
        )
    print(f"cpu: {cpu['status']}, {cpu['cpu_seconds']:.2f} s of CPU against {cpu['budget']} s")
    print("\nlargest overshoot per limit:")
    for name, value in limits.items():
        print(f"  {name:48} {value:+.2f}")
    print(
        f"\nlaunch start (python -I -S -c pass): plain {starts['plain_ms']:.1f} ms, "
        f"contained {starts['contained_ms']:.1f} ms"
    )
    print(
        f"batch throughput, 2 workers, {args.uploads} params uploads x {args.n} archs: "
        f"off {per['off']:.2f} units/min, require {per['require']:.2f} units/min "
        f"(cost {100 * report['containment_cost']:+.1f} %)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
