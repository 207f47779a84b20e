"""AutoDL data: CRC32C and TFRecord framing, protobuf wire/text format, reader, writer, CLI."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from autodl.cli import autodl_group
from autodl.dataset import (
    INV_255,
    SPARSE_KEYS,
    AutoDLDataset,
    AutoDLMetadata,
    MatrixSpec,
    decode_example,
    fit_example,
    iterate_batches,
    load_dataset,
    read_metadata,
)
from autodl.errors import FormatError
from autodl.proto import (
    decode_sequence_example,
    encode_sequence_example,
    encode_varint,
    parse_text_format,
)
from autodl.tfrecord import (
    crc32c,
    frame_record,
    iter_records,
    masked_crc32c,
    scan_records,
    write_records,
)
from autodl.writer import format_dataset, format_image_folder
from zcproxies.errors import DataError

MINICIAO_META = """is_sequence: false
sample_count: 82
sequence_size: 1
output_dim: 10
matrix_spec {
  col_count: 32
  row_count: 32
  num_channels: 3
  is_sequence_col: false
  is_sequence_row: false
  has_locality_col: true
  has_locality_row: true
  format: COMPRESSED
}
label_to_index_map {
  key: 'cat'
  value: 3
}
label_to_index_map {
  key: 'airplane'
  value: 0
}
"""


def images(n: int = 12, shape: tuple[int, ...] = (8, 6, 3), seed: int = 0) -> np.ndarray:
    """Random uint8 images (N, *shape)."""
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def read_all(root: Path) -> tuple[list, list, np.ndarray]:
    """(train examples, test examples, solution) of a dataset directory."""
    train, test, solution = load_dataset(root)
    return list(train.iter_examples()), list(test.iter_examples()), solution


# ---- CRC32C and framing --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0x00000000),
        (b"123456789", 0xE3069283),  # the CRC catalogue's check value of CRC-32C
        (bytes(32), 0x8A9136AA),  # RFC 3720 B.4 test vectors
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc32c_known_vectors(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected


@pytest.mark.parametrize("n", [1, 6143, 6144, 6145, 10_000, 65_536, 123_457])
def test_crc32c_package_matches_the_hand_written_reference(n: int) -> None:
    """The crc32c package against the former pure Python/numpy code, kept in
    benchmarks/crc32c_speed.py (byte loop below 6 KiB, lanes above); continuation too."""
    path = Path(__file__).parents[1] / "benchmarks" / "crc32c_speed.py"
    spec = importlib.util.spec_from_file_location("crc32c_speed", path)
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    assert crc32c(data) == reference.reference_crc32c(data)
    assert crc32c(data[n // 3 :], crc32c(data[: n // 3])) == crc32c(data)  # continuation


def test_masked_crc_and_frame_layout() -> None:
    crc = 0xE3069283
    assert (
        masked_crc32c(b"123456789")
        == ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
    )
    frame = frame_record(b"abc")
    assert frame[:8] == struct.pack("<Q", 3) and frame[12:15] == b"abc" and len(frame) == 19
    assert struct.unpack("<I", frame[8:12])[0] == masked_crc32c(frame[:8])
    assert struct.unpack("<I", frame[15:])[0] == masked_crc32c(b"abc")


def test_tfrecord_round_trip_and_scan(tmp_path: Path) -> None:
    records = [b"", b"x", os.urandom(7000), b"last"]
    path = tmp_path / "r.tfrecord"
    assert write_records(path, records) == 4
    assert list(iter_records(path)) == records
    spans = scan_records(path)
    assert [s.index for s in spans] == [0, 1, 2, 3] and spans[1].offset == 16
    assert path.stat().st_size == sum(len(r) + 16 for r in records)


def corrupt(path: Path, offset: int) -> None:
    """Flip every bit of the byte at ``offset``."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_tfrecord_corruptions(tmp_path: Path) -> None:
    path = tmp_path / "r.tfrecord"
    write_records(path, [b"first", b"second", b"third"])
    second = 12 + 5 + 4  # offset of record 1
    corrupt(path, second + 12 + 2)  # a data byte of record 1
    with pytest.raises(
        FormatError,
        match=re.escape(f"{path}: record 1 (byte offset {second})") + ".*data CRC mismatch",
    ):
        list(iter_records(path))
    assert list(iter_records(path, verify=False))[1] != b"second"

    write_records(path, [b"first", b"second", b"third"])
    corrupt(path, second)  # the length of record 1
    with pytest.raises(FormatError, match=r"record 1 .*length CRC mismatch"):
        scan_records(path)

    write_records(path, [b"first", b"second", b"third"])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(FormatError, match=r"record 2 .*runs past the end of the file"):
        scan_records(path)
    path.write_bytes(frame_record(b"ok") + b"\x01\x02")
    with pytest.raises(FormatError, match=r"record 1 .*truncated header \(2 of 12"):
        scan_records(path)

    huge = struct.pack("<Q", 2**63)  # a length overflowing any file, with a valid CRC
    path.write_bytes(huge + struct.pack("<I", masked_crc32c(huge)) + b"data")
    with pytest.raises(FormatError, match=r"record 0 .*runs past the end") as info:
        scan_records(path)
    assert isinstance(info.value, DataError)
    with pytest.raises(FormatError, match="cannot read"):
        scan_records(tmp_path / "missing.tfrecord")


