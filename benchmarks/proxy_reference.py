"""Fidelity of zcp's NAS-Bench-Suite-Zero proxies: Kendall tau with NSZ's own values, per task.

For N architectures of one NSZ table (``zc_nasbench{101,201,301}.json``, shared data), scores
the 13 proxies through one shared context on ONE batch of ``batch_for_task`` for every model
(real CIFAR-10 images; the substitute CIFAR-10 images for CIFAR-100 and ImageNet16-120, recorded
in the result). NSZ drew a different random training batch and a different random init per
model, so per-model values differ; rankings are what must agree. ``--self`` scores the same
architectures a second time with another init seed and/or batch: KT(ours, ours reseeded) is the
agreement that randomness alone allows, the ceiling for KT(ours, NSZ). Prints Kendall tau of ours
vs NSZ, vs ours reseeded, and of both vs validation accuracy, and merges the run's entry
(``"<space>/<task>/batch<B>[/random-labels]"``) into ``benchmarks/results/proxy_reference.json``.

    python benchmarks/proxy_reference.py --space nasbench201 --task cifar10 --n 50 --self both
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from zcproxies import build, get_space
from zcproxies.data import Batch, SubstitutionWarning, batch_for_task
from zcproxies.data.providers import FallbackWarning
from zcproxies.paths import shared_data_dir
from zcproxies.proxies import score_many
from zcproxies.proxies.classic import NSZ_PROXIES

RESULT = Path(__file__).resolve().parent / "results" / "proxy_reference.json"
TABLES = {"nasbench101": "101", "nasbench201": "201", "nasbench301": "301"}
RESEEDS = {"init": (1, 0), "batch": (0, 1), "both": (1, 1)}  # (init, batch) seed offsets


def nsz_table(space: str, task: str) -> dict[str, dict[str, float]]:
    """NSZ's entries of ``space``/``task``: arch key -> {proxy or val_accuracy: value}."""
    path = shared_data_dir() / "nas_bench_suite_zero" / f"zc_nasbench{TABLES[space]}.json"
    return json.loads(path.read_text())[space][task]


