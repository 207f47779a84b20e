"""Proxy-pruned search vs random pruning vs a fixed baseline, at equal AutoDL time budgets.

Datasets nobody here wrote: the AutoDL samples ``miniciao`` and ``Monkeys`` (shared data), the
1,000 CIFAR-10 test images of ``images/cifar10_test_1000.npz`` and scikit-learn's 1,797 8x8
digits (grey levels 0..16 scaled to 0..255), the last two formatted into the AutoDL format
(``autodl.writer.format_dataset``, 20 % test split, seed 0) in a temporary directory. Every
(dataset, seed) runs the three modes back to back (so machine load hits them alike) through the
local ingestion loop and scoring program; reports ALC, final NAUC and the time of the first
prediction, prints a table and writes ``benchmarks/results/autodl_compare.json``.

    nohup python benchmarks/autodl_compare.py --budget 60 --seeds 0 1 2 > autodl_compare.log &
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from autodl.dataset import load_dataset
from autodl.ingestion import run_ingestion
from autodl.model import prepare_training_data
from autodl.networks import build_baseline
from autodl.preprocess import make_input_spec
from autodl.scoring import score_run
from autodl.search import (
    PRUNING_MODES,
    SearchConfig,
    aggregate_ranks,
    candidate_pool,
    default_proxy,
    for_training,
    pool_network,
    proxy_batch,
    proxy_names,
    safe_batch_size,
    score_pool,
    seeded_build,
    validate,
)
from autodl.writer import format_dataset
from zcproxies.paths import shared_data_dir
from zcproxies.proxies import list_proxies
from zcproxies.train import train_model

RESULT = Path(__file__).resolve().parent / "results" / "autodl_compare.json"
POOL_RESULT = RESULT.with_name("autodl_pool_check.json")
DATASETS = ("miniciao", "Monkeys", "cifar10_1000", "digits")


def prepare_datasets(names: list[str], work: Path) -> dict[str, Path]:
    """Dataset directories by name: shared AutoDL samples as they are, the others formatted."""
    shared = shared_data_dir()
    dirs = {}
    for name in names:
        if name in ("miniciao", "Monkeys"):
            dirs[name] = shared / "autodl" / name
        elif name == "cifar10_1000":
            with np.load(shared / "images" / "cifar10_test_1000.npz") as data:
                dirs[name] = format_dataset(
                    data["x"], data["y"], work, name, classes=[str(c) for c in data["classes"]]
                )
        elif name == "digits":
            from sklearn.datasets import load_digits

            digits = load_digits()
            pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
            dirs[name] = format_dataset(
                pixels, digits.target, work, name, classes=[str(c) for c in range(10)]
            )
        else:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return dirs


def warm_up() -> None:
    """Pay the one-off imports (torch's optimizers pull in torch._dynamo, ~3 s; the proxy
    modules, ~2 s) before the first run, so that no mode pays them in its first prediction."""
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    list_proxies()


def one_run(dataset_dir: Path, out: Path, budget: float, mode: str, seed: int) -> dict:
    """Ingestion + scoring of one (dataset, mode, seed); the numbers the comparison needs.

    ``mode``: a pruning mode, or ``proxy:NAME`` for proxy pruning by NAME.
    """
    pruning, _, proxy = mode.partition(":")
    load_before, cpu_before = os.getloadavg()[0], time.process_time()
    result = run_ingestion(
        dataset_dir, out, budget, pruning=pruning, proxy=proxy or None, seed=seed
    )
    solution = load_dataset(dataset_dir).test_solution
    scores = score_run(result.prediction_dir, solution, budget, out, result.name)
    pool = next((e for e in result.summary["events"] if e["phase"] == "pool"), None)
    return {
        "alc": scores["alc"],
        "final_nauc": scores["final_nauc"],
        "final_bac": scores["final_bac"],
        "first_prediction_seconds": scores["first_prediction_seconds"],
        "num_predictions": scores["num_predictions"],
        "duration": result.duration,
        "cpu_seconds": time.process_time() - cpu_before,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "best": result.summary["best"],
        "proxy": result.summary["proxy"],
        "pool_scored": pool["scored"] if pool else None,
        "pool_seconds": pool["seconds"] if pool else None,
        "chunks": sum(e["phase"] != "pool" for e in result.summary["events"]),
    }


def pool_check(dataset_dir: Path, seed: int, epochs: int, proxies: list[str]) -> dict:
    """Does the proxy rank the trainer's own pool? Every pool member (as the search builds,
    initialises and augments it) trains ``epochs`` epochs twice (two shuffle/augmentation seeds)
    with no time limit: Kendall tau of each proxy's pool scores against the mean validation
    NAUC, the mean NAUC of its top ``keep``, and the tau between the two trainings (the noise
    ceiling of any ranking)."""
    train, _, _ = load_dataset(dataset_dir)
    config = SearchConfig()
    spec = make_input_spec(
        train.metadata.get_tensor_shape(),
        train.metadata.get_output_size(),
        config.max_size_cpu,
        config.max_frames,
    )
    train_split, val_split, _ = prepare_training_data(train, spec, config.val_fraction, seed)
    archs = candidate_pool(spec.domain, config.pool_size, seed)
    x, y = proxy_batch(train_split, config.proxy_batch, seed)
    scores = {}
    for proxy in proxies:
        nets = [pool_network(a, spec, config, seed, i) for i, a in enumerate(archs)]
        scores[proxy] = aggregate_ranks(
            score_pool(nets, x, y, spec.num_classes, proxy_names(proxy), seed)
        )
    train_config = replace(
        config.train,
        epochs=epochs,
        batch_size=safe_batch_size(len(train_split[0]), config.train.batch_size),
    )
    runs, seconds = [], []  # per network: validation NAUC of two trainings (seed, seed + 1)
    for i, arch in enumerate([*archs, None]):
        repeats = []
        for train_seed in (seed, seed + 1):
            net = (
                pool_network(arch, spec, config, seed, i)
                if arch is not None
                else seeded_build(
                    functools.partial(build_baseline, spec, config.baseline_width), seed
                )
            )
            result = train_model(
                for_training(net, spec, config.augment, train_seed),
                train_split,
                None,
                train_config,
                train_seed,
            )
            repeats.append(validate(net, val_split, spec.num_classes)[0])
            seconds.append(result.seconds / epochs)
        runs.append(repeats)
    first, second = np.array(runs[:-1]).T
    pool_nauc = (first + second) / 2
    rows = {}
    for proxy, values in scores.items():
        top = np.argsort(-values, kind="stable")[: config.keep]
        rows[proxy] = {
            "kendall_tau": float(kendalltau(values, pool_nauc)[0]),
            "top_keep_mean_val_nauc": float(pool_nauc[top].mean()),
        }
    return {
        "dataset": dataset_dir.name,
        "seed": seed,
        "epochs": epochs,
        "pool": len(archs),
        "target": "validation NAUC, mean of two trainings (shuffle/augmentation seeds seed and "
        "seed + 1) from the search's initialisation",
        "pool_val_nauc": {
            "mean": float(pool_nauc.mean()),
            "max": float(pool_nauc.max()),
            "min": float(pool_nauc.min()),
        },
        "retrain_kendall_tau": float(kendalltau(first, second)[0]),
        "baseline_val_nauc": float(np.mean(runs[-1])),
        "seconds_per_epoch": {
            "pool_median": float(np.median(seconds[:-2])),
            "baseline": float(np.mean(seconds[-2:])),
        },
        "proxies": rows,
    }


def summarise(runs: list[dict], names: list[str], modes: list[str]) -> list[dict]:
    """Mean and standard deviation over seeds per (dataset, mode), then per mode the mean of
    the per-dataset means (no deviation)."""
    rows = []
    for name in names:
        for mode in modes:
            picked = [r for r in runs if r["dataset"] == name and r["mode"] == mode]
            row = {"dataset": name, "mode": mode, "runs": len(picked)}
            for key in ("alc", "final_nauc", "first_prediction_seconds"):
                values = [r[key] for r in picked]
                row[key], row[f"{key}_std"] = statistics.mean(values), statistics.pstdev(values)
            rows.append(row)
    for mode in modes:
        per_dataset = [r for r in rows if r["mode"] == mode]
        row = {
            "dataset": "mean over datasets",
            "mode": mode,
            "runs": sum(r["runs"] for r in per_dataset),
        }
        for key in ("alc", "final_nauc", "first_prediction_seconds"):
            row[key] = statistics.mean(r[key] for r in per_dataset)
            row[f"{key}_std"] = None
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """Plain text table of the summary rows."""
    lines = [f"{'dataset':<20}{'mode':<14}{'ALC':>16}{'final NAUC':>18}{'first (s)':>11}"]
    for row in rows:

        def pm(key: str, row: dict = row) -> str:
            std = row[f"{key}_std"]
            return f"{row[key]:.3f}" + (f" ± {std:.3f}" if std is not None else "        ")

        lines.append(
            f"{row['dataset']:<20}{row['mode']:<14}{pm('alc'):>16}"
            f"{pm('final_nauc'):>18}{row['first_prediction_seconds']:>11.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--modes", nargs="+", default=list(PRUNING_MODES), choices=PRUNING_MODES)
    parser.add_argument(
        "--extra-proxies",
        nargs="*",
        default=[],
        help="also run proxy pruning with each of these proxies ('a+b' allowed)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"result JSON (default {RESULT.name}, or {POOL_RESULT.name})",
    )
    parser.add_argument(
        "--pool-check",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="instead of the comparison: train every pool member EPOCHS epochs "
        "and rank-correlate the default and extra proxies with it",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.pool_check:
        run_pool_check(args)
        return
    modes = args.modes + [f"proxy:{name}" for name in args.extra_proxies]
    warm_up()
    start = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="autodl_compare_") as tmp:
        work = Path(tmp)
        dirs = prepare_datasets(args.datasets, work / "data")
        for name in args.datasets:
            for seed in args.seeds:
                for mode in modes:
                    record = one_run(
                        dirs[name], work / f"{name}-{mode}-{seed}", args.budget, mode, seed
                    )
                    runs.append({"dataset": name, "mode": mode, "seed": seed, **record})
                    print(
                        f"{name:<14}{mode:<14}seed {seed}: ALC {record['alc']:.3f}, final "
                        f"NAUC {record['final_nauc']:.3f}, first "
                        f"{record['first_prediction_seconds']:.1f} s, "
                        f"{record['num_predictions']} predictions, best "
                        f"{(record['best'] or {}).get('name')}",
                        flush=True,
                    )
    rows = summarise(runs, args.datasets, modes)
    print(table(rows))
    wall = time.perf_counter() - start
    print(f"total {wall:.0f} s")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    out = args.out or RESULT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "budget_seconds": args.budget,
                "seeds": args.seeds,
                "threads": args.threads,
                "datasets": args.datasets,
                "modes": modes,
                "default_proxy": default_proxy(),
                "total_seconds": wall,
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "torch": torch.__version__,
                    "cuda": torch.cuda.is_available(),
                },
                "git_commit": commit,
                "summary": rows,
                "runs": runs,
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


def run_pool_check(args: argparse.Namespace) -> None:
    """``--pool-check``: ``pool_check`` per dataset and seed; prints and writes the results."""
    start = time.perf_counter()
    proxies = [default_proxy(), *args.extra_proxies]
    checks = []
    with tempfile.TemporaryDirectory(prefix="autodl_pool_check_") as tmp:
        dirs = prepare_datasets(args.datasets, Path(tmp))
        for name in args.datasets:
            for seed in args.seeds:
                check = pool_check(dirs[name], seed, args.pool_check, proxies)
                checks.append(check)
                taus = ", ".join(
                    f"{p}: tau {r['kendall_tau']:.3f}, top-keep NAUC "
                    f"{r['top_keep_mean_val_nauc']:.3f}"
                    for p, r in check["proxies"].items()
                )
                print(
                    f"{name} seed {seed}: pool NAUC mean {check['pool_val_nauc']['mean']:.3f}"
                    f" max {check['pool_val_nauc']['max']:.3f}, baseline "
                    f"{check['baseline_val_nauc']:.3f}, retrain tau "
                    f"{check['retrain_kendall_tau']:.3f}; {taus}",
                    flush=True,
                )
    out = args.out or POOL_RESULT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "epochs": args.pool_check,
                "threads": args.threads,
                "total_seconds": time.perf_counter() - start,
                "checks": checks,
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
