"""The embedded default benchmark: ``nasbench201_mini`` on scikit-learn's digits, trained by zcp.

Protocol (built by ``benchmarks/build_embedded_benchmark.py``, documented in
``benchmark_data/README.md``): the digits train split (1,442) drawn in full with seed
``SPLIT_SEED`` (a fixed permutation): its first ``len - VAL_SIZE`` examples train, the last
``VAL_SIZE`` give ``val_accuracy``; the test split (355) gives ``test_accuracy``. Each sampled
isomorphism class is trained once per seed in ``SEEDS`` (same seed for init and shuffling) with
``TRAIN_CONFIG`` on one CPU thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zcproxies.benchdata.format import Benchmark, BenchmarkTask, load_benchmark
from zcproxies.data import data_root, get_batch, get_provider
from zcproxies.data.providers import ImageProvider
from zcproxies.measure import count_flops, count_params
from zcproxies.spaces import Arch, get_space
from zcproxies.train import TrainConfig, accuracy, train_model

SPACE = "nasbench201_mini"
TASK = "digits"
FILE_NAME = "nb201mini_digits.h5"
SPLIT_SEED = 0
VAL_SIZE = 360  # held out of the 1,442 training digits (25 %)
SEEDS = (0, 1)
SAMPLE_SEED = 2024
NUM_ARCHS = 500
# Chosen by the pilot (benchmark_data/README.md): 36 SGD steps spread the accuracies over the
# space (longer training saturates near 97 % and lowers the seed-to-seed Kendall-Tau). At this
# budget accuracy reflects how fast a cell learns: it falls with the number of convolutions.
TRAIN_CONFIG = TrainConfig(epochs=3, batch_size=128, lr=0.03)
# ``benchmark_data/`` next to the ``zcproxies`` package: the project root in a checkout or an
# editable install, site-packages in a wheel install (pyproject.toml installs it there).
DATA_DIR = Path(__file__).resolve().parents[2] / "benchmark_data"


def embedded_path() -> Path:
    """The embedded benchmark file: ``benchmark_data/`` of the project, or of site-packages
    when zcp is installed from a wheel (same relative place, see ``DATA_DIR``)."""
    return DATA_DIR / FILE_NAME


def load_embedded() -> Benchmark:
    """The embedded default benchmark, loaded and validated."""
    return load_benchmark(embedded_path())


def embedded_task() -> BenchmarkTask:
    """The single table of the embedded benchmark (``nasbench201_mini`` / ``digits``)."""
    return load_embedded().task(SPACE, TASK)


@dataclass(frozen=True)
class Splits:
    """Normalised digits tensors of the protocol: fit, validation and test."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def digits_splits() -> Splits:
    """The protocol's three splits (see the module docstring), read through ``zcproxies.data``."""
    provider = get_provider("digits")
    if not isinstance(provider, ImageProvider):  # the digits provider always is one
        raise TypeError(f"digits provider {provider!r} cannot list its examples")
    sizes = {
        split: len(provider.examples(data_root(), split).labels) for split in ("train", "test")
    }
    train = get_batch("digits", sizes["train"], seed=SPLIT_SEED, split="train")
    test = get_batch("digits", sizes["test"], seed=SPLIT_SEED, split="test")
    fit = sizes["train"] - VAL_SIZE
    return Splits((train.x[:fit], train.y[:fit]), (train.x[fit:], train.y[fit:]), (test.x, test.y))


def sample_archs(num: int = NUM_ARCHS, seed: int = SAMPLE_SEED) -> list[Arch]:
    """``num`` archs of distinct isomorphism classes: the space's encodings in a seeded random
    order, keeping each arch whose ``canonical_key`` was not seen before (so a class is drawn
    with probability proportional to its size, as uniform sampling of encodings would)."""
    space = get_space(SPACE)
    archs = list(space.enumerate())
    seen: set[str] = set()
    chosen = []
    for index in np.random.default_rng(seed).permutation(len(archs)):
        key = space.canonical_key(archs[index])
        if key not in seen:
            seen.add(key)
            chosen.append(archs[index])
            if len(chosen) == num:
                return chosen
    raise ValueError(f"{SPACE} has only {len(seen)} isomorphism classes, {num} asked")


@dataclass(frozen=True)
class RunResult:
    """One training run of the protocol."""

    val_accuracy: float
    test_accuracy: float
    seconds: float


def train_arch(
    arch: Arch, seed: int, splits: Splits, config: TrainConfig = TRAIN_CONFIG
) -> RunResult:
    """Train ``arch`` with ``seed`` (init and shuffling) on the protocol's splits."""
    model = get_space(SPACE).build(arch, TASK, seed=seed)
    result = train_model(model, splits.train, splits.val, config, seed=seed)
    test = accuracy(model, *splits.test, batch_size=config.eval_batch_size)
    return RunResult(float(result.final_val_accuracy), test, result.seconds)


def arch_size(arch: Arch) -> tuple[float, float]:
    """(params in millions, MFLOPs at batch size 1, NASLib convention) of ``arch`` on digits."""
    space = get_space(SPACE)
    model = space.build(arch, TASK)
    return count_params(model) / 1e6, count_flops(model, space.task(TASK).input_shape) / 1e6


def protocol() -> dict:
    """The training protocol as stored in the benchmark's ``protocol`` attribute."""
    return {
        "space": SPACE,
        "task": TASK,
        "data": "sklearn.datasets.load_digits via zcproxies.data",
        "split": {
            "seed": SPLIT_SEED,
            "train": "first len(train split) - val of the seeded permutation of the train split",
            "val": VAL_SIZE,
            "test": "the test split",
        },
        "seeds": list(SEEDS),
        "sample_seed": SAMPLE_SEED,
        "num_archs": NUM_ARCHS,
        "train_config": TRAIN_CONFIG.to_dict(),
        "device": "cpu",
        "torch_threads": 1,
        "torch_version": torch.__version__,
        "val_accuracy": "mean over seeds of the final-epoch accuracy on the held-out val part",
    }
