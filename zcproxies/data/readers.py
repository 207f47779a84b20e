"""Readers of the original dataset files, each checking the layout it expects.

Every reader returns images as uint8 (N, C, H, W) plus int64 labels, or raises ``DataError``
naming the file and what was expected. Pickles run code when loaded: read only trusted files
(the official archives, verified with ``zcproxies.data.download.verify_dataset``).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from zcproxies.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")


class DataNotFound(DataError):
    """The files of a dataset are absent (as opposed to present but corrupt)."""


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else ``DataNotFound`` saying what was expected there."""
    if not path.is_file():
        raise DataNotFound(f"{what} not found: {path}")
    return path


def read_pickle(path: Path, encoding: str) -> dict[str, Any]:
    """A pickled dict with its keys as ``str`` (Python-2 pickles give ``bytes`` keys)."""
    try:
        with open(require_file(path, "pickle file"), "rb") as handle:
            value = pickle.load(handle, encoding=encoding)
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
    ) as exc:
        raise DataError(
            f"{path}: truncated or corrupt pickle ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(value).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in value.items()}


def _field(entry: dict[str, Any], key: str, path: Path) -> Any:
    if key not in entry:
        raise DataError(f"{path}: missing key {key!r} (keys: {', '.join(map(str, entry))})")
    return entry[key]


def check_labels(labels: Any, n: int, low: int, high: int, path: Path) -> np.ndarray:
    """Labels as int64 (n,), all in [low, high], else ``DataError`` naming ``path``."""
    array = np.asarray(labels).reshape(-1) if np.ndim(labels) == 2 else np.asarray(labels)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{path}: expected {n} integer labels, got {array.dtype} {array.shape}")
    if n and not low <= int(array.min()) <= int(array.max()) <= high:
        raise DataError(
            f"{path}: labels out of range: [{int(array.min())}, {int(array.max())}]"
            f" not within [{low}, {high}]"
        )
    return array.astype(np.int64)


def _flat_rgb(entry: dict[str, Any], path: Path, side: int) -> np.ndarray:
    """The ``data`` field of a CIFAR/ImageNet16 pickle, (N, 3*side*side) uint8, as NCHW."""
    data = _field(entry, "data", path)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * side * side
    ):
        shape = getattr(data, "shape", None)
        raise DataError(
            f"{path}: 'data' must be uint8 (N, {3 * side * side}), got "
            f"{getattr(data, 'dtype', type(data).__name__)} {shape}"
        )
    return data.reshape(-1, 3, side, side)


def read_cifar_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One official CIFAR python batch: ``data`` (N, 3072) uint8 and ``label_key`` labels."""
    entry = read_pickle(path, encoding="bytes")
    images = _flat_rgb(entry, path, 32)
    labels = check_labels(_field(entry, label_key, path), len(images), 0, num_classes - 1, path)
    return images, labels


def read_imagenet16_batch(path: Path, keep_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One ImageNet16 pickle, reduced as NB201's ``ImageNet16(..., use_num_of_class_only)``.

    Labels are 1-based over 1000 classes; rows with ``1 <= label <= keep_classes`` are kept and
    their labels shifted to 0-based (NB201 returns ``targets[i] - 1``).
    """
    entry = read_pickle(path, encoding="latin1")
    images = _flat_rgb(entry, path, 16)
    labels = check_labels(_field(entry, "labels", path), len(images), 1, 1000, path)
    keep = labels <= keep_classes
    return images[keep], labels[keep] - 1


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An SVHN ``*_32x32.mat``: ``X`` (32, 32, 3, N) uint8, ``y`` (N, 1) in 1..10 (10 = digit 0)."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    require_file(path, "SVHN .mat file")
    try:
        mat = loadmat(path)
    except (MatReadError, OSError, ValueError, TypeError, IndexError) as exc:
        raise DataError(f"{path}: unreadable .mat file ({type(exc).__name__}: {exc})") from None
    x, y = _field(mat, "X", path), _field(mat, "y", path)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: 'X' must be uint8 (32, 32, 3, N), got {x.dtype} {x.shape}")
    labels = check_labels(y, x.shape[3], 1, 10, path)
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels % 10


def read_npz(path: Path, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """An ``.npz`` with ``x`` uint8 images and ``y`` labels; optional ``mean``/``std`` kept.

    ``x`` may be NHWC or NCHW with 1 or 3 channels (NHWC wins when both fit) or NHW
    (grayscale); it is returned as NCHW. ``y`` must be non-negative (< ``num_classes`` if given).
    """
    require_file(path, ".npz file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable .npz ({type(exc).__name__}: {exc})") from None
    x = _field(arrays, "x", path)
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise DataError(f"{path}: 'x' must be uint8 NHWC, NCHW or NHW, got {x.dtype} {x.shape}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.shape[3] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif x.shape[1] not in (1, 3):
        raise DataError(f"{path}: 'x' {x.shape} has neither 1 nor 3 channels in NHWC or NCHW")
    high = (num_classes - 1) if num_classes else np.iinfo(np.int64).max
    arrays["y"] = check_labels(_field(arrays, "y", path), len(x), 0, high, path)
    arrays["x"] = np.ascontiguousarray(x)
    return arrays


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of uint8 NCHW images on the [0, 1] scale (histograms)."""
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = np.bincount(images[:, c].ravel(), minlength=256).astype(np.float64)
        mean = float(counts @ values / counts.sum())
        means.append(mean)
        stds.append(float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum())))
    return tuple(means), tuple(stds)


def list_image_folder(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """Image files of ``folder/<class>/<image>``: classes and files sorted by name."""
    if not folder.is_dir():
        raise DataNotFound(f"image folder not found: {folder}")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(
            p
            for p in (folder / name).iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        files += found
        labels += [label] * len(found)
    if not files:
        raise DataError(
            f"{folder}: no images found; expected {folder}/<class>/<image> with "
            f"suffix one of {', '.join(IMAGE_SUFFIXES)}"
        )
    return files, np.asarray(labels, dtype=np.int64), classes


def read_image(path: Path) -> np.ndarray:
    """One image file as RGB uint8 (3, H, W)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))
