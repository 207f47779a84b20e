"""The AutoDL trainer: domains, candidate pools, successive halving, ingestion, scoring."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from autodl.cli import PRUNING_CHOICES, autodl_group
from autodl.dataset import AutoDLMetadata, MatrixSpec
from autodl.ingestion import list_predictions, read_prediction, write_prediction
from autodl.metrics import alc
from autodl.model import Model
from autodl.networks import DENSE_OPS, build_baseline, build_candidate, build_linear_probe
from autodl.preprocess import InputSpec, infer_domain, make_input_spec, to_network_input
from autodl.scoring import score_run
from autodl.search import (
    PRUNING_MODES,
    AnytimeSearch,
    Member,
    SearchConfig,
    aggregate_ranks,
    candidate_pool,
    default_proxy,
    distinct_cells,
    halving_rungs,
    probability_key,
    proxy_names,
    safe_batch_size,
    select_ensemble,
    stratified_split,
)
from zcproxies.errors import UnknownName
from zcproxies.spaces.nb201 import OPS, NasBench201
from zcproxies.train import TrainConfig, TrainState, train_model

NB201 = NasBench201()


def metadata(shape: tuple[int, int, int, int], classes: int, count: int) -> AutoDLMetadata:
    """Metadata of DENSE examples of (T, H, W, C) ``shape``."""
    steps, rows, cols, channels = shape
    spec = MatrixSpec(row_count=rows, col_count=cols, num_channels=channels)
    return AutoDLMetadata(
        matrix_spec=(spec,), output_dim=classes, sequence_size=steps, sample_count=count
    )


def blobs(shape: tuple[int, ...], n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Separable synthetic examples: Gaussian noise shifted by the class; one-hot labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    x += y.reshape(-1, *[1] * len(shape)).astype(np.float32)
    return x, np.eye(classes, dtype=np.float32)[y]


# ---- domains and inputs ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "domain"),
    [
        ((1, 32, 32, 3), "image"),
        ((1, -1, -1, 3), "image"),
        ((1, 8, 8, 1), "image"),
        ((10, 64, 64, 3), "video"),
        ((-1, 32, 32, 1), "video"),
        ((1, 1, 54, 1), "tabular"),
        ((1, 54, 1, 1), "tabular"),
        ((1, 1, 1, 100), "tabular"),
    ],
)
def test_infer_domain(shape: tuple[int, int, int, int], domain: str) -> None:
    assert infer_domain(shape) == domain


def test_input_spec_adapts_to_shape() -> None:
    assert make_input_spec((1, 32, 32, 3), 10, max_size=16) == InputSpec("image", 3, 16, 10)
    assert make_input_spec((1, 8, 8, 1), 10, max_size=16) == InputSpec("image", 1, 8, 10)
    assert make_input_spec((1, -1, -1, 3), 5, max_size=16).size == 16  # varying -> working size
    assert make_input_spec((1, 2, 3, 1), 2).size == 4  # never below the skeleton's minimum
    assert make_input_spec((10, 20, 20, 3), 4, 16, 4) == InputSpec("video", 12, 16, 4, 4)
    assert make_input_spec((-1, 20, 20, 1), 4, 16, 4).frames == 4
    assert make_input_spec((1, 1, 54, 2), 7) == InputSpec("tabular", 108, 0, 7)
    assert make_input_spec((-1, 1, 1, 1), 2) == InputSpec(
        "speech", 2, 0, 2
    )  # tests/test_autodl_domains.py


def test_video_frames_fold_into_channels() -> None:
    """8 frames, frame t filled with t, 2 channels: frames 0, 2, 5, 7 at channels (t, c)."""
    video = np.broadcast_to(
        np.arange(8, dtype=np.float32)[:, None, None, None], (8, 6, 6, 2)
    ).copy()
    video[..., 1] += 100
    spec = make_input_spec((8, 6, 6, 2), 3, max_size=16, max_frames=4)
    out = to_network_input(video, spec)
    assert out.shape == (8, 6, 6)
    np.testing.assert_allclose(out[:, 0, 0], [0, 100, 2, 102, 5, 105, 7, 107])
    short = to_network_input(video[:2], spec)  # fewer frames than folded: frames repeat
    np.testing.assert_allclose(short[::2, 0, 0], [0, 0, 1, 1])
    image = np.zeros((40, 30, 3), np.float32)  # (H, W, C) without a time axis, resized
    assert to_network_input(image, make_input_spec((1, -1, -1, 3), 2)).shape == (3, 16, 16)


# ---- candidates ------------------------------------------------------------------------------
def test_distinct_cells_are_connected_isomorphism_classes() -> None:
    for dense, count in ((False, 6461), (True, 124)):
        cells = distinct_cells(dense)
        assert len(cells) == count
        assert len({NB201.canonical_key(a) for a in cells}) == count
        assert not any(NB201.is_disconnected(a) for a in cells)
    assert {OPS[i] for a in distinct_cells(True) for i in a} == set(DENSE_OPS)


def test_candidate_pool_is_distinct_and_seeded() -> None:
    cells = [m.cell for m in candidate_pool("image", 32, seed=3)]
    assert None not in cells and len({NB201.canonical_key(a) for a in cells}) == 32
    assert not any(NB201.is_disconnected(a) for a in cells)
    pool = candidate_pool("image", 32, seed=3)
    assert pool == candidate_pool("image", 32, seed=3) != candidate_pool("image", 32, seed=4)
    assert candidate_pool("video", 32, seed=3) == pool  # same cell space as images
    tabular = candidate_pool("tabular", 500, seed=0)
    assert len(tabular) == 124  # capped at the number of classes


def test_pool_holds_the_plain_grid_and_the_baseline() -> None:
    """Every (width, depth) of the grid once, NB201 cells for the rest, in a seeded order; the
    baseline is the grid's (16, 1) member, built identically."""
    config = SearchConfig()
    pools = [candidate_pool("image", 32, seed, config.plain) for seed in range(4)]
    for pool in pools:
        plain = [(m.width, m.depth) for m in pool if m.cell is None]
        assert sorted(plain) == sorted(config.plain) and len(config.plain) == 6
        assert len({m.name for m in pool}) == 32
    positions = {tuple(i for i, m in enumerate(pool) if m.cell is None) for pool in pools}
    assert len(positions) > 1  # plain members are not always scored first
    spec = InputSpec("image", 3, 8, 5)
    member = Member(width=config.baseline_width)
    torch.manual_seed(0)
    baseline = build_baseline(spec, config.baseline_width)
    torch.manual_seed(0)
    twin = member.build(spec, config)
    assert member.name == "plain c16 d1"
    pairs = list(zip(twin.parameters(), baseline.parameters(), strict=True))
    assert all(a.shape == b.shape and torch.equal(a, b) for a, b in pairs)
    deep = Member(width=8, depth=2).build(spec, config)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in deep.modules()) == 6
    mlp = Member(width=8, depth=2).build(InputSpec("tabular", 20, 0, 5), config)
    assert [m.out_features for m in mlp if isinstance(m, torch.nn.Linear)] == [128, 128, 64, 5]


