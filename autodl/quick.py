"""The run's first step, before torch: the training data prepared and a quick model that predicts.

``first_step`` reads the training split (``autodl.preprocess.prepare_training``: inputs, class
ids, validation split, standardiser), reads the test split's inputs (every record decoded: a
corrupt test split fails here, before any training) and fits ``QuickModel`` on the training
part. ``zcp autodl run`` does all of it before importing torch and writes the quick model's
test prediction first; the search then starts with the quick model as a member of its ensemble
(``autodl.search.AnytimeSearch``), so a network is predicted with only once it, or a mix with
it, beats the quick model on validation.

``QuickModel`` is a closed-form ridge classifier (least squares on one-hot targets, softmax of
the outputs) on at most ``MAX_FEATURES`` cheap features of the standardised network inputs:

- images and videos: each input channel average-pooled to P x P, P = min(side, 8) and C P**2 at
  most ``MAX_FEATURES``;
- tabular: the features themselves;
- speech and time series: per feature, over the example's own steps (the mask channel), the
  mean, standard deviation, minimum and maximum, and the mean and standard deviation over
  ``SEGMENTS`` equal segments of its own length (a coarse shape and energy envelope); plus the
  log length;
- text: a bag of tokens, log(1 + count) per token id (ids hashed into ``MAX_FEATURES - 1`` bins
  when the vocabulary is larger), plus the log length.

A wider feature vector is projected to ``MAX_FEATURES`` dimensions by a seeded Gaussian random
projection. Features are standardised; the ridge penalty and the softmax's sharpness are chosen
by the exact leave-one-out cross-entropy of ridge regression (closed form, from one SVD of the
feature matrix) over small grids. At most ``MAX_ROWS`` training examples (a seeded subsample)
enter the fit, so it costs well under a second on a core. Fit and prediction run numpy's BLAS
on one thread: on a loaded 2-core machine OpenBLAS's two threads made a 128 x 256 SVD 100 times
slower (2.2 s against 0.02 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from autodl.preprocess import SEQUENCE_DOMAINS, InputSpec, TrainingData, prepare_training
from autodl.settings import SearchConfig

NAME = "quick ridge"  # the quick model's name among the search's snapshots
MAX_FEATURES = 256
MAX_ROWS = 4000
POOLED_SIDE = 8
SEGMENTS = 8
RIDGE_GRID = tuple(10.0**k for k in range(-3, 4))  # penalty per example (unit-variance features)
SHARPNESS_GRID = tuple(2.0**k for k in range(8))  # softmax(sharpness * ridge outputs)
HASH = 2654435761  # Knuth's multiplicative hash of token ids into bins


def image_features(x: np.ndarray) -> np.ndarray:
    """(N, C P P) block means of (N, C, S, S) inputs, P as in the module doc."""
    n, channels, side = x.shape[0], x.shape[1], x.shape[2]
    pooled = max(1, min(side, POOLED_SIDE, math.isqrt(MAX_FEATURES // channels)))
    edges = np.linspace(0, side, pooled + 1).round().astype(int)
    sums = np.add.reduceat(np.add.reduceat(x, edges[:-1], axis=2), edges[:-1], axis=3)
    counts = np.diff(edges)
    return (sums / np.multiply.outer(counts, counts)).reshape(n, -1)


def sequence_features(x: np.ndarray) -> np.ndarray:
    """Per-feature summaries of (N, F + 1, L, 1) inputs over each example's own steps: mean,
    standard deviation, minimum, maximum, and mean and standard deviation per segment; the log
    length last."""
    values, mask = x[:, :-1, :, 0], x[:, -1, :, 0]
    length = mask.sum(axis=1)
    own = mask[:, None, :] > 0
    columns = [
        *_masked_moments(values, mask),
        np.where(own, values, np.inf).min(axis=2),
        np.where(own, values, -np.inf).max(axis=2),
    ]
    segment = np.floor(np.arange(mask.shape[1]) * SEGMENTS / np.maximum(length, 1)[:, None])
    for s in range(SEGMENTS):
        columns += _masked_moments(values, mask * (segment == s))
    out = np.concatenate([*columns, np.log1p(length)[:, None]], axis=1)
    return np.where(np.isfinite(out), out, 0.0)  # an example without steps: zeros


def _masked_moments(values: np.ndarray, weights: np.ndarray) -> list[np.ndarray]:
    """[mean, standard deviation] of (N, F, L) ``values`` over L with 0/1 ``weights`` (N, L)."""
    count = np.maximum(weights.sum(axis=1), 1.0)[:, None]
    mean = np.einsum("nfl,nl->nf", values, weights) / count
    square = np.einsum("nfl,nl->nf", values * values, weights) / count
    return [mean, np.sqrt(np.maximum(square - mean * mean, 0.0))]


def text_features(x: np.ndarray, vocabulary: int) -> np.ndarray:
    """log(1 + count) of each token id (or hashed bin) of (N, L) inputs (ids + 1, 0 padding)
    from a vocabulary of ``vocabulary`` rows (padding included), and the log length."""
    ids = x.astype(np.int64)
    rows, steps = np.nonzero(ids)
    tokens = ids[rows, steps] - 1
    bins = vocabulary - 1
    if bins > MAX_FEATURES - 1:
        bins = MAX_FEATURES - 1
        tokens = (tokens * HASH % 2**32) % bins
    counts = np.bincount(rows * bins + tokens, minlength=len(ids) * bins).reshape(len(ids), bins)
    return np.column_stack([np.log1p(counts), np.log1p((ids > 0).sum(axis=1))])


def features(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The quick model's raw features of network inputs ``x`` of ``spec`` (module doc)."""
    if spec.domain == "text":
        return text_features(x, spec.vocabulary)
    if spec.domain in SEQUENCE_DOMAINS:
        return sequence_features(np.asarray(x, np.float64))
    if spec.domain == "tabular":
        return np.asarray(x, np.float64).reshape(len(x), -1)
    return image_features(np.asarray(x, np.float64))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax, float64."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class RidgeFit:
    """Ridge regression with an unpenalised intercept of ``targets`` (n, k) on features ``z``
    (n, d) for any penalty, from one thin SVD of ``z`` (whose columns must be centred)."""

    def __init__(self, z: np.ndarray, targets: np.ndarray) -> None:
        self.n = len(z)
        self.targets = targets
        self.prior = targets.mean(axis=0)  # the intercept, as z is centred
        self.u, self.s, self.vt = np.linalg.svd(z, full_matrices=False)
        self.projected = self.u.T @ (targets - self.prior)

    def weights(self, ridge: float) -> np.ndarray:
        """(d, k) coefficients minimising |targets - prior - z w|^2 + ridge n |w|^2."""
        s = self.s
        return self.vt.T @ ((s / (s**2 + ridge * self.n))[:, None] * self.projected)

    def leave_one_out(self, ridge: float) -> np.ndarray:
        """(n, k) prediction of each row by the fit without that row (exact: the residual
        divided by 1 - leverage, the intercept's 1 / n included)."""
        shrink = self.s**2 / (self.s**2 + ridge * self.n)
        fitted = self.prior + self.u @ (shrink[:, None] * self.projected)
        leverage = 1.0 / self.n + (self.u * self.u) @ shrink
        residual = (self.targets - fitted) / np.maximum(1.0 - leverage, 1e-9)[:, None]
        return self.targets - residual


