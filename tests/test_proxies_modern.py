"""The newer proxies (ZiCo, MeCo, SWAP, AZ-NAS, TE-NAS, GradSign): hand-checked values, safety
(finite, deterministic, model untouched) and ranking sanity on real NAS-Bench-201 architectures.

``ZCP_MODERN_ARCHS`` / ``ZCP_MODERN_BATCH`` (defaults 40 and 8) size the NAS-Bench-201 sanity
check; larger values turn it into the one-off evaluation reported in docs/proxies_modern.md.
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from zcproxies import build, get_space, list_spaces
from zcproxies.measure import count_flops
from zcproxies.proxies import ProxyContext, get_proxy
from zcproxies.proxies.modern import AZNAS_COMPONENTS, aznas_population, tenas_population
from zcproxies.proxies.modern_activation import min_correlation_eigenvalue
from zcproxies.proxies.modern_aznas import spectral_entropy, spectral_score, trunk_blocks
from zcproxies.proxies.modern_common import (
    count_unique_columns,
    count_unique_rows,
    relu_codes,
    single_value_batchnorm,
)

MODERN = ("zico", "meco", "swap", "gradsign", "tenas_ntk", "tenas_lr", *AZNAS_COMPONENTS)
LABELLED = {"zico", "gradsign"}
GRADIENT = {"zico", "gradsign", "tenas_ntk", "az_trainability"}
DATA_FREE = {"tenas_lr", *AZNAS_COMPONENTS}
LOW = -1e8
pytestmark = pytest.mark.usefixtures("one_thread")


def gaussian_ctx(
    model: nn.Module, shape: tuple[int, ...], num_classes: int = 10, seed: int = 0
) -> ProxyContext:
    """A context on a seeded Gaussian batch with seeded random labels."""
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(shape, generator=gen)
    y = torch.randint(0, num_classes, (shape[0],), generator=gen)
    return ProxyContext(model=model, x=x, y=y, num_classes=num_classes, seed=seed)


def mini(arch: tuple[int, ...]) -> nn.Module:
    """A NAS-Bench-201 cell on the reduced skeleton (C=8, one cell per stage): fast to score."""
    return build("nasbench201_mini", arch, "digits")


def mini_ctx(arch: tuple[int, ...], seed: int = 0) -> ProxyContext:
    return gaussian_ctx(mini(arch), (16, 1, 8, 8), seed=seed)


def score(name: str, ctx: ProxyContext) -> float:
    return get_proxy(name).fn(ctx)


# ---- registry -------------------------------------------------------------------------------
def test_registry_metadata() -> None:
    for name in MODERN:
        info = get_proxy(name)
        assert info.needs_labels == (name in LABELLED), name
        assert info.needs_grad == (name in GRADIENT), name
        assert info.data_free == (name in DATA_FREE), name
        assert info.higher_is_better and not info.population, name
        assert info.citation and info.description, name


# ---- hand-checkable values ------------------------------------------------------------------
def linear_ctx(x: list[list[float]], y: list[int], outputs: int = 2) -> ProxyContext:
    """A bias-free linear model with zero weights: softmax is uniform, dL/dW = (1/k - e_y) x^T."""
    model = nn.Linear(len(x[0]), outputs, bias=False)
    nn.init.zeros_(model.weight)
    return ProxyContext(model=model, x=torch.tensor(x), y=torch.tensor(y), num_classes=outputs)


def test_gradsign_by_hand() -> None:
    # per-example gradients: rows (-x/2, +x/2); x=(1,-1) and (1,2) agree in sign on the first
    # input only: |(-1)+(-1)| + |(+1)+(-1)| per row -> 2 + 0 for each of the 2 rows
    assert score("gradsign", linear_ctx([[1.0, -1.0], [1.0, 2.0]], [0, 0])) == 4.0


def test_zico_by_hand() -> None:
    # two halves of one example: g1 = (+-)(1,2)/2 and g2 = -/+(2,1)/2 per row; every weight has
    # mean|g| = std(g) = 0.75, so each of the 4 ratios is 1 and the one layer gives log(4)
    ctx = linear_ctx([[1.0, 2.0], [2.0, 1.0]], [0, 1])
    assert score("zico", ctx) == pytest.approx(math.log(4.0), rel=1e-12)


def test_tenas_ntk_by_hand() -> None:
    # f = W x with 3 outputs: d(sum f)/dW = 1 x^T, so NTK = 3 * Gram = diag(3, 12): cond 4
    ctx = linear_ctx([[1.0, 0.0], [0.0, 2.0]], [0, 0], outputs=3)
    assert score("tenas_ntk", ctx) == pytest.approx(-4.0, rel=1e-9)
    singular = linear_ctx([[1.0, 2.0], [2.0, 4.0]], [0, 0], outputs=3)  # rank-1 NTK
    assert score("tenas_ntk", singular) == LOW


def test_meco_minimum_eigenvalue_by_hand() -> None:
    # two channels over 4 positions with correlation 1/sqrt(3): eigenvalues 1 +- 1/sqrt(3)
    feature = torch.tensor([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, -1.0]]).reshape(2, 2, 2)
    assert min_correlation_eigenvalue(feature) == pytest.approx(1 - 1 / math.sqrt(3), rel=1e-12)
    assert min_correlation_eigenvalue(torch.zeros(3, 4, 4)) == 0.0  # NaN correlations zeroed
    # the whole model is hooked too: an identity network is one module seeing the batch
    ctx = ProxyContext(
        model=nn.Identity(), x=feature[None], y=torch.zeros(1, dtype=torch.int64), num_classes=2
    )
    assert score("meco", ctx) == pytest.approx(1 - 1 / math.sqrt(3), rel=1e-12)


def test_single_value_batchnorm_is_the_limit_of_train_mode_batchnorm() -> None:
    # one value per channel: x - mean = 0, the output is the bias, as for a duplicated example
    bn = nn.BatchNorm2d(4)
    nn.init.normal_(bn.weight, generator=torch.Generator().manual_seed(0))
    nn.init.normal_(bn.bias, generator=torch.Generator().manual_seed(1))
    x = torch.randn(1, 4, 1, 1, generator=torch.Generator().manual_seed(2))
    wide = nn.functional.batch_norm(x.repeat(2, 1, 1, 1), None, None, bn.weight, bn.bias, True)
    with torch.no_grad():
        assert torch.allclose(single_value_batchnorm(bn)(x), wide[:1], atol=1e-3)  # mean round-off
        batch = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(3))
        expected = nn.functional.batch_norm(batch, None, None, bn.weight, bn.bias, True)
        assert torch.equal(bn(batch), expected)  # more values per channel: plain BatchNorm


@pytest.mark.parametrize("name", ["meco", "gradsign"])
def test_single_examples_reaching_a_1x1_map(name: str) -> None:
    # a TransNAS macro jigsaw encoder with 6 downsamplings maps a 64x64 tile to 1x1: the single
    # examples of MeCo and GradSign meet train-mode BatchNorm on one value per channel there
    model = build("transbench101_macro", (1, 1, 4, 3, 3, 3), "jigsaw")
    ctx = gaussian_ctx(model, (2, 3, 192, 192), num_classes=1000)
    value = score(name, ctx)
    assert math.isfinite(value) and value == score(name, ctx)


def tiny_relu_net() -> nn.Module:
    """conv 1x1 (weight 1) then ReLU: the activation code of a neuron is the sign of its pixel."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    nn.init.ones_(conv.weight)
    return nn.Sequential(conv, nn.ReLU())


