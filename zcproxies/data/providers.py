"""Dataset providers, their registry ``DATASETS`` and ``get_batch``.

Data root: the ``root`` argument, else ``$ZCP_DATA_ROOT``, else ``paths.shared_data_dir()``.
A provider with a sub-directory (``download.SOURCES``) looks in ``root/<subdir>`` and then in
``root`` itself. Selection: ``numpy.random.default_rng(seed).choice(n, size, replace=False)``
over the split's examples in file order, kept in draw order. The draw is uniform, not
class-balanced: that is how a shuffled loader's first batch (NASLib's practice) is drawn, and a
balanced draw is impossible when ``size`` is below the number of classes (CIFAR-100, IN16-120).
"""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from zcproxies.data import synthetic
from zcproxies.data.batch import Batch, to_network_input
from zcproxies.data.download import SOURCES
from zcproxies.data.readers import (
    DataNotFound,
    channel_stats,
    list_image_folder,
    read_cifar_batch,
    read_image,
    read_imagenet16_batch,
    read_npz,
    read_svhn_mat,
)
from zcproxies.errors import DataError, UnknownName
from zcproxies.paths import shared_data_dir

ROOT_ENV = "ZCP_DATA_ROOT"
SPLITS = ("train", "test")


class FallbackWarning(UserWarning):
    """A split was read from a fallback source (e.g. the shared CIFAR-10 npz), not the originals."""


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root``, else ``$ZCP_DATA_ROOT``, else the shared data directory."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ROOT_ENV)
    return Path(env).expanduser() if env else shared_data_dir()


@dataclass(frozen=True)
class Examples:
    """All examples of one split: labels up front, CHW pixels read on demand by ``take``."""

    labels: np.ndarray  # int64 (N,)
    take: Callable[[np.ndarray], list[np.ndarray]]  # indices -> CHW images
    source: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pixel_max: float = 255.0
    note: str = ""
    missing: str = ""  # set when these are a fallback: why the primary files were not used


@dataclass(frozen=True)
class Request:
    """What ``get_batch`` asks a provider for (validated there)."""

    size: int
    seed: int
    split: str
    root: Path
    input_size: tuple[int, int] | None  # (H, W); None: the images' own size
    num_classes: int | None  # None: the dataset's
    channels: int | None  # None: the dataset's; a 1-channel dataset is replicated to more


def in_memory(images: np.ndarray, labels: np.ndarray, **fields: object) -> Examples:
    """``Examples`` over an in-memory NCHW array."""
    return Examples(labels, lambda idx: list(images[idx]), **fields)


def find_folder(root: Path, subdir: str, files: tuple[str, ...], what: str) -> Path:
    """The first of ``root/subdir``, ``root`` holding all ``files``.

    A folder holding only some of them is an incomplete install (``DataError``); none anywhere
    is ``DataNotFound``.
    """
    candidates = [root / subdir, root]
    for folder in candidates:
        present = [f for f in files if (folder / f).is_file()]
        if len(present) == len(files):
            return folder
        if present:
            absent = [f for f in files if f not in present]
            raise DataError(f"{what}: incomplete data in {folder}: missing {', '.join(absent)}")
    raise DataNotFound(
        f"{what}: files {', '.join(files)} not found in " + " or ".join(str(c) for c in candidates)
    )


def _files_source(folder: Path, files: tuple[str, ...]) -> str:
    return str(folder / files[0]) if len(files) == 1 else f"{folder}/{{{','.join(files)}}}"


class Provider(ABC):
    """A named dataset: native shape, classes, normalisation and where its files live."""

    name: str = ""
    shape: tuple[int, int, int] | None = None  # native (C, H, W); None: set by the files
    num_classes: int | None = None  # None: set by the files
    mean: tuple[float, ...] | None = None  # per channel on the [0, 1] scale; None: see layout
    std: tuple[float, ...] | None = None
    splits: tuple[str, ...] = SPLITS
    layout: str = ""  # where the files are looked for and what they hold, in words

    @abstractmethod
    def make_batch(self, request: Request) -> Batch:
        """The batch ``request`` asks for."""

    def can_give(self, channels: int | None) -> bool:
        """Whether this dataset can feed ``channels`` input channels (unknown shapes: maybe)."""
        return channels is None or self.shape is None or self.shape[0] in (1, channels)


