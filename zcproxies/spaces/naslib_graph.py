"""NASLib's ``Graph`` API over a built zcp network: what a 2022 competition ``query`` received.

NASLib's search spaces are ``torch.nn.Module`` and ``networkx.DiGraph`` at once; its evaluator
built one per architecture (``set_spec``, ``prepare_evaluation``, ``parse``) and passed it to
``ZeroCostPredictor.query``. ``naslib_graph(space, arch, task, network)`` wraps a network built
by ``zcproxies.build`` in the class NASLib used for that space, with the methods and attributes a
submission can use without training: ``get_hash``, ``get_op_indices`` (NB201, TransNAS),
``get_spec`` (NB101), ``get_compact`` (NB301), ``set_spec`` (of the architecture it holds),
``num_classes``, ``get_loss_fn``, ``get_type``, ``space_name``, ``parse`` and
``prepare_evaluation`` (no-ops: the network is built), ``clone``, ``modules_str``, and the
networkx view (``nodes``, ``edges[u, v]["op"]``, cells as graphs) NASLib's tutorial reads.
Return types follow NASLib's code (lists, tuples, dicts as NASLib returned them); methods a space
did not have in NASLib are absent here too. Differences, listed in docs/competition.md: the
network is the graph's only registered child (``graph.network``), so parameter names differ from
NASLib's ``makrograph-edge(1,2)...``; ops on edges are zcp modules (no ``get_op_name``).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch import nn

from zcproxies.errors import InvalidArchitecture
from zcproxies.spaces.base import Arch, SearchSpace, Task, to_tuple

# NASLib's search-space type strings (``get_type``): what its evaluator passed to
# ``Predictor.set_ss_type``. The competition branch used "transbench101" for both TransNAS spaces.
SS_TYPES = {
    "nasbench101": "nasbench101",
    "nasbench201": "nasbench201",
    "nasbench201_mini": "nasbench201",
    "nasbench301": "nasbench301",
    "transbench101_micro": "transbench101",
    "transbench101_macro": "transbench101",
}


class EdgeData(dict):
    """NASLib's edge attributes: ``edges[u, v]["op"]`` and ``edges[u, v].op`` alike."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def has(self, key: str) -> bool:
        """Whether the edge holds ``key``."""
        return key in self

    def set(self, key: str, value: Any, shared: bool = False) -> None:
        """Set an attribute (NASLib's shared/private distinction does not apply here)."""
        self[key] = value

    def is_final(self) -> bool:
        """NASLib marks fixed edges (e.g. a DARTS cell's output edges) as final."""
        return bool(self.get("final", False))


class Graph(nn.Module, nx.DiGraph):
    """NASLib's ``Graph``: a module and a DiGraph; ``naslib.search_spaces.core.graph.Graph``.

    Built directly it is an empty graph, as in NASLib. The search-space subclasses below hold a
    zcp network as ``network`` and forward to it.
    """

    OPTIMIZER_SCOPE: Any = "all"
    QUERYABLE = False

    def __init__(self, name: str | None = None, scope: str | None = None) -> None:
        nx.DiGraph.__init__(self)
        nn.Module.__init__(self)
        self.edge_attr_dict_factory = EdgeData
        self.node_attr_dict_factory = lambda: {"input": {}, "comb_op": sum}
        self.name = name
        self.scope = scope
        self.input_node_idxs = None
        self.is_parsed = False
        self._id = random.Random(id(self)).random()  # NASLib's display id (not a model RNG)

    def __repr__(self) -> str:
        return (
            f"Graph {self.name}-{self._id:.07f}, scope {self.scope}, {self.number_of_nodes()} nodes"
        )

    def modules_str(self) -> str:
        """The PyTorch modules, as NASLib prints them once parsed."""
        return f"Graph {self.name}:\n {nn.Module.__repr__(self)}\n==========\n"

    def parse(self) -> None:
        """No-op: the network is already a PyTorch module (NASLib built it here)."""
        self.is_parsed = True

    def prepare_evaluation(self) -> None:
        """No-op: the flavor chosen at build time already is NASLib's evaluation network."""

    def prepare_discretization(self) -> None:
        """No-op, as in NASLib's base class."""

    def clone(self) -> Graph:
        """A deep copy (NASLib's ``clone``)."""
        return copy.deepcopy(self)

    def num_input_nodes(self) -> int:
        """Nodes without an incoming edge."""
        return sum(self.in_degree(n) == 0 for n in self.nodes)

    def set_scope(self, scope: str, recursively: bool = True) -> Graph:
        """Set the scope (builder style, as NASLib)."""
        self.scope = scope
        return self

    def _chain(self, ops: list[nn.Module | Graph]) -> None:
        """Nodes 1..len(ops)+1 joined by edges (i, i+1) holding ``ops`` in order."""
        self.add_nodes_from(range(1, len(ops) + 2))
        for i, op in enumerate(ops, start=1):
            self.add_edge(i, i + 1, op=op)


