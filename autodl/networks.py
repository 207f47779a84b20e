"""The networks the AutoDL trainer trains on images, videos and tabular data: NB201 cell
candidates and plain CNNs/MLPs of the fixed baseline's family (speech, time series and text:
``autodl.families``).

Candidates are NB201 cells in NB201's macro skeleton (``zcproxies.spaces.nb201.TinyNetwork``)
with the input's channels and classes and a configurable width C and depth N. Tabular inputs go
down a dense path: the same cell graph evaluated on a 1 x 1 feature map, where every op becomes
its dense equivalent (``DENSE_EQUIVALENT``), so each convolution is a fully connected layer.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from autodl.preprocess import InputSpec
from zcproxies.spaces.nb201 import OPS, Cell, TinyNetwork
from zcproxies.spaces.ops import ReLUConvBN

# On a 1 x 1 map a zero-padded 3x3 convolution reduces to its centre tap (a 1x1 convolution) and
# a 3x3 average pooling that excludes padding is the identity: the dense path uses the rest.
DENSE_EQUIVALENT = {"nor_conv_3x3": "nor_conv_1x1", "avg_pool_3x3": "skip_connect"}
DENSE_OPS = tuple(name for name in OPS if name not in DENSE_EQUIVALENT)


class DenseResidualBlock(nn.Module):
    """NB201's reduction block on a 1 x 1 map: two ReLU-dense-BN layers plus a dense shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 1)
        self.downsample = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class DenseCellNetwork(nn.Module):
    """``TinyNetwork`` for feature vectors: stem, 3 stages of ``n`` cells at widths c, 2c, 4c.

    The input (B, D) is viewed as a (B, D, 1, 1) map so that the NB201 ``Cell`` runs unchanged
    (ops must be in ``DENSE_OPS``: on that map they are the dense layers); block features stay
    4-D, as the feature-based proxies expect.
    """

    def __init__(
        self, op_names: tuple[str, ...], num_classes: int, c: int, n: int, in_features: int
    ) -> None:
        super().__init__()
        unknown = set(op_names) - set(DENSE_OPS)
        if unknown:
            raise ValueError(f"dense cells take ops {DENSE_OPS}, got {sorted(unknown)}")
        self.stem = nn.Sequential(nn.Conv2d(in_features, c, 1, bias=False), nn.BatchNorm2d(c))
        cells: list[nn.Module] = []
        c_prev = c
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                cells.append(DenseResidualBlock(c_prev, width))
            cells.extend(Cell(op_names, width) for _ in range(n))
            c_prev = width
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x.reshape(x.shape[0], -1, 1, 1))))
        return self.classifier(torch.flatten(out, 1))


def random_translate_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of ``x`` (B, C, H, W) shifted by up to ``pad`` pixels each way (zero fill,
    i.e. a random crop of the zero-padded image) and mirrored left-right with probability 1/2."""
    batch, _, height, width = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator).to(x.device)
    flips = (torch.rand(batch, generator=generator) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = offsets[0][:, None] + torch.arange(height, device=x.device)  # (B, H)
    cols = offsets[1][:, None] + torch.arange(width, device=x.device)  # (B, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    index = torch.arange(batch, device=x.device)[:, None, None]
    return padded[index, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class TrainAugment(nn.Module):
    """``net`` behind image augmentation that acts in training mode only (identity in eval):
    random translations and horizontal flips (``random_translate_flip``), seeded per call."""

    def __init__(self, net: nn.Module, pad: int, seed: int) -> None:
        super().__init__()
        self.net, self.pad, self.seed = net, pad, seed
        self.calls = 0  # with ``seed``, the generator of the next call (copies stay plain data)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.calls)
            self.calls += 1
            x = random_translate_flip(x, self.pad, generator)
        return self.net(x)


def build_candidate(arch: tuple[int, ...], spec: InputSpec, c: int, n: int) -> nn.Module:
    """The network of NB201 cell ``arch`` (NASLib op indices) for inputs of ``spec``."""
    names = tuple(OPS[i] for i in arch)
    if spec.domain == "tabular":
        return DenseCellNetwork(names, spec.num_classes, c, n, spec.channels)
    return TinyNetwork(names, spec.num_classes, c, n, spec.channels)


def build_baseline(spec: InputSpec, c: int, depth: int = 1) -> nn.Module:
    """A plain network of the no-search baseline's family, chosen from the input shape alone
    (``c`` = 16, ``depth`` = 1 is the baseline; the search's pool holds other widths and depths).

    Images/videos: three stages of ``depth`` conv3x3-BN-ReLU blocks of c, 2c, 4c channels (2x2
    max pooling after the first two), global average pooling, linear. Tabular: an MLP with
    ``depth`` hidden layers of 16c units and one of 8c (BN, ReLU).
    """
    if spec.domain == "tabular":
        widths = [spec.channels, *[16 * c] * depth, 8 * c]
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Linear(c_in, c_out), nn.BatchNorm1d(c_out), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(widths[-1], spec.num_classes))

    def stage(c_in: int, c_out: int) -> list[nn.Module]:
        blocks: list[nn.Module] = []
        for i in range(depth):
            blocks += [
                nn.Conv2d(c_out if i else c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        return blocks

    return nn.Sequential(
        *stage(spec.channels, c),
        nn.MaxPool2d(2),
        *stage(c, 2 * c),
        nn.MaxPool2d(2),
        *stage(2 * c, 4 * c),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * c, spec.num_classes),
    )
