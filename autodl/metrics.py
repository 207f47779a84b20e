"""The AutoDL challenge's scoring: NAUC per prediction, ALC over time, balanced accuracy.

Definitions follow the starting kit's ``AutoDL_scoring_program`` (``score.py`` v20191219 and
``libscores.py``):

- per-class AUC from tied ranks (ties get their average rank):
  ``AUC_k = (sum of ranks of the positives - npos (npos + 1) / 2) / (npos * nneg)``, positives
  being solution entries equal to 1 and negatives those below 1;
- NAUC = 2 * mean_k(AUC_k) - 1 over the *valid* classes only: a class whose solution column
  sums to 0 or to the number of examples (a single value) is skipped;
- ALC: area under the step curve of the score against the transformed time
  ``t~ = log(1 + t / t0) / log(1 + T / t0)`` (t0 = 60 s, T the time budget): 0 before the first
  prediction, each score held until the next prediction and the last one up to t~ = 1;
  predictions made after T are ignored;
- normalised balanced accuracy ``bac_metric`` for multi-class (argmax decisions, mean
  per-class recall, rescaled so that random = 0 and perfect = 1) and for binary/multi-label
  (decisions at 0.5, mean of recall and specificity, random = 0.5 before rescaling).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autodl.errors import ScoringError

T0 = 60.0  # seconds: the time-transformation constant of the final AutoDL challenge
_EPS = 1e-15  # libscores' bound against division by zero


def _check_pair(solution: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2-D float copies of ``solution`` and ``prediction`` with equal shapes and finite values."""
    solution = np.asarray(solution, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    if solution.ndim == 1:
        solution, prediction = solution[:, None], prediction.reshape(len(prediction), -1)
    if solution.ndim != 2 or solution.shape != prediction.shape:
        raise ScoringError(
            f"solution {solution.shape} and prediction {prediction.shape} must be "
            "2-D arrays of the same shape (examples x classes)"
        )
    if not np.isfinite(prediction).all():
        raise ScoringError("prediction contains NaN or infinite values")
    return solution, prediction


def tiedrank(values: np.ndarray) -> np.ndarray:
    """Ranks (base 1) of ``values``, tied values sharing their average rank (libscores)."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # group boundaries of equal values; each group gets the mean of its positions' ranks
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    average = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def valid_columns(solution: np.ndarray) -> np.ndarray:
    """Indices of the classes whose solution column has more than one value."""
    solution = np.asarray(solution, dtype=np.float64)
    sums = solution.sum(axis=0)
    return np.flatnonzero(~(np.isclose(sums, 0) | np.isclose(sums, solution.shape[0])))


def auc_per_class(solution: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Tied-rank AUC of each class; NaN for a class skipped as single-valued."""
    solution, prediction = _check_pair(solution, prediction)
    result = np.full(solution.shape[1], np.nan)
    for k in valid_columns(solution):
        ranks = tiedrank(prediction[:, k])
        positive = solution[:, k] == 1
        npos, nneg = positive.sum(), (solution[:, k] < 1).sum()
        result[k] = (ranks[positive].sum() - npos * (npos + 1) / 2) / (nneg * npos)
    return result


def nauc(solution: np.ndarray, prediction: np.ndarray) -> float:
    """Normalised AUC ``2 * mean(AUC) - 1`` over the valid classes (the learning-curve score)."""
    aucs = auc_per_class(solution, prediction)
    valid = aucs[~np.isnan(aucs)]
    if not valid.size:
        raise ScoringError("no class has both positive and negative examples: NAUC undefined")
    return float(2 * valid.mean() - 1)


def is_multiclass(solution: np.ndarray) -> bool:
    """True when every solution row is one-hot (one 1, zeros elsewhere)."""
    solution = np.asarray(solution)
    magnitude = np.abs(solution)
    return bool(np.all((magnitude.sum(axis=1) == 1) & (magnitude.max(axis=1) == 1)))


def balanced_accuracy(
    solution: np.ndarray, prediction: np.ndarray, multiclass: bool | None = None
) -> float:
    """libscores' normalised balanced accuracy ``bac_metric`` (random = 0, perfect = 1).

    ``multiclass`` (default: ``is_multiclass(solution)``): decisions are each row's argmax
    (first on ties), BAC is the mean per-class recall and the base 1/n_classes. Otherwise
    decisions are ``prediction >= 0.5`` and BAC is the mean of recall and specificity, base 0.5.
    As in libscores, counts are bounded below by 1e-15, so a class with no positive example
    has recall 1.
    """
    solution, prediction = _check_pair(solution, prediction)
    if multiclass is None:
        multiclass = is_multiclass(solution)
    n_classes = solution.shape[1]
    if multiclass and n_classes > 1:
        decisions = np.zeros_like(prediction)
        decisions[np.arange(len(prediction)), prediction.argmax(axis=1)] = 1
    else:
        decisions = (prediction >= 0.5).astype(np.float64)
    tp = np.maximum(_EPS, (solution * decisions).sum(axis=0))
    fn = (solution * (1 - decisions)).sum(axis=0)
    recall = tp / np.maximum(_EPS, tp + fn)
    if multiclass and n_classes > 1:
        bac, base = recall.mean(), 1.0 / n_classes
    else:
        tn = np.maximum(_EPS, ((1 - solution) * (1 - decisions)).sum(axis=0))
        fp = ((1 - solution) * decisions).sum(axis=0)
        specificity = tn / np.maximum(_EPS, tn + fp)
        bac, base = (0.5 * (recall + specificity)).mean(), 0.5
    return float((bac - base) / max(_EPS, 1 - base))


def accuracy(solution: np.ndarray, prediction: np.ndarray) -> float:
    """score.py's accuracy: mean over rows of ``solution . prediction / |prediction|_1``."""
    solution, prediction = _check_pair(solution, prediction)
    normalised = prediction / (np.abs(prediction).sum(axis=1, keepdims=True) + _EPS)
    return float((solution * normalised).sum() / solution.shape[0])


def transform_time(t: float | np.ndarray, time_budget: float, t0: float = T0) -> np.ndarray:
    """The challenge's time axis ``log(1 + t / t0) / log(1 + T / t0)`` (0 at t=0, 1 at t=T)."""
    return np.log1p(np.asarray(t, dtype=np.float64) / t0) / np.log1p(time_budget / t0)


def _step_points(
    timestamps: Sequence[float], scores: Sequence[float], time_budget: float, t0: float
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) corners of the step curve: origin, one point per prediction kept, end at x=1."""
    times = np.asarray(timestamps, dtype=np.float64)
    values = np.asarray(scores, dtype=np.float64)
    if times.shape != values.shape or times.ndim != 1:
        raise ScoringError(f"{times.size} timestamps but {values.size} scores")
    if times.size and (times.min() < 0 or np.any(np.diff(times) < 0)):
        raise ScoringError("timestamps must be >= 0 and non-decreasing (seconds from start)")
    if time_budget <= 0:
        raise ScoringError(f"time budget must be positive, got {time_budget}")
    kept = times <= time_budget  # score.py ignores predictions made after the budget
    x = np.r_[0.0, transform_time(times[kept], time_budget, t0), 1.0]
    y = np.r_[0.0, values[kept]]
    return x, np.r_[y, y[-1]]


def alc(
    timestamps: Sequence[float], scores: Sequence[float], time_budget: float, t0: float = T0
) -> float:
    """Area under the step learning curve (score against transformed time), in [-1, 1].

    One prediction of score s at time t gives ``s * (1 - t~(t))``; none gives 0.
    """
    x, y = _step_points(timestamps, scores, time_budget, t0)
    return float(np.sum(np.diff(x) * y[:-1]))


def plot_learning_curve(
    path: str | os.PathLike[str],
    timestamps: Sequence[float],
    scores: Sequence[float],
    time_budget: float,
    t0: float = T0,
    task_name: str = "",
    score_name: str = "2 * AUC - 1",
) -> float:
    """Draw the step learning curve with its ALC in the title to a PNG; returns the ALC."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    area = alc(timestamps, scores, time_budget, t0)
    x, y = _step_points(timestamps, scores, time_budget, t0)
    fig = Figure(figsize=(7, 6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.fill_between(x, y, step="post", color="cyan", alpha=0.5)
    ax.plot(x[:-1], y[:-1], drawstyle="steps-post", marker="o", markersize=3, color="C0")
    ax.plot(x[-2:], y[-2:], linestyle="--", linewidth=1, color="C0")  # last score held to T
    ax.set_xlim(0, 1)
    ax.set_ylim(min(-0.01, float(y.min())), 1)
    ax.set_xlabel(
        rf"transformed time $\tilde t = \log(1 + t/t_0) / \log(1 + T/t_0)$ "
        rf"($T$ = {time_budget:g} s, $t_0$ = {t0:g} s)"
    )
    ax.set_ylabel(f"score ({score_name})")
    ax.grid(True)
    prefix = f"{task_name}: " if task_name else ""
    ax.set_title(f"{prefix}learning curve, ALC = {area:.4f}")
    fig.tight_layout()
    fig.savefig(Path(path), format="png")
    return area


@dataclass
class LearningCurve:
    """Scores of successive predictions against seconds since the start, under a time budget.

    The trainer ``add``s (elapsed seconds, score) after each prediction; ``alc`` and
    ``plot`` apply the challenge's definitions.
    """

    time_budget: float
    t0: float = T0
    timestamps: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def add(self, elapsed: float, score: float) -> None:
        """Record a prediction made ``elapsed`` seconds after the start with ``score``."""
        if self.timestamps and elapsed < self.timestamps[-1]:
            raise ScoringError(f"time went backwards: {elapsed} after {self.timestamps[-1]}")
        self.timestamps.append(float(elapsed))
        self.scores.append(float(score))

    def alc(self) -> float:
        """Area under this learning curve."""
        return alc(self.timestamps, self.scores, self.time_budget, self.t0)

    def final_score(self) -> float:
        """Score of the last prediction (0 when none was made)."""
        return self.scores[-1] if self.scores else 0.0

    def plot(self, path: str | os.PathLike[str], task_name: str = "") -> float:
        """Write the PNG plot; returns the ALC."""
        return plot_learning_curve(
            path, self.timestamps, self.scores, self.time_budget, self.t0, task_name
        )
