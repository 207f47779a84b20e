"""NAS-Bench-301 (Siems et al., 2020): the DARTS cell space, a normal and a reduction cell.

Arch: NASLib's "compact" key as a tuple ``(normal, reduce)``; each cell is 8 pairs
``(input_node, op_index)`` over ``OPS``, pairs ``2k`` and ``2k+1`` being the two inputs of
intermediate node ``k + 2`` (nodes 0 and 1 are the outputs of the two previous cells), and the
cell output concatenates nodes 2..5. The network is the one NASLib's ``NasBench301SearchSpace``
builds for NAS-Bench-Suite-Zero (channels 32/64/128, 8 cells, stem multiplier 3, no auxiliary
head): DARTS' ``NetworkCIFAR`` with C=32, layers=8, except that, as in NASLib, the cell
operations use non-affine BatchNorm and the pooling operations are followed by a (non-affine)
BatchNorm. Its parameter count equals the ``params`` of all 500 NAS-Bench-Suite-Zero archs.
"""

from __future__ import annotations

import ast
import itertools
import math
import re

import numpy as np
import torch
from torch import nn

from zcproxies.errors import InvalidArchitecture
from zcproxies.spaces.base import Arch, SearchSpace, Task, as_generator, to_tuple
from zcproxies.spaces.ops import ReLUConvBN

OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
NUM_NODES = 4  # intermediate nodes per cell (2..5)
CONCAT = (2, 3, 4, 5)
CELL_NAMES = ("normal", "reduce")
_GENOTYPE_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
_GENOTYPE_RE = re.compile(r"^\s*Genotype\s*\(.*\)\s*$", re.DOTALL)


class SepConv(nn.Sequential):
    """DARTS separable convolution: (ReLU, depthwise k x k, pointwise 1x1, BN) twice.

    Only the first depthwise convolution is strided.
    """

    def __init__(self, c: int, kernel_size: int, stride: int, affine: bool = False) -> None:
        pad = kernel_size // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel_size, stride, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel_size, 1, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class DilConv(nn.Sequential):
    """DARTS dilated separable convolution: ReLU, depthwise k x k (dilation 2), pointwise, BN."""

    def __init__(self, c: int, kernel_size: int, stride: int, affine: bool = False) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel_size, stride, kernel_size - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1x1 convs on offset grids, concatenated, then BN.

    DARTS' skip connection at stride 2 and the preprocessing of a cell after a reduction cell.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even output width, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def make_op(name: str, c: int, stride: int) -> nn.Module:
    """One DARTS cell operation on ``c`` channels, as NASLib builds it for NAS-Bench-301.

    NASLib keeps the search-phase form: non-affine BN in the convolutions and in the
    FactorizedReduce skip, and a non-affine BN after each pooling (DARTS' evaluation network
    has affine BNs and unnormalised pooling; the reference ``params`` confirm NASLib's form).
    """
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, padding=1), nn.BatchNorm2d(c, affine=False))
    if name == "avg_pool_3x3":
        return nn.Sequential(
            nn.AvgPool2d(3, stride, padding=1, count_include_pad=False),
            nn.BatchNorm2d(c, affine=False),
        )
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine=False)
    if name.startswith(("sep_conv_", "dil_conv_")):
        op_class = SepConv if name.startswith("sep") else DilConv
        return op_class(c, int(name[-1]), stride)
    raise InvalidArchitecture(f"unknown DARTS op {name!r}")


