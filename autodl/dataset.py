"""Read AutoDL challenge datasets without TensorFlow.

Layout of a dataset ``<name>/``: ``<name>.data/{train,test}/metadata.textproto`` (a text-format
``autodl.DataSpecification``), ``<name>.data/{train,test}/sample*`` (TFRecord files of
``tf.train.SequenceExample`` records) and ``<name>.solution`` (the test labels, one row per test
record in file order, one column per class).

Every example is a 4-D float32 array (time, row, col, channel), as the AutoDL starting kit's
``AutoDLDataset`` gives it; images are scaled to [0, 1] exactly as TensorFlow's
``convert_image_dtype`` does (``uint8 * float32(1/255)``). ``AutoDLMetadata`` keeps the kit's
method names (``get_output_size``, ``get_tensor_shape``, ``size``, ...) so a model written for
the challenge runs on it unchanged.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from autodl.errors import FormatError
from autodl.proto import Scalar, TextMessage, decode_sequence_example, parse_text_format, quote
from autodl.tfrecord import RecordSpan, read_span, scan_records

FORMATS = ("DENSE", "SPARSE", "COMPRESSED")  # MatrixSpec.Format enum, in value order
SPARSE_KEYS = (
    "0_sparse_row_index",
    "0_sparse_col_index",
    "0_sparse_channel_index",
    "0_sparse_value",
)
INV_255 = np.float32(1.0 / 255.0)  # TensorFlow's convert_image_dtype(uint8 -> float32) factor
# Channels of each 8-bit Pillow mode as TensorFlow's decoders see it (palette images decode to
# RGB); other modes (16-bit, float) are refused rather than silently rescaled.
MODE_CHANNELS = {
    "1": 1,
    "L": 1,
    "LA": 2,
    "P": 3,
    "RGB": 3,
    "YCbCr": 3,
    "CMYK": 3,
    "PA": 4,
    "RGBA": 4,
}
CHANNEL_MODE = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
# Bound on the values of one decoded example (1 GiB of float32): sizes that vary are taken from
# the record, so a corrupt index must not allocate without limit.
MAX_DENSE_VALUES = 2**28


# ---- metadata ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatrixSpec:
    """``autodl.MatrixSpec``: shape and storage of one matrix of a bundle (proto defaults)."""

    col_count: int = 0  # <= 0: varies per example
    row_count: int = 0  # <= 0: varies per example
    is_sequence_col: bool = False
    is_sequence_row: bool = False
    has_locality_col: bool = False
    has_locality_row: bool = False
    format: str = "DENSE"  # one of FORMATS
    is_sparse: bool = False  # deprecated in data.proto; read and written, never used
    num_channels: int = -1  # -1: unknown (3 for COMPRESSED, 1 otherwise, as the kit decides)


@dataclass(frozen=True)
class AutoDLMetadata:
    """``autodl.DataSpecification`` of one split, with the starting kit's accessor names."""

    matrix_spec: tuple[MatrixSpec, ...] = ()
    is_sequence: bool = False
    output_dim: int = 0
    label_to_index_map: dict[str, int] = field(default_factory=dict)
    feature_to_index_map: dict[str, int] = field(default_factory=dict)
    channel_to_index_map: dict[str, int] = field(default_factory=dict)
    sequence_size: int = 1
    sample_count: int = 0
    dataset_name: str = ""  # the split directory it was read from (not part of the proto)

    # -- the starting kit's AutoDLMetadata API --
    def get_dataset_name(self) -> str:
        """Where this metadata was read from."""
        return self.dataset_name

    def is_compressed(self, bundle_index: int = 0) -> bool:
        """True when frames are encoded images (PNG/JPEG)."""
        return self.matrix_spec[bundle_index].format == "COMPRESSED"

    def is_sparse(self, bundle_index: int = 0) -> bool:
        """True when frames are stored as sparse (row, col, channel, value) entries."""
        return self.matrix_spec[bundle_index].format == "SPARSE"

    def get_bundle_size(self) -> int:
        """Number of matrices per bundle (1 in every AutoDL dataset)."""
        return len(self.matrix_spec)

    def get_matrix_size(self, bundle_index: int = 0) -> tuple[int, int]:
        """(row_count, col_count); -1 (or 0) where the size varies."""
        spec = self.matrix_spec[bundle_index]
        return spec.row_count, spec.col_count

    def get_num_channels(self, bundle_index: int = 0) -> int:
        """Channels per frame; unknown (-1) means 3 for compressed images, 1 otherwise."""
        spec = self.matrix_spec[bundle_index]
        if spec.num_channels == -1:
            return 3 if spec.format == "COMPRESSED" else 1
        return spec.num_channels

    def get_tensor_size(self, bundle_index: int = 0) -> tuple[int, int, int]:
        """(row, col, channel) of one frame."""
        return (*self.get_matrix_size(bundle_index), self.get_num_channels(bundle_index))

    def get_tensor_shape(self, bundle_index: int = 0) -> tuple[int, int, int, int]:
        """(sequence_size, row, col, channel) of one example; -1 where a size varies."""
        return (self.get_sequence_size(), *self.get_tensor_size(bundle_index))

    def get_sequence_size(self) -> int:
        """Frames per example as declared (compressed examples may have another count)."""
        return self.sequence_size

    def get_output_size(self) -> int:
        """Number of classes (``output_dim``)."""
        return self.output_dim

    def size(self) -> int:
        """Number of examples (``sample_count``)."""
        return self.sample_count

    def get_label_to_index_map(self) -> dict[str, int]:
        """Class name -> column index."""
        return self.label_to_index_map

    def get_channel_to_index_map(self) -> dict[str, int]:
        """Channel name -> channel index (text datasets: the vocabulary)."""
        return self.channel_to_index_map

    def get_feature_to_index_map(self) -> dict[str, int]:
        """Feature name -> index."""
        return self.feature_to_index_map

    # -- helpers --
    def is_token_sequence(self) -> bool:
        """Text (``token_vocabulary``): token ids with a vocabulary in ``channel_to_index_map``."""
        return self.vocabulary_size() > 0

    def vocabulary_size(self) -> int:
        """Token ids of a text dataset lie in ``[0, vocabulary_size)``; 0: not text."""
        return token_vocabulary(self)

    def class_names(self) -> list[str | None]:
        """Name of each class column, ``None`` where the metadata gives none."""
        names: list[str | None] = [None] * self.output_dim
        for name, index in self.label_to_index_map.items():
            names[index] = name
        return names

    @classmethod
    def from_textproto(cls, text: str, dataset_name: str = "") -> AutoDLMetadata:
        """Parse and validate a ``metadata.textproto``; raises ``FormatError`` naming the field."""
        fields = parse_text_format(text)
        kwargs = _convert_fields(fields, _SPEC_FIELDS, "DataSpecification")
        specs = tuple(
            MatrixSpec(
                **_convert_fields(_as_message(m, "matrix_spec"), _MATRIX_FIELDS, "MatrixSpec")
            )
            for m in fields.get("matrix_spec", [])
        )
        meta = cls(**kwargs, matrix_spec=specs, dataset_name=dataset_name)
        meta.validate()
        return meta

    def validate(self) -> None:
        """Check what the reader relies on; raises ``FormatError``."""
        if len(self.matrix_spec) != 1:
            raise FormatError(
                f"exactly one matrix_spec is supported (AutoDL datasets have one), "
                f"found {len(self.matrix_spec)}"
            )
        if self.output_dim <= 0:
            raise FormatError(f"output_dim must be positive, got {self.output_dim}")
        if self.sample_count < 0:
            raise FormatError(f"sample_count must be >= 0, got {self.sample_count}")
        channels = self.get_num_channels()
        if self.is_compressed() and channels not in CHANNEL_MODE:
            raise FormatError(f"compressed images need 1 to 4 channels, metadata says {channels}")
        if channels <= 0:
            raise FormatError(f"num_channels must be positive or -1, got {channels}")
        for name, index in self.channel_to_index_map.items():
            if index < 0:
                raise FormatError(f"channel_to_index_map: {name!r} -> negative index {index}")
        for name, index in self.label_to_index_map.items():
            if not 0 <= index < self.output_dim:
                raise FormatError(
                    f"label_to_index_map: {name!r} -> {index} outside [0, {self.output_dim})"
                )

    def to_textproto(self) -> str:
        """The ``metadata.textproto`` text, in the layout the AutoDL formatting tools write."""
        lines = [
            f"is_sequence: {_bool(self.is_sequence)}",
            f"sample_count: {self.sample_count}",
            f"sequence_size: {self.sequence_size}",
            f"output_dim: {self.output_dim}",
        ]
        for spec in self.matrix_spec:
            lines += [
                "matrix_spec {",
                f"  col_count: {spec.col_count}",
                f"  row_count: {spec.row_count}",
                f"  num_channels: {spec.num_channels}",
                f"  is_sequence_col: {_bool(spec.is_sequence_col)}",
                f"  is_sequence_row: {_bool(spec.is_sequence_row)}",
                f"  has_locality_col: {_bool(spec.has_locality_col)}",
                f"  has_locality_row: {_bool(spec.has_locality_row)}",
                f"  format: {spec.format}",
            ]
            lines += ["  is_sparse: true"] if spec.is_sparse else []
            lines += ["}"]
        for map_name in ("label_to_index_map", "feature_to_index_map", "channel_to_index_map"):
            for key, value in sorted(getattr(self, map_name).items(), key=lambda kv: kv[1]):
                lines += [f"{map_name} {{", f"  key: {quote(key)}", f"  value: {value}", "}"]
        return "\n".join(lines) + "\n"


