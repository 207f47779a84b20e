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
    FORMATS,
    INV_255,
    MODE_CHANNELS,
    SPARSE_KEYS,
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
    """One example to write: its encoded feature lists, its labels and the array a reader must
    give back for it."""

    feature_lists: dict[str, list]
    labels: tuple[int, ...]
    expected: np.ndarray  # float32 (T, H, W, C)


@dataclass(frozen=True)
class _Layout:
    """What the metadata says about every example: format, channels, vocabulary."""

    fmt: str
    num_channels: int  # as written (-1: channel counts differ, read as RGB)
    vocabulary: dict[str, int]  # channel_to_index_map (text), else empty


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
    """Per-example 4-D (T, H, W, C) arrays.

    Arrays: (N, T, H, W, C) videos, (N, H, W, C) images, (N, T, C) sequences of T steps of C
    features, (N, D) tabular rows (-> (1, 1, D, 1), the AutoDL tabular layout). A list (sizes
    may vary): (T, H, W, C), (H, W, C) images, (T, C) sequences, (T,) univariate sequences
    (speech waveforms, token ids).
    """
    if isinstance(x, np.ndarray) and x.dtype != object:
        if x.ndim == 2:
            return _as_examples([row[None, None, :, None] for row in x])
        if x.ndim == 3:
            return _as_examples([seq[:, None, None, :] for seq in x])
        if x.ndim not in (4, 5):
            raise ValueError(
                f"x must be (N, D), (N, T, C), (N, H, W, C) or (N, T, H, W, C), got {x.shape}"
            )
    out = []
    for i, e in enumerate(np.asarray(v) for v in x):
        if e.ndim == 1:
            e = e[:, None, None, None]
        elif e.ndim == 2:
            e = e[:, None, None, :]
        elif e.ndim == 3:
            e = e[None]
        if e.ndim != 4 or 0 in e.shape:
            raise ValueError(
                f"example {i} has shape {e.shape}: need (T,), (T, C), (H, W, C) or (T, H, W, C)"
            )
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