class Cell(nn.Module):
    """A DARTS cell: preprocess the two inputs, 4 nodes each summing two ops, concat nodes 2..5.

    In a reduction cell the ops reading the cell inputs (nodes 0, 1) have stride 2.
    """

    def __init__(
        self,
        pairs: tuple[tuple[int, int], ...],
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_prev_prev, c)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.inputs = tuple(node for node, _ in pairs)
        self.edges = nn.ModuleList(
            make_op(OPS[op], c, 2 if reduction and node < 2 else 1) for node, op in pairs
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(NUM_NODES):
            a, b = 2 * k, 2 * k + 1
            states.append(
                self.edges[a](states[self.inputs[a]]) + self.edges[b](states[self.inputs[b]])
            )
        return torch.cat([states[i] for i in CONCAT], dim=1)


class AuxiliaryHead(nn.Sequential):
    """The auxiliary head NASLib's competition evaluator attached to the last cell
    (``NasBench301SearchSpace.prepare_evaluation``, DARTS' ``AuxiliaryHeadCIFAR`` for 8x8 maps).

    Its first ReLU is in place: it rectifies the last cell's output that the classifier then
    pools, as NASLib's graph (which runs this edge first) does.
    """

    def __init__(self, c_in: int, num_classes: int) -> None:
        super().__init__(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c_in, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(768, num_classes),
        )


class DartsNetwork(nn.Module):
    """DARTS' CIFAR network: stem, ``layers`` cells (reductions at 1/3 and 2/3), GAP, linear.

    Defaults are NASLib's NAS-Bench-301 configuration (C=32, 8 cells, stem multiplier 3).
    Drop-path is a training-time addition and is left out; the auxiliary head only with
    ``auxiliary`` (the "naslib" flavor): its logits are kept in ``aux_logits`` after a forward.
    """

    def __init__(
        self,
        normal: tuple[tuple[int, int], ...],
        reduce: tuple[tuple[int, int], ...],
        num_classes: int,
        c: int = 32,
        layers: int = 8,
        stem_multiplier: int = 3,
        auxiliary: bool = False,
    ) -> None:
        super().__init__()
        c_stem = stem_multiplier * c
        self.stem = nn.Sequential(
            nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        c_prev_prev, c_prev, c_cur = c_stem, c_stem, c
        reduction_prev = False
        cells: list[Cell] = []
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_cur *= 2
            cells.append(
                Cell(
                    reduce if reduction else normal,
                    c_prev_prev,
                    c_prev,
                    c_cur,
                    reduction,
                    reduction_prev,
                )
            )
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, len(CONCAT) * c_cur
        self.cells = nn.ModuleList(cells)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        # registered before the classifier, as NASLib's graph registers its edge
        self.auxiliary = AuxiliaryHead(c_prev, num_classes) if auxiliary else None
        self.aux_logits: torch.Tensor | None = None
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        if self.auxiliary is not None:
            self.aux_logits = self.auxiliary(s1)  # rectifies s1 in place (see AuxiliaryHead)
        return self.classifier(torch.flatten(self.global_pool(s1), 1))


def _cell_encodings() -> int:
    """Encodings of one cell: node k picks an ordered pair of distinct inputs < k and 2 ops."""
    return math.prod(k * (k - 1) * len(OPS) ** 2 for k in range(2, 2 + NUM_NODES))


def _canonical_cell(cell: tuple[tuple[int, int], ...]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """The smallest form of ``cell`` over input swaps and topological relabellings of nodes 2..5.

    Each node becomes its sorted pair of (input, op); relabellings keep every input below its
    node, so the result is a member of the space.
    """
    best = None
    nodes = range(2, 2 + NUM_NODES)
    for perm in itertools.permutations(nodes):
        relabel = {0: 0, 1: 1, **dict(zip(nodes, perm, strict=True))}
        new: dict[int, tuple[tuple[int, int], ...]] = {}
        for k in nodes:
            pairs = tuple(sorted((relabel[i], op) for i, op in cell[2 * k - 4 : 2 * k - 2]))
            if pairs[-1][0] >= relabel[k]:
                break
            new[relabel[k]] = pairs
        else:
            form = tuple(new[k] for k in nodes)
            best = form if best is None else min(best, form)
    assert best is not None  # the identity relabelling is always valid
    return best


class NasBench301(SearchSpace):
    """NAS-Bench-301 / DARTS: two cells of 4 nodes, (prod_k k(k-1)*49)^2 ~ 2.8e20 encodings.

    Per cell, node k in 2..5 takes an ordered pair of distinct inputs among its k predecessors
    and two of 7 ops: 2*6*12*20 * 49^4 = 16,602,626,880 encodings, squared for the two cells.
    Up to the order of each node's two inputs that is 16x fewer per cell (~1.08e18 in all, the
    "10^18" of the DARTS paper).
    """

    name = "nasbench301"
    aliases = ("nb301", "darts", "nas-bench-301")
    description = "NAS-Bench-301 / DARTS cell space (normal + reduction cell)"
    tasks = {"cifar10": Task("cifar10", 10, (3, 32, 32), "cifar10")}  # noqa: RUF012

    @property
    def size(self) -> int:
        return _cell_encodings() ** 2

    def validate(self, arch: Arch) -> Arch:
        """Check shape, ranges, inputs below their node and distinct inputs per node.

        DARTS picks two different predecessors per node (NB301's ConfigSpace offers only
        distinct pairs, NASLib samples without replacement, and NASLib's graph would silently
        merge two edges from one input), so a node reading one input twice is refused.
        """
        arch = to_tuple(arch)
        if not isinstance(arch, tuple) or len(arch) != len(CELL_NAMES):
            raise InvalidArchitecture(
                f"NAS-Bench-301 arch must be (normal, reduce), two cells of 8 "
                f"(input_node, op) pairs, got {arch!r}"
            )
        for name, cell in zip(CELL_NAMES, arch, strict=True):
            if not isinstance(cell, tuple) or len(cell) != 2 * NUM_NODES:
                raise InvalidArchitecture(
                    f"NAS-Bench-301 {name} cell must be 8 (input_node, op) pairs, got {cell!r}"
                )
            for j, pair in enumerate(cell):
                node = j // 2 + 2
                if (
                    not isinstance(pair, tuple)
                    or len(pair) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
                ):
                    raise InvalidArchitecture(
                        f"NAS-Bench-301 {name} cell pair {j} must be (input_node, op), got {pair!r}"
                    )
                if not 0 <= pair[0] < node:
                    raise InvalidArchitecture(
                        f"NAS-Bench-301 {name} cell pair {j} feeds node {node}: its input node "
                        f"must be in 0..{node - 1}, got {pair[0]}"
                    )
                if not 0 <= pair[1] < len(OPS):
                    raise InvalidArchitecture(
                        f"NAS-Bench-301 {name} cell pair {j}: op index must be in "
                        f"0..{len(OPS) - 1} ({', '.join(OPS)}), got {pair[1]}"
                    )
            for k in range(NUM_NODES):
                if cell[2 * k][0] == cell[2 * k + 1][0]:
                    raise InvalidArchitecture(
                        f"NAS-Bench-301 {name} cell node {k + 2} reads node {cell[2 * k][0]} "
                        "twice; its two inputs must be distinct"
                    )
        return arch

    def encode(self, arch: Arch) -> str:
        """NASLib's key: ``str`` of a list of two lists of pairs, ``'[[(0, 4), ...], [...]]'``."""
        return str([list(cell) for cell in self.validate(arch)])

    def sample(self, rng: np.random.Generator | int) -> Arch:
        """NASLib's sampler: per node, 4 ops uniformly, and 2 distinct inputs per cell."""
        gen = as_generator(rng)
        cells: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
        for k in range(NUM_NODES):
            ops = gen.integers(0, len(OPS), size=4)
            for c, cell in enumerate(cells):
                inputs = gen.choice(k + 2, size=2, replace=False)
                cell.extend((int(inputs[i]), int(ops[2 * c + i])) for i in range(2))
        return (tuple(cells[0]), tuple(cells[1]))

    def genotype(self, arch: Arch | str) -> dict[str, list]:
        """The DARTS Genotype fields: ``normal``/``reduce`` as (op name, input node) lists."""
        arch = self.parse(arch)
        fields: dict[str, list] = {}
        for name, cell in zip(CELL_NAMES, arch, strict=True):
            fields[name] = [(OPS[op], node) for node, op in cell]
            fields[f"{name}_concat"] = list(CONCAT)
        return fields

    def to_string(self, arch: Arch) -> str:
        fields = self.genotype(arch)
        return "Genotype(" + ", ".join(f"{f}={fields[f]!r}" for f in _GENOTYPE_FIELDS) + ")"

    def from_string(self, text: str) -> Arch:
        """Parse a DARTS ``Genotype(...)`` string (keyword or positional fields).

        The concat fields may be lists or ``range(2, 6)`` (as DARTS logs print them) and must
        be nodes 2..5.
        """
        bad = InvalidArchitecture(
            f"not a DARTS genotype string: {text!r} (expected 'Genotype(normal=[(op, node), ...], "
            "normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])')"
        )
        if not _GENOTYPE_RE.match(text):
            raise bad
        try:
            call = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            raise bad from None
        if not isinstance(call, ast.Call) or len(call.args) + len(call.keywords) != 4:
            raise bad
        nodes = dict(zip(_GENOTYPE_FIELDS, call.args, strict=False))
        nodes.update({kw.arg: kw.value for kw in call.keywords if kw.arg})
        if set(nodes) != set(_GENOTYPE_FIELDS):
            raise bad
        fields = {name: _literal(node, bad) for name, node in nodes.items()}
        cells = []
        for name in CELL_NAMES:
            if tuple(fields[f"{name}_concat"]) != CONCAT:
                raise InvalidArchitecture(
                    f"NAS-Bench-301 cells concatenate nodes {list(CONCAT)}; "
                    f"{name}_concat is {fields[f'{name}_concat']!r}"
                )
            try:
                cells.append(tuple((node, OPS.index(op)) for op, node in fields[name]))
            except (TypeError, ValueError):
                raise InvalidArchitecture(
                    f"NAS-Bench-301 {name} cell must be (op, input_node) pairs with ops "
                    f"{', '.join(OPS)}; got {fields[name]!r}"
                ) from None
        return self.validate(tuple(cells))

    def canonical_key(self, arch: Arch) -> str:
        """Equal for archs that are the same network up to a permutation of its weights.

        Per cell: (1) a node sums its two inputs, so their order is irrelevant; (2) relabelling
        the intermediate nodes 2..5 in another topological order only permutes the channel
        blocks of the cell's concatenated output, and every consumer of that output (the next
        cells' ReLU + 1x1 conv or FactorizedReduce preprocessing, and GAP + linear) is
        equivariant to it: the same network with permuted input-channel weights, identically
        distributed under PyTorch's i.i.d. initialisation. Nothing else is merged.
        """
        arch = self.parse(arch)
        return ";".join(
            f"{name}:{_canonical_cell(cell)}" for name, cell in zip(CELL_NAMES, arch, strict=True)
        )

    def _build(self, arch: Arch, task: Task, flavor: str) -> nn.Module:
        """``naslib`` adds the auxiliary head the competition evaluator's ``prepare_evaluation``
        attached (NAS-Bench-Suite-Zero's evaluator did not call it)."""
        return DartsNetwork(arch[0], arch[1], task.num_classes, auxiliary=flavor == "naslib")

    def describe(self, arch: Arch) -> str:
        arch = self.parse(arch)
        lines = ["NAS-Bench-301 / DARTS arch " + self.encode(arch)]
        for name, cell in zip(CELL_NAMES, arch, strict=True):
            lines.append(f"  {name} cell (node0 = cell k-2, node1 = cell k-1):")
            for k in range(NUM_NODES):
                terms = [f"{OPS[op]}(node{node})" for node, op in cell[2 * k : 2 * k + 2]]
                lines.append(f"    node{k + 2} = " + " + ".join(terms))
            lines.append("    output = concat(node2, node3, node4, node5)")
        lines.append(
            "  macro: stem conv3x3(96) | 2 normal @32 | reduce @64 | 2 normal @64 | "
            "reduce @128 | 2 normal @128 | GAP | linear(512)"
        )
        return "\n".join(lines)


def _literal(node: ast.expr, error: InvalidArchitecture) -> list:
    """A genotype field: a Python literal, or ``range(a, b)`` (DARTS' concat), as a list."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and not node.keywords
    ):
        try:
            return list(range(*(ast.literal_eval(a) for a in node.args)))
        except (ValueError, TypeError):
            raise error from None
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise error from None
    if not isinstance(value, (list, tuple)):
        raise error
    return list(value)