@pytest.mark.parametrize(
    "spec",
    [InputSpec("image", 1, 8, 7), InputSpec("video", 12, 4, 7, 4), InputSpec("tabular", 20, 0, 7)],
)
def test_networks_adapt_to_channels_and_classes(spec: InputSpec) -> None:
    x = torch.randn(3, *spec.shape)
    nets = [m.build(spec, SearchConfig()) for m in candidate_pool(spec.domain, 5, 0, [(8, 2)])]
    nets += [build_candidate(m.cell, spec, 4, 2) for m in candidate_pool(spec.domain, 2, 1)]
    for net in [*nets, build_baseline(spec, 8), build_linear_probe(spec)]:
        assert net(x).shape == (3, 7)


def test_default_proxy_comes_from_the_evidence_file() -> None:
    choice = json.loads((Path(__file__).parents[1] / "autodl" / "proxy_choice.json").read_text())
    assert default_proxy() == choice["default"] and choice["source"]
    assert proxy_names(" jacov + nwot ") == ("jacov", "nwot")
    with pytest.raises(UnknownName):
        proxy_names("jacov+no_such_proxy")


def test_aggregate_ranks() -> None:
    table = np.array([[1.0, 30.0], [2.0, 10.0], [3.0, 20.0]])
    np.testing.assert_allclose(aggregate_ranks(table[:, :1]), [1.0, 2.0, 3.0])
    expected = np.log([1 / 3 * 3 / 3, 2 / 3 * 1 / 3, 3 / 3 * 2 / 3])  # AZ-NAS: sum log(rank/n)
    np.testing.assert_allclose(aggregate_ranks(table), expected)


