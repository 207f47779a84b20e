"""Proxy-pruned search vs random pruning vs a fixed baseline, at equal AutoDL time budgets.

Datasets nobody here wrote: the AutoDL samples ``miniciao`` and ``Monkeys`` (shared data), the
1,000 CIFAR-10 test images of ``images/cifar10_test_1000.npz`` (``cifar10_1000``), all 10,000 of
``images/cifar10_test_jpg.tar`` (``cifar10_10000``, through the image-folder writer, JPEGs stored
as they are) and scikit-learn's 1,797 8x8 digits (grey levels 0..16 scaled to 0..255), the last
three formatted into the AutoDL format (``autodl.writer``, 20 % test split, seed 0) in a
temporary directory. Every
(dataset, seed) runs its modes back to back (``--parallel 1``) or at the same time in separate
processes (``--parallel K``: K processes on disjoint CPU cores), so that machine load hits them
alike, through the local ingestion loop and scoring program; reports ALC, final NAUC and the
time of the first prediction, prints a table and writes ``benchmarks/results/autodl_compare.json``
(rewritten after every finished run, so a killed run keeps what it has).

    nohup python benchmarks/autodl_compare.py --budget 60 --seeds 0 1 2 > autodl_compare.log &
    python benchmarks/autodl_compare.py --parallel 12 --device cuda      # 16 cores + a GPU
    python benchmarks/autodl_compare.py --smoke --device cuda            # CUDA path, < 60 s
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import fields, replace
from pathlib import Path
from threading import BrokenBarrierError

import numpy as np
import torch
from scipy.stats import kendalltau

from autodl.dataset import load_dataset
from autodl.ingestion import atomic_write_text, run_ingestion
from autodl.model import Split, prepare_training_data
from autodl.preprocess import InputSpec, spec_from_metadata
from autodl.scoring import score_run
from autodl.search import (
    PRUNING_MODES,
    AnytimeSearch,
    Member,
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
    validate,
)
from autodl.writer import format_dataset, format_image_folder
from zcproxies.paths import shared_data_dir
from zcproxies.proxies import list_proxies
from zcproxies.train import TrainConfig, train_model

RESULT = Path(__file__).resolve().parent / "results" / "autodl_compare.json"
POOL_RESULT = RESULT.with_name("autodl_pool_check.json")
SMOKE_RESULT = RESULT.with_name("autodl_smoke.json")
SCHEDULE_RESULT = RESULT.with_name("autodl_schedule_check.json")
DATASETS = ("miniciao", "Monkeys", "cifar10_1000", "cifar10_10000", "digits")
SMOKE_BUDGET = 10.0  # seconds per run of --smoke
BARRIER_TIMEOUT = 300.0  # seconds a run waits for the other runs of its wave to be ready


def prepared_splits(
    dataset_dir: Path, config: SearchConfig, device: str, seed: int
) -> tuple[InputSpec, Split, Split]:
    """The input spec and the training/validation splits exactly as the search prepares them."""
    train, _, _ = load_dataset(dataset_dir)
    spec = spec_from_metadata(
        train.metadata,
        config.max_size_gpu if torch.device(device).type == "cuda" else config.max_size_cpu,
        config.max_frames,
    )
    spec, train_split, val_split, _ = prepare_training_data(train, spec, config.val_fraction, seed)
    return spec, train_split, val_split


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
        elif name == "cifar10_10000":  # the image-folder path of `zcp autodl format`
            with tarfile.open(shared / "images" / "cifar10_test_jpg.tar") as tar:
                tar.extractall(work / "jpg", filter="data")
            dirs[name] = format_image_folder(work / "jpg" / "cifar10_test", work, name)
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


def warm_up(device: str) -> None:
    """Pay the one-off costs before the first run, so that no mode pays them in its first
    prediction: imports (torch's optimizers pull in torch._dynamo, ~3 s; the proxy modules, ~2 s)
    and, on CUDA, the context and kernels of a small training step (autocast, loss scaling)."""
    list_proxies()
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    train_model(net, (x, torch.zeros(8, dtype=torch.long)), None, TrainConfig(1, 4), 0, device)


def core_sets(k: int) -> list[list[int]]:
    """``k`` disjoint, near-equal sets of the CPU cores this process may use."""
    cores = sorted(os.sched_getaffinity(0))
    if not 1 <= k <= len(cores):
        raise ValueError(f"--parallel {k}: this process may use {len(cores)} cores")
    return [chunk.tolist() for chunk in np.array_split(np.array(cores), k)]


def pin_worker(cores: multiprocessing.Queue, device: str) -> None:
    """Process-pool initializer: take the next free core set, pin this process to it with one
    torch thread per core, and warm up."""
    mine = cores.get()
    os.sched_setaffinity(0, mine)
    torch.set_num_threads(len(mine))
    warm_up(device)


Job = tuple[tuple, Callable[..., dict], tuple]  # (key, function, arguments)


def run_jobs(
    waves: list[list[Job]], parallel: int, device: str, synchronise: bool
) -> Iterable[tuple[tuple, dict]]:
    """``(key, result)`` of every job, as each finishes.

    ``parallel`` 1: in this process, in order. Else in ``parallel`` worker processes pinned to
    disjoint cores (``pin_worker``), one wave after the other; with ``synchronise`` the jobs of a
    wave (at most ``parallel``) start together: each gets a ``barrier`` to wait at.
    """
    if parallel == 1:
        warm_up(device)
        for wave in waves:
            for key, function, arguments in wave:
                yield key, function(*arguments)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that has CUDA/threads
    cores = context.Queue()
    for chosen in core_sets(parallel):
        cores.put(chosen)
    with (
        context.Manager() as manager,
        ProcessPoolExecutor(
            parallel, mp_context=context, initializer=pin_worker, initargs=(cores, device)
        ) as pool,
    ):
        for wave in waves:
            extra = {"barrier": manager.Barrier(len(wave))} if synchronise else {}
            futures: dict[Future, tuple] = {
                pool.submit(function, *arguments, **extra): key for key, function, arguments in wave
            }
            for future in as_completed(futures):
                yield futures[future], future.result()


def one_run(
    dataset_dir: Path,
    out: Path,
    budget: float,
    mode: str,
    seed: int,
    config: SearchConfig,
    device: str,
    barrier: object | None = None,
) -> dict:
    """Ingestion + scoring of one (dataset, mode, seed); the numbers the comparison needs.

    ``mode``: a pruning mode, or ``proxy:NAME`` for proxy pruning by NAME. With ``barrier``
    (a ``multiprocessing`` barrier proxy) the run starts when the other runs of its wave do.
    """
    pruning, _, proxy = mode.partition(":")
    synchronised = None
    if barrier is not None:
        try:
            barrier.wait(BARRIER_TIMEOUT)
            synchronised = True
        except BrokenBarrierError:
            synchronised = False
    load_before, cpu_before = os.getloadavg()[0], time.process_time()
    result = run_ingestion(
        dataset_dir,
        out,
        budget,
        pruning=pruning,
        proxy=proxy or None,
        seed=seed,
        config=config,
        device=device,
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
        "curve": [  # (seconds, NAUC) of each prediction within the budget: the learning curve
            [row["seconds"], row["nauc"]] for row in scores["predictions"] if row["within_budget"]
        ],
        "duration": result.duration,
        "cpu_seconds": time.process_time() - cpu_before,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "device": result.summary["device"],
        "cores": sorted(os.sched_getaffinity(0)),
        "threads": torch.get_num_threads(),
        "synchronised": synchronised,
        "best": result.summary["best"],
        "proxy": result.summary["proxy"],
        "pool_scored": pool["scored"] if pool else None,
        "pool_seconds": pool["seconds"] if pool else None,
        "kept": [m["member"] for m in pool["pool"] if m["kept"]] if pool else None,
        "passed_over": [m["member"] for m in pool["pool"] if m["too_slow"]] if pool else None,
        "chunks": sum(e["phase"] != "pool" for e in result.summary["events"]),
    }


def pool_check(
    dataset_dir: Path,
    seed: int,
    epochs: int,
    proxies: list[str],
    config: SearchConfig,
    device: str,
) -> dict:
    """Does the proxy rank the trainer's own pool? Every pool member (as the search builds,
    initialises and augments it) trains ``epochs`` epochs twice (two shuffle/augmentation seeds)
    with no time limit: Kendall tau of each proxy's pool scores against the mean validation
    NAUC, the mean NAUC of its top ``keep``, and the tau between the two trainings (the noise
    ceiling of any ranking). Proxies score on the CPU, training runs on ``device``."""
    spec, train_split, val_split = prepared_splits(dataset_dir, config, device, seed)
    pool = candidate_pool(spec.domain, config.pool_size, seed, config.plain)
    x, y = proxy_batch(train_split, config.proxy_batch, seed)
    scores = {}
    for proxy in proxies:
        nets = [pool_network(m, spec, config, seed, i) for i, m in enumerate(pool)]
        scores[proxy] = aggregate_ranks(
            score_pool(nets, x, y, spec.num_classes, proxy_names(proxy), seed)
        )
    train_config = replace(
        config.train,
        epochs=epochs,
        batch_size=safe_batch_size(len(train_split[0]), config.train.batch_size),
    )
    runs, seconds = [], []  # per member: validation NAUC of two trainings (seed, seed + 1)
    for i, member in enumerate(pool):
        repeats, timed = [], []
        for train_seed in (seed, seed + 1):
            net = pool_network(member, spec, config, seed, i)
            result = train_model(
                for_training(net, spec, config.augment, train_seed),
                train_split,
                None,
                train_config,
                train_seed,
                device,
            )
            repeats.append(validate(net, val_split, spec.num_classes, device)[0])
            timed.append(result.seconds / epochs)
        runs.append(repeats)
        seconds.append(float(np.mean(timed)))
    first, second = np.array(runs).T
    pool_nauc = (first + second) / 2
    plain = np.array([m.cell is None for m in pool])
    rows = {}
    for proxy, values in scores.items():
        top = np.argsort(-values, kind="stable")[: config.keep]
        rows[proxy] = {
            "kendall_tau": float(kendalltau(values, pool_nauc)[0]),
            "top_keep_mean_val_nauc": float(pool_nauc[top].mean()),
            "top_keep_plain": int(plain[top].sum()),
        }
    baseline = Member(width=config.baseline_width).name
    return {
        "dataset": dataset_dir.name,
        "seed": seed,
        "epochs": epochs,
        "device": device,
        "pool": len(pool),
        "target": "validation NAUC, mean of two trainings (shuffle/augmentation seeds seed and "
        "seed + 1) from the search's initialisation",
        "pool_val_nauc": {
            "mean": float(pool_nauc.mean()),
            "max": float(pool_nauc.max()),
            "min": float(pool_nauc.min()),
            "plain_mean": float(pool_nauc[plain].mean()) if plain.any() else None,
            "cells_mean": float(pool_nauc[~plain].mean()) if (~plain).any() else None,
        },
        "retrain_kendall_tau": float(kendalltau(first, second)[0]),
        "baseline_val_nauc": next(
            (float(v) for m, v in zip(pool, pool_nauc, strict=True) if m.name == baseline), None
        ),
        "seconds_per_epoch": {
            "cells_median": float(np.median(np.array(seconds)[~plain])) if (~plain).any() else None,
            "plain_median": float(np.median(np.array(seconds)[plain])) if plain.any() else None,
        },
        "proxies": rows,
        "members": [
            {
                "member": m.name,
                "val_nauc": [float(a), float(b)],
                "seconds_per_epoch": t,
                "scores": {proxy: float(values[i]) for proxy, values in scores.items()},
            }
            for i, (m, (a, b), t) in enumerate(zip(pool, runs, seconds, strict=True))
        ],
    }


def schedule_check(
    dataset_dir: Path, seed: int, epochs: int, config: SearchConfig, device: str
) -> dict:
    """Continued schedule vs warm restarts, free of machine load: the baseline network trains
    in the search's chunks of doubling epochs up to ``epochs`` with no deadline, once per
    schedule; the validation NAUC after each chunk (the any-time predictions' quality)."""
    spec, train_split, val_split = prepared_splits(dataset_dir, config, device, seed)
    curves = {}
    for continued in (True, False):
        search = AnytimeSearch(
            spec,
            train_split,
            val_split,
            pruning="baseline",
            seed=seed,
            config=replace(config, continued_schedule=continued, max_epochs=epochs),
            device=device,
        )
        while not search.done:
            search.run(time.perf_counter() + 1e6)  # no deadline in practice
        curves["continued" if continued else "restarts"] = [
            [e["total_epochs"], e["val_nauc"]] for e in search.events if e["phase"] == "extend"
        ]
    return {"dataset": dataset_dir.name, "seed": seed, "epochs": epochs, "curves": curves}


def summarise(runs: list[dict], names: list[str], modes: list[str]) -> list[dict]:
    """Mean and standard deviation over seeds per (dataset, mode) that has runs, then per mode
    the mean of the per-dataset means (no deviation)."""
    rows = []
    for name in names:
        for mode in modes:
            picked = [r for r in runs if r["dataset"] == name and r["mode"] == mode]
            if not picked:
                continue
            row = {"dataset": name, "mode": mode, "runs": len(picked)}
            for key in ("alc", "final_nauc", "first_prediction_seconds"):
                values = [r[key] for r in picked]
                row[key], row[f"{key}_std"] = statistics.mean(values), statistics.pstdev(values)
            rows.append(row)
    for mode in modes:
        per_dataset = [r for r in rows if r["mode"] == mode]
        if not per_dataset:
            continue
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


def search_config(pairs: list[str]) -> SearchConfig:
    """``SearchConfig()`` with ``KEY=VALUE`` overrides of its plain fields (numbers, booleans,
    comma-separated integer tuples; an empty value is an empty tuple)."""
    base, changes = SearchConfig(), {}
    names = {f.name for f in fields(SearchConfig)} - {"train"}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in names:
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE, KEY one of {sorted(names)}")
        current = getattr(base, key)
        if isinstance(current, bool):
            if text not in ("true", "false"):
                raise ValueError(f"--set {pair!r}: a boolean is true or false")
            changes[key] = text == "true"
        elif isinstance(current, tuple):
            changes[key] = tuple(int(v) for v in text.split(",") if v)
        else:
            changes[key] = type(current)(text)
    return replace(base, **changes)


def machine() -> dict:
    """Where the numbers were taken."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "git_commit": commit,
    }


def write_json(path: Path, payload: dict) -> None:
    """``payload`` to ``path`` atomically (a killed run leaves the previous complete file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(payload, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--datasets", nargs="+", choices=DATASETS, help="default: all; miniciao with --smoke"
    )
    parser.add_argument("--modes", nargs="+", default=list(PRUNING_MODES), choices=PRUNING_MODES)
    parser.add_argument(
        "--extra-proxies",
        nargs="*",
        default=[],
        help="also run proxy pruning with each of these proxies ('a+b' allowed)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="SearchConfig overrides, e.g. keep=3 plain_widths= continued_schedule=false",
    )
    parser.add_argument("--device", default="cpu", help="training device: cpu or cuda")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (with --parallel 1)"
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="K",
        help="K runs at once, each in its own process on its own cores (the modes of one "
        "(dataset, seed) start together); 1: back to back in this process",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"check the --device path end to end: one {SMOKE_BUDGET:g} s miniciao run per mode, "
        "at once where there are enough cores; exit status 1 if a run fails the checks",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"result JSON (default {RESULT.name}; {POOL_RESULT.name}, {SCHEDULE_RESULT.name} "
        f"or {SMOKE_RESULT.name} for the checks)",
    )
    parser.add_argument(
        "--pool-check",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="instead of the comparison: train every pool member EPOCHS epochs "
        "and rank-correlate the default and extra proxies with it",
    )
    parser.add_argument(
        "--schedule-check",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="instead of the comparison: the baseline network in doubling chunks up to EPOCHS, "
        "continued schedule vs warm restarts, validation NAUC after each chunk",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = search_config(args.overrides)
    if args.pool_check or args.schedule_check:
        args.datasets = args.datasets or list(DATASETS)
        run_check(args, config)
        return
    modes = args.modes + [f"proxy:{name}" for name in args.extra_proxies]
    if args.smoke:
        args.budget, args.seeds = SMOKE_BUDGET, [0]
        args.datasets = args.datasets or ["miniciao"]
        args.parallel = len(modes) if len(os.sched_getaffinity(0)) >= len(modes) else 1
    args.datasets = args.datasets or list(DATASETS)
    if args.parallel != 1 and args.parallel < len(modes):
        parser.error(f"--parallel must be 1 or at least the number of modes ({len(modes)})")
    out = args.out or (SMOKE_RESULT if args.smoke else RESULT)
    start = time.perf_counter()
    runs: list[dict] = []
    units = [(name, seed) for name in args.datasets for seed in args.seeds]
    per_wave = max(1, args.parallel // len(modes))
    with tempfile.TemporaryDirectory(prefix="autodl_compare_") as tmp:
        work = Path(tmp)
        dirs = prepare_datasets(args.datasets, work / "data")
        waves = [
            [
                (
                    (name, mode, seed),
                    one_run,
                    (
                        dirs[name],
                        work / f"{name}-{mode}-{seed}",
                        args.budget,
                        mode,
                        seed,
                        config,
                        args.device,
                    ),
                )
                for name, seed in units[first : first + per_wave]
                for mode in modes
            ]
            for first in range(0, len(units), per_wave)
        ]
        for (name, mode, seed), record in run_jobs(
            waves, args.parallel, args.device, synchronise=True
        ):
            runs.append({"dataset": name, "mode": mode, "seed": seed, **record})
            print(
                f"{name:<14}{mode:<14}seed {seed}: ALC {record['alc']:.3f}, final "
                f"NAUC {record['final_nauc']:.3f}, first "
                f"{record['first_prediction_seconds']:.1f} s, "
                f"{record['num_predictions']} predictions, best "
                f"{(record['best'] or {}).get('name')}",
                flush=True,
            )
            write_json(
                out,
                {
                    "budget_seconds": args.budget,
                    "seeds": args.seeds,
                    "device": args.device,
                    "parallel": args.parallel,
                    "threads": args.threads if args.parallel == 1 else "one per core",
                    "datasets": args.datasets,
                    "modes": modes,
                    "config_overrides": args.overrides,
                    "default_proxy": default_proxy(),
                    "complete": len(runs) == len(units) * len(modes),
                    "total_seconds": time.perf_counter() - start,
                    "machine": machine(),
                    "summary": summarise(runs, args.datasets, modes),
                    "runs": runs,
                },
            )
    print(table(summarise(runs, args.datasets, modes)))
    print(f"total {time.perf_counter() - start:.0f} s; wrote {out}")
    if args.smoke:
        failed = smoke_failures(runs, args.device)
        print("\n".join(failed) or f"smoke check passed on {args.device}")
        raise SystemExit(1 if failed else 0)


def smoke_failures(runs: list[dict], device: str) -> list[str]:
    """What ``--smoke`` found wrong: a run with no prediction, or trained on another device."""
    failed = []
    for run in runs:
        where = f"{run['dataset']} {run['mode']} seed {run['seed']}"
        if not run["num_predictions"]:
            failed.append(f"{where}: no prediction within the budget")
        if torch.device(run["device"]).type != torch.device(device).type:
            failed.append(f"{where}: trained on {run['device']}, not {device}")
    return failed


def run_check(args: argparse.Namespace, config: SearchConfig) -> None:
    """``--pool-check`` or ``--schedule-check`` per dataset and seed (``--parallel`` at once);
    prints and writes the results after each."""
    start = time.perf_counter()
    proxies = [default_proxy(), *args.extra_proxies]
    out = args.out or (POOL_RESULT if args.pool_check else SCHEDULE_RESULT)
    checks = []
    with tempfile.TemporaryDirectory(prefix="autodl_check_") as tmp:
        dirs = prepare_datasets(args.datasets, Path(tmp))
        jobs = [
            ((name, seed), pool_check, (dirs[name], seed, args.pool_check, proxies, config))
            if args.pool_check
            else ((name, seed), schedule_check, (dirs[name], seed, args.schedule_check, config))
            for name in args.datasets
            for seed in args.seeds
        ]
        for _, check in run_jobs(
            [[(key, f, (*a, args.device)) for key, f, a in jobs]],
            args.parallel,
            args.device,
            synchronise=False,
        ):
            checks.append(check)
            print(check_line(check), flush=True)
            write_json(
                out,
                {
                    "epochs": args.pool_check or args.schedule_check,
                    "threads": args.threads if args.parallel == 1 else "one per core",
                    "parallel": args.parallel,
                    "config_overrides": args.overrides,
                    "total_seconds": time.perf_counter() - start,
                    "machine": machine(),
                    "checks": checks,
                },
            )
    print(f"wrote {out}")


def check_line(check: dict) -> str:
    """One printed line of a pool or schedule check."""
    where = f"{check['dataset']} seed {check['seed']}: "
    if "curves" in check:
        return where + "; ".join(
            f"{name}: " + " ".join(f"{e}:{v:.3f}" for e, v in curve)
            for name, curve in check["curves"].items()
        )
    taus = ", ".join(
        f"{p}: tau {r['kendall_tau']:.3f}, top-keep NAUC "
        f"{r['top_keep_mean_val_nauc']:.3f} ({r['top_keep_plain']} plain)"
        for p, r in check["proxies"].items()
    )
    return (
        f"{where}pool NAUC mean {check['pool_val_nauc']['mean']:.3f} max "
        f"{check['pool_val_nauc']['max']:.3f}, baseline {check['baseline_val_nauc']}, retrain "
        f"tau {check['retrain_kendall_tau']:.3f}; {taus}"
    )


if __name__ == "__main__":
    main()
