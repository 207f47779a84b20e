"""NAS-Bench-101 (Ying et al., ICML 2019): cells are DAGs of up to 7 vertices and 9 edges.

Arch: NASLib's key, a tuple of 56 ints: the 7x7 adjacency matrix flattened row-major (49), then
the 7 vertex ops as indices into ``OPS`` (vertex 0 is always ``input``, vertex 6 ``output``).
The matrix is the *unpruned* one that NASLib samples (as NAS-Bench-101's ``ModelSpec`` accepts
it): vertices that lie on no input->output path may be present with any op and are pruned before
hashing and building, exactly as ``ModelSpec._prune`` does. Many encodings therefore denote the
same cell; ``canonical_key`` is the benchmark's own graph hash, equal for all of them. The built
network follows the encoding's vertex order, which decides the vertices that get the remainder
channels, so isomorphic encodings can differ by a few parameters (<1%), as in NASLib's tables.
Cells with fewer than 7 vertices (the benchmark's pruned ``module_adjacency``) are padded to 7x7
the way NASLib's ``convert_to_cell`` does it: the output moves to vertex 6 and the free slots
become isolated ``conv3x3-bn-relu`` vertices (see ``spec_to_arch``).

The network is NAS-Bench-101's (TF ``model_builder`` and its ``nasbench_pytorch`` port): a 3x3
conv-BN-ReLU stem of 128 channels, 3 stacks of 3 cells with a 2x2 max pool (stride 2) and channel
doubling between stacks, global average pooling and a linear classifier.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import torch
from torch import nn

from zcproxies.errors import InvalidArchitecture
from zcproxies.spaces.base import Arch, SearchSpace, Task, as_generator, to_tuple

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
OPS = (INPUT, OUTPUT, MAXPOOL3X3, CONV1X1, CONV3X3)  # NASLib's op indices in the arch key
# NAS-Bench-101's config['available_ops']: the label order its graph hash uses.
HASH_OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
CELL_OPS = tuple(OPS.index(op) for op in HASH_OPS)  # op indices allowed at interior vertices
NUM_VERTICES = 7
MAX_EDGES = 9
KEY_LENGTH = NUM_VERTICES * NUM_VERTICES + NUM_VERTICES
# Number of distinct cells (isomorphism classes of pruned specs) in NAS-Bench-101's dataset.
NUM_UNIQUE_CELLS = 423_624

STEM_CHANNELS = 128
NUM_STACKS = 3
CELLS_PER_STACK = 3
BN_EPS = 1e-5
# TF's batch_normalization(momentum=0.997) keeps 0.997 of the running statistics per step; in
# PyTorch's convention (weight of the new batch) that is 1 - 0.997. nasbench_pytorch (the model
# NASLib builds, the "naslib" flavor) uses PyTorch's default 0.1 instead; this only changes the
# running statistics (eval mode).
BN_MOMENTUM = {"benchmark": 0.003, "naslib": 0.1}

Matrix = np.ndarray  # square 0/1 int matrix, upper triangular


def arch_to_spec(arch: Arch) -> tuple[Matrix, list[str]]:
    """The (7x7 matrix, op names) ``ModelSpec`` input of a 56-int key (no validation)."""
    matrix = np.array(arch[: NUM_VERTICES * NUM_VERTICES], dtype=np.int64)
    return matrix.reshape(NUM_VERTICES, NUM_VERTICES), [OPS[i] for i in arch[-NUM_VERTICES:]]


def spec_to_arch(matrix: Matrix | list[list[int]], ops: list[str] | tuple[str, ...]) -> Arch:
    """The 56-int key of an n x n spec (2 <= n <= 7), padded to 7 vertices like NASLib does.

    Padding (NASLib's ``convert_to_cell``): vertices 0..n-2 keep their rows, the output's column
    moves to column 6, and vertices n-1..5 become isolated ``conv3x3-bn-relu`` vertices.
    """
    mat = np.asarray(matrix)
    n = len(ops)
    if mat.shape != (n, n) or not 2 <= n <= NUM_VERTICES or mat.dtype.kind not in "iub":
        raise InvalidArchitecture(
            f"NAS-Bench-101 spec needs a square n x n integer matrix and n ops with 2 <= n <= "
            f"{NUM_VERTICES}; got a {'x'.join(map(str, mat.shape))} {mat.dtype} matrix and {n} ops"
        )
    if np.tril(mat).any():  # checked here: padding would drop the output's row
        raise InvalidArchitecture(
            f"NAS-Bench-101 adjacency matrix must be strictly upper triangular: {mat.tolist()}"
        )
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise InvalidArchitecture(
            f"unknown NAS-Bench-101 op(s) {unknown}; ops are: {', '.join(OPS)}"
        )
    full = np.zeros((NUM_VERTICES, NUM_VERTICES), dtype=np.int64)
    full[: n - 1, : n - 1] = mat[: n - 1, : n - 1]  # (values other than 0/1 fail validation)
    full[: n - 1, NUM_VERTICES - 1] = mat[: n - 1, n - 1]
    full_ops = [*ops[: n - 1], *[CONV3X3] * (NUM_VERTICES - n), ops[n - 1]]
    return (*(int(v) for v in full.flatten()), *(OPS.index(op) for op in full_ops))


def prune(matrix: Matrix, ops: list[str]) -> tuple[Matrix, list[str], list[int]] | None:
    """``ModelSpec._prune``: drop vertices on no input->output path; None if none is left.

    Returns the pruned matrix, its ops and the original indices of the kept vertices.
    """
    n = len(ops)
    from_input, to_output = {0}, {n - 1}
    for v in range(n):  # the matrix is upper triangular, so one sweep is a topological order
        if v in from_input:
            from_input.update(int(w) for w in np.flatnonzero(matrix[v]))
    for v in range(n - 1, -1, -1):
        if v in to_output:
            to_output.update(int(u) for u in np.flatnonzero(matrix[:, v]))
    kept = sorted(from_input & to_output)
    if len(kept) < 2:  # input and output are not connected
        return None
    return matrix[np.ix_(kept, kept)], [ops[v] for v in kept], kept


def hash_module(matrix: Matrix, labeling: list[int]) -> str:
    """NAS-Bench-101's ``graph_util.hash_module``: an isomorphism-invariant MD5 of a labelled DAG.

    Each vertex starts from the MD5 of (out-degree, in-degree, label); then, once per vertex,
    its hash becomes the MD5 of its sorted in-neighbour hashes, out-neighbour hashes and itself.
    """
    n = len(labeling)
    out_deg = [int(d) for d in matrix.sum(axis=1)]
    in_deg = [int(d) for d in matrix.sum(axis=0)]
    hashes = [
        hashlib.md5(str((out_deg[v], in_deg[v], labeling[v])).encode()).hexdigest()
        for v in range(n)
    ]
    for _ in range(n):
        hashes = [
            hashlib.md5(
                (
                    "".join(sorted(hashes[w] for w in range(n) if matrix[w, v]))
                    + "|"
                    + "".join(sorted(hashes[w] for w in range(n) if matrix[v, w]))
                    + "|"
                    + hashes[v]
                ).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(hashes)).encode()).hexdigest()


def compute_vertex_channels(c_in: int, c_out: int, matrix: Matrix) -> list[int]:
    """Channels of every vertex of a pruned cell (``model_builder.compute_vertex_channels``).

    The output's channels are split evenly over the vertices feeding it (the remainder going
    one by one to the first of them); other interior vertices take the max over their successors.
    """
    n = matrix.shape[0]
    channels = [0] * n
    channels[0], channels[n - 1] = c_in, c_out
    if n == 2:
        return channels
    feeding = [v for v in range(1, n - 1) if matrix[v, n - 1]]
    share, extra = divmod(c_out, len(feeding))
    for i, v in enumerate(feeding):
        channels[v] = share + (1 if i < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v, w])
    return channels


class ConvBnRelu(nn.Sequential):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d -> ReLU, NAS-Bench-101's conv_bn_relu."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, momentum: float) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=momentum),
            nn.ReLU(inplace=False),
        )


def make_op(name: str, channels: int, momentum: float) -> nn.Module:
    """The operation of an interior vertex on ``channels`` channels (shape-preserving)."""
    if name == CONV3X3:
        return ConvBnRelu(channels, channels, 3, momentum)
    if name == CONV1X1:
        return ConvBnRelu(channels, channels, 1, momentum)
    if name == MAXPOOL3X3:
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise InvalidArchitecture(f"{name!r} is not an interior NAS-Bench-101 op")


class Cell(nn.Module):
    """One NAS-Bench-101 module (``model_builder.build_module``) over a pruned spec.

    An interior vertex sums its predecessors (truncated to its channel count) and a 1x1
    projection of the cell input if input->vertex is an edge, then applies its op. The output
    concatenates the vertices feeding it and adds a projection of the input if input->output
    is an edge (the projection alone when the input is its only predecessor).
    """

    def __init__(
        self, matrix: Matrix, ops: list[str], c_in: int, c_out: int, momentum: float
    ) -> None:
        super().__init__()
        self.matrix = tuple(tuple(int(e) for e in row) for row in matrix)
        self.channels = compute_vertex_channels(c_in, c_out, matrix)
        out = len(ops) - 1
        self.vertex_ops = nn.ModuleList(
            make_op(ops[t], self.channels[t], momentum) for t in range(1, out)
        )
        self.projections = nn.ModuleDict(
            {
                str(t): ConvBnRelu(c_in, self.channels[t], 1, momentum)
                for t in range(1, out + 1)
                if self.matrix[0][t]
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = len(self.channels) - 1
        tensors = [x]
        for t in range(1, out):
            fan_in = [tensors[s][:, : self.channels[t]] for s in range(1, t) if self.matrix[s][t]]
            if self.matrix[0][t]:
                fan_in.append(self.projections[str(t)](x))
            total = fan_in[0]
            for term in fan_in[1:]:
                total = total + term
            tensors.append(self.vertex_ops[t - 1](total))
        concat = [tensors[t] for t in range(1, out) if self.matrix[t][out]]
        if not concat:
            return self.projections[str(out)](x)
        result = torch.cat(concat, 1) if len(concat) > 1 else concat[0]
        if self.matrix[0][out]:
            result = result + self.projections[str(out)](x)
        return result


class GlobalAvgPool(nn.Module):
    """Spatial mean to (N, C, 1, 1), as TF's ``reduce_mean`` and nasbench_pytorch's ``torch.mean``.

    Not ``nn.AdaptiveAvgPool2d``: the reference FLOP counts (NASLib's, per-module hooks) see no
    pooling module here, and FLOP counters must not either.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class NasBench101Network(nn.Module):
    """NAS-Bench-101's network: stem, 3 stacks of 3 cells with max-pool downsampling, GAP, linear.

    Weights are initialised as in nasbench_pytorch (the PyTorch model NASLib builds): convs
    N(0, 2 / (k*k*C_out)), BN weight 1 and bias 0, linear N(0, 0.01) with a zero bias.
    """

    def __init__(
        self,
        matrix: Matrix,
        ops: list[str],
        num_classes: int,
        in_channels: int = 3,
        momentum: float = BN_MOMENTUM["benchmark"],
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBnRelu(in_channels, STEM_CHANNELS, 3, momentum)]
        c_in = c_out = STEM_CHANNELS
        for stack in range(NUM_STACKS):
            if stack > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                c_out *= 2
            for _ in range(CELLS_PER_STACK):
                layers.append(Cell(matrix, ops, c_in, c_out, momentum))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.global_pool = GlobalAvgPool()
        self.classifier = nn.Linear(c_out, num_classes)
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.global_pool(self.layers(x)), 1))


