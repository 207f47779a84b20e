"""The ``Batch`` value (one fixed, fingerprinted minibatch) and the pixel pipeline that makes it.

Pipeline, identical for every image dataset: uint8 pixels -> float64 in [0, 1] (divided by the
format's maximum value) -> bilinear resize when the asked size differs from the image's own
(``F.interpolate``, ``align_corners=False``, ``antialias=True`` so that downsampling averages
like PIL's resize instead of aliasing; upsampling is unaffected) -> ``(v - mean) / std`` per
channel -> float32. Everything before the final cast runs in float64 so that the float32 result
is the same on any machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from zcproxies.errors import DataError


@dataclass(frozen=True, eq=False)
class Batch:
    """One minibatch as a value: normalised images, labels and where they came from.

    Equality compares the fingerprint and the provenance fields (tensors are not compared
    element-wise by ``==``); the fingerprint is recomputed on each access, so it always
    describes the tensors as they are now.
    """

    x: torch.Tensor  # float32 (N, C, H, W), normalised
    y: torch.Tensor  # int64 (N,), class ids in [0, num_classes)
    dataset: str  # name of the provider that produced the examples
    split: str
    seed: int
    source: str  # file path(s) or a description of the generator
    num_classes: int
    substitute_for: str | None = None  # the dataset this batch stands in for, if any
    note: str = ""  # label mapping, fallback source or substitution, in words

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32 or self.x.dim() != 4:
            raise DataError(
                f"Batch.x must be float32 (N, C, H, W), got {self.x.dtype} {tuple(self.x.shape)}"
            )
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],):
            raise DataError(
                f"Batch.y must be int64 ({self.x.shape[0]},), got {self.y.dtype} "
                f"{tuple(self.y.shape)}"
            )
        if self.y.numel() and not 0 <= int(self.y.min()) <= int(self.y.max()) < self.num_classes:
            raise DataError(
                f"Batch.y must lie in [0, {self.num_classes}), got "
                f"[{int(self.y.min())}, {int(self.y.max())}]"
            )

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of the shape of x, then the bytes of x (float32) and y (int64)."""
        digest = hashlib.sha256(repr(tuple(self.x.shape)).encode())
        digest.update(self.x.detach().cpu().contiguous().numpy().tobytes())
        digest.update(self.y.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def _key(self) -> tuple[object, ...]:
        return (
            self.fingerprint,
            self.dataset,
            self.split,
            self.seed,
            self.source,
            self.num_classes,
            self.substitute_for,
            self.note,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Batch) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def describe(self) -> str:
        """One line for reports: what the batch is, where it came from, and its fingerprint."""
        n, c, h, w = self.x.shape
        text = (
            f"{self.dataset}/{self.split}: {n} examples of {c}x{h}x{w}, "
            f"{self.num_classes} classes, seed {self.seed}, from {self.source}; "
            f"sha256 {self.fingerprint[:16]}"
        )
        if self.substitute_for is not None:
            text += f"; SUBSTITUTE for {self.substitute_for}"
        if self.note:
            text += f" ({self.note})"
        return text


def to_network_input(
    images: Sequence[np.ndarray],
    pixel_max: float,
    mean: Sequence[float],
    std: Sequence[float],
    size: tuple[int, int] | None,
) -> torch.Tensor:
    """Stack CHW images into a normalised float32 (N, C, H, W) tensor (pipeline in module doc).

    ``size`` None keeps each image's size, which must then be the same for all images.
    """
    if size is None:
        shapes = {image.shape[1:] for image in images}
        if len(shapes) > 1:
            raise DataError(f"images differ in size ({sorted(shapes)[:3]}...); pass input_size")
    channels = images[0].shape[0]
    if len(mean) != channels or len(std) != channels:
        raise DataError(f"mean/std have {len(mean)}/{len(std)} values for {channels} channels")
    tensors = []
    for image in images:
        t = torch.from_numpy(np.asarray(image, dtype=np.float64) / pixel_max).unsqueeze(0)
        if size is not None and tuple(t.shape[-2:]) != tuple(size):
            t = F.interpolate(
                t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True
            )
        tensors.append(t)
    x = torch.cat(tensors)
    shift = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    scale = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    return ((x - shift) / scale).to(torch.float32)
