"""Tries one escape per call; the paths and port come from targets.json written by the test.

Each attempt raises the error it meets (the test checks the messages), or returns 1.0 when it
succeeds (the test then fails).
"""

import json
import os
import socket
from pathlib import Path

TARGETS = json.loads((Path(__file__).parent / "targets.json").read_text())
CALLS = []


def _read(path):
    with open(path, "rb") as f:
        return f.read(16)


def _write(path):
    with open(path, "w") as f:
        f.write("escaped")


ATTEMPTS = [
    lambda: _read(TARGETS["benchmark"]),
    lambda: os.listdir(TARGETS["shared"]),
    lambda: _write(os.path.join(TARGETS["host_dir"], "escaped.txt")),
    lambda: _write(Path(__file__).parent / "escaped.txt"),
    lambda: socket.create_connection(("127.0.0.1", TARGETS["port"]), timeout=2),
    lambda: _read(TARGETS["results"]),
    lambda: _write("/tmp/private_scratch.txt"),
    lambda: _write("/sys/fs/cgroup/cgroup.procs"),  # leave its cgroup
]


def score(model, batch):
    CALLS.append(1)
    ATTEMPTS[(len(CALLS) - 1) % len(ATTEMPTS)]()
    return 1.0
