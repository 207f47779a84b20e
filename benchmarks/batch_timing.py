"""One timed ``zcp batch`` run: what benchmarks/batch_throughput.py and benchmarks/containment.py
measure. Imported by those scripts (their folder is on ``sys.path`` when run as scripts)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from evaluator.batch import BatchSummary, run_batch


def timed_batch(uploads: Path, out: Path, **options: Any) -> tuple[BatchSummary, dict[str, Any]]:
    """``run_batch(uploads, out, progress=False, **options)`` on the wall clock: its summary and
    the fields of a throughput row (units, seconds, units per minute, statuses)."""
    began = time.perf_counter()
    summary = run_batch(uploads, out, progress=False, **options)
    seconds = time.perf_counter() - began
    return summary, {
        "units": summary.planned,
        "seconds": round(seconds, 1),
        "units_per_minute": round(60 * summary.planned / seconds, 2),
        "statuses": dict(summary.statuses),
    }
