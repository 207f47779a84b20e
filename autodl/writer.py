"""Write datasets in the AutoDL format, from numpy arrays or an image folder.

Output (the layout of the AutoDL formatting tools)::

    <out>/<name>/<name>.data/train/metadata.textproto
    <out>/<name>/<name>.data/train/sample-<name>-train.tfrecord
    <out>/<name>/<name>.data/test/metadata.textproto
    <out>/<name>/<name>.data/test/sample-<name>-test.tfrecord
    <out>/<name>/<name>.solution        test labels, one 0/1 row per test record

Split: one permutation of the N examples drawn from ``numpy.random.default_rng(seed)``; its
first ``round(N * test_fraction)`` entries form the test split and the rest the train split,
each written in permutation order (so class-sorted input does not give class-sorted files).
As in the reference formatter, test records get ids 0..n_test-1 and empty ``label_index``/
``label_score`` (their labels go to the ``.solution`` file only), train records ids
n_test..N-1 with ``label_score`` 1 for each label.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from autodl.dataset import (
    CHANNEL_MODE,
    INV_255,
    MODE_CHANNELS,
    AutoDLMetadata,
    MatrixSpec,
    decode_image,
    load_dataset,
)
from autodl.errors import FormatError
from autodl.proto import encode_sequence_example
from autodl.tfrecord import write_records

IMAGE_FORMATS_KEPT = ("PNG", "JPEG")  # folder images in these formats are stored byte for byte


@dataclass(frozen=True)
class _Item:
    """One example to write: encoded frames (COMPRESSED) or a float array (DENSE), its labels
    and the array a reader must give back for it."""

    frames: list[bytes] | np.ndarray
    labels: tuple[int, ...]
    expected: np.ndarray  # float32 (T, H, W, C)


def encode_png(frame: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, C) frame with 1 to 4 channels (L, LA, RGB, RGBA)."""
    channels = frame.shape[2]
    pixels = frame[:, :, 0] if channels == 1 else frame
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), mode=CHANNEL_MODE[channels]).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def _as_examples(x: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per-example 4-D (T, H, W, C) arrays from (N, H, W, C), (N, T, H, W, C) or a list."""
    if isinstance(x, np.ndarray) and x.ndim in (4, 5):
        examples = list(x)
    elif isinstance(x, np.ndarray):
        raise ValueError(f"x must be (N, H, W, C) or (N, T, H, W, C), got shape {x.shape}")
    else:
        examples = [np.asarray(e) for e in x]
    out = []
    for i, e in enumerate(examples):
        if e.ndim == 3:
            e = e[None]
        if e.ndim != 4 or 0 in e.shape:
            raise ValueError(f"example {i} has shape {e.shape}: need (H, W, C) or (T, H, W, C)")
        out.append(e)
    if not out:
        raise ValueError("no examples")
    return out


def _label_sets(y: np.ndarray, n: int, classes: Sequence[str] | None) -> tuple[list, int]:
    """Label index tuples from int labels (N,) or 0/1 multi-hot (N, C), and output_dim."""
    y = np.asarray(y)
    if y.shape[0] != n:
        raise ValueError(f"{n} examples but {y.shape[0]} labels")
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"1-D labels must be integers, got {y.dtype}")
        sets = [(int(v),) for v in y]
        dim = int(y.max()) + 1
    elif y.ndim == 2:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("multi-hot labels must be 0 or 1")
        sets = [tuple(int(i) for i in np.flatnonzero(row)) for row in y]
        dim = y.shape[1]
    else:
        raise ValueError(f"labels must be (N,) or (N, C), got shape {y.shape}")
    if classes is not None:
        if len(classes) < dim:
            raise ValueError(f"{len(classes)} class names for {dim} classes")
        dim = len(classes)
    if any(not s for s in sets):
        raise ValueError(
            "every example needs a label (an empty label_index marks an unlabelled test record)"
        )
    if any(min(s) < 0 for s in sets):
        raise ValueError("labels must be >= 0")
    return sets, dim


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(test indices, train indices), both in the order of one seeded permutation."""
    n_test = round(n * test_fraction)
    if not 0 < n_test < n:
        raise ValueError(
            f"test_fraction {test_fraction} of {n} examples gives {n_test} test examples: "
            "both splits need at least one"
        )
    order = np.random.default_rng(seed).permutation(n)
    return order[:n_test], order[n_test:]


def _record(item: _Item, example_id: int, fmt: str, labelled: bool) -> bytes:
    """The serialized SequenceExample of one item."""
    labels = item.labels if labelled else ()
    context = {
        "id": np.array([example_id], np.int64),
        "label_index": np.array(labels, np.int64),
        "label_score": np.ones(len(labels), np.float32),
    }
    if fmt == "COMPRESSED":
        frames = [[image] for image in item.frames]
        return encode_sequence_example(context, {"0_compressed": frames})
    frames = [frame.ravel() for frame in np.asarray(item.frames, np.float32)]
    return encode_sequence_example(context, {"0_dense_input": frames})


def _multi_hot(items: list[_Item], indices: np.ndarray, output_dim: int) -> np.ndarray:
    """0/1 label rows (float32) of ``items[indices]``."""
    rows = np.zeros((len(indices), output_dim), np.float32)
    for row, i in enumerate(indices):
        rows[row, list(items[i].labels)] = 1
    return rows


def _uniform(values: list[int]) -> int:
    """The common value, or -1 (the format's 'varies') when they differ."""
    return values[0] if len(set(values)) == 1 else -1


def _write(
    items: list[_Item],
    out_dir: str | os.PathLike[str],
    name: str,
    fmt: str,
    num_channels: int,
    output_dim: int,
    classes: Sequence[str] | None,
    test_fraction: float,
    seed: int,
    verify: bool,
) -> Path:
    """Split, write both splits and the solution, then optionally read everything back.

    ``num_channels`` is written as given (-1: channel counts differ, read as RGB).
    """
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"invalid dataset name {name!r}")
    root = Path(out_dir) / name
    if root.exists():
        raise FileExistsError(f"{root} already exists: choose another --name or remove it")
    test_idx, train_idx = _split(len(items), test_fraction, seed)
    shapes = [item.expected.shape for item in items]
    spec = MatrixSpec(
        row_count=_uniform([s[1] for s in shapes]),
        col_count=_uniform([s[2] for s in shapes]),
        num_channels=num_channels,
        has_locality_col=True,
        has_locality_row=True,
        format=fmt,
    )
    steps = max(s[0] for s in shapes)
    names = {c: i for i, c in enumerate(classes)} if classes is not None else {}
    for split, indices, first_id in (("test", test_idx, 0), ("train", train_idx, len(test_idx))):
        folder = root / f"{name}.data" / split
        folder.mkdir(parents=True)
        meta = AutoDLMetadata(
            matrix_spec=(spec,),
            is_sequence=steps > 1,
            output_dim=output_dim,
            label_to_index_map=names,
            sequence_size=steps,
            sample_count=len(indices),
        )
        (folder / "metadata.textproto").write_text(meta.to_textproto(), encoding="utf-8")
        write_records(
            folder / f"sample-{name}-{split}.tfrecord",
            (_record(items[i], first_id + k, fmt, split == "train") for k, i in enumerate(indices)),
        )
    np.savetxt(root / f"{name}.solution", _multi_hot(items, test_idx, output_dim), fmt="%.0f")
    if verify:
        _verify(root, items, test_idx, train_idx, output_dim)
    return root


