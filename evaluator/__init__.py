"""zcp's evaluator: scores a zero-cost proxy submission by Kendall-Tau, in a sandboxed worker.

``evaluate(submission, tasks, n_archs, seed, limits, out_dir)`` -> per-task DataFrame (and
report files); ``check(submission)`` tries a submission on a few architectures;
``pack(directory)`` zips one for upload. See ``docs/evaluator.md``.

Names are imported lazily so that the worker (``python -m evaluator.worker``), which imports
this package first, does not pay for the evaluator side (scipy, pandas, h5py, matplotlib).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ARCH_STATUSES": "evaluator.protocol",
    "MAX_FAILED_FRACTION": "evaluator.policy",
    "TASK_STATUSES": "evaluator.protocol",
    "CheckReport": "evaluator.runner",
    "check": "evaluator.runner",
    "evaluate": "evaluator.runner",
    "Isolation": "evaluator.sandbox",
    "Limits": "evaluator.sandbox",
    "SandboxUnavailable": "evaluator.sandbox",
    "resolve_isolation": "evaluator.sandbox",
    "Submission": "evaluator.submission",
    "SubmissionRejected": "evaluator.submission",
    "open_submission": "evaluator.submission",
    "pack": "evaluator.submission",
    "EvalTask": "evaluator.tasks",
    "as_tasks": "evaluator.tasks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'evaluator' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