class ImageProvider(Provider):
    """A provider of stored images: seeded draw, the pixel pipeline, optional label folding."""

    @abstractmethod
    def examples(self, root: Path, split: str) -> Examples:
        """All examples of ``split`` under ``root``."""

    def make_batch(self, request: Request) -> Batch:
        ex = self.examples(request.root, request.split)
        n, size = len(ex.labels), request.size
        if size > n:
            short = (
                f"{ex.source}: {self.name}/{request.split} has {n} examples, fewer than "
                f"{size} asked"
            )
            # A fallback too small for the request counts as missing data (substitutable).
            if ex.missing:
                raise DataNotFound(f"{ex.missing}; fallback {short}")
            raise DataError(short)
        idx = np.random.default_rng(request.seed).choice(n, size=size, replace=False)
        x = to_network_input(ex.take(idx), ex.pixel_max, ex.mean, ex.std, request.input_size)
        notes = [ex.note] if ex.note else []
        if request.channels not in (None, x.shape[1]):
            if x.shape[1] != 1:
                raise DataError(
                    f"{self.name} has {x.shape[1]} channels; cannot make "
                    f"{request.channels} of them (only 1 channel is replicated)"
                )
            x = x.expand(-1, request.channels, -1, -1).contiguous()
            notes.append(f"1 channel replicated to {request.channels}")
        y, classes = ex.labels[idx], ex.num_classes
        if request.num_classes is not None:
            if request.num_classes < classes:
                y = y % request.num_classes
                notes.append(f"labels folded y -> y mod {request.num_classes} ({classes} classes)")
            classes = request.num_classes
        return Batch(
            x,
            torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)),
            self.name,
            request.split,
            request.seed,
            ex.source,
            classes,
            note="; ".join(notes),
        )

    def read_files(
        self,
        root: Path,
        split: str,
        files: tuple[str, ...],
        read: Callable[[Path], tuple[np.ndarray, np.ndarray]],
    ) -> Examples:
        """``Examples`` of ``files`` (found by ``find_folder``) read and concatenated in order."""
        folder = find_folder(root, SOURCES[self.name].subdir, files, f"{self.name}/{split}")
        parts = [read(folder / file) for file in files]
        return in_memory(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            source=_files_source(folder, files),
            num_classes=self.num_classes,
            mean=self.mean,
            std=self.std,
        )


class CifarProvider(ImageProvider):
    """CIFAR-10/100 official python batches; the test split falls back to a shared npz."""

    shape = (3, 32, 32)

    def __init__(
        self,
        name: str,
        num_classes: int,
        label_key: str,
        files: dict[str, tuple[str, ...]],
        mean255: tuple[float, ...],
        std255: tuple[float, ...],
        fallback_npz: str,
    ) -> None:
        self.name, self.num_classes, self.label_key = name, num_classes, label_key
        self.files = files
        # NAS-Bench-201 writes these constants as x / 255 of 0..255-scale values.
        self.mean = tuple(v / 255 for v in mean255)
        self.std = tuple(v / 255 for v in std255)
        self.fallback_npz = fallback_npz
        subdir = SOURCES[name].subdir
        self.layout = (
            f"root/{subdir}/ (or root/): {', '.join(files['train'])} (train), "
            f"{', '.join(files['test'])} (test); pickles of 'data' (N, 3072) uint8 and "
            f"'{label_key}'. Test fallback: images/{fallback_npz} under the root, "
            "then under the shared data directory"
        )

    def examples(self, root: Path, split: str) -> Examples:
        try:
            return self.read_files(
                root,
                split,
                self.files[split],
                partial(read_cifar_batch, label_key=self.label_key, num_classes=self.num_classes),
            )
        except DataNotFound as missing:
            if split != "test":
                raise
            return self._fallback(root, str(missing))

    def _fallback(self, root: Path, missing: str) -> Examples:
        """The shared npz copy of (part of) the test split, with a ``FallbackWarning``."""
        candidates = list(
            dict.fromkeys(
                [
                    root / "images" / self.fallback_npz,
                    shared_data_dir() / "images" / self.fallback_npz,
                ]
            )
        )
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise DataNotFound(
                f"{missing}; nor the fallback " + " or ".join(str(c) for c in candidates)
            )
        arrays = read_npz(path, self.num_classes)
        if arrays["x"].shape[1:] != self.shape:
            raise DataError(
                f"{path}: expected {self.name} images {self.shape}, got {arrays['x'].shape[1:]}"
            )
        warnings.warn(
            f"{self.name}/test: official pickles not found, using {path} "
            f"({len(arrays['y'])} test images)",
            FallbackWarning,
            stacklevel=5,
        )
        return in_memory(
            arrays["x"],
            arrays["y"],
            source=str(path),
            num_classes=self.num_classes,
            mean=self.mean,
            std=self.std,
            missing=missing,
            note=f"test split from fallback {path.name}, not the official pickles",
        )


