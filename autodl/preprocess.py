"""From AutoDL examples to network inputs: domain inference, resizing, frame folding, padding,
scaling.

Every AutoDL example is a (T, H, W, C) array; the metadata's shape (-1 = varies) and vocabulary
(``channel_to_index_map``) decide the domain:

- ``text``: a vocabulary and 1 x 1 frames: each frame one token id (the AutoNLP formatter's
  layout; sparse one-hot frames read the same way; ``autodl.dataset.token_vocabulary``);
- ``speech``: T != 1, 1 x 1 frames of one channel, T varying: a raw waveform (the AutoSpeech
  formatter's layout, sequence_size -1);
- ``timeseries``: other T != 1 examples with H = 1 or W = 1: T steps of H * W * C features
  (multivariate, or univariate of fixed length);
- ``tabular``: T = 1 and H = 1 or W = 1: the example is flattened into a feature vector and
  goes down the dense (MLP) path (its size must be fixed);
- ``image``: one frame (T = 1) with a spatial H x W (-1 = varying size counts as spatial);
- ``video``: several frames (T > 1 or varying); ``frames`` of them, spaced evenly over each
  example's own length, are folded into the channel axis (input channels = frames * C), so a 2-D
  cell network sees motion as channel differences; a shorter example repeats frames.

Images and videos are resized to a square working size with ``autodl.dataset.fit_example``
(Pillow bilinear, antialiased when shrinking, aspect ratio not kept).

Sequences (speech, time series, text) are cut or padded at the end to one **working length**,
chosen from the training set's length distribution (``fit_input_spec``): the 95th percentile of
the training lengths (the AutoDL formatter's ``percentile_95`` choice of ``sequence_size``: a
few long outliers do not make every batch mostly padding), at least ``MIN_LENGTH`` and at most
the domain's ``MAX_LENGTH`` (compute on the CPU). Speech and time series inputs are
(features + 1, length, 1): the last channel is a mask, 1 on the example's own steps and 0 on
padding, which the networks use for masked global pooling (``autodl.families``); the
(length, 1) map lets the conv-feature proxies run on them unchanged. Text inputs are (length,)
token ids shifted by one, 0 being padding (the embedding's ``padding_idx``), as float32 so that
one array type carries every domain (ids are exact below 2**24).

Standardisation (``Standardizer``) uses the training statistics: per channel (image, video), per
feature (tabular), per feature over the real steps only (speech, time series: padding and the
mask stay as they are); token ids are not scaled.

``prepare_training`` is the trainer's first step on a training split: inputs, class ids, a
stratified validation split and the standardiser fitted on the rest, all in numpy, so that
``zcp autodl run`` does it (and fits its quick model, ``autodl.quick``) before importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from autodl.dataset import fit_example, token_vocabulary

DOMAINS = ("image", "video", "speech", "timeseries", "text", "tabular")
SEQUENCE_DOMAINS = ("speech", "timeseries", "text")  # inputs of one working length
MIN_SIZE = 4  # two stride-2 reductions of the NB201 skeleton need at least 4 x 4 pixels
MIN_LENGTH = 8
MAX_LENGTH = {"speech": 4096, "timeseries": 1024, "text": 512}  # working-length caps (steps)
LENGTH_PERCENTILE = 95


def infer_domain(shape: Sequence[int], vocabulary: int = 0) -> str:
    """The domain of examples of (T, H, W, C) ``shape`` (-1 = varying); ``vocabulary``: the
    number of token ids of the metadata's ``channel_to_index_map`` (0: none)."""
    if len(shape) != 4:
        raise ValueError(f"AutoDL tensor shapes are (T, H, W, C), got {tuple(shape)}")
    steps, rows, cols, channels = shape
    if vocabulary and (rows, cols) == (1, 1):
        return "text"
    if rows == 1 or cols == 1:
        if steps == 1:
            return "tabular"
        if (rows, cols, channels) == (1, 1, 1) and steps <= 0:
            return "speech"
        return "timeseries"
    return "image" if steps == 1 else "video"


