"""Scores its first call; then keeps four processes busy (more CPUs than its threads) and
returns after 60 s of wall time."""

import os
import time

WORKERS = 4
CALLS = []


def score(model, batch):
    CALLS.append(1)
    if len(CALLS) == 1:
        return 1.0
    pids = []
    for _ in range(WORKERS - 1):
        pid = os.fork()
        if pid == 0:
            end = time.monotonic() + 60
            while time.monotonic() < end:
                pass
            os._exit(0)
        pids.append(pid)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        pass
    for pid in pids:
        os.waitpid(pid, 0)
    return 2.0
