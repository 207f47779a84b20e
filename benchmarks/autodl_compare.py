"""Proxy-pruned search vs random pruning vs a fixed baseline, at equal AutoDL time budgets.

Every run is a fresh ``zcp autodl run`` process (one torch thread, ``--threads``), so the time of
the first prediction is measured from the process start, imports included, as a user waits for
it. Datasets nobody here wrote, formatted into the AutoDL format in a temporary directory
(``autodl.writer``, seeded 20 % test split unless the source has an official one):

- images: the AutoDL samples ``miniciao`` and ``Monkeys`` (shared data, as they are), the 1,000
  CIFAR-10 test images of ``images/cifar10_test_1000.npz`` (``cifar10_1000``), all 10,000 of
  ``images/cifar10_test_jpg.tar`` (``cifar10_10000``) and scikit-learn's 8 x 8 ``digits``;
- tabular: scikit-learn's ``breast_cancer`` (569 x 30, 2 classes) and ``wine`` (178 x 13, 3);
- speech, time series and text shipped inside sktime and gensim (``autodl.realdata``: official
  UCR/UEA splits): ``JapaneseVowels`` (12 features over 7-29 steps, 9 speakers: 270 / 370),
  ``ArrowHead``, ``BasicMotions``, ``PLAID`` (raw current waveforms, the speech layout) and
  ``SentencePolarity``, ``MiniNewsgroups`` (text, 160 / 40).

The split is seed 0's on every run; ``--resplit`` draws each run's test split with its seed
(``DRAWN_SPLITS``, the sets without a split of their own), so that the seeds resample the test
examples as well as the training (each run records its ``split_seed``; pairs are formed only
from runs on the same split).

Results go to a JSON that is rewritten (atomically) after every run and read back on start:
runs already there are skipped, so a killed comparison resumes where it stopped (``--fresh``
starts over). Each run records the load average before and after (the machine is shared).
``summary`` holds per (dataset, mode) means, and ``paired``: proxy minus random and proxy minus
baseline ALC per (dataset, seed) with a seeded paired bootstrap 95 % interval of the mean.
``--combine`` computes both over the runs of several such files together (more seeds run later
into another file, at the same budget and settings; with ``--replace`` a later file's runs
replace the same runs of an earlier one: a dataset rerun after a change that affects it alone).

    nice -n 10 python benchmarks/autodl_compare.py --budget 60 --parallel 2
    python benchmarks/autodl_compare.py --combine grid.json more_seeds.json --out both.json
    python benchmarks/autodl_compare.py --pool-check 10 --parallel 2       # proxy vs trained
    python benchmarks/autodl_compare.py --parallel 12 --device cuda        # 16 cores + a GPU
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import bootstrap, kendalltau

from autodl.dataset import load_dataset
from autodl.families import FAMILY_DOMAINS, family_baseline, proxy_view
from autodl.ingestion import atomic_write_text
from autodl.model import training_splits
from autodl.preprocess import prepare_training, spec_from_metadata
from autodl.realdata import REAL_DATASETS, SEEDED_SPLITS, make_dataset
from autodl.search import (
    aggregate_ranks,
    candidate_space,
    choose,
    default_proxy,
    for_training,
    percentiles,
    plain_member,
    proxy_batch,
    proxy_names,
    safe_batch_size,
    seeded_build,
    utility,
    validate,
)
from autodl.settings import PRUNING_MODES, SearchConfig
from autodl.writer import format_dataset, format_image_folder
from zcproxies.paths import shared_data_dir
from zcproxies.proxies import get_proxy, score_many
from zcproxies.train import TrainConfig, train_model

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "autodl_compare.json"
POOL_RESULT = RESULT.with_name("autodl_pool_check.json")
DATASETS = {
    "miniciao": "image",
    "Monkeys": "image",
    "cifar10_1000": "image",
    "cifar10_10000": "image",
    "digits": "image",
    "breast_cancer": "tabular",
    "wine": "tabular",
    "JapaneseVowels": "timeseries",
    "ArrowHead": "timeseries",
    "BasicMotions": "timeseries",
    "PLAID": "speech",
    "SentencePolarity": "text",
    "MiniNewsgroups": "text",
}
# the datasets whose test split the comparison draws (seeded; seed 0 unless ``--resplit``): the
# others come with their own (the AutoDL samples, the UCR/UEA archives)
DRAWN_SPLITS = frozenset({"cifar10_1000", "cifar10_10000", "digits", "breast_cancer", "wine"})
DRAWN_SPLITS |= SEEDED_SPLITS
DEFAULT_DATASETS = (
    "cifar10_1000",
    "digits",
    "breast_cancer",
    "wine",
    "JapaneseVowels",
    "SentencePolarity",
)
MODES = (*PRUNING_MODES, "portfolio")  # portfolio: proxy pruning, first network from it
BOOTSTRAP_SEED = 0


# ---- datasets -------------------------------------------------------------------------------
def split_seed(name: str, seed: int, resplit: bool) -> int | None:
    """The seed of the test split a run of ``seed`` on dataset ``name`` gets: its own with
    ``resplit``, else 0, for the ``DRAWN_SPLITS``; None where the source has its split."""
    if name not in DRAWN_SPLITS:
        return None
    return seed if resplit else 0


def run_split(run: dict) -> int | None:
    """A recorded run's ``split_seed`` (runs from before ``--resplit`` existed: seed 0's)."""
    return run.get("split_seed", 0 if run["dataset"] in DRAWN_SPLITS else None)


def prepare_dataset(name: str, work: Path, split: int | None = None) -> Path:
    """The AutoDL directory of dataset ``name`` (shared samples as they are, others formatted;
    ``split``: the seed of the test split of the ``DRAWN_SPLITS``, 0 when None)."""
    shared = shared_data_dir()
    seed = split or 0
    if name in ("miniciao", "Monkeys"):
        return shared / "autodl" / name
    if name == "cifar10_1000":
        with np.load(shared / "images" / "cifar10_test_1000.npz") as data:
            classes = [str(c) for c in data["classes"]]
            return format_dataset(data["x"], data["y"], work, name, classes=classes, seed=seed)
    if name == "cifar10_10000":  # the image-folder path of `zcp autodl format`
        with tarfile.open(shared / "images" / "cifar10_test_jpg.tar") as tar:
            tar.extractall(work / "jpg", filter="data")
        return format_image_folder(work / "jpg" / "cifar10_test", work, name, seed=seed)
    if name in ("digits", "breast_cancer", "wine"):
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, f"load_{name}")()
        if name == "digits":  # grey levels 0..16 as 8 x 8 images
            x = np.round(bunch.images * (255 / 16)).astype(np.uint8)[..., None]
        else:  # one feature row: (1, 1, features, 1) -> tabular
            x = bunch.data.astype(np.float32)[:, None, None, :, None]
        return format_dataset(x, bunch.target, work, name, seed=seed)
    if name in REAL_DATASETS:  # shipped inside sktime / gensim (autodl.realdata)
        return make_dataset(name, work, seed)
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


# ---- one run: a fresh process ---------------------------------------------------------------
def run_command(
    dataset_dir: Path,
    out: Path,
    budget: float,
    mode: str,
    seed: int,
    device: str,
    threads: int,
    overrides: list[str],
) -> list[str]:
    """The ``zcp autodl run`` command line of one run."""
    pruning, _, proxy = mode.partition(":")
    command = [sys.executable, "-m", "zcproxies.cli", "autodl", "run", str(dataset_dir)]
    command += ["--time-budget", str(budget), "--seed", str(seed), "--threads", str(threads)]
    command += ["--device", device, "--out", str(out), "--quiet"]
    command += ["--pruning", "proxy" if pruning == "portfolio" else pruning]
    if pruning == "portfolio":
        command.append("--portfolio")
    if proxy:
        command += ["--proxy", proxy]
    for pair in overrides:
        command += ["--set", pair]
    return command


def one_run(command: list[str], out: Path, cores: list[int] | None) -> dict:
    """One run (``run_command``, writing to ``out``) in a fresh process pinned to ``cores``;
    what the comparison needs from its scores.json and ingestion.json."""
    load_before = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    scores = json.loads((out / "scores.json").read_text())
    log = json.loads((out / "ingestion.json").read_text())
    events = log["model"]["events"]
    choices = {e["choice"]: e for e in events if e["phase"] == "choice"}
    firsts = [e["picked"] for e in events if e.get("choice") == "first"]
    scored = [e for e in events if e["phase"] == "score"]
    curve = [[r["seconds"], r["nauc"]] for r in scores["predictions"] if r["within_budget"]]
    cpu = log["cpu_seconds"]
    return {
        "alc": scores["alc"],
        "final_nauc": scores["final_nauc"],
        "final_bac": scores["final_bac"],
        "first_prediction_seconds": scores["first_prediction_seconds"],  # from the process start
        "first_prediction_nauc": curve[0][1] if curve else None,  # the quick model's
        "first_network_seconds": curve[1][0] if len(curve) > 1 else None,  # the search's first
        # the process's CPU seconds at those predictions (user + system, all threads): about
        # what they would take on an idle core
        "first_prediction_cpu_seconds": cpu[0] if cpu else None,
        "first_network_cpu_seconds": cpu[1] if len(cpu) > 1 else None,
        "num_predictions": scores["num_predictions"],
        "curve": curve,
        "process_seconds": wall,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cores": cores,
        "threads": log["model"]["threads"],
        "device": log["model"]["device"],
        "domain": log["model"]["domain"],
        "best": log["model"]["best"],
        "proxy": log["model"]["proxy"],
        "first_network": firsts[-1] if firsts else None,  # after revisions
        "first_picks": firsts,
        "challengers": (choices.get("challengers") or {}).get("picked"),
        "brackets": [  # the later brackets' entrants, in order (time left after the first)
            e["picked"] for e in events if str(e.get("choice", "")).startswith("bracket")
        ],
        "scored": sum(e["scored"] for e in scored),
        "scoring_seconds": sum(e["seconds"] for e in scored),
        "networks": sorted({e["candidate"] for e in events if "candidate" in e}),
        "stop": next((e["reason"] for e in events if e["phase"] == "stop"), None),
    }


# ---- the pool check ---------------------------------------------------------------------------
def pool_check(
    dataset_dir: Path, seed: int, members: int, epochs: int, proxies: list[str], device: str
) -> dict:
    """Does the proxy rank the trainer's own pool? The first ``members`` members of the pool
    (``candidate_space`` from ``seed``: on images and tabular data the plain grid and then
    cells; the same members on every dataset of a domain), built, augmented and split as the
    search does (initialised from the seed and the member's pool index; the search seeds by
    its own member index, the baseline first), each trained ``epochs`` epochs twice
    (shuffle/augmentation seeds s and s + 1), no time limit: Kendall tau of each proxy's scores
    against the mean validation NAUC, and between the two trainings (the noise ceiling of any
    ranking)."""
    config = SearchConfig()
    train, _, _ = load_dataset(dataset_dir)
    spec = spec_from_metadata(train.metadata, config.max_size_cpu, config.max_frames)
    data = prepare_training(train, spec, config.val_fraction, seed)
    spec, (train_split, val_split) = data.spec, training_splits(data)
    _, pool = candidate_space(spec, config, np.random.default_rng(seed))
    pool = pool[:members]
    index = {m.name: i for i, m in enumerate(pool)}

    def build(member: object) -> torch.nn.Module:
        return seeded_build(lambda: member.build(spec), seed * 100_003 + index[member.name])

    x, y = proxy_batch(train_split, config.proxy_batch, seed)
    scores = {}
    for proxy in proxies:
        names = proxy_names(proxy)
        rows = []
        for member in pool:
            net, inputs = proxy_view(build(member), x)
            values = score_many(names, net, inputs, y, spec.num_classes, seed)
            rows.append([values[n] for n in names])
        signs = [1.0 if get_proxy(n).higher_is_better else -1.0 for n in names]
        scores[proxy] = aggregate_ranks(np.array(rows) * np.array(signs))
    batch = safe_batch_size(len(train_split[0]), config.batch_size)
    train_config = TrainConfig(epochs=epochs, batch_size=batch, lr=config.lr)
    runs, seconds = [], []
    for member in pool:
        repeats, timed = [], []
        for train_seed in (seed, seed + 1):
            net = build(member)
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
    target = (first + second) / 2
    return {
        "dataset": dataset_dir.name,
        "domain": spec.domain,
        "seed": seed,
        "epochs": epochs,
        "members": len(pool),
        "retrain_kendall_tau": float(kendalltau(first, second)[0]),
        "proxies": {
            proxy: {
                "kendall_tau": float(kendalltau(values, target)[0]),
                "top3_val_nauc": float(target[np.argsort(-values, kind="stable")[:3]].mean()),
            }
            for proxy, values in scores.items()
        },
        "pool_val_nauc": {"mean": float(target.mean()), "max": float(target.max())},
        "results": [
            {
                "member": m.name,
                "val_nauc": [float(a), float(b)],
                "seconds_per_epoch": t,
                "scores": {p: float(v[i]) for p, v in scores.items()},
            }
            for i, (m, (a, b), t) in enumerate(zip(pool, runs, seconds, strict=True))
        ],
    }


BUDGETS_IN_BASELINE_EPOCHS = (8, 32, 128, 512)  # decision check: time for this many epochs


def decisions(check: dict, baseline: str) -> list[dict]:
    """What the first choice would get on one pool check, free of machine load: for budgets
    that allow the baseline network ``BUDGETS_IN_BASELINE_EPOCHS`` epochs (at the check's
    measured seconds per epoch), the trained validation NAUC of the member of best cost-aware
    ``utility`` under each proxy's ranks, the mean over the members a random r could pick (those
    with at least ``min_epochs``), the baseline's, and the best affordable member's; and
    ``<proxy>_slice``: the provisional pick among the first ``first_slice`` members only (what
    trains before the rest of the batch is scored)."""
    config = SearchConfig()
    members = {r["member"]: r for r in check["results"]}
    nauc = {n: float(np.mean(r["val_nauc"])) for n, r in members.items()}
    costs = {n: r["seconds_per_epoch"] for n, r in members.items()}
    rows = []
    for epochs in BUDGETS_IN_BASELINE_EPOCHS:
        share = epochs * costs[baseline]
        affordable = [n for n in members if utility(1.0, costs[n], share, config) is not None]
        row = {
            "baseline_epochs": epochs,
            "baseline": nauc[baseline],
            "random_mean": float(np.mean([nauc[n] for n in affordable])),
            "best": max(nauc[n] for n in affordable),
        }
        for proxy in check["proxies"]:
            ranks = percentiles({n: r["scores"][proxy] for n, r in members.items()})
            picked = choose(ranks, costs, share, 1, replace(config, first_batch=len(members)))
            row[proxy] = nauc[picked[0]]
            row[f"{proxy}_pick"] = picked[0]
            first = list(members)[: config.first_slice]
            ranks = percentiles({n: members[n]["scores"][proxy] for n in first})
            row[f"{proxy}_slice"] = nauc[choose(ranks, costs, share, 1, config)[0]]
        rows.append(row)
    return rows


# ---- summaries ------------------------------------------------------------------------------
SUMMARY_KEYS = (
    "alc",
    "final_nauc",
    "first_prediction_seconds",
    "first_prediction_nauc",
    "first_prediction_cpu_seconds",
    "first_network_seconds",
    "first_network_cpu_seconds",
)


def summarise(runs: list[dict], names: list[str], modes: list[str]) -> list[dict]:
    """Mean and standard deviation over seeds per (dataset, mode) that has runs (of
    ``SUMMARY_KEYS``, the load average before the run and the first prediction's maximum), then
    per mode the mean of the per-dataset means (no deviation)."""
    keys = (*SUMMARY_KEYS, "load")
    runs = [
        {**r, "load": r["load_average_before"][0]} if "load_average_before" in r else r
        for r in runs
    ]
    rows = []
    for name in names:
        for mode in modes:
            picked = [r for r in runs if r["dataset"] == name and r["mode"] == mode]
            if not picked:
                continue
            row = {"dataset": name, "mode": mode, "runs": len(picked)}
            for key in keys:
                values = [r[key] for r in picked if r.get(key) is not None]
                row[key] = statistics.mean(values) if values else None
                row[f"{key}_std"] = statistics.pstdev(values) if values else None
            row["first_prediction_max"] = max(
                (r["first_prediction_seconds"] or 0.0) for r in picked
            )
            rows.append(row)
    for mode in modes:
        per_dataset = [r for r in rows if r["mode"] == mode]
        if per_dataset:
            row = {"dataset": "mean over datasets", "mode": mode}
            row["runs"] = sum(r["runs"] for r in per_dataset)
            for key in keys:
                values = [r[key] for r in per_dataset if r[key] is not None]
                row[key] = statistics.mean(values) if values else None
                row[f"{key}_std"] = None
            row["first_prediction_max"] = max(r["first_prediction_max"] for r in per_dataset)
            rows.append(row)
    return rows


def mean_interval(*samples: np.ndarray) -> tuple[float, float]:
    """Seeded bootstrap 95 % interval (scipy.stats.bootstrap, BCa, 10,000 resamples) of the
    mean over ``samples`` of each sample's mean; the point value twice when none varies. One
    sample: the paired bootstrap of the pairs' mean. One sample per dataset: a stratified paired
    bootstrap (each dataset resampled on its own), so every dataset weighs the same however many
    seeds it ran."""

    def mean_of_means(*values: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean([v.mean(axis=axis) for v in values], axis=0)

    point = float(mean_of_means(*samples))
    if all(np.ptp(v) == 0 for v in samples):
        return point, point
    interval = bootstrap(
        samples,
        mean_of_means,
        confidence_level=0.95,
        n_resamples=10_000,
        method="BCa",
        random_state=np.random.default_rng(BOOTSTRAP_SEED),
    ).confidence_interval
    return float(interval.low), float(interval.high)


def paired(
    runs: list[dict],
    mode: str,
    control: str,
    key: str = "alc",
    datasets: frozenset[str] | None = None,
) -> dict | None:
    """``key`` (ALC or final NAUC) of ``mode`` minus ``control`` per (dataset, seed) both ran on
    the same test split (``run_split``), over ``datasets`` (all by default); mean, seeded
    paired bootstrap 95 % interval (scipy.stats.bootstrap, BCa, 10,000 resamples of the pairs)
    and per-dataset means; and, when every dataset has two pairs or more, the mean over
    datasets (each weighing the same, whatever its number of seeds) with its stratified interval
    (``mean_interval`` of one sample per dataset)."""
    value = {
        (r["dataset"], r["seed"], r["mode"]): r[key]
        for r in runs
        if datasets is None or r["dataset"] in datasets
    }
    split = {(r["dataset"], r["seed"], r["mode"]): run_split(r) for r in runs}
    pairs = sorted(
        (d, s)
        for d, s, m in value
        if m == mode and (d, s, control) in value and split[d, s, m] == split[d, s, control]
    )
    if len(pairs) < 2:
        return None
    diffs = np.array([value[d, s, mode] - value[d, s, control] for d, s in pairs])
    low, high = mean_interval(diffs)
    samples = {
        name: np.array([value[d, s, mode] - value[d, s, control] for d, s in pairs if d == name])
        for name in dict.fromkeys(d for d, _ in pairs)
    }
    by_dataset = {}
    if min(len(v) for v in samples.values()) >= 2:
        low_d, high_d = mean_interval(*samples.values())
        by_dataset = {
            "dataset_mean_difference": float(np.mean([v.mean() for v in samples.values()])),
            "dataset_ci95": [low_d, high_d],
        }
    return {
        "mode": mode,
        "control": control,
        "key": key,
        "datasets": "all" if datasets is None else sorted(datasets),
        "pairs": len(pairs),
        "mean_difference": float(diffs.mean()),
        "ci95": [low, high],
        "wins": int((diffs > 0).sum()),
        "losses": int((diffs < 0).sum()),
        "per_dataset": {name: float(v.mean()) for name, v in samples.items()},
        **by_dataset,
    }


# Where the pool check leaves proxies room to decide anything: two trainings of the pool agree
# (retrain Kendall-Tau >= ROOM_CEILING) and its members differ (best minus mean validation NAUC
# >= ROOM_SPREAD). Elsewhere every member is about as good, or none learns. The rule encodes the
# pool check's own reading (cifar10_1000, ArrowHead, MiniNewsgroups), made before the grids ran.
ROOM_CEILING = 0.5
ROOM_SPREAD = 0.05


def room_datasets(path: Path = POOL_RESULT) -> frozenset[str]:
    """The pool check's datasets (``--pool-check``) where a proxy's choice can matter."""
    if not path.is_file():
        return frozenset()
    return frozenset(
        check["dataset"]
        for check in json.loads(path.read_text())["checks"]
        if check["retrain_kendall_tau"] >= ROOM_CEILING
        and check["pool_val_nauc"]["max"] - check["pool_val_nauc"]["mean"] >= ROOM_SPREAD
    )


def comparisons(runs: list[dict]) -> list[dict]:
    """Every mode against ``random`` and ``baseline``: ALC and final NAUC, over all datasets
    and over those where the pool check leaves room (``room_datasets``)."""
    modes = list(dict.fromkeys(r["mode"] for r in runs))
    room = room_datasets() & {r["dataset"] for r in runs}
    subsets = [None, room] if room else [None]
    return [
        result
        for control in ("random", "baseline")
        if control in modes
        for mode in modes
        if mode != control
        for key in ("alc", "final_nauc")
        for subset in subsets
        if (result := paired(runs, mode, control, key, subset)) is not None
    ]


def table(rows: list[dict]) -> str:
    """Plain text table of the summary rows."""
    lines = [
        f"{'dataset':<20}{'mode':<12}{'ALC':>16}{'final NAUC':>18}{'first (s)':>16}"
        f"{'its NAUC':>10}{'its CPU s':>10}{'network (s)':>12}{'load':>6}"
    ]
    for row in rows:

        def pm(key: str, row: dict = row) -> str:
            if row[key] is None:
                return "-"
            std = row[f"{key}_std"]
            return f"{row[key]:.3f}" + (f" ± {std:.3f}" if std is not None else "        ")

        def number(key: str, digits: int = 2, row: dict = row) -> str:
            return "-" if row.get(key) is None else f"{row[key]:.{digits}f}"

        lines.append(
            f"{row['dataset']:<20}{row['mode']:<12}{pm('alc'):>16}{pm('final_nauc'):>18}"
            f"{number('first_prediction_seconds'):>9} ({row['first_prediction_max']:.2f})"
            f"{number('first_prediction_nauc', 3):>10}{number('first_prediction_cpu_seconds'):>10}"
            f"{number('first_network_seconds'):>12}{number('load', 1):>6}"
        )
    return "\n".join(lines)


def machine() -> dict:
    """Where the numbers were taken."""
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False, cwd=ROOT
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


def core_sets(k: int) -> list[list[int] | None]:
    """``k`` disjoint, near-equal sets of the CPU cores this process may use; with more runs
    than cores, no pinning (None): the scheduler shares all cores among the runs fairly."""
    cores = sorted(os.sched_getaffinity(0))
    if k <= len(cores):
        return [chunk.tolist() for chunk in np.array_split(np.array(cores), k)]
    return [None] * k


def in_parallel(
    jobs: list[Callable[[list[int] | None], dict]], k: int
) -> Iterator[tuple[int, dict]]:
    """``(index, result)`` of each job as it finishes; ``k`` at a time in list order (so the
    modes of one (dataset, seed) run side by side when k is the number of modes, under the same
    load), each given its core set (threads that wait on subprocesses)."""
    free: queue.Queue[list[int] | None] = queue.Queue()
    for chosen in core_sets(k):
        free.put(chosen)
    results: queue.Queue[tuple[int, dict | BaseException]] = queue.Queue()
    pending = list(enumerate(jobs))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                index, job = pending.pop(0)
            cores = free.get()
            try:
                results.put((index, job(cores)))
            except BaseException as exc:  # reported by the caller
                results.put((index, exc))
            finally:
                free.put(cores)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(k)]
    for thread in threads:
        thread.start()
    for _ in jobs:
        index, result = results.get()
        if isinstance(result, BaseException):
            raise result
        yield index, result


# ---- main -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per run")
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="default 0 1 2; with --combine: only these seeds"
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=DATASETS,
        help=f"default {' '.join(DEFAULT_DATASETS)}; with --combine: only these datasets",
    )
    parser.add_argument("--modes", nargs="+", default=list(PRUNING_MODES), choices=MODES)
    parser.add_argument(
        "--extra-proxies", nargs="*", default=[], help="also proxy pruning with these proxies"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="SearchConfig changes for every run (zcp autodl run --set)",
    )
    parser.add_argument("--device", default="cpu", help="training device: cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument(
        "--parallel", type=int, default=1, metavar="K", help="K runs at once on disjoint cores"
    )
    parser.add_argument("--out", type=Path, default=None, help="result JSON")
    parser.add_argument("--fresh", action="store_true", help="ignore the runs already in --out")
    parser.add_argument(
        "--resplit",
        action="store_true",
        help="draw each run's test split with its seed (datasets without a split of their own; "
        "seed 0's is the default split), so that seeds resample the test examples too",
    )
    parser.add_argument(
        "--pool-check",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="instead: train the first --members pool members EPOCHS epochs, twice, against "
        "the default and extra proxies",
    )
    parser.add_argument("--members", type=int, default=16, help="members of the pool check")
    parser.add_argument(
        "--pool-report",
        action="store_true",
        help="instead: add the decision check to the pool check JSON (--out) and print it",
    )
    parser.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="instead: summary and paired comparisons over the runs of these grid files "
        "together (same budget and settings), written to --out when given",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="with --combine: a later file's run replaces the same (dataset, mode, seed) run "
        "of an earlier file (a dataset rerun after a change that affects it alone)",
    )
    args = parser.parse_args()
    SearchConfig().with_overrides(dict(p.partition("=")[::2] for p in args.overrides))
    if args.combine:
        try:
            print_results(combine(args.combine, args.out, args.replace, args.datasets, args.seeds))
        except (OSError, ValueError, KeyError) as exc:
            parser.error(f"--combine: {exc}")
        return
    args.seeds = args.seeds or [0, 1, 2]
    args.datasets = args.datasets or list(DEFAULT_DATASETS)
    if args.pool_check:
        run_pool_check(args)
        return
    if args.pool_report:
        path = args.out or POOL_RESULT
        payload = json.loads(path.read_text())
        for check in payload["checks"]:
            check["decisions"] = decisions(check, baseline_name(check["domain"]))
        payload["decision_summary"] = decision_summary(payload["checks"], default_proxy())
        write_json(path, payload)
        print_decisions(payload["checks"])
        for row in payload["decision_summary"]:
            print(
                f"{row['baseline_epochs']} baseline epochs, {row['datasets']} datasets: "
                + "; ".join(
                    f"{row['proxy']} {SUMMARY_LABELS.get(c, '- ' + c)} {v['mean']:+.3f} "
                    f"[{v['ci95'][0]:+.3f}, "
                    f"{v['ci95'][1]:+.3f}] ({v['ahead']} ahead, {v['behind']} behind)"
                    for c, v in row["versus"].items()
                )
            )
        return
    modes = args.modes + [f"proxy:{name}" for name in args.extra_proxies]
    out = args.out or RESULT
    runs: list[dict] = []
    previous: dict = {}
    if out.is_file() and not args.fresh:
        previous = json.loads(out.read_text())
        if (previous["budget_seconds"], previous["overrides"], previous.get("resplit", False)) != (
            args.budget,
            args.overrides,
            args.resplit,
        ):
            parser.error(
                f"{out} holds another budget, settings or --resplit: use --fresh or another --out"
            )
        runs = previous["runs"]
    done = {(r["dataset"], r["mode"], r["seed"]) for r in runs}
    todo = [
        (name, mode, seed)
        for name in args.datasets
        for seed in args.seeds
        for mode in modes
        if (name, mode, seed) not in done
    ]
    start = time.perf_counter()
    print(f"{len(done)} runs already in {out}; {len(todo)} to go", flush=True)
    with tempfile.TemporaryDirectory(prefix="autodl_compare_") as tmp:
        work = Path(tmp)
        splits = [split_seed(name, seed, args.resplit) for name, _, seed in todo]
        needed = {(name, k) for (name, _, _), k in zip(todo, splits, strict=True)}
        dirs = {(name, k): prepare_dataset(name, work / f"data-split{k}", k) for name, k in needed}
        jobs = [
            (
                lambda cores, name=name, mode=mode, seed=seed, split=split: one_run(
                    run_command(
                        dirs[name, split],
                        work / f"{name}-{mode}-{seed}",
                        args.budget,
                        mode,
                        seed,
                        args.device,
                        args.threads,
                        args.overrides,
                    ),
                    work / f"{name}-{mode}-{seed}",
                    cores,
                )
            )
            for (name, mode, seed), split in zip(todo, splits, strict=True)
        ]
        for index, record in in_parallel(jobs, args.parallel):
            name, mode, seed = todo[index]
            runs.append(
                {"dataset": name, "mode": mode, "seed": seed, "split_seed": splits[index], **record}
            )
            print(
                f"{name:<16}{mode:<11}seed {seed}: ALC {record['alc']:.3f}, final NAUC "
                f"{record['final_nauc']:.3f}, first {record['first_prediction_seconds']:.2f} s, "
                f"load {record['load_average_before'][0]:.1f}, first network "
                f"{record['first_network']}, best {(record['best'] or {}).get('name')}",
                flush=True,
            )
            write_results(out, args, runs, todo, start)
    # with nothing left to run, only the summary is refreshed: the runs' machine is kept
    payload = write_results(out, args, runs, todo, start, None if todo else previous)
    print_results(payload)
    print(f"total {time.perf_counter() - start:.0f} s; wrote {out}")


def print_results(payload: dict) -> None:
    """The summary table and the proxy's paired comparisons of a grid payload."""
    print(table(payload["summary"]))
    for result in payload["paired"]:
        if result["mode"] == "proxy":
            subset = result["datasets"]
            where = "all datasets" if subset == "all" else "room: " + ", ".join(subset)
            print(
                f"proxy - {result['control']}: mean {result['key']} difference "
                f"{result['mean_difference']:+.4f}, 95 % CI [{result['ci95'][0]:+.4f}, "
                f"{result['ci95'][1]:+.4f}] over {result['pairs']} pairs ({result['wins']} wins, "
                f"{result['losses']} losses; {where})"
            )
            if "dataset_ci95" in result:
                low, high = result["dataset_ci95"]
                print(
                    f"  each dataset weighing the same: {result['dataset_mean_difference']:+.4f}, "
                    f"95 % CI [{low:+.4f}, {high:+.4f}] (stratified by dataset)"
                )


def analysis(runs: list[dict]) -> dict:
    """What a grid's runs say: per (dataset, mode) summary, room datasets, paired comparisons."""
    return {
        "summary": summarise(
            runs,
            list(dict.fromkeys(r["dataset"] for r in runs)),
            list(dict.fromkeys(r["mode"] for r in runs)),
        ),
        "room_datasets": sorted(room_datasets()),
        "paired": comparisons(runs),
    }


def read_grid(path: Path) -> dict:
    """A grid file's payload; ValueError naming ``path`` when it is not JSON or holds no runs."""
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc})") from None
    if not isinstance(payload, dict) or "runs" not in payload:
        what = "a combined result" if "combined_from" in payload else "not a grid file"
        raise ValueError(f"{path} holds no runs ({what}): combine the grid files it names")
    return payload