# ---- protobuf wire and text format ---------------------------------------------------------
def test_sequence_example_round_trip() -> None:
    context = {
        "id": np.array([-5, 2**40], np.int64),
        "s": np.array([0.5, -1e30], np.float32),
        "b": [b"", b"\x00\xff"],
        "empty": np.zeros(0, np.int64),
    }
    lists = {"f": [np.arange(3, dtype=np.float32), np.zeros(0, np.float32)], "g": [[b"a", b"b"]]}
    parsed = decode_sequence_example(encode_sequence_example(context, lists))
    assert parsed.context["id"].tolist() == [-5, 2**40]
    assert parsed.context["s"].tolist() == [0.5, np.float32(-1e30)]
    assert parsed.context["b"] == [b"", b"\x00\xff"]
    assert parsed.context["empty"].dtype == np.int64 and parsed.context["empty"].size == 0
    assert [f.tolist() for f in parsed.feature_lists["f"]] == [[0, 1, 2], []]
    assert parsed.feature_lists["g"] == [[b"a", b"b"]]


def test_wire_decoding_rules() -> None:
    def field(number: int, payload: bytes) -> bytes:
        return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload

    # unpacked int64 (varint, incl. a negative) and unpacked float (fixed32)
    tag = encode_varint(1 << 3)
    ints = tag + encode_varint(7) + tag + encode_varint(2**64 - 1)
    floats = encode_varint(1 << 3 | 5) + struct.pack("<f", 2.5)
    unknown = encode_varint(9 << 3) + encode_varint(1)  # skipped
    entry = lambda key, feature: field(1, field(1, key) + field(2, feature))  # noqa: E731
    context = entry(b"a", field(3, ints)) + entry(b"b", field(2, floats)) + unknown
    parsed = decode_sequence_example(field(1, context) + unknown)
    assert parsed.context["a"].tolist() == [7, -1]
    assert parsed.context["b"].tolist() == [2.5]
    assert decode_sequence_example(field(1, entry(b"c", b""))).context["c"] is None
    with pytest.raises(FormatError, match="truncated varint"):
        decode_sequence_example(b"\x0a\x80")
    with pytest.raises(FormatError, match="overruns the message"):
        decode_sequence_example(b"\x0a\x05ab")
    with pytest.raises(FormatError, match="wire type 3"):
        decode_sequence_example(b"\x0b")


def test_text_format_parser() -> None:
    text = """# comment
    a: 1 b: -2.5e3, c: "x\\'y\\n" 'z'  # adjacent strings concatenate
    m { k: true } m < k: false > ; lst: [1, 2]
    e: COMPRESSED"""
    parsed = parse_text_format(text)
    assert [v.text for v in parsed["a"]] == ["1"] and parsed["b"][0].kind == "number"
    assert parsed["c"][0].text == "x'y\nz" and parsed["c"][0].kind == "string"
    assert [m["k"][0].text for m in parsed["m"]] == ["true", "false"]
    assert [v.text for v in parsed["lst"]] == ["1", "2"] and parsed["e"][0].kind == "ident"
    for bad, message in [
        ("a 1", "expected ':'"),
        ("a: ,", "expected a value"),
        ("a: 1 }", "expected a field name but found '}'"),
        ("m { a: 1", "expected '}'"),
        ("a: @", "unexpected character"),
    ]:
        with pytest.raises(FormatError, match=re.escape(message)):
            parse_text_format(bad)


