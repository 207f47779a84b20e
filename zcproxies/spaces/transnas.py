"""TransNAS-Bench-101 (Duan et al., CVPR 2021): a cell space and a macro-skeleton space, 7 tasks.

Both spaces share TNB's ``MacroNet`` backbone (a stride-4 stem of 64 channels, then one module of
two cells/blocks per skeleton code) and TNB's task heads, as in ``yawen-d/TransNASBench``
(``lib/models``) and NASLib's verbatim copy (``search_spaces/transbench101/tnb101``), which
NASLib uses to build these networks.

* Micro (``TransNasMicro``): arch = the 6 op codes of NASLib's key, ops ``MICRO_OPS``
  (0 none, 1 skip_connect, 2 nor_conv_1x1, 3 nor_conv_3x3). NASLib writes the key straight into
  TNB's string ``64-41414-{}_{}{}_{}{}{}``, so position k of the key is the k-th digit of the
  string and the edges are, in key order, ``MICRO_EDGES`` = (1,2),(1,3),(2,3),(1,4),(2,4),(3,4)
  (node 1 = cell input) -- NOT NAS-Bench-201's edge order. The skeleton is fixed to ``41414``.
* Macro (``TransNasMacro``): arch = 4 to 6 module codes (NASLib pads with trailing zeros, which
  are dropped), string ``64-<codes>-basic``; code 1 keeps channels and resolution, 2 doubles the
  channels, 3 halves the resolution, 4 does both; each module is two ResNet basic blocks. The
  benchmark holds every skeleton with 1..4 downsamplings and 1..3 channel doublings (3,256).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from zcproxies.errors import InvalidArchitecture
from zcproxies.spaces.base import Arch, SearchSpace, Task, as_generator
from zcproxies.spaces.ops import ReLUConvBN, Zero

BASE_CHANNELS = 64
MICRO_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
# Edges (source, target) in key order == digit order of the string; node 1 is the cell input.
MICRO_EDGES = ((1, 2), (1, 3), (2, 3), (1, 4), (2, 4), (3, 4))
MICRO_SKELETON = (4, 1, 4, 1, 4)
_MICRO_STRING_RE = re.compile(r"^64-41414-([0-3])_([0-3]{2})_([0-3]{3})$")

MACRO_CODES = {1: "plain", 2: "channels x2", 3: "resolution /2", 4: "channels x2 + resolution /2"}
MACRO_LENGTHS = (4, 5, 6)
MACRO_DOWNSAMPLES = (1, 4)  # inclusive bounds on the number of codes 3/4 in a skeleton
MACRO_DOUBLINGS = (1, 3)  # inclusive bounds on the number of codes 2/4 in a skeleton
_MACRO_STRING_RE = re.compile(r"^64-([1-4]{4,6})-basic$")

_TAIL = (
    "Taskonomy 'final5k' split; TNB resizes inputs to 256x256 (the encoder is fully "
    "convolutional, so any size divisible by 64 keeps the decoders' output size = input size)"
)
TASKS = {
    "class_object": Task(
        "class_object",
        75,
        (3, 256, 256),
        "taskonomy",
        "classification",
        "soft-label object classification over 75 ImageNet classes (TNB final5k selection; NASLib "
        "builds a 100-way head: pass a Task with num_classes=100 for that); " + _TAIL,
    ),
    "class_scene": Task(
        "class_scene",
        47,
        (3, 256, 256),
        "taskonomy",
        "classification",
        "soft-label scene classification over 47 Places365 classes (NASLib: 63); " + _TAIL,
    ),
    "room_layout": Task(
        "room_layout",
        9,
        (3, 256, 256),
        "taskonomy",
        "regression",
        "9-d room-layout regression (box centre, rotation, scale; MSE loss); " + _TAIL,
    ),
    "jigsaw": Task(
        "jigsaw",
        1000,
        (3, 192, 192),
        "taskonomy",
        "jigsaw",
        "1000-way classification of the permutation of 9 shuffled 64x64 tiles: the image is cut "
        "into a 3x3 grid (raster order), each tile is encoded by the shared encoder, the 9 "
        "feature maps are concatenated; (B, 9, 3, h, w) tile tensors are accepted as well",
    ),
    "segmentsemantic": Task(
        "segmentsemantic",
        17,
        (3, 256, 256),
        "taskonomy",
        "segmentation",
        "17-class semantic segmentation, logits (B, 17, H, W); " + _TAIL,
    ),
    "normal": Task(
        "normal",
        3,
        (3, 256, 256),
        "taskonomy",
        "dense_regression",
        "surface-normal prediction, tanh image (B, 3, H, W) (pix2pix generator; the training-only "
        "discriminator is not part of the model); " + _TAIL,
    ),
    "autoencoder": Task(
        "autoencoder",
        3,
        (3, 256, 256),
        "taskonomy",
        "autoencoder",
        "image reconstruction, tanh image (B, 3, H, W) (pix2pix generator; the training-only "
        "discriminator is not part of the model); " + _TAIL,
    ),
}


# ---- encoder building blocks (TNB lib/models/net_ops, net_infer) --------------------------------
class ZeroResize(nn.Module):
    """TNB's ``none`` op when the channel count changes: new zeros (C_out, ceil(H/s), ceil(W/s))."""

    def __init__(self, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out = c_out
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2], x.shape[3]
        # TNB computes (H + 1) // stride, which is ceil(H / 2) for its strides of 2.
        shape = (x.shape[0], self.c_out, (height + 1) // self.stride, (width + 1) // self.stride)
        return x.new_zeros(shape)


class FactorizedReduce(nn.Module):
    """TNB's strided/widening skip: ReLU, two 1x1 convs (the second on the input shifted by one
    pixel), channel concat, BatchNorm."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c, 1, stride=stride, padding=0, bias=False)
            for c in (c_out // 2, c_out - c_out // 2)
        )
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = self.pad(x)[:, :, 1:, 1:]
        return self.bn(torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1))


def make_micro_op(code: int, c_in: int, c_out: int, stride: int) -> nn.Module:
    """One TNB cell operation; edges leaving the cell input carry the cell's stride and widening."""
    if code == 0:
        return Zero(stride) if c_in == c_out else ZeroResize(c_out, stride)
    if code == 1:
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return FactorizedReduce(c_in, c_out, stride)
    if code == 2:
        return ReLUConvBN(c_in, c_out, 1, stride, 0)
    if code == 3:
        return ReLUConvBN(c_in, c_out, 3, stride, 1)
    raise InvalidArchitecture(f"unknown TransNAS-Bench-101 op code {code!r} (0..3)")


class MicroCell(nn.Module):
    """TNB's ``MicroCell``: node j (1..3) is the sum over i < j of op(i -> j)(node i); node 0 is the
    input and only its out-edges stride/widen. Edges are built in ``MICRO_EDGES`` order."""

    def __init__(self, codes: tuple[int, ...], c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            make_micro_op(code, c_in, c_out, stride)
            if src == 1
            else make_micro_op(code, c_out, c_out, 1)
            for code, (src, _dst) in zip(codes, MICRO_EDGES, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (2, 3, 4):
            terms = [
                edge(nodes[src - 1])
                for edge, (src, dst) in zip(self.edges, MICRO_EDGES, strict=True)
                if dst == target
            ]
            nodes.append(torch.stack(terms).sum(0))  # TNB sums by stacking (same rounding)
        return nodes[-1]


class BasicBlock(nn.Module):
    """TNB's ``ResNetBasicblock``: two ReLU-conv3x3-BN (the first strided) plus a shortcut, which
    is a 1x1 strided conv + BN when the shape changes and identity otherwise."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            # Deliberately reproduced TNB quirk: it calls BatchNorm2d(C, affine,
            # track_running_stats) positionally, which sets eps=1.0 and momentum=1.0 here.
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, padding=0, bias=False),
                nn.BatchNorm2d(c_out, eps=1.0, momentum=1.0),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


CellFactory = Callable[[int, int, int], nn.Module]  # (c_in, c_out, stride) -> cell or block


class Encoder(nn.Module):
    """TNB's ``MacroNet`` backbone: stem (conv3x3 s2 to 32, BN, ReLU-conv3x3-BN s2 to 64) then one
    module of two cells per skeleton code; Kaiming-normal (fan_out) convs, BN weight 1 / bias 0."""

    def __init__(self, skeleton: tuple[int, ...], make_cell: CellFactory) -> None:
        super().__init__()
        half = BASE_CHANNELS // 2
        self.stem = nn.Sequential(
            nn.Conv2d(3, half, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(half),
            ReLUConvBN(half, BASE_CHANNELS, 3, 2, 1),
        )
        modules: list[nn.Module] = []
        channels = BASE_CHANNELS
        for code in skeleton:
            c_out = channels * 2 if code in (2, 4) else channels
            stride = 2 if code in (3, 4) else 1
            modules.append(
                nn.Sequential(make_cell(channels, c_out, stride), make_cell(c_out, c_out, 1))
            )
            channels = c_out
        self.layers = nn.Sequential(*modules)
        self.out_channels = channels
        self.num_downsamples = sum(code in (3, 4) for code in skeleton)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


# ---- task heads (TNB lib/models/task_models) ---------------------------------------------------
class FeedForwardNet(nn.Module):
    """Encoder, global average pooling and a linear layer (classification and room layout)."""

    def __init__(self, encoder: Encoder, num_outputs: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(encoder.out_channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.global_pool(self.encoder(x)), 1))


class JigsawNet(nn.Module):
    """TNB's ``SiameseNet``: the shared encoder runs once per tile (so BatchNorm sees one tile
    position per call, as in TNB), the 9 maps are concatenated, pooled and classified."""

    grid = 3

    def __init__(self, encoder: Encoder, num_outputs: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(encoder.out_channels * self.grid**2, num_outputs)

    def tiles(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 9, C, h, w) tiles: given, or cut from a (B, C, 3h, 3w) image in raster order."""
        if x.dim() == 5:
            return x
        batch, channels, height, width = x.shape
        if height % self.grid or width % self.grid:
            raise ValueError(f"jigsaw input {height}x{width} is not divisible into a 3x3 grid")
        h, w = height // self.grid, width // self.grid
        grid = x.reshape(batch, channels, self.grid, h, self.grid, w)
        return grid.permute(0, 2, 4, 1, 3, 5).reshape(batch, self.grid**2, channels, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tiles = self.tiles(x)
        features = torch.cat([self.encoder(tiles[:, i]) for i in range(tiles.shape[1])], dim=1)
        return self.classifier(torch.flatten(self.global_pool(features), 1))


def conv_layer(
    c_in: int, c_out: int, *, up: bool = False, norm: bool = True, act: nn.Module | None = None
) -> nn.Sequential:
    """TNB's ``ConvLayer``/``DeconvLayer``: 3x3 conv with bias (transposed, stride 2, output
    padding 1 when ``up``), then BatchNorm and the activation (LeakyReLU(0.2) by default)."""
    conv: nn.Module = (
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
        if up
        else nn.Conv2d(c_in, c_out, 3, stride=1, padding=1)
    )
    layers = [conv]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(act if act is not None else nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class SegmentationDecoder(nn.Sequential):
    """TNB's segmentation decoder: conv to 1024, (6 - u) halving convs, (u - 1) halving
    up-convs, one more up-conv and a plain 3x3 conv to the class logits; u = upsamplings."""

    def __init__(self, c_in: int, num_upsample: int, num_classes: int) -> None:
        layers = [conv_layer(c_in, 1024)]
        channels = 1024
        for _ in range(6 - num_upsample):
            layers.append(conv_layer(channels, channels // 2))
            channels //= 2
        for _ in range(num_upsample - 1):
            layers.append(conv_layer(channels, channels // 2, up=True))
            channels //= 2
        layers.append(conv_layer(channels, channels, up=True))
        layers.append(nn.Conv2d(channels, num_classes, 3, stride=1, padding=1))
        super().__init__(*layers)


class GenerativeDecoder(nn.Sequential):
    """TNB's pix2pix generator decoder (14 layers, 1024 -> 16 channels, tanh output); of the
    layers 3, 5, 7 and 9 the last (u - 2) are stride-2 up-convs, layers 11 and 13 always are."""

    def __init__(self, c_in: int, num_upsample: int, out_channels: int) -> None:
        # (c_out, upsample?) for layers 2..13; layer 1 maps c_in to 1024.
        plan = [
            (1024, False),
            (512, num_upsample == 6),
            (512, False),
            (256, num_upsample >= 5),
            (128, False),
            (64, num_upsample >= 4),
            (64, False),
            (32, num_upsample >= 3),
            (32, False),
            (16, True),
            (32, False),
            (16, True),
        ]
        layers = [conv_layer(c_in, 1024)]
        channels = 1024
        for c_out, up in plan:
            layers.append(conv_layer(channels, c_out, up=up))
            channels = c_out
        layers.append(conv_layer(channels, out_channels, norm=False, act=nn.Tanh()))
        super().__init__(*layers)


class DenseNet(nn.Module):
    """Encoder plus a convolutional decoder back to the input resolution (pixel-wise tasks)."""

    def __init__(self, encoder: Encoder, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def build_task_model(encoder: Encoder, task: Task) -> nn.Module:
    """Wrap an encoder in the head of ``task.kind`` (built after the encoder, as TNB does)."""
    # TNB derives the decoder depth from a nominal 224x224 input, int(log2(256 / (56 // 2**d)));
    # for d = 1..4 downsamplings that is exactly 2 + d, which maps the real 1/(4 * 2**d)
    # resolution back to the input resolution.
    num_upsample = 2 + encoder.num_downsamples
    if task.kind in ("classification", "regression"):
        return FeedForwardNet(encoder, task.num_classes)
    if task.kind == "jigsaw":
        return JigsawNet(encoder, task.num_classes)
    if task.kind == "segmentation":
        return DenseNet(
            encoder, SegmentationDecoder(encoder.out_channels, num_upsample, task.num_classes)
        )
    if task.kind in ("autoencoder", "dense_regression"):
        return DenseNet(
            encoder, GenerativeDecoder(encoder.out_channels, num_upsample, task.num_classes)
        )
    raise InvalidArchitecture(f"TransNAS-Bench-101 has no head for task kind {task.kind!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# ---- the two spaces ----------------------------------------------------------------------------
class TransNasMicro(SearchSpace):
    """TransNAS-Bench-101 cell space: 4^6 = 4,096 cells in the fixed skeleton 64-41414."""

    name = "transbench101_micro"
    aliases = ("tnb101_micro",)
    description = "TransNAS-Bench-101 micro (cell-level) space, 7 Taskonomy tasks"
    tasks = TASKS

    @property
    def size(self) -> int:
        return len(MICRO_OPS) ** len(MICRO_EDGES)

    def validate(self, arch: Arch) -> Arch:
        if (
            not isinstance(arch, tuple)
            or len(arch) != len(MICRO_EDGES)
            or not all(_is_int(code) and 0 <= code < len(MICRO_OPS) for code in arch)
        ):
            raise InvalidArchitecture(
                f"TransNAS-Bench-101 micro arch must be 6 op codes in 0..3 "
                f"({', '.join(MICRO_OPS)}), got {arch!r}"
            )
        return tuple(int(code) for code in arch)

    def sample(self, rng: np.random.Generator | int) -> Arch:
        """Uniform over all 4,096 cells (NASLib's sampler rejects a few; we do not)."""
        gen = as_generator(rng)
        return tuple(int(i) for i in gen.integers(0, len(MICRO_OPS), size=len(MICRO_EDGES)))

    def enumerate(self) -> Iterator[Arch]:
        """All 4,096 cells in NASLib's (and the reference table's) lexicographic order."""
        yield from itertools.product(range(len(MICRO_OPS)), repeat=len(MICRO_EDGES))

    def to_string(self, arch: Arch) -> str:
        a = self.parse(arch)
        return f"64-41414-{a[0]}_{a[1]}{a[2]}_{a[3]}{a[4]}{a[5]}"

    def from_string(self, text: str) -> Arch:
        match = _MICRO_STRING_RE.match(text.strip())
        if not match:
            raise InvalidArchitecture(
                f"not a TransNAS-Bench-101 micro string: {text!r} (expected '64-41414-a_bc_def' "
                "with op codes 0..3)"
            )
        return tuple(int(c) for c in "".join(match.groups()))

    def op_names(self, arch: Arch) -> tuple[str, ...]:
        """Op names in ``MICRO_EDGES`` order."""
        return tuple(MICRO_OPS[code] for code in self.parse(arch))

    def is_disconnected(self, arch: Arch) -> bool:
        """True when no path of non-``none`` edges joins the cell input to its output; then the
        cell output (hence the network output) does not depend on the input."""
        codes = self.parse(arch)
        reach = {1}
        for code, (src, dst) in zip(codes, MICRO_EDGES, strict=True):  # sorted by target
            if code != 0 and src in reach:
                reach.add(dst)
        return 4 not in reach

    @staticmethod
    def _cell_function(codes: tuple[int, ...], reduction: bool) -> str:
        """Expression of the cell output in its input ``x`` for a normal or a reduction cell."""
        # node -> (sorted input-dependent terms, has a learnable constant)
        nodes: dict[int, tuple[list[str], bool]] = {1: (["x"], False)}
        for target in (2, 3, 4):
            terms: list[str] = []
            const = False
            for code, (src, dst) in zip(codes, MICRO_EDGES, strict=True):
                if dst != target or code == 0:
                    continue
                src_terms, src_const = nodes[src]
                if code == 1 and not (reduction and src == 1):
                    terms += src_terms
                    const |= src_const
                elif not src_terms:
                    const = True  # ReLU-conv-BN of an input-independent map: BN's bias
                else:
                    op = "fr" if code == 1 else MICRO_OPS[code]
                    inner = "+".join(sorted(src_terms) + (["c"] if src_const else []))
                    terms.append(f"{op}({inner})")
            nodes[target] = (sorted(terms), const)
        terms, const = nodes[4]
        return "+".join(terms + (["c"] if const else [])) if terms else ""

    def canonical_key(self, arch: Arch) -> str:
        """Functional identity of the whole network (see docs/transnas.md).

        Every cell whose output does not depend on its input gives a network with an
        input-independent output: all such archs share the key ``"constant"``. Otherwise the key
        is the output expression of the normal cell and of the reduction cell (where a skip from
        the input is a FactorizedReduce): ``none`` and edges out of input-independent nodes are
        dropped (a conv on one only adds BN's learnable bias, kept as the term ``c``), skips pass
        their input's terms through, sums are sorted multisets.
        """
        codes = self.parse(arch)
        normal = self._cell_function(codes, reduction=False)
        if not normal:
            return "constant"
        return f"normal:{normal}|reduction:{self._cell_function(codes, reduction=True)}"

    def _build(self, arch: Arch, task: Task, flavor: str) -> nn.Module:
        """Both flavors are TNB's network (docs/competition.md: NASLib's competition branch had
        no usable TransNAS network; its Develop branch wraps TNB's own)."""
        encoder = Encoder(MICRO_SKELETON, lambda c_in, c_out, s: MicroCell(arch, c_in, c_out, s))
        return build_task_model(encoder, task)

    def describe(self, arch: Arch) -> str:
        names = self.op_names(arch)
        lines = [f"TransNAS-Bench-101 micro cell {self.to_string(arch)}"]
        for target in (2, 3, 4):
            terms = [
                f"{names[e]}(node{src - 1})"
                for e, (src, dst) in enumerate(MICRO_EDGES)
                if dst == target
            ]
            lines.append(f"  node{target - 1} = " + " + ".join(terms))
        lines.append(f"  output depends on input: {'no' if self.is_disconnected(arch) else 'yes'}")
        lines.append(f"  functional key: {self.canonical_key(arch)}")
        lines.append(
            "  macro: stem conv3x3 s2 (32) + ReLU-conv3x3-BN s2 (64) | 5 modules x 2 "
            "cells, skeleton 41414: 128 /8, 128, 256 /16, 256, 512 /32 | task head"
        )
        return "\n".join(lines)


def _macro_counts(codes: tuple[int, ...]) -> tuple[int, int]:
    """(downsamplings, channel doublings) of a skeleton."""
    return sum(c in (3, 4) for c in codes), sum(c in (2, 4) for c in codes)


def _macro_is_valid(codes: tuple[int, ...]) -> bool:
    downs, doubles = _macro_counts(codes)
    return (
        len(codes) in MACRO_LENGTHS
        and MACRO_DOWNSAMPLES[0] <= downs <= MACRO_DOWNSAMPLES[1]
        and MACRO_DOUBLINGS[0] <= doubles <= MACRO_DOUBLINGS[1]
    )


MACRO_ARCHS: tuple[tuple[int, ...], ...] = tuple(
    sorted(
        codes
        for length in MACRO_LENGTHS
        for codes in itertools.product(sorted(MACRO_CODES), repeat=length)
        if _macro_is_valid(codes)
    )
)


class TransNasMacro(SearchSpace):
    """TransNAS-Bench-101 macro space: 3,256 skeletons of ResNet basic-block modules."""

    name = "transbench101_macro"
    aliases = ("tnb101_macro",)
    description = "TransNAS-Bench-101 macro (skeleton-level) space, 7 Taskonomy tasks"
    tasks = TASKS

    @property
    def size(self) -> int:
        return len(MACRO_ARCHS)

    def validate(self, arch: Arch) -> Arch:
        if not isinstance(arch, tuple) or not all(_is_int(c) for c in arch) or len(arch) > 6:
            raise InvalidArchitecture(
                "TransNAS-Bench-101 macro arch must be a tuple of at most 6 module codes, "
                f"got {arch!r}"
            )
        codes = tuple(int(c) for c in arch)
        while codes and codes[-1] == 0:  # NASLib pads keys to length 6 with zeros
            codes = codes[:-1]
        if not all(c in MACRO_CODES for c in codes):
            raise InvalidArchitecture(
                "TransNAS-Bench-101 macro codes must be 1..4 (0 only as trailing padding), "
                f"got {arch!r}"
            )
        downs, doubles = _macro_counts(codes)
        if not _macro_is_valid(codes):
            raise InvalidArchitecture(
                f"TransNAS-Bench-101 macro skeleton {codes!r} has {len(codes)} modules, {downs} "
                f"downsamplings (codes 3/4) and {doubles} channel doublings (codes 2/4); the "
                f"benchmark needs 4..6 modules, {MACRO_DOWNSAMPLES[0]}..{MACRO_DOWNSAMPLES[1]} "
                f"downsamplings and {MACRO_DOUBLINGS[0]}..{MACRO_DOUBLINGS[1]} doublings"
            )
        return codes

    def sample(self, rng: np.random.Generator | int) -> Arch:
        """Uniform over the 3,256 skeletons (NASLib's own sampler is not uniform)."""
        return MACRO_ARCHS[int(as_generator(rng).integers(len(MACRO_ARCHS)))]

    def enumerate(self) -> Iterator[Arch]:
        """All skeletons, sorted as tuples (the order of NASLib's table)."""
        yield from MACRO_ARCHS

    def to_string(self, arch: Arch) -> str:
        return f"64-{''.join(str(c) for c in self.parse(arch))}-basic"

    def from_string(self, text: str) -> Arch:
        match = _MACRO_STRING_RE.match(text.strip())
        if not match:
            raise InvalidArchitecture(
                f"not a TransNAS-Bench-101 macro string: {text!r} (expected '64-<4 to 6 codes "
                "1..4>-basic')"
            )
        return self.validate(tuple(int(c) for c in match.group(1)))

    def canonical_key(self, arch: Arch) -> str:
        """Every skeleton is a distinct network: the key is the benchmark string."""
        return self.to_string(arch)

    def _build(self, arch: Arch, task: Task, flavor: str) -> nn.Module:
        """Both flavors are TNB's network (see ``TransNasMicro._build``)."""
        return build_task_model(Encoder(arch, BasicBlock), task)

    def describe(self, arch: Arch) -> str:
        codes = self.parse(arch)
        lines = [
            f"TransNAS-Bench-101 macro skeleton {self.to_string(codes)}",
            "  stem: conv3x3 s2 (32) + ReLU-conv3x3-BN s2 (64), resolution /4",
        ]
        channels, scale = BASE_CHANNELS, 4
        for i, code in enumerate(codes, 1):
            c_out = channels * 2 if code in (2, 4) else channels
            scale *= 2 if code in (3, 4) else 1
            lines.append(
                f"  module{i} (code {code}, {MACRO_CODES[code]}): 2 ResNet basic blocks, "
                f"{channels} -> {c_out} channels, resolution /{scale}"
            )
            channels = c_out
        downs, doubles = _macro_counts(codes)
        lines.append(
            f"  downsamplings: {downs}; channel doublings: {doubles}; "
            f"output {channels} channels | task head"
        )
        return "\n".join(lines)