# ---- training chunks -------------------------------------------------------------------------
def test_train_state_carries_one_schedule_over_chunks() -> None:
    """With a ``TrainState`` the chunks follow one cosine over ``total_epochs`` (no restart),
    with one optimizer; a single chunk over the whole horizon trains as the default does."""
    x, labels = blobs((6,), 40, 2, seed=3)
    data = (torch.from_numpy(x), torch.from_numpy(labels.argmax(1)))
    config = TrainConfig(epochs=4, batch_size=10, lr=0.1)

    def net() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    default, stateful = net(), net()
    train_model(default, data, None, config, seed=1)
    train_model(stateful, data, None, config, seed=1, state=TrainState(4))
    pairs = zip(default.parameters(), stateful.parameters(), strict=True)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in pairs)

    chunked, state = net(), TrainState(total_epochs=4)
    half = TrainConfig(epochs=2, batch_size=10, lr=0.1)
    train_model(chunked, data, None, half, seed=1, state=state)
    optimizer = state.optimizer
    assert state.step == 8 and optimizer is not None
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)  # half-way down the cosine
    train_model(chunked, data, None, half, seed=2, state=state)
    assert state.optimizer is optimizer and state.step == 16
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    state.total_epochs = 8  # re-planned horizon: the cosine at 4 of 8 epochs
    assert state.factor(4) == pytest.approx(0.5)


# ---- bookkeeping helpers ---------------------------------------------------------------------
def test_halving_rungs_and_batches() -> None:
    assert halving_rungs(4) == [4, 2, 1]
    assert halving_rungs(5) == [5, 2, 1]
    assert halving_rungs(9, eta=3) == [9, 3, 1]
    assert halving_rungs(1) == [1]
    assert safe_batch_size(65, 64) == 63  # never a last batch of one example
    assert safe_batch_size(10, 64) == 10
    assert safe_batch_size(129, 64) == 63


def test_stratified_split() -> None:
    labels = np.eye(3)[[0] * 10 + [1] * 5 + [2]]
    train, val = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.r_[train, val].tolist()) == list(range(16))
    assert np.bincount(labels[val].argmax(1), minlength=3).tolist() == [2, 1, 0]
    assert stratified_split(labels, 0.2, seed=0)[1].tolist() == val.tolist()


