"""NAS-Bench-201: encodings, hashing against NATS-Bench's isomorphism key, models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from zcproxies import InvalidArchitecture, build, get_space
from zcproxies.measure import count_params

SPACE = get_space("nb201")


def test_size_and_enumeration() -> None:
    archs = list(SPACE.enumerate())
    assert len(archs) == SPACE.size == 15625
    assert len(set(archs)) == 15625
    assert archs[0] == (0,) * 6 and archs[-1] == (4,) * 6


def test_sampling_is_seeded() -> None:
    a = [SPACE.sample(np.random.default_rng(3)) for _ in range(1)]
    b = [SPACE.sample(3)]
    assert a == b
    gen = np.random.default_rng(0)
    samples = {SPACE.sample(gen) for _ in range(200)}
    assert len(samples) > 150 and all(SPACE.validate(s) == s for s in samples)


@pytest.mark.parametrize("arch", [(0, 1, 2, 3, 4, 0), (4, 3, 3, 3, 2, 3), (1,) * 6])
def test_round_trips(arch: tuple[int, ...]) -> None:
    assert SPACE.decode(SPACE.encode(arch)) == arch
    assert SPACE.from_string(SPACE.to_string(arch)) == arch
    assert SPACE.parse(SPACE.to_string(arch)) == arch
    assert SPACE.parse(list(arch)) == arch


def test_string_edge_order() -> None:
    # edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) -> string lists by target node
    s = SPACE.to_string((0, 1, 2, 3, 4, 0))
    assert (
        s
        == "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"
    )


@pytest.mark.parametrize("bad", [(0, 1, 2), (0, 1, 2, 3, 4, 5), ("a",) * 6, "|bogus~0|"])
def test_invalid(bad: object) -> None:
    with pytest.raises(InvalidArchitecture):
        SPACE.parse(bad)


def test_build_forward_backward() -> None:
    batch = torch.randn(4, 3, 32, 32)
    model = build("nb201", (2, 2, 2, 2, 2, 2), "cifar100")
    out = model(batch)
    assert out.shape == (4, 100)
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    im16 = build("nb201", (2, 2, 2, 2, 2, 2), "ImageNet16-120")
    assert im16(torch.randn(2, 3, 16, 16)).shape == (2, 120)


def test_build_seeded_and_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    a = build("nb201", (3,) * 6, "cifar10", seed=5)
    b = build("nb201", (3,) * 6, "cifar10", seed=5)
    c = build("nb201", (3,) * 6, "cifar10", seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_disconnected() -> None:
    assert SPACE.is_disconnected((1, 1, 1, 1, 1, 1))
    assert SPACE.is_disconnected((0, 0, 1, 0, 1, 1))  # every edge into node 4 is none
    assert not SPACE.is_disconnected((1, 1, 0, 1, 1, 1))  # the direct edge (1,4) is a skip
    assert "output reachable from input: no" in SPACE.describe((1,) * 6)


@pytest.mark.shared
def test_isomorphism_key_matches_nats_bench(shared_dir) -> None:
    table = pd.read_csv(shared_dir / "full_tables" / "nats_bench_tss_test_accuracy.csv")
    ours = [SPACE.canonical_key(SPACE.from_string(s)) for s in table["ArchitectureString"]]
    assert ours == list(table["UniqueString"])
    assert len(set(ours)) == table["UniqueString"].nunique()


@pytest.mark.shared
def test_params_match_reference(shared_dir) -> None:
    data = json.loads((shared_dir / "nas_bench_suite_zero" / "zc_nasbench201.json").read_text())
    for task, archs in data["nasbench201"].items():
        for key, row in archs.items():
            params = count_params(build("nb201", key, task)) / 1e6
            assert round(params, 6) == round(row["params"], 6), (task, key)
