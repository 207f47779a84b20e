"""Writes forged lines straight into the evaluator's protocol pipe, as a hostile submission
would (the pipe is found among the worker's open files), then returns the parameter count.

What it forges is chosen by ``mode.txt`` next to this file (written by the test into its copy):
``garbage`` (every line of GARBAGE and OUT_OF_SEQUENCE, on every call), ``done`` (a premature
``done``), ``claim`` (a well-formed ``arch`` event for the architecture being scored, claiming
CLAIMED).
"""

import json
import os
import stat
from pathlib import Path

HERE = Path(__file__).parent
MODE = (HERE / "mode.txt").read_text().strip() if (HERE / "mode.txt").exists() else "garbage"
CLAIMED = 7.0
VALUE = {"kind": "float", "type": "float", "number": 1.0, "shape": None, "dtype": "", "repr": "1"}


def arch(index, **changes):
    """An arch event as JSON text, with fields changed or added."""
    event = {"event": "arch", "index": index, "seconds": 0.1, "build_seconds": 0.1, "value": VALUE}
    return json.dumps({**event, **changes}).encode()


def nested(depth):
    return b'{"event": "arch", "index": 0, "x": ' + b"[" * depth + b"]" * depth + b"}"


GARBAGE = [
    b"[" * 5000,  # 5,000 unclosed brackets
    nested(700),  # nested 700 deep
    nested(17),  # just past the bound on containers
    arch("0", seconds="1"),  # wrong types
    arch(0, value=[1, 2]),
    arch(0, value={**VALUE, "number": "1.0"}),
    arch(0, value={**VALUE, "shape": [-1]}),
    arch(0, value={**VALUE, "shape": [1] * 100}),
    arch(0, value={**VALUE, "shape": True}),
    arch(0, exception={"type": ["ValueError"], "message": "", "traceback": ""}),
    b'{"event": "arch", "index": 1' + b"0" * 5000 + b', "seconds": 0.1}',  # a giant integer
    arch(0).replace(b'"seconds": 0.1', b'"seconds": 1e999'),  # infinite seconds
    arch(0).replace(b'"seconds": 0.1', b'"seconds": NaN'),  # NaN where not allowed
    arch(0, seconds=-1.0),
    arch(-1),  # a negative index
    b'{"event": "\\ud800\\u0000\\u001b[31m", "info": {}}',  # unknown event, unsafe text
    b'{"event": "started", "info": {"nested": {"a": 1}}}',
    b"\xff\xfe\x00 not UTF-8",
    b"[1, 2]",
    b"",
    b"x" * (1 << 20),  # 1 MB: the evaluator's reader drops it before it is a line
]
# Well-formed events the evaluator does not expect now: garbage too, by their sequence.
OUT_OF_SEQUENCE = [
    arch(999, value={**VALUE, "number": 1e300}),  # an index out of order
    b'{"event": "started", "info": {"pid": 1}}',  # repeated events
    b'{"event": "ready", "seconds": 0.0}',
    b'{"event": "load_error", "stage": "import", "exception": '
    b'{"type": "X", "message": "", "traceback": "", "frames": []}}',
]
DROPPED_BY_READER = 1  # the 1 MB line: never reaches the decoder, so never counted
CALLS = []


def protocol_fd():
    """The worker's protocol pipe: the pipe among its files that is not stderr (fds 1 and 2)."""
    stderr = os.fstat(2).st_ino
    for fd in range(3, 1024):
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISFIFO(info.st_mode) and info.st_ino != stderr:
            return fd
    raise RuntimeError("no protocol pipe found")


def score(model, batch):
    CALLS.append(1)
    fd = protocol_fd()
    if MODE == "garbage":
        for line in GARBAGE + OUT_OF_SEQUENCE:
            os.write(fd, line + b"\n")
    elif MODE == "done":
        os.write(fd, b'{"event": "done"}\n')
    elif MODE == "claim":  # the index of this call's architecture (one launch: in order)
        os.write(fd, arch(len(CALLS) - 1, value={**VALUE, "number": CLAIMED}) + b"\n")
    return sum(p.numel() for p in model.parameters())