@dataclass(frozen=True)
class QuickModel:
    """A fitted quick model (module doc); ``predict`` gives class probabilities."""

    spec: InputSpec
    projection: np.ndarray | None = field(repr=False)  # (raw features, MAX_FEATURES) or None
    mean: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)  # (features, classes)
    intercept: np.ndarray = field(repr=False)  # (classes,)
    ridge: float  # the chosen penalty per example
    sharpness: float  # the chosen softmax sharpness
    loo_loss: float  # its leave-one-out cross-entropy on the fitted rows

    @classmethod
    def fit(cls, x: np.ndarray, labels: np.ndarray, spec: InputSpec, seed: int = 0) -> QuickModel:
        """Fit on network inputs ``x`` of ``spec`` and class ids ``labels`` (module doc)."""
        with threadpool_limits(1, user_api="blas"):
            return cls._fit(x, labels, spec, seed)

    @classmethod
    def _fit(cls, x: np.ndarray, labels: np.ndarray, spec: InputSpec, seed: int) -> QuickModel:
        rows = np.arange(len(x))
        if len(rows) > MAX_ROWS:
            rows = np.sort(np.random.default_rng(seed).choice(len(x), MAX_ROWS, replace=False))
        raw = features(x[rows], spec)
        projection = None
        if raw.shape[1] > MAX_FEATURES:
            gaussian = np.random.default_rng(seed).normal(size=(raw.shape[1], MAX_FEATURES))
            projection = gaussian / math.sqrt(MAX_FEATURES)
            raw = raw @ projection
        mean, std = raw.mean(axis=0), raw.std(axis=0)
        scale = np.where(std > 1e-9, std, 1.0)
        y = labels[rows]
        targets = np.eye(spec.num_classes)[y]
        ridge_fit = RidgeFit((raw - mean) / scale, targets)
        best = (math.inf, RIDGE_GRID[0], SHARPNESS_GRID[0])
        for ridge in RIDGE_GRID:
            held_out = ridge_fit.leave_one_out(ridge)
            for sharpness in SHARPNESS_GRID:
                probs = softmax(sharpness * held_out)[np.arange(len(y)), y]
                loss = float(-np.log(np.maximum(probs, 1e-300)).mean())
                if loss < best[0]:
                    best = (loss, ridge, sharpness)
        loss, ridge, sharpness = best
        weights = ridge_fit.weights(ridge)
        return cls(spec, projection, mean, scale, weights, ridge_fit.prior, ridge, sharpness, loss)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes), float64, for network inputs ``x``."""
        with threadpool_limits(1, user_api="blas"):
            raw = features(x, self.spec)
            if self.projection is not None:
                raw = raw @ self.projection
            scores = self.intercept + ((raw - self.mean) / self.scale) @ self.weights
            return softmax(self.sharpness * scores)


@dataclass(frozen=True)
class FirstStep:
    """What a run has before torch: the prepared training data, the quick model fitted on its
    training part and, when given, a test split with its standardised inputs."""

    data: TrainingData
    quick: QuickModel
    test: Iterable | None = None
    test_inputs: np.ndarray | None = field(default=None, repr=False)


def first_step(
    train: Iterable,
    spec: InputSpec,
    config: SearchConfig,
    seed: int,
    test: Iterable | None = None,
) -> FirstStep:
    """Prepare ``train`` for inputs of ``spec`` (``prepare_training``), read ``test``'s inputs
    and fit the quick model on the training part (module doc)."""
    data = prepare_training(train, spec, config.val_fraction, seed)
    test_inputs = None if test is None else data.test_inputs(test)
    part = data.train_idx
    quick = QuickModel.fit(data.inputs[part], data.labels[part], data.spec, seed)
    return FirstStep(data, quick, test, test_inputs)
