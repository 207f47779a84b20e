"""Organizers' batch evaluation: every upload of a directory on every task of a benchmark.

The unit of work is one (upload, task). Each unit is scored exactly like ``evaluate`` scores a
task (``runner.run_tasks``: the submission runs in the evaluator's sandboxed worker process,
never in the scheduler), with the same limits, seed, architecture sample and minibatch for every
upload. ``workers`` units run at a time; on the local backend each slot is pinned to its own
``Limits.threads`` CPUs (its worker processes inherit the slot's CPU affinity), so that limits
and timings stay fair under load. The scheduler alone writes the results store
(``evaluator.store``), one transaction per unit as soon as it finishes: a batch killed at any
moment loses nothing recorded, and the next run skips what is done, retries failed units only
with ``retry_failed``, and evaluates an upload again when its content (hash) changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import queue
import shutil
import socket
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evaluator import policy
from evaluator.protocol import (
    INTERNAL_ERROR,
    UnitRecord,
    describe_fault,
    display_name,
    safe_text,
    upload_key,
)
from evaluator.runner import DEFAULT_BATCH_SIZE, DEFAULT_N_ARCHS, PreparedTask, prepare_task
from evaluator.sandbox import Limits, resolve_isolation, warn_no_isolation
from evaluator.store import ResultsStore, UnitKey, utc_now
from evaluator.submission import SubmissionRejected, open_submission
from evaluator.tasks import as_tasks
from evaluator.unit import (
    UnitJob,
    UnitSettings,
    Upload,
    internal_error,
    rejected_outcome,
    run_unit,
    unreadable_digest,
)
from zcproxies.benchdata.registry import resolve_benchmark
from zcproxies.errors import ZcpError
from zcproxies.spaces.base import check_flavor

BACKENDS = ("local", "ray")
SNAPSHOT_DIR = ".snapshots"  # private copies of the uploads during a run (under RESULTS_DIR)
LOCK_NAME = "batch.lock"
CHUNK = 1 << 20
REJECTION_LIMIT = 2000  # characters of a rejection message kept


class BatchBusy(ZcpError):
    """Another batch is writing the same results directory."""


@dataclass
class BatchSummary:
    """What one batch invocation did."""

    run_id: int
    uploads: int
    planned: int  # units run now
    skipped: int  # units already recorded (done, or failed without retry_failed)
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C: the units recorded so far are kept

    def describe(self) -> str:
        """One line for the command line."""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())) or "nothing"
        done = self.statuses.total()
        stopped = (
            f"; INTERRUPTED after {done} of {self.planned} planned unit(s): rerun the same "
            "command to finish"
            if self.interrupted
            else ""
        )
        return (
            f"run {self.run_id}: {self.uploads} upload(s), {done} unit(s) evaluated "
            f"({counts}), {self.skipped} already recorded, {self.seconds:.0f} s{stopped}"
        )


# ---- uploads -------------------------------------------------------------------------------------
def _kind(path: Path) -> str:
    """What ``path`` is, without following a symlink."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return "symlink"
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _walk(path: Path) -> list[Path]:
    """``path`` and, for a directory, everything under it (symlinks not followed), sorted."""
    if _kind(path) != "dir":
        return [path]
    found = [path]
    for dirpath, dirnames, filenames in os.walk(path):
        found += [Path(dirpath, name) for name in dirnames + filenames]
    return sorted(found)


def raw_digest(path: Path) -> str:
    """sha256 of an upload as it lies on disk (names, kinds, bytes, link targets), never
    following symlinks or reading special files: the content hash of a rejected upload."""
    digest = hashlib.sha256()
    for item in _walk(path):
        kind = _kind(item)
        digest.update(os.fsencode(item.relative_to(path).as_posix()) + f"\0{kind}\0".encode())
        if kind == "file":
            with item.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
        elif kind == "symlink":
            digest.update(os.fsencode(os.readlink(item)))
    return digest.hexdigest()


def newest_mtime(path: Path) -> str:
    """The latest modification time of ``path`` or anything under it, ISO 8601 UTC."""
    newest = max(item.lstat().st_mtime for item in _walk(path))
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(newest))


def snapshot_upload(path: Path, workdir: Path) -> Upload:
    """Check ``path`` and copy it privately to ``workdir`` (``open_submission``): the units score
    this copy, so an upload changed during the batch cannot mix two contents under one hash.

    Its key is ``protocol.upload_key`` of its file name (any bytes). Never raises: a failure of
    the machinery on this upload (e.g. an unreadable file) is kept as its ``fault`` and each of
    its units is recorded as ``internal_error``.
    """
    name = upload_key(path.name)
    try:
        kind, uploaded = _kind(path), newest_mtime(path)
        try:
            sub = open_submission(path, workdir)
        except SubmissionRejected as exc:
            why = safe_text(str(exc), REJECTION_LIMIT, multiline=False)  # quotes file names
            return Upload(name, path, kind, raw_digest(path), uploaded, None, "", why)
        return Upload(name, path, kind, sub.sha256, uploaded, sub.root, sub.form)
    except Exception as exc:
        message, trace = describe_fault(exc)
        fault = UnitRecord(status=INTERNAL_ERROR, message=message, error=trace)
        return Upload(
            name, path, "other", unreadable_digest(path.name), utc_now(), None, "", "", fault
        )


