"""CRC32C: the ``crc32c`` package (what ``autodl.tfrecord`` uses) against the pure Python/numpy
code ``autodl.tfrecord`` had before (kept here as the measured reference, and as the second
implementation the tests check the package against).

Both compute the CRC of the same random buffers (100 B, the size of a small record's header
check, to 4 MiB); the table gives the best of ``--repeats`` timings per size and the ratio,
measured side by side in one process; JSON to ``benchmarks/results/crc32c_speed.json``.

    python benchmarks/crc32c_speed.py
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from autodl.tfrecord import crc32c

RESULT = Path(__file__).resolve().parent / "results" / "crc32c_speed.json"
SIZES = (100, 10_000, 1 << 20, 4 << 20)

# ---- the former hand-written implementation -------------------------------------------------
_POLY = 0x82F63B78
_U32 = 0xFFFFFFFF
# Inputs shorter than this go through the plain byte loop: the lane method's numpy overhead
# only pays off on longer buffers (measured crossover ~6 KiB).
_LANE_THRESHOLD = 6144


def _make_table() -> np.ndarray:
    """The 256-entry byte table of the reflected CRC32C polynomial."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1).astype(np.uint32)
    return table


_TABLE = _make_table()
_TABLE_LIST = [int(v) for v in _TABLE]


def _update_bytes(crc: int, data: bytes | memoryview) -> int:
    """Raw (un-inverted) CRC register update over ``data``, one table lookup per byte."""
    table = _TABLE_LIST
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


@functools.lru_cache(maxsize=32)
def _zeros_operator(length: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """Byte-sliced tables of the linear map ``crc -> update(crc, b"\\0" * length)`` (the raw
    update is linear over GF(2) in the register when the data is zero)."""
    reg = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
    for _ in range(length):
        reg = _TABLE[reg & 0xFF] ^ (reg >> 8)
    values = np.arange(256, dtype=np.uint32)
    tables = []
    for byte in range(4):
        table = np.zeros(256, dtype=np.uint32)
        for bit in range(8):
            table ^= np.where((values >> bit) & 1, reg[8 * byte + bit], np.uint32(0))
        tables.append([int(v) for v in table])
    return tables[0], tables[1], tables[2], tables[3]


def _update_lanes(crc: int, data: bytes | memoryview) -> int:
    """Raw CRC update of a long buffer: CRCs of ~sqrt(n) equal chunks in parallel (numpy),
    then combined through the zero-extension operator of the chunk length."""
    n = len(data)
    lane = 1 << max(6, (n.bit_length() + 1) // 2)
    head = n % lane
    crc = _update_bytes(crc, data[:head])
    chunks = np.frombuffer(data, dtype=np.uint8, offset=head).reshape(-1, lane).T.copy()
    lanes = np.zeros(chunks.shape[1], dtype=np.uint32)
    for column in chunks:
        lanes = _TABLE[(lanes ^ column) & 0xFF] ^ (lanes >> 8)
    t0, t1, t2, t3 = _zeros_operator(lane)
    for value in lanes.tolist():
        crc = t0[crc & 0xFF] ^ t1[(crc >> 8) & 0xFF] ^ t2[(crc >> 16) & 0xFF] ^ t3[crc >> 24]
        crc ^= value
    return crc


def reference_crc32c(data: bytes, value: int = 0) -> int:
    """The former ``autodl.tfrecord.crc32c``: byte loop below 6 KiB, lanes above."""
    view = memoryview(data).cast("B")
    update = _update_lanes if len(view) >= _LANE_THRESHOLD else _update_bytes
    return update(value ^ _U32, view) ^ _U32


# ---- the measurement ------------------------------------------------------------------------
def best_of(function: Callable[[bytes], int], data: bytes, repeats: int) -> float:
    """The fastest of ``repeats`` calls, in seconds (after one untimed call)."""
    function(data)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(data)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    print(f"{'bytes':>10}{'reference (s)':>16}{'crc32c (s)':>14}{'MB/s':>10}{'ratio':>10}")
    for size in SIZES:
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        if crc32c(data) != reference_crc32c(data):
            raise SystemExit(f"the two implementations disagree on {size} bytes")
        slow = best_of(reference_crc32c, data, args.repeats)
        fast = best_of(crc32c, data, args.repeats)
        rows.append({"bytes": size, "reference_seconds": slow, "crc32c_seconds": fast})
        print(f"{size:>10}{slow:>16.6f}{fast:>14.7f}{size / fast / 1e6:>10.0f}{slow / fast:>10.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"platform": platform.platform(), "repeats": args.repeats, "rows": rows}, indent=1
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
