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
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evaluator import policy
from evaluator.report import task_record
from evaluator.runner import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_N_ARCHS,
    PreparedTask,
    TaskResult,
    prepare_task,
    rejected_result,
    run_tasks,
    versions,
)
from evaluator.sandbox import Limits, resolve_isolation, warn_no_isolation
from evaluator.store import INTERNAL_ERROR, ResultsStore, UnitKey, utc_now
from evaluator.submission import Submission, SubmissionRejected, open_submission
from evaluator.tasks import as_tasks
from zcproxies.benchdata.registry import resolve_benchmark
from zcproxies.errors import ZcpError

BACKENDS = ("local", "ray")
SNAPSHOT_DIR = ".snapshots"  # private copies of the uploads during a run (under RESULTS_DIR)
LOCK_NAME = "batch.lock"
ERROR_TAIL = 4000  # characters of a failed unit's last worker stderr kept as its error text
CHUNK = 1 << 20

Outcome = dict[str, Any]  # what running one unit produced (columns of ``units`` + "archs")


class BatchBusy(ZcpError):
    """Another batch is writing the same results directory."""


@dataclass(frozen=True)
class Upload:
    """One upload of the uploads directory, snapshotted privately when it was scanned."""

    name: str  # file or directory name in the uploads directory
    path: Path
    kind: str  # "dir" | "file" | "symlink" | "other"
    sha256: str  # the evaluator's submission digest; raw bytes' digest when rejected
    uploaded_at: str  # newest modification time (ISO 8601 UTC)
    root: Path | None  # the private snapshot the units score (None when rejected)
    form: str = ""
    rejected: str = ""  # why it was rejected ("" when accepted)


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


@dataclass
class BatchSummary:
    """What one batch invocation did."""

    run_id: int
    uploads: int
    planned: int  # units run now
    skipped: int  # units already recorded (done, or failed without retry_failed)
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def describe(self) -> str:
        """One line for the command line."""
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())) or "nothing"
        return (
            f"run {self.run_id}: {self.uploads} upload(s), {self.planned} unit(s) evaluated "
            f"({counts}), {self.skipped} already recorded, {self.seconds:.0f} s"
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
        digest.update(f"{item.relative_to(path).as_posix()}\0{kind}\0".encode())
        if kind == "file":
            with item.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
        elif kind == "symlink":
            digest.update(os.readlink(item).encode())
    return digest.hexdigest()


def newest_mtime(path: Path) -> str:
    """The latest modification time of ``path`` or anything under it, ISO 8601 UTC."""
    newest = max(item.lstat().st_mtime for item in _walk(path))
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(newest))


def snapshot_upload(path: Path, workdir: Path) -> Upload:
    """Check ``path`` and copy it privately to ``workdir`` (``open_submission``): the units score
    this copy, so an upload changed during the batch cannot mix two contents under one hash."""
    kind, uploaded = _kind(path), newest_mtime(path)
    try:
        sub = open_submission(path, workdir)
    except SubmissionRejected as exc:
        return Upload(path.name, path, kind, raw_digest(path), uploaded, None, "", str(exc))
    return Upload(path.name, path, kind, sub.sha256, uploaded, sub.root, sub.form)


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
    limits: Limits,
    isolation: str,
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
        "limits": limits.to_dict(),
        "isolation": isolation,
        "max_failed_fraction": policy.MAX_FAILED_FRACTION,
    }


# ---- one unit ------------------------------------------------------------------------------------
def environment(isolation: dict[str, str]) -> dict[str, Any]:
    """Versions, isolation, host and CPUs of the process running a unit (stored per unit)."""
    return {
        **versions(),
        "isolation": isolation,
        "host": socket.gethostname(),
        "cpus": sorted(os.sched_getaffinity(0)),
    }


def result_outcome(result: TaskResult, submission: Submission | None) -> Outcome:
    """The stored form of one scored (or rejected) task."""
    record = task_record(result)
    launches = record["launches"]
    failed = result.status != "ok" and launches
    return {
        "status": result.status,
        "message": result.message,
        "error": launches[-1]["stderr_tail"][-ERROR_TAIL:] if failed else "",
        "metrics": result.metrics,
        "wall_seconds": result.wall_seconds,
        "launches": len(launches),
        "launches_detail": launches,
        "batch": result.batch,
        "batch_fingerprint": result.batch["fingerprint"],
        "form": submission.form if submission else "",
        "submission": {k: v for k, v in submission.to_dict().items() if k != "source"}
        if submission
        else {"rejected": result.message},
        "archs": record["archs"],
    }


