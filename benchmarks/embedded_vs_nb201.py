"""Every proxy through ``zcp evaluate --proxy`` on the embedded default and on NB201 CIFAR-10.

The two benchmarks: the embedded default (``nasbench201_mini/shapes``, no ``--benchmark``) and
NAS-Bench-201 CIFAR-10 validation accuracies of all 15,625 cells from the shared data
(``full_tables/nasbench201_val_accuracy.csv``, converted once with ``zcp data import``). Each
registered proxy is evaluated on each with ``zcp evaluate --proxy NAME --n N`` (the command a
competitor runs, sandboxed; ``N`` archs sampled per task with the default seed 0). Prints the
side-by-side table and the Spearman and Kendall correlations between the two columns, and
writes ``benchmarks/results/embedded_vs_nb201.json``. Resumable: each evaluation directory
under ``build/embedded_vs_nb201/`` is kept and reused while its ``n`` matches.

    PYTHONPATH=. nice -n 10 python benchmarks/embedded_vs_nb201.py --n 100
    PYTHONPATH=. nice -n 10 python benchmarks/embedded_vs_nb201.py --n 100 --only nb201
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scipy.stats import kendalltau, spearmanr

from zcproxies.benchdata import embedded_task, import_file, write_benchmark
from zcproxies.paths import shared_data_dir
from zcproxies.proxies import list_proxies

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "embedded_vs_nb201"
OUT = ROOT / "benchmarks" / "results" / "embedded_vs_nb201.json"
NB201_TABLE = "full_tables/nasbench201_val_accuracy.csv"
TASKS = {"embedded": "nasbench201_mini/shapes", "nb201": "nasbench201/cifar10"}


def nb201_benchmark() -> Path:
    """NB201 CIFAR-10 alone as a zcp benchmark (converted from the shared table once)."""
    path = WORK / "nb201_cifar10.h5"
    if not path.is_file():
        WORK.mkdir(parents=True, exist_ok=True)
        nb201 = [t for t in import_file(shared_data_dir() / NB201_TABLE) if t.task == "cifar10"]
        write_benchmark(path, nb201, generator="benchmarks/embedded_vs_nb201.py")
    return path


def evaluate(proxy: str, which: str, n: int) -> dict[str, float]:
    """Kendall-Tau (95 % CI) and seconds per arch of ``proxy`` on benchmark ``which``.

    From a kept evaluation directory, or a fresh ``zcp evaluate`` run.
    """
    out = WORK / which / f"{proxy}-n{n}"
    results = out / "results.json"
    if not results.is_file():
        command = [sys.executable, "-m", "zcproxies.cli", "evaluate", "--proxy", proxy]
        command += ["--n", str(n), "--out", str(out)]
        if which == "nb201":
            command += ["--benchmark", str(nb201_benchmark())]
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
        if done.returncode != 0:
            raise SystemExit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    (task,) = json.loads(results.read_text())["tasks"]
    if f"{task['space']}/{task['task']}" != TASKS[which]:
        raise SystemExit(f"error: {results} is not {TASKS[which]}")
    metrics = task["metrics"]
    return {
        "kendall_tau": float(metrics.get("kendall_tau", 0.0)),
        "ci_low": float(metrics.get("kendall_tau_ci_low", 0.0)),
        "ci_high": float(metrics.get("kendall_tau_ci_high", 0.0)),
        "seconds_per_arch": float(metrics.get("seconds_mean", 0.0)),
    }


def main(argv: list[str] | None = None) -> None:
    """Run every proxy on both benchmarks (resumable), print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="archs sampled per task")
    parser.add_argument("--only", choices=sorted(TASKS), help="evaluate one benchmark only")
    args = parser.parse_args(argv)
    names = [info.name for info in list_proxies()]
    start = time.perf_counter()
    rows: dict[str, dict[str, dict[str, float]]] = {name: {} for name in names}
    for which in [args.only] if args.only else list(TASKS):
        for name in names:
            rows[name][which] = evaluate(name, which, args.n)
            tau = rows[name][which]["kendall_tau"]
            print(f"{which} {name}: {tau:.4f}", file=sys.stderr, flush=True)
    if args.only:
        return
    embedded = [rows[n]["embedded"]["kendall_tau"] for n in names]
    nb201 = [rows[n]["nb201"]["kendall_tau"] for n in names]
    spearman = float(spearmanr(embedded, nb201).statistic)
    kendall = float(kendalltau(embedded, nb201).statistic)
    print(
        f"| proxy | Kendall-Tau `{TASKS['embedded']}` (95 % CI) | s/arch "
        f"| Kendall-Tau `{TASKS['nb201']}` (95 % CI) | s/arch |\n|---|---|---:|---|---:|"
    )
    for name in sorted(names, key=lambda n: -rows[n]["nb201"]["kendall_tau"]):
        cells = [
            f"{r['kendall_tau']:.3f} ({r['ci_low']:.3f}, {r['ci_high']:.3f}) "
            f"| {r['seconds_per_arch']:.3f}"
            for r in (rows[name]["embedded"], rows[name]["nb201"])
        ]
        print(f"| `{name}` | {cells[0]} | {cells[1]} |")
    print(
        f"\nn = {args.n} archs per task, {len(names)} proxies; between the columns: Spearman "
        f"{spearman:.3f}, Kendall-Tau {kendall:.3f}"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": f"python benchmarks/embedded_vs_nb201.py --n {args.n}",
        "n_archs_per_task": args.n,
        "tasks": TASKS,
        "proxies": len(names),
        "spearman_between_columns": spearman,
        "kendall_tau_between_columns": kendall,
        "embedded_benchmark": {
            k: v for k, v in embedded_task().attrs.items() if k.startswith(("agreement", "desc"))
        },
        "wall_seconds_this_invocation": round(time.perf_counter() - start, 1),
        "kendall_tau": rows,
    }
    OUT.write_text(json.dumps(payload, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
