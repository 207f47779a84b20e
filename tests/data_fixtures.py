"""Writers of small fake datasets in the original file formats, for the data-provider tests.

Pixel values are random but every image's first pixel (channel 0, row 0, column 0) holds its
index within its file modulo 256, so tests can tell which examples were drawn.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def _images(n: int, side: int, seed: int) -> np.ndarray:
    """Random uint8 NCHW images with the file-local index in pixel [0, 0, 0]."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 3, side, side), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    return images


def _dump(path: Path, entry: dict) -> Path:
    """A Python-3 pickle (str keys) of ``entry``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(entry, handle, protocol=2)
    return path


# ---- Python-2 pickles, as the official CIFAR batches were written ----------------------------
# Python 2 wrote ``str`` as raw bytes (SHORT_BINSTRING/BINSTRING) and numpy arrays as
# ``_reconstruct(ndarray, (0,), 'b')`` + BUILD with the raw data as such a string; Python 3
# cannot produce these opcodes, so they are emitted by hand (protocol 2, dicts of str keys to
# str, list of ints or uint8 arrays).
def _py2_int(value: int) -> bytes:
    return b"K" + bytes([value]) if 0 <= value < 256 else b"J" + struct.pack("<i", value)


def _py2_str(text: str | bytes) -> bytes:
    raw = text.encode("latin1") if isinstance(text, str) else text
    head = b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + struct.pack("<I", len(raw))
    return head + raw


def _py2_value(value: object) -> bytes:
    if isinstance(value, (str, bytes)):
        return _py2_str(value)
    if isinstance(value, list):
        return b"](" + b"".join(_py2_int(int(v)) for v in value) + b"e"
    assert isinstance(value, np.ndarray) and value.dtype == np.uint8
    dtype = (
        b"cnumpy\ndtype\n"
        + _py2_str("u1")
        + b"\x89\x88\x87R("
        + _py2_int(3)
        + _py2_str("|")
        + b"NNN"
        + _py2_int(-1)
        + _py2_int(-1)
        + _py2_int(0)
        + b"tb"
    )
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + _py2_int(0)
        + b"\x85"
        + _py2_str("b")
        + b"\x87R("
        + _py2_int(1)
        + b"("
        + b"".join(_py2_int(d) for d in value.shape)
        + b"t"
        + dtype
        + b"\x89"
        + _py2_str(value.tobytes())
        + b"tb"
    )


def _dump_py2(path: Path, entry: dict[str, object]) -> Path:
    """A pickle of ``entry`` byte-for-byte in the style Python 2 wrote (str keys -> bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"".join(_py2_str(key) + _py2_value(value) for key, value in entry.items())
    path.write_bytes(b"\x80\x02}(" + body + b"u.")
    return path


def write_cifar10(root: Path, per_file: int = 12) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``root/cifar-10-batches-py/{data_batch_1..5,test_batch}`` as Python-2 pickles.

    Returns file name -> (NCHW images, labels).
    """
    written = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images = _images(per_file, 32, seed=i)
        labels = [int(v) for v in np.random.default_rng(100 + i).integers(0, 10, per_file)]
        _dump_py2(
            root / "cifar-10-batches-py" / name,
            {"batch_label": name, "labels": labels, "data": images.reshape(per_file, -1)},
        )
        written[name] = (images, np.asarray(labels))
    return written


def write_cifar100(root: Path, n: int = 30) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``root/cifar-100-python/{train,test}`` with fine (0..99) and coarse (0..19) labels."""
    written = {}
    for i, name in enumerate(("train", "test")):
        images = _images(n, 32, seed=10 + i)
        fine = [int(v) for v in np.random.default_rng(200 + i).integers(20, 100, n)]
        _dump_py2(
            root / "cifar-100-python" / name,
            {
                "data": images.reshape(n, -1),
                "fine_labels": fine,
                "coarse_labels": [v // 5 for v in fine],
            },
        )
        written[name] = (images, np.asarray(fine))
    return written


def write_imagenet16(root: Path, labels: list[int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``root/ImageNet16/{train_data_batch_1..10,val_data}`` (Python-3 pickles), 1-based labels."""
    written = {}
    names = [f"train_data_batch_{k}" for k in range(1, 11)] + ["val_data"]
    for i, name in enumerate(names):
        images = _images(len(labels), 16, seed=20 + i)
        _dump(
            root / "ImageNet16" / name,
            {
                "data": images.reshape(len(labels), -1),
                "labels": list(labels),
                "mean": np.zeros(3072),
            },
        )
        written[name] = (images, np.asarray(labels))
    return written


def write_svhn(root: Path, split: str, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """``root/svhn/<split>_32x32.mat``: X (32, 32, 3, N) uint8 and y (N, 1) in 1..10.

    Returns NCHW images and the stored (1..10) labels.
    """
    from scipy.io import savemat

    images = _images(n, 32, seed=30)
    labels = (np.arange(n) % 10 + 1).astype(np.uint8)
    (root / "svhn").mkdir(parents=True, exist_ok=True)
    savemat(
        root / "svhn" / f"{split}_32x32.mat",
        {"X": images.transpose(2, 3, 1, 0), "y": labels[:, None]},
    )
    return images, labels


def write_image_folder(
    folder: Path,
    colours: dict[str, tuple[int, int, int]],
    per_class: int = 3,
    size: tuple[int, int] = (10, 12),
) -> None:
    """``folder/<class>/<k>.png``: solid images of each class's RGB colour, ``size`` = (W, H)."""
    from PIL import Image

    for name, colour in colours.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            Image.new("RGB", size, colour).save(folder / name / f"{k}.png")


def write_npz(path: Path, n: int = 16, nchw: bool = False, **extra: np.ndarray) -> np.ndarray:
    """An ``.npz`` of uint8 images (NHWC unless ``nchw``) and labels 0..3; returns NCHW images."""
    images = _images(n, 8, seed=40)
    x = images if nchw else images.transpose(0, 2, 3, 1)
    np.savez(path, x=x, y=np.arange(n) % 4, **extra)
    return images