class _SearchSpaceGraph(Graph):
    """A built architecture of a space: the network, its encoding and NASLib's methods."""

    space_type = ""

    def __init__(
        self, network: nn.Module, arch: Arch, task: Task, space: SearchSpace, loss_fn: Callable
    ) -> None:
        super().__init__(name="makrograph")
        self.network = network
        self._space = space
        self.num_classes = task.num_classes
        self.dataset = task.name
        self.space_name = self.space_type
        self._arch = arch
        self._loss_fn = loss_fn
        self._layout(network, arch)

    def _layout(self, network: nn.Module, arch: Arch) -> None:
        """The space's networkx view and encodings (NASLib's attributes) of ``network``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        """The network's forward (NASLib's ``forward(x, *args)`` ignores extra arguments)."""
        return self.network(x)

    def get_type(self) -> str:
        """NASLib's search-space type string (what its evaluator passed to ``set_ss_type``)."""
        return self.space_type

    def get_loss_fn(self) -> Callable:
        """The task's training loss, as NASLib's ``get_loss_fn``."""
        return self._loss_fn

    def query(self, *args: Any, dataset_api: Any = None, **kwargs: Any) -> float:
        """NASLib read accuracies from ``dataset_api``; submissions never get one."""
        raise NotImplementedError(
            f"Must pass in dataset_api to query {self.space_type} (the evaluator gives none)"
        )

    def sample_random_architecture(self, dataset_api: Any = None, **kwargs: Any) -> None:
        """A built graph holds one architecture; NASLib could not resample a set graph either."""
        raise RuntimeError(
            "this graph already holds an architecture; NASLib samples only on a fresh search "
            "space (clone the search space, not a built graph)"
        )

    def _arch_of(self, spec: Any) -> Arch:
        """The zcp arch of a NASLib spec (lists, tuples or arrays of the space's key)."""
        return self._space.parse(to_tuple(spec))

    def _check_same(self, spec: Any) -> None:
        """``set_spec`` on a built graph: accepted for its own architecture only."""
        try:
            same = self._arch_of(spec) == self._arch
        except (InvalidArchitecture, TypeError, ValueError):
            same = False
        if not same:
            raise RuntimeError(
                f"this graph is built for {self._arch!r}; it cannot be set to {spec!r} (NASLib "
                "sets a spec once, on a fresh clone of the search space)"
            )


class CellGraph(Graph):
    """A cell as NASLib's graph: nodes, and the zcp cell's ops on its edges."""

    def __init__(
        self, cell: nn.Module, name: str, scope: str, edges: Iterable[tuple[int, int, Any]]
    ) -> None:
        super().__init__(name=name, scope=scope)
        self.cell = cell
        for u, v, op in edges:
            self.add_edge(u, v, op=op)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The zcp cell's forward."""
        return self.cell(*inputs)