class ImageNet16Provider(ImageProvider):
    """NAS-Bench-201's ImageNet16-120: the 16x16 downsampled-ImageNet pickles, classes 1..120."""

    name = "ImageNet16-120"
    shape = (3, 16, 16)
    num_classes = 120
    # NAS-Bench-201 (get_dataset_with_transform.py): x / 255 of these 0..255-scale values.
    mean = tuple(v / 255 for v in (122.68, 116.66, 104.01))
    std = tuple(v / 255 for v in (63.22, 61.26, 65.09))
    files: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": tuple(f"train_data_batch_{i}" for i in range(1, 11)),
        "test": ("val_data",),
    }
    layout = (
        "root/ImageNet16/ (or root/): train_data_batch_1..10 (train), val_data (test); "
        "pickles of 'data' (N, 3072) uint8 and 1-based 'labels'; labels <= 120 kept, -1"
    )

    def examples(self, root: Path, split: str) -> Examples:
        return self.read_files(
            root,
            split,
            self.files[split],
            partial(read_imagenet16_batch, keep_classes=self.num_classes),
        )


class SvhnProvider(ImageProvider):
    """SVHN cropped digits (``train_32x32.mat`` / ``test_32x32.mat``), label 10 read as digit 0."""

    name = "svhn"
    shape = (3, 32, 32)
    num_classes = 10
    # SVHN train statistics as NASLib's ``_data_transforms_svhn`` uses them (NB201 has no SVHN).
    mean = (0.4377, 0.4438, 0.4728)
    std = (0.1980, 0.2010, 0.1970)
    layout = "root/svhn/ (or root/): train_32x32.mat, test_32x32.mat with X (32,32,3,N), y (N,1)"

    def examples(self, root: Path, split: str) -> Examples:
        return self.read_files(root, split, (f"{split}_32x32.mat",), read_svhn_mat)


class ImageFolderProvider(ImageProvider):
    """Images in ``<folder>/<class>/<image>`` read with Pillow as RGB, only those drawn."""

    name = "imagefolder"
    # No statistics of an arbitrary folder are known: ImageNet's, the usual natural-image choice.
    mean = (0.485, 0.456, 0.406)
    std = (0.229, 0.224, 0.225)
    layout = (
        "root/<split>/<class>/<image> when root/<split> is a directory, else "
        "root/<class>/<image>; classes sorted by name, images by file name"
    )

    def examples(self, root: Path, split: str) -> Examples:
        folder = root / split if (root / split).is_dir() else root
        files, labels, classes = list_image_folder(folder)
        return Examples(
            labels,
            lambda idx: [read_image(files[i]) for i in idx],
            str(folder),
            len(classes),
            self.mean,
            self.std,
        )


