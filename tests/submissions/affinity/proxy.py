"""Widens its CPU affinity to every CPU of the machine, then reports where it may and does run.

Odd calls return the bit mask of ``sched_getaffinity`` after the widening; even calls spin for
0.3 s and return the bit mask of the CPUs it was seen running on (``/proc/self/stat``).
"""

import contextlib
import os
import time

CALLS = []


def _mask(cpus):
    return float(sum(1 << cpu for cpu in cpus))


def _current_cpu():
    with open("/proc/self/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[36])


def score(model, batch):
    CALLS.append(1)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    if len(CALLS) % 2:
        return _mask(os.sched_getaffinity(0))
    seen = set()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        seen.add(_current_cpu())
    return _mask(seen)
