"""``naslib.predictors.predictor.Predictor``: the base class of competition submissions.

As NASLib's: ``__init__(ss_type=None)`` sets only ``ss_type``; the evaluator calls
``set_ss_type(graph type)`` once per task, then ``pre_process()``, then ``query(graph,
dataloader=...)`` per architecture (a subclass that skips ``super().__init__()`` still gets
``ss_type`` from ``set_ss_type``).
"""

from __future__ import annotations

from typing import Any


class Predictor:
    """Base of ``ZeroCostPredictor``: ``pre_process`` once per task, then ``query`` per model."""

    def __init__(self, ss_type: str | None = None) -> None:
        self.ss_type = ss_type

    def set_ss_type(self, ss_type: str) -> None:
        """Record the search-space type (``"nasbench201"``, ``"nasbench301"``, ...)."""
        self.ss_type = ss_type

    def pre_process(self) -> None:
        """Called once before the first query of a task (per worker process)."""

    def fit(self, xtrain: Any, ytrain: Any) -> None:
        """Unused by zero-cost predictors (kept for NASLib compatibility)."""

    def query(self, graph: Any, dataloader: Any = None) -> float | None:
        """The score of one model: subclasses override it (higher is better)."""
        return None