def token_vocabulary(metadata) -> int:
    """The vocabulary size of a text dataset (token ids in ``[0, size)``), 0 for other data;
    through the starting kit's accessors only, so the kit's TensorFlow metadata works too.

    Text has a ``channel_to_index_map`` and 1 x 1 frames, each frame one token: DENSE with one
    channel holding the id (the AutoNLP formatter's layout; a vocabulary of at least 2 tokens,
    so that a single named channel is no vocabulary), or SPARSE one-hot entries whose channel
    is the id (the final starting kit reads any 1 x 1 sparse data as text). A map naming the
    channels of other data (as many entries as channels, DENSE) is no vocabulary.
    """
    mapping = dict(metadata.get_channel_to_index_map())
    rows, cols, channels = metadata.get_tensor_size()
    size = max(mapping.values(), default=-1) + 1
    if not mapping or (rows, cols) != (1, 1) or metadata.is_compressed():
        return 0
    if metadata.is_sparse() or (channels == 1 and size > 1):
        return size
    return 0


def _bool(value: bool) -> str:
    """Text-format boolean."""
    return "true" if value else "false"


def _as_message(value: Scalar | TextMessage, name: str) -> TextMessage:
    """A nested message value, or ``FormatError`` when a scalar stands there."""
    if isinstance(value, Scalar):
        raise FormatError(f"line {value.line}: field {name!r} must be a message {{...}}")
    return value


