"""Ranking metrics of one task: Kendall-Tau (tau-b) with a bootstrap interval, Spearman,
precision of the top 10 % and scoring-time summaries.

Scores are those of ``policy.ranking_scores`` (failed architectures at -inf); a correlation that
is undefined (fewer than two architectures, or constant scores or accuracies) counts 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy.stats import kendalltau, spearmanr

TOP_FRACTION = 0.1
BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95


def _defined(value: float) -> float:
    """0 for an undefined (NaN) correlation."""
    return 0.0 if math.isnan(value) else float(value)


def _tau(x: np.ndarray, y: Sequence[float]) -> float:
    """scipy's tau-b, 0 when undefined (constant input warnings silenced: that case is 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _defined(kendalltau(x, y).statistic)


def kendall_tau(scores: Sequence[float], accuracy: Sequence[float]) -> float:
    """Kendall's tau-b of ``scores`` against ``accuracy`` (0 when undefined)."""
    if len(scores) < 2:
        return 0.0
    return _tau(_ranks(scores), accuracy)


def spearman(scores: Sequence[float], accuracy: Sequence[float]) -> float:
    """Spearman's rank correlation (0 when undefined)."""
    if len(scores) < 2:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _defined(spearmanr(_ranks(scores), accuracy).statistic)


def _ranks(scores: Sequence[float]) -> np.ndarray:
    """Dense ranks of ``scores``: same order and ties, -inf lowest, no huge or infinite values."""
    _, inverse = np.unique(np.asarray(scores, dtype=np.float64), return_inverse=True)
    return inverse.astype(np.float64)


def precision_top(
    scores: Sequence[float], accuracy: Sequence[float], fraction: float = TOP_FRACTION
) -> float:
    """Share of the truly best ``ceil(fraction * n)`` architectures among the best-scored ones.

    Ties are broken by position (stable sort), in both rankings.
    """
    n = len(scores)
    if n == 0:
        return 0.0
    k = max(1, math.ceil(fraction * n))
    by_score = np.argsort(-_ranks(scores), kind="stable")[:k]
    by_accuracy = np.argsort(-np.asarray(accuracy, dtype=np.float64), kind="stable")[:k]
    return len(set(by_score.tolist()) & set(by_accuracy.tolist())) / k


def bootstrap_tau(
    scores: Sequence[float],
    accuracy: Sequence[float],
    seed: int | Sequence[int],
    samples: int = BOOTSTRAP_SAMPLES,
) -> tuple[float, float]:
    """Percentile bootstrap interval (``CONFIDENCE``) of Kendall-Tau over the architectures,
    resampled with replacement by a generator seeded with ``seed``."""
    n = len(scores)
    if n < 2:
        return 0.0, 0.0
    ranks = _ranks(scores)
    acc = np.asarray(accuracy, dtype=np.float64)
    rng = np.random.default_rng(seed)
    taus = np.empty(samples)
    for b in range(samples):
        pick = rng.integers(0, n, size=n)
        taus[b] = _tau(ranks[pick], acc[pick])
    alpha = (1.0 - CONFIDENCE) / 2
    low, high = np.quantile(taus, [alpha, 1.0 - alpha])
    return float(low), float(high)


def time_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Mean, median and max seconds per architecture (NaN when nothing was timed)."""
    values = np.asarray(seconds, dtype=np.float64)
    if values.size == 0:
        return {"seconds_mean": math.nan, "seconds_median": math.nan, "seconds_max": math.nan}
    return {
        "seconds_mean": float(values.mean()),
        "seconds_median": float(np.median(values)),
        "seconds_max": float(values.max()),
    }