def _verify(
    root: Path, items: list[_Item], test_idx: np.ndarray, train_idx: np.ndarray, output_dim: int
) -> None:
    """Read the written dataset back and compare every example and label exactly."""
    train, test, solution = load_dataset(root)
    train_labels = _multi_hot(items, train_idx, output_dim)
    for k, (example, i) in enumerate(zip(train.iter_examples(), train_idx, strict=True)):
        if not (
            np.array_equal(example.x, items[i].expected)
            and np.array_equal(example.labels, train_labels[k])
        ):
            raise FormatError(f"{root}: read-back mismatch at train record {k}")
    for k, (example, i) in enumerate(zip(test.iter_examples(), test_idx, strict=True)):
        if not (np.array_equal(example.x, items[i].expected) and example.labels is None):
            raise FormatError(f"{root}: read-back mismatch at test record {k}")
    if not np.array_equal(solution, _multi_hot(items, test_idx, output_dim)):
        raise FormatError(f"{root}: read-back mismatch in the solution file")


def format_dataset(
    x: np.ndarray | Sequence[np.ndarray],
    y: np.ndarray,
    out_dir: str | os.PathLike[str],
    name: str,
    *,
    classes: Sequence[str] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    fmt: str | None = None,
    verify: bool = True,
) -> Path:
    """Write arrays as the AutoDL dataset ``<out_dir>/<name>/``; returns that directory.

    ``x``: (N, H, W, C), (N, T, H, W, C) or a list of (H, W, C)/(T, H, W, C) arrays whose sizes
    may vary. ``y``: int class ids (N,) or 0/1 multi-hot (N, n_classes). ``fmt``:
    'COMPRESSED' (PNG frames; uint8 with 1-4 channels, read back as x/255) or 'DENSE' (float32
    values as given; fixed H, W, C); default COMPRESSED for uint8 input, else DENSE.
    ``verify`` reads everything back and compares exactly (``FormatError`` on a mismatch).
    """
    examples = _as_examples(x)
    label_sets, output_dim = _label_sets(y, len(examples), classes)
    channels = {e.shape[3] for e in examples}
    if len(channels) != 1:
        raise ValueError(f"examples differ in channel count: {sorted(channels)}")
    if fmt is None:
        fmt = "COMPRESSED" if all(e.dtype == np.uint8 for e in examples) else "DENSE"
    if fmt == "COMPRESSED":
        for i, e in enumerate(examples):
            if e.dtype != np.uint8 or e.shape[3] not in CHANNEL_MODE:
                raise ValueError(
                    f"example {i}: COMPRESSED needs uint8 with 1-4 channels, "
                    f"got {e.dtype} {e.shape}"
                )
        items = [
            _Item([encode_png(f) for f in e], s, e.astype(np.float32) * INV_255)
            for e, s in zip(examples, label_sets, strict=True)
        ]
    elif fmt == "DENSE":
        if len({e.shape[1:] for e in examples}) != 1:
            raise ValueError("DENSE needs every frame to have the same (H, W, C)")
        items = [
            _Item(e.astype(np.float32), s, e.astype(np.float32))
            for e, s in zip(examples, label_sets, strict=True)
        ]
    else:
        raise ValueError(f"fmt must be 'COMPRESSED' or 'DENSE', got {fmt!r}")
    return _write(
        items, out_dir, name, fmt, channels.pop(), output_dim, classes, test_fraction, seed, verify
    )