# ---- NAS-Bench-201 ------------------------------------------------------------------------------
class NasBench201SearchSpace(_SearchSpaceGraph):
    """NASLib's NB201 graph: makrograph 1..20 (stem, 5 cells, resblock, ... post-processing),
    cells on edges, 4-node cells with the 6 ops on edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4)."""

    space_type = "nasbench201"
    OPTIMIZER_SCOPE = ("stage_1", "stage_2", "stage_3")
    QUERYABLE = True

    def _layout(self, network: nn.Module, arch: Arch) -> None:
        from zcproxies.spaces.nb201 import EDGES

        self.op_indices = list(arch)
        self.max_epoch = 199
        blocks = list(network.cells)
        per_stage = (len(blocks) - 2) // 3
        stages = [s for s in self.OPTIMIZER_SCOPE for _ in range(per_stage)]
        ops: list[Any] = [network.stem]
        self.channels = []
        for block in blocks:
            if hasattr(block, "op_names"):  # a cell
                scope = stages.pop(0)
                ops.append(
                    CellGraph(
                        block,
                        "cell",
                        scope,
                        ((src, dst, block.edges[e]) for e, (src, dst) in enumerate(EDGES)),
                    )
                )
            else:
                ops.append(block)
        post = nn.Sequential(network.lastact, network.global_pool, nn.Flatten(), network.classifier)
        ops.append(post)
        self._chain(ops)
        self.channels = [int(network.stem[0].out_channels * k) for k in (1, 2, 4)]

    def get_op_indices(self) -> list[int]:
        """The 6 op indices (a list, as NASLib's ``convert_naslib_to_op_indices``)."""
        return self.op_indices

    def get_hash(self) -> tuple[int, ...]:
        """``tuple(op_indices)``, NASLib's NB201 hash."""
        return tuple(self.get_op_indices())

    def set_op_indices(self, op_indices: Iterable[int]) -> None:
        """Accepted when it is this graph's architecture (see ``_check_same``)."""
        self._check_same(op_indices)

    def set_spec(self, op_indices: Iterable[int], dataset_api: Any = None) -> None:
        """NASLib's ``set_spec``: ``set_op_indices``."""
        self.set_op_indices(op_indices)

    def get_arch_iterator(self, dataset_api: Any = None) -> Iterable[tuple[int, ...]]:
        """All 15,625 op-index tuples."""
        import itertools

        return itertools.product(range(5), repeat=6)