def scan_uploads(uploads_dir: Path, snapshot_dir: Path, results_dir: Path) -> list[Upload]:
    """Every entry of ``uploads_dir`` not starting with a dot, snapshotted, sorted by name.

    Anything that is not a directory or a zip is kept, to be recorded as ``rejected``; the
    results directory is skipped should it lie among the uploads.
    """
    entries = sorted(
        p
        for p in uploads_dir.iterdir()
        if not p.name.startswith(".") and p.absolute() != results_dir
    )
    return [snapshot_upload(p, snapshot_dir / f"{i:06d}") for i, p in enumerate(entries)]


# ---- planning ------------------------------------------------------------------------------------
def plan(
    uploads: list[Upload],
    task_keys: list[str],
    recorded: Mapping[UnitKey, str],
    retry_failed: bool,
) -> tuple[list[UnitJob], int]:
    """(units to run, units skipped): a unit runs when it is not recorded, or when it is
    recorded with a status other than ``ok`` and ``retry_failed`` is set."""
    jobs: list[UnitJob] = []
    skipped = 0
    for upload in uploads:
        for task in task_keys:
            job = UnitJob(upload, task)
            status = recorded.get(job.key)
            if status is None or (retry_failed and status != "ok"):
                jobs.append(job)
            else:
                skipped += 1
    return jobs, skipped


def batch_config(
    tasks: list[str],
    benchmark: Path,
    n_archs: int,
    seed: int,
    batch_size: int,
    settings: UnitSettings,
) -> dict[str, Any]:
    """Everything that must be equal for results to be comparable (stored with the results)."""
    digest = hashlib.sha256()
    with benchmark.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return {
        "benchmark_sha256": digest.hexdigest(),
        "tasks": tasks,
        "n_archs": n_archs,
        "seed": seed,
        "batch_size": batch_size,
        "limits": settings.limits.to_dict(),
        "isolation": settings.isolation,
        "containment": settings.containment,
        "max_failed_fraction": policy.MAX_FAILED_FRACTION,
        "model_flavor": settings.model_flavor or "by form (competition: naslib, others: benchmark)",
    }


# ---- the local backend ---------------------------------------------------------------------------
def slot_cpus(workers: int, threads: int) -> list[set[int]]:
    """The CPUs of each of ``workers`` slots: ``threads`` each, disjoint while they fit."""
    cpus = sorted(os.sched_getaffinity(0))
    if workers * threads > len(cpus):
        print(
            f"zcp batch: warning: {workers} workers x {threads} threads > {len(cpus)} CPUs: "
            "slots share CPUs, timings and time limits are less fair",
            file=sys.stderr,
        )
    return [{cpus[(i * threads + j) % len(cpus)] for j in range(threads)} for i in range(workers)]