def _as_scalar(value: Scalar | TextMessage, name: str) -> Scalar:
    """A scalar value, or ``FormatError`` when a message stands there."""
    if not isinstance(value, Scalar):
        raise FormatError(f"field {name!r} must be a scalar, not a message")
    return value


def _to_int(value: Scalar, name: str) -> int:
    """An int32 field value."""
    try:
        number = int(value.text, 0) if value.kind == "number" else None
    except ValueError:
        number = None
    if number is None:
        raise FormatError(f"line {value.line}: {name} must be an integer, got {value.text!r}")
    if not -(2**31) <= number < 2**31:
        raise FormatError(f"line {value.line}: {name} = {number} is out of int32 range")
    return number


def _to_bool(value: Scalar, name: str) -> bool:
    """A bool field value (true/false/t/f/1/0, as protobuf's text parser accepts)."""
    text = value.text.lower() if value.kind == "ident" else value.text
    if text in ("true", "t", "1"):
        return True
    if text in ("false", "f", "0"):
        return False
    raise FormatError(f"line {value.line}: {name} must be true or false, got {value.text!r}")


def _to_format(value: Scalar, name: str) -> str:
    """A ``MatrixSpec.Format`` enum value, by name or number."""
    if value.kind == "ident" and value.text in FORMATS:
        return value.text
    if value.kind == "number" and value.text in ("0", "1", "2"):
        return FORMATS[int(value.text)]
    raise FormatError(f"line {value.line}: {name} must be one of {FORMATS}, got {value.text!r}")


