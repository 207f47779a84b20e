"""Just enough protocol buffers for AutoDL data: ``tf.train.SequenceExample`` and text format.

Why not the ``protobuf`` package: it would need the compiled descriptors of TensorFlow's
``example.proto``/``feature.proto`` and of AutoDL's ``data.proto`` (generated code tied to a
protobuf version), while the AutoDL format uses a handful of fields. A ~200-line decoder of the
wire format and of the text format is smaller, has no version coupling, and gives errors that
say which byte is wrong.

Wire-format facts used (TensorFlow ``feature.proto`` / ``example.proto``)::

    SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }
    Features        { map<string, Feature> feature = 1; }
    FeatureLists    { map<string, FeatureList> feature_list = 1; }
    FeatureList     { repeated Feature feature = 1; }
    Feature         { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                                   Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
    Int64List { repeated int64 value = 1 [packed]; }

A map entry is a message ``{key = 1; value = 2}``. Decoding follows protobuf's rules: unknown
fields are skipped, repeated scalars are accepted packed or not, a later map key or oneof
member wins, and a repeated singular message field merges.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from autodl.errors import FormatError

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5

# A decoded ``tf.train.Feature``: a list of byte strings, a float32 array or an int64 array;
# ``None`` for a Feature whose kind is not set.
Feature = list[bytes] | np.ndarray | None


# ---- wire format: decoding ---------------------------------------------------------------------
def read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode the base-128 varint at ``pos``; returns (value, position after it)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise FormatError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise FormatError(f"varint longer than 10 bytes ending at byte {pos}")


def iter_fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """The (field number, wire type, value) triples of one message; LEN values as views."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise FormatError(f"field number 0 at byte {pos}")
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if pos + size > len(buf):
                raise FormatError(f"truncated fixed-size field {number} at byte {pos}")
            value = int.from_bytes(buf[pos : pos + size], "little")
            pos += size
        elif wire == LEN:
            size, pos = read_varint(buf, pos)
            if pos + size > len(buf):
                raise FormatError(
                    f"field {number}: length {size} at byte {pos} overruns the message "
                    f"({len(buf) - pos} bytes left)"
                )
            value = buf[pos : pos + size]
            pos += size
        else:
            raise FormatError(f"unsupported wire type {wire} (field {number}) at byte {pos}")
        yield number, wire, value


def _packed_varints(view: memoryview) -> list[int]:
    """All varints of a packed repeated field."""
    values, pos = [], 0
    while pos < len(view):
        value, pos = read_varint(view, pos)
        values.append(value)
    return values


