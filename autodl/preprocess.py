"""From AutoDL examples to network inputs: domain inference, resizing, frame folding, scaling.

Every AutoDL example is a (T, H, W, C) array. The trainer sees three domains:

- ``image``: one frame (T = 1) with a spatial H x W (-1 = varying size counts as spatial);
- ``video``: several frames (T > 1 or varying); ``frames`` of them, spaced evenly over each
  example's own length, are folded into the channel axis (input channels = frames * C), so a 2-D
  cell network sees motion as channel differences; a shorter example repeats frames (the even
  spacing over its length picks some twice);
- ``tabular``: no spatial layout (H = 1 or W = 1): the example is flattened into a feature vector
  and goes down the dense (MLP) path. Its size must be fixed: variable-length sequences (AutoDL's
  speech and text tasks) are out of scope and refused.

Images and videos are resized to a square working size with ``autodl.dataset.fit_example``
(Pillow bilinear, antialiased when shrinking, aspect ratio not kept). Inputs are then
standardised per channel (images, videos) or per feature (tabular) with the training set's mean
and standard deviation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from autodl.dataset import fit_example

DOMAINS = ("image", "video", "tabular")
MIN_SIZE = 4  # two stride-2 reductions of the NB201 skeleton need at least 4 x 4 pixels


def infer_domain(shape: Sequence[int]) -> str:
    """``image``, ``video`` or ``tabular`` from a (T, H, W, C) tensor shape (-1 = varying)."""
    if len(shape) != 4:
        raise ValueError(f"AutoDL tensor shapes are (T, H, W, C), got {tuple(shape)}")
    steps, rows, cols, _ = shape
    if rows == 1 or cols == 1:
        return "tabular"
    return "image" if steps == 1 else "video"


@dataclass(frozen=True)
class InputSpec:
    """What the networks are built for: domain, input channels/features, working size, classes."""

    domain: str
    channels: int  # image/video: input channels (video: frames * C); tabular: features
    size: int  # side of the square working image; 0 for tabular
    num_classes: int
    frames: int = 1  # frames folded into the channels (video), 1 otherwise

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one network input: (channels, size, size) or (features,)."""
        if self.domain == "tabular":
            return (self.channels,)
        return (self.channels, self.size, self.size)


def make_input_spec(
    shape: Sequence[int], num_classes: int, max_size: int = 16, max_frames: int = 4
) -> InputSpec:
    """The ``InputSpec`` for examples of (T, H, W, C) ``shape`` (metadata's, -1 = varying).

    Images keep their side when it is at most ``max_size`` (never below ``MIN_SIZE``); varying
    sizes get ``max_size``. Videos fold ``min(T, max_frames)`` frames (``max_frames`` when T
    varies) into the channels.
    """
    steps, rows, cols, channels = (int(s) for s in shape)
    domain = infer_domain(shape)
    if channels <= 0:
        raise ValueError(f"the channel count must be known, got shape {tuple(shape)}")
    if domain == "tabular":
        if min(steps, rows, cols) <= 0:
            raise ValueError(
                f"tabular examples need a fixed size, got shape {tuple(shape)} "
                "(variable-length sequences such as speech or text are not supported)"
            )
        return InputSpec("tabular", steps * rows * cols * channels, 0, num_classes)
    side = max(rows, cols) if rows > 0 and cols > 0 else max_size
    size = max(MIN_SIZE, min(side, max_size))
    frames = 1 if domain == "image" else (min(steps, max_frames) if steps > 0 else max_frames)
    return InputSpec(domain, channels * frames, size, num_classes, frames)


def to_network_input(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One (T, H, W, C) example (a (H, W, C) one gets T = 1) as the spec's unscaled input."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if spec.domain == "tabular":
        flat = x.reshape(-1)
        if flat.size != spec.channels:
            raise ValueError(f"example has {flat.size} values, the tabular spec {spec.channels}")
        return flat
    picks = np.linspace(0, x.shape[0] - 1, spec.frames).round().astype(int)
    frames = fit_example(x[picks], (spec.size, spec.size), spec.frames)  # (F, S, S, C)
    chw = frames.transpose(0, 3, 1, 2).reshape(spec.channels, spec.size, spec.size)
    return np.ascontiguousarray(chw)


def load_arrays(dataset: Iterable, spec: InputSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """Network inputs (N, *spec.shape) and labels (N, n_classes) or None, from any iterable.

    ``dataset`` yields ``(example, labels)`` pairs (an ``AutoDLDataset``, a list, a converted
    TF dataset); labels are None (or empty) for unlabelled test records.
    """
    inputs, labels = [], []
    for example, label in dataset:
        inputs.append(to_network_input(example, spec))
        labels.append(None if label is None or np.size(label) == 0 else np.asarray(label))
    if not inputs:
        raise ValueError("the dataset yielded no example")
    x = np.stack(inputs)
    if all(label is None for label in labels):
        return x, None
    if any(label is None for label in labels):
        raise ValueError("the dataset mixes labelled and unlabelled examples")
    return x, np.stack(labels).astype(np.float32)


@dataclass(frozen=True)
class Standardizer:
    """Per-channel (image, video) or per-feature (tabular) mean and std of the training inputs."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        """Statistics over every axis but the channel/feature axis (axis 1)."""
        axes = tuple(i for i in range(x.ndim) if i != 1)
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        mean = x.mean(axis=axes).reshape(shape)
        std = x.std(axis=axes).reshape(shape)
        return cls(mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Standardised float32 copy of ``x``."""
        return ((x - self.mean) / self.std).astype(np.float32)