def test_successive_halving_bookkeeping() -> None:
    """4 kept of 8 -> rungs of 4, 2, 1 candidates, each the best of the previous rung; then the
    winner alone, in chunks of at most doubling epochs, up to max_epochs; then the others."""
    x, labels = blobs((1, 4, 4), 72, 3, seed=0)
    y = torch.from_numpy(labels.argmax(1))
    data = torch.from_numpy(x)
    config = SearchConfig(
        pool_size=8,
        plain_widths=(4,),
        keep=4,
        width=4,
        max_epochs=12,
        continued_schedule=True,
        warmup_fraction=0.0,  # the halving alone (the warm-up has its own test)
        probe_seconds=0.5,
        train=TrainConfig(epochs=1, batch_size=16, lr=0.05),
    )
    search = AnytimeSearch(
        InputSpec("image", 1, 4, 3),
        (data[:54], y[:54]),
        (data[54:], y[54:]),
        pruning="proxy",
        proxy="synflow+nwot",
        seed=0,
        config=config,
    )
    deadline = time.perf_counter() + 60
    improvements = 0
    while not search.done:
        improvements += search.run(deadline)
    assert improvements >= 1 and time.perf_counter() < deadline

    pool = next(e for e in search.events if e["phase"] == "pool")
    scored = [p for p in pool["pool"] if p["score"] is not None]
    top4 = sorted(scored, key=lambda p: -p["score"])[:4]
    assert {p["member"] for p in pool["pool"] if p["kept"]} == {p["member"] for p in top4}
    assert sum(p["member"].startswith("plain") for p in pool["pool"]) == 2

    chunks = [e for e in search.events if e["phase"] != "pool"]
    assert chunks[0]["phase"] == "probe"
    rungs = [[e for e in chunks if e["phase"] == f"rung {r}"] for r in range(3)]
    survivors = [list(dict.fromkeys(e["candidate"] for e in rung)) for rung in rungs]
    assert [len(names) for names in survivors] == [4, 2, 1]
    assert set(survivors[0]) == {p["member"] for p in top4}
    # any-time rungs: the first round trains every candidate one epoch, best-scored first
    assert [e["epochs_asked"] for e in rungs[0][:4]] == [1, 1, 1, 1]
    assert [e["candidate"] for e in rungs[0][:4]] == [p["member"] for p in top4]
    for before, after in itertools.pairwise(rungs):
        last = {e["candidate"]: e for e in before}  # each candidate's state at the rung's end
        ranked = sorted(last.values(), key=lambda e: (e["val_nauc"], -e["val_loss"]), reverse=True)
        kept = [e["candidate"] for e in ranked[: len({e["candidate"] for e in after})]]
        assert list(dict.fromkeys(e["candidate"] for e in after)) == kept
    winner = survivors[2][0]
    extend = [e for e in chunks if e["phase"] == "extend"]
    assert extend and all(e["candidate"] == winner for e in extend)
    for name in survivors[0]:  # chunks of doubling epochs (the last of a rung may be shorter)
        asked = [e["epochs_asked"] for e in chunks if e["candidate"] == name]
        assert all(b <= 2 * a for a, b in itertools.pairwise(asked))
    assert extend[-1]["total_epochs"] == 12  # stopped by max_epochs, not by time
    # time left: the other three train on to max_epochs too, best (at that point) first
    runners = [e for e in chunks if e["phase"] == "runner-up"]
    before = {e["candidate"]: e for e in chunks[: chunks.index(runners[0])]}
    order = sorted(
        (before[name] for name in survivors[0] if name != winner),
        key=lambda e: (e["val_nauc"], -e["val_loss"]),
        reverse=True,
    )
    assert list(dict.fromkeys(e["candidate"] for e in runners)) == [e["candidate"] for e in order]
    last = {e["candidate"]: e for e in runners}
    assert chunks[-1] is runners[-1] and all(e["total_epochs"] == 12 for e in last.values())
    for name in {e["candidate"] for e in chunks if e["phase"] != "probe"}:  # one schedule each
        factors = [e["lr_factor"] for e in chunks if e["candidate"] == name]
        assert all(b < a for a, b in itertools.pairwise(factors)) and factors[0] < 1
    assert extend[-1]["lr_factor"] == pytest.approx(0.0)  # annealed at the end of the plan

    best = max(chunks, key=lambda e: (e["val_nauc"], -e["val_loss"]))
    assert search.best is not None and search.best.name == best["candidate"]
    probabilities = search.predict(data[54:])
    assert probabilities.shape == (18, 3)
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)
    assert search.ensemble_key >= search.best.key  # the ensemble: never below its best member
    ensemble_keys = [e["ensemble_val_nauc"] for e in chunks]
    assert ensemble_keys == sorted(ensemble_keys)  # and never worse later


def test_greedy_ensemble_selection_by_hand() -> None:
    # A and B each rank 3 of 4 pairs right (NAUC 0.5), their mean ranks all 4 (NAUC 1);
    # a third copy of either only raises the cross-entropy, so the best prefix is A + B
    y = np.array([0, 0, 1, 1])
    a = np.array([0.1, 0.6, 0.4, 0.9])
    b = np.array([0.6, 0.1, 0.9, 0.4])
    probs = [np.column_stack([1 - p, p]) for p in (a, b)]
    assert probability_key(probs[0], y, 2) == pytest.approx((0.5, math.log(0.9 * 0.4) / 2))
    own = [probability_key(p, y, 2) for p in probs]
    assert select_ensemble(probs, own, y, 2, rounds=1) == ([1, 0], probability_key(probs[0], y, 2))
    counts, key = select_ensemble(probs, own, y, 2, rounds=4)
    assert counts == [1, 1] and key == pytest.approx((1.0, math.log(0.65)))
    assert probability_key(np.full((4, 2), np.nan), y, 2) == (-math.inf, -math.inf)