# ---- NAS-Bench-301 ------------------------------------------------------------------------------
class NasBench301SearchSpace(_SearchSpaceGraph):
    """NASLib's DARTS graph: makrograph nodes 1..13, the 8 cells as node subgraphs (4..11), the
    cells' nodes 1..7 (1, 2 inputs, 3..6 intermediate, 7 output) with the chosen ops on edges."""

    space_type = "nasbench301"
    OPTIMIZER_SCOPE = ("n_stage_1", "n_stage_2", "n_stage_3", "r_stage_1", "r_stage_2")
    QUERYABLE = True

    def _layout(self, network: nn.Module, arch: Arch) -> None:
        self.compact = tuple(tuple(tuple(pair) for pair in cell) for cell in arch)
        self.channels = [32, 64, 128]
        self.max_epoch = 100
        self.auxiliary_output = getattr(network, "auxiliary", None) is not None
        self.add_node(1)
        self.add_node(2)
        self.add_node(3)
        stage = {"normal": 1, "reduce": 0}
        for i, cell in enumerate(network.cells):
            kind = "reduction_cell" if cell.reduction else "normal_cell"
            key = "reduce" if cell.reduction else "normal"
            stage[key] += 1
            scope = f"{'r' if cell.reduction else 'n'}_stage_{(stage[key] + 1) // 2}"
            edges = [(node + 1, j // 2 + 3, cell.edges[j]) for j, node in enumerate(cell.inputs)]
            graph = CellGraph(cell, kind, scope, edges)
            for node in range(3, 7):
                graph.add_edge(node, 7, op=nn.Identity(), final=True)
            self.add_node(i + 4, subgraph=graph)
        self.add_nodes_from([12, 13])
        self.add_edge(1, 2, op=network.stem)
        self.add_edges_from([(i, i + 1) for i in range(2, 11)])
        self.add_edges_from([(i, i + 2) for i in range(4, 10)])
        self.add_edges_from([(2, 4), (2, 5)])
        self.add_edge(11, 12, op=network.auxiliary if self.auxiliary_output else nn.Identity())
        self.add_edge(
            11, 13, op=nn.Sequential(network.global_pool, nn.Flatten(), network.classifier)
        )

    def get_compact(self) -> tuple:
        """The compact encoding as NASLib's ``make_compact_immutable`` gives it."""
        return self.compact

    def get_hash(self) -> tuple:
        """``get_compact()``, NASLib's NB301 hash."""
        return self.get_compact()

    def set_compact(self, compact: Any) -> None:
        """Accepted when it is this graph's architecture."""
        self._check_same(compact)

    def set_spec(self, compact: Any, dataset_api: Any = None) -> None:
        """NASLib's ``set_spec``: ``set_compact``."""
        self.set_compact(compact)

    def auxiliary_logits(self) -> torch.Tensor | None:
        """The auxiliary head's logits of the last forward (None without the head)."""
        return self.network.aux_logits


# ---- NAS-Bench-101 ------------------------------------------------------------------------------
class NasBench101SearchSpace(_SearchSpaceGraph):
    """NASLib's NB101 graph (Develop branch: the competition branch had none): one edge (1, 2)
    holding the whole network, the spec as ``{"matrix", "ops"}``."""

    space_type = "nasbench101"
    QUERYABLE = True

    def _layout(self, network: nn.Module, arch: Arch) -> None:
        from zcproxies.spaces.nb101 import arch_to_spec

        matrix, ops = arch_to_spec(arch)
        self.spec = {"matrix": matrix, "ops": ops}
        self.add_edge(1, 2, op=network)

    def get_spec(self) -> dict[str, Any]:
        """``{"matrix": 7x7 int array, "ops": [names]}``, as NASLib's ``get_spec``."""
        return self.spec

    def get_hash(self) -> tuple[int, ...]:
        """The 56-int tuple: flattened matrix then op indices (``convert_spec_to_tuple``)."""
        return tuple(int(v) for v in self._arch)

    def set_spec(self, spec: Any, dataset_api: Any = None) -> None:
        """Accepted when it is this graph's architecture (a 56-tuple or a spec dict)."""
        self._check_same(spec)

    def _arch_of(self, spec: Any) -> Arch:
        """A 56-tuple, or a ``{"matrix", "ops"}`` dict (n x n, padded like NASLib)."""
        from zcproxies.spaces.nb101 import spec_to_arch

        if isinstance(spec, dict):
            return self._space.validate(spec_to_arch(np.asarray(spec["matrix"]), spec["ops"]))
        return super()._arch_of(spec)

    def forward_before_global_avg_pool(self, x: torch.Tensor) -> torch.Tensor:
        """The last cell's output (NASLib's NB101 hook on ``layers[-1]``)."""
        return self.network.layers(x)


# ---- TransNAS-Bench-101 -------------------------------------------------------------------------
class _TransBenchGraph(_SearchSpaceGraph):
    """NASLib's TransNAS graphs (Develop form: TNB's network on edge (1, 2)) and op indices."""

    space_type = "transbench101"
    QUERYABLE = True

    def _layout(self, network: nn.Module, arch: Arch) -> None:
        self.op_indices = self._op_indices(arch)
        self.max_epoch = 199
        self.add_edge(1, 2, op=network)

    @staticmethod
    def _op_indices(arch: Arch) -> Any:
        return list(arch)

    def get_op_indices(self) -> Any:
        """The op indices as set (TNB codes)."""
        return self.op_indices

    def get_hash(self) -> tuple[int, ...]:
        """``tuple(op_indices)``."""
        return tuple(int(v) for v in self.get_op_indices())

    def set_op_indices(self, op_indices: Any) -> None:
        """Accepted when it is this graph's architecture."""
        self._check_same(op_indices)

    def set_spec(self, op_indices: Any, dataset_api: Any = None) -> None:
        """NASLib's ``set_spec``: ``set_op_indices``."""
        self.set_op_indices(op_indices)


class TransBench101SearchSpaceMicro(_TransBenchGraph):
    """TransNAS-Bench-101 micro: 6 TNB op codes."""


class TransBench101SearchSpaceMacro(_TransBenchGraph):
    """TransNAS-Bench-101 macro: the module codes padded with zeros to 6 (a numpy array, as
    NASLib's sampler made them)."""

    @staticmethod
    def _op_indices(arch: Arch) -> Any:
        return np.array([*arch, *[0] * (6 - len(arch))])


GRAPHS: dict[str, type[_SearchSpaceGraph]] = {
    "nasbench101": NasBench101SearchSpace,
    "nasbench201": NasBench201SearchSpace,
    "nasbench201_mini": NasBench201SearchSpace,
    "nasbench301": NasBench301SearchSpace,
    "transbench101_micro": TransBench101SearchSpaceMicro,
    "transbench101_macro": TransBench101SearchSpaceMacro,
}


def naslib_graph(space: str, arch: Arch, task: Task, network: nn.Module) -> _SearchSpaceGraph:
    """``network`` (built by ``zcproxies.build`` for ``arch`` on ``task``) as NASLib's graph."""
    from zcproxies.proxies.losses import loss_for_task
    from zcproxies.spaces import get_space

    spec = get_space(space)
    return GRAPHS[spec.name](network, spec.parse(arch), task, spec, loss_for_task(spec, task))


__all__ = ["GRAPHS", "SS_TYPES", "EdgeData", "Graph", "naslib_graph"]