def test_activation_patterns_by_hand() -> None:
    # 4 samples x 2 neurons, signs (+,+), (+,-), (-,+), (+,+)
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0], [-2.0, 1.0], [0.5, 0.5]]).reshape(4, 1, 1, 2)
    codes = relu_codes(tiny_relu_net(), x)
    assert codes.tolist() == [[True, True], [True, False], [False, True], [True, True]]
    assert count_unique_rows(codes) == 3  # linear regions: sample patterns
    assert count_unique_columns(codes) == 2  # SWAP: neuron patterns (1,1,0,1) and (1,0,1,1)
    # SWAP re-initialises weights (N(0,1)) but a parameter-free network keeps its patterns
    ctx = ProxyContext(
        model=nn.Sequential(nn.ReLU()), x=x, y=torch.zeros(4, dtype=torch.int64), num_classes=2
    )
    assert score("swap", ctx) == 2.0
    # tenas_lr draws 4 Gaussian inputs of 2 pixels: at most 4 patterns, at least 1
    assert 1.0 <= score("tenas_lr", ctx) <= 4.0
    many = gaussian_ctx(nn.Sequential(nn.ReLU()), (64, 1, 1, 2))
    assert score("tenas_lr", many) == 4.0  # all 4 sign patterns of 2 pixels occur in 64 draws