def random_search_to_the_end(
    data: torch.Tensor, y: torch.Tensor, n_train: int, config: SearchConfig, seconds: float
) -> AnytimeSearch:
    """A random-pruning search on 1 x 6 x 6 images of 3 classes (the first ``n_train`` train,
    the rest validate), run until done or ``seconds``."""
    search = AnytimeSearch(
        InputSpec("image", 1, 6, 3),
        (data[:n_train], y[:n_train]),
        (data[n_train:], y[n_train:]),
        pruning="random",
        seed=0,
        config=config,
    )
    deadline = time.perf_counter() + seconds
    while not search.done:
        search.run(deadline)
    return search


def test_warm_up_trains_the_baseline_first_and_the_search_goes_on_from_it() -> None:
    x, labels = blobs((1, 6, 6), 60, 3, seed=5)
    data, y = torch.from_numpy(x), torch.from_numpy(labels.argmax(1))
    config = SearchConfig(  # every member kept, so the baseline's own member goes on
        pool_size=4, plain_widths=(4,), plain_depths=(1,), baseline_width=4, width=4, keep=4
    )
    search = random_search_to_the_end(data, y, 45, replace(config, max_epochs=40), seconds=20)
    phases = [e["phase"] for e in search.events]
    pool_at = phases.index("pool")
    warm = [e for e in search.events[:pool_at] if e["phase"] == "warm-up"]
    assert phases[0] == "probe" and len(warm) == pool_at - 1 >= 1
    assert {e["candidate"] for e in warm} == {"plain c4 d1"}
    done = list(itertools.accumulate(e["epochs"] for e in warm))
    asked = [min(2**i, 20 - ([0, *done][i])) for i in range(len(warm))]  # max_epochs / 2 at most
    assert [e["epochs_asked"] for e in warm] == asked
    keys = [(e["val_nauc"], -e["val_loss"]) for e in warm]
    assert all(b > a for a, b in itertools.pairwise(keys[:-1]))  # it stops after no improvement,
    assert done[-1] == 20 or keys[-1] <= keys[-2] or warm[-1]["t"] >= 20  # cap or time
    after = next(e for e in search.events[pool_at + 1 :] if e["candidate"] == "plain c4 d1")
    assert after["total_epochs"] == warm[-1]["total_epochs"] + after["epochs"]  # not a new net


def member_mean(search: AnytimeSearch, x: torch.Tensor) -> np.ndarray:
    """The weighted mean of the ensemble members' own softmax outputs for ``x``."""
    members = [torch.softmax(s.model.eval()(x).double(), 1).detach() for s, _ in search.ensemble]
    return np.average(np.stack(members), axis=0, weights=[w for _, w in search.ensemble])


@pytest.mark.parametrize("rounds", [1, 5])
def test_predictions_come_from_the_selected_ensemble(rounds: int) -> None:
    """Noisy data (validation NAUC well below 1), so that several networks are worth mixing."""
    x, labels = blobs((1, 6, 6), 90, 3, seed=0)
    x = 0.15 * x + 3 * np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    data, y = torch.from_numpy(x), torch.from_numpy(labels.argmax(1))
    config = SearchConfig(pool_size=4, keep=2, width=4, max_epochs=4, ensemble_rounds=rounds)
    search = random_search_to_the_end(data, y, 60, config, seconds=60)
    pool = next(e for e in search.events if e["phase"] == "pool")
    kept = {m["member"] for m in pool["pool"] if m["kept"]}
    assert len(kept) == 2  # snapshots: the probe, the warm-up network and the kept candidates
    assert set(search.snapshots) == {"linear probe", "plain c16 d1", *kept}
    if rounds == 1:
        assert [s for s, _ in search.ensemble] == [search.best]
    else:
        assert len(search.ensemble) > 1 and search.ensemble_key > search.best.key
    np.testing.assert_allclose(search.predict(data[60:]), member_mean(search, data[60:]), rtol=1e-5)
    summary = search.summary()
    assert summary is not None and summary["val_nauc"] == search.ensemble_key[0]


