"""Scores its first call; then writes 1.5 GB into /dev/shm (POSIX shared memory) in 1 MB
chunks and returns the megabytes written."""

import os

TOTAL_MB = 1536
CALLS = []


def score(model, batch):
    CALLS.append(1)
    if len(CALLS) == 1:
        return 1.0
    chunk = b"\1" * (1 << 20)
    with open(os.path.join("/dev/shm", f"fill-{len(CALLS)}"), "wb") as handle:
        for _ in range(TOTAL_MB):
            handle.write(chunk)
    return float(TOTAL_MB)
