"""Orchestration: ``evaluate`` (score a submission on tasks) and ``check`` (a quick trial).

Per task: a seeded sample of architectures, ONE fixed minibatch shared by all of them, a worker
(``evaluator.worker``) launched in the sandbox that builds and scores each architecture and
streams the results; a worker that dies inside an architecture is restarted on the remaining
ones (up to ``Limits.max_restarts``); the task's limits are enforced by killing the worker.
``policy`` turns what happened into statuses, ``metrics`` into numbers, ``report`` into files.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

import zcproxies
from evaluator import metrics, policy
from evaluator.protocol import (
    INTERNAL_ERROR,
    INTERRUPTED,
    OK,
    STDERR_KEPT,
    ArchRecord,
    ArchResult,
    BatchInfo,
    BatchMeta,
    Done,
    Job,
    JobArch,
    JobPaths,
    Launch,
    LoaderInfo,
    LoadError,
    Ready,
    Started,
    TaskMetrics,
    TaskResult,
    TreeUsage,
    decode_event,
    describe_fault,
    safe_text,
)
from evaluator.report import check_writable, summary_frame, write_reports
from evaluator.sandbox import (
    Isolation,
    Limits,
    Mounts,
    WorkerProcess,
    launch,
    prepare_tmp,
    resolve_isolation,
    sandbox_uid,
    warn_no_isolation,
    worker_paths,
)
from evaluator.submission import (
    BUILTIN_PREFIX,
    Submission,
    SubmissionRejected,
    builtin_submission,
    open_submission,
)
from evaluator.tasks import EvalTask, TaskSource, arch_seed, as_tasks, sample_rows, select_tasks
from zcproxies.data import Batch, batch_for_task, data_root
from zcproxies.errors import DataError, UnknownName
from zcproxies.paths import shared_data_dir
from zcproxies.spaces import get_space
from zcproxies.spaces.base import check_flavor

DEFAULT_N_ARCHS = 100
DEFAULT_BATCH_SIZE = 64
EXIT_GRACE = 5.0  # s a worker that said "done" gets to exit before it is killed
Stop = tuple[str, str]  # (status, message) of a task that stops before its end
# The competition form's dataloader: the fixed minibatch, then more batches of the same data.
LOADER_BATCHES = 4
LOADER_MAX_BYTES = 128 << 20  # fewer batches (at least 2) where images are large (TransNAS)


def default_flavor(form: str) -> str:
    """The model flavor a submission form gets unless one is asked for: ``naslib`` for the 2022
    competition form (the networks its NASLib evaluator scored), ``benchmark`` otherwise (the
    networks the benchmark's accuracies belong to; docs/competition.md)."""
    return "naslib" if form == "competition" else "benchmark"


@dataclass(frozen=True)
class PreparedTask:
    """A task with its sample and its minibatch, ready to be scored."""

    task: EvalTask
    records: list[ArchRecord]
    batch: Batch
    warnings: list[str]
    seed: int  # the run's seed (sampling, batch, bootstrap)


def prepare_task(task: EvalTask, n_archs: int, seed: int, batch_size: int) -> PreparedTask:
    """Sample the architectures and build the task's one minibatch (substitutions recorded)."""
    space = get_space(task.space)
    rows = sample_rows(task, n_archs, seed)
    accuracy = task.accuracy(rows)
    records = []
    for index, (row, acc) in enumerate(zip(rows, accuracy, strict=True)):
        key = space.encode(space.decode(str(task.frame["arch"].iloc[row])))
        records.append(ArchRecord(index, int(row), key, arch_seed(seed, key), float(acc)))
    spec = space.task(task.task)
    if task.dataset and task.dataset != spec.dataset:
        spec = replace(spec, dataset=task.dataset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch = batch_for_task(spec, size=batch_size, seed=seed)
    notes = [str(w.message) for w in caught]
    for note in notes:
        print(f"zcp evaluator: {task.key}: {note}", file=sys.stderr)
    return PreparedTask(task, records, batch, notes, seed)


def batch_info(batch: Batch, notes: list[str]) -> BatchInfo:
    """What the reports record about a minibatch."""
    return BatchInfo(
        fingerprint=batch.fingerprint,
        describe=batch.describe(),
        dataset=batch.dataset,
        split=batch.split,
        seed=batch.seed,
        size=int(batch.x.shape[0]),
        substitute_for=batch.substitute_for,
        note=batch.note,
        warnings=tuple(notes),
    )


def loader_images(prepared: PreparedTask) -> tuple[torch.Tensor, torch.Tensor, LoaderInfo]:
    """The competition loader's images after the fixed batch (x, y, what the reports record),
    from the same data as the fixed minibatch and never repeating one of its images or each
    other (as NASLib's test loader, whose batches are distinct images): one seeded draw of one
    more batch than needed, duplicates (by pixel values) dropped."""
    batch = prepared.batch
    size = int(batch.x.shape[0])
    per_batch = batch.x.element_size() * batch.x.numel()
    count = max(2, min(LOADER_BATCHES, LOADER_MAX_BYTES // max(per_batch, 1))) - 1
    spec = get_space(prepared.task.space).task(prepared.task.task)
    if prepared.task.dataset and prepared.task.dataset != spec.dataset:
        spec = replace(spec, dataset=prepared.task.dataset)
    seed = int(np.random.SeedSequence([prepared.seed, 1]).generate_state(1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fixed batch's substitution was announced already
        while True:
            try:
                pool = batch_for_task(spec, size=size * (count + 1), seed=seed)
                break
            except DataError:  # a small dataset: fewer batches (at least one more)
                if count == 1:
                    raise
                count -= 1
    seen = {row.numpy().tobytes() for row in batch.x}
    keep = []
    for i, row in enumerate(pool.x):
        key = row.numpy().tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    keep = keep[: size * count]
    info = LoaderInfo(batches=1 + math.ceil(len(keep) / size), images=len(keep), seed=seed)
    return pool.x[keep], pool.y[keep], info


class Runner:
    """Scores prepared tasks with one submission, under one isolation mode and set of limits."""

    def __init__(
        self,
        submission: Submission,
        isolation: Isolation,
        limits: Limits,
        run_dir: Path,
        hidden: tuple[Path, ...],
        bar: tqdm,
        model_flavor: str,
    ) -> None:
        self.submission = submission
        self.model_flavor = model_flavor  # ``zcproxies.build``'s flavor of every task's networks
        self.isolation = isolation
        self.limits = limits
        self.run_dir = run_dir
        self.hidden = hidden
        self.bar = bar
        self.deadline = time.monotonic() + limits.total_timeout
        self.launch_count = 0
        self.interrupted = False  # Ctrl-C: the task running was stopped, the rest do not run

    # ---- one task -----------------------------------------------------------------------------
    def run_task(self, prepared: PreparedTask) -> TaskResult:
        """Score one task (see module doc). Never raises for anything the submission does, nor
        for a failure of the evaluator on this task (``internal_error``, with its traceback);
        Ctrl-C stops it as ``interrupted``, keeping what was scored."""
        result = TaskResult(
            prepared.task,
            prepared.records,
            batch_info(prepared.batch, prepared.warnings),
            model_flavor=self.model_flavor,
        )
        began = time.monotonic()
        pending = list(result.archs)
        stop: Stop | None
        try:
            stop = self._score(prepared, result, pending)
        except KeyboardInterrupt:
            self.interrupted = True
            stop = (INTERRUPTED, "interrupted (Ctrl-C) before the task finished")
        except Exception as exc:
            stop = internal_stop(result, exc)
        if stop is not None:  # a limit, a load failure or an interruption: the task as a whole
            self._close(pending, *stop)
            result.status, result.message = stop
        else:
            result.status, result.message = policy.task_status([r.status for r in result.archs])
            failed = next((r for r in result.archs if r.status != OK), None)
            if failed is not None:  # the first failure's reason (and frames) in summary.md too
                result.message += f"; first: arch {failed.index}: {failed.message}"
        result.wall_seconds = time.monotonic() - began
        return finish(result, prepared.seed)

    def _score(
        self, prepared: PreparedTask, result: TaskResult, pending: list[ArchRecord]
    ) -> Stop | None:
        """Launch workers until every architecture is decided: the task's stop, if any."""
        batch_file = self.run_dir / f"batch-{prepared.task.space}-{prepared.task.task}.pt"
        tensors = {"x": prepared.batch.x, "y": prepared.batch.y}
        if self.submission.form == "competition":
            tensors["loader_x"], tensors["loader_y"], loader = loader_images(prepared)
            result.batch = replace(result.batch, loader=loader)
        torch.save(tensors, batch_file)
        budget = self.limits.task_timeout
        try:
            while pending:
                if time.monotonic() >= self.deadline:
                    total = f"total time limit ({self.limits.total_timeout:g} s)"
                    if not result.launches:
                        return INTERRUPTED, f"not run: the {total} was reached before it started"
                    return "timeout", f"{total} reached before the task finished"
                stop, budget = self._launch(prepared, batch_file, pending, budget, result)
                if stop is not None:
                    return stop
                crashes = sum(1 for info in result.launches if info.end == "died")
                if pending and crashes > self.limits.max_restarts:
                    self._close(
                        pending,
                        "crash",
                        f"not scored: the worker crashed {crashes} times "
                        f"(restart limit {self.limits.max_restarts})",
                    )
            return None
        finally:
            batch_file.unlink()

    def _close(self, pending: list[ArchRecord], status: str, message: str) -> None:
        """Give every architecture not scored yet ``status`` and empty ``pending``."""
        for record in pending:
            record.status, record.message = status, message
        self.bar.update(len(pending))
        pending.clear()

    def _launch(
        self,
        prepared: PreparedTask,
        batch_file: Path,
        pending: list[ArchRecord],
        budget: float,
        result: TaskResult,
    ) -> tuple[Stop | None, float]:
        """One worker on the pending architectures (its ``Launch`` appended to ``result`` at
        once): (task stop or None, budget left).

        Scored architectures are removed from ``pending``; so is the one a worker died in.
        """
        self.launch_count += 1
        uid = sandbox_uid()
        job_dir = self.run_dir / f"job-{self.launch_count}"
        job_dir.mkdir(mode=0o755)
        tmp = prepare_tmp(self.run_dir / f"tmp-{self.launch_count}", uid)
        mounts = Mounts(job_dir, tmp, self.submission.root, self.hidden)
        paths = JobPaths(**worker_paths(self.isolation, mounts))
        write_job(
            job_dir,
            batch_file,
            self.submission,
            prepared,
            pending,
            self.limits,
            uid,
            paths,
            self.model_flavor,
            result.batch.loader,
        )
        info = Launch(len(pending))
        result.launches.append(info)
        proc = launch(self.isolation, mounts, self.limits, uid, budget)
        try:
            stop, spent = self._consume(proc, pending, budget, info)
        finally:  # a finished worker may exit by itself; anything else is killed
            info.returncode = (
                proc.wait(time.monotonic() + EXIT_GRACE) if info.end == "done" else proc.kill()
            )
            # The worker's stderr is the submission's text: made safe here, at the boundary.
            info.stderr_tail = safe_text(proc.stderr_tail(), STDERR_KEPT, tail=True)
            info.containment = proc.containment()  # peak memory, CPU seconds, disk of the tree
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(job_dir, ignore_errors=True)
        if (hit := proc.limit_hit()) is not None:  # a limit of the whole tree ended the launch
            info.end, info.limit = "limit", hit[0]
            stop = hit
        budget -= spent
        if info.end == "done" and pending:
            stop = ("crash", "the worker said done before every architecture was scored")
        if info.end == "died":
            death = policy.judge_death(info.stderr_tail, info.returncode)
            if not info.ready:
                stop = (
                    death.status,
                    f"{death.message} before the submission was ready; "
                    f"stderr: {info.stderr_tail[-300:]}",
                )
            elif pending:
                record = pending.pop(0)
                record.status, record.message = death.status, death.message
                self.bar.update(1)
        return stop, budget

    def _consume(
        self, proc: WorkerProcess, pending: list[ArchRecord], budget: float, info: Launch
    ) -> tuple[Stop | None, float]:
        """Read the worker's events until it ends or a limit hits: (task stop, seconds spent).

        Only the event expected next is accepted; any other line (not an event, malformed,
        out of order, repeated) is counted in ``garbage_lines`` and otherwise ignored.
        """
        startup_deadline = proc.started_at + self.limits.startup_timeout
        started: float | None = None
        while True:
            limit = startup_deadline if started is None else started + budget
            try:
                line = proc.next_line(min(limit, self.deadline))
            except TimeoutError:
                info.end = "killed"
                spent = 0.0 if started is None else time.monotonic() - started
                return self._timeout_reason(started, limit), spent
            if line is None:
                return None, 0.0 if started is None else time.monotonic() - started
            event = decode_event(line)
            if isinstance(event, Started) and started is None:
                started = time.monotonic()
                info.startup_seconds = started - proc.started_at
                info.worker = dict(event.info)
            elif isinstance(event, Ready) and started is not None and not info.ready:
                info.ready, info.setup_seconds = True, event.seconds
            elif isinstance(event, LoadError) and started is not None and not info.ready:
                info.end = "load_error"
                exc = event.exception
                status = policy.load_error_status(event.stage, exc)
                return (
                    status,
                    f"{event.stage} failed: {exc.type}: {exc.message}{policy.where(exc.frames)}",
                ), time.monotonic() - started
            elif (
                isinstance(event, ArchResult)
                and info.ready
                and pending
                and event.index == pending[0].index
            ):
                self._record(pending.pop(0), event)
            elif isinstance(event, Done) and info.ready:
                info.end = "done"
                return None, time.monotonic() - started
            else:
                info.garbage_lines += 1

    def _record(self, record: ArchRecord, event: ArchResult) -> None:
        """Judge one ``arch`` event into its record."""
        outcome = policy.judge_arch_event(event)
        record.status, record.score, record.message = outcome.status, outcome.score, outcome.message
        record.seconds, record.build_seconds = event.seconds, event.build_seconds
        self.bar.update(1)

    def _timeout_reason(self, started: float | None, limit: float) -> Stop:
        """The stop of a task whose worker hit a deadline."""
        if limit >= self.deadline:
            return "timeout", f"total time limit ({self.limits.total_timeout:g} s) reached"
        if started is None:
            return "timeout", (
                f"the worker did not start within {self.limits.startup_timeout:g}"
                " s (start-up limit)"
            )
        return "timeout", f"task time limit ({self.limits.task_timeout:g} s) reached"


def internal_stop(result: TaskResult, exc: Exception) -> Stop:
    """The stop of a task on which the evaluator itself failed; its traceback goes to
    ``result.error``."""
    message, result.error = describe_fault(exc)
    return INTERNAL_ERROR, message


def finish(result: TaskResult, seed: int) -> TaskResult:
    """``result`` with its metrics; a failure computing them makes it an ``internal_error``."""
    try:
        result.metrics = task_metrics(result, seed)
    except Exception as exc:
        result.status, result.message = internal_stop(result, exc)
        result.metrics = TaskMetrics(
            n_archs=len(result.archs), n_ok=sum(r.status == OK for r in result.archs)
        )
    return result


def write_job(
    job_dir: Path,
    batch_file: Path,
    submission: Submission,
    prepared: PreparedTask,
    pending: list[ArchRecord],
    limits: Limits,
    uid: int | None,
    paths: JobPaths,
    flavor: str,
    loader: LoaderInfo | None,
) -> None:
    """The job of one worker: everything it needs, and no accuracy (``loader``: the competition
    loader's images are in ``batch_file`` too)."""
    batch = prepared.batch
    job = Job(
        form=submission.form,
        entry=submission.entry,
        space=prepared.task.space,
        task=prepared.task.task,
        flavor=flavor,
        loader_images=loader.images if loader is not None else 0,
        uid=uid,
        limits=limits.to_dict(),
        paths=paths,
        batch=BatchMeta(
            dataset=batch.dataset,
            split=batch.split,
            seed=batch.seed,
            source=batch.source,
            num_classes=batch.num_classes,
            substitute_for=batch.substitute_for,
            note=batch.note,
        ),
        archs=tuple(JobArch(r.index, r.arch, r.seed) for r in pending),
    )
    (job_dir / "job.json").write_text(job.dumps())
    shutil.copyfile(batch_file, job_dir / "batch.pt")
    for name in ("job.json", "batch.pt"):
        (job_dir / name).chmod(0o644)


def task_metrics(result: TaskResult, seed: int) -> TaskMetrics:
    """Kendall-Tau (0 unless the task is ok), its bootstrap interval (resampling seeded by the
    run's ``seed`` and the task), Spearman, top-10 % precision, Kendall-Tau of the scored
    architectures alone, and timing."""
    archs = result.archs
    scores = policy.ranking_scores([r.score for r in archs])
    accuracy = [r.accuracy for r in archs]
    ok = [r for r in archs if r.status == OK]
    counted = result.status == OK
    boot_seed = [seed, zlib.crc32(result.task.key.encode())]
    low, high = (
        metrics.bootstrap_tau(scores, accuracy, boot_seed) if counted else (math.nan, math.nan)
    )
    return TaskMetrics(
        kendall_tau=metrics.kendall_tau(scores, accuracy) if counted else 0.0,
        kendall_tau_ci_low=low,
        kendall_tau_ci_high=high,
        kendall_tau_scored=metrics.kendall_tau([r.score for r in ok], [r.accuracy for r in ok])
        if len(ok) >= 2
        else math.nan,
        spearman=metrics.spearman(scores, accuracy) if counted else 0.0,
        precision_top10=metrics.precision_top(scores, accuracy) if counted else 0.0,
        n_archs=len(archs),
        n_ok=len(ok),
        cpu_seconds=cpu_seconds([info.containment for info in result.launches]),
        **metrics.time_summary([r.seconds for r in archs if r.seconds is not None]),
    )


def cpu_seconds(usages: list[TreeUsage]) -> float:
    """CPU seconds of a task's launches, whole trees (NaN where no launch was measured)."""
    measured = [u.cpu_seconds for u in usages if u.cpu_seconds is not None]
    return math.fsum(measured) if measured else math.nan


def versions() -> dict[str, str]:
    """Versions that can change results."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "zcp": zcproxies.__version__,
        "platform": platform.platform(),
    }


def _hidden_paths(tasks: list[EvalTask], submission: str, out_dir: Path | None) -> tuple[Path, ...]:
    """Paths a worker must never see: benchmark files, data, results, the original upload."""
    paths = [shared_data_dir(), data_root(), Path(submission)]
    paths += [t.path for t in tasks if t.path is not None]
    if out_dir is not None:
        paths.append(out_dir)
    return tuple(Path(p).expanduser().absolute() for p in paths)


@dataclass(frozen=True)
class Scored:
    """What ``run_tasks`` did: the submission (None when rejected), one result per task, and
    whether Ctrl-C stopped it (the task running then and every later one: ``interrupted``)."""

    submission: Submission | None
    results: list[TaskResult]
    interrupted: bool


def run_tasks(
    submission: str | os.PathLike[str],
    prepared: list[PreparedTask],
    limits: Limits,
    isolation: Isolation,
    out_dir: Path | None,
    progress: bool,
    model_flavor: str | None = None,
) -> Scored:
    """Open the submission privately and score every prepared task (the core of evaluate).

    ``model_flavor``: ``zcproxies.build``'s flavor, None for the form's ``default_flavor``.
    """
    tasks = [p.task for p in prepared]
    hidden = _hidden_paths(tasks, os.fspath(submission), out_dir)
    total = sum(len(p.records) for p in prepared)
    with (
        tempfile.TemporaryDirectory(prefix="zcp-eval-") as tmp,
        tqdm(total=total, disable=not progress, unit="arch", desc="zcp evaluate") as bar,
    ):
        run_dir = Path(tmp)
        run_dir.chmod(0o711)  # the sandbox uid may traverse (fallback), not list
        try:
            sub = open_submission(submission, run_dir / "submission")
        except SubmissionRejected as exc:
            bar.update(total)
            message = safe_text(str(exc), 2000, multiline=False)  # it may quote file names
            return Scored(None, [stopped_result(p, "rejected", message) for p in prepared], False)
        flavor = model_flavor or default_flavor(sub.form)
        runner = Runner(sub, isolation, limits, run_dir, hidden, bar, flavor)
        results: list[TaskResult] = []
        for p in prepared:
            try:
                if not runner.interrupted:
                    results.append(runner.run_task(p))
                    continue
            except KeyboardInterrupt:  # between two tasks
                runner.interrupted = True
            message = "not run: interrupted (Ctrl-C)"
            results.append(stopped_result(p, INTERRUPTED, message, flavor))
        return Scored(sub, results, runner.interrupted)


def stopped_result(
    prepared: PreparedTask, status: str, message: str, flavor: str = ""
) -> TaskResult:
    """The result of a task that never ran (``rejected`` submission, ``interrupted`` run;
    ``flavor``: the model flavor it would have run with, "" when not known)."""
    result = TaskResult(
        prepared.task,
        prepared.records,
        batch_info(prepared.batch, prepared.warnings),
        status,
        message,
        model_flavor=flavor,
    )
    for record in result.archs:
        record.status, record.message = status, message
    return finish(result, prepared.seed)


def preflight(
    submission: str | os.PathLike[str], out_dir: Path | None, model_flavor: str | None = None
) -> None:
    """Usage and data errors, found before any work: an unknown built-in proxy, a path that
    does not exist or a file that is not a zip (``UnknownName`` / ``DataError``), an unknown
    model flavor (``ValueError``), and an output directory that cannot be written
    (``UnwritableOutput``). A directory or zip that fails the submission checks is not an error
    here: it is scored as ``rejected``."""
    if model_flavor is not None:
        check_flavor(model_flavor)
    text = os.fspath(submission)
    if text.startswith(BUILTIN_PREFIX):
        try:
            builtin_submission(text[len(BUILTIN_PREFIX) :])
        except SubmissionRejected as exc:
            raise UnknownName(str(exc)) from None
    else:
        path = Path(text).expanduser()
        shown = safe_text(str(path), multiline=False)
        if not path.exists() and not path.is_symlink():
            raise DataError(f"{shown}: no such file or directory (give a directory or a .zip)")
        if path.is_file() and not zipfile.is_zipfile(path):
            raise DataError(f"{shown}: not a zip file (give a submission directory or a .zip)")
    if out_dir is not None:
        check_writable(out_dir)


def evaluate(
    submission: str | os.PathLike[str],
    tasks: TaskSource = None,
    n_archs: int = DEFAULT_N_ARCHS,
    seed: int = 0,
    limits: Limits | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    isolation: str = "auto",
    containment: str = "auto",
    progress: bool = True,
    model_flavor: str | None = None,
    only_tasks: list[str] | None = None,
) -> pd.DataFrame:
    """Score ``submission`` (directory, .zip or ``proxy:<name>``) on ``tasks``: one row per task.

    ``tasks``: a benchmark file, tables, or None for the embedded benchmark. Per task
    ``n_archs`` architectures are sampled with ``seed`` and ranked by the submission against
    their accuracy; ``frame.attrs["final_score"]`` is the mean Kendall-Tau over tasks (failed
    tasks count 0). With ``out_dir``: results.json, results.csv, archs.csv, summary.md and one
    PNG per task are written there. ``isolation``: ``auto`` | ``bwrap`` | ``none``;
    ``containment`` (cgroup and private tmpfs per launch): ``auto`` | ``require`` | ``off``.
    ``model_flavor``: ``benchmark`` | ``naslib`` | None for the form's (``default_flavor``).
    ``only_tasks``: ``space/task`` keys of the tasks to score (default: all).

    Usage and data errors (``preflight``) are raised before any work. Ctrl-C (SIGINT) while
    tasks are scored does not raise: the task running then and the later ones are
    ``interrupted``, what was scored is kept and written, and ``frame.attrs["interrupted"]``
    is True.
    """
    limits = limits or Limits()
    if n_archs < 2 or batch_size < 1:
        raise ValueError(f"n_archs must be >= 2 and batch_size >= 1, got {n_archs}, {batch_size}")
    out = Path(out_dir).absolute() if out_dir is not None else None
    preflight(submission, out, model_flavor)
    chosen = select_tasks(as_tasks(tasks), only_tasks)
    started = time.time()
    iso = resolve_isolation(isolation, containment)
    warn_no_isolation(iso)
    prepared = [prepare_task(t, n_archs, seed, batch_size) for t in chosen]
    scored = run_tasks(submission, prepared, limits, iso, out, progress, model_flavor)
    sub, results = scored.submission, scored.results
    frame = summary_frame(results)
    run = {
        "versions": versions(),
        "seed": seed,
        "n_archs": n_archs,
        "batch_size": batch_size,
        "model_flavor": results[0].model_flavor if sub else model_flavor,
        "limits": limits.to_dict(),
        "isolation": iso.to_dict(),
        "policy": {"max_failed_fraction": policy.MAX_FAILED_FRACTION},
        "submission": sub.to_dict()
        if sub
        else {"source": os.fspath(submission), "rejected": results[0].message},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": time.time() - started,
        "interrupted": scored.interrupted,
        "final_score": frame.attrs["final_score"],
    }
    frame.attrs["isolation"] = iso.mode
    frame.attrs["interrupted"] = scored.interrupted
    if out is not None:
        write_reports(out, frame, results, run)
    return frame


@dataclass
class CheckReport:
    """What ``check`` found: whether the submission works, and how fast it is."""

    ok: bool
    form: str
    model_flavor: str
    isolation: str
    task: str  # the trial task(s), comma-separated
    statuses: list[str]
    scores: list[float | None]
    messages: list[str]
    startup_seconds: float  # mean worker start-up
    seconds_per_arch: float  # mean over every tried architecture: proxy plus model building
    problems: list[str]
    notes: list[str]
    timings: list[tuple[str, float, float]] = field(default_factory=list)  # (task, start-up,
    # seconds per architecture) of each trial task

    def estimate(self, n_archs: int = DEFAULT_N_ARCHS) -> float:
        """Estimated seconds of ``evaluate`` with ``n_archs`` per task on this machine: per
        trial task its start-up plus ``n_archs`` times its seconds per architecture."""
        timings = self.timings or [(self.task, self.startup_seconds, self.seconds_per_arch)]
        return sum(start + n_archs * per_arch for _, start, per_arch in timings)

    def describe(self, n_archs: int = DEFAULT_N_ARCHS) -> str:
        """A readable multi-line summary."""
        lines = [
            f"submission form: {self.form or '-'}   models: {self.model_flavor or '-'} flavor"
            f"   isolation: {self.isolation}",
            f"trial task(s): {self.task}",
        ]
        for i, (status, score, msg) in enumerate(
            zip(self.statuses, self.scores, self.messages, strict=True)
        ):
            lines.append(
                f"  arch {i}: {status}"
                + (f" score={score:.6g}" if score is not None else f" ({msg})")
            )
        for key, start, per_arch in self.timings:
            if not math.isnan(per_arch):
                lines.append(
                    f"{key}: worker start-up {start:.1f} s, {per_arch:.3f} s per architecture "
                    f"(model and proxy): about {start + n_archs * per_arch:.0f} s for "
                    f"{n_archs} architectures"
                )
        if len(self.timings) > 1 and not math.isnan(self.estimate(n_archs)):
            lines.append(f"all tasks: about {self.estimate(n_archs):.0f} s")
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"PROBLEM: {problem}" for problem in self.problems]
        lines.append("OK" if self.ok else "NOT OK")
        return "\n".join(lines)


def _mean(values: list[float]) -> float:
    """Mean of the finite values (NaN when there are none)."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def trial_task(space: str, task: str | None, n_archs: int, seed: int) -> EvalTask:
    """``n_archs`` distinct seeded architectures of ``space``/``task`` (no accuracies)."""
    space_obj = get_space(space)
    spec = space_obj.task(task)
    rng = np.random.default_rng(seed)
    keys: list[str] = []
    while len(keys) < n_archs:
        key = space_obj.encode(space_obj.sample(rng))
        keys += [key] if key not in keys else []
    frame = pd.DataFrame({"arch": keys, "val_accuracy": np.zeros(n_archs)})
    return EvalTask(space_obj.name, spec.name, frame)


def check(
    submission: str | os.PathLike[str],
    space: str = "nasbench201_mini",
    task: str | None = None,
    n_archs: int = 2,
    seed: int = 0,
    limits: Limits | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    isolation: str = "auto",
    containment: str = "auto",
    model_flavor: str | None = None,
    benchmark: TaskSource = None,
    only_tasks: list[str] | None = None,
) -> CheckReport:
    """Try ``submission`` on ``n_archs`` architectures exactly as ``evaluate`` would (same
    worker and sandbox; accuracies unused): imports, interface, a finite score per architecture,
    and a runtime estimate. With ``benchmark`` (a file, as ``evaluate`` takes it) the trial runs
    on each of its tasks (``only_tasks``: some of them), so the estimate is of its real spaces;
    otherwise on ``n_archs`` sampled architectures of ``space``/``task``."""
    limits = limits or Limits()
    preflight(submission, None, model_flavor)
    if benchmark is not None:
        trials = select_tasks(as_tasks(benchmark), only_tasks)
    else:
        trials = [trial_task(space, task, n_archs, seed)]
    iso = resolve_isolation(isolation, containment)
    warn_no_isolation(iso)
    prepared = [prepare_task(t, n_archs, seed, batch_size) for t in trials]
    scored = run_tasks(submission, prepared, limits, iso, None, False, model_flavor)
    if scored.interrupted:  # a trial keeps nothing worth reporting
        raise KeyboardInterrupt
    sub, results = scored.submission, scored.results
    problems, timings = [], []
    for result in results:
        if result.status != OK:
            problems.append(f"{result.task.key}: task status {result.status}: {result.message}")
        problems += [  # each architecture's own failure (not the one it shares with the task)
            f"{result.task.key} arch {r.index}: {r.status}: {r.message}"
            for r in result.archs
            if r.status != OK and r.message != result.message
        ]
        timed = [
            r.seconds + (r.build_seconds or 0.0) for r in result.archs if r.seconds is not None
        ]
        start = [i.startup_seconds for i in result.launches if i.startup_seconds is not None]
        timings.append(
            (
                result.task.key,
                float(np.mean(start)) if start else math.nan,
                float(np.mean(timed)) if timed else math.nan,
            )
        )
    archs = [r for result in results for r in result.archs]
    return CheckReport(
        ok=not problems,
        form=sub.form if sub else "",
        model_flavor=results[0].model_flavor if sub else "",
        isolation=iso.mode,
        task=", ".join(t.key for t in trials),
        statuses=[r.status for r in archs],
        scores=[r.score for r in archs],
        messages=[r.message for r in archs],
        startup_seconds=_mean([t[1] for t in timings]),
        seconds_per_arch=_mean([t[2] for t in timings]),
        problems=problems,
        notes=list(sub.notes) if sub else [],
        timings=timings,
    )
