"""Seconds per architecture of the 13 NAS-Bench-Suite-Zero proxies: each alone, and all together.

"Alone" scores one proxy through its own fresh context (what NASLib did: a new model copy and a
new forward per proxy); "together" scores all 13 through one shared context (``score_many``),
"together_without_grasp" the 12 others (grasp alone needs a double backward). Both are timed on
the same architecture one after the other (the order alternates between architectures), so
their per-architecture ratio stays meaningful on a loaded machine. Model construction is not
timed (as in NAS-Bench-Suite-Zero's timings). Reports medians over N seeded architectures per
space of wall-clock and process CPU seconds, and merges one entry per space into
``benchmarks/results/proxy_speed.json``.

    python benchmarks/proxy_speed.py --space nasbench201 --n 20
    python benchmarks/proxy_speed.py --space nasbench101 nasbench301 --n 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zcproxies import build, get_space
from zcproxies.data import Batch, SubstitutionWarning, batch_for_task
from zcproxies.data.providers import FallbackWarning
from zcproxies.proxies import score, score_many
from zcproxies.proxies.classic import NSZ_PROXIES

PROXIES = NSZ_PROXIES
WITHOUT_GRASP = tuple(name for name in PROXIES if name != "grasp")  # grasp: double backward
SETS = {"together": PROXIES, "together_without_grasp": WITHOUT_GRASP}
RESULT = Path(__file__).resolve().parent / "results" / "proxy_speed.json"
Timing = tuple[float, float]  # (wall seconds, process CPU seconds)


def timed(fn: Callable[[], Any]) -> Timing:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_arch(
    model: torch.nn.Module, batch: Batch, alone_first: bool
) -> tuple[dict[str, Timing], dict[str, Timing]]:
    """Timings of every proxy alone and of each set together on one model."""

    def alone() -> dict[str, Timing]:
        return {name: timed(lambda name=name: score(name, model, batch)) for name in PROXIES}

    def together() -> dict[str, Timing]:
        return {
            key: timed(lambda names=names: score_many(names, model, batch))
            for key, names in SETS.items()
        }

    if alone_first:
        first = alone()
        return first, together()
    second = together()
    return alone(), second


def median(values: list[float]) -> float:
    """Median, rounded to 0.1 ms."""
    return round(statistics.median(values), 4)


def time_space(space_name: str, task_name: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """Time N seeded architectures of one space; the space's result entry."""
    space = get_space(space_name)
    task = space.task(task_name or next(iter(space.tasks)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (SubstitutionWarning, FallbackWarning))
        batch = batch_for_task(task, args.batch, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.n)]
    load_start = os.getloadavg()
    score_many(PROXIES, build(space, archs[0], task.name, seed=args.seed), batch)  # warm-up
    alone_runs, together_runs = [], []
    for i, arch in enumerate(archs):
        model = build(space, arch, task.name, seed=args.seed)
        alone, together = time_arch(model, batch, alone_first=i % 2 == 0)
        alone_runs.append(alone)
        together_runs.append(together)
        print(
            f"[{space.name} {i + 1}/{len(archs)}] alone {sum(w for w, _ in alone.values()):.2f} s, "
            f"together {together['together'][0]:.2f} s (wall)",
            flush=True,
        )
    per_proxy = {
        name: {
            "wall_s": median([run[name][0] for run in alone_runs]),
            "cpu_s": median([run[name][1] for run in alone_runs]),
        }
        for name in PROXIES
    }
    sums = [(sum(w for w, _ in r.values()), sum(c for _, c in r.values())) for r in alone_runs]
    summary = {
        "sum_of_alone": {
            "wall_s": median([w for w, _ in sums]),
            "cpu_s": median([c for _, c in sums]),
        },
        **{
            key: {
                "wall_s": median([r[key][0] for r in together_runs]),
                "cpu_s": median([r[key][1] for r in together_runs]),
            }
            for key in SETS
        },
        "ratio_alone_over_together": {
            kind: median(
                [s[i] / r["together"][i] for s, r in zip(sums, together_runs, strict=True)]
            )
            for i, kind in enumerate(("wall", "cpu"))
        },
    }
    return {
        "task": task.name,
        "batch": args.batch,
        "batch_dataset": batch.dataset,
        "n": args.n,
        "seed": args.seed,
        "archs": [space.encode(a) for a in archs],
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "per_proxy_alone": per_proxy,
        **summary,
    }


def print_entry(space: str, entry: dict[str, Any]) -> None:
    """The entry's table."""
    print(
        f"\nmedian seconds per architecture ({space}/{entry['task']}, batch {entry['batch']}, "
        f"N={entry['n']}, load {entry['load_average_at_start'][0]:.1f} -> "
        f"{entry['load_average_at_end'][0]:.1f})"
    )
    print(f"{'proxy':<24}{'wall':>9}{'cpu':>9}")
    rows = {**entry["per_proxy_alone"], **{k: entry[k] for k in ("sum_of_alone", *SETS)}}
    for name, row in rows.items():
        print(f"{name:<24}{row['wall_s']:>9.3f}{row['cpu_s']:>9.3f}")
    ratio = entry["ratio_alone_over_together"]
    wall, cpu = ratio["wall"], ratio["cpu"]
    print(f"one by one / together (per-arch median): {wall:.2f}x wall, {cpu:.2f}x CPU")


def main() -> None:
    """Parse options, time every proxy on N sampled architectures per space, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", nargs="+", default=["nasbench201"])
    parser.add_argument("--task", default=None, help="default: each space's first task")
    parser.add_argument("--n", type=int, default=20, help="architectures per space")
    parser.add_argument("--batch", type=int, default=32, help="minibatch size (NSZ: 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the archs and the batch")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entries = {get_space(s).name: time_space(s, args.task, args) for s in args.space}
    for space, entry in entries.items():
        print_entry(space, entry)

    data = json.loads(args.out.read_text()) if args.out.exists() else {}
    if "spaces" not in data:
        data = {"spaces": {}}  # the earlier single-space layout is replaced
    data |= {
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    data["spaces"] = dict(sorted((data["spaces"] | entries).items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