def test_metadata_parse_and_round_trip() -> None:
    meta = AutoDLMetadata.from_textproto(MINICIAO_META, "x")
    assert meta.size() == 82 and meta.get_output_size() == 10
    assert meta.get_tensor_shape() == (1, 32, 32, 3) and meta.is_compressed()
    assert meta.get_label_to_index_map() == {"cat": 3, "airplane": 0}
    assert meta.class_names()[:4] == ["airplane", None, None, "cat"]
    assert AutoDLMetadata.from_textproto(meta.to_textproto(), "x") == meta
    unknown_channels = MINICIAO_META.replace("  num_channels: 3\n", "").replace("32", "-1")
    assert AutoDLMetadata.from_textproto(unknown_channels).get_tensor_shape() == (1, -1, -1, 3)
    dense = AutoDLMetadata.from_textproto("output_dim: 2 matrix_spec { format: DENSE }")
    assert dense.get_num_channels() == 1 and dense.get_sequence_size() == 1  # proto defaults
    twice = AutoDLMetadata.from_textproto("output_dim: 2 output_dim: 3 matrix_spec {}")
    assert twice.output_dim == 3  # a repeated singular field keeps its last value


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("is_sequence: false", "is_sequence: maybe"), "must be true or false"),
        (("format: COMPRESSED", "format: JPEG"), "format must be one of"),
        (("output_dim: 10", "output_dim: ten"), "must be an integer"),
        (("output_dim: 10", "output_dim: 0"), "output_dim must be positive"),
        (("sequence_size: 1", "sequence_length: 1"), r"no field\(s\) \['sequence_length'\]"),
        (("  num_channels: 3", "  num_channels: 5"), "need 1 to 4 channels"),
        (("value: 3", "value: 12"), "outside"),
        (("key: 'cat'", "key: cat"), "must be a quoted string"),
        (("matrix_spec {", "matrix_spec: 1\nmatrix_spec {"), "must be a message"),
    ],
)
def test_metadata_errors(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    path = tmp_path / "metadata.textproto"
    path.write_text(MINICIAO_META.replace(*edit))
    with pytest.raises(FormatError, match=f"{re.escape(str(path))}: .*{message}"):
        read_metadata(path)


# ---- writer -> reader round trips ----------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 6, 3), (5, 7, 1), (4, 4, 4), (3, 5, 6, 2)])
def test_round_trip_png(tmp_path: Path, shape: tuple[int, ...]) -> None:
    x, y = images(12, shape), np.arange(12) % 3
    root = format_dataset(
        x, y, tmp_path, "toy", classes=["a", "b", "c"], test_fraction=0.25, seed=1
    )
    train, test, solution = read_all(root)
    assert (len(train), len(test)) == (9, 3)
    test_idx, train_idx = np.split(np.random.default_rng(1).permutation(12), [3])
    frames = x if x.ndim == 5 else x[:, None]
    for examples, idx in ((train, train_idx), (test, test_idx)):
        for example, i in zip(examples, idx, strict=True):
            assert example.x.dtype == np.float32
            assert np.array_equal(example.x, frames[i].astype(np.float32) * INV_255)
    assert [e.id for e in test] == [0, 1, 2] and [e.id for e in train] == list(range(3, 12))
    assert all(e.labels is None for e in test)
    assert [int(e.labels.argmax()) for e in train] == y[train_idx].tolist()
    assert np.array_equal(solution, np.eye(3)[y[test_idx]])
    meta = load_dataset(root).train.metadata
    assert meta.get_tensor_shape() == (frames.shape[1], *shape[-3:])
    assert meta.is_sequence == (x.ndim == 5) and meta.class_names() == ["a", "b", "c"]
    assert meta.is_compressed()


def test_round_trip_dense_multilabel(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(10, 2, 3, 4, 5)).astype(np.float32)
    y = (np.random.default_rng(1).random((10, 4)) < 0.5).astype(int)
    y[:, 0] = 1 - y[:, 1:].max(axis=1)  # at least one label each
    root = format_dataset(x, y, tmp_path, "dense", test_fraction=0.3, seed=0)
    train, test, solution = read_all(root)
    test_idx, train_idx = np.split(np.random.default_rng(0).permutation(10), [3])
    assert all(np.array_equal(e.x, x[i]) for e, i in zip(train, train_idx, strict=True))
    assert all(np.array_equal(e.x, x[i]) for e, i in zip(test, test_idx, strict=True))
    assert np.array_equal(np.stack([e.labels for e in train]), y[train_idx])
    assert np.array_equal(solution, y[test_idx])
    meta = load_dataset(root).test.metadata
    assert meta.matrix_spec[0].format == "DENSE" and meta.get_tensor_shape() == (2, 3, 4, 5)


def test_round_trip_varying_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = [
        rng.integers(
            0,
            256,
            (int(rng.integers(1, 4)), int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3),
            dtype=np.uint8,
        )
        for _ in range(8)
    ]
    root = format_dataset(x, np.arange(8) % 2, tmp_path, "vary", test_fraction=0.25)
    train, test, _ = read_all(root)
    test_idx, train_idx = np.split(np.random.default_rng(0).permutation(8), [2])
    for examples, idx in ((train, train_idx), (test, test_idx)):
        for example, i in zip(examples, idx, strict=True):
            assert np.array_equal(example.x, x[i].astype(np.float32) * INV_255)
    meta = load_dataset(root).train.metadata
    assert meta.get_tensor_shape() == (-1, -1, -1, 3)  # frame counts vary too


def test_round_trip_image_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    originals: dict[str, np.ndarray] = {}
    for c, (cls, fmt, mode) in enumerate(
        [("cat", "PNG", "RGB"), ("dog", "JPEG", "RGB"), ("eel", "BMP", "L")]
    ):
        (src / cls).mkdir(parents=True)
        for k in range(3):
            size = (6 + k + c, 5 + k)
            pixels = rng.integers(0, 256, (*size, 3 if mode == "RGB" else 1), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels.squeeze(), mode).save(buf, format=fmt)
            (src / cls / f"{k}.{fmt.lower()}").write_bytes(buf.getvalue())
            decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            originals[f"{cls}{k}"] = decoded.astype(np.float32) * INV_255
    (src / "cat" / ".hidden").write_text("not an image")
    root = format_image_folder(src, tmp_path / "out", test_fraction=1 / 3, seed=2)
    assert root == tmp_path / "out" / "src"
    train, test, solution = read_all(root)
    meta = load_dataset(root).train.metadata
    assert meta.class_names() == ["cat", "dog", "eel"]
    assert meta.get_tensor_shape() == (1, -1, -1, 3) and meta.matrix_spec[0].num_channels == -1
    keys = [f"{cls}{k}" for cls in ("cat", "dog", "eel") for k in range(3)]
    test_idx, train_idx = np.split(np.random.default_rng(2).permutation(9), [3])
    for examples, idx in ((train, train_idx), (test, test_idx)):
        for example, i in zip(examples, idx, strict=True):
            assert np.array_equal(example.x[0], originals[keys[i]])
    assert solution.argmax(axis=1).tolist() == [int(i) // 3 for i in test_idx]
    stored = next(iter(iter_records(root / "src.data/train/sample-src-train.tfrecord")))
    frame = decode_sequence_example(stored).feature_lists["0_compressed"][0][0]
    assert frame[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb")  # PNG or JPEG


def test_writer_errors(tmp_path: Path) -> None:
    x, y = images(4), np.arange(4)
    with pytest.raises(ValueError, match="both splits"):
        format_dataset(x, y, tmp_path, "a", test_fraction=0.01)
    with pytest.raises(ValueError, match="4 examples but 3 labels"):
        format_dataset(x, y[:3], tmp_path, "a")
    with pytest.raises(ValueError, match="COMPRESSED needs uint8"):
        format_dataset(x.astype(np.float32), y, tmp_path, "a", fmt="COMPRESSED")
    with pytest.raises(ValueError, match="2 class names for 4 classes"):
        format_dataset(x, y, tmp_path, "a", classes=["p", "q"])
    with pytest.raises(ValueError, match="every example needs a label"):
        format_dataset(x, np.eye(4)[[0, 1, 2, 0]] * [1, 1, 0, 1], tmp_path, "a")
    with pytest.raises(ValueError, match=r"differ in channel count: \[1, 3\]"):
        format_dataset([x[0], x[1, :, :, :1]], y[:2], tmp_path, "a", test_fraction=0.5)
    format_dataset(x, y, tmp_path, "a", test_fraction=0.5)
    with pytest.raises(FileExistsError):
        format_dataset(x, y, tmp_path, "a", test_fraction=0.5)


# ---- reader errors on broken datasets --------------------------------------------------------
@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A small valid dataset: 6 train / 2 test RGB 8x6 images, 3 classes."""
    return format_dataset(images(8), np.arange(8) % 3, tmp_path, "toy", test_fraction=0.25)


def test_corrupt_record_names_file_and_record(toy: Path) -> None:
    path = toy / "toy.data/train/sample-toy-train.tfrecord"
    spans = scan_records(path)
    corrupt(path, spans[3].offset + 12 + spans[3].length // 2)
    dataset = AutoDLDataset(path.parent)  # headers are intact: indexing works
    assert np.array_equal(dataset[2][0], next(x for i, (x, _) in enumerate(dataset) if i == 2))
    with pytest.raises(
        FormatError, match=re.escape(f"{path}: record 3 (byte offset {spans[3].offset})")
    ):
        list(dataset)
    with pytest.raises(FormatError, match=r"record 3 .*data CRC mismatch"):
        dataset.example(3)
    AutoDLDataset(path.parent, verify_crc=False).example(0)


def test_truncated_file(toy: Path) -> None:
    path = toy / "toy.data/test/sample-toy-test.tfrecord"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(FormatError, match=f"{re.escape(str(path))}: record 1 .*runs past"):
        load_dataset(toy)


def edit_metadata(split_dir: Path, old: str, new: str) -> None:
    """Replace text in a split's metadata.textproto."""
    path = split_dir / "metadata.textproto"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_sample_count_mismatch(toy: Path) -> None:
    edit_metadata(toy / "toy.data/train", "sample_count: 6", "sample_count: 7")
    with pytest.raises(FormatError, match="sample_count: 7 but 6 records were found"):
        AutoDLDataset(toy / "toy.data/train")


def test_label_out_of_range(toy: Path) -> None:
    edit_metadata(toy / "toy.data/train", "output_dim: 3", "output_dim: 2")
    dataset = AutoDLDataset(toy / "toy.data/train")
    with pytest.raises(FormatError, match=r"record \d .*label index 2 outside \[0, output_dim=2"):
        list(dataset)


def test_channel_and_size_mismatch(toy: Path) -> None:
    split = toy / "toy.data/test"
    edit_metadata(split, "num_channels: 3", "num_channels: 1")
    with pytest.raises(FormatError, match=r"record 0 .*3 channel.*num_channels: 1"):
        AutoDLDataset(split).example(0)
    grey = AutoDLDataset(split, convert_channels=True).example(0)
    assert grey.x.shape == (1, 8, 6, 1)
    edit_metadata(split, "num_channels: 1", "num_channels: 3")
    edit_metadata(split, "row_count: 8", "row_count: 9")
    with pytest.raises(FormatError, match="8x6 but the metadata says row_count 9"):
        AutoDLDataset(split).example(0)


def test_format_and_solution_mismatch(toy: Path) -> None:
    edit_metadata(toy / "toy.data/train", "format: COMPRESSED", "format: DENSE")
    with pytest.raises(FormatError, match="no feature list '0_dense_input'"):
        AutoDLDataset(toy / "toy.data/train").example(0)
    with pytest.raises(
        FormatError, match=r"matrix_spec is .*'DENSE'.* in train but .*'COMPRESSED'"
    ):
        load_dataset(toy)  # the splits disagree on the format
    edit_metadata(toy / "toy.data/train", "format: DENSE", "format: COMPRESSED")
    (toy / "toy.solution").write_text("0 1 0\n")
    with pytest.raises(FormatError, match=r"shape \(1, 3\) but the test split has 2 records"):
        load_dataset(toy)
    with pytest.raises(FormatError, match="cannot read metadata"):
        AutoDLDataset(toy)  # not a split directory
    (toy / "toy.data/test/sample-toy-test.tfrecord").unlink()
    with pytest.raises(FormatError, match="no sample"):
        AutoDLDataset(toy / "toy.data/test")


def test_sparse_records() -> None:
    meta = AutoDLMetadata(
        matrix_spec=(MatrixSpec(row_count=2, col_count=3, num_channels=2, format="SPARSE"),),
        output_dim=4,
        sequence_size=2,
        sample_count=1,
    )
    ints = lambda *v: np.array(v, np.int64)  # noqa: E731
    lists = {
        "0_sparse_row_index": [ints(0, 1), ints(1)],
        "0_sparse_col_index": [ints(2, 0), ints(1)],
        "0_sparse_channel_index": [ints(1, 0), ints(1)],
        "0_sparse_value": [np.array([0.5, -2], np.float32), np.array([3], np.float32)],
    }
    context = {"label_index": ints(1, 3), "label_score": np.array([1, 0.5], np.float32)}
    example = decode_example(encode_sequence_example(context, lists), meta)
    expected = np.zeros((2, 2, 3, 2), np.float32)
    expected[0, 0, 2, 1], expected[0, 1, 0, 0], expected[1, 1, 1, 1] = 0.5, -2, 3
    assert np.array_equal(example.x, expected)
    assert example.labels.tolist() == [0, 1, 0, 0.5] and example.id is None
    del lists["0_sparse_channel_index"]  # older datasets: channel 0
    assert decode_example(encode_sequence_example(context, lists), meta).x[1, 1, 1, 0] == 3
    lists["0_sparse_col_index"] = [ints(2, 3), ints(1)]
    with pytest.raises(FormatError, match=r"col index 3 outside \[0, 3\)"):
        decode_example(encode_sequence_example(context, lists), meta)


# ---- batches -------------------------------------------------------------------------------
def test_fit_example_policy() -> None:
    x = np.random.default_rng(0).random((3, 4, 6, 2)).astype(np.float32)
    assert np.array_equal(fit_example(x, (4, 6), 3), x)  # nothing to do
    padded = fit_example(x, (4, 6), 5)
    assert padded.shape == (5, 4, 6, 2) and np.array_equal(padded[:3], x) and not padded[3:].any()
    assert np.array_equal(fit_example(x, (4, 6), 2), x[:2])
    constant = np.full((1, 5, 7, 3), 0.25, np.float32)
    resized = fit_example(constant, (10, 3), 1)
    assert resized.shape == (1, 10, 3, 3) and np.allclose(resized, 0.25)


def test_iterate_batches(toy: Path) -> None:
    train = load_dataset(toy).train
    batches = list(iterate_batches(train, 4))
    assert [b[0].shape for b in batches] == [(4, 1, 8, 6, 3), (2, 1, 8, 6, 3)]
    assert np.array_equal(batches[0][0][1], train[1][0])
    shuffled = [b[1] for b in iterate_batches(train, 4, shuffle=True, seed=3, drop_last=True)]
    again = [b[1] for b in iterate_batches(train, 4, shuffle=True, seed=3, drop_last=True)]
    assert len(shuffled) == 1 and np.array_equal(shuffled[0], again[0])
    test_batch = next(
        iterate_batches(load_dataset(toy).test, 8, image_size=(3, 3), sequence_size=2)
    )
    assert test_batch[0].shape == (2, 2, 3, 3, 3) and test_batch[1] is None
    with pytest.raises(ValueError, match="explicit seed"):
        next(iterate_batches(train, 2, shuffle=True))


# ---- CLI -----------------------------------------------------------------------------------
def test_cli_format_and_info(tmp_path: Path) -> None:
    npz = tmp_path / "digits.npz"
    np.savez(npz, x=images(10, (5, 5, 1)), y=np.arange(10) % 2, classes=np.array(["no", "yes"]))
    runner = CliRunner()
    result = runner.invoke(
        autodl_group,
        [
            "format",
            "--from-npz",
            str(npz),
            "--out",
            str(tmp_path / "out"),
            "--test-fraction",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "7 train / 3 test examples, 2 classes (verified)" in result.output
    result = runner.invoke(autodl_group, ["info", str(tmp_path / "out" / "digits")])
    assert result.exit_code == 0, result.output
    assert "train: 7 examples, format COMPRESSED, tensor shape (1, 5, 5, 1)" in result.output
    assert "classes (2): no, yes" in result.output
    again = runner.invoke(
        autodl_group, ["format", "--from-npz", str(npz), "--out", str(tmp_path / "out")]
    )
    assert again.exit_code == 1 and "already exists" in again.output
    neither = runner.invoke(autodl_group, ["format", "--out", str(tmp_path)])
    assert neither.exit_code == 2 and "exactly one" in neither.output

    folder = tmp_path / "imgs"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(images(1, (4, 4, 3), seed=k)[0]).save(folder / cls / f"{k}.png")
    result = runner.invoke(
        autodl_group,
        [
            "format",
            "--from-folder",
            str(folder),
            "--out",
            str(tmp_path / "out"),
            "--name",
            "ab",
            "--seed",
            "1",
            "--test-fraction",
            "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 train / 3 test examples, 2 classes" in result.output


# ---- the real AutoDL sample datasets -----------------------------------------------------------
@pytest.mark.shared
def test_shared_miniciao(shared_dir: Path) -> None:
    train, test, solution = load_dataset(shared_dir / "autodl/miniciao")
    assert (len(train), len(test)) == (82, 18)
    meta = train.get_metadata()
    assert meta.get_tensor_shape() == (1, 32, 32, 3) and meta.get_output_size() == 10
    assert meta.size() == 82 and test.metadata.size() == 18
    names = (shared_dir / "autodl/miniciao/miniciao_label.name").read_text().split()
    assert train.get_class_labels() == names  # label_to_index_map agrees with the .name file
    examples = list(train.iter_examples())
    assert [e.id for e in examples] == list(range(18, 100))
    assert all(e.x.shape == (1, 32, 32, 3) and e.x.dtype == np.float32 for e in examples)
    assert all(e.x.min() >= 0 and e.x.max() <= 1 for e in examples)
    assert all(e.labels.sum() == 1 and set(np.unique(e.labels)) == {0, 1} for e in examples)
    # the solution lines up with the test split: one one-hot row per test record, ids 0..17
    assert [e.id for e in test.iter_examples()] == list(range(18))
    assert all(e.labels is None for e in test.iter_examples())
    assert solution.shape == (18, 10) and (solution.sum(axis=1) == 1).all()
    assert set(np.unique(solution)) == {0, 1}


@pytest.mark.shared
def test_shared_monkeys(shared_dir: Path) -> None:
    train, test, solution = load_dataset(shared_dir / "autodl/Monkeys")
    assert (len(train), len(test)) == (26, 4)
    assert train.metadata.get_tensor_shape() == (1, -1, -1, 3)
    assert train.metadata.matrix_spec[0].num_channels == -1  # absent: RGB as in the kit
    sizes = {e.x.shape[1:3] for e in train.iter_examples()}
    assert len(sizes) > 10  # JPEGs of varying size
    test_examples = list(test.iter_examples())
    assert [e.x.shape for e in test_examples] == [
        (1, 473, 473, 3),
        (1, 198, 384, 3),
        (1, 401, 600, 3),
        (1, 344, 500, 3),
    ]
    assert [e.id for e in test_examples] == [0, 1, 2, 3]
    assert solution.shape == (4, 10) and (solution.sum(axis=1) == 1).all()
    batch, labels = next(iterate_batches(train, 5, image_size=(32, 32)))
    assert batch.shape == (5, 1, 32, 32, 3) and labels.shape == (5, 10)


@pytest.mark.shared
def test_shared_records_are_exact(shared_dir: Path, tmp_path: Path) -> None:
    """Our framing and encoding reproduce a real record byte for byte."""
    path = shared_dir / "autodl/miniciao/miniciao.data/test/sample-miniciao-test.tfrecord"
    records = list(iter_records(path))
    copy = tmp_path / "copy.tfrecord"
    write_records(copy, records)
    assert copy.read_bytes() == path.read_bytes()
    first = decode_sequence_example(records[0])
    image = first.feature_lists["0_compressed"][0][0]
    expected = np.asarray(Image.open(io.BytesIO(image))).astype(np.float32) * INV_255
    dataset = AutoDLDataset(path.parent)
    assert np.array_equal(dataset[0][0][0], expected)


# ---- every layout: sparse, variable length, tabular, text --------------------------------------
def split_of(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(test, train) indices of the writer's seeded split."""
    return np.split(np.random.default_rng(seed).permutation(n), [round(n * test_fraction)])


def assert_read_back(root: Path, expected: list[np.ndarray], test_idx, train_idx) -> None:
    """Every example of both splits equals ``expected[i]`` (float32 (T, H, W, C)) exactly."""
    train, test, _ = read_all(root)
    for examples, idx in ((train, train_idx), (test, test_idx)):
        assert len(examples) == len(idx)
        for example, i in zip(examples, idx, strict=True):
            assert example.x.dtype == np.float32
            assert np.array_equal(example.x, expected[i]), i


def sparse_images(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Float (N, *shape) arrays with about 80 % zeros."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    return np.where(rng.random(x.shape) < 0.8, 0, x).astype(np.float32)


def test_round_trip_sparse_fixed(tmp_path: Path) -> None:
    x = sparse_images(10, (3, 4, 5, 2))
    x[0] = 0  # an all-zero example: no entry at all
    root = format_dataset(x, np.arange(10) % 2, tmp_path, "sp", fmt="SPARSE", test_fraction=0.3)
    assert_read_back(root, list(x), *split_of(10, 0.3, 0))
    meta = load_dataset(root).train.metadata
    assert meta.is_sparse() and meta.get_tensor_shape() == (3, 4, 5, 2)
    record = next(iter(iter_records(root / "sp.data/train/sample-sp-train.tfrecord")))
    lists = decode_sequence_example(record).feature_lists
    assert sorted(lists) == sorted(SPARSE_KEYS) and len(lists["0_sparse_value"]) == 3
    assert all(v.size and (v != 0).all() for v in lists["0_sparse_value"] if v.size)


def test_round_trip_sparse_variable_sizes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = []
    for _ in range(8):
        e = sparse_images(1, (int(rng.integers(1, 5)), int(rng.integers(2, 6)), 3, 2))[0]
        e[-1, -1, 0, 1] = 1.5  # the last frame and row are non-zero: the sizes are recoverable
        x.append(e)
    root = format_dataset(x, np.arange(8) % 2, tmp_path, "spv", fmt="SPARSE", test_fraction=0.25)
    assert_read_back(root, x, *split_of(8, 0.25, 0))
    assert load_dataset(root).train.metadata.get_tensor_shape() == (-1, -1, 3, 2)
    lossy = [np.ones((1, 3, 3, 1), np.float32), np.zeros((1, 4, 3, 1), np.float32)]
    with pytest.raises(ValueError, match="example 1: SPARSE with varying row counts"):
        format_dataset(lossy, np.arange(2), tmp_path, "lossy", fmt="SPARSE", test_fraction=0.5)


def test_round_trip_variable_length_sequences(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    waves = [rng.normal(size=int(rng.integers(50, 400))).astype(np.float32) for _ in range(9)]
    root = format_dataset(waves, np.arange(9) % 3, tmp_path, "speech", test_fraction=1 / 3)
    assert_read_back(root, [w[:, None, None, None] for w in waves], *split_of(9, 1 / 3, 0))
    meta = load_dataset(root).train.metadata
    assert meta.get_tensor_shape() == (-1, 1, 1, 1) and meta.matrix_spec[0].format == "DENSE"
    assert meta.is_sequence and not meta.get_channel_to_index_map()
    series = [rng.normal(size=(int(rng.integers(3, 30)), 4)).astype(np.float32) for _ in range(9)]
    for fmt in ("DENSE", "SPARSE"):
        root = format_dataset(series, np.arange(9) % 3, tmp_path, f"ts{fmt}", fmt=fmt)
        assert_read_back(root, [s[:, None, None, :] for s in series], *split_of(9, 0.2, 0))
        assert load_dataset(root).test.metadata.get_tensor_shape() == (-1, 1, 1, 4)


def test_round_trip_fixed_sequences_and_tabular(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    series = rng.normal(size=(10, 7, 3)).astype(np.float32)  # (N, T, C)
    root = format_dataset(series, np.arange(10) % 2, tmp_path, "ts")
    assert load_dataset(root).train.metadata.get_tensor_shape() == (7, 1, 1, 3)
    assert_read_back(root, list(series[:, :, None, None, :]), *split_of(10, 0.2, 0))
    rows = rng.normal(size=(10, 6))  # (N, D) float64: tabular, stored as float32
    root = format_dataset(rows, np.arange(10) % 2, tmp_path, "tab", fmt="SPARSE")
    assert load_dataset(root).train.metadata.get_tensor_shape() == (1, 1, 6, 1)
    expected = list(rows.astype(np.float32)[:, None, None, :, None])
    assert_read_back(root, expected, *split_of(10, 0.2, 0))


VOCABULARY = ["the", "'quoted'", "back\\slash", "tab\there", "日本語", "new\nline", "", "x"]


@pytest.mark.parametrize("fmt", ["DENSE", "SPARSE"])
def test_round_trip_text_with_vocabulary(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(4)
    docs = [rng.integers(0, len(VOCABULARY), int(rng.integers(1, 30))) for _ in range(10)]
    root = format_dataset(
        docs, np.arange(10) % 2, tmp_path, "txt", vocabulary=VOCABULARY, fmt=fmt, seed=3
    )
    expected = [d.astype(np.float32)[:, None, None, None] for d in docs]
    assert_read_back(root, expected, *split_of(10, 0.2, 3))
    meta = load_dataset(root).train.metadata
    assert meta.get_channel_to_index_map() == {t: i for i, t in enumerate(VOCABULARY)}
    assert meta.is_token_sequence() and meta.vocabulary_size() == len(VOCABULARY)
    channels = 1 if fmt == "DENSE" else len(VOCABULARY)  # sparse: one-hot over the vocabulary
    assert meta.get_tensor_shape() == (-1, 1, 1, channels)
    with pytest.raises(ValueError, match="token id outside the vocabulary"):
        format_dataset([np.array([8])], [0], tmp_path, "bad", vocabulary=VOCABULARY)
    with pytest.raises(ValueError, match="repeats a token"):
        format_dataset(docs, np.arange(10) % 2, tmp_path, "rep", vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="1-D integer token ids"):
        format_dataset([np.ones(3)], [0], tmp_path, "flt", vocabulary=VOCABULARY)


def test_explicit_test_split(tmp_path: Path) -> None:
    x, y = images(6), np.arange(6) % 2
    root = format_dataset(x, y, tmp_path, "split", test_indices=[4, 1])
    assert_read_back(root, list(x[:, None] * INV_255), np.array([4, 1]), np.array([0, 2, 3, 5]))
    assert np.array_equal(load_dataset(root).test_solution, np.eye(2)[[0, 1]])
    for bad in ([], [0, 0], [6], list(range(6))):
        with pytest.raises(ValueError, match="test_indices"):
            format_dataset(x, y, tmp_path, "bad", test_indices=bad)


def test_corrupt_text_and_sparse_records(tmp_path: Path) -> None:
    docs = [np.array([0, 1, 2]), np.array([2, 1]), np.array([7, 7]), np.array([3])]
    root = format_dataset(
        docs, np.arange(4) % 2, tmp_path, "t", vocabulary=VOCABULARY, test_fraction=0.5
    )
    for split in ("train", "test"):  # drop the last token: id 7 is no longer in the vocabulary
        path = root / f"t.data/{split}/metadata.textproto"
        text = path.read_text()
        path.write_text(text[: text.index("channel_to_index_map {\n  key: 'x'")])
    with pytest.raises(FormatError, match=r"record \d .*token id 7.0 is not an index"):
        [list(AutoDLDataset(root / f"t.data/{split}")) for split in ("train", "test")]
    path = root / "t.data/test/metadata.textproto"  # no vocabulary in one split only
    path.write_text(path.read_text().split("channel_to_index_map")[0])
    with pytest.raises(FormatError, match="channel_to_index_map is 7 tokens in train but 0 tokens"):
        load_dataset(root)

    meta = AutoDLMetadata(
        matrix_spec=(MatrixSpec(row_count=-1, col_count=-1, num_channels=1, format="SPARSE"),),
        output_dim=2,
        sequence_size=-1,
    )
    ints = lambda *v: np.array(v, np.int64)  # noqa: E731
    lists = {
        "0_sparse_row_index": [ints(2**40)],
        "0_sparse_col_index": [ints(2**40)],
        "0_sparse_value": [np.ones(1, np.float32)],
    }
    with pytest.raises(FormatError, match=r"would densify to .* values"):
        decode_example(encode_sequence_example({}, lists), meta)
    lists["0_sparse_row_index"] = [ints(-1)]
    with pytest.raises(FormatError, match="negative row index -1"):
        decode_example(encode_sequence_example({}, lists), meta)
    lists["0_sparse_row_index"] = [ints(0, 1)]
    with pytest.raises(FormatError, match="differ in length"):
        decode_example(encode_sequence_example({}, lists), meta)


def test_cli_format_every_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    lengths = rng.integers(2, 20, 10)
    runner = CliRunner()

    def run(npz: Path, *options: str) -> str:
        result = runner.invoke(
            autodl_group,
            ["format", "--from-npz", str(npz), "--out", str(tmp_path / "out"), *options],
        )
        assert result.exit_code == 0, result.output
        return result.output

    series = tmp_path / "series.npz"
    is_test = np.zeros(10, bool)
    is_test[[0, 5]] = True
    np.savez(
        series,
        x=rng.normal(size=(lengths.sum(), 3)),
        y=np.arange(10) % 2,
        lengths=lengths,
        is_test=is_test,
    )
    assert "8 train / 2 test examples, 2 classes (verified)" in run(series, "--format", "SPARSE")
    train, test, _ = load_dataset(tmp_path / "out/series")
    assert train.metadata.get_tensor_shape() == (-1, 1, 1, 3) and train.metadata.is_sparse()
    assert [len(e.x) for e in test.iter_examples()] == lengths[[0, 5]].tolist()

    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("".join(f"{t}\n" for t in ["a", "b c", "d"]), encoding="utf-8")
    text = tmp_path / "text.npz"
    np.savez(text, x=rng.integers(0, 3, lengths.sum()), y=np.arange(10) % 2, lengths=lengths)
    run(text, "--vocabulary", str(vocab_file))
    meta = load_dataset(tmp_path / "out/text").train.metadata
    assert meta.get_channel_to_index_map() == {"a": 0, "b c": 1, "d": 2}
    result = runner.invoke(autodl_group, ["info", str(tmp_path / "out/text")])
    assert result.exit_code == 0 and "format DENSE, tensor shape (-1, 1, 1, 1)" in result.output

    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((5, 2)), y=np.arange(2), lengths=np.array([2, 2]))
    result = runner.invoke(autodl_group, ["format", "--from-npz", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "lengths sum to 4 but x has 5 rows" in result.output
    ragged = tmp_path / "ragged.npz"
    np.savez(ragged, x=np.array([np.zeros(2), np.zeros(3)], dtype=object), y=np.arange(2))
    result = runner.invoke(
        autodl_group, ["format", "--from-npz", str(ragged), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "not an npz of plain arrays" in result.output


def test_uniform_float_frames_fast_path() -> None:
    """Float frames of one length decode in one numpy pass, to exactly what the generic
    decoder gives; anything else takes the generic path."""
    frames = list(np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32))
    parsed = decode_sequence_example(encode_sequence_example({}, {"f": frames}))
    fast = parsed.feature_lists["f"]
    assert isinstance(fast, np.ndarray) and fast.dtype == np.float32
    assert np.array_equal(fast, np.stack(frames))
    mixed = [*frames, np.zeros(2, np.float32)]  # another length: the generic path
    slow = decode_sequence_example(encode_sequence_example({}, {"f": mixed})).feature_lists["f"]
    assert isinstance(slow, list) and all(
        np.array_equal(a, b) for a, b in zip(slow, mixed, strict=True)
    )
    ints = decode_sequence_example(encode_sequence_example({}, {"i": [np.arange(2)] * 3}))
    assert isinstance(ints.feature_lists["i"], list)  # int64 lists are never fast-pathed
