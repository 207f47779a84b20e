"""TFRecord files without TensorFlow: framing, masked CRC32C checks, indexed random access.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little endian) | uint32 masked_crc32c(length bytes) |
    data[length] | uint32 masked_crc32c(data)

with ``mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32)`` and CRC32C the
Castagnoli CRC (reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import crc32c as _crc32c

from autodl.errors import FormatError

_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_HEADER = 12  # uint64 length + uint32 length crc
_FOOTER = 4  # uint32 data crc


def crc32c(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    """CRC32C (Castagnoli) of ``data``; ``value`` continues a previous result (as zlib.crc32).

    Through the ``crc32c`` package (hardware instructions where the CPU has them, else its C
    table code): about three orders of magnitude faster on 1 MiB than the pure Python/numpy code
    this module had (``benchmarks/crc32c_speed.py`` keeps it and measures both).
    """
    return _crc32c.crc32c(data, value)


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    """TFRecord's masked CRC32C: the CRC rotated right by 15 bits plus 0xa282ead8."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


@dataclass(frozen=True)
class RecordSpan:
    """Where record ``index`` of ``path`` lies: its frame starts at byte ``offset``."""

    path: Path
    index: int
    offset: int
    length: int

    def where(self) -> str:
        """'file: record i (byte offset o)', the prefix of every error about this record."""
        return _where(self.path, self.index, self.offset)


def _where(path: Path, index: int, offset: int) -> str:
    """How errors name a record: file, index and byte offset of its frame."""
    return f"{path}: record {index} (byte offset {offset})"


def scan_records(path: str | os.PathLike[str]) -> list[RecordSpan]:
    """Index the records of a TFRecord file from their headers, checking each length's CRC.

    Only headers are read (one seek per record), so indexing is cheap; data CRCs are checked
    when a record is read. Raises ``FormatError`` for a corrupt length, a length that runs past
    the end of the file (truncation or overflow), or trailing bytes too short for a header.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        f = path.open("rb")
    except OSError as exc:
        raise FormatError(f"{path}: cannot read TFRecord file: {exc}") from None
    spans: list[RecordSpan] = []
    with f:
        offset = 0
        while offset < size:
            where = _where(path, len(spans), offset)
            header = f.read(_HEADER)
            if len(header) < _HEADER:
                raise FormatError(f"{where}: truncated header ({len(header)} of 12 bytes)")
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != length_crc:
                raise FormatError(f"{where}: length CRC mismatch (corrupt header)")
            end = offset + _HEADER + length + _FOOTER
            if end > size:
                raise FormatError(
                    f"{where}: record of {length} bytes runs past the end of the file "
                    f"({size - offset - _HEADER} bytes left): truncated file or bad length"
                )
            spans.append(RecordSpan(path, len(spans), offset, length))
            offset = end
            f.seek(offset)
    return spans


def read_span(f: BinaryIO, span: RecordSpan, verify: bool = True) -> bytes:
    """The data of one record from the open binary file ``f``, its CRC checked if ``verify``."""
    f.seek(span.offset + _HEADER)
    blob = f.read(span.length + _FOOTER)
    if len(blob) < span.length + _FOOTER:
        raise FormatError(f"{span.where()}: truncated record data")
    data = blob[: span.length]
    if verify:
        (data_crc,) = struct.unpack("<I", blob[span.length :])
        if masked_crc32c(data) != data_crc:
            raise FormatError(f"{span.where()}: data CRC mismatch (corrupt record)")
    return data


def iter_records(path: str | os.PathLike[str], verify: bool = True) -> Iterator[bytes]:
    """The data of every record of a TFRecord file, in order, CRCs checked if ``verify``."""
    spans = scan_records(path)
    with Path(path).open("rb") as f:
        for span in spans:
            yield read_span(f, span, verify)


def frame_record(data: bytes) -> bytes:
    """One record's full frame: header, ``data``, data CRC."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def write_records(path: str | os.PathLike[str], records: Iterable[bytes]) -> int:
    """Write ``records`` as a TFRecord file (replacing it); returns the number written."""
    count = 0
    with Path(path).open("wb") as f:
        for data in records:
            f.write(frame_record(data))
            count += 1
    return count
