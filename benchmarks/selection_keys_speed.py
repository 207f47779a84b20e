"""Speed of ensemble selection's keys: one round's validation keys of every snapshot's mixture
computed at once (``autodl.search.probability_keys``, what ``select_ensemble`` uses) against one
``probability_key`` call per mixture (what it did before), on the same random probabilities;
checks both give the same keys. Prints a table and writes
``benchmarks/results/selection_keys_speed.json``.

    PYTHONPATH=. python benchmarks/selection_keys_speed.py [--snapshots 50] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from autodl.search import probability_key, probability_keys

RESULTS = Path(__file__).with_name("results") / "selection_keys_speed.json"
SPLITS = ((32, 2), (200, 10), (1000, 10))  # (validation examples, classes): text, cifar10_1000


def one_by_one(stack: np.ndarray, y: np.ndarray, num_classes: int) -> list:
    """One ``probability_key`` call per mixture (``select_ensemble`` before)."""
    return [probability_key(p, y, num_classes) for p in stack]


def best_seconds(keys: Callable[..., list], repeats: int, *args: object) -> float:
    """The fastest of ``repeats`` timings of ``keys(*args)`` (the least disturbed by load)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        keys(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=50, help="mixtures per round")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for n, k in SPLITS:
        y = rng.integers(0, k, n)
        stack = rng.dirichlet(np.ones(k), (args.snapshots, n))
        if probability_keys(stack, y, k) != one_by_one(stack, y, k):
            raise SystemExit(f"keys differ on {n} x {k}")
        fast = best_seconds(probability_keys, args.repeats, stack, y, k)
        slow = best_seconds(one_by_one, args.repeats, stack, y, k)
        rows.append(
            {
                "examples": n,
                "classes": k,
                "snapshots": args.snapshots,
                "at_once_ms": 1e3 * fast,
                "one_by_one_ms": 1e3 * slow,
                "speedup": slow / fast,
            }
        )
    print(f"{'examples':>8} {'classes':>7} {'at once (ms)':>13} {'one by one (ms)':>16} {'x':>6}")
    for r in rows:
        print(
            f"{r['examples']:>8} {r['classes']:>7} {r['at_once_ms']:>13.2f} "
            f"{r['one_by_one_ms']:>16.2f} {r['speedup']:>6.1f}"
        )
    RESULTS.write_text(
        json.dumps(
            {"machine": platform.processor() or platform.machine(), "rows": rows, **vars(args)},
            indent=1,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
