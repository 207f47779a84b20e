"""Network families of the sequence domains: speech, time series (temporal 1-D convolutions) and
text (an embedding in front of the same trunk). Each has a fixed baseline and a candidate space;
``autodl.search.candidate_space`` draws the pool from its grid.

Inputs come from ``autodl.preprocess``: speech and time series (B, F + 1, L, 1), the last
channel a padding mask; text (B, L) token ids + 1 (0 = padding) as floats. Every layer works on
(B, C, L, 1) maps with (k, 1) kernels: 1-D convolutions in ``Conv2d`` form, so that block
features are 4-D as the conv-feature proxies (nwot, zico, meco, AZ-NAS, ...) expect, at the
same cost as ``Conv1d``.

A member (``TemporalArch``):

- a stem: a (k, 1) convolution of ``width`` channels; where the working length exceeds
  ``STEM_TARGET`` steps (raw waveforms) it has stride s (the smallest power of two bringing the
  length to at most ``STEM_TARGET``) and kernel 2s, as raw-waveform CNNs start with a strided
  convolution (Dai et al., "Very deep CNNs for raw waveforms", ICASSP 2017);
- ``depth`` residual blocks (conv-BN-ReLU-conv-BN plus the input, ReLU) of kernel ``kernel`` in
  one of three ``mode``\\ s: ``plain``, every block at full length (the fully convolutional
  time-series baseline FCN of Wang et al., IJCNN 2017); ``pooled``, a max pooling halving the
  length after each block (a classic 1-D CNN); ``dilated``, dilation 2**i in block i, the
  receptive field growing exponentially at full length (TCN, Bai et al., 2018);
- masked global pooling over time (``avg``, ``max`` or both concatenated, ``avgmax``): padding
  never enters it;
- a linear classifier.

Text members put an embedding of ``embed`` dimensions (``padding_idx`` 0) in front: the
embedded sequence and its mask (ids > 0) feed the same trunk (``TemporalNet.body``). For the
proxies (``proxy_view``) a text network is scored as its trunk on the embedded minibatch: the
proxies that differentiate with respect to the input (jacov, nwot's codes, zen's Gaussian
inputs, synflow's all-ones input) need a float input that the network's function depends on
smoothly, which token ids are not. The embedding's own parameters are left out of the score,
a deliberate deviation; every text member has one, of ``embed`` x vocabulary parameters.

The candidate space is the grid ``WIDTHS x DEPTHS x KERNELS x MODES x POOLS`` (324 members; text
also ``EMBEDS``: 972), the baselines FCN-like for speech/time series (width 32, 3 plain blocks
of kernel 5, average pooling) and Kim's CNN for text (embedding 64, one block of width 64 and
kernel 5, max pooling; Kim, EMNLP 2014). The first prediction of these domains comes from the
quick model (``autodl.quick``: ridge regression on per-feature summaries over time, or on a bag
of tokens), as on the others.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from autodl.preprocess import InputSpec

FAMILY_DOMAINS = ("speech", "timeseries", "text")
WIDTHS = (16, 32, 64)
DEPTHS = (1, 2, 3, 4)
KERNELS = (3, 5, 7)
MODES = ("plain", "pooled", "dilated")
POOLS = ("avg", "max", "avgmax")
EMBEDS = (32, 64, 128)
STEM_TARGET = 256  # steps after the stem, at most


@dataclass(frozen=True)
class TemporalArch:
    """One member of the temporal family (``embed`` > 0: text). Duck-compatible with the
    search's pool members: ``name`` and ``build(spec)``."""

    width: int
    depth: int
    kernel: int
    mode: str
    pool: str
    embed: int = 0

    @property
    def name(self) -> str:
        """e.g. ``tcn w32 d3 k5 plain avg`` (text: ``e64`` added)."""
        text = f" e{self.embed}" if self.embed else ""
        return f"tcn w{self.width} d{self.depth} k{self.kernel} {self.mode} {self.pool}{text}"

    def build(self, spec: InputSpec, config: object = None) -> nn.Module:
        """The network for inputs of ``spec`` (untrained, current torch RNG); ``config`` is
        accepted for the search's member interface and unused."""
        del config
        if (self.embed > 0) != (spec.domain == "text"):
            raise ValueError(f"{self.name} does not fit {spec.domain} inputs")
        body = TemporalNet(self, spec.channels if not self.embed else self.embed + 1, spec)
        return TextNet(spec.vocabulary, self.embed, body) if self.embed else body


def stem_stride(length: int) -> int:
    """Stride of the stem: the smallest power of two that brings ``length`` to at most
    ``STEM_TARGET`` steps."""
    return 1 << max(0, math.ceil(math.log2(max(length, 1) / STEM_TARGET)))