def _split_indices(
    n: int, test_fraction: float, seed: int, test_indices: Sequence[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(test, train) indices: ``test_indices`` as given (train: the rest, in order), else
    ``_split``."""
    if test_indices is None:
        return _split(n, test_fraction, seed)
    test = np.asarray(test_indices, dtype=np.int64).reshape(-1)
    if test.size and (test.min() < 0 or test.max() >= n or len(set(test.tolist())) < test.size):
        raise ValueError(f"test_indices must be distinct indices in [0, {n})")
    train = np.setdiff1d(np.arange(n), test)
    if not test.size or not train.size:
        raise ValueError("test_indices leave a split empty: both splits need at least one")
    return test, train


def _sparse_lists(frames: np.ndarray) -> dict[str, list]:
    """The four sparse feature lists of a (T, H, W, C) example: its non-zero entries."""
    lists: dict[str, list] = {key: [] for key in SPARSE_KEYS}
    for frame in frames:
        rows, cols, channels = np.nonzero(frame)
        lists["0_sparse_row_index"].append(rows.astype(np.int64))
        lists["0_sparse_col_index"].append(cols.astype(np.int64))
        lists["0_sparse_channel_index"].append(channels.astype(np.int64))
        lists["0_sparse_value"].append(frame[rows, cols, channels].astype(np.float32))
    return lists


def _token_lists(ids: np.ndarray, fmt: str) -> dict[str, list]:
    """Feature lists of a token-id sequence: one frame per token, its id as the frame's one
    value (DENSE, the AutoNLP formatter's layout) or as the channel of a one-hot entry
    (SPARSE)."""
    if fmt == "DENSE":
        return {"0_dense_input": [np.array([v], np.float32) for v in ids]}
    zero = np.zeros(1, np.int64)
    return {
        "0_sparse_row_index": [zero] * len(ids),
        "0_sparse_col_index": [zero] * len(ids),
        "0_sparse_channel_index": [np.array([v], np.int64) for v in ids],
        "0_sparse_value": [np.ones(1, np.float32)] * len(ids),
    }


def _record(item: _Item, example_id: int, labelled: bool) -> bytes:
    """The serialized SequenceExample of one item."""
    labels = item.labels if labelled else ()
    context = {
        "id": np.array([example_id], np.int64),
        "label_index": np.array(labels, np.int64),
        "label_score": np.ones(len(labels), np.float32),
    }
    return encode_sequence_example(context, item.feature_lists)


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
    layout: _Layout,
    output_dim: int,
    classes: Sequence[str] | None,
    split: tuple[np.ndarray, np.ndarray],
    verify: bool,
) -> Path:
    """Write both splits and the solution, then optionally read everything back.

    Sizes (frames, rows, cols) common to every example are written as such, sizes that differ
    as -1 ("varies").
    """
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"invalid dataset name {name!r}")
    root = Path(out_dir) / name
    if root.exists():
        raise FileExistsError(f"{root} already exists: choose another --name or remove it")
    test_idx, train_idx = split
    shapes = [item.expected.shape for item in items]
    text = bool(layout.vocabulary)
    spec = MatrixSpec(
        row_count=_uniform([s[1] for s in shapes]),
        col_count=_uniform([s[2] for s in shapes]),
        num_channels=layout.num_channels,
        is_sequence_col=False,
        is_sequence_row=False,
        has_locality_col=not text,
        has_locality_row=not text,
        format=layout.fmt,
    )
    names = {c: i for i, c in enumerate(classes)} if classes is not None else {}
    for split_name, indices, first_id in (
        ("test", test_idx, 0),
        ("train", train_idx, len(test_idx)),
    ):
        folder = root / f"{name}.data" / split_name
        folder.mkdir(parents=True)
        meta = AutoDLMetadata(
            matrix_spec=(spec,),
            is_sequence=max(s[0] for s in shapes) > 1,
            output_dim=output_dim,
            label_to_index_map=names,
            channel_to_index_map=layout.vocabulary,
            sequence_size=_uniform([s[0] for s in shapes]),
            sample_count=len(indices),
        )
        (folder / "metadata.textproto").write_text(meta.to_textproto(), encoding="utf-8")
        write_records(
            folder / f"sample-{name}-{split_name}.tfrecord",
            (_record(items[i], first_id + k, split_name == "train") for k, i in enumerate(indices)),
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


def _vocabulary_map(vocabulary: Sequence[str] | dict[str, int]) -> dict[str, int]:
    """Token -> id: a list gives ids 0..V-1 in order; tokens must be distinct."""
    if isinstance(vocabulary, dict):
        mapping = {str(k): int(v) for k, v in vocabulary.items()}
    else:
        tokens = [str(t) for t in vocabulary]
        if len(set(tokens)) != len(tokens):
            raise ValueError("the vocabulary repeats a token")
        mapping = {t: i for i, t in enumerate(tokens)}
    if len(set(mapping.values())) < 2:
        raise ValueError("a vocabulary needs at least 2 tokens (with 1, a DENSE text is a series)")
    if min(mapping.values()) < 0:
        raise ValueError("vocabulary ids must be >= 0")
    return mapping


def _text_items(
    examples: list[np.ndarray], label_sets: list, vocabulary: dict[str, int], fmt: str
) -> tuple[list[_Item], _Layout]:
    """Token-id sequences (each (T, 1, 1, 1)) as DENSE or SPARSE text items."""
    size = max(vocabulary.values()) + 1
    items = []
    for i, (e, labels) in enumerate(zip(examples, label_sets, strict=True)):
        if e.shape[1:] != (1, 1, 1) or not np.issubdtype(e.dtype, np.integer):
            raise ValueError(
                f"example {i}: text examples are 1-D integer token ids, got {e.dtype} {e.shape}"
            )
        ids = e.reshape(-1).astype(np.int64)
        if ids.min() < 0 or ids.max() >= size:
            raise ValueError(f"example {i}: token id outside the vocabulary [0, {size})")
        items.append(
            _Item(_token_lists(ids, fmt), labels, ids.astype(np.float32)[:, None, None, None])
        )
    return items, _Layout(fmt, 1 if fmt == "DENSE" else size, vocabulary)


def _sparse_shape_check(examples: list[np.ndarray]) -> None:
    """SPARSE stores no size: where sizes vary, each example's must follow from its entries."""
    for axis, name in ((1, "row"), (2, "col")):
        if len({e.shape[axis] for e in examples}) == 1:
            continue
        for i, e in enumerate(examples):
            nonzero = np.flatnonzero(np.moveaxis(e, axis, 0).reshape(e.shape[axis], -1).any(1))
            extent = int(nonzero[-1]) + 1 if nonzero.size else 1
            if extent != e.shape[axis]:
                raise ValueError(
                    f"example {i}: SPARSE with varying {name} counts keeps no size, and its last "
                    f"{name}s are all zero (it would read back with {extent} {name}s, not "
                    f"{e.shape[axis]}): use DENSE or a fixed size"
                )


def format_dataset(
    x: np.ndarray | Sequence[np.ndarray],
    y: np.ndarray,
    out_dir: str | os.PathLike[str],
    name: str,
    *,
    classes: Sequence[str] | None = None,
    vocabulary: Sequence[str] | dict[str, int] | None = None,
    test_fraction: float = 0.2,
    test_indices: Sequence[int] | None = None,
    seed: int = 0,
    fmt: str | None = None,
    verify: bool = True,
) -> Path:
    """Write arrays as the AutoDL dataset ``<out_dir>/<name>/``; returns that directory.

    ``x``: see ``_as_examples`` (images, videos, sequences of varying length, tabular rows);
    with ``vocabulary`` (tokens in id order, or token -> id), 1-D integer token-id sequences
    (text). ``y``: int class ids (N,) or 0/1 multi-hot (N, n_classes). ``fmt``: 'COMPRESSED'
    (PNG frames; uint8 with 1-4 channels, read back as x/255), 'DENSE' (float32 values as
    given; fixed H, W, C, any number of frames) or 'SPARSE' (the non-zero entries; any sizes
    that its entries determine); default COMPRESSED for uint8 images, else DENSE. The split:
    ``test_indices`` when given, else a seeded permutation (``_split``). ``verify`` reads
    everything back and compares exactly (``FormatError`` on a mismatch).
    """
    examples = _as_examples(x)
    label_sets, output_dim = _label_sets(y, len(examples), classes)
    if fmt is None:
        images = all(e.dtype == np.uint8 and min(e.shape[1:3]) > 1 for e in examples)
        fmt = "COMPRESSED" if images and vocabulary is None else "DENSE"
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if vocabulary is not None:
        if fmt == "COMPRESSED":
            raise ValueError("text (a vocabulary) is written DENSE or SPARSE, not COMPRESSED")
        items, layout = _text_items(examples, label_sets, _vocabulary_map(vocabulary), fmt)
    else:
        items, layout = _array_items(examples, label_sets, fmt)
    split = _split_indices(len(items), test_fraction, seed, test_indices)
    return _write(items, out_dir, name, layout, output_dim, classes, split, verify)


def _array_items(
    examples: list[np.ndarray], label_sets: list, fmt: str
) -> tuple[list[_Item], _Layout]:
    """Images, videos, sequences or tabular rows as COMPRESSED, DENSE or SPARSE items."""
    channels = {e.shape[3] for e in examples}
    if len(channels) != 1:
        raise ValueError(f"examples differ in channel count: {sorted(channels)}")
    floats = [e.astype(np.float32) for e in examples]
    if fmt == "COMPRESSED":
        for i, e in enumerate(examples):
            if e.dtype != np.uint8 or e.shape[3] not in CHANNEL_MODE:
                raise ValueError(
                    f"example {i}: COMPRESSED needs uint8 with 1-4 channels, "
                    f"got {e.dtype} {e.shape}"
                )
        lists = [{"0_compressed": [[encode_png(f)] for f in e]} for e in examples]
        floats = [f * INV_255 for f in floats]
    elif fmt == "DENSE":
        if len({e.shape[1:] for e in examples}) != 1:
            raise ValueError("DENSE needs every frame to have the same (H, W, C)")
        lists = [{"0_dense_input": [frame.ravel() for frame in f]} for f in floats]
    else:
        _sparse_shape_check(floats)
        lists = [_sparse_lists(f) for f in floats]
    items = [_Item(fl, s, f) for fl, s, f in zip(lists, label_sets, floats, strict=True)]
    return items, _Layout(fmt, channels.pop(), {})


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
        items.append(_Item({"0_compressed": [[data]]}, (label,), decoded[None]))
    classes = [p.name for p in class_dirs]
    return _write(
        items,
        out_dir,
        name or source.name,
        _Layout("COMPRESSED", channels, {}),
        len(classes),
        classes,
        _split(len(items), test_fraction, seed),
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
