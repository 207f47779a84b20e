"""Scores its first call; then forks five children that each fill and hold 1,000 MB.

Each child stays below any per-process cap; together they hold 5,000 MB (what RLIMIT_AS, a
per-process limit, let through). The parent waits for them and returns how many survived.
"""

import os
import time

CHILDREN = 5
MEGABYTES = 1000
CALLS = []


def score(model, batch):
    CALLS.append(1)
    return 1.0 if len(CALLS) == 1 else hold_memory()


def hold_memory():
    pids = []
    for _ in range(CHILDREN):
        pid = os.fork()
        if pid == 0:
            block = b"\1" * (MEGABYTES << 20)  # written: every page is resident
            time.sleep(60)
            os._exit(0 if block else 1)
        pids.append(pid)
    return float(sum(os.waitpid(pid, 0)[1] == 0 for pid in pids))
