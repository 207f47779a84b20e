"""Exactness of zcp's models against NAS-Bench-Suite-Zero: params and FLOPs of every listed arch.

For every ``zc_*.json`` file in ``<shared>/nas_bench_suite_zero`` whose space is registered in
``zcproxies`` (others are skipped with a note), builds each arch of each task, counts parameters
and FLOPs (batch 1, ``--convention``, default NASLib's) and compares them with the table's
``params`` (millions) and ``flops`` (MFLOPs). "Exact" means equal to the table's 6 decimals.
Prints a table and writes ``benchmarks/results/exactness.json``.

    python benchmarks/exactness.py                 # all spaces, every arch (~5 min, 1 core)
    python benchmarks/exactness.py --every 10      # every 10th arch of each task
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from zcproxies import UnknownName, get_space
from zcproxies.measure import CONVENTIONS, count_flops, count_params
from zcproxies.paths import shared_data_dir

RESULT = Path(__file__).resolve().parent / "results" / "exactness.json"


def same6(ours: float, ref: float) -> bool:
    """Equal to the 6 decimals NAS-Bench-Suite-Zero prints (values in millions)."""
    return round(ours, 6) == round(ref, 6)


def check_task(
    space: Any, task: str, archs: dict[str, dict], every: int, convention: str
) -> dict[str, Any]:
    """Compare params and FLOPs of every ``every``-th arch of one task; one result row."""
    shape = space.task(task).input_shape
    n = params_ok = flops_ok = flops_1pct = 0
    worst, mismatches = 0.0, []
    for key, row in tqdm(list(archs.items())[::every], desc=f"{space.name}/{task}", leave=False):
        model = space.build(key, task)
        params = count_params(model) / 1e6
        flops = count_flops(model, shape, convention=convention) / 1e6
        rel = abs(flops - row["flops"]) / row["flops"]
        n += 1
        params_ok += same6(params, row["params"])
        flops_ok += same6(flops, row["flops"])
        flops_1pct += rel < 0.01
        worst = max(worst, rel)
        if (
            not (same6(params, row["params"]) and same6(flops, row["flops"]))
            and len(mismatches) < 5
        ):
            mismatches.append(
                {
                    "arch": key,
                    "params": params,
                    "ref_params": row["params"],
                    "flops": flops,
                    "ref_flops": row["flops"],
                }
            )
    return {
        "space": space.name,
        "task": task,
        "n": n,
        "params_exact_pct": 100 * params_ok / n,
        "flops_within_1pct_pct": 100 * flops_1pct / n,
        "flops_exact_pct": 100 * flops_ok / n,
        "flops_max_rel_err": worst,
        "first_mismatches": mismatches,
    }


def main() -> None:
    """Parse options, check every registered space with reference data, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="check every k-th arch (1: all)")
    parser.add_argument("--convention", default="naslib", choices=sorted(CONVENTIONS))
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (batch-1 forwards are fastest single-threaded)",
    )
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows, skipped = [], []
    start = time.perf_counter()
    for path in sorted((shared_data_dir() / "nas_bench_suite_zero").glob("zc_*.json")):
        for space_name, tasks in json.loads(path.read_text()).items():
            try:
                space = get_space(space_name)
            except UnknownName:
                print(f"note: space {space_name!r} ({path.name}) is not registered; skipped")
                skipped.append(space_name)
                continue
            rows.extend(
                check_task(space, task, archs, args.every, args.convention)
                for task, archs in tasks.items()
            )

    header = (
        f"{'space':<14} {'task':<15} {'n':>4} {'params exact %':>15} "
        f"{'flops <1% %':>12} {'flops exact %':>14} {'max rel err':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['space']:<14} {r['task']:<15} {r['n']:>4} {r['params_exact_pct']:>15.1f} "
            f"{r['flops_within_1pct_pct']:>12.1f} {r['flops_exact_pct']:>14.1f} "
            f"{r['flops_max_rel_err']:>12.2e}"
        )
    result = {
        "convention": args.convention,
        "every": args.every,
        "rows": rows,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