def _to_map(entries: list[Scalar | TextMessage], name: str) -> dict[str, int]:
    """A ``map<string, int32>`` from its ``{key: 'k' value: v}`` entries (later keys win)."""
    result: dict[str, int] = {}
    for entry in entries:
        message = _as_message(entry, name)
        unknown = set(message) - {"key", "value"}
        if unknown:
            raise FormatError(f"{name}: unknown entry field(s) {sorted(unknown)}")
        keys, values = message.get("key", []), message.get("value", [])
        key = _as_scalar(keys[-1], f"{name}.key") if keys else Scalar("string", "", 0)
        if key.kind != "string":
            raise FormatError(f"line {key.line}: {name}.key must be a quoted string")
        value = _to_int(_as_scalar(values[-1], f"{name}.value"), f"{name}.value") if values else 0
        result[key.text] = value
    return result


_MATRIX_FIELDS = {
    "col_count": _to_int,
    "row_count": _to_int,
    "num_channels": _to_int,
    "is_sequence_col": _to_bool,
    "is_sequence_row": _to_bool,
    "has_locality_col": _to_bool,
    "has_locality_row": _to_bool,
    "is_sparse": _to_bool,
    "format": _to_format,
}
_SPEC_FIELDS = {
    "is_sequence": _to_bool,
    "output_dim": _to_int,
    "sequence_size": _to_int,
    "sample_count": _to_int,
    "label_to_index_map": _to_map,
    "feature_to_index_map": _to_map,
    "channel_to_index_map": _to_map,
    "matrix_spec": None,  # None: handled by the caller
}


def _convert_fields(message: TextMessage, schema: dict, type_name: str) -> dict:
    """Typed keyword arguments from a parsed message; unknown fields are errors (as protobuf).

    A singular field given twice keeps its last value (protobuf's ``text_format.Merge``).
    """
    unknown = set(message) - set(schema)
    if unknown:
        raise FormatError(f"{type_name} has no field(s) {sorted(unknown)}")
    kwargs = {}
    for name, values in message.items():
        convert = schema[name]
        if convert is None:
            continue
        if convert is _to_map:
            kwargs[name] = _to_map(values, name)
        else:
            kwargs[name] = convert(_as_scalar(values[-1], name), name)
    return kwargs