def pool_event(
    pruning: str, config: SearchConfig, proxy: str | None = "nwot"
) -> tuple[AnytimeSearch, dict]:
    """A search on 1 x 8 x 8 blobs of 3 classes run until its pool event, and that event."""
    x, labels = blobs((1, 8, 8), 60, 3, seed=0)
    data, y = torch.from_numpy(x), torch.from_numpy(labels.argmax(1))
    search = AnytimeSearch(
        InputSpec("image", 1, 8, 3),
        (data[:48], y[:48]),
        (data[48:], y[48:]),
        pruning=pruning,
        proxy=proxy if pruning == "proxy" else None,
        seed=0,
        config=config,
    )
    deadline = time.perf_counter() + 30
    while not any(e["phase"] == "pool" for e in search.events):
        search.run(deadline)
    return search, next(e for e in search.events if e["phase"] == "pool")


SMALL_POOL = SearchConfig(
    pool_size=8, plain_widths=(4, 8), plain_depths=(1,), baseline_width=4, width=4, keep=3
)


def test_the_incumbent_and_the_proxys_best_others_enter_the_halving() -> None:
    """The warm-up network (plain c4 d1) is kept whatever its score; the proxy's 2 best others
    join it; with ``keep_incumbent=False`` the proxy's top 3."""
    _, event = pool_event("proxy", replace(SMALL_POOL, min_rung_epochs=0))
    assert event["incumbent"] == "plain c4 d1"
    ranked = [p["member"] for p in sorted(event["pool"], key=lambda p: -p["score"])]
    others = [name for name in ranked if name != "plain c4 d1"]
    kept = {p["member"] for p in event["pool"] if p["kept"]}
    assert kept == {"plain c4 d1", *others[:2]} and not any(p["too_slow"] for p in event["pool"])
    _, event = pool_event("proxy", replace(SMALL_POOL, min_rung_epochs=0, keep_incumbent=False))
    assert event["incumbent"] is None
    assert {p["member"] for p in event["pool"] if p["kept"]} == set(ranked[:3])


@pytest.mark.parametrize("pruning", ["proxy", "random"])
def test_members_too_slow_for_the_budget_are_passed_over(pruning: str) -> None:
    """No member can train 10^9 epochs in its first-rung share: with the warm-up, the incumbent
    goes on alone (no halving); without, the fastest timed member does."""
    slow = replace(SMALL_POOL, min_rung_epochs=10**9)
    search, event = pool_event(pruning, slow)
    kept = [p for p in event["pool"] if p["kept"]]
    assert [p["member"] for p in kept] == ["plain c4 d1"]
    passed = [p for p in event["pool"] if p["too_slow"]]
    assert len(passed) == len(event["pool"]) - 1 and all(p["seconds_per_epoch"] > 0 for p in passed)
    assert event["rung_share_seconds"] < 10**9 * min(p["seconds_per_epoch"] for p in passed)
    while not search.done:
        search.run(time.perf_counter() + 30)
    after = {e["phase"] for e in search.events[search.events.index(event) + 1 :]}
    assert after == {"extend"}  # one network: no rungs
    _, event = pool_event(pruning, replace(slow, warmup_fraction=0.0))
    timed = [p for p in event["pool"] if p["seconds_per_epoch"] is not None]
    assert event["incumbent"] is None and len(timed) == len(event["pool"])
    kept = [p for p in event["pool"] if p["kept"]]
    assert kept == [min(timed, key=lambda p: p["seconds_per_epoch"])] and not kept[0]["too_slow"]


def two_blob_search(pruning: str, **config: float) -> AnytimeSearch:
    """A search on 64 1 x 8 x 8 blobs of 2 classes (validating on its training data), a small
    pool (``config`` overrides ``SearchConfig`` fields)."""
    x, labels = blobs((1, 8, 8), 64, 2, seed=1)
    data, y = torch.from_numpy(x), torch.from_numpy(labels.argmax(1))
    return AnytimeSearch(
        InputSpec("image", 1, 8, 2),
        (data, y),
        (data, y),
        pruning=pruning,
        proxy="nwot" if pruning == "proxy" else None,
        seed=0,
        config=replace(SearchConfig(pool_size=4, keep=2, width=4), **config),
    )


