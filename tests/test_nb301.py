"""NAS-Bench-301 / DARTS: encodings, genotype strings, canonical keys, exact NASLib models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zcproxies import InvalidArchitecture
from zcproxies.measure import count_flops, count_params
from zcproxies.spaces.nb301 import OPS, NasBench301

SPACE = NasBench301()

# DARTS (second order), genotypes.DARTS_V2 of the DARTS repository, printed as a namedtuple.
DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
DARTS_V2_ARCH = (
    ((0, 3), (1, 3), (0, 3), (1, 3), (1, 3), (0, 2), (0, 2), (2, 5)),
    ((0, 0), (1, 0), (2, 2), (1, 0), (0, 0), (2, 2), (2, 2), (1, 0)),
)
ALL_POOL = (((0, 0), (1, 0), (0, 0), (1, 0), (0, 0), (1, 0), (0, 0), (1, 0)),) * 2


def reference_table(shared_dir: Path) -> dict[str, dict[str, float]]:
    """NAS-Bench-Suite-Zero's 500 NB301 rows, keyed by NASLib's arch key."""
    path = shared_dir / "nas_bench_suite_zero" / "zc_nasbench301.json"
    return json.loads(path.read_text())["nasbench301"]["cifar10"]


def test_size_and_enumeration() -> None:
    assert SPACE.name == "nasbench301" and set(SPACE.aliases) == {"nb301", "darts", "nas-bench-301"}
    assert SPACE.task(None).num_classes == 10 and SPACE.task("cifar10").input_shape == (3, 32, 32)
    per_cell = (2 * 6 * 12 * 20) * 49**4
    assert per_cell == 16_602_626_880
    assert SPACE.size == per_cell**2
    with pytest.raises(InvalidArchitecture, match="too large"):
        next(SPACE.enumerate())


def test_encode_is_naslib_key_format() -> None:
    key = SPACE.encode(DARTS_V2_ARCH)
    assert key == (
        "[[(0, 3), (1, 3), (0, 3), (1, 3), (1, 3), (0, 2), (0, 2), (2, 5)], "
        "[(0, 0), (1, 0), (2, 2), (1, 0), (0, 0), (2, 2), (2, 2), (1, 0)]]"
    )
    assert SPACE.decode(key) == DARTS_V2_ARCH
    assert SPACE.parse(key) == DARTS_V2_ARCH
    assert SPACE.parse([[list(p) for p in cell] for cell in DARTS_V2_ARCH]) == DARTS_V2_ARCH


def test_genotype_string_round_trip() -> None:
    assert SPACE.from_string(DARTS_V2) == DARTS_V2_ARCH
    assert SPACE.to_string(DARTS_V2_ARCH) == DARTS_V2
    assert SPACE.parse(DARTS_V2) == DARTS_V2_ARCH
    # DARTS' search logs print the concat fields as ranges
    ranged = DARTS_V2.replace("[2, 3, 4, 5]", "range(2, 6)")
    assert SPACE.from_string(ranged) == DARTS_V2_ARCH
    gen = np.random.default_rng(1)
    for _ in range(20):
        arch = SPACE.sample(gen)
        assert SPACE.from_string(SPACE.to_string(arch)) == arch


def _with_pair(arch, cell: int, index: int, pair: object):
    cells = [list(c) for c in arch]
    cells[cell][index] = pair
    return tuple(tuple(c) for c in cells)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (DARTS_V2_ARCH[0], "must be \\(normal, reduce\\)"),
        ((DARTS_V2_ARCH[0], DARTS_V2_ARCH[1][:7]), "reduce cell must be 8"),
        (_with_pair(DARTS_V2_ARCH, 0, 0, (2, 3)), "input node must be in 0..1, got 2"),
        (_with_pair(DARTS_V2_ARCH, 1, 7, (5, 0)), "feeds node 5.*got 5"),
        (_with_pair(DARTS_V2_ARCH, 0, 3, (1, 7)), "op index must be in 0..6"),
        (_with_pair(DARTS_V2_ARCH, 0, 2, (1, -1)), "op index"),
        (_with_pair(DARTS_V2_ARCH, 0, 1, (0, 3)), "node 2 reads node 0 twice"),
        (_with_pair(DARTS_V2_ARCH, 1, 6, (1, 2)), "reduce cell node 5 reads node 1 twice"),
        (_with_pair(DARTS_V2_ARCH, 0, 0, (True, 3)), "must be \\(input_node, op\\)"),
        (_with_pair(DARTS_V2_ARCH, 0, 0, (0, 3, 1)), "must be \\(input_node, op\\)"),
        ("Genotype(normal=[], normal_concat=[2, 3, 4, 5])", "not a DARTS genotype"),
        (DARTS_V2.replace("sep_conv_3x3", "conv_7x7"), "ops max_pool_3x3"),
        (DARTS_V2.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[4, 5]"), "concat"),
        ("|nor_conv_3x3~0|", "not a DARTS genotype"),
        ("[[(0, 1)], [(0, 1)]]", "normal cell must be 8"),
    ],
)
def test_invalid(bad: object, message: str) -> None:
    with pytest.raises(InvalidArchitecture, match=message):
        SPACE.parse(bad)


def test_canonical_key() -> None:
    arch = SPACE.sample(7)
    key = SPACE.canonical_key(arch)
    # swapping the two inputs of any node is the same network
    for cell in range(2):
        for k in range(4):
            pairs = list(arch[cell])
            pairs[2 * k], pairs[2 * k + 1] = pairs[2 * k + 1], pairs[2 * k]
            swapped = tuple(tuple(pairs) if c == cell else arch[c] for c in range(2))
            assert swapped != arch and SPACE.canonical_key(swapped) == key
    # nodes 2 and 3 both read only the cell inputs: exchanging their labels permutes the
    # cell's output channels only
    normal = ((0, 3), (1, 4), (1, 0), (0, 6), (2, 5), (3, 1), (0, 2), (4, 3))
    relabelled = ((1, 0), (0, 6), (0, 3), (1, 4), (3, 5), (2, 1), (0, 2), (4, 3))
    assert SPACE.canonical_key((normal, arch[1])) == SPACE.canonical_key((relabelled, arch[1]))
    # ... but an op change, or exchanging the normal and reduction cells, is another network
    other_op = ((0, 3), (1, 4), (1, 0), (0, 6), (2, 5), (3, 1), (0, 2), (4, 4))
    assert SPACE.canonical_key((normal, arch[1])) != SPACE.canonical_key((other_op, arch[1]))
    assert SPACE.canonical_key((normal, arch[1])) != SPACE.canonical_key((arch[1], normal))
    assert len(SPACE.canonical_hash(arch)) == 16


def test_sampling_is_seeded_and_valid() -> None:
    assert SPACE.sample(3) == SPACE.sample(np.random.default_rng(3))
    gen = np.random.default_rng(0)
    samples = [SPACE.sample(gen) for _ in range(400)]
    assert len(set(samples)) == 400
    assert all(SPACE.validate(s) == s for s in samples)
    ops = np.array([op for s in samples for cell in s for _, op in cell])
    counts = np.bincount(ops, minlength=len(OPS))
    assert counts.min() > 0.8 * len(ops) / len(OPS)  # every op drawn about equally often
    last_inputs = np.array([s[0][6][0] for s in samples])
    assert set(last_inputs) == {0, 1, 2, 3, 4}  # node 5 reads any of its 5 predecessors


def test_build_forward_backward() -> None:
    model = SPACE.build(DARTS_V2_ARCH, "cifar10", seed=0)
    assert isinstance(model.global_pool, torch.nn.AdaptiveAvgPool2d)
    assert isinstance(model.classifier, torch.nn.Linear) and model.classifier.in_features == 512
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and all(g.abs().sum() > 0 for g in grads)


def test_build_seeded_and_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    a, b, c = (SPACE.build(DARTS_V2, seed=s) for s in (5, 5, 6))
    assert torch.equal(torch.random.get_rng_state(), state)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_param_count_by_hand() -> None:
    # Pooling cells have no weights: stem 2,784 + preprocessing 386,512 + classifier 5,130.
    assert count_params(SPACE.build(ALL_POOL)) == 392_426
    # One sep_conv_3x3 in the normal cell adds 2 x (9c + c^2) non-affine-BN weights to each
    # of the 6 normal cells (c = 32, 32, 64, 64, 128, 128).
    one_sep = _with_pair(ALL_POOL, 0, 0, (0, 3))
    assert count_params(SPACE.build(one_sep)) == 392_426 + 94_080
    # A skip at stride 2 (reduction cell, from a cell input) is a FactorizedReduce: 2 x c^2/2
    one_fr = _with_pair(ALL_POOL, 1, 0, (0, 2))
    assert count_params(SPACE.build(one_fr)) == 392_426 + 64 * 64 + 128 * 128


def test_describe() -> None:
    text = SPACE.describe(DARTS_V2_ARCH)
    assert "node5 = skip_connect(node0) + dil_conv_3x3(node2)" in text
    assert "reduce cell" in text and "linear(512)" in text


@pytest.mark.shared
def test_real_keys_round_trip(shared_dir: Path) -> None:
    for key in reference_table(shared_dir):
        arch = SPACE.decode(key)
        assert SPACE.encode(arch) == key
        assert SPACE.from_string(SPACE.to_string(arch)) == arch


@pytest.mark.shared
def test_params_match_reference(shared_dir: Path) -> None:
    """All 500 parameter counts (built on the meta device: no memory, no initialisation)."""
    table = reference_table(shared_dir)
    with torch.device("meta"):
        for key, row in table.items():
            params = count_params(SPACE.build(key)) / 1e6
            assert round(params, 6) == round(row["params"], 6), key


@pytest.mark.shared
def test_flops_match_reference(shared_dir: Path) -> None:
    """A few FLOP counts (hook-counted forward passes are slow); the one-off full check agrees."""
    table = reference_table(shared_dir)
    for key in list(table)[:: len(table) // 3][:3]:
        flops = count_flops(SPACE.build(key), (3, 32, 32)) / 1e6
        assert flops == pytest.approx(table[key]["flops"], abs=1e-6), key


def full_reference_check() -> None:
    """One-off check of all 500 archs (params and FLOPs), too slow for every test run."""
    from zcproxies.paths import shared_data_dir

    torch.set_num_threads(1)
    table = reference_table(shared_data_dir())
    matches, ratios, diffs = 0, [], []
    for key, row in table.items():
        model = SPACE.build(key)
        matches += round(count_params(model) / 1e6, 6) == round(row["params"], 6)
        flops = count_flops(model, (3, 32, 32)) / 1e6
        ratios.append(flops / row["flops"])
        diffs.append(abs(flops - row["flops"]))
    print(f"params equal to 6 decimals: {matches}/{len(table)}")
    print(
        f"flops / reference: min {min(ratios):.9f} median {np.median(ratios):.9f} "
        f"max {max(ratios):.9f}; max |diff| {max(diffs):.3g} MFLOPs"
    )


if __name__ == "__main__":
    full_reference_check()
