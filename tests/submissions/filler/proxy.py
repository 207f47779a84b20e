"""Scores its first call; then writes 1.5 GB in 1 MB chunks into the directory named in
``target.txt`` beside it (``/tmp`` without it; the tests also use ``/dev/shm``) and returns the
megabytes written (an ``ENOSPC`` ends the write with the exception)."""

import os
from pathlib import Path

TARGET_FILE = Path(__file__).parent / "target.txt"
TARGET = TARGET_FILE.read_text().strip() if TARGET_FILE.exists() else "/tmp"
TOTAL_MB = 1536
CALLS = []


def score(model, batch):
    CALLS.append(1)
    return 1.0 if len(CALLS) == 1 else fill(os.path.join(TARGET, f"fill-{len(CALLS)}.bin"))


def fill(path):
    chunk = b"\1" * (1 << 20)
    with open(path, "wb") as handle:
        for _ in range(TOTAL_MB):
            handle.write(chunk)
    return float(TOTAL_MB)