def test_search_stops_at_the_deadline() -> None:
    search = two_blob_search("random")
    deadline = time.perf_counter() + 2.0
    while not search.done:
        search.run(deadline)
    assert time.perf_counter() < deadline + 1.0  # one partial batch and a validation late at most
    assert search.events[-1]["phase"] in ("warm-up", "rung 0", "rung 1", "extend", "runner-up")


@pytest.mark.parametrize("warmup", [1.0, 0.0])
def test_no_search_starts_when_the_time_is_up(warmup: float) -> None:
    """A deadline that only the probe meets: no pool is scored or timed, the search is done."""
    search = two_blob_search("proxy", warmup_fraction=warmup)
    search.run(time.perf_counter() + 0.05)
    search.run(time.perf_counter())  # the time is up by now
    assert search.done and [e["phase"] for e in search.events] == ["probe"]


@pytest.mark.parametrize("pruning", ["baseline", "random"])
def test_model_interface_on_plain_iterables(pruning: str) -> None:
    """Model(metadata) with lists of (example, labels) pairs; (H, W, C) examples accepted."""
    x, labels = blobs((6, 6, 1), 60, 3, seed=2)
    train = list(zip(x[:48], labels[:48], strict=True))
    test = [(example, None) for example in x[48:]]
    model = Model(
        metadata((1, 6, 6, 1), 3, 48),
        pruning=pruning,
        seed=0,
        config=SearchConfig(pool_size=4, keep=2, width=4, max_epochs=8),
    )
    start = time.perf_counter()
    predictions = []
    while not model.done_training and time.perf_counter() - start < 20:
        model.train(train, remaining_time_budget=20 - (time.perf_counter() - start))
        predictions.append(model.test(test))
    assert model.done_training and model.spec.domain == "image"
    for prediction in predictions:
        assert prediction.shape == (12, 3)
        assert prediction.min() >= 0 and prediction.max() <= 1
    assert model.summary()["best"]["name"]


def test_cli_choices_match_search_modes() -> None:
    assert PRUNING_CHOICES == PRUNING_MODES


