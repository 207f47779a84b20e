"""Model flavors and NASLib's graph API over zcp networks (what a competition query receives).

Parameter counts of the ``naslib`` flavor were measured on NASLib's own graphs
(automl-conf-competition branch, ``set_spec`` + ``prepare_evaluation`` + ``parse``); the
optional ``test_naslib_reference.py`` re-measures them where NASLib is importable.
"""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zcproxies
from zcproxies.measure import count_params
from zcproxies.proxies.losses import soft_label_cross_entropy
from zcproxies.spaces import FLAVORS, get_space
from zcproxies.spaces.naslib_graph import Graph, naslib_graph

NB301_ARCH = (
    ((0, 4), (1, 5), (2, 1), (1, 3), (1, 0), (0, 4), (2, 5), (4, 0)),
    ((0, 0), (1, 3), (1, 5), (0, 2), (0, 2), (2, 1), (3, 1), (1, 4)),
)
# Measured with NASLib's competition branch (torch 2.13, CPU): parameters of the evaluated graph.
NASLIB_PARAMS = {
    ("nasbench201", (2, 2, 3, 4, 0, 0)): 587_386,
    ("nasbench301", NB301_ARCH): 1_423_796,
}
AUX_HEAD_PARAMS = 128 * 512 + 2 * 128 + 768 * 128 * 4 + 2 * 768 + 768 * 10 + 10  # 468,234


@pytest.mark.parametrize(("space", "arch"), list(NASLIB_PARAMS))
def test_naslib_flavor_has_naslibs_parameter_count(space: str, arch: tuple) -> None:
    naslib = count_params(zcproxies.build(space, arch, "cifar10", flavor="naslib"))
    benchmark = count_params(zcproxies.build(space, arch, "cifar10", flavor="benchmark"))
    assert naslib == NASLIB_PARAMS[(space, arch)]
    assert naslib - benchmark == (AUX_HEAD_PARAMS if space == "nasbench301" else 0)


