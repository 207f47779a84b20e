"""Decoding speed of speech-like AutoDL records: one float per frame (the AutoSpeech layout).

Writes ``--examples`` one-second 16 kHz waveforms with ``autodl.writer.format_dataset``, then
times, on the same records, the fast path (``proto.uniform_float_frames``: one numpy pass per
feature list) against the generic frame-by-frame decoder (``iter_fields`` + ``decode_feature``,
what ``decode_sequence_example`` did before), CRC checks excluded, and checks both give the same
values. Prints a table and writes ``benchmarks/results/autodl_decode_speed.json``.

    PYTHONPATH=. python benchmarks/autodl_decode_speed.py [--examples 20] [--samples 16000]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from autodl.proto import LEN, _map_entries, decode_feature, iter_fields, uniform_float_frames
from autodl.tfrecord import iter_records
from autodl.writer import format_dataset

RESULTS = Path(__file__).with_name("results") / "autodl_decode_speed.json"


def feature_lists(record: bytes) -> list[memoryview]:
    """The serialized FeatureList of every key of one SequenceExample."""
    lists = []
    for number, wire, value in iter_fields(memoryview(record)):
        if number == 2 and wire == LEN:
            lists.extend(flist for _, flist in _map_entries(value))
    return lists


def generic(flist: memoryview) -> np.ndarray:
    """Frame by frame, as the generic decoder reads every feature list."""
    return np.stack([decode_feature(v) for n, w, v in iter_fields(flist) if n == 1 and w == LEN])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--samples", type=int, default=16_000, help="frames per example")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    waves = [rng.normal(size=args.samples).astype(np.float32) for _ in range(args.examples)]
    with tempfile.TemporaryDirectory() as tmp:
        root = format_dataset(waves, np.arange(args.examples) % 2, tmp, "waves", verify=False)
        records = [
            r
            for split in ("train", "test")
            for r in iter_records(root / f"waves.data/{split}/sample-waves-{split}.tfrecord")
        ]
    lists = [flist for record in records for flist in feature_lists(record)]
    frames = sum(len(generic(flist)) for flist in lists[:1]) * len(lists)
    timings = {}
    for name, decode in (("fast path", uniform_float_frames), ("frame by frame", generic)):
        start = time.perf_counter()
        decoded = [decode(flist) for flist in lists]
        timings[name] = (time.perf_counter() - start, decoded)
    fast, slow = timings["fast path"][1], timings["frame by frame"][1]
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))
    rows = [
        {"decoder": name, "seconds": seconds, "frames_per_second": frames / seconds}
        for name, (seconds, _) in timings.items()
    ]
    ratio = timings["frame by frame"][0] / timings["fast path"][0]
    print(f"{args.examples} records x {args.samples} one-float frames ({frames:,} frames)")
    print(f"{'decoder':<16}{'seconds':>10}{'frames/s':>16}")
    for row in rows:
        print(f"{row['decoder']:<16}{row['seconds']:>10.3f}{row['frames_per_second']:>16,.0f}")
    print(f"fast path {ratio:.0f}x faster, same values")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "examples": args.examples,
                "samples": args.samples,
                "frames": frames,
                "rows": rows,
                "speedup": ratio,
                "machine": {"python": platform.python_version(), "processor": platform.machine()},
            },
            indent=1,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