class NasBench101(SearchSpace):
    """NAS-Bench-101: ``size`` is 423,624, the benchmark's number of unique (hash-distinct) cells.

    Far more 56-int encodings are valid (unpruned matrices, ops of pruned vertices), so
    ``enumerate`` is not offered: listing the unique cells means hashing millions of labelled
    graphs, as NAS-Bench-101's ``generate_graphs.py`` does, which is too slow to be useful here.
    """

    name = "nasbench101"
    aliases = ("nb101", "nas-bench-101")
    description = "NAS-Bench-101 cell space (7 vertices, 9 edges, 3 ops)"
    tasks = {"cifar10": Task("cifar10", 10, (3, 32, 32), "cifar10")}  # noqa: RUF012

    @property
    def size(self) -> int:
        return NUM_UNIQUE_CELLS

    # ---- membership -------------------------------------------------------------------
    def _check_form(self, arch: Arch) -> tuple[Matrix, list[str]]:
        """The spec of ``arch`` if it is a well-formed key (connectivity not checked)."""
        if (
            not isinstance(arch, tuple)
            or len(arch) != KEY_LENGTH
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in arch)
        ):
            raise InvalidArchitecture(
                f"NAS-Bench-101 arch must be a tuple of {KEY_LENGTH} ints (7x7 adjacency "
                f"matrix row-major, then 7 op indices into {list(OPS)}), got {arch!r}"
            )
        op_ids = arch[-NUM_VERTICES:]
        if op_ids[0] != OPS.index(INPUT) or op_ids[-1] != OPS.index(OUTPUT):
            raise InvalidArchitecture(
                f"NAS-Bench-101 vertex 0 must be input ({OPS.index(INPUT)}) and vertex 6 "
                f"output ({OPS.index(OUTPUT)}); got op indices {op_ids}"
            )
        if any(i not in CELL_OPS for i in op_ids[1:-1]):
            raise InvalidArchitecture(
                f"NAS-Bench-101 interior vertices take op indices {CELL_OPS} "
                f"({', '.join(HASH_OPS)}); got {op_ids}"
            )
        if any(e not in (0, 1) for e in arch[: NUM_VERTICES * NUM_VERTICES]):
            raise InvalidArchitecture(f"NAS-Bench-101 adjacency entries must be 0 or 1: {arch!r}")
        matrix, ops = arch_to_spec(arch)
        if np.tril(matrix).any():
            raise InvalidArchitecture(
                "NAS-Bench-101 adjacency matrix must be strictly upper triangular (edges go "
                f"from a lower to a higher vertex), got rows {matrix.tolist()}"
            )
        return matrix, ops

    def validate(self, arch: Arch) -> Arch:
        matrix, ops = self._check_form(arch)
        pruned = prune(matrix, ops)
        if pruned is None:
            raise InvalidArchitecture(
                "NAS-Bench-101 cell has no path from input to output (a disconnected spec, "
                f"invalid in the benchmark): {matrix.tolist()}"
            )
        edges = int(pruned[0].sum())
        if edges > MAX_EDGES:
            raise InvalidArchitecture(
                f"NAS-Bench-101 cells have at most {MAX_EDGES} edges after pruning, this one has "
                f"{edges}: {pruned[0].tolist()}"
            )
        return arch

    def is_disconnected(self, arch: Arch) -> bool:
        """True when no path joins input to output; such specs are invalid in NAS-Bench-101.

        Accepts any well-formed key (``validate`` rejects disconnected ones, so for members of
        the space this is always False).
        """
        matrix, ops = self._check_form(to_tuple(arch))
        return prune(matrix, ops) is None

    def sample(self, rng: np.random.Generator | int) -> Arch:
        """NASLib's/NAS-Bench-101's ``random_spec``: uniform over valid 7x7 encodings.

        Draws an upper-triangular 0/1 matrix and 5 interior ops until the spec is valid; this is
        uniform over encodings, not over the 423,624 unique cells.
        """
        gen = as_generator(rng)
        while True:
            matrix = np.triu(gen.integers(0, 2, size=(NUM_VERTICES, NUM_VERTICES)), 1)
            interior = gen.choice(CELL_OPS, size=NUM_VERTICES - 2)
            arch = (
                *(int(e) for e in matrix.flatten()),
                OPS.index(INPUT),
                *(int(i) for i in interior),
                OPS.index(OUTPUT),
            )
            try:
                return self.validate(arch)
            except InvalidArchitecture:
                continue

    # ---- encodings --------------------------------------------------------------------
    def spec(self, arch: Arch) -> tuple[Matrix, list[str]]:
        """The unpruned (7x7 matrix, op names) of ``arch``, as passed to ``ModelSpec``."""
        return arch_to_spec(self.parse(arch))

    def pruned_spec(self, arch: Arch) -> tuple[Matrix, list[str]]:
        """The pruned (matrix, ops): what the benchmark stores as module_adjacency/operations
        (up to vertex order, which the benchmark picks from its own graph enumeration)."""
        pruned = prune(*self.spec(arch))
        assert pruned is not None  # validated
        return pruned[0], pruned[1]

    def to_string(self, arch: Arch) -> str:
        """Compact JSON ``{"matrix": [[...]], "ops": [...]}`` of the unpruned 7x7 spec."""
        matrix, ops = self.spec(arch)
        return json.dumps({"matrix": matrix.tolist(), "ops": ops}, separators=(",", ":"))

    def from_string(self, text: str) -> Arch:
        """Parse ``{"matrix", "ops"}`` (or ``{"module_adjacency", "module_operations"}``) JSON;
        n x n specs with n < 7 are padded to 7 vertices (see ``spec_to_arch``)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArchitecture(f"not a NAS-Bench-101 JSON spec: {text!r} ({exc})") from None
        if not isinstance(data, dict):
            data = {}
        matrix = data.get("matrix", data.get("module_adjacency"))
        ops = data.get("ops", data.get("module_operations"))
        if not isinstance(matrix, list) or not isinstance(ops, list):
            raise InvalidArchitecture(
                'NAS-Bench-101 string must be JSON {"matrix": [[0, 1, ...], ...], "ops": '
                f'["input", ..., "output"]}} (or module_adjacency/module_operations), got {text!r}'
            )
        try:
            arch = spec_to_arch(matrix, ops)
        except InvalidArchitecture:
            raise
        except (ValueError, TypeError) as exc:
            raise InvalidArchitecture(f"bad NAS-Bench-101 spec {text!r}: {exc}") from None
        return self.validate(arch)

    def canonical_key(self, arch: Arch) -> str:
        """NAS-Bench-101's module hash (``ModelSpec.hash_spec``) of the pruned spec.

        This is the key of the benchmark's dataset: isomorphic cells share it.
        """
        matrix, ops = self.pruned_spec(arch)
        labeling = [-1, *(HASH_OPS.index(op) for op in ops[1:-1]), -2]
        return hash_module(matrix, labeling)

    # ---- models -----------------------------------------------------------------------
    def _build(self, arch: Arch, task: Task, flavor: str) -> nn.Module:
        """``naslib``: nasbench_pytorch's network (NASLib's Develop branch; the competition
        branch has no NAS-Bench-101), which differs only by BatchNorm momentum 0.1."""
        matrix, ops = self.pruned_spec(arch)
        return NasBench101Network(
            matrix, ops, task.num_classes, task.input_shape[0], BN_MOMENTUM[flavor]
        )

    def describe(self, arch: Arch) -> str:
        matrix, ops = self.spec(arch)
        pruned = prune(matrix, ops)
        assert pruned is not None  # validated by spec()
        pmatrix, _, kept = pruned
        channels = dict(
            zip(kept, compute_vertex_channels(STEM_CHANNELS, STEM_CHANNELS, pmatrix), strict=True)
        )
        dropped = [v for v in range(NUM_VERTICES) if v not in kept]
        lines = [
            f"NAS-Bench-101 cell: {NUM_VERTICES} vertices, {int(matrix.sum())} edges as encoded; "
            f"{len(kept)} vertices, {int(pmatrix.sum())} edges after pruning"
        ]
        for v in range(NUM_VERTICES):
            preds = [str(u) for u in range(v) if matrix[u, v]]
            state = f"{channels[v]} ch in cell 1" if v in channels else "pruned"
            lines.append(f"  v{v} {ops[v]:<16} <- [{', '.join(preds)}]  ({state})")
        lines.append(
            "  pruned vertices (on no input->output path): "
            + (", ".join(map(str, dropped)) if dropped else "none")
        )
        lines.append(f"  module hash: {self.canonical_key(arch)}")
        lines.append(
            "  macro: stem conv3x3-bn-relu(128) | 3 cells @128 | maxpool2 | 3 cells @256 "
            "| maxpool2 | 3 cells @512 | GAP | linear"
        )
        return "\n".join(lines)
