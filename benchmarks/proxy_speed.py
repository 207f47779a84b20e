"""Seconds per architecture of the 13 NAS-Bench-Suite-Zero proxies: each alone, and all together.

"Alone" scores one proxy through its own fresh context (what NASLib did: a new model copy and a
new forward per proxy); "together" scores all 13 through one shared context (``score_many``),
"together_without_grasp" the 12 others (grasp alone needs a double backward).
Model construction is not timed (as in NAS-Bench-Suite-Zero's timings). Reports medians over N
seeded NB201 architectures of wall-clock and process CPU seconds (CPU time is less disturbed by
other load on a shared machine) and writes ``benchmarks/results/proxy_speed.json``.

    python benchmarks/proxy_speed.py --n 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zcproxies import build, get_space
from zcproxies.proxies import score, score_many
from zcproxies.proxies.classic import NSZ_PROXIES

PROXIES = NSZ_PROXIES
WITHOUT_GRASP = tuple(name for name in PROXIES if name != "grasp")  # grasp: double backward
RESULT = Path(__file__).resolve().parent / "results" / "proxy_speed.json"


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    """Parse options, time every proxy on N sampled architectures, print and save medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="number of architectures")
    parser.add_argument("--space", default="nasbench201")
    parser.add_argument("--task", default="cifar10")
    parser.add_argument("--batch", type=int, default=64, help="minibatch size (NSZ: 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the archs and the batch")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()

    space = get_space(args.space)
    task = space.task(args.task)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn((args.batch, *task.input_shape), generator=gen)  # timing: content irrelevant
    y = torch.arange(args.batch) % task.num_classes
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.n)]

    def run(arch: Any) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
        model = build(space, arch, task.name, seed=args.seed)
        alone = {
            name: timed(lambda name=name: score(name, model, x, y, task.num_classes))
            for name in PROXIES
        }
        sets = {"together": PROXIES, "together_without_grasp": WITHOUT_GRASP}
        together = {
            key: timed(lambda names=names: score_many(names, model, x, y, task.num_classes))
            for key, names in sets.items()
        }
        return alone, together

    run(archs[0])  # warm-up: one-off allocator and kernel initialisation
    alone_runs, together_runs = [], []
    for i, arch in enumerate(archs):
        alone, sets = run(arch)
        alone_runs.append(alone)
        together_runs.append(sets)
        together = sets["together"]
        print(
            f"[{i + 1}/{len(archs)}] {arch}: alone {sum(w for w, _ in alone.values()):.2f} s, "
            f"together {together[0]:.2f} s (wall)",
            flush=True,
        )

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 4)

    rows = {
        name: {
            "wall_s": median([run[name][0] for run in alone_runs]),
            "cpu_s": median([run[name][1] for run in alone_runs]),
        }
        for name in PROXIES
    }
    summary = {
        "sum_of_alone": {
            "wall_s": median([sum(w for w, _ in r.values()) for r in alone_runs]),
            "cpu_s": median([sum(c for _, c in r.values()) for r in alone_runs]),
        },
        **{
            key: {
                "wall_s": median([r[key][0] for r in together_runs]),
                "cpu_s": median([r[key][1] for r in together_runs]),
            }
            for key in together_runs[0]
        },
    }
    print(
        f"\nmedian seconds per architecture ({args.space}/{task.name}, batch {args.batch}, "
        f"N={args.n}, {torch.get_num_threads()} torch threads)"
    )
    print(f"{'proxy':<24}{'wall':>9}{'cpu':>9}")
    for name, row in {**rows, **summary}.items():
        print(f"{name:<24}{row['wall_s']:>9.3f}{row['cpu_s']:>9.3f}")
    speedup = summary["sum_of_alone"]["wall_s"] / summary["together"]["wall_s"]
    print(f"shared context speed-up over one proxy at a time: {speedup:.2f}x (wall)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "space": args.space,
                "task": task.name,
                "batch": args.batch,
                "n": args.n,
                "seed": args.seed,
                "archs": [list(a) for a in archs],
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "cpu_count": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "load_average_at_end": os.getloadavg(),
                "per_proxy_alone": rows,
                **summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
