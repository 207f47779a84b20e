"""``naslib.predictors.predictor.Predictor``: the base class of competition submissions.

Same attributes and no-op methods as NASLib's base class, so that subclasses calling
``super().__init__()`` or relying on the defaults behave as they did in the competition.
"""

from __future__ import annotations

from typing import Any


class Predictor:
    """Base of ``ZeroCostPredictor``: ``pre_process`` once per task, then ``query`` per model."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.encoding = None
        self.metric = None
        self.fidelity = None
        self.ss_type = None

    def set_ss_type(self, ss_type: str) -> None:
        """Record the search-space type (NASLib's hook; the evaluator does not call it)."""
        self.ss_type = ss_type

    def pre_process(self) -> None:
        """Called once before the first query of a task (per worker process)."""

    def fit(self, xtrain: Any, ytrain: Any) -> None:
        """Unused by zero-cost predictors (kept for NASLib compatibility)."""

    def query(self, graph: Any, dataloader: Any = None) -> float | None:
        """The score of one model: subclasses override it (higher is better)."""
        return None

    def requires_partial_training(self, xtest: Any) -> bool:
        """Zero-cost predictors train nothing."""
        return False