def run_unit(source: str, prepared: PreparedTask, settings: UnitSettings) -> Outcome:
    """Score ``source`` (an upload's private copy) on one prepared task: its outcome.

    Runs wherever a backend puts it (a scheduler thread, a Ray worker); the submission itself
    runs in the sandboxed worker process. Never raises: a failure of the machinery becomes an
    ``internal_error`` outcome with its traceback.
    """
    started, began = utc_now(), time.monotonic()
    isolation = {"mode": "", "detail": ""}
    try:
        iso = resolve_isolation(settings.isolation)
        isolation = iso.to_dict()
        # The prepared task is shared by every unit of the task: score a fresh copy of its records.
        fresh = replace(prepared, records=[replace(r) for r in prepared.records])
        sub, (result,) = run_tasks(source, [fresh], settings.limits, iso, settings.hidden, False)
        outcome = result_outcome(result, sub)
    except Exception as exc:
        outcome = internal_error(exc, traceback.format_exc())
        outcome["wall_seconds"] = time.monotonic() - began
    outcome.update(
        started_at=started,
        finished_at=utc_now(),
        isolation=isolation["mode"],
        environment=environment(isolation),
    )
    return outcome


def internal_error(exc: BaseException, trace: str) -> Outcome:
    """The outcome of a unit whose evaluation machinery failed (retried with retry_failed)."""
    return {
        "status": INTERNAL_ERROR,
        "message": f"{type(exc).__name__}: {exc}",
        "error": trace[-ERROR_TAIL:],
        "metrics": {"kendall_tau": 0.0},
        "launches": 0,
        "archs": [],
    }


def rejected_outcome(job: UnitJob, prepared: PreparedTask) -> Outcome:
    """The outcome of a unit whose upload was rejected when it was opened (nothing runs)."""
    outcome = result_outcome(rejected_result(prepared, job.upload.rejected), None)
    now = utc_now()
    outcome.update(started_at=now, finished_at=now, environment=environment({}))
    return outcome


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
) -> Iterator[tuple[UnitJob, Outcome]]:
    """Run ``jobs`` on ``workers`` slots of this machine; yield each outcome as it finishes.

    A slot is a scheduler thread pinned to its CPUs that drives one unit at a time; the unit's
    sandboxed worker processes inherit the pinning and die with the scheduler.
    """
    todo: queue.SimpleQueue[UnitJob] = queue.SimpleQueue()
    done: queue.SimpleQueue[tuple[UnitJob, Outcome]] = queue.SimpleQueue()
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
            done.put((job, run_unit(str(job.upload.root), prepared[job.task], settings)))

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
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> BatchSummary:
    """Evaluate every upload of ``uploads_dir`` on every task of ``benchmark`` (default: the
    embedded one) into the store of ``out_dir`` (see module doc); what was done.

    ``backend``: ``local`` (``workers`` slots on this machine) or ``ray`` (Ray tasks on the
    cluster at ``address``, or on a local Ray instance when ``address`` is None).
    """
    began = time.monotonic()
    limits = limits or Limits()
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if workers < 1 or n_archs < 2 or batch_size < 1:
        raise ValueError("workers and batch_size must be >= 1 and n_archs >= 2")
    uploads_path = Path(uploads_dir)
    if not uploads_path.is_dir():
        raise ValueError(f"{uploads_path}: not a directory of uploads")
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    tasks = as_tasks(benchmark)
    bench_file = resolve_benchmark(benchmark)
    config = batch_config(
        [t.key for t in tasks], bench_file, n_archs, seed, batch_size, limits, isolation
    )
    settings = UnitSettings(limits, isolation, out)
    if backend == "local":  # probe the sandbox once, before any thread needs it
        warn_no_isolation(resolve_isolation(isolation))
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
            with tqdm(total=len(jobs), disable=not progress, unit="unit", desc="zcp batch") as bar:
                for job, outcome in _outcomes(jobs, prepared, settings, workers, backend, address):
                    space, _, task_name = job.task.partition("/")
                    row = {
                        **common,
                        **outcome,
                        "space": space,
                        "task_name": task_name,
                        "uploaded_at": job.upload.uploaded_at,
                    }
                    store.write_unit(job.key, row, outcome["archs"])
                    summary.statuses[outcome["status"]] += 1
                    bar.set_postfix_str(f"{job.upload.name} {job.task}: {outcome['status']}")
                    bar.update(1)
            store.update_run(run_id, finished=True, units_done=summary.statuses.total())
        finally:
            shutil.rmtree(snapshots, ignore_errors=True)
    summary.seconds = time.monotonic() - began
    return summary


def _outcomes(
    jobs: list[UnitJob],
    prepared: Mapping[str, PreparedTask],
    settings: UnitSettings,
    workers: int,
    backend: str,
    address: str | None,
) -> Iterator[tuple[UnitJob, Outcome]]:
    """Every job's outcome as it finishes: rejected uploads at once, the rest by the backend."""
    for job in jobs:
        if job.upload.root is None:
            yield job, rejected_outcome(job, prepared[job.task])
    runnable = [job for job in jobs if job.upload.root is not None]
    if not runnable:
        return
    if backend == "ray":
        from evaluator.ray_backend import ray_outcomes

        yield from ray_outcomes(runnable, prepared, settings, workers, address)
    else:
        yield from local_outcomes(runnable, prepared, settings, workers)