# ---- predictions and scoring -----------------------------------------------------------------
def test_prediction_files_are_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = np.array([[0.25, 0.75], [1.0, 0.0]])
    path = write_prediction(tmp_path, "toy", 0, first, 1.5)
    prediction, elapsed = read_prediction(path)
    np.testing.assert_allclose(prediction, first)
    assert elapsed == 1.5 and path.name == "toy.predict_0"

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_prediction(tmp_path, "toy", 0, np.zeros((2, 2)), 9.0)
    with pytest.raises(OSError, match="disk full"):
        write_prediction(tmp_path, "toy", 1, np.zeros((2, 2)), 9.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.predict_0"]  # no partial file
    np.testing.assert_allclose(read_prediction(path)[0], first)  # the old file is intact
    monkeypatch.undo()
    with pytest.raises(ValueError, match="finite"):
        write_prediction(tmp_path, "toy", 2, np.array([[np.nan, 1.0]]), 2.0)
    (tmp_path / ".toy.predict_3.abc.tmp").write_text("partial")
    for i in (2, 10):
        write_prediction(tmp_path, "toy", i, first, float(i))
    assert [p.name for p in list_predictions(tmp_path)] == [
        "toy.predict_0",
        "toy.predict_2",
        "toy.predict_10",
    ]


def test_scoring_ignores_predictions_after_the_budget(tmp_path: Path) -> None:
    solution = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    noisy = solution * 0.6 + 0.1
    noisy[0] = [0.1, 0.8, 0.1]  # one mistake
    (tmp_path / "p").mkdir()
    for i, (pred, t) in enumerate([(noisy, 5.0), (solution, 20.0), (1 - solution, 40.0)]):
        write_prediction(tmp_path / "p", "toy", i, pred, t)
    scores = score_run(tmp_path / "p", solution, 30.0, tmp_path / "out", "toy")
    first_nauc = scores["predictions"][0]["nauc"]
    assert scores["alc"] == pytest.approx(alc([5.0, 20.0], [first_nauc, 1.0], 30.0))
    assert scores["final_nauc"] == 1.0 and scores["final_bac"] == 1.0
    assert scores["first_prediction_seconds"] == 5.0 and scores["num_predictions"] == 2
    assert [p["within_budget"] for p in scores["predictions"]] == [True, True, False]
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["alc"] == scores["alc"]
    assert Image.open(tmp_path / "out" / "learning_curve.png").size[0] > 100


@pytest.mark.shared
def test_run_command_on_miniciao(shared_dir: Path, tmp_path: Path) -> None:
    """``zcp autodl run`` end to end: predictions within the budget, scores.json, plot."""
    budget = 12.0
    out = tmp_path / "run"
    result = CliRunner().invoke(
        autodl_group,
        [
            "run",
            str(shared_dir / "autodl" / "miniciao"),
            "--time-budget",
            str(budget),
            "--seed",
            "0",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    files = list_predictions(out / "predictions")
    assert files
    times = []
    for path in files:
        prediction, elapsed = read_prediction(path)
        assert prediction.shape == (18, 10)
        assert prediction.min() >= 0 and prediction.max() <= 1
        np.testing.assert_allclose(prediction.sum(1), 1, rtol=1e-4)
        times.append(elapsed)
    assert times == sorted(times) and times[-1] <= budget
    scores = json.loads((out / "scores.json").read_text())
    assert -1 <= scores["alc"] <= 1 and not math.isnan(scores["alc"])
    assert scores["num_predictions"] == len(files)
    assert scores["first_prediction_seconds"] == pytest.approx(times[0])
    assert (out / "learning_curve.png").stat().st_size > 0
    log = json.loads((out / "ingestion.json").read_text())
    assert log["model"]["domain"] == "image" and log["model"]["input_shape"] == [3, 16, 16]
    assert log["model"]["events"][0]["phase"] == "probe"


# ---- the comparison script -------------------------------------------------------------------
def compare_script() -> ModuleType:
    """``benchmarks/autodl_compare.py`` as a module (benchmarks/ is no package)."""
    path = Path(__file__).parents[1] / "benchmarks" / "autodl_compare.py"
    spec = importlib.util.spec_from_file_location("autodl_compare", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_script_helpers() -> None:
    """Config overrides, disjoint core sets for --parallel, summaries of partial results."""
    script = compare_script()
    config = script.search_config(
        ["keep=3", "plain_widths=", "continued_schedule=false", "halving_fraction=0.3"]
    )
    assert (config.keep, config.plain_widths, config.continued_schedule) == (3, (), False)
    assert config.halving_fraction == 0.3 and config.plain == []
    for bad in (["keep"], ["no_such=1"], ["augment=yes"], ["train=1"]):
        with pytest.raises(ValueError):
            script.search_config(bad)
    cores = sorted(os.sched_getaffinity(0))
    assert script.core_sets(1) == [cores]
    if len(cores) >= 2:
        halves = script.core_sets(2)
        assert sorted(halves[0] + halves[1]) == cores and not set(halves[0]) & set(halves[1])
    with pytest.raises(ValueError):
        script.core_sets(len(cores) + 1)
    run = {"alc": 0.5, "final_nauc": 0.6, "first_prediction_seconds": 1.0}
    runs = [
        {"dataset": "a", "mode": "proxy", **run},
        {"dataset": "a", "mode": "proxy", **run, "alc": 0.7},
        {"dataset": "b", "mode": "random", **run},
    ]
    rows = script.summarise(runs, ["a", "b"], ["proxy", "random"])  # (b, proxy) not run yet
    assert [(r["dataset"], r["mode"], r["runs"]) for r in rows] == [
        ("a", "proxy", 2),
        ("b", "random", 1),
        ("mean over datasets", "proxy", 2),
        ("mean over datasets", "random", 1),
    ]
    assert rows[0]["alc"] == pytest.approx(0.6) and rows[0]["alc_std"] == pytest.approx(0.1)
