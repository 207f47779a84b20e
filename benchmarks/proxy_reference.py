"""Agreement of zcp's NAS-Bench-Suite-Zero proxies with NSZ's own values on NAS-Bench-201.

For N architectures of ``zc_nasbench201.json`` (shared data), scores the proxies through one
shared context on the SAME batch of real CIFAR-10 test images for every model (NSZ used a
different random training batch per model, so per-model values differ; rankings are what must
agree). Prints Kendall tau / Spearman rho of ours vs NSZ's values and of both vs validation
accuracy, and writes ``benchmarks/results/proxy_reference.json``.

    python benchmarks/proxy_reference.py --n 100 --batch 64
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from zcproxies import build, get_space
from zcproxies.paths import shared_data_dir
from zcproxies.proxies import score_many
from zcproxies.proxies.classic import NSZ_PROXIES

PROXIES = NSZ_PROXIES
CIFAR_MEAN = np.array([125.3, 123.0, 113.9]) / 255  # NAS-Bench-201's normalisation
CIFAR_STD = np.array([63.0, 62.1, 66.7]) / 255
RESULT = Path(__file__).resolve().parent / "results" / "proxy_reference.json"


def cifar_batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` shared CIFAR-10 test images (class-balanced prefix), normalised."""
    data = np.load(shared_data_dir() / "images" / "cifar10_test_1000.npz")
    x = (data["x"][:size].astype(np.float64) / 255 - CIFAR_MEAN) / CIFAR_STD
    return (
        torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32)),
        torch.from_numpy(data["y"][:size].astype(np.int64)),
    )


def main() -> None:
    """Score N reference architectures and print rank agreement per proxy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="architectures (0: all 491)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="seed of the arch sample and models")
    parser.add_argument("--proxies", default=",".join(PROXIES))
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    names = args.proxies.split(",")

    table = json.loads(
        (shared_data_dir() / "nas_bench_suite_zero" / "zc_nasbench201.json").read_text()
    )["nasbench201"]["cifar10"]
    keys = sorted(table)
    if args.n:
        keys = [keys[i] for i in np.random.default_rng(args.seed).permutation(len(keys))[: args.n]]
    space = get_space("nasbench201")
    x, y = cifar_batch(args.batch)
    ours: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for i, key in enumerate(keys):
        model = build(space, space.decode(key), "cifar10", seed=args.seed)
        for name, value in score_many(names, model, x, y, 10, seed=args.seed).items():
            ours[name].append(value)
        if (i + 1) % 10 == 0:
            print(f"{i + 1}/{len(keys)} archs, {time.perf_counter() - start:.0f} s", flush=True)

    accuracy = [table[k]["val_accuracy"] for k in keys]
    rows = {}
    print(
        f"\n{'proxy':<10}{'KT ours~NSZ':>13}{'SR ours~NSZ':>13}{'KT ours~acc':>13}"
        f"{'KT NSZ~acc':>12}"
    )
    for name in names:
        row = {"kt_vs_accuracy": kendalltau(ours[name], accuracy)[0]}
        if name in table[keys[0]]:
            ref = [table[k][name] for k in keys]
            row |= {
                "kt_vs_nsz": kendalltau(ours[name], ref)[0],
                "spearman_vs_nsz": spearmanr(ours[name], ref)[0],
                "nsz_kt_vs_accuracy": kendalltau(ref, accuracy)[0],
            }
            if name in ("params", "flops"):
                row["max_abs_diff"] = float(np.max(np.abs(np.subtract(ours[name], ref))))
        rows[name] = {k: round(float(v), 4) for k, v in row.items()}
        cells = [
            rows[name].get(k, float("nan"))
            for k in ("kt_vs_nsz", "spearman_vs_nsz", "kt_vs_accuracy", "nsz_kt_vs_accuracy")
        ]
        print(f"{name:<10}" + "".join(f"{c:>13.3f}" for c in cells))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "n": len(keys),
                "batch": args.batch,
                "seed": args.seed,
                "keys": keys,
                "agreement": rows,
                "scores": ours,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