def test_aznas_pieces_by_hand() -> None:
    # channels (1,-1,1,-1) and (1,1,-1,-1): identity covariance, two equal eigenvalues: log 2
    feature = torch.tensor([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]]).reshape(1, 2, 1, 4)
    assert spectral_entropy(feature) == pytest.approx(math.log(2), abs=1e-7)
    assert math.isnan(spectral_entropy(torch.zeros(1, 2, 2, 2)))
    assert spectral_score(1.0) == pytest.approx(0.0, abs=1e-5)
    assert spectral_score(2.0) < spectral_score(0.9) < spectral_score(1.0)
    model = build("nb201", (2, 3, 0, 4, 2, 3), "cifar10")
    blocks = trunk_blocks(model)
    assert blocks[0] is model.stem and blocks[1:] == list(model.cells) and len(blocks) == 18


def test_az_complexity_is_nb201_flops() -> None:
    ctx = mini_ctx((2, 3, 0, 4, 2, 3))
    assert score("az_complexity", ctx) == count_flops(ctx.model, (1, 8, 8), convention="nb201")


# ---- population combiners -------------------------------------------------------------------
def test_aznas_population_by_hand() -> None:
    table = pd.DataFrame(
        {
            "az_expressivity": [1.0, 2.0, 3.0],
            "az_progressivity": [3.0, 2.0, 1.0],
            "az_trainability": [5.0, 5.0, 5.0],  # tied: every rank 2
            "az_complexity": [10.0, 30.0, 20.0],
        }
    )
    log = np.log
    expected = [
        log(1 / 3) + log(3 / 3) + log(2 / 3) + log(1 / 3),
        log(2 / 3) + log(2 / 3) + log(2 / 3) + log(3 / 3),
        log(3 / 3) + log(1 / 3) + log(2 / 3) + log(2 / 3),
    ]
    np.testing.assert_allclose(aznas_population(table), expected, rtol=1e-12)


def test_tenas_population_by_hand() -> None:
    table = pd.DataFrame({"tenas_ntk": [-10.0, -5.0, -100.0], "tenas_lr": [64.0, 64.0, 1.0]})
    np.testing.assert_array_equal(tenas_population(table), [2 + 2.5, 3 + 2.5, 1 + 1])
    with pytest.raises(ValueError, match="lacks columns"):
        tenas_population(table[["tenas_ntk"]])
    with pytest.raises(ValueError, match="finite"):
        tenas_population(table.assign(tenas_lr=[1.0, np.nan, 2.0]))


# ---- safety ---------------------------------------------------------------------------------
def test_deterministic_untouched_and_order_free() -> None:
    model = mini((2, 3, 0, 4, 2, 3)).eval()  # eval: a proxy must not flip it to train
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    ctx = gaussian_ctx(model, (16, 1, 8, 8))
    first = {name: score(name, ctx) for name in MODERN}  # one shared context, forward order
    shared = gaussian_ctx(model, (16, 1, 8, 8))
    backward = {name: score(name, shared) for name in reversed(MODERN)}
    fresh = {name: score(name, gaussian_ctx(model, (16, 1, 8, 8))) for name in MODERN}
    assert first == backward == fresh  # bitwise
    assert all(math.isfinite(v) and v > LOW for v in first.values()), first
    assert not model.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), rng)
    reseeded = {name: score(name, mini_ctx((2, 3, 0, 4, 2, 3), seed=1)) for name in MODERN}
    changed = {name for name in MODERN if reseeded[name] != first[name]}
    assert {"swap", "az_expressivity", "az_trainability"} <= changed