def format_image_folder(
    root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    name: str | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    verify: bool = True,
) -> Path:
    """Write an image folder ``root/<class>/<image>`` as an AutoDL dataset (COMPRESSED).

    Classes are the sorted sub-directory names; hidden files are skipped. PNG and JPEG files
    are stored byte for byte (no recompression), other formats Pillow reads are re-encoded as
    PNG. Sizes or channel counts that differ between images are written as -1 ("varies";
    images of unknown channel count are read as RGB, as the starting kit does).
    """
    source = Path(root)
    class_dirs = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise FormatError(f"{source}: no class sub-directories (expected root/<class>/<image>)")
    images: list[tuple[bytes, int, int]] = []  # (stored bytes, channels, class index)
    for label, folder in enumerate(class_dirs):
        for path in sorted(
            p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
        ):
            images.append((*_stored_image(path), label))
    if not images:
        raise FormatError(f"{source}: no images found")
    channels = _uniform([c for _, c, _ in images])
    items = []
    for data, native, label in images:
        target = channels if channels > 0 else 3
        decoded = decode_image(data, target, convert=native != target)
        items.append(_Item([data], (label,), decoded[None]))
    classes = [p.name for p in class_dirs]
    return _write(
        items,
        out_dir,
        name or source.name,
        "COMPRESSED",
        channels,
        len(classes),
        classes,
        test_fraction,
        seed,
        verify,
    )


def _stored_image(path: Path) -> tuple[bytes, int]:
    """The bytes to store for one image file and its channel count."""
    data = path.read_bytes()
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise FormatError(f"{path}: not an image Pillow can read: {exc}") from None
    channels = MODE_CHANNELS.get(image.mode)
    if channels is None:
        raise FormatError(f"{path}: unsupported image mode {image.mode!r} (8-bit images only)")
    if image.format not in IMAGE_FORMATS_KEPT:
        mode = CHANNEL_MODE[channels]
        buffer = io.BytesIO()
        image.convert(mode).save(buffer, format="PNG")
        data = buffer.getvalue()
    return data, channels
