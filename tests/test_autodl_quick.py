"""The quick model (``autodl.quick``): exact leave-one-out ridge, features of every domain, an
informative prediction on separable data, the first step before torch."""

from __future__ import annotations

import numpy as np
import pytest

from autodl.dataset import load_dataset
from autodl.metrics import nauc
from autodl.preprocess import InputSpec, spec_from_metadata, to_network_input
from autodl.quick import (
    MAX_FEATURES,
    SEGMENTS,
    QuickModel,
    RidgeFit,
    features,
    first_step,
    sequence_features,
    text_features,
)
from autodl.settings import SearchConfig
from autodl.writer import format_dataset


def centred(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    z = rng.normal(size=(n, d))
    return z - z.mean(axis=0)


@pytest.mark.parametrize(("n", "d"), [(30, 5), (12, 20)])  # more rows than features, and fewer
def test_leave_one_out_is_exact(n: int, d: int) -> None:
    """The closed form against refitting without each row: ridge with an unpenalised intercept,
    penalty ridge * n on the weights (the fit's own objective, solved directly)."""
    rng = np.random.default_rng(0)
    z, targets = centred(rng, n, d), np.eye(3)[rng.integers(0, 3, n)]
    fit = RidgeFit(z, targets)
    for ridge in (0.01, 1.0):
        expected = []
        for i in range(n):
            keep = np.arange(n) != i
            design = np.column_stack([np.ones(n - 1), z[keep]])
            penalty = np.diag([0.0] + [ridge * n] * d)
            coef = np.linalg.solve(design.T @ design + penalty, design.T @ targets[keep])
            expected.append(np.r_[1.0, z[i]] @ coef)
        np.testing.assert_allclose(fit.leave_one_out(ridge), expected, atol=1e-10)
        design = np.column_stack([np.ones(n), z])
        penalty = np.diag([0.0] + [ridge * n] * d)
        coef = np.linalg.solve(design.T @ design + penalty, design.T @ targets)
        np.testing.assert_allclose(fit.weights(ridge), coef[1:], atol=1e-10)
        np.testing.assert_allclose(fit.prior, coef[0], atol=1e-10)


def test_features_of_every_domain() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(4, 3, 16, 16)).astype(np.float32)
    pooled = features(image, InputSpec("image", 3, 16, 2))
    assert pooled.shape == (4, 3 * 8 * 8)
    np.testing.assert_allclose(pooled[:, 0], image[:, 0, :2, :2].mean(axis=(1, 2)), rtol=1e-6)
    video = features(rng.normal(size=(2, 12, 16, 16)), InputSpec("video", 12, 16, 2, 4))
    assert video.shape == (2, 12 * 4 * 4)  # C P^2 <= MAX_FEATURES
    assert features(rng.normal(size=(3, 7)), InputSpec("tabular", 7, 0, 2)).shape == (3, 7)
    # a series of 5 real steps padded to 12: summaries over the real steps only
    spec = InputSpec("timeseries", 3, 0, 2, length=12)
    series = np.arange(10, dtype=np.float32).reshape(5, 1, 1, 2)
    x = to_network_input(series, spec)[None]
    out = sequence_features(x)
    assert out.shape == (1, 2 * (4 + 2 * SEGMENTS) + 1)
    steps = series[:, 0, 0, :]
    np.testing.assert_allclose(out[0, :2], steps.mean(axis=0))
    np.testing.assert_allclose(out[0, 2:4], steps.std(axis=0))
    np.testing.assert_allclose(out[0, 4:6], steps.min(axis=0))
    np.testing.assert_allclose(out[0, 6:8], steps.max(axis=0))
    assert out[0, -1] == pytest.approx(np.log1p(5))
    empty = np.zeros_like(x)  # no real step at all: zeros, not infinities
    assert np.all(sequence_features(empty)[:, :-1] == 0)