def task_batch(space: str, task: str, size: int, seed: int, random_labels: bool) -> Batch:
    """``batch_for_task`` of the task (the CIFAR-10 fallback/substitution is expected here).

    ``random_labels``: labels drawn uniformly over the task's classes (seeded with ``seed``), as
    a real batch of a 100/120-class task has them, instead of the substitute's 10 classes.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (SubstitutionWarning, FallbackWarning))
        batch = batch_for_task(get_space(space).task(task), size, seed=seed)
    if not random_labels:
        return batch
    draw = torch.Generator().manual_seed(seed)
    y = torch.randint(0, batch.num_classes, (size,), generator=draw)
    return dataclasses.replace(batch, y=y, note=f"{batch.note}; labels uniform over classes")


def score_archs(
    space: str, task: str, keys: list[str], batch: Batch, seed: int, names: list[str]
) -> tuple[dict[str, list[float]], list[float]]:
    """Scores of ``names`` per architecture (models built with ``seed``) and seconds per arch."""
    spec = get_space(space)
    scores: dict[str, list[float]] = {name: [] for name in names}
    seconds = []
    for i, key in enumerate(keys):
        start = time.perf_counter()
        model = build(spec, spec.decode(key), task, seed=seed)
        for name, value in score_many(names, model, batch, seed=seed).items():
            scores[name].append(value)
        seconds.append(time.perf_counter() - start)
        if (i + 1) % 10 == 0 or i + 1 == len(keys):
            print(f"  {i + 1}/{len(keys)} archs, {sum(seconds):.0f} s", flush=True)
    return scores, seconds


def kt(a: list[float], b: list[float]) -> float:
    """Kendall tau-b, rounded (NaN when one side is constant)."""
    return round(float(kendalltau(a, b)[0]), 4)


def agreement(
    names: list[str],
    ours: dict[str, list[float]],
    again: dict[str, list[float]] | None,
    ref: dict[str, dict[str, float]],
    keys: list[str],
) -> dict[str, dict[str, float]]:
    """Per proxy: KT/Spearman vs NSZ, median |ours / NSZ|, KT vs reseeded, KT of both vs acc."""
    accuracy = [ref[k]["val_accuracy"] for k in keys]
    rows = {}
    for name in names:
        row = {"kt_vs_accuracy": kt(ours[name], accuracy)}
        if again is not None:
            row["kt_vs_reseeded"] = kt(ours[name], again[name])
        if name in ref[keys[0]]:
            nsz = [ref[k][name] for k in keys]
            ratio = [abs(o / r) for o, r in zip(ours[name], nsz, strict=True) if r != 0]
            row |= {
                "kt_vs_nsz": kt(ours[name], nsz),
                "spearman_vs_nsz": round(float(spearmanr(ours[name], nsz)[0]), 4),
                "nsz_kt_vs_accuracy": kt(nsz, accuracy),
                "median_abs_ratio_to_nsz": round(statistics.median(ratio), 4),
            }
            if name in ("params", "flops"):
                row["max_abs_diff"] = float(np.max(np.abs(np.subtract(ours[name], nsz))))
        rows[name] = row
    return rows


def merge_result(path: Path, entry_key: str, entry: dict[str, Any]) -> None:
    """Write ``entry`` under ``tasks[entry_key]`` of the JSON at ``path``, keeping other tasks."""
    data = json.loads(path.read_text()) if path.exists() else {}
    if "tasks" not in data:
        data = {"tasks": {}}  # the earlier single-task layout is replaced
    data["tasks"][entry_key] = entry
    data["tasks"] = dict(sorted(data["tasks"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def main() -> None:
    """Score N reference architectures of one task and print rank agreement per proxy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nasbench201", choices=sorted(TABLES))
    parser.add_argument("--task", default="cifar10")
    parser.add_argument("--n", type=int, default=50, help="architectures (0: the whole table)")
    parser.add_argument("--batch", type=int, default=32, help="NSZ: 32 (NASLib zc_config)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the arch sample and models")
    parser.add_argument("--batch-seed", type=int, default=0, help="seed of the batch draw")
    parser.add_argument(
        "--self",
        dest="reseed",
        choices=sorted(RESEEDS),
        help="score again with init seed+1 (init), batch seed+1 (batch) or both",
    )
    parser.add_argument(
        "--random-labels", action="store_true", help="uniform labels over the task's classes"
    )
    parser.add_argument("--proxies", default=",".join(NSZ_PROXIES))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.proxies.split(",")

    ref = nsz_table(args.space, args.task)
    keys = sorted(ref)
    if args.n:
        keys = [keys[i] for i in np.random.default_rng(args.seed).permutation(len(keys))[: args.n]]
    batch = task_batch(args.space, args.task, args.batch, args.batch_seed, args.random_labels)
    print(f"{args.space}/{args.task}: {len(keys)} archs, batch {batch.dataset}/{batch.split}")
    ours, seconds = score_archs(args.space, args.task, keys, batch, args.seed, names)
    again = None
    if args.reseed:
        init_off, batch_off = RESEEDS[args.reseed]
        print(f"reseeded ({args.reseed}): init seed +{init_off}, batch seed +{batch_off}")
        other = task_batch(
            args.space, args.task, args.batch, args.batch_seed + batch_off, args.random_labels
        )
        again, _ = score_archs(args.space, args.task, keys, other, args.seed + init_off, names)
    rows = agreement(names, ours, again, ref, keys)

    columns = ("kt_vs_nsz", "kt_vs_reseeded", "kt_vs_accuracy", "nsz_kt_vs_accuracy")
    print(f"\n{'proxy':<10}{'KT ~NSZ':>10}{'KT ~self':>10}{'KT ~acc':>10}{'NSZ ~acc':>10}")
    for name, row in rows.items():
        print(f"{name:<10}" + "".join(f"{row.get(c, float('nan')):>10.3f}" for c in columns))
    entry = {
        "n": len(keys),
        "batch": args.batch,
        "seed": args.seed,
        "batch_seed": args.batch_seed,
        "reseed": args.reseed,
        "batch_source": {
            "dataset": batch.dataset,
            "split": batch.split,
            "substitute_for": batch.substitute_for,
            "fingerprint": batch.fingerprint,
        },
        "threads": args.threads,
        "median_seconds_per_arch": round(statistics.median(seconds), 3),
        "load_average_at_end": os.getloadavg(),
        "keys": keys,
        "agreement": rows,
        "scores": ours,
        "scores_reseeded": again,
    }
    suffix = "/random-labels" if args.random_labels else ""
    entry["random_labels"] = args.random_labels
    merge_result(args.out, f"{args.space}/{args.task}/batch{args.batch}{suffix}", entry)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
