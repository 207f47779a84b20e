"""Throughput of ``zcp batch``: units (upload x task) per minute with 1 and 2 local workers, and
the overhead of the Ray backend against the local one, side by side in one run.

Uploads: 20 generated submissions: 14 built-in proxies in the native form
(``proxy.py`` calling ``zcproxies.proxies.score``) and 6 adversarial ones (2 sleep past the task
limit, 2 raise, 2 return NaN). Tasks: the NB201 tables of NAS-Bench-Suite-Zero imported from
``../shared`` with ``zcproxies.benchdata`` (cifar10, cifar100, ImageNet16-120), or the embedded
``nasbench201_mini``/digits benchmark where the shared data is absent. Each configuration runs
the whole batch into a fresh results directory; the runs must agree on every unit's status and
Kendall-Tau. Prints a table and writes ``benchmarks/results/batch_throughput.json``.

    python benchmarks/batch_throughput.py --n 4 --task-timeout 20
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from batch_timing import timed_batch

from evaluator import Limits
from evaluator.store import STORE_NAME, ResultsStore
from zcproxies.benchdata import embedded_path, import_files
from zcproxies.paths import shared_data_dir

RESULT = Path(__file__).resolve().parent / "results" / "batch_throughput.json"
BUILTINS = (
    "params",
    "flops",
    "l2_norm",
    "grad_norm",
    "snip",
    "synflow",
    "jacov",
    "nwot",
    "plain",
    "fisher",
    "zen",
    "epe_nas",
    "swap",
    "zico",
)
NATIVE = (
    "from zcproxies.proxies import score as builtin\n\n\ndef score(model, batch):\n"
    "    return builtin({name!r}, model, batch)\n"
)
ADVERSARIAL = {
    "sleeper": "import time\n\n\ndef score(model, batch):\n    time.sleep(3600)\n",
    "raiser": "def score(model, batch):\n    raise RuntimeError('undefined here')\n",
    "nan": "def score(model, batch):\n    return float('nan')\n",
}


def make_uploads(root: Path) -> list[str]:
    """Write the 20 uploads under ``root``; their names."""
    names = []
    for name in BUILTINS:
        names.append(f"builtin_{name}")
        (root / names[-1]).mkdir(parents=True)
        (root / names[-1] / "proxy.py").write_text(NATIVE.format(name=name))
    for kind, code in ADVERSARIAL.items():
        for copy in (1, 2):
            names.append(f"{kind}_{copy}")
            (root / names[-1]).mkdir()
            (root / names[-1] / "proxy.py").write_text(code + f"# copy {copy}\n")
    return names


def benchmark_file(workdir: Path) -> tuple[Path, str]:
    """The NB201 tables from ../shared as a zcp benchmark, else the embedded one: (path, what)."""
    nsz = shared_data_dir() / "nas_bench_suite_zero" / "zc_nasbench201.json"
    if nsz.is_file():
        path = workdir / "nb201.h5"
        import_files([nsz], path)
        return path, f"NAS-Bench-Suite-Zero NB201 tables ({nsz})"
    return embedded_path(), "embedded nasbench201_mini/digits"


def outcomes(results: Path) -> dict[tuple[str, str], tuple[str, float | None]]:
    """(upload, task) -> (status, Kendall-Tau) of a results directory."""
    with ResultsStore(results / STORE_NAME) as store:
        return {(u["upload"], u["task"]): (u["status"], u["kendall_tau"]) for u in store.units()}


def main() -> None:
    """Parse options, run the batch in every configuration, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4, help="architectures per task")
    parser.add_argument("--task-timeout", type=float, default=20.0, help="seconds per task")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    limits = Limits(task_timeout=args.task_timeout, memory_mb=4096, max_restarts=1)
    configs = [("local", 1), ("local", 2)]
    if importlib.util.find_spec("ray") is not None:
        configs.append(("ray", 2))
    with tempfile.TemporaryDirectory(prefix="zcp-batch-bench-") as tmp:
        work = Path(tmp)
        names = make_uploads(work / "uploads")
        bench, source = benchmark_file(work)
        runs: list[dict[str, Any]] = []
        reference: dict | None = None
        for backend, workers in configs:
            out = work / f"results-{backend}-{workers}"
            summary, timed = timed_batch(
                work / "uploads",
                out,
                benchmark=bench,
                n_archs=args.n,
                limits=limits,
                workers=workers,
                backend=backend,
            )
            found = outcomes(out)
            reference = reference or found
            runs.append(
                {
                    "backend": backend,
                    "workers": workers,
                    **timed,
                    "same_results_as_first_run": found == reference,
                }
            )
            print(f"{backend} x{workers}: {summary.describe()}", flush=True)
    local2 = next(r for r in runs if (r["backend"], r["workers"]) == ("local", 2))
    ray2 = next((r for r in runs if r["backend"] == "ray"), None)
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "benchmark": source,
        "uploads": len(names),
        "n_archs": args.n,
        "limits": limits.to_dict(),
        "runs": runs,
        "ray_overhead_vs_local_2_workers": round(ray2["seconds"] / local2["seconds"] - 1, 3)
        if ray2
        else None,
    }
    print(f"\n{len(names)} uploads x tasks of {source}, {args.n} archs per task")
    print(f"{'backend':8} {'workers':>7} {'units':>6} {'seconds':>8} {'units/min':>10}  same")
    for r in runs:
        print(
            f"{r['backend']:8} {r['workers']:>7} {r['units']:>6} {r['seconds']:>8.1f} "
            f"{r['units_per_minute']:>10.2f}  {r['same_results_as_first_run']}"
        )
    if ray2:
        print(
            f"Ray overhead against local with 2 workers: "
            f"{100 * report['ray_overhead_vs_local_2_workers']:+.1f} %"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
