"""NAS-Bench-201 (Dong & Yang, ICLR 2020): a 4-node cell with 6 edges and 5 operations.

Arch: a 6-tuple of NASLib op indices over the edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) (node 1
is the cell input), ops ``OPS``. The network is NAS-Bench-201's ``TinyNetwork``: a 3x3 stem of
16 channels, 3 stages of 5 cells (16, 32, 64 channels) separated by ResNet basic blocks of
stride 2, then BN-ReLU, global average pooling and a linear classifier.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from zcproxies.errors import InvalidArchitecture
from zcproxies.spaces.base import Arch, SearchSpace, Task, as_generator
from zcproxies.spaces.ops import ReLUConvBN, ResNetBasicBlock, Zero

OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
# Position in the arch tuple of each edge, listed by target node then source node: the order of
# NB201's string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
STRING_ORDER = (0, 1, 3, 2, 4, 5)
_STRING_RE = re.compile(
    r"^\|([a-z0-9_]+)~0\|\+\|([a-z0-9_]+)~0\|([a-z0-9_]+)~1\|"
    r"\+\|([a-z0-9_]+)~0\|([a-z0-9_]+)~1\|([a-z0-9_]+)~2\|$"
)


def make_op(name: str, channels: int) -> nn.Module:
    """One NB201 cell operation on ``channels`` channels at stride 1 (the only cell stride)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise InvalidArchitecture(f"unknown NAS-Bench-201 op {name!r}")


class Cell(nn.Module):
    """A cell over nodes 0..3 (node 0 = input): node j is the sum of op(i->j)(node i), i < j."""

    def __init__(self, op_names: tuple[str, ...], channels: int) -> None:
        super().__init__()
        self.op_names = op_names  # in EDGES order
        self.edges = nn.ModuleList(make_op(name, channels) for name in op_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, 4):
            nodes.append(
                sum(
                    self.edges[e](nodes[src - 1])
                    for e, (src, dst) in enumerate(EDGES)
                    if dst - 1 == j
                )
            )
        return nodes[3]