@dataclass(frozen=True)
class InputSpec:
    """What the networks are built for: domain, input channels/features, working size, classes.

    ``channels``: image/video input channels (video: frames * C); tabular features; speech and
    time series features per step plus the mask channel; text 1. ``length``: the working length
    of a sequence domain (0 until ``fit_input_spec``). ``vocabulary``: text embedding rows
    (token ids + 1 for padding).
    """

    domain: str
    channels: int
    size: int  # side of the square working image; 0 otherwise
    num_classes: int
    frames: int = 1  # frames folded into the channels (video), 1 otherwise
    length: int = 0
    vocabulary: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one network input."""
        if self.domain == "tabular":
            return (self.channels,)
        if self.domain == "text":
            return (self.length,)
        if self.domain in SEQUENCE_DOMAINS:
            return (self.channels, self.length, 1)
        return (self.channels, self.size, self.size)

    @property
    def fitted(self) -> bool:
        """Whether inputs can be made: a sequence domain needs its working length."""
        return self.domain not in SEQUENCE_DOMAINS or self.length > 0


def make_input_spec(
    shape: Sequence[int],
    num_classes: int,
    max_size: int = 16,
    max_frames: int = 4,
    vocabulary: int = 0,
) -> InputSpec:
    """The ``InputSpec`` for examples of (T, H, W, C) ``shape`` (metadata's, -1 = varying).

    Images keep their side when it is at most ``max_size`` (never below ``MIN_SIZE``); varying
    sizes get ``max_size``. Videos fold ``min(T, max_frames)`` frames (``max_frames`` when T
    varies) into the channels. Sequence domains get their working length from
    ``fit_input_spec``; ``vocabulary``: token ids of a text dataset.
    """
    steps, rows, cols, channels = (int(s) for s in shape)
    domain = infer_domain(shape, vocabulary)
    if channels <= 0:
        raise ValueError(f"the channel count must be known, got shape {tuple(shape)}")
    if domain == "text":
        return InputSpec("text", 1, 0, num_classes, vocabulary=vocabulary + 1)
    if domain in ("tabular", "speech", "timeseries"):
        fixed = (steps, rows, cols) if domain == "tabular" else (rows, cols)
        if min(fixed) <= 0:
            raise ValueError(
                f"{domain} examples need a fixed {'size' if domain == 'tabular' else 'frame size'}"
                f", got shape {tuple(shape)}"
            )
        if domain == "tabular":
            return InputSpec("tabular", steps * rows * cols * channels, 0, num_classes)
        return InputSpec(domain, rows * cols * channels + 1, 0, num_classes)
    side = max(rows, cols) if rows > 0 and cols > 0 else max_size
    size = max(MIN_SIZE, min(side, max_size))
    frames = 1 if domain == "image" else (min(steps, max_frames) if steps > 0 else max_frames)
    return InputSpec(domain, channels * frames, size, num_classes, frames)


def spec_from_metadata(metadata, max_size: int = 16, max_frames: int = 4) -> InputSpec:
    """``make_input_spec`` from a dataset's metadata, through the starting kit's accessors only
    (``autodl.dataset.token_vocabulary``), so the kit's TensorFlow metadata works too."""
    return make_input_spec(
        metadata.get_tensor_shape(),
        metadata.get_output_size(),
        max_size,
        max_frames,
        token_vocabulary(metadata),
    )


def working_length(lengths: Sequence[int], domain: str) -> int:
    """The working length of a sequence domain from the training lengths (module doc)."""
    if not len(lengths):
        raise ValueError("no training example to choose a working length from")
    quantile = math.ceil(float(np.percentile(np.asarray(lengths), LENGTH_PERCENTILE)))
    return max(MIN_LENGTH, min(quantile, MAX_LENGTH[domain]))


def fit_input_spec(spec: InputSpec, lengths: Sequence[int]) -> InputSpec:
    """``spec`` with its working length chosen from the training examples' ``lengths`` (frame
    counts); other domains are returned unchanged."""
    if spec.domain not in SEQUENCE_DOMAINS:
        return spec
    return replace(spec, length=working_length(lengths, spec.domain))


def _cut_or_pad(steps: np.ndarray, length: int) -> np.ndarray:
    """The first ``length`` rows of ``steps``, zero-padded at the end."""
    out = np.zeros((length, *steps.shape[1:]), dtype=np.float32)
    out[: min(length, len(steps))] = steps[:length]
    return out


def to_network_input(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One (T, H, W, C) example (a (H, W, C) one gets T = 1) as the spec's unscaled input."""
    if not spec.fitted:
        raise ValueError(f"{spec.domain} inputs need a working length: call fit_input_spec first")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if spec.domain == "tabular":
        flat = x.reshape(-1)
        if flat.size != spec.channels:
            raise ValueError(f"example has {flat.size} values, the tabular spec {spec.channels}")
        return flat
    if spec.domain == "text":
        return _cut_or_pad(x.reshape(-1) + 1, spec.length)  # 0 = padding
    if spec.domain in SEQUENCE_DOMAINS:
        steps = x.reshape(x.shape[0], -1)
        if steps.shape[1] != spec.channels - 1:
            raise ValueError(
                f"example has {steps.shape[1]} features per step, the spec {spec.channels - 1}"
            )
        mask = np.ones((len(steps), 1), np.float32)
        padded = _cut_or_pad(np.concatenate([steps, mask], axis=1), spec.length)
        return np.ascontiguousarray(padded.T[:, :, None])  # (features + 1, length, 1)
    picks = np.linspace(0, x.shape[0] - 1, spec.frames).round().astype(int)
    frames = fit_example(x[picks], (spec.size, spec.size), spec.frames)  # (F, S, S, C)
    chw = frames.transpose(0, 3, 1, 2).reshape(spec.channels, spec.size, spec.size)
    return np.ascontiguousarray(chw)


def _read(dataset: Iterable) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The examples of ``dataset`` (``(example, labels)`` pairs) and their labels (N, n_classes)
    or None (every label None or empty: unlabelled test records)."""
    examples, labels = [], []
    for example, label in dataset:
        examples.append(example)
        labels.append(None if label is None or np.size(label) == 0 else np.asarray(label))
    if not examples:
        raise ValueError("the dataset yielded no example")
    if all(label is None for label in labels):
        return examples, None
    if any(label is None for label in labels):
        raise ValueError("the dataset mixes labelled and unlabelled examples")
    return examples, np.stack(labels).astype(np.float32)


def load_arrays(dataset: Iterable, spec: InputSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """Network inputs (N, *spec.shape) and labels (N, n_classes) or None, from any iterable of
    ``(example, labels)`` pairs (an ``AutoDLDataset``, a list, a converted TF dataset); labels
    are None (or empty) for unlabelled test records. ``spec`` must be fitted."""
    if not spec.fitted:
        raise ValueError(f"{spec.domain} inputs need a working length: call fit_input_spec first")
    converted = ((to_network_input(x, spec), y) for x, y in dataset)  # raw images not kept
    inputs, labels = _read(converted)
    return np.stack(inputs), labels


def load_training_arrays(
    dataset: Iterable, spec: InputSpec
) -> tuple[InputSpec, np.ndarray, np.ndarray | None]:
    """(spec fitted to the data, inputs, labels): ``load_arrays`` after ``fit_input_spec`` on the
    examples' lengths where the spec has no working length yet."""
    if spec.fitted:
        return (spec, *load_arrays(dataset, spec))
    examples, labels = _read(dataset)
    spec = fit_input_spec(spec, [len(np.asarray(e)) for e in examples])
    return spec, np.stack([to_network_input(e, spec) for e in examples]), labels


@dataclass(frozen=True)
class Standardizer:
    """Training mean and std per channel (image, video), per feature (tabular), per feature over
    the real steps (speech, time series; ``masked``); the identity for token ids."""

    mean: np.ndarray
    std: np.ndarray
    masked: bool = False  # the last channel is the padding mask: kept, padding stays 0

    @classmethod
    def fit(cls, x: np.ndarray, spec: InputSpec | None = None) -> Standardizer:
        """Statistics over every axis but the channel/feature axis (axis 1)."""
        if spec is not None and spec.domain == "text":
            return cls(np.zeros(1, np.float32), np.ones(1, np.float32))
        masked = spec is not None and spec.domain in SEQUENCE_DOMAINS
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        if masked:
            mask = x[:, -1:]
            count = np.maximum(mask.sum(axis=(0, 2, 3)), 1.0)
            mean = (x * mask).sum(axis=(0, 2, 3)) / count
            var = (((x - mean.reshape(shape)) * mask) ** 2).sum(axis=(0, 2, 3)) / count
            mean[-1], var[-1] = 0.0, 1.0
            std = np.sqrt(var)
        else:
            axes = tuple(i for i in range(x.ndim) if i != 1)
            mean, std = x.mean(axis=axes), x.std(axis=axes)
        return cls(
            mean.reshape(shape).astype(np.float32),
            np.where(std > 1e-6, std, 1.0).reshape(shape).astype(np.float32),
            masked,
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Standardised float32 copy of ``x``."""
        scaled = (x - self.mean) / self.std
        if self.masked:
            scaled = scaled * x[:, -1:]  # padding back to 0; the mask channel is unchanged
        return scaled.astype(np.float32)


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: ``round(val_fraction * n_c)`` of each class (by argmax)
    go to validation, drawn from ``seed``; a class of one example stays in training."""
    classes = np.asarray(labels).argmax(axis=1)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(classes):
        members = rng.permutation(np.flatnonzero(classes == c))
        n_val = round(val_fraction * len(members)) if len(members) > 1 else 0
        val.extend(members[:n_val].tolist())
    val_idx = np.sort(np.asarray(val, dtype=np.int64))
    train_idx = np.setdiff1d(np.arange(len(classes)), val_idx)
    return train_idx, val_idx


@dataclass(frozen=True)
class TrainingData:
    """A training split ready for the search: standardised inputs of the fitted ``spec``, class
    ids, the (train, validation) index split and the standardiser (for the test inputs)."""

    spec: InputSpec
    inputs: np.ndarray = field(repr=False)  # (N, *spec.shape) float32, standardised
    labels: np.ndarray = field(repr=False)  # (N,) int64 class ids (a multi-label row: argmax)
    train_idx: np.ndarray = field(repr=False)
    val_idx: np.ndarray = field(repr=False)
    standardize: Standardizer = field(repr=False)

    def test_inputs(self, dataset: Iterable) -> np.ndarray:
        """Standardised inputs of an (unlabelled) split, e.g. the test split; every record is
        decoded (a corrupt record raises here)."""
        x, _ = load_arrays(dataset, self.spec)
        return self.standardize(x)


def prepare_training(
    dataset: Iterable, spec: InputSpec, val_fraction: float, seed: int
) -> TrainingData:
    """Read a labelled split (``load_training_arrays``), split it (``stratified_split``) and
    standardise it with the training part's statistics. A dataset too small to hold out any
    example (every class seen once) validates on the training examples themselves."""
    spec, x, labels = load_training_arrays(dataset, spec)
    if labels is None:
        raise ValueError("the training dataset has no labels")
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    if not len(val_idx):
        val_idx = train_idx
    standardize = Standardizer.fit(x[train_idx], spec)
    return TrainingData(
        spec, standardize(x), labels.argmax(axis=1), train_idx, val_idx, standardize
    )