def _to_int64(value: int) -> int:
    """Reinterpret an unsigned 64-bit varint as a signed int64 (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_bytes_list(buf: memoryview) -> list[bytes]:
    """A ``BytesList`` message."""
    return [bytes(v) for n, w, v in iter_fields(buf) if n == 1 and w == LEN]


def _decode_float_list(buf: memoryview) -> np.ndarray:
    """A ``FloatList`` message (packed or not) as float32."""
    parts: list[np.ndarray] = []
    for number, wire, value in iter_fields(buf):
        if number != 1:
            continue
        if wire == LEN:
            if len(value) % 4:
                raise FormatError(f"packed float list of {len(value)} bytes (not a multiple of 4)")
            parts.append(np.frombuffer(value, dtype="<f4"))
        elif wire == FIXED32:
            parts.append(np.frombuffer(struct.pack("<I", value), dtype="<f4"))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _decode_int64_list(buf: memoryview) -> np.ndarray:
    """An ``Int64List`` message (packed or not) as int64."""
    values: list[int] = []
    for number, wire, value in iter_fields(buf):
        if number != 1:
            continue
        if wire == LEN:
            values.extend(_packed_varints(value))
        elif wire == VARINT:
            values.append(value)
    return np.array([_to_int64(v) for v in values], dtype=np.int64)


_KIND_DECODERS = {1: _decode_bytes_list, 2: _decode_float_list, 3: _decode_int64_list}


def decode_feature(buf: memoryview) -> Feature:
    """A ``tf.train.Feature``: the value of its (last) set kind, ``None`` when none is set."""
    result: Feature = None
    for number, wire, value in iter_fields(buf):
        if number in _KIND_DECODERS and wire == LEN:
            result = _KIND_DECODERS[number](value)
    return result


def _map_entries(buf: memoryview) -> Iterator[tuple[str, memoryview]]:
    """(key, value bytes) of the map entries (field 1) of a Features/FeatureLists message."""
    for number, wire, entry in iter_fields(buf):
        if number != 1 or wire != LEN:
            continue
        key, value = "", memoryview(b"")
        for n, w, v in iter_fields(entry):
            if n == 1 and w == LEN:
                try:
                    key = bytes(v).decode("utf-8")
                except UnicodeDecodeError:
                    raise FormatError(f"feature name {bytes(v)!r} is not UTF-8") from None
            elif n == 2 and w == LEN:
                value = v
        yield key, value


@dataclass
class SequenceExample:
    """A decoded ``tf.train.SequenceExample``: context features and per-frame feature lists."""

    context: dict[str, Feature] = field(default_factory=dict)
    # per key, the frames' features; frames that are all float lists of one length come as one
    # (frames, length) float32 array (``uniform_float_frames``), whose rows are the frames
    feature_lists: dict[str, list[Feature] | np.ndarray] = field(default_factory=dict)


def uniform_float_frames(flist: memoryview) -> np.ndarray | None:
    """Fast path of a ``FeatureList`` whose frames are all packed float lists of one length:
    (frames, length) float32, or None when it is not exactly that (the generic decoder then
    reads it). Each frame must be encoded byte for byte like the first, ``0a L1 12 L2 0a L3``
    and L3 bytes of floats, so that the generic decoder would give the same values: one numpy
    pass instead of a Python loop per frame (speech: one frame per sample)."""
    try:
        sizes, tags, pos = [], [], 0
        for tag in (0x0A, 0x12, 0x0A):  # FeatureList.feature, Feature.float_list, packed value
            if pos >= len(flist) or flist[pos] != tag:
                return None
            tags.append(pos)
            size, pos = read_varint(flist, pos + 1)
            sizes.append(size)
    except FormatError:
        return None
    stride = pos + sizes[2]  # one frame: the three headers and its floats
    if sizes[2] % 4 or len(flist) % stride:
        return None
    if sizes[0] != stride - tags[1] or sizes[1] != stride - tags[2]:
        return None
    start = pos
    rows = np.frombuffer(flist, dtype=np.uint8).reshape(-1, stride)
    if not (rows[:, :start] == rows[0, :start]).all():
        return None
    return np.ascontiguousarray(rows[:, start:]).view("<f4").astype(np.float32)


def decode_sequence_example(data: bytes | memoryview) -> SequenceExample:
    """Parse a serialized ``tf.train.SequenceExample``; raises ``FormatError`` when malformed."""
    example = SequenceExample()
    for number, wire, value in iter_fields(memoryview(data)):
        if wire != LEN:
            continue
        if number == 1:
            for key, feature in _map_entries(value):
                example.context[key] = decode_feature(feature)
        elif number == 2:
            for key, flist in _map_entries(value):
                frames = uniform_float_frames(flist)
                example.feature_lists[key] = (
                    frames
                    if frames is not None
                    else [
                        decode_feature(v) for n, w, v in iter_fields(flist) if n == 1 and w == LEN
                    ]
                )
    return example


# ---- wire format: encoding ---------------------------------------------------------------------
def encode_varint(value: int) -> bytes:
    """Base-128 varint of a non-negative int below 2**64."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return encode_varint(number << 3 | LEN) + encode_varint(len(payload)) + payload


def encode_feature(value: list[bytes] | np.ndarray) -> bytes:
    """A ``tf.train.Feature``: byte strings -> bytes_list, floats -> float_list (packed),
    integers -> int64_list (packed). Empty numpy arrays keep their kind from their dtype."""
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.floating):
            packed = np.ascontiguousarray(value, dtype="<f4").tobytes()
            return _len_field(2, _len_field(1, packed) if packed else b"")
        if np.issubdtype(value.dtype, np.integer):
            packed = b"".join(encode_varint(int(v) % (1 << 64)) for v in value.ravel())
            return _len_field(3, _len_field(1, packed) if packed else b"")
        raise ValueError(f"cannot encode a feature of dtype {value.dtype}")
    return _len_field(1, b"".join(_len_field(1, bytes(v)) for v in value))


def _encode_map(entries: dict[str, bytes]) -> bytes:
    """A Features/FeatureLists message from already encoded values."""
    return b"".join(
        _len_field(1, _len_field(1, key.encode("utf-8")) + _len_field(2, value))
        for key, value in entries.items()
    )


