"""The scoring policy, in one place: what a returned value, a failure or a limit means.

The statuses themselves are defined in ``evaluator.protocol.STATUSES``.

Per architecture (``ARCH_STATUSES``):

``ok``             a usable score, as NASLib's evaluator took them: an ``int`` or ``float``, a
                   numpy integer or floating scalar, a real torch tensor / numpy array of ONE
                   element (any shape), a ``bool`` or any other object ``float()`` accepts
                   (``__float__``); finite. Anything but a plain int/float is converted with
                   ``float`` and the conversion is recorded in the architecture's message.
``invalid_score``  anything else: NaN, +/-inf, None, text, complex, tensors/arrays of several
                   (or no) elements, objects ``float()`` refuses.
``error``          the proxy (or building the model) raised an exception.
``memory``         the proxy ran out of memory (MemoryError, an allocator failure, or a worker
                   killed while its stderr reports one).
``crash``          the worker died inside this architecture (signal, ``os._exit``, segfault).
``timeout`` / ``crash`` / ``error`` / ``rejected`` / ``interrupted`` / a limit of the whole
                   tree: not scored because the task stopped first (the task's status).

Per task (``TASK_STATUSES``): ``ok``, ``timeout`` (task or total wall-clock limit), ``crash``
(the worker died before it was ready, or too many architectures crashed), ``error`` (exception
in ``__init__``/``pre_process``/``setup``, or too many architectures raised), ``memory``,
``invalid_score`` (too many unusable values), ``rejected`` (the submission cannot be loaded:
bad archive, no entry file, syntax or import error, missing class/function), ``interrupted``
(not run to its end: Ctrl-C, or the total time limit reached before the task started),
``internal_error`` (the evaluator itself failed: not the submission's doing), and a limit of the
upload's whole process tree (``sandbox.WorkerProcess.limit_hit``), which ends the task at once
with the limit's status: ``memory`` (the kernel killed a process at the memory cap),
``processes`` (a fork refused at the process cap), ``disk`` (the private /tmp and /dev/shm full:
bytes or files), ``cpu`` (more CPU seconds than ``threads`` x the task time).

A task counts its Kendall-Tau only with status ``ok``; any other status counts 0. Failed
architectures of an ``ok`` task are ranked last, tied (the rule of NAS-Bench-Suite-Zero and of
``zcproxies.proxies.finite_score``); a task is ``ok`` while at most ``MAX_FAILED_FRACTION`` of its
architectures failed, otherwise it takes the most frequent failure status.
"""

from __future__ import annotations

import math
import signal
from collections import Counter
from dataclasses import dataclass

from evaluator.protocol import ARCH_FAILURES, ARCH_STATUSES, ArchResult, ExceptionInfo, ValueInfo

MAX_FAILED_FRACTION = 0.25
ACCEPTED_KINDS = ("int", "float", "numpy_scalar", "tensor", "ndarray", "bool", "other")
PLAIN_KINDS = ("int", "float")  # taken as they are; other accepted kinds are conversions
MEMORY_MARKERS = (
    "MemoryError",
    "can't allocate memory",
    "out of memory",
    "std::bad_alloc",
    "Cannot allocate memory",
)
# Load-error stages whose failure means the submission itself is unusable.
REJECTING_STAGES = ("import", "interface")


@dataclass(frozen=True)
class ArchOutcome:
    """The decision for one architecture: status, the score used for ranking, and why."""

    status: str
    score: float | None  # the accepted score (None unless status is ok)
    message: str = ""


def judge_value(value: ValueInfo) -> ArchOutcome:
    """Accept or refuse a returned value described by ``worker.describe_value``."""
    kind, number, shape = value.kind, value.number, value.shape
    shown = f"{value.type} {value.repr}"
    if kind not in ACCEPTED_KINDS:
        return ArchOutcome("invalid_score", None, f"not a number: {shown}")
    if kind in ("tensor", "ndarray") and shape and math.prod(shape) != 1:
        return ArchOutcome(
            "invalid_score",
            None,
            f"{kind} of shape {shape} holds {math.prod(shape)} values, not one "
            f"(return one number, e.g. .sum().item()): {shown}",
        )
    if number is None:
        return ArchOutcome("invalid_score", None, f"not a real number: {shown}")
    if not math.isfinite(number):
        return ArchOutcome("invalid_score", None, f"not finite: {number}")
    if kind in PLAIN_KINDS:
        return ArchOutcome("ok", float(number))
    form = f" of shape {shape}" if shape is not None else ""
    return ArchOutcome("ok", float(number), f"converted {value.type}{form} to {number!r}")


def is_memory_failure(text: str) -> bool:
    """True when an exception type/message or a stderr tail reports an allocation failure."""
    return any(marker in text for marker in MEMORY_MARKERS)


def where(frames: tuple[str, ...]) -> str:
    """`` (at submission.py:12 in query <- ...)``: the submission's own traceback frames,
    innermost first ("" when there are none)."""
    return " (at " + " <- ".join(reversed(frames)) + ")" if frames else ""


def judge_exception(exception: ExceptionInfo) -> ArchOutcome:
    """The status of an exception raised by the proxy: ``memory`` or ``error``; the message
    names the exception and where in the submission's files it was raised."""
    text = f"{exception.type}: {exception.message}{where(exception.frames)}"
    status = "memory" if is_memory_failure(text) else "error"
    return ArchOutcome(status, None, text)


def judge_arch_event(event: ArchResult) -> ArchOutcome:
    """The outcome of one ``arch`` protocol event."""
    if event.exception is not None:
        return judge_exception(event.exception)
    assert event.value is not None  # the decoder builds an event with one or the other
    return judge_value(event.value)


def judge_death(stderr_tail: str, returncode: int) -> ArchOutcome:
    """The outcome for the architecture a worker died in."""
    if is_memory_failure(stderr_tail[-4000:]):
        return ArchOutcome(
            "memory", None, f"worker died ({describe_exit(returncode)}) out of memory"
        )
    return ArchOutcome("crash", None, f"worker died ({describe_exit(returncode)})")


def describe_exit(returncode: int) -> str:
    """``-11`` or bwrap's ``139`` (128 + signal) -> ``signal 11 (SIGSEGV)``; others as they are."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"exit {returncode}"
    return f"exit {returncode}: signal {number} ({name})"


def load_error_status(stage: str, exception: ExceptionInfo) -> str:
    """Task status for a failure while loading the submission (see module doc)."""
    if stage in REJECTING_STAGES:
        return "rejected"
    return judge_exception(exception).status


def task_status(arch_statuses: list[str]) -> tuple[str, str]:
    """(status, message) of a task that ran to its end, from its architectures' statuses."""
    n = len(arch_statuses)
    failed = [s for s in arch_statuses if s != "ok"]
    if not failed:
        return "ok", ""
    counts = Counter(failed)
    summary = ", ".join(f"{counts[s]} {s}" for s in ARCH_STATUSES if counts[s])
    if len(failed) <= MAX_FAILED_FRACTION * n:
        return "ok", f"{len(failed)}/{n} architectures failed ({summary}): ranked last"
    worst = max(ARCH_FAILURES, key=lambda s: (counts[s], -ARCH_FAILURES.index(s)))
    return worst, (
        f"{len(failed)}/{n} architectures failed ({summary}), more than "
        f"{MAX_FAILED_FRACTION:.0%}: the task counts Kendall-Tau 0"
    )


def ranking_scores(scores: list[float | None]) -> list[float]:
    """Scores for ranking: failed architectures (None) become -inf, i.e. last and tied."""
    return [-math.inf if s is None else s for s in scores]