def local_outcomes(
    jobs: list[UnitJob],
    prepared: Mapping[str, PreparedTask],
    settings: UnitSettings,
    workers: int,
) -> Iterator[tuple[UnitJob, UnitRecord]]:
    """Run ``jobs`` on ``workers`` slots of this machine; yield each outcome as it finishes.

    A slot is a scheduler thread pinned to its CPUs that drives one unit at a time; the unit's
    sandboxed worker processes inherit the pinning and die with the scheduler.
    """
    todo: queue.SimpleQueue[UnitJob] = queue.SimpleQueue()
    done: queue.SimpleQueue[tuple[UnitJob, UnitRecord]] = queue.SimpleQueue()
    stop = threading.Event()
    for job in jobs:
        todo.put(job)

    def slot(cpus: set[int]) -> None:
        os.sched_setaffinity(0, cpus)  # this thread only; processes it starts inherit it
        while not stop.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                outcome = run_unit(str(job.upload.root), prepared[job.task], settings)
            except BaseException as exc:  # run_unit does not raise; a slot must never die
                outcome = internal_error(exc)
            done.put((job, outcome))

    threads = [
        threading.Thread(target=slot, args=(cpus,), daemon=True, name=f"zcp-slot-{i}")
        for i, cpus in enumerate(slot_cpus(min(workers, len(jobs)), settings.limits.threads))
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in jobs:
            yield done.get()
    finally:  # stop handing out units if the consumer stops early
        stop.set()


# ---- the batch -----------------------------------------------------------------------------------
@contextlib.contextmanager
def batch_lock(results_dir: Path) -> Iterator[None]:
    """Hold the results directory's lock (released by the kernel even on ``kill -9``)."""
    handle = (results_dir / LOCK_NAME).open("a")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchBusy(f"another zcp batch is writing {results_dir}") from None
        yield
    finally:
        handle.close()


def fresh_dir(path: Path) -> Path:
    """``path`` emptied (leftovers of a killed run removed), private to this user."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path


def run_batch(
    uploads_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    benchmark: str | os.PathLike[str] | None = None,
    n_archs: int = DEFAULT_N_ARCHS,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limits: Limits | None = None,
    isolation: str = "auto",
    containment: str = "auto",
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    model_flavor: str | None = None,
) -> BatchSummary:
    """Evaluate every upload of ``uploads_dir`` on every task of ``benchmark`` (default: the
    embedded one) into the store of ``out_dir`` (see module doc); what was done.

    ``backend``: ``local`` (``workers`` slots on this machine) or ``ray`` (Ray tasks on the
    cluster at ``address``, or on a local Ray instance when ``address`` is None).
    ``model_flavor``: ``zcproxies.build``'s flavor, None for each upload form's default.
    """
    began = time.monotonic()
    limits = limits or Limits()
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if workers < 1 or n_archs < 2 or batch_size < 1:
        raise ValueError("workers and batch_size must be >= 1 and n_archs >= 2")
    if model_flavor is not None:
        check_flavor(model_flavor)
    uploads_path = Path(uploads_dir)
    if not uploads_path.is_dir():
        raise ValueError(f"{uploads_path}: not a directory of uploads")
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    tasks = as_tasks(benchmark)
    bench_file = resolve_benchmark(benchmark)
    settings = UnitSettings(limits, isolation, out, containment, model_flavor)
    config = batch_config([t.key for t in tasks], bench_file, n_archs, seed, batch_size, settings)
    if backend == "local":  # probe the sandbox once, before any thread needs it
        warn_no_isolation(resolve_isolation(isolation, containment))
    with batch_lock(out), ResultsStore.in_dir(out) as store:
        config_fingerprint = store.adopt_config(config)
        run_id = store.begin_run(backend, workers, socket.gethostname())
        snapshots = fresh_dir(out / SNAPSHOT_DIR)
        try:
            uploads = scan_uploads(uploads_path, snapshots, out)
            for u in uploads:
                store.see_upload(u.name, u.sha256, u.kind, u.form, u.rejected, u.uploaded_at)
            jobs, skipped = plan(uploads, config["tasks"], store.statuses(), retry_failed)
            store.update_run(run_id, units_planned=len(jobs), units_skipped=skipped)
            summary = BatchSummary(run_id, len(uploads), len(jobs), skipped)
            needed = {job.task for job in jobs}
            prepared = {
                t.key: prepare_task(t, n_archs, seed, batch_size) for t in tasks if t.key in needed
            }
            common = {
                "seed": seed,
                "n_archs": n_archs,
                "batch_size": batch_size,
                "limits": limits.to_dict(),
                "config_fingerprint": config_fingerprint,
                "run_id": run_id,
                "backend": backend,
            }
            outcomes = _outcomes(jobs, prepared, settings, workers, backend, address)
            with tqdm(total=len(jobs), disable=not progress, unit="unit", desc="zcp batch") as bar:
                try:
                    for job, outcome in outcomes:
                        status = record_unit(store, job, outcome, common)
                        summary.statuses[status] += 1
                        shown = display_name(job.upload.name)
                        bar.set_postfix_str(f"{shown} {job.task}: {status}")
                        bar.update(1)
                except KeyboardInterrupt:  # what is recorded stays; a rerun does the rest
                    summary.interrupted = True
                    outcomes.close()  # stop handing out units
            store.update_run(
                run_id, finished=not summary.interrupted, units_done=summary.statuses.total()
            )
        finally:
            shutil.rmtree(snapshots, ignore_errors=True)
    summary.seconds = time.monotonic() - began
    return summary


def record_unit(
    store: ResultsStore, job: UnitJob, outcome: UnitRecord, common: dict[str, Any]
) -> str:
    """Write one unit's record with the batch's facts; its status.

    Should the write fail (whatever the record holds), the unit is recorded as an
    ``internal_error`` naming the failure instead, and the batch goes on; only a store that
    cannot take even that stops the batch.
    """
    space, _, task_name = job.task.partition("/")
    record = replace(
        outcome,
        **common,
        space=space,
        task_name=task_name,
        uploaded_at=job.upload.uploaded_at,
    )
    try:
        store.write_unit(job.key, record)
    except Exception as exc:
        fault = internal_error(exc)
        record = replace(
            record, status=fault.status, message=fault.message, error=fault.error, archs=[]
        )
        store.write_unit(job.key, record)
    return record.status


def _outcomes(
    jobs: list[UnitJob],
    prepared: Mapping[str, PreparedTask],
    settings: UnitSettings,
    workers: int,
    backend: str,
    address: str | None,
) -> Iterator[tuple[UnitJob, UnitRecord]]:
    """Every job's outcome as it finishes: rejected uploads at once, the rest by the backend."""
    for job in jobs:
        if job.upload.root is None:
            try:
                outcome = rejected_outcome(job, prepared[job.task])
            except Exception as exc:
                outcome = internal_error(exc)
            yield job, outcome
    runnable = [job for job in jobs if job.upload.root is not None]
    if not runnable:
        return
    if backend == "ray":
        from evaluator.ray_backend import ray_outcomes

        yield from ray_outcomes(runnable, prepared, settings, workers, address)
    else:
        yield from local_outcomes(runnable, prepared, settings, workers)