def _conv(c_in: int, c_out: int, kernel: int, dilation: int = 1, stride: int = 1) -> nn.Conv2d:
    """A (kernel, 1) convolution along time, 'same' padding at stride 1."""
    return nn.Conv2d(
        c_in,
        c_out,
        (kernel, 1),
        stride=(stride, 1),
        padding=(dilation * (kernel - 1) // 2, 0),
        dilation=(dilation, 1),
        bias=False,
    )


class TemporalBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the input, ReLU; padded steps are zeroed after each conv so
    that they never leak into real ones."""

    def __init__(self, width: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv_a, self.bn_a = _conv(width, width, kernel, dilation), nn.BatchNorm2d(width)
        self.conv_b, self.bn_b = _conv(width, width, kernel, dilation), nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn_a(self.conv_a(x))) * mask
        return F.relu(x + self.bn_b(self.conv_b(h))) * mask


def masked_pool(h: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Global pooling of (B, C, L, 1) features over the real steps (``mask`` (B, 1, L, 1))."""
    parts = []
    if how in ("avg", "avgmax"):
        parts.append((h * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp(min=1.0))
    if how in ("max", "avgmax"):
        parts.append(h.masked_fill(mask == 0, -torch.inf).amax(dim=(2, 3)))
    return torch.cat(parts, dim=1)


class TemporalNet(nn.Module):
    """Stem, residual blocks, masked global pooling, linear (module doc) on (B, C, L, 1)
    inputs whose last channel is the padding mask."""

    def __init__(self, arch: TemporalArch, in_channels: int, spec: InputSpec) -> None:
        super().__init__()
        self.arch = arch
        self.stride = stem_stride(spec.length)
        kernel = arch.kernel if self.stride == 1 else 2 * self.stride
        self.stem = nn.Sequential(
            _conv(in_channels - 1, arch.width, kernel, stride=self.stride),
            nn.BatchNorm2d(arch.width),
            nn.ReLU(),
        )
        self.blocks = nn.ModuleList(
            TemporalBlock(arch.width, arch.kernel, 2**i if arch.mode == "dilated" else 1)
            for i in range(arch.depth)
        )
        pooled = 2 if arch.pool == "avgmax" else 1
        self.classifier = nn.Linear(pooled * arch.width, spec.num_classes)

    def _reduce_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The mask at the stem's output resolution (a step is real if its window holds one)."""
        if self.stride == 1:
            return mask
        kernel = 2 * self.stride
        return F.max_pool2d(mask, (kernel, 1), (self.stride, 1), ((kernel - 1) // 2, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x[:, -1:]
        h = self.stem(x[:, :-1] * mask)
        mask = self._reduce_mask(mask)
        h = h * mask
        for block in self.blocks:
            h = block(h, mask)
            if self.arch.mode == "pooled" and h.shape[2] > 1:
                h = F.max_pool2d(h, (2, 1), (2, 1), ceil_mode=True)
                mask = F.max_pool2d(mask, (2, 1), (2, 1), ceil_mode=True)
        return self.classifier(masked_pool(h, mask, self.arch.pool))


class TextNet(nn.Module):
    """Token ids (B, L) -> embedding (padding 0) -> ``body`` on (B, embed + 1, L, 1), the last
    channel the mask ids > 0."""

    def __init__(self, vocabulary: int, embed: int, body: nn.Module) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, embed, padding_idx=0)
        self.body = body

    def embed_inputs(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, embed + 1, L, 1): the embedded sequence and its padding mask."""
        ids = ids.long()
        mask = (ids > 0).to(self.embedding.weight.dtype)
        embedded = self.embedding(ids).transpose(1, 2)  # (B, E, L)
        return torch.cat([embedded, mask[:, None]], dim=1)[..., None]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.body(self.embed_inputs(ids))


@functools.cache
def candidate_space(domain: str) -> tuple[TemporalArch, ...]:
    """Every member of ``domain``'s family, in grid order."""
    if domain not in FAMILY_DOMAINS:
        raise ValueError(f"no temporal family for domain {domain!r}")
    embeds = EMBEDS if domain == "text" else (0,)
    grid = itertools.product(WIDTHS, DEPTHS, KERNELS, MODES, POOLS, embeds)
    return tuple(TemporalArch(*values) for values in grid)


def family_baseline(domain: str) -> TemporalArch:
    """The fixed baseline of ``domain`` (module doc); a member of ``candidate_space``."""
    if domain == "text":
        return TemporalArch(64, 1, 5, "plain", "max", 64)
    if domain in FAMILY_DOMAINS:
        return TemporalArch(32, 3, 5, "plain", "avg")
    raise ValueError(f"no temporal family for domain {domain!r}")


_NAME = re.compile(r"^tcn w(\d+) d(\d+) k(\d+) (\w+) (\w+)(?: e(\d+))?$")


def arch_from_name(name: str, domain: str) -> TemporalArch | None:
    """The member of ``domain``'s candidate space called ``name`` (a portfolio entry), None
    when no member is."""
    match = _NAME.match(name)
    if match is None or domain not in FAMILY_DOMAINS:
        return None
    width, depth, kernel, mode, pool, embed = match.groups()
    arch = TemporalArch(int(width), int(depth), int(kernel), mode, pool, int(embed or 0))
    return arch if arch in candidate_space(domain) else None


def proxy_view(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
    """What the proxies score for ``model`` on minibatch ``x``: a text network's trunk on the
    embedded minibatch (module doc), any other network on ``x`` itself."""
    if isinstance(model, TextNet):
        with torch.no_grad():
            return model.body, model.embed_inputs(x)
    return model, x
