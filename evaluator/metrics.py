"""Ranking metrics of one task: Kendall-Tau (tau-b) with a bootstrap interval, Spearman,
precision of the top 10 % and scoring-time summaries; the task's noise ceiling (how well two
training seeds of the benchmark agree) and how far a Kendall-Tau lies above it.

Scores are those of ``policy.ranking_scores`` (failed architectures at -inf); a correlation that
is undefined (fewer than two architectures, or constant scores or accuracies) counts 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau, spearmanr

from zcproxies.benchdata import seed_agreement

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


def noise_ceiling(seed_accuracy: np.ndarray | None) -> float:
    """Mean Kendall-Tau (tau-b) over pairs of training seeds of the accuracies (N archs, S
    seeds): how well a second training run ranks the architectures. NaN without 2 seeds and 2
    architectures, or when undefined (constant accuracies)."""
    if seed_accuracy is None or seed_accuracy.shape[0] < 2 or seed_accuracy.shape[1] < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return seed_agreement(seed_accuracy)


@dataclass(frozen=True)
class Bootstrap:
    """Percentile bootstrap intervals (``CONFIDENCE``) over the architectures: of Kendall-Tau,
    and (with per-seed accuracies) of Kendall-Tau minus the noise ceiling on the same
    resamples (NaN without them)."""

    low: float
    high: float
    margin_low: float = math.nan
    margin_high: float = math.nan


def bootstrap_tau(
    scores: Sequence[float],
    accuracy: Sequence[float],
    seed: int | Sequence[int],
    samples: int = BOOTSTRAP_SAMPLES,
    seed_accuracy: np.ndarray | None = None,
) -> Bootstrap:
    """Resample the architectures with replacement ``samples`` times (generator seeded with
    ``seed``): the interval of Kendall-Tau and, given ``seed_accuracy`` (N archs, S seeds), of
    Kendall-Tau minus the noise ceiling of the same resample (paired: one set of draws)."""
    n = len(scores)
    if n < 2:
        return Bootstrap(0.0, 0.0)
    ranks = _ranks(scores)
    acc = np.asarray(accuracy, dtype=np.float64)
    ceiling = not math.isnan(noise_ceiling(seed_accuracy))
    rng = np.random.default_rng(seed)
    taus = np.empty(samples)
    margins = np.full(samples, math.nan)
    with warnings.catch_warnings():  # constant resamples: tau 0 (``_tau``), ceiling NaN (skipped)
        warnings.simplefilter("ignore")
        for b in range(samples):
            pick = rng.integers(0, n, size=n)
            taus[b] = _tau(ranks[pick], acc[pick])
            if ceiling:
                margins[b] = taus[b] - seed_agreement(seed_accuracy[pick])  # type: ignore[index]
    alpha = (1.0 - CONFIDENCE) / 2
    low, high = np.quantile(taus, [alpha, 1.0 - alpha])
    if not ceiling or np.isnan(margins).all():
        return Bootstrap(float(low), float(high))
    margin_low, margin_high = np.nanquantile(margins, [alpha, 1.0 - alpha])
    return Bootstrap(float(low), float(high), float(margin_low), float(margin_high))


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