def encode_sequence_example(
    context: dict[str, list[bytes] | np.ndarray],
    feature_lists: dict[str, list[list[bytes] | np.ndarray]],
) -> bytes:
    """Serialize a ``tf.train.SequenceExample`` (fields in the given order)."""
    ctx = _encode_map({k: encode_feature(v) for k, v in context.items()})
    lists = _encode_map(
        {
            k: b"".join(_len_field(1, encode_feature(f)) for f in frames)
            for k, frames in feature_lists.items()
        }
    )
    return _len_field(1, ctx) + _len_field(2, lists)


# ---- text format ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Scalar:
    """A scalar of a text-format message: ``kind`` is 'string', 'ident' or 'number'."""

    kind: str
    text: str
    line: int


TextMessage = dict[str, list[Union[Scalar, "TextMessage"]]]  # recursive: needs Union

_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\f\v]+)|(?P<newline>\n)|(?P<comment>\#[^\n]*)
    |(?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
    |(?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?)
    |(?P<ident>[-]?[A-Za-z_][A-Za-z0-9_.]*)|(?P<punct>[{}<>\[\]:,;])""",
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)")
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


def _unescape(body: str) -> str:
    """Decode C-style escapes of a text-format string (bytes escapes read as UTF-8)."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "x":
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        if code in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[code]
        raise FormatError(f"unknown escape \\{code}")

    raw = _ESCAPE.sub(one, body)
    try:  # \x and octal escapes denote bytes: re-read them as UTF-8 when they form valid text
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) tokens of a text-format message, comments dropped."""
    tokens, pos, line = [], 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise FormatError(f"line {line}: unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        if kind == "newline":
            line += 1
        elif kind not in ("space", "comment"):
            tokens.append((kind, match.group(), line))
        pos = match.end()
    return tokens


def parse_text_format(text: str) -> TextMessage:
    """Parse a protobuf text-format message into ``{field: [Scalar | nested message, ...]}``.

    Schema-free: values stay tokens (kind + text) for the caller to type-check. Supports
    ``name: value``, ``name { ... }`` / ``name < ... >`` (optional colon), ``name: [a, b]``,
    ``#`` comments, quoted strings with C escapes, and optional ``,``/``;`` separators.
    """
    tokens = _tokenize(text)
    pos = 0

    def expect(value: str) -> None:
        nonlocal pos
        if pos >= len(tokens) or tokens[pos][1] != value:
            found = f"{tokens[pos][1]!r} on line {tokens[pos][2]}" if pos < len(tokens) else "end"
            raise FormatError(f"expected {value!r} but found {found}")
        pos += 1

    def scalar() -> Scalar:
        nonlocal pos
        if pos >= len(tokens):
            raise FormatError("unexpected end of text: a value is missing")
        kind, tok, line = tokens[pos]
        if kind not in ("string", "number", "ident"):
            raise FormatError(f"line {line}: expected a value but found {tok!r}")
        pos += 1
        if kind == "string":  # adjacent string literals concatenate
            parts = [_unescape(tok[1:-1])]
            while pos < len(tokens) and tokens[pos][0] == "string":
                parts.append(_unescape(tokens[pos][1][1:-1]))
                pos += 1
            return Scalar("string", "".join(parts), line)
        return Scalar(kind, tok, line)

    def message(close: str | None) -> TextMessage:
        nonlocal pos
        fields: TextMessage = {}
        while pos < len(tokens) and tokens[pos][1] != close:
            kind, name, line = tokens[pos]
            if kind != "ident":
                raise FormatError(f"line {line}: expected a field name but found {name!r}")
            pos += 1
            colon = pos < len(tokens) and tokens[pos][1] == ":"
            pos += colon
            values = fields.setdefault(name, [])
            if pos < len(tokens) and tokens[pos][1] in ("{", "<"):
                end = "}" if tokens[pos][1] == "{" else ">"
                pos += 1
                values.append(message(end))
                expect(end)
            elif not colon:
                raise FormatError(f"line {line}: expected ':' or '{{' after field {name!r}")
            elif pos < len(tokens) and tokens[pos][1] == "[":
                pos += 1
                while pos < len(tokens) and tokens[pos][1] != "]":
                    values.append(scalar())
                    if pos < len(tokens) and tokens[pos][1] == ",":
                        pos += 1
                expect("]")
            else:
                values.append(scalar())
            if pos < len(tokens) and tokens[pos][1] in (",", ";"):
                pos += 1
        return fields

    result = message(None)
    if pos != len(tokens):
        raise FormatError(f"line {tokens[pos][2]}: unexpected {tokens[pos][1]!r}")
    return result


def quote(text: str) -> str:
    """A text-format string literal (single quotes, as the AutoDL tools write them)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"
