"""One unit of a batch: an upload's private snapshot scored on one prepared task.

What the scheduler (``evaluator.batch``) and its backends (the local slots, ``ray_backend``)
share: the upload and unit descriptions, the settings every unit runs with, and ``run_unit``,
which scores a unit wherever a backend runs it and never raises: a failure of the machinery is
an ``internal_error`` record with its traceback, told apart from everything the submission does.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from evaluator.protocol import (
    INTERNAL_ERROR,
    OK,
    TaskMetrics,
    TaskResult,
    UnitRecord,
    describe_fault,
)
from evaluator.report import launch_record
from evaluator.runner import PreparedTask, run_tasks, stopped_result, versions
from evaluator.sandbox import Limits, resolve_isolation
from evaluator.store import UnitKey, utc_now
from evaluator.submission import Submission

ERROR_TAIL = 4000  # characters of a failed unit's last worker stderr kept as its error text


@dataclass(frozen=True)
class Upload:
    """One upload of the uploads directory, snapshotted privately when it was scanned."""

    name: str  # the store's key of its file name (``protocol.upload_key``)
    path: Path
    kind: str  # "dir" | "file" | "symlink" | "other"
    sha256: str  # the evaluator's submission digest; raw bytes' digest when rejected
    uploaded_at: str  # newest modification time (ISO 8601 UTC)
    root: Path | None  # the private snapshot the units score (None when rejected)
    form: str = ""
    rejected: str = ""  # why it was rejected ("" when accepted)
    fault: UnitRecord | None = None  # the machinery failed on it while scanning


@dataclass(frozen=True)
class UnitJob:
    """One unit of work: an upload on a task (``space/task``)."""

    upload: Upload
    task: str

    @property
    def key(self) -> UnitKey:
        """The unit's key in the store."""
        return UnitKey(self.upload.name, self.upload.sha256, self.task)


@dataclass(frozen=True)
class UnitSettings:
    """What every unit of a batch runs with."""

    limits: Limits
    isolation: str  # requested mode, resolved where the unit runs: auto | bwrap | none
    hidden: Path | None = None  # the results directory, masked in sandboxes
    containment: str = "auto"  # requested cgroup + private tmpfs: auto | require | off
    model_flavor: str | None = None  # zcproxies.build's flavor; None: by submission form


def unreadable_digest(name: str) -> str:
    """The content hash of an upload whose content could not be read: from its name alone."""
    return hashlib.sha256(b"unreadable\0" + os.fsencode(name)).hexdigest()


def environment(isolation: dict[str, str]) -> dict[str, Any]:
    """Versions, isolation, host and CPUs of the process running a unit (stored per unit)."""
    return {
        **versions(),
        "isolation": isolation,
        "host": socket.gethostname(),
        "cpus": sorted(os.sched_getaffinity(0)),
    }


def fresh(prepared: PreparedTask) -> PreparedTask:
    """``prepared`` with its own copy of the records (the task is shared by every unit)."""
    return replace(prepared, records=[replace(r) for r in prepared.records])


def result_outcome(result: TaskResult, submission: Submission | None) -> UnitRecord:
    """The stored form of one scored (or rejected) task."""
    launches = [launch_record(info) for info in result.launches]
    error = result.error
    if not error and result.status != OK and result.launches:
        error = result.launches[-1].stderr_tail[-ERROR_TAIL:]
    return UnitRecord(
        status=result.status,
        message=result.message,
        error=error,
        metrics=result.metrics,
        wall_seconds=result.wall_seconds,
        launches=len(launches),
        launches_detail=launches,
        batch=asdict(result.batch),
        batch_fingerprint=result.batch.fingerprint,
        form=submission.form if submission else "",
        model_flavor=result.model_flavor,
        submission={k: v for k, v in submission.to_dict().items() if k != "source"}
        if submission
        else {"rejected": result.message},
        archs=result.archs,
    )


def internal_error(exc: BaseException) -> UnitRecord:
    """The record of a unit whose evaluation machinery failed (retried with retry_failed)."""
    message, trace = describe_fault(exc)
    return UnitRecord(status=INTERNAL_ERROR, message=message, error=trace, metrics=TaskMetrics())


def stamped(record: UnitRecord, started: str, isolation: dict[str, str]) -> UnitRecord:
    """``record`` with when and where it ran."""
    env = environment(isolation)
    return replace(
        record,
        started_at=started,
        finished_at=utc_now(),
        isolation=isolation["mode"],
        host=env["host"],
        environment=env,
    )


def run_unit(source: str, prepared: PreparedTask, settings: UnitSettings) -> UnitRecord:
    """Score ``source`` (an upload's private copy) on one prepared task: its record.

    Runs wherever a backend puts it (a scheduler thread, a Ray worker); the submission itself
    runs in the sandboxed worker process. Never raises (see module doc).
    """
    started, began = utc_now(), time.monotonic()
    isolation = {"mode": "", "detail": ""}
    try:
        iso = resolve_isolation(settings.isolation, settings.containment)
        isolation = iso.to_dict()
        scored = run_tasks(
            source,
            [fresh(prepared)],
            settings.limits,
            iso,
            settings.hidden,
            progress=False,
            model_flavor=settings.model_flavor,
        )
        return stamped(result_outcome(scored.results[0], scored.submission), started, isolation)
    except Exception as exc:
        record = replace(internal_error(exc), wall_seconds=time.monotonic() - began)
        try:
            return stamped(record, started, isolation)
        except Exception:  # not even the environment: the record as it is
            return record


def rejected_outcome(job: UnitJob, prepared: PreparedTask) -> UnitRecord:
    """The record of a unit whose upload was rejected (or could not be read) when it was
    scanned: nothing runs."""
    started = utc_now()
    if job.upload.fault is not None:
        return stamped(job.upload.fault, started, {"mode": "", "detail": ""})
    try:
        result = stopped_result(fresh(prepared), "rejected", job.upload.rejected)
        record = result_outcome(result, None)
    except Exception as exc:
        record = internal_error(exc)
    return stamped(record, started, {"mode": "", "detail": ""})