SETTINGS = ("budget_seconds", "device", "threads", "overrides")  # what runs must share to combine


def combine(
    paths: list[Path],
    out: Path | None,
    replacing: bool = False,
    datasets: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> dict:
    """The summary and paired comparisons over the runs of several grid JSONs together (e.g.
    more seeds run later into another file); they must share ``SETTINGS`` (not ``--resplit``:
    every run records its split, and ``paired`` pairs runs on the same split) and no run may
    appear twice, unless ``replacing``: then a later file's run replaces the same (dataset, mode,
    seed) run of an earlier one (a dataset rerun after a change that affects it alone), listed
    in ``replaced``. ``datasets``, ``seeds``: only these runs (None: all). Written to ``out``
    when given."""
    payloads = [read_grid(path) for path in paths]
    for path, payload in zip(paths, payloads, strict=True):
        if any(payload[k] != payloads[0][k] for k in SETTINGS):
            raise ValueError(f"{path} holds other settings than {paths[0]} ({', '.join(SETTINGS)})")
    runs: dict[tuple, dict] = {}
    replaced = []
    for path, payload in zip(paths, payloads, strict=True):
        for run in payload["runs"]:
            key = (run["dataset"], run["mode"], run["seed"])
            if key in runs:
                if not replacing:
                    raise ValueError(f"the run {key} appears in more than one file")
                replaced.append({"run": list(key), "by": str(path)})
            runs[key] = run
    kept = [
        run
        for run in runs.values()
        if (datasets is None or run["dataset"] in datasets)
        and (seeds is None or run["seed"] in seeds)
    ]
    combined = {
        "combined_from": [
            {"file": str(path), "git_commit": payload.get("machine", {}).get("git_commit")}
            for path, payload in zip(paths, payloads, strict=True)
        ],
        "replaced": replaced,
        "only": {"datasets": datasets, "seeds": seeds},
        **{k: payloads[0][k] for k in SETTINGS},
        **analysis(kept),
    }
    if out is not None:
        write_json(out, combined)
    return combined


def write_results(
    out: Path,
    args: argparse.Namespace,
    runs: list[dict],
    todo: list[tuple],
    start: float,
    kept: dict | None = None,
) -> dict:
    """Write the comparison JSON (atomically: a killed run resumes from it) and return it;
    ``kept``: an earlier payload whose machine and seconds describe the runs (a re-summary)."""
    payload = {
        "budget_seconds": args.budget,
        "seeds": args.seeds,
        "device": args.device,
        "parallel": args.parallel,
        "threads": args.threads,
        "overrides": args.overrides,
        "resplit": args.resplit,
        "default_proxy": default_proxy(),
        "complete": not (set(todo) - {(r["dataset"], r["mode"], r["seed"]) for r in runs}),
        "seconds_this_session": (kept or {}).get(
            "seconds_this_session", time.perf_counter() - start
        ),
        "machine": (kept or {}).get("machine") or machine(),
        **analysis(runs),
        "runs": runs,
    }
    write_json(out, payload)
    return payload


def run_pool_check(args: argparse.Namespace) -> None:
    """``--pool-check`` per dataset and seed (``--parallel`` processes); resumable like the
    comparison (checks already in the JSON are skipped)."""
    out = args.out or POOL_RESULT
    proxies = [default_proxy(), *args.extra_proxies]
    checks = [] if args.fresh or not out.is_file() else json.loads(out.read_text())["checks"]
    done = {(c["dataset"], c["seed"]) for c in checks}
    todo = [(n, s) for n in args.datasets for s in args.seeds if (n, s) not in done]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autodl_check_") as tmp:
        dirs = {name: prepare_dataset(name, Path(tmp)) for name in {n for n, _ in todo}}
        with ProcessPoolExecutor(
            max(1, args.parallel),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=torch.set_num_threads,
            initargs=(args.threads,),
        ) as pool:
            futures = [
                pool.submit(
                    pool_check, dirs[n], s, args.members, args.pool_check, proxies, args.device
                )
                for n, s in todo
            ]
            for future in as_completed(futures):
                check = future.result()
                checks.append(check)
                taus = ", ".join(
                    f"{p} tau {r['kendall_tau']:.3f}" for p, r in check["proxies"].items()
                )
                print(
                    f"{check['dataset']} seed {check['seed']}: retrain tau "
                    f"{check['retrain_kendall_tau']:.3f}; {taus}; pool NAUC mean "
                    f"{check['pool_val_nauc']['mean']:.3f} max {check['pool_val_nauc']['max']:.3f}",
                    flush=True,
                )
                write_json(
                    out,
                    {
                        "epochs": args.pool_check,
                        "members": args.members,
                        "threads": args.threads,
                        "machine": machine(),
                        "seconds_this_session": time.perf_counter() - start,
                        "checks": checks,
                    },
                )
    print_decisions(checks)
    print(f"wrote {out}")


SUMMARY_LABELS = {"slice": "first slice - whole batch"}  # the decision summary's one odd row


def decision_summary(checks: list[dict], proxy: str) -> list[dict]:
    """Per budget of the decision check: ``proxy``'s pick minus the random mean and minus the
    baseline, and its provisional pick from the first slice minus its pick from the whole batch,
    averaged over the checks, with a seeded bootstrap 95 % interval (BCa)."""
    rows = []
    for epochs in BUDGETS_IN_BASELINE_EPOCHS:
        picked = [r for c in checks for r in c["decisions"] if r["baseline_epochs"] == epochs]
        versus = {}
        for control in ("random_mean", "baseline", "slice"):
            if control == "slice":
                diffs = np.array([r[f"{proxy}_slice"] - r[proxy] for r in picked])
            else:
                diffs = np.array([r[proxy] - r[control] for r in picked])
            versus[control] = {
                "mean": float(diffs.mean()),
                "ci95": list(mean_interval(diffs)),
                "ahead": int((diffs > 1e-9).sum()),
                "behind": int((diffs < -1e-9).sum()),
            }
        rows.append(
            {"baseline_epochs": epochs, "datasets": len(picked), "proxy": proxy, "versus": versus}
        )
    return rows


def baseline_name(domain: str) -> str:
    """The name of ``domain``'s fixed baseline member."""
    if domain in FAMILY_DOMAINS:
        return family_baseline(domain).name
    return plain_member(SearchConfig().baseline_width).name


def print_decisions(checks: list[dict]) -> None:
    """The decision check of every pool check (``decisions``), one line per budget."""
    for check in checks:
        for row in decisions(check, baseline_name(check["domain"])):
            proxies = ", ".join(f"{p} {row[p]:.3f}" for p in check["proxies"])
            print(
                f"{check['dataset']} seed {check['seed']}, {row['baseline_epochs']} baseline "
                f"epochs: baseline {row['baseline']:.3f}, random {row['random_mean']:.3f}, best "
                f"{row['best']:.3f}; {proxies}"
            )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the finished runs are already in --out (written after each)
        print("interrupted: finished runs are kept in --out; run again to resume", file=sys.stderr)
        sys.exit(130)
