"""AutoDL scoring: tied-rank AUC, NAUC, balanced accuracy, ALC and the learning-curve plot,
checked against values computed by hand and against scikit-learn's AUC."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from autodl.errors import ScoringError
from autodl.metrics import (
    LearningCurve,
    accuracy,
    alc,
    auc_per_class,
    balanced_accuracy,
    is_multiclass,
    nauc,
    plot_learning_curve,
    tiedrank,
    transform_time,
    valid_columns,
)


def test_tiedrank() -> None:
    assert tiedrank(np.array([3, 1, 2, 2])).tolist() == [4, 1, 2.5, 2.5]
    assert tiedrank(np.array([5.0, 5.0, 5.0])).tolist() == [2, 2, 2]
    values = np.random.default_rng(0).integers(0, 5, 200)
    assert np.array_equal(tiedrank(values), rankdata(values))


def test_auc_by_hand_with_ties_and_single_valued_classes() -> None:
    solution = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1]])
    prediction = np.array(
        [[0.9, 0.2, 0.5, 0.1], [0.1, 0.8, 0.5, 0.2], [0.4, 0.3, 0.1, 0.3], [0.4, 0.1, 0.9, 0.4]]
    )
    # class 0: positives 0.9, 0.4 vs negatives 0.1, 0.4 -> pairs 1 + 1 + 1 + 0.5 (tie) = 3.5/4
    # class 1: positives 0.8, 0.1 vs negatives 0.2, 0.3 -> 1 + 1 + 0 + 0 = 2/4
    # class 2 (all 0) and class 3 (all 1) have a single value: skipped
    assert valid_columns(solution).tolist() == [0, 1]
    aucs = auc_per_class(solution, prediction)
    assert aucs[:2].tolist() == [0.875, 0.5] and np.isnan(aucs[2:]).all()
    assert nauc(solution, prediction) == pytest.approx(2 * (0.875 + 0.5) / 2 - 1)  # 0.375


def test_nauc_perfect_inverted_constant_random() -> None:
    rng = np.random.default_rng(0)
    solution = np.eye(5)[rng.integers(0, 5, 400)]
    assert nauc(solution, solution * 0.7 + 0.1) == 1.0
    assert nauc(solution, 1 - solution) == -1.0
    assert nauc(solution, np.full(solution.shape, 0.3)) == 0.0  # all tied: AUC 1/2
    big = np.eye(5)[rng.integers(0, 5, 20000)]
    assert abs(nauc(big, rng.random(big.shape))) < 0.03


def test_auc_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    solution = (rng.random((300, 6)) < 0.3).astype(int)
    prediction = rng.integers(0, 6, solution.shape) / 5  # many ties
    expected = [roc_auc_score(solution[:, k], prediction[:, k]) for k in range(6)]
    assert np.allclose(auc_per_class(solution, prediction), expected, atol=1e-12)


def test_nauc_errors() -> None:
    with pytest.raises(ScoringError, match="no class has both"):
        nauc(np.ones((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ScoringError, match="same shape"):
        nauc(np.eye(3), np.eye(2))
    with pytest.raises(ScoringError, match="NaN"):
        nauc(np.eye(3), np.full((3, 3), np.nan))


def test_balanced_accuracy_multiclass_by_hand() -> None:
    truth, decided = [0, 0, 1, 2, 2], [0, 1, 1, 2, 0]
    solution, prediction = np.eye(3)[truth], np.eye(3)[decided] * 0.6 + 0.1
    assert is_multiclass(solution)
    # recalls 1/2, 1, 1/2 -> BAC 2/3; normalised (2/3 - 1/3) / (1 - 1/3) = 1/2
    assert balanced_accuracy(solution, prediction) == pytest.approx(0.5)
    assert balanced_accuracy(solution, solution) == pytest.approx(1.0)
    # libscores' epsilon bound: a class without positives has recall 1, even if predicted
    absent = np.eye(3)[[0, 1, 0, 1]]
    assert balanced_accuracy(absent, np.eye(3)[[0, 1, 2, 1]]) == pytest.approx(0.75)


def test_balanced_accuracy_multilabel_by_hand() -> None:
    solution = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    prediction = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.5], [0.1, 0.3]])
    # column 0: decisions 1,0,1,0 -> recall 1/2, specificity 1/2; column 1: 0,1,1,0 -> 1, 1
    assert not is_multiclass(solution)
    assert balanced_accuracy(solution, prediction) == pytest.approx((0.75 - 0.5) / 0.5)


def test_accuracy_by_hand() -> None:
    assert accuracy(np.array([[1, 0], [0, 1]]), np.array([[3, 1], [1, 1]])) == pytest.approx(
        (3 / 4 + 1 / 2) / 2
    )


T = 1200.0


def tt(t: float) -> float:
    """The transformed time written out: log(1 + t/60) / log(1 + T/60)."""
    return math.log(1 + t / 60) / math.log(1 + T / 60)


def test_transform_time() -> None:
    assert transform_time(0, T) == 0 and transform_time(T, T) == pytest.approx(1)
    assert transform_time(60, T) == pytest.approx(math.log(2) / math.log(21))  # 0.227670...
    assert tt(60) == pytest.approx(0.2276702, abs=1e-7)


def test_alc_closed_forms() -> None:
    assert alc([], [], T) == 0.0  # no prediction
    assert alc([60], [0.8], T) == pytest.approx(0.8 * (1 - tt(60)))  # 0.617864
    assert alc([60], [0.8], T) == pytest.approx(0.6178639, abs=1e-6)
    assert alc([0], [0.4], T) == pytest.approx(0.4)
    two = 0.5 * (tt(300) - tt(60)) + 0.9 * (1 - tt(300))
    assert alc([60, 300], [0.5, 0.9], T) == pytest.approx(two)
    assert two == pytest.approx(0.5507571, abs=1e-6)
    assert alc([60, 1300], [0.5, 1.0], T) == pytest.approx(0.5 * (1 - tt(60)))  # after budget
    assert alc([30], [-0.5], T) == pytest.approx(-0.5 * (1 - tt(30)))
    assert alc([60], [1.0], T, t0=T) == pytest.approx(1 - math.log(1.05) / math.log(2))


def test_alc_errors() -> None:
    with pytest.raises(ScoringError, match="non-decreasing"):
        alc([10, 5], [0.1, 0.2], T)
    with pytest.raises(ScoringError, match="2 timestamps but 1 scores"):
        alc([1, 2], [0.1], T)
    with pytest.raises(ScoringError, match="time budget"):
        alc([1], [0.1], 0)


def test_learning_curve_and_plot(tmp_path: Path) -> None:
    curve = LearningCurve(time_budget=T)
    assert curve.alc() == 0 and curve.final_score() == 0
    curve.add(60, 0.5)
    curve.add(300, 0.9)
    with pytest.raises(ScoringError, match="backwards"):
        curve.add(100, 0.1)
    assert curve.alc() == pytest.approx(0.5 * (tt(300) - tt(60)) + 0.9 * (1 - tt(300)))
    assert curve.final_score() == 0.9
    path = tmp_path / "curve.png"
    assert curve.plot(path, task_name="toy") == pytest.approx(curve.alc())
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100
    empty = tmp_path / "empty.png"
    assert plot_learning_curve(empty, [], [], T) == 0 and empty.stat().st_size > 0