def read_metadata(path: str | os.PathLike[str], dataset_name: str = "") -> AutoDLMetadata:
    """Read and validate a ``metadata.textproto``; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot read metadata: {exc}") from None
    try:
        return AutoDLMetadata.from_textproto(text, dataset_name=dataset_name or str(path.parent))
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None


# ---- records -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # arrays: compare fields with numpy, not ==
class Example:
    """One decoded record: its ``id``, the 4-D example and its labels (None when unlabelled)."""

    id: int | None
    x: np.ndarray  # float32 (T, H, W, C)
    labels: np.ndarray | None  # float32 (output_dim,): label_score at each label_index


def decode_image(data: bytes, num_channels: int, convert: bool = False) -> np.ndarray:
    """Decode a PNG/JPEG (any Pillow format) into float32 (H, W, C) in [0, 1].

    A channel count other than ``num_channels`` is a ``FormatError`` unless ``convert``, which
    converts as TensorFlow's ``decode_image(channels=...)`` does (grey <-> RGB, alpha dropped);
    colour-to-grey uses Pillow's ITU-R 601-2 luma, which may differ from libjpeg's by 1/255.
    """
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise FormatError(f"cannot decode image: {exc}") from None
    native = MODE_CHANNELS.get(image.mode)
    if native is None:
        raise FormatError(f"unsupported image mode {image.mode!r} ({image.format}): 8-bit only")
    if native != num_channels and not convert:
        raise FormatError(
            f"{image.format} image has {native} channel(s) (mode {image.mode}) but the metadata "
            f"says num_channels: {num_channels}"
        )
    mode = CHANNEL_MODE[num_channels]
    if image.mode != mode:
        image = image.convert(mode)
    pixels = np.asarray(image, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels.astype(np.float32) * INV_255


def _frames(lists: dict, key: str, fmt: str, dtype: type | None = None) -> list | np.ndarray:
    """The per-frame features under ``key``: byte-string lists, or arrays of ``dtype`` (float
    frames of one length may come as one (frames, length) array: ``uniform_float_frames``)."""
    if key not in lists:
        raise FormatError(
            f"no feature list {key!r} (metadata format {fmt}); "
            f"the record has {sorted(lists) or 'none'}"
        )
    frames = lists[key]
    expected = "bytes" if dtype is None else np.dtype(dtype).name
    if isinstance(frames, np.ndarray):  # the uniform float fast path
        if dtype is not np.float32:
            raise FormatError(f"feature list {key!r} must hold {expected} values in every frame")
        return frames
    for feature in frames:
        if dtype is None:
            ok = isinstance(feature, list)
        else:
            ok = isinstance(feature, np.ndarray) and feature.dtype == dtype
        if not ok:
            raise FormatError(f"feature list {key!r} must hold {expected} values in every frame")
    return frames


def _decode_compressed(lists: dict, meta: AutoDLMetadata, convert: bool) -> np.ndarray:
    """Frames of encoded images -> (T, H, W, C); every image of one example has one size."""
    images = [b for frame in _frames(lists, "0_compressed", "COMPRESSED") for b in frame]
    if not images:
        raise FormatError("example has no frames")
    channels = meta.get_num_channels()
    decoded = [
        decode_image(b, channels, convert or meta.matrix_spec[0].num_channels == -1) for b in images
    ]
    rows, cols = meta.get_matrix_size()
    for t, image in enumerate(decoded):
        if image.shape != decoded[0].shape:
            raise FormatError(
                f"frame {t} is {image.shape[:2]} but frame 0 is "
                f"{decoded[0].shape[:2]}: frames of one example must agree"
            )
        if (rows > 0 and image.shape[0] != rows) or (cols > 0 and image.shape[1] != cols):
            raise FormatError(
                f"frame {t} is {image.shape[0]}x{image.shape[1]} but the metadata says "
                f"row_count {rows}, col_count {cols}"
            )
    return np.stack(decoded)


def _decode_dense(lists: dict, meta: AutoDLMetadata) -> np.ndarray:
    """Frames of row-major (row, col, channel) floats -> (T, H, W, C); T is the record's own
    frame count (``sequence_size`` -1: variable length), H, W, C must be fixed."""
    rows, cols, channels = meta.get_tensor_size()
    if rows <= 0 or cols <= 0:
        raise FormatError(f"dense data needs a fixed row_count and col_count, got {rows}x{cols}")
    frames = _frames(lists, "0_dense_input", "DENSE", np.float32)
    if not len(frames):
        raise FormatError("example has no frames")
    size = rows * cols * channels
    uniform = isinstance(frames, np.ndarray)  # one length: the first frame stands for all
    for t, frame in enumerate(frames[:1] if uniform else frames):
        if frame.size != size:
            raise FormatError(
                f"dense frame {t} has {frame.size} values, expected "
                f"{rows}*{cols}*{channels} = {size}"
            )
    x = (frames if uniform else np.stack(frames)).reshape(len(frames), rows, cols, channels)
    if meta.is_token_sequence():
        _check_token_ids(x.ravel(), meta.vocabulary_size())
    return x


def _check_token_ids(ids: np.ndarray, vocabulary_size: int) -> None:
    """Token ids must be integers in ``[0, vocabulary_size)`` (the ``channel_to_index_map``)."""
    bad = ids[(ids != np.round(ids)) | (ids < 0) | (ids >= vocabulary_size)]
    if bad.size:
        raise FormatError(
            f"token id {float(bad[0])!r} is not an index of the vocabulary "
            f"(channel_to_index_map: {vocabulary_size} entries)"
        )


def _sparse_frames(lists: dict) -> list[tuple[np.ndarray, ...]]:
    """(row, col, channel, value) arrays of each sparse frame, lengths checked.

    A missing ``0_sparse_channel_index`` means channel 0 (datasets formatted before channels).
    """
    row_key, col_key, channel_key, value_key = SPARSE_KEYS
    row_f = _frames(lists, row_key, "SPARSE", np.int64)
    col_f = _frames(lists, col_key, "SPARSE", np.int64)
    val_f = _frames(lists, value_key, "SPARSE", np.float32)
    if channel_key in lists:
        ch_f = _frames(lists, channel_key, "SPARSE", np.int64)
    else:
        ch_f = [np.zeros_like(r) for r in row_f]
    if not len(row_f) == len(col_f) == len(val_f) == len(ch_f):
        raise FormatError("sparse feature lists have different numbers of frames")
    frames = list(zip(row_f, col_f, ch_f, val_f, strict=True))
    for t, (r, c, ch, v) in enumerate(frames):
        if not r.size == c.size == ch.size == v.size:
            raise FormatError(f"sparse frame {t}: index and value lists differ in length")
        for name, idx in (("row", r), ("col", c), ("channel", ch)):
            if idx.size and idx.min() < 0:
                raise FormatError(f"sparse frame {t}: negative {name} index {int(idx.min())}")
    return frames


def _decode_sparse(lists: dict, meta: AutoDLMetadata) -> np.ndarray:
    """Frames of (row, col, channel, value) entries -> dense (T, H, W, C).

    A size fixed by the metadata is used as is (an entry beyond it is an error); a size that
    varies (<= 0) is the record's own: T its frame count, H (W) its largest row (col) index
    plus one, 1 when it has no entry. Token sequences (``is_token_sequence``) read as the
    final starting kit reads sparse text: the channel indices of all entries in storage order,
    as (N, 1, 1, 1) token ids.
    """
    frames = _sparse_frames(lists)
    if meta.is_token_sequence():
        ids = np.concatenate([ch for _, _, ch, _ in frames] or [np.zeros(0, np.int64)])
        if not ids.size:
            raise FormatError("text example has no token")
        _check_token_ids(ids, meta.vocabulary_size())
        return ids.astype(np.float32).reshape(-1, 1, 1, 1)
    declared = (meta.get_sequence_size(), *meta.get_tensor_size())
    last_frame = max((t for t, f in enumerate(frames) if f[0].size), default=-1)
    found = (
        len(frames) if declared[0] <= 0 else last_frame + 1,
        *(1 + max((int(f[k].max()) for f in frames if f[k].size), default=0) for k in range(3)),
    )
    shape = tuple(d if d > 0 else n for d, n in zip(declared, found, strict=True))
    for name, d, n in zip(("frame", "row", "col", "channel"), shape, found, strict=True):
        if n > d:
            raise FormatError(f"sparse {name} index {n - 1} outside [0, {d})")
    if math.prod(shape) > MAX_DENSE_VALUES:
        raise FormatError(
            f"sparse example of shape {shape} would densify to {math.prod(shape)} values "
            f"(limit {MAX_DENSE_VALUES}): corrupt indices or sizes"
        )
    x = np.zeros(shape, dtype=np.float32)
    for t, (r, c, ch, v) in enumerate(frames):
        if r.size:
            x[t, r, c, ch] = v
    return x


def _decode_labels(context: dict, output_dim: int) -> np.ndarray | None:
    """Dense labels: ``label_score`` (1 where absent) at each ``label_index``; None if none."""
    index = context.get("label_index")
    if index is None or len(index) == 0:
        return None
    if not isinstance(index, np.ndarray) or index.dtype != np.int64:
        raise FormatError("context feature 'label_index' must hold int64 values")
    score = context.get("label_score")
    if score is None or len(score) == 0:
        score = np.ones(len(index), np.float32)
    elif not isinstance(score, np.ndarray) or score.dtype != np.float32:
        raise FormatError("context feature 'label_score' must hold float values")
    elif len(score) != len(index):
        raise FormatError(f"{len(index)} label_index values but {len(score)} label_score values")
    bad = index[(index < 0) | (index >= output_dim)]
    if bad.size:
        raise FormatError(f"label index {int(bad[0])} outside [0, output_dim={output_dim})")
    labels = np.zeros(output_dim, dtype=np.float32)
    labels[index] = score
    return labels


def decode_example(record: bytes, meta: AutoDLMetadata, convert_channels: bool = False) -> Example:
    """Decode one serialized SequenceExample of a split described by ``meta``."""
    parsed = decode_sequence_example(record)
    ids = parsed.context.get("id")
    example_id = int(ids[0]) if isinstance(ids, np.ndarray) and ids.size else None
    fmt = meta.matrix_spec[0].format
    if fmt == "COMPRESSED":
        x = _decode_compressed(parsed.feature_lists, meta, convert_channels)
    elif fmt == "DENSE":
        x = _decode_dense(parsed.feature_lists, meta)
    else:
        x = _decode_sparse(parsed.feature_lists, meta)
    return Example(example_id, x, _decode_labels(parsed.context, meta.output_dim))


class AutoDLDataset:
    """One split (``<name>.data/train`` or ``/test``): metadata plus indexed, checked records.

    Construction reads the metadata, indexes the ``sample*`` files (sorted by name; the kit
    interleaves several shards, we concatenate them) from their headers and checks the record
    count against ``sample_count``. Records are decoded lazily, each data CRC checked when
    ``verify_crc``. Iterating yields ``(x, labels)``: x float32 (T, H, W, C), labels float32
    (output_dim,) or None for an unlabelled (test) record. ``convert_channels`` converts images
    whose channel count differs from an explicit ``num_channels`` instead of failing.
    """

    def __init__(
        self,
        path_to_split: str | os.PathLike[str],
        *,
        verify_crc: bool = True,
        convert_channels: bool = False,
    ) -> None:
        self.path = Path(path_to_split)
        if not self.path.is_dir():
            raise FormatError(f"{self.path}: not a directory (expected <name>.data/<split>)")
        self.metadata = read_metadata(self.path / "metadata.textproto", str(self.path))
        self.files = sorted(p for p in self.path.glob("sample*") if p.is_file())
        if not self.files:
            raise FormatError(f"{self.path}: no sample* TFRecord file")
        self.verify_crc = verify_crc
        self.convert_channels = convert_channels
        self._spans: list[RecordSpan] = [s for f in self.files for s in scan_records(f)]
        if len(self._spans) != self.metadata.size():
            raise FormatError(
                f"{self.path}: metadata.textproto says sample_count: {self.metadata.size()} but "
                f"{len(self._spans)} records were found in {', '.join(f.name for f in self.files)}"
            )

    def __repr__(self) -> str:
        return f"AutoDLDataset({str(self.path)!r}, {len(self)} examples)"

    def get_metadata(self) -> AutoDLMetadata:
        """The split's metadata (the starting kit's accessor)."""
        return self.metadata

    def get_class_labels(self) -> list[str | None]:
        """Class names by column (the starting kit's accessor)."""
        return self.metadata.class_names()

    def __len__(self) -> int:
        return len(self._spans)

    def _decode(self, span: RecordSpan, record: bytes) -> Example:
        """Decode a record, prefixing errors with its file, index and offset."""
        try:
            return decode_example(record, self.metadata, self.convert_channels)
        except FormatError as exc:
            raise FormatError(f"{span.where()}: {exc}") from None

    def example(self, index: int) -> Example:
        """Random access to record ``index`` (negative indices count from the end)."""
        span = self._spans[index]
        with span.path.open("rb") as f:
            return self._decode(span, read_span(f, span, self.verify_crc))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        example = self.example(index)
        return example.x, example.labels

    def iter_examples(self) -> Iterator[Example]:
        """Every record in order, decoded (one open file handle per shard)."""
        for path in self.files:
            with path.open("rb") as f:
                for span in (s for s in self._spans if s.path == path):
                    yield self._decode(span, read_span(f, span, self.verify_crc))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for example in self.iter_examples():
            yield example.x, example.labels


# ---- whole datasets ------------------------------------------------------------------------
def read_solution(path: str | os.PathLike[str]) -> np.ndarray:
    """A ``.solution`` file: whitespace-separated numbers, one row per example -> float (N, C)."""
    path = Path(path)
    try:
        solution = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: cannot read solution: {exc}") from None
    return solution


class LoadedDataset(NamedTuple):
    """``load_dataset``'s result: unpacks as ``train, test, test_solution``."""

    train: AutoDLDataset
    test: AutoDLDataset
    test_solution: np.ndarray | None  # (n_test, output_dim); None when no .solution file


def load_dataset(dataset_dir: str | os.PathLike[str], **options: bool) -> LoadedDataset:
    """Open ``<name>/`` (holding ``<name>.data/`` and maybe ``<name>.solution``).

    Checks that both splits agree on ``output_dim``, ``matrix_spec`` and the vocabulary and
    that the solution has one row per test record and one column per class. ``options`` go to
    ``AutoDLDataset``.
    """
    root = Path(dataset_dir)
    data_dirs = sorted(p for p in root.glob("*.data") if p.is_dir())
    if len(data_dirs) != 1:
        raise FormatError(f"{root}: expected one <name>.data directory, found {len(data_dirs)}")
    name = data_dirs[0].name[: -len(".data")]
    train = AutoDLDataset(data_dirs[0] / "train", **options)
    test = AutoDLDataset(data_dirs[0] / "test", **options)
    describe = {  # what differs, shortly: the vocabulary by its size
        "output_dim": str,
        "matrix_spec": lambda specs: ", ".join(map(repr, specs)),
        "channel_to_index_map": lambda vocabulary: f"{len(vocabulary)} tokens",
    }
    for field_name, show in describe.items():
        ours, theirs = getattr(train.metadata, field_name), getattr(test.metadata, field_name)
        if ours != theirs:  # both splits are decoded alike: their layouts must agree
            raise FormatError(
                f"{root}: {field_name} is {show(ours)} in train but {show(theirs)} in test"
            )
    classes = train.metadata.get_output_size()
    solution_path = root / f"{name}.solution"
    solution = read_solution(solution_path) if solution_path.is_file() else None
    if solution is not None and solution.shape != (len(test), classes):
        raise FormatError(
            f"{solution_path}: shape {solution.shape} but the test split has "
            f"{len(test)} records and {classes} classes"
        )
    return LoadedDataset(train, test, solution)


# ---- fixed-size batches for training -------------------------------------------------------
def fit_example(x: np.ndarray, image_size: tuple[int, int], sequence_size: int) -> np.ndarray:
    """Bring a (T, H, W, C) example to (sequence_size, *image_size, C).

    Policy: frames of another size are resized with Pillow's bilinear filter (antialiased when
    shrinking, aspect ratio not kept); the time axis is cut or zero-padded at the end (the
    starting kit's ``enforce_sequence_size``).
    """
    height, width = image_size
    if x.shape[1:3] != (height, width):
        resized = np.empty((x.shape[0], height, width, x.shape[3]), dtype=np.float32)
        for t in range(x.shape[0]):
            for c in range(x.shape[3]):
                plane = Image.fromarray(np.ascontiguousarray(x[t, :, :, c], dtype=np.float32))
                resized[t, :, :, c] = np.asarray(
                    plane.resize((width, height), Image.Resampling.BILINEAR)
                )
        x = resized
    if x.shape[0] >= sequence_size:
        return x[:sequence_size]
    pad = np.zeros((sequence_size - x.shape[0], *x.shape[1:]), dtype=np.float32)
    return np.concatenate([x, pad])


def iterate_batches(
    dataset: AutoDLDataset,
    batch_size: int,
    *,
    image_size: tuple[int, int] | None = None,
    sequence_size: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Batches ``(x (B, T, H, W, C) float32, labels (B, output_dim) or None)`` of ``dataset``.

    ``image_size`` (H, W) defaults to the metadata's fixed size and is required when sizes
    vary; ``sequence_size`` defaults to the metadata's. Every example goes through
    ``fit_example``. ``shuffle`` draws one permutation from ``seed`` (required); labels are
    None for a batch of unlabelled records, and a batch mixing both is a ``FormatError``.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    rows, cols = dataset.metadata.get_matrix_size()
    if image_size is None:
        if rows <= 0 or cols <= 0:
            raise ValueError(f"{dataset.path}: image sizes vary; pass image_size=(H, W)")
        image_size = (rows, cols)
    steps = sequence_size or max(dataset.metadata.get_sequence_size(), 1)
    if shuffle:
        if seed is None:
            raise ValueError("shuffle=True needs an explicit seed")
        order = np.random.default_rng(seed).permutation(len(dataset)).tolist()
    else:
        order = list(range(len(dataset)))
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    for start in range(0, stop, batch_size):
        examples = [dataset.example(i) for i in order[start : start + batch_size]]
        x = np.stack([fit_example(e.x, image_size, steps) for e in examples])
        labelled = [e.labels is not None for e in examples]
        if any(labelled) and not all(labelled):
            raise FormatError(f"{dataset.path}: a batch mixes labelled and unlabelled records")
        labels = np.stack([e.labels for e in examples]) if all(labelled) else None
        yield x, labels


__all__ = [
    "CHANNEL_MODE",
    "FORMATS",
    "INV_255",
    "MAX_DENSE_VALUES",
    "MODE_CHANNELS",
    "SPARSE_KEYS",
    "AutoDLDataset",
    "AutoDLMetadata",
    "Example",
    "LoadedDataset",
    "MatrixSpec",
    "decode_example",
    "decode_image",
    "fit_example",
    "iterate_batches",
    "load_dataset",
    "read_metadata",
    "read_solution",
    "token_vocabulary",
]