class NpzProvider(ImageProvider):
    """Any ``.npz`` of uint8 images ``x`` and labels ``y`` (optional keys: see ``layout``)."""

    name = "npz"
    layout = (
        "root itself when it is a .npz file (any split), else root/<split>.npz; "
        "normalised with its 'mean'/'std' arrays if present, else exact per-channel "
        "statistics of its x; classes: len('classes') if present, else max(y) + 1"
    )

    def examples(self, root: Path, split: str) -> Examples:
        path = root if root.suffix == ".npz" else root / f"{split}.npz"
        arrays = read_npz(path)
        images, labels = arrays["x"], arrays["y"]
        if "mean" in arrays and "std" in arrays:
            mean, std = (tuple(float(v) for v in np.ravel(arrays[k])) for k in ("mean", "std"))
        else:
            mean, std = channel_stats(images)
        classes = len(arrays["classes"]) if "classes" in arrays else int(labels.max(initial=-1)) + 1
        if labels.size and int(labels.max()) >= classes:
            raise DataError(
                f"{path}: labels out of range: max {int(labels.max())} >= {classes} classes"
            )
        return in_memory(images, labels, source=str(path), num_classes=classes, mean=mean, std=std)


class DigitsProvider(ImageProvider):
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): real data, always offline.

    Split: within each class (file order), every 5th example (k % 5 == 4) is test (355), the rest
    train (1,442). Native input: 1 channel, 8x8; ``channels=3`` replicates the normalised channel
    (for RGB networks) and ``input_size`` upsamples bilinearly like any other image.
    """

    name = "digits"
    shape = (1, 8, 8)
    num_classes = 10
    # Mean and std of the train split's pixels / 16 (0.30514, 0.37616).
    mean = (0.3051,)
    std = (0.3762,)
    layout = "sklearn.datasets.load_digits() (bundled with scikit-learn; no files)"

    def examples(self, root: Path, split: str) -> Examples:
        images, labels, is_test = _digits()
        keep = is_test == (split == "test")
        return in_memory(
            images[keep, None],
            labels[keep],
            source="sklearn.datasets.load_digits",
            num_classes=self.num_classes,
            mean=self.mean,
            std=self.std,
            pixel_max=16.0,
        )


@cache
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 (N, 8, 8), int64 labels and the test mask (read once)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    labels = bunch.target.astype(np.int64)
    rank = np.zeros(len(labels), dtype=np.int64)  # position of each example within its class
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    return bunch.images.astype(np.uint8), labels, rank % 5 == 4


class ShapesProvider(ImageProvider):
    """``zcproxies.data.synthetic``'s generated shapes (``ShapesStyle()``): 10 classes, 3x12x12.

    Splits: ``train`` is images 0..49,999 of seed ``SEEDS["train"]``, ``test`` images 0..9,999
    of seed ``SEEDS["test"]`` (as many as CIFAR-10), rendered only when drawn.
    """

    name = "shapes"
    shape = (3, synthetic.ShapesStyle().size, synthetic.ShapesStyle().size)
    num_classes = len(synthetic.SHAPES)
    SEEDS: ClassVar[dict[str, int]] = {"train": 1, "test": 2}
    SIZES: ClassVar[dict[str, int]] = {"train": 50_000, "test": 10_000}
    # Per-channel mean and std of train images 0..9,999 (``readers.channel_stats``), rounded.
    mean = (0.4982, 0.5032, 0.5006)
    std = (0.2418, 0.2403, 0.2403)
    layout = "generated by zcproxies.data.synthetic (no files)"

    def examples(self, root: Path, split: str) -> Examples:
        seed = self.SEEDS[split]
        return Examples(
            synthetic.labels(np.arange(self.SIZES[split])),
            lambda idx: list(synthetic.render(seed, idx)),
            f"zcproxies.data.synthetic shapes, seed {seed}",
            self.num_classes,
            self.mean,
            self.std,
        )


class GaussianProvider(Provider):
    """N(0, 1) noise images and uniform labels for data-free proxies (nothing is normalised).

    Draws from ``numpy.random.default_rng(seed)``: x (float64, cast to float32) first, then y.
    There are no real splits: ``split`` is only recorded, so vary ``seed`` for other batches.
    """

    name = "gaussian"
    shape = (3, 32, 32)
    num_classes = 10
    mean = (0.0,) * 3
    std = (1.0,) * 3
    layout = "generated; input_size sets H, W, channels C and num_classes the label range"

    def can_give(self, channels: int | None) -> bool:
        return True

    def make_batch(self, request: Request) -> Batch:
        rng = np.random.default_rng(request.seed)
        height, width = request.input_size or self.shape[1:]
        shape = (request.size, request.channels or self.shape[0], height, width)
        x = rng.standard_normal(shape).astype(np.float32)
        classes = request.num_classes or self.num_classes
        y = rng.integers(0, classes, size=request.size, dtype=np.int64)
        return Batch(
            torch.from_numpy(x),
            torch.from_numpy(y),
            self.name,
            request.split,
            request.seed,
            f"numpy default_rng({request.seed}) standard normal",
            classes,
        )


class UnavailableProvider(ImageProvider):
    """A dataset known by name whose files zcp cannot read; ``batch_for_task`` substitutes it."""

    def __init__(self, name: str, reason: str) -> None:
        self.name, self.layout = name, reason

    def examples(self, root: Path, split: str) -> Examples:
        raise DataNotFound(f"{self.name}: {self.layout}")


DATASETS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        CifarProvider(
            "cifar10",
            10,
            "labels",
            {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
            (125.3, 123.0, 113.9),
            (63.0, 62.1, 66.7),
            "cifar10_test_1000.npz",
        ),
        CifarProvider(
            "cifar100",
            100,
            "fine_labels",
            {"train": ("train",), "test": ("test",)},
            (129.3, 124.1, 112.4),
            (68.2, 65.4, 70.4),
            "cifar100_test_20.npz",
        ),
        ImageNet16Provider(),
        SvhnProvider(),
        ImageFolderProvider(),
        NpzProvider(),
        DigitsProvider(),
        ShapesProvider(),
        GaussianProvider(),
        UnavailableProvider(
            "taskonomy",
            "Taskonomy images (TransNAS-Bench-101) are not "
            "supported: no offline copy and no reader",
        ),
    )
}


def get_provider(name: str) -> Provider:
    """The provider called ``name`` (exact, else case-insensitive)."""
    if name in DATASETS:
        return DATASETS[name]
    folded = {key.lower(): value for key, value in DATASETS.items()}
    if name.lower() in folded:
        return folded[name.lower()]
    raise UnknownName(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def get_batch(
    dataset: str,
    size: int = 64,
    seed: int = 0,
    split: str = "train",
    *,
    root: str | os.PathLike[str] | None = None,
    input_size: tuple[int, int] | None = None,
    num_classes: int | None = None,
    channels: int | None = None,
) -> Batch:
    """The fixed minibatch of ``size`` examples of ``dataset``/``split`` drawn with ``seed``.

    ``input_size`` (H, W) resizes bilinearly; ``num_classes`` below the dataset's folds labels
    to ``y mod num_classes`` (recorded in ``Batch.note``) and otherwise only sets the label range;
    ``channels`` replicates a 1-channel dataset (others must already have that many).
    """
    provider = get_provider(dataset)
    if split not in provider.splits:
        raise UnknownName(
            f"{provider.name} has no split {split!r}; splits: {', '.join(provider.splits)}"
        )
    if size < 1 or seed < 0:
        raise DataError(f"size must be >= 1 and seed >= 0, got size={size}, seed={seed}")
    for option, value in (("num_classes", num_classes), ("channels", channels)):
        if value is not None and value < 1:
            raise DataError(f"{option} must be >= 1, got {value}")
    if input_size is not None:
        input_size = tuple(int(v) for v in input_size)
        if len(input_size) != 2 or min(input_size) < 1:
            raise DataError(f"input_size must be two positive ints, got {input_size}")
    return provider.make_batch(
        Request(size, seed, split, data_root(root), input_size, num_classes, channels)
    )
