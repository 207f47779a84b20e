"""Scores its first call; then fills 40 memfds of 60 MB (2.4 GB of shared memory, no RSS cap
applies to it) and returns how many it filled."""

import os

COUNT = 40
MEGABYTES = 60
CALLS = []
HELD = []  # kept open: the pages stay allocated


def score(model, batch):
    CALLS.append(1)
    if len(CALLS) == 1:
        return 1.0
    chunk = b"\1" * (1 << 20)
    for i in range(COUNT):
        fd = os.memfd_create(f"hog{i}")
        for _ in range(MEGABYTES):
            os.write(fd, chunk)
        HELD.append(fd)
    return float(len(HELD))