def test_nb201_and_nb101_flavors_compute_the_same_function() -> None:
    """NB201: NASLib rebuilt the chosen ops with affine BN (update_batchnorms), so only its
    in-place last ReLU differs; NB101: only BN momentum (running statistics) differs."""
    x = torch.randn(4, 3, 32, 32)
    for space in ("nasbench201", "nasbench101"):
        arch = get_space(space).sample(3)
        bench = zcproxies.build(space, arch, "cifar10", seed=7)
        naslib = zcproxies.build(space, arch, "cifar10", seed=7, flavor="naslib")
        assert torch.equal(bench(x), naslib(x))
    nb101 = zcproxies.build("nasbench101", arch, flavor="naslib")
    assert {m.momentum for m in nb101.modules() if isinstance(m, nn.BatchNorm2d)} == {0.1}
    nb201 = zcproxies.build("nasbench201", (2, 2, 3, 4, 0, 0), "cifar10", flavor="naslib")
    bns = [m for m in nb201.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 51 and all(b.affine and b.track_running_stats for b in bns)


def test_nb301_naslib_flavor_runs_the_auxiliary_head_first() -> None:
    """The auxiliary head's in-place ReLU rectifies the features the classifier pools."""
    bench = zcproxies.build("nasbench301", NB301_ARCH, "cifar10", seed=1)
    naslib = zcproxies.build("nasbench301", NB301_ARCH, "cifar10", seed=1, flavor="naslib")
    missing = naslib.load_state_dict(bench.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("auxiliary.") for k in missing)
    x = torch.randn(2, 3, 32, 32)
    features: list[torch.Tensor] = []
    handle = bench.global_pool.register_forward_pre_hook(lambda m, i: features.append(i[0]))
    bench.eval(), naslib.eval()
    with torch.no_grad():
        bench(x)
        expected = bench.classifier(F.relu(features[0]).mean(dim=(2, 3)))
        torch.testing.assert_close(naslib(x), expected)
    handle.remove()
    assert naslib.aux_logits is not None and naslib.aux_logits.shape == (2, 10)


def test_unknown_flavor_is_refused() -> None:
    assert FLAVORS == ("benchmark", "naslib")
    with pytest.raises(ValueError, match="unknown model flavor 'nasbench'"):
        zcproxies.build("nb201", (0,) * 6, "cifar10", flavor="nasbench")


SPACES = [
    ("nasbench201", "cifar10", "nasbench201", "NasBench201SearchSpace"),
    ("nasbench201_mini", "digits", "nasbench201", "NasBench201SearchSpace"),
    ("nasbench301", "cifar10", "nasbench301", "NasBench301SearchSpace"),
    ("nasbench101", "cifar10", "nasbench101", "NasBench101SearchSpace"),
    ("transbench101_micro", "class_scene", "transbench101", "TransBench101SearchSpaceMicro"),
    ("transbench101_macro", "jigsaw", "transbench101", "TransBench101SearchSpaceMacro"),
]


def build_graph(space: str, task: str, seed: int = 1) -> tuple[Graph, nn.Module, object]:
    spec = get_space(space)
    arch = spec.sample(seed)
    network = spec.build(arch, task, seed=0, flavor="naslib")
    return naslib_graph(space, arch, spec.task(task), network), network, arch


@pytest.mark.parametrize(("space", "task", "ss_type", "cls"), SPACES)
def test_graph_api_per_space(space: str, task: str, ss_type: str, cls: str) -> None:
    graph, network, _ = build_graph(space, task)
    assert type(graph).__name__ == cls and isinstance(graph, nn.Module | nx.DiGraph)
    assert graph.get_type() == ss_type == graph.space_name
    assert graph.num_classes == get_space(space).task(task).num_classes
    assert list(graph.parameters()) == list(network.parameters())
    graph.parse()
    graph.prepare_evaluation()
    assert graph.is_parsed and "Graph makrograph" in graph.modules_str()
    assert repr(graph).startswith("Graph makrograph-") and graph.number_of_nodes() >= 2
    graph.set_spec(graph.get_hash())  # its own architecture: accepted
    with pytest.raises(RuntimeError, match="built for"):
        graph.set_spec(get_space(space).sample(99))
    clone = graph.clone()
    assert clone is not graph and clone.get_hash() == graph.get_hash()
    assert next(clone.parameters()) is not next(graph.parameters())
    if space.startswith("transbench"):
        return  # 256x256 Taskonomy networks: the forward is the network's (tested in transnas)
    x = torch.randn(2, *get_space(space).task(task).input_shape)
    assert torch.equal(graph(x, "ignored edge data"), network(x))


def test_hashes_and_specs_have_naslibs_types() -> None:
    nb201, _, arch = build_graph("nasbench201", "cifar10")
    assert isinstance(nb201.get_op_indices(), list) and nb201.get_hash() == tuple(arch)
    nb101, _, arch = build_graph("nasbench101", "cifar10")
    spec = nb101.get_spec()
    assert spec["matrix"].shape == (7, 7) and spec["ops"][0] == "input"
    assert nb101.get_hash() == arch and len(arch) == 56
    nb101.set_spec({"matrix": spec["matrix"].tolist(), "ops": spec["ops"]})
    assert not hasattr(nb101, "get_op_indices")  # NASLib's NB101 had none
    nb301, _, arch = build_graph("nasbench301", "cifar10")
    assert nb301.get_hash() == nb301.get_compact() == arch and isinstance(arch[0][0], tuple)
    assert not hasattr(nb301, "get_op_indices")
    macro, _, arch = build_graph("transbench101_macro", "jigsaw")
    assert isinstance(macro.get_op_indices(), np.ndarray) and len(macro.get_op_indices()) == 6
    assert macro.get_hash() == (*arch, *[0] * (6 - len(arch)))


def test_losses_are_the_tasks() -> None:
    assert build_graph("nasbench201", "cifar10")[0].get_loss_fn() is F.cross_entropy
    scene = build_graph("transbench101_micro", "class_scene")[0]
    assert scene.get_loss_fn() is soft_label_cross_entropy


def test_networkx_view_as_the_tutorial_reads_it() -> None:
    graph, network, _ = build_graph("nasbench201", "cifar10")
    assert list(graph.nodes()) == list(range(1, 21)) and len(graph.edges()) == 19
    assert graph.edges[1, 2]["op"] is network.stem
    cell = graph.edges[2, 3]["op"]
    assert isinstance(cell, Graph) and cell.name == "cell" and cell.scope == "stage_1"
    assert list(cell.nodes()) == [1, 2, 3, 4]
    assert sorted(cell.edges()) == [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
    assert cell.edges[1, 2].op is network.cells[0].edges[0]  # attribute access as in NASLib
    assert graph.edges[14, 15]["op"].scope == "stage_3"
    nb301, network, _ = build_graph("nasbench301", "cifar10")
    normal = nb301.nodes[4]["subgraph"]
    assert normal.name == "normal_cell" and normal.in_degree(7) == 4
    assert nb301.nodes[6]["subgraph"].name == "reduction_cell"
    assert nb301.edges[11, 12]["op"] is network.auxiliary


def test_a_deep_copy_keeps_the_network_and_the_view_apart() -> None:
    graph, network, _ = build_graph("nasbench201_mini", "digits")
    copied = copy.deepcopy(graph)
    with torch.no_grad():
        next(copied.parameters()).add_(1.0)
    assert not torch.equal(next(copied.parameters()), next(network.parameters()))
    assert copied.edges[2, 3]["op"].cell is copied.network.cells[0]