def test_text_features_count_tokens_and_hash_large_vocabularies() -> None:
    ids = np.array([[1, 1, 3, 0, 0], [2, 0, 0, 0, 0]], np.float32)  # ids + 1, 0 = padding
    small = text_features(ids, vocabulary=4)  # 3 tokens: one bin each
    np.testing.assert_allclose(small, np.log1p([[2, 0, 1, 3], [0, 1, 0, 1]]))
    big = text_features(np.array([[1, 5000, 70000, 0]], np.float32), vocabulary=100_000)
    assert big.shape == (1, MAX_FEATURES)  # hashed bins and the length
    assert np.exp(big[0, :-1]).sum() - (MAX_FEATURES - 1) == pytest.approx(3)


def blobs(domain: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, InputSpec]:
    """Network inputs of 3 classes that a linear model separates, for ``domain``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    if domain == "image":
        spec = InputSpec("image", 3, 16, 3)
        x = rng.normal(size=(n, 3, 16, 16)) + y[:, None, None, None]
    elif domain == "tabular":  # wider than MAX_FEATURES: the random projection
        spec = InputSpec("tabular", 300, 0, 3)
        x = rng.normal(size=(n, 300)) + 0.5 * y[:, None]
    elif domain == "timeseries":  # classes differ in the shape over time, not in the mean
        spec = InputSpec("timeseries", 2, 0, 3, length=40)
        t = np.linspace(0, 1, 40)
        raw = [np.sin(2 * np.pi * (c + 1) * t)[:, None, None, None] for c in y]
        x = np.stack([to_network_input(r + 0.3 * rng.normal(size=r.shape), spec) for r in raw])
    else:  # text: class c draws its tokens from its own third of a vocabulary of 30
        spec = InputSpec("text", 1, 0, 3, length=12, vocabulary=31)
        x = np.stack([1 + 10 * c + rng.integers(0, 10, 12) for c in y]).astype(np.float32)
    return x.astype(np.float32), y, spec


@pytest.mark.parametrize("domain", ["image", "tabular", "timeseries", "text"])
def test_the_quick_model_is_informative(domain: str) -> None:
    x, y, spec = blobs(domain, 150, seed=1)
    model = QuickModel.fit(x[:120], y[:120], spec, seed=0)
    probs = model.predict(x[120:])
    assert probs.shape == (30, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert nauc(np.eye(3)[y[120:]], probs) > 0.9
    assert model.loo_loss < np.log(3)  # better than the class prior, held out
    again = QuickModel.fit(x[:120], y[:120], spec, seed=0)
    np.testing.assert_array_equal(again.predict(x[120:]), probs)  # deterministic


def test_the_quick_model_subsamples_large_training_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("autodl.quick.MAX_ROWS", 50)
    x, y, spec = blobs("tabular", 150, seed=2)
    model = QuickModel.fit(x, y, spec, seed=0)
    assert model.projection is not None and model.weights.shape == (MAX_FEATURES, 3)
    assert nauc(np.eye(3)[y], model.predict(x)) > 0.8


def test_first_step_prepares_splits_and_predicts(tmp_path) -> None:
    """On a formatted dataset: the stratified split and standardiser of the training part, the
    test split's inputs, and a quick model better than chance on the test labels."""
    rng = np.random.default_rng(3)
    y = np.arange(90) % 3
    pixels = np.clip(60 * (rng.normal(size=(90, 8, 8, 1)) + y[:, None, None, None]) + 60, 0, 255)
    root = format_dataset(pixels.astype(np.uint8), y, tmp_path, "toy", test_fraction=0.2)
    train, test, solution = load_dataset(root)
    config = SearchConfig()
    spec = spec_from_metadata(train.metadata, config.max_size_cpu, config.max_frames)
    step = first_step(train, spec, config, seed=0, test=test)
    data = step.data
    assert len(data.train_idx) + len(data.val_idx) == len(train) == 72
    per_class = np.bincount(data.labels, minlength=3)
    expected = [round(0.2 * c) for c in per_class]
    assert np.bincount(data.labels[data.val_idx], minlength=3).tolist() == expected
    assert abs(data.inputs[data.train_idx].mean()) < 1e-5  # standardised on the training part
    assert step.test_inputs is not None and step.test_inputs.shape == (18, 1, 8, 8)
    assert nauc(solution, step.quick.predict(step.test_inputs)) > 0.8
