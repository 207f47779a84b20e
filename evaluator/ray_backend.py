"""The Ray backend of ``zcp batch``: each unit is a Ray task reserving ``Limits.threads`` CPUs.

A Ray task receives the upload as zip bytes (so that nodes need no shared filesystem) and the
prepared task (its architecture sample and minibatch, built once by the head), and runs
``unit.run_unit``, which scores it in the evaluator's sandboxed worker process on that node. The
outcome goes back to the head, the only writer of the results store. Needs ``pip install
zcp[ray]``; ``address`` is that of a running cluster (``ray start --head`` prints it), or None
for a local Ray instance started (and stopped) here.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from evaluator.protocol import UnitRecord
from evaluator.runner import PreparedTask
from evaluator.store import utc_now
from evaluator.submission import zip_tree
from evaluator.unit import UnitJob, UnitSettings, internal_error, run_unit
from zcproxies.errors import ZcpError


class RayUnavailable(ZcpError):
    """The Ray backend was asked for but Ray is not installed or its cluster cannot be joined."""


def remote_unit(upload_zip: bytes, prepared: PreparedTask, settings: UnitSettings) -> UnitRecord:
    """The body of one Ray task: unpack the upload privately and score it (``run_unit``)."""
    with tempfile.TemporaryDirectory(prefix="zcp-ray-") as tmp:
        path = Path(tmp) / "upload.zip"
        path.write_bytes(upload_zip)
        return run_unit(str(path), prepared, settings)


def ray_outcomes(
    jobs: list[UnitJob],
    prepared: Mapping[str, PreparedTask],
    settings: UnitSettings,
    workers: int,
    address: str | None,
) -> Iterator[tuple[UnitJob, UnitRecord]]:
    """Run ``jobs`` as Ray tasks, at most ``workers`` at a time; yield each outcome as it ends.

    A Ray instance already initialised in this process (e.g. by a test) is used as it is.
    """
    try:
        import ray
    except ImportError:
        raise RayUnavailable("the ray backend needs Ray: pip install 'zcp[ray]'") from None
    threads = settings.limits.threads
    started_here = not ray.is_initialized()
    if started_here and address is None:  # a private local instance sized for the workers
        ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
    elif started_here:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise RayUnavailable(
                f"cannot join the Ray cluster at {address}: {exc} (a cluster with token "
                "authentication needs RAY_AUTH_MODE=token and its token here)"
            ) from exc
    try:
        # Ray retries a task whose worker process or node died (its default); run_unit never raises.
        task = ray.remote(remote_unit).options(num_cpus=threads)
        tasks = {key: ray.put(value) for key, value in prepared.items()}
        uploads: dict[str, Any] = {}
        pending: dict[Any, UnitJob] = {}
        queued = list(reversed(jobs))
        while queued or pending:
            while queued and len(pending) < workers:
                job = queued.pop()
                name = job.upload.name
                try:
                    if name not in uploads:
                        assert job.upload.root is not None  # rejected uploads never get here
                        uploads[name] = ray.put(zip_tree(job.upload.root))
                    pending[task.remote(uploads[name], tasks[job.task], settings)] = job
                except Exception as exc:  # this upload could not be shipped: the others go on
                    yield job, replace(internal_error(exc), finished_at=utc_now())
            if not pending:
                continue
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as exc:  # the task or its node died: the machinery failed
                outcome = replace(internal_error(exc), finished_at=utc_now())
            yield job, outcome
    finally:
        if started_here:
            ray.shutdown()