@pytest.mark.parametrize("arch", [(1, 1, 1, 1, 1, 1), (0, 1, 1, 1, 1, 1), (1, 1, 0, 1, 1, 1)])
def test_degenerate_cells_are_finite(arch: tuple[int, ...]) -> None:
    # all-none; a skip into a node that never reaches the output; the cell is an identity
    ctx = mini_ctx(arch)
    scores = {name: score(name, ctx) for name in MODERN}
    assert all(math.isfinite(v) for v in scores.values()), scores
    if arch != (1, 1, 0, 1, 1, 1):  # disconnected: nothing depends on the input
        assert scores["zico"] == scores["gradsign"] == 0.0
        assert scores["swap"] == scores["tenas_lr"] == 1.0
        assert scores["tenas_ntk"] == scores["az_expressivity"] == LOW
    else:  # the cell passes its gradient unchanged: the authors' -inf trainability
        assert scores["az_trainability"] == LOW


OTHER_SPACES = [s.name for s in list_spaces() if s.name not in ("nasbench201", "nasbench201_mini")]


@pytest.mark.slow
@pytest.mark.parametrize("space_name", OTHER_SPACES)
def test_other_spaces_are_finite(space_name: str) -> None:
    # full-size networks of the other benchmarks, 2 examples of their first task (seconds each)
    space = get_space(space_name)
    task = space.task(None)
    ctx = gaussian_ctx(space.build(space.sample(0), task), (2, *task.input_shape), task.num_classes)
    names = [p for p in MODERN if task.kind == "classification" or p not in LABELLED]
    scores = {p: score(p, ctx) for p in names}
    assert all(math.isfinite(v) for v in scores.values()), scores


# ---- ranking sanity on NAS-Bench-201 --------------------------------------------------------
# Clearly positive Kendall tau vs accuracy in the papers (NB201 CIFAR-10): every proxy but the
# linear-region count, which saturates at the batch size on these networks (see the docs).
POSITIVE = (*[p for p in MODERN if p != "tenas_lr"], "aznas", "tenas")


def stratified_tau(frame: pd.DataFrame, column: str) -> float:
    """Mean Kendall tau vs accuracy within groups of equal conv count (groups of >= 5 archs)."""
    taus = [
        stats.kendalltau(group[column], group["val_accuracy"])[0]
        for _, group in frame.groupby("convs")
        if len(group) >= 5
    ]
    taus = [tau for tau in taus if not math.isnan(tau)]  # constant scores within a stratum
    return float(np.mean(taus)) if taus else math.nan


@pytest.mark.shared
def test_nb201_ranking_sanity(shared_dir, cifar_batch) -> None:
    n_archs = int(os.environ.get("ZCP_MODERN_ARCHS", "40"))
    batch = int(os.environ.get("ZCP_MODERN_BATCH", "8"))
    data = json.loads((shared_dir / "nas_bench_suite_zero" / "zc_nasbench201.json").read_text())
    table = data["nasbench201"]["cifar10"]
    keys = sorted(table)
    chosen = [keys[i] for i in np.random.default_rng(0).choice(len(keys), n_archs, False)]
    x, y = cifar_batch[0][:batch], cifar_batch[1][:batch]
    rows, seconds = [], {name: [] for name in MODERN}
    for key in chosen:
        ctx = ProxyContext(model=build("nb201", key, "cifar10"), x=x, y=y, num_classes=10)
        row = {
            "val_accuracy": table[key]["val_accuracy"],
            "convs": get_space("nb201").num_convs(get_space("nb201").decode(key)),
        }
        for name in MODERN:
            start = time.perf_counter()
            row[name] = score(name, ctx)
            seconds[name].append(time.perf_counter() - start)
        rows.append(row)
    scores = pd.DataFrame(rows)
    scores["aznas"] = aznas_population(scores)
    scores["tenas"] = tenas_population(scores)
    taus = {
        name: stats.kendalltau(scores[name], scores["val_accuracy"])[0]
        for name in (*MODERN, "aznas", "tenas")
    }
    print(
        f"\nNB201 CIFAR-10, {n_archs} archs, batch {batch}: Kendall tau vs val_accuracy "
        "(all; mean within equal-conv-count strata), median seconds per arch"
    )
    for name, tau in taus.items():
        timing = f"  {np.median(seconds[name]):6.2f} s" if name in seconds else ""
        print(f"  {name:17s} {tau:+.3f}  {stratified_tau(scores, name):+.3f}{timing}")
    failing = {name: taus[name] for name in POSITIVE if not taus[name] > 0}
    assert not failing, failing