class TinyNetwork(nn.Module):
    """NAS-Bench-201's macro skeleton (C=16, N=5, RGB input) around one cell genotype."""

    def __init__(
        self,
        op_names: tuple[str, ...],
        num_classes: int,
        c: int = 16,
        n: int = 5,
        in_channels: int = 3,
        inplace_last_relu: bool = False,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        channels = [c] * n + [2 * c] + [2 * c] * n + [4 * c] + [4 * c] * n
        reduction = [False] * n + [True] + [False] * n + [True] + [False] * n
        cells: list[nn.Module] = []
        c_prev = c
        for c_cur, red in zip(channels, reduction, strict=True):
            cells.append(ResNetBasicBlock(c_prev, c_cur, 2) if red else Cell(op_names, c_cur))
            c_prev = c_cur
        self.cells = nn.Sequential(*cells)
        # NASLib's competition branch post-processes with ReLU(inplace=True) (same values)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=inplace_last_relu))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pool(out), 1))


class NasBench201(SearchSpace):
    """NAS-Bench-201: 5^6 = 15,625 cell encodings (6,466 non-isomorphic, per the benchmark)."""

    name = "nasbench201"
    aliases = ("nb201", "nas-bench-201", "natsbench-tss")
    description = "NAS-Bench-201 cell space (NATS-Bench topology)"
    macro = (16, 5)  # (initial channels C, cells per stage N)
    tasks = {  # noqa: RUF012
        "cifar10": Task("cifar10", 10, (3, 32, 32), "cifar10"),
        "cifar100": Task("cifar100", 100, (3, 32, 32), "cifar100"),
        "ImageNet16-120": Task("ImageNet16-120", 120, (3, 16, 16), "ImageNet16-120"),
    }

    @property
    def size(self) -> int:
        return len(OPS) ** len(EDGES)

    def validate(self, arch: Arch) -> Arch:
        if (
            not isinstance(arch, tuple)
            or len(arch) != len(EDGES)
            or not all(isinstance(i, int) and 0 <= i < len(OPS) for i in arch)
        ):
            raise InvalidArchitecture(
                f"NAS-Bench-201 arch must be 6 op indices in 0..{len(OPS) - 1}, got {arch!r}"
            )
        return arch

    def sample(self, rng: np.random.Generator | int) -> Arch:
        gen = as_generator(rng)
        return tuple(int(i) for i in gen.integers(0, len(OPS), size=len(EDGES)))

    def enumerate(self) -> Iterator[Arch]:
        yield from itertools.product(range(len(OPS)), repeat=len(EDGES))

    def op_names(self, arch: Arch) -> tuple[str, ...]:
        """Op names in EDGES order."""
        return tuple(OPS[i] for i in self.parse(arch))

    def to_string(self, arch: Arch) -> str:
        names = self.op_names(arch)
        parts = [f"{names[e]}~{EDGES[e][0] - 1}" for e in STRING_ORDER]
        return f"|{parts[0]}|+|{parts[1]}|{parts[2]}|+|{parts[3]}|{parts[4]}|{parts[5]}|"

    def from_string(self, text: str) -> Arch:
        match = _STRING_RE.match(text.strip())
        if not match or any(op not in OPS for op in match.groups()):
            raise InvalidArchitecture(
                f"not a NAS-Bench-201 arch string: {text!r} (expected "
                "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with ops " + ", ".join(OPS) + ")"
            )
        arch = [0] * len(EDGES)
        for pos, op in zip(STRING_ORDER, match.groups(), strict=True):
            arch[pos] = OPS.index(op)
        return tuple(arch)

    def canonical_key(self, arch: Arch) -> str:
        """NATS-Bench's ``to_unique_str(consider_zero=True)``, the benchmark's isomorphism key.

        Skip connections pass their input's key through, ``none`` (or any op on a zero node)
        gives ``#``, other ops wrap it as ``(key)@op``; a node joins its sorted inputs with ``+``.
        """
        names = self.op_names(arch)
        keys = {0: "0"}
        for j in range(1, 4):
            parts = []
            for e, (src, dst) in enumerate(EDGES):
                if dst - 1 != j:
                    continue
                op, key_in = names[e], keys[src - 1]
                if op == "none" or key_in == "#":
                    parts.append("#")
                elif op == "skip_connect":
                    parts.append(key_in)
                else:
                    parts.append(f"({key_in})@{op}")
            keys[j] = "+".join(sorted(parts))
        return keys[3]

    def num_convs(self, arch: Arch) -> int:
        """Number of convolution edges (the size strata used in the NB201 analyses)."""
        return sum(name.startswith("nor_conv") for name in self.op_names(arch))

    def is_disconnected(self, arch: Arch) -> bool:
        """True when no path of non-``none`` edges joins the cell input to its output."""
        names = self.op_names(arch)
        reach = {1}
        for e, (src, dst) in sorted(enumerate(EDGES), key=lambda item: item[1][1]):
            if src in reach and names[e] != "none":
                reach.add(dst)
        return 4 not in reach

    def _build(self, arch: Arch, task: Task, flavor: str) -> nn.Module:
        """The ``naslib`` flavor differs only by NASLib's in-place last ReLU: NASLib builds the
        cell ops with non-affine BN, but its ``set_spec`` (``convert_op_indices_to_naslib``'s
        ``update_batchnorms``) rebuilds the chosen ops with affine BN and running statistics,
        which is the benchmark's network (docs/competition.md)."""
        c, n = self.macro
        return TinyNetwork(
            self.op_names(arch),
            task.num_classes,
            c,
            n,
            task.input_shape[0],
            inplace_last_relu=flavor == "naslib",
        )

    def describe(self, arch: Arch) -> str:
        names = self.op_names(arch)
        lines = [f"NAS-Bench-201 cell {self.to_string(arch)}"]
        for j in range(1, 4):
            terms = [
                f"{names[e]}(node{src - 1})" for e, (src, dst) in enumerate(EDGES) if dst - 1 == j
            ]
            lines.append(f"  node{j} = " + " + ".join(terms))
        lines.append(
            f"  convolutions: {self.num_convs(arch)}; output reachable from input: "
            f"{'no' if self.is_disconnected(arch) else 'yes'}"
        )
        lines.append(f"  isomorphism key: {self.canonical_key(arch)}")
        c, n = self.macro
        stages = " | resblock s2 | ".join(f"{n} cells @{c * k}" for k in (1, 2, 4))
        lines.append(f"  macro: stem conv3x3({c}) | {stages} | BN-ReLU | GAP | linear")
        return "\n".join(lines)


class NasBench201Mini(NasBench201):
    """The NB201 cell space on a reduced skeleton (C=8, one cell per stage) for small images.

    The space of zcp's embedded default benchmark (task ``shapes``, generated 12x12 images, see
    ``benchmark_data/README.md``): the same 15,625 cell encodings and isomorphism keys as
    NAS-Bench-201, small enough to train every architecture on a CPU in seconds. ``digits``
    (scikit-learn's 8x8 digits) is a second, even cheaper task.
    """

    name = "nasbench201_mini"
    aliases = ("nb201-mini", "nb201_mini")
    description = "NAS-Bench-201 cells on a reduced skeleton (C=8, N=1) for small images"
    macro = (8, 1)
    tasks = {  # noqa: RUF012
        # input size: zcproxies.data.synthetic.ShapesStyle().size (tests check they agree)
        "shapes": Task(
            "shapes",
            10,
            (3, 12, 12),
            "shapes",
            description="zcp's generated 12x12 shapes (zcproxies.data.synthetic), 10 classes",
        ),
        "digits": Task(
            "digits",
            10,
            (1, 8, 8),
            "digits",
            description="scikit-learn's bundled 8x8 handwritten digits",
        ),
    }
