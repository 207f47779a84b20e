"""The embedded default benchmark: ``nasbench201_mini`` on generated shapes, trained by zcp.

A ``Protocol`` fixes everything that determines one training run: the data (the ``shapes``
generator of ``zcproxies.data.synthetic`` and its style, or scikit-learn's digits for the old
default), the skeleton (channels C, cells per stage N), the split sizes and the ``TrainConfig``.
``PROTOCOL`` is the one the embedded benchmark was built with (chosen by the pilot in
``benchmark_data/README.md``); ``benchmarks/build_embedded_benchmark.py`` trains every sampled
isomorphism class once per seed in ``SEEDS`` (same seed for init and shuffling) on one CPU
thread.

Shapes splits: the network is fitted on images ``0 .. train_size-1`` of the generator's train
seed, ``val_accuracy`` is measured on the last ``val_size`` of the provider's 50,000 train
images (never fitted) and ``test_accuracy`` on the first ``test_size`` test images.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zcproxies.benchdata.format import Benchmark, BenchmarkTask, load_benchmark
from zcproxies.data import data_root, get_batch, get_provider, synthetic
from zcproxies.data.batch import to_network_input
from zcproxies.data.providers import ImageProvider, ShapesProvider
from zcproxies.measure import count_flops, count_params
from zcproxies.spaces import Arch, get_space
from zcproxies.spaces.base import Task
from zcproxies.spaces.nb201 import NasBench201Mini
from zcproxies.train import TrainConfig, accuracy, train_model

SPACE = "nasbench201_mini"
TASK = "shapes"
FILE_NAME = "nb201mini_shapes.h5"
SEEDS = (0, 1)
SAMPLE_SEED = 2024
NUM_ARCHS = 1000
# The measured figures stored in the benchmark's attributes as ``agreement_<key>`` (the build
# script measures them; the evaluator's summary reads them from the file).
AGREEMENT_KEYS = ("nb201_kendall_tau", "seed_kendall_tau", "proxy_ranking_spearman", "proxies")
DESCRIPTION = (
    "zcp's embedded default benchmark: NAS-Bench-201 cells on a reduced skeleton, trained by "
    "the project on generated 12x12 shapes (zcproxies.data.synthetic)"
)
DIGITS_VAL_SIZE = 360  # the old digits protocol: held out of the 1,442 training digits


@dataclass(frozen=True)
class Protocol:
    """What determines one run's accuracy (stored, as ``to_dict``, with every result)."""

    dataset: str = "shapes"  # "shapes" (generated) or "digits" (the old default, 1x8x8)
    style: synthetic.ShapesStyle = field(default_factory=synthetic.ShapesStyle)
    channels: int = 8  # skeleton: stem channels C (stages C, 2C, 4C)
    cells: int = 1  # skeleton: cells per stage N
    train_size: int = 4000  # shapes: images fitted
    val_size: int = 2000  # shapes: held-out images of val_accuracy
    test_size: int = 1000  # shapes: test images of test_accuracy
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=4, batch_size=64, lr=0.05, channels_last=True)
    )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON/HDF5 metadata."""
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> Protocol:
        """A copy with top-level fields, ``train`` or ``style`` fields (by name) replaced."""
        train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
        style_fields = {f.name for f in dataclasses.fields(synthetic.ShapesStyle)}
        train = {k: v for k, v in overrides.items() if k in train_fields}
        style = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in overrides.items()
            if k in style_fields
        }
        top = {k: v for k, v in overrides.items() if k not in train_fields | style_fields}
        return dataclasses.replace(
            self,
            **top,
            train=dataclasses.replace(self.train, **train),
            style=dataclasses.replace(self.style, **style),
        )

    @property
    def task(self) -> Task:
        """The network's task: the registered one of the protocol's data and input size."""
        registered = get_space(SPACE).task(self.dataset)
        if self.dataset == "digits" or registered.input_shape[1] == self.style.size:
            return registered
        size = self.style.size  # a pilot's other resolution
        return dataclasses.replace(registered, input_shape=(3, size, size))


PROTOCOL = Protocol()


def embedded_path() -> Path:
    """The embedded benchmark file: ``benchmark_data/`` of the project, or of site-packages
    when zcp is installed from a wheel (same relative place, see ``DATA_DIR``)."""
    return DATA_DIR / FILE_NAME


# ``benchmark_data/`` next to the ``zcproxies`` package: the project root in a checkout or an
# editable install, site-packages in a wheel install (pyproject.toml installs it there).
DATA_DIR = Path(__file__).resolve().parents[2] / "benchmark_data"


def load_embedded() -> Benchmark:
    """The embedded default benchmark, loaded and validated."""
    return load_benchmark(embedded_path())


def embedded_task() -> BenchmarkTask:
    """The single table of the embedded benchmark (``nasbench201_mini`` / ``shapes``)."""
    return load_embedded().task(SPACE, TASK)


@dataclass(frozen=True)
class Splits:
    """Normalised tensors of a protocol: fit, validation and test."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def make_splits(protocol: Protocol = PROTOCOL) -> Splits:
    """The protocol's three splits (module docstring), generated or read via ``zcproxies.data``."""
    if protocol.dataset == "digits":
        return _digits_splits()
    provider = ShapesProvider
    total = provider.SIZES["train"]
    if protocol.train_size + protocol.val_size > total:
        raise ValueError(f"train_size + val_size must be <= {total}")

    def part(split: str, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        images = synthetic.render(provider.SEEDS[split], indices, protocol.style)
        x = to_network_input(list(images), 255.0, provider.mean, provider.std, None)
        return x, torch.from_numpy(synthetic.labels(indices))

    return Splits(
        part("train", np.arange(protocol.train_size)),
        part("train", np.arange(total - protocol.val_size, total)),
        part("test", np.arange(protocol.test_size)),
    )


def _digits_splits() -> Splits:
    """The old default's splits: the digits train split in a seed-0 permutation, its last
    ``DIGITS_VAL_SIZE`` held out; the whole digits test split."""
    provider = get_provider("digits")
    if not isinstance(provider, ImageProvider):  # the digits provider always is one
        raise TypeError(f"digits provider {provider!r} cannot list its examples")
    sizes = {
        split: len(provider.examples(data_root(), split).labels) for split in ("train", "test")
    }
    train = get_batch("digits", sizes["train"], seed=0, split="train")
    test = get_batch("digits", sizes["test"], seed=0, split="test")
    fit = sizes["train"] - DIGITS_VAL_SIZE
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


def skeleton(protocol: Protocol = PROTOCOL) -> NasBench201Mini:
    """``nasbench201_mini`` with the protocol's skeleton (C, N) (the registered one for
    ``PROTOCOL``)."""
    space = get_space(SPACE)
    if not isinstance(space, NasBench201Mini):
        raise TypeError(f"{SPACE} is not the NB201 mini space")
    if space.macro == (protocol.channels, protocol.cells):
        return space
    other = copy.copy(space)
    other.macro = (protocol.channels, protocol.cells)
    return other


def build_network(arch: Arch, seed: int, protocol: Protocol = PROTOCOL) -> torch.nn.Module:
    """The protocol's network for ``arch``, initialised from ``seed``."""
    return skeleton(protocol).build(arch, protocol.task, seed=seed)


@dataclass(frozen=True)
class RunResult:
    """One training run of the protocol."""

    val_accuracy: float
    test_accuracy: float
    seconds: float  # wall time of the training
    cpu_seconds: float  # CPU time of this process for training and evaluation


def train_arch(arch: Arch, seed: int, splits: Splits, protocol: Protocol = PROTOCOL) -> RunResult:
    """Train ``arch`` with ``seed`` (init and shuffling) on the protocol's splits."""
    start = time.process_time()
    model = build_network(arch, seed, protocol)
    result = train_model(model, splits.train, splits.val, protocol.train, seed=seed)
    test = accuracy(model, *splits.test, batch_size=protocol.train.eval_batch_size)
    return RunResult(
        float(result.final_val_accuracy), test, result.seconds, time.process_time() - start
    )


def arch_size(arch: Arch, protocol: Protocol = PROTOCOL) -> tuple[float, float]:
    """(params in millions, MFLOPs at batch size 1, NASLib convention) of ``arch``."""
    model = build_network(arch, 0, protocol)
    return count_params(model) / 1e6, count_flops(model, protocol.task.input_shape) / 1e6


def protocol_record(protocol: Protocol = PROTOCOL) -> dict[str, Any]:
    """The training protocol as stored in the benchmark's ``protocol`` attribute."""
    return {
        "space": SPACE,
        "task": TASK,
        **protocol.to_dict(),
        "data": "zcproxies.data.synthetic shapes (provider 'shapes'): fit on train images "
        "0..train_size-1, val_accuracy on the last val_size of the 50,000 train images, "
        "test_accuracy on test images 0..test_size-1",
        "seeds": list(SEEDS),
        "sample_seed": SAMPLE_SEED,
        "device": "cpu",
        "torch_threads": 1,
        "torch_version": torch.__version__,
        "val_accuracy": "mean over seeds of the final-epoch accuracy on the held-out val images",
    }
