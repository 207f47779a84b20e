"""The AutoDL trainer: domains, candidate space, the planner (synthetic timings), the executor,
ingestion, the command line, scoring."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from autodl.cli import StatusLine, autodl_group
from autodl.dataset import AutoDLMetadata, MatrixSpec, load_dataset
from autodl.ingestion import list_predictions, read_prediction, write_prediction
from autodl.metrics import alc, nauc
from autodl.model import Model
from autodl.networks import DENSE_OPS, build_baseline
from autodl.preprocess import (
    InputSpec,
    infer_domain,
    make_input_spec,
    spec_from_metadata,
    stratified_split,
    to_network_input,
)
from autodl.quick import QuickModel, first_step
from autodl.scoring import score_run
from autodl.search import (
    AnytimeSearch,
    NetView,
    Planner,
    Score,
    Snapshot,
    Stop,
    Time,
    Train,
    View,
    aggregate_ranks,
    candidate_space,
    choose,
    default_proxy,
    distinct_cells,
    halving_rungs,
    key_nauc,
    loss_gain_z,
    named_member,
    percentiles,
    portfolio_for,
    probability_key,
    probability_keys,
    proxy_names,
    safe_batch_size,
    select_ensemble,
    utility,
)
from autodl.settings import SearchConfig
from autodl.writer import format_dataset
from zcproxies.cli import main
from zcproxies.errors import UnknownName
from zcproxies.spaces.nb201 import OPS, NasBench201

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


# ---- the candidate space ---------------------------------------------------------------------
def test_distinct_cells_are_connected_isomorphism_classes() -> None:
    for dense, count in ((False, 6461), (True, 124)):
        cells = distinct_cells(dense)
        assert len(cells) == count
        assert len({NB201.canonical_key(a) for a in cells}) == count
        assert not any(NB201.is_disconnected(a) for a in cells)
    assert {OPS[i] for a in distinct_cells(True) for i in a} == set(DENSE_OPS)


def test_candidate_space_order_portfolio_plain_grid_then_cells() -> None:
    """The pool: the named first members, the plain grid, then distinct connected cells in the
    rng's order; the baseline is the grid's c16 d1, built identically."""
    config = SearchConfig(pool_size=40)
    spec = InputSpec("image", 3, 8, 5)
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    first = ["plain c32 d2", cell, "no such member", "plain c8 d1"]
    baseline, pool = candidate_space(spec, config, np.random.default_rng(3), first)
    names = [m.name for m in pool]
    assert names[:3] == ["plain c32 d2", cell, "plain c8 d1"] and len(set(names)) == 40
    assert sorted(n for n in names if n.startswith("plain")) == sorted(
        f"plain c{w} d{d}" for w, d in config.plain
    )
    cells = [NB201.parse(n) for n in names if not n.startswith("plain")]
    assert len({NB201.canonical_key(a) for a in cells}) == len(cells) == 34
    assert not any(NB201.is_disconnected(a) for a in cells)
    again = candidate_space(spec, config, np.random.default_rng(3), first)[1]
    other = candidate_space(spec, config, np.random.default_rng(4), first)[1]
    assert [m.name for m in again] == names != [m.name for m in other]
    assert baseline.name == "plain c16 d1" and baseline in pool
    torch.manual_seed(0)
    reference = build_baseline(spec, 16)
    torch.manual_seed(0)
    twin = baseline.build(spec)
    pairs = list(zip(twin.parameters(), reference.parameters(), strict=True))
    assert all(a.shape == b.shape and torch.equal(a, b) for a, b in pairs)
    tabular = candidate_space(
        InputSpec("tabular", 20, 0, 5), replace(config, pool_size=500), np.random.default_rng(0)
    )[1]
    assert len(tabular) == 124 + 6  # every dense cell class and the plain MLPs
    mlp = named_member("plain c8 d2", "tabular", config).build(InputSpec("tabular", 20, 0, 5))
    assert [m.out_features for m in mlp if isinstance(m, torch.nn.Linear)] == [128, 128, 64, 5]
    assert named_member(cell, "tabular", config) is None  # a 3x3 conv has no dense path
    series = InputSpec("timeseries", 5, 0, 3, length=20)
    baseline, pool = candidate_space(
        series, config, np.random.default_rng(0), ["tcn w16 d1 k3 plain avg"]
    )
    assert [m.name for m in pool[:2]] == ["tcn w16 d1 k3 plain avg", baseline.name]
    assert {m.family for m in pool} == {"temporal"} and len(pool) == 40
    assert pool[0].build(series)(torch.randn(2, 5, 20, 1)).shape == (2, 3)
    assert named_member("tcn w16 d1 k3 plain avg", "text", config) is None  # text has e<embed>
    with pytest.raises(ValueError, match="no candidate space"):
        candidate_space(InputSpec("graph", 20, 0, 5), config, np.random.default_rng(0))


@pytest.mark.parametrize(
    "spec",
    [InputSpec("image", 1, 8, 7), InputSpec("video", 12, 4, 7, 4), InputSpec("tabular", 20, 0, 7)],
)
def test_networks_adapt_to_channels_and_classes(spec: InputSpec) -> None:
    x = torch.randn(3, *spec.shape)
    config = SearchConfig(pool_size=10, plain_widths=(4,), cell_width=4, cells_per_stage=2)
    baseline, pool = candidate_space(spec, config, np.random.default_rng(0))
    nets = [m.build(spec) for m in [baseline, *pool]]
    for net in nets:
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


# ---- the planner, on synthetic timings -------------------------------------------------------
POOL = ("a", "b", "c", "d", "e", "f")
TINY = SearchConfig(first_batch=4, keep=3, max_epochs=40, min_epochs=4, target_epochs=32)


def test_utility_and_choose_by_branch_and_bound() -> None:
    """utility = r - 0.25 log2(32 / E), None below 4 epochs; choose times only members that
    could still win and returns the k best."""
    assert utility(0.9, 1.0, 64.0, TINY) == pytest.approx(0.9)  # 64 epochs: no penalty
    assert utility(0.9, 1.0, 8.0, TINY) == pytest.approx(0.9 - 0.25 * 2)  # 8 epochs: 2 halvings
    assert utility(0.9, 1.0, 3.9, TINY) is None
    ranks = {"a": 1.0, "b": 0.75, "c": 0.5, "d": 0.25}
    assert choose(ranks, {}, 100.0, 1, TINY) == "a"  # the best r is timed first
    assert choose(ranks, {"a": 1.0}, 100.0, 1, TINY) == ["a"]  # no one can beat u = r = 1
    assert choose(ranks, {"a": 10.0}, 100.0, 1, TINY) == "b"  # a: 10 epochs, u = 0.58 < 0.75
    costs = {"a": 10.0, "b": 1.0}
    assert choose(ranks, costs, 100.0, 1, TINY) == ["b"]
    assert choose(ranks, costs, 100.0, 2, TINY) == ["b", "a"]  # c's bound .5 < a's .58
    assert choose(ranks, {n: 100.0 for n in ranks}, 100.0, 1, TINY) == ["a"]  # none affordable:
    # the fastest (all equal: the first)


def drive(planner: Planner, view: View, results: dict) -> list:
    """Run ``planner`` on a fake executor until Stop: Score gives ``results["scores"]``, Time
    ``results["costs"]``, Train adds epochs, costs seconds and gives the key of
    ``results["curve"](name, epochs)``; returns the actions."""
    scores, costs, nets = dict(view.scores), dict(view.costs), dict(view.nets)
    left, actions = view.left, []
    for _ in range(10_000):
        action = planner.next(View(left, view.pool, scores, costs, nets))
        actions.append(action)
        if isinstance(action, Stop):
            return actions
        if isinstance(action, Score):
            scores.update({n: results["scores"][n] for n in action.names})
            left -= 0.1 * len(action.names)
        elif isinstance(action, Time):
            costs[action.name] = results["costs"][action.name]
            left -= 0.05
        else:
            net = nets.get(action.name, NetView())
            cost = costs[action.name]
            epochs = net.epochs + action.epochs
            nets[action.name] = NetView(
                epochs, action.epochs, results["curve"](action.name, epochs)
            )
            costs[action.name] = cost
            left -= cost * action.epochs
    raise AssertionError("the planner never stopped")


def saturating(name: str, epochs: int) -> tuple[float, float]:
    """A learning curve that rises until 16 epochs and stays there (ties broken by name)."""
    return (min(epochs, 16) / 16 * (0.5 + 0.1 * (ord(name[0]) % 5)), 0.0)


RANKED_UNIFORM = {  # the proxy ranks the pool in order, every member at 0.1 s per epoch
    "scores": dict(zip(POOL, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0], strict=True)),
    "costs": dict.fromkeys(POOL, 0.1),
    "curve": saturating,
}


def test_planner_baseline_mode_trains_one_network_in_doubling_chunks() -> None:
    planner = Planner(TINY, "baseline", "b")
    actions = drive(planner, View(100.0, POOL), {"costs": {"b": 0.5}, "curve": saturating})
    assert actions[0] == Time("b")
    chunks = [a for a in actions if isinstance(a, Train)]
    assert [a.epochs for a in chunks] == [1, 2, 4, 8, 16, 9]  # up to max_epochs = 40
    assert {a.name for a in chunks} == {"b"} and actions[-1] == Stop("plan done")
    assert not any(isinstance(a, Score) for a in actions)


@pytest.mark.parametrize(("left", "first"), [(10.0, "c"), (3000.0, "a")])
def test_the_proxy_picks_the_first_network_by_cost_and_budget(left: float, first: str) -> None:
    """Time for one network only: the proxy's favourite (a: 2 s/epoch) would get 5 epochs
    (utility 1 - 0.25 log2(32 / 5) = .33), b 6 (.17), c (third by proxy, 0.1 s/epoch) 95 (.5):
    c; with a large budget a trains its 32 epochs and more: a."""
    results = {
        "scores": dict(zip(POOL, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0], strict=True)),
        "costs": {"a": 2.0, "b": 1.5, "c": 0.1, "d": 0.1, "e": 0.1, "f": 0.1},
        "curve": saturating,
    }
    planner = Planner(TINY, "proxy", "b")
    actions = drive(planner, View(left, POOL), results)
    assert actions[0] == Score(("a", "b", "c", "d"), 0.1 * left)  # the batch, one slice
    choice = planner.decisions[0]
    assert choice["choice"] == "first" and choice["picked"] == [first]
    timed = [a.name for a in actions if isinstance(a, Time)]
    assert timed[: len(choice["timed"])] == [t["member"] for t in choice["timed"]]
    assert len(choice["timed"]) == (3 if first == "c" else 1)  # bound: d is never timed
    first_chunks = [a for a in actions if isinstance(a, Train) and a.phase == "first"]
    assert {a.name for a in first_chunks} == {first}
    assert [a.epochs for a in first_chunks][:3] == [1, 2, 4]
    # 1, 2, 4, 8 improve, the last chunk stops at max_epochs / 2 = 20
    assert [a.epochs for a in first_chunks] == [1, 2, 4, 8, 5]
    later = actions[actions.index(first_chunks[-1]) + 1 :]
    assert later[0] == Score(("e", "f"), later[0].cap)  # the rest of the pool
    assert isinstance(later[-1], Stop)


def test_the_first_choice_starts_from_a_slice_and_is_revised_between_chunks() -> None:
    """first_slice = 2, 10 s: a and b are scored; a (r = 1, 2 s/epoch: 4.9 epochs, u = .32)
    beats b (r = .5, 1.5 s/epoch: u < 0) and trains at once. Its first chunk's 2 s pay for
    scoring c and d, and the choice is revised to c (r = .5 among four, 0.1 s/epoch: u = .5;
    a has under 4 epochs left now); c is what the whole batch would have given at once."""
    results = {
        "scores": dict(zip(POOL, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0], strict=True)),
        "costs": {"a": 2.0, "b": 1.5, "c": 0.1, "d": 0.1, "e": 0.1, "f": 0.1},
        "curve": saturating,
    }
    planner = Planner(replace(TINY, first_slice=2), "proxy", "b")
    actions = drive(planner, View(10.0, POOL), results)
    assert actions[:3] == [Score(("a", "b"), 1.0), Time("a"), Time("b")]
    assert actions[3] == Train("a", 1, actions[3].cap, "first")
    assert actions[4] == Score(("c", "d"), 2.0)  # the batch's rest, for as long as the chunk
    firsts = [d for d in planner.decisions if d["choice"] == "first"]
    assert [(d["replaces"], d["picked"]) for d in firsts] == [(None, ["a"]), ("a", ["c"])]
    first_chunks = [a for a in actions if isinstance(a, Train) and a.phase == "first"]
    assert [(a.name, a.epochs) for a in first_chunks][:3] == [("a", 1), ("c", 1), ("c", 2)]
    later = Planner(replace(TINY, first_slice=2), "proxy", "b")  # time to spare: a stays
    drive(later, View(3000.0, POOL), results)
    assert [d["picked"] for d in later.decisions if d["choice"] == "first"] == [["a"]]


def test_the_plan_after_the_first_network_halving_extension_then_brackets() -> None:
    """With time to spare: halving of the first network and 2 challengers, extension while
    chunks improve, then a bracket of the next 3 by proxy, until the pool is used up."""
    results = RANKED_UNIFORM
    planner = Planner(TINY, "proxy", "b")
    actions = drive(planner, View(1000.0, POOL), results)
    trains = [a for a in actions if isinstance(a, Train)]
    bracket1 = next(i for i, a in enumerate(trains) if a.name in "def")
    first, later = trains[:bracket1], trains[bracket1:]
    phases = list(dict.fromkeys(a.phase for a in first))
    assert phases == ["first", "rung 0", "rung 1", "extend", "runner-up"]
    choices = [(d["choice"], d["picked"]) for d in planner.decisions]
    assert choices == [
        ("first", ["a"]),
        ("challengers", ["b", "c"]),
        ("bracket 1", ["d", "e", "f"]),
    ]
    rung0 = [a for a in first if a.phase == "rung 0"]
    assert {a.name for a in rung0} == {"a", "b", "c"}
    assert [a.epochs for a in rung0 if a.name == "b"][:3] == [1, 2, 4]  # any-time doubling
    rung1 = {a.name for a in first if a.phase == "rung 1"}
    assert rung1 == {"c"}  # the saturating curve tops at 0.7, 0.8, 0.9 for a, b, c
    extend = [a for a in first if a.phase == "extend"]
    assert [a.name for a in extend] == ["c"]  # saturated at 16 epochs: one chunk, no gain
    assert next(a.name for a in first if a.phase == "runner-up") == "b"  # best key first
    assert {a.name for a in later if a.phase == "rung 0"} == {"d", "e", "f"}
    assert all(a.epochs <= TINY.max_epochs for a in trains)
    assert actions[-1] == Stop("pool done")


def test_a_later_bracket_waits_for_time_and_baseline_mode_has_none() -> None:
    """A bracket starts only with members that can train min_epochs in its share (0.1 s per
    epoch: 4.8 s left); at 5 s in all there is none after the first network, at 15 s the
    challengers and a second bracket train; the baseline never searches."""
    results = RANKED_UNIFORM
    for left, picked in [(5.0, [[], []]), (15.0, [["b", "c"], ["d", "e", "f"]])]:
        planner = Planner(TINY, "proxy", "b")
        actions = drive(planner, View(left, POOL), results)
        assert [d["picked"] for d in planner.decisions[1:]] == picked
        assert actions[-1] == Stop("plan done" if left == 5.0 else "pool done")
        trained = {a.name for a in actions if isinstance(a, Train)}
        assert trained == {"a", *itertools.chain(*picked)}
    baseline = Planner(TINY, "baseline", "b")
    actions = drive(baseline, View(1000.0, POOL), results)
    assert {a.name for a in actions if isinstance(a, Train)} == {"b"}
    assert actions[-1] == Stop("plan done")


def test_random_pruning_draws_ranks_from_its_seed_and_never_scores() -> None:
    results = {"costs": dict.fromkeys(POOL, 0.1), "curve": saturating}
    firsts = set()
    for seed in range(6):
        planner = Planner(TINY, "random", "b", seed)
        actions = drive(planner, View(100.0, POOL), results)
        assert not any(isinstance(a, Score) for a in actions)
        firsts.add(planner.decisions[0]["picked"][0])
        again = Planner(TINY, "random", "b", seed)
        assert drive(again, View(100.0, POOL), results) == actions
    assert len(firsts) > 1 and firsts <= set(POOL[:4])  # from the first batch


def test_the_portfolio_gives_the_first_network_without_scoring() -> None:
    results = {
        "scores": dict.fromkeys(POOL, 1.0),
        "costs": dict.fromkeys(POOL, 0.1),
        "curve": saturating,
    }
    planner = Planner(TINY, "proxy", "b", first_order=["d", "a"])
    actions = drive(planner, View(100.0, POOL), results)
    assert planner.decisions[0]["picked"] == ["d"] and actions[0] == Time("d")
    first_score = next(a for a in actions if isinstance(a, Score))
    assert actions.index(first_score) > actions.index(Time("d"))


def test_the_planner_stops_when_no_time_is_left() -> None:
    planner = Planner(TINY, "proxy", "b")
    assert isinstance(planner.next(View(10.0, POOL)), Score)
    assert planner.next(View(0.0, POOL)) == Stop("time")
    with pytest.raises(ValueError, match="pruning"):
        Planner(TINY, "greedy", "b")


def test_percentiles() -> None:
    assert percentiles({"a": 3.0, "b": 1.0, "c": 2.0, "d": 2.0}) == {
        "a": 1.0,
        "b": 0.25,
        "c": 0.625,
        "d": 0.625,
    }


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


def test_a_small_validation_split_ranks_by_cross_entropy_first() -> None:
    """Four examples: C ranks all pairs right at near-chance probabilities (NAUC 1, loss .66),
    D ranks 3 of 4 with more confidence (NAUC .5, loss .50). NAUC first picks C; on a small
    split the loss first picks D (NAUC would only break ties)."""
    y = np.array([0, 0, 1, 1])
    c = np.array([0.48, 0.49, 0.51, 0.52])
    d = np.array([0.01, 0.3, 0.2, 0.99])
    probs = [np.column_stack([1 - p, p]) for p in (c, d)]
    for loss_first, best in [(False, 0), (True, 1)]:
        own = [probability_key(p, y, 2, loss_first) for p in probs]
        counts, key = select_ensemble(probs, own, y, 2, rounds=1, loss_first=loss_first)
        assert counts == [best == 0, best == 1]
        assert key_nauc(key, loss_first) == pytest.approx([1.0, 0.5][best])
    assert probability_key(probs[1], y, 2, True) == pytest.approx(
        (np.log([0.99, 0.7, 0.2, 0.99]).mean(), 0.5)
    )


def test_a_small_validation_split_lets_the_first_network_reach_its_target_epochs() -> None:
    """A first network whose validation dips after 3 epochs (noise on a small split): with a
    usable split it stops there and the search goes on; on a small one it trains on to
    target_epochs = 32 and stops at its first chunk without gain after that."""

    def dipping(name: str, epochs: int) -> tuple[float, float]:
        return ({1: 0.1, 3: 0.0}.get(epochs, min(epochs, 31) / 100), 0.0)

    results = {**RANKED_UNIFORM, "curve": dipping}
    config = replace(TINY, max_epochs=200)
    for small, chunks in [(False, [1, 2]), (True, [1, 2, 4, 8, 16, 32])]:
        planner = Planner(config, "proxy", "b", small_validation=small)
        actions = drive(planner, View(3000.0, POOL), results)
        first = [a for a in actions if isinstance(a, Train) and a.phase == "first"]
        assert [a.epochs for a in first] == chunks and {a.name for a in first} == {"a"}
        assert isinstance(actions[-1], Stop)


# ---- the executor ----------------------------------------------------------------------------
def image_search(pruning: str, n: int = 80, **config: object) -> AnytimeSearch:
    """A search on 1 x 6 x 6 blobs of 3 classes (the first 54 train, the rest validate: 26,
    enough for the NAUC-first order by default)."""
    x, labels = blobs((1, 6, 6), n, 3, seed=0)
    data, y = torch.from_numpy(x), torch.from_numpy(labels.argmax(1))
    base = SearchConfig(
        pool_size=12,
        first_batch=6,
        plain_widths=(4, 8),
        plain_depths=(1,),
        baseline_width=4,
        cell_width=4,
        keep=3,
        max_epochs=12,
    )
    spec = InputSpec("image", 1, 6, 3)
    return AnytimeSearch(
        spec,
        (data[:54], y[:54]),
        (data[54:], y[54:]),
        pruning=pruning,
        proxy="synflow+nwot" if pruning == "proxy" else None,
        seed=0,
        config=replace(base, **config),
        quick=QuickModel.fit(x[:54], labels[:54].argmax(1), spec),
    )


def run_to_the_end(search: AnytimeSearch, seconds: float = 60.0) -> int:
    deadline, improvements = time.perf_counter() + seconds, 0
    while not search.done:
        improvements += search.run(deadline)
    return improvements


@pytest.mark.parametrize(
    "pruning",
    ["proxy", pytest.param("random", marks=pytest.mark.slow)],  # fast loop: one
)
def test_the_executor_carries_out_the_plan(pruning: str) -> None:
    """End to end on real networks: the quick model, (scores), a first network chosen among
    the first batch (proxy: from its first slice, revised as the rest is scored between its
    chunks), the halving, extension; every network's chunks logged; predictions from the
    ensemble."""
    search = image_search(pruning)
    run_to_the_end(search)
    phases = [e["phase"] for e in search.events]
    assert phases[0] == "quick" and phases[-1] == "stop"
    assert search.events[0]["val_nauc"] == search.snapshots["quick ridge"].key[0]
    assert ("score" in phases) == (pruning == "proxy")
    firsts = [e for e in search.events if e["phase"] == "choice" and e["choice"] == "first"]
    assert firsts[0]["replaces"] is None
    assert all(a["picked"][0] == b["replaces"] for a, b in itertools.pairwise(firsts))
    batch = [m.name for m in search.pool[:6]]
    assert all(e["picked"][0] in batch for e in firsts)
    trained = [e for e in search.events if e["phase"] == "first"]
    assert trained and {e["candidate"] for e in trained} <= {e["picked"][0] for e in firsts}
    if pruning == "proxy":
        scored = [e for e in search.events if e["phase"] == "score"]
        assert scored[0]["scored"] == 4 and sum(e["scored"] for e in scored) == 12  # a slice
        assert phases.index("score") < phases.index("first")
        assert firsts[0]["timed"][0]["r"] == 1.0 or firsts[0]["timed"][0]["utility"] is None
    else:
        assert len(firsts) == 1
    assert search.status()["networks"] >= 2
    probabilities = search.predict(torch.zeros(5, 1, 6, 6))
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)
    assert search.ensemble_key >= max(s.key for s, _ in search.ensemble)
    keys = [e["ensemble_val_nauc"] for e in search.events if "ensemble_val_nauc" in e]
    assert keys == sorted(keys)  # the ensemble never gets worse


@pytest.mark.parametrize(("n", "small"), [(72, True), (80, False)])
def test_the_validation_split_size_picks_the_order(n: int, small: bool) -> None:
    """18 validation examples (below small_validation = 20): the loss-first order, in the
    executor and its planner; 26: NAUC first. The status and summary report NAUC either way;
    the status also the cross-entropy where it ranks first."""
    search = image_search("baseline", n=n)
    assert search.loss_first is small and search.planner.small_validation is small
    run_to_the_end(search)
    status = search.status()
    nauc = status["val_nauc"]
    assert nauc == key_nauc(search.ensemble_key, small) == search.summary()["val_nauc"]
    assert -1.0 <= nauc <= 1.0
    assert ("val_loss" in status) is small
    if small:
        assert status["val_loss"] == -search.ensemble_key[0] > 0


def test_the_loss_gain_statistic_is_the_paired_t_statistic() -> None:
    """``loss_gain_z``: scipy's paired t statistic of the per-example cross-entropies; the
    degenerate cases (equal gains, no gain, a non-finite current ensemble) are infinite."""
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    before, after = rng.dirichlet(np.ones(3), 40), rng.dirichlet(np.ones(3), 40)
    losses = [-np.log(p[np.arange(40), y]) for p in (before, after)]
    assert loss_gain_z(before, after, y) == pytest.approx(ttest_rel(*losses).statistic)
    assert loss_gain_z(before, before, y) == -math.inf
    sharper = before.copy()
    sharper[np.arange(40), y] *= 2  # every example gains log 2 (after normalising: not alike)
    assert loss_gain_z(before, sharper / sharper.sum(1, keepdims=True), y) > 1.645
    assert loss_gain_z(np.full((40, 3), np.nan), after, y) == math.inf


@pytest.mark.parametrize(("adopt_z", "adopted"), [(0.0, True), (1.645, False)])
def test_a_gain_within_the_noise_does_not_replace_the_prediction(
    adopt_z: float, adopted: bool
) -> None:
    """A snapshot whose validation key beats the quick model's on a tie-breaking loss gain that
    the paired test cannot tell from noise is adopted only with the gate off (``adopt_z`` 0);
    held, the prediction stays and a ``hold`` event says why. A clear gain is adopted."""
    search = image_search("baseline", adopt_z=adopt_z, ensemble_rounds=1)
    y, quick = search._val_labels, search.ensemble_probs
    assert quick is not None and [s.name for s, _ in search.ensemble] == ["quick ridge"]
    # the quick model's probabilities, one validation example a little surer of its class
    probs = quick.copy()
    probs[0] = 0.9 * probs[0] + 0.1 * np.eye(3)[y[0]]
    key = probability_key(probs, y, 3)
    assert key > search.ensemble_key and loss_gain_z(quick, probs, y) < 1.645
    search.snapshots["noise"] = Snapshot("noise", torch.nn.Identity(), 1, probs, key)
    assert search._reselect() is adopted
    assert [s.name for s, _ in search.ensemble] == ["noise" if adopted else "quick ridge"]
    assert (search.events[-1]["phase"] == "hold") is not adopted
    clear = 0.5 * quick + 0.5 * np.eye(3)[y]
    key = probability_key(clear, y, 3)
    search.snapshots["clear"] = Snapshot("clear", torch.nn.Identity(), 1, clear, key)
    assert search._reselect() and [s.name for s, _ in search.ensemble] == ["clear"]
    np.testing.assert_allclose(search.ensemble_probs, clear)


@pytest.mark.parametrize("loss_first", [False, True])
def test_keys_at_once_equal_the_keys_one_by_one(loss_first: bool) -> None:
    """``probability_keys`` (what selection uses) equals ``probability_key`` to the last bit,
    ties in the probabilities, a class absent or alone and non-finite sets included."""
    rng = np.random.default_rng(0)
    for trial in range(200):
        n, k, m = int(rng.integers(2, 120)), int(rng.integers(2, 12)), int(rng.integers(1, 6))
        y = np.zeros(n, dtype=np.int64) if trial % 7 == 0 else rng.integers(0, k, n)
        stack = rng.dirichlet(np.ones(k), (m, n))
        if trial % 3 == 0:
            stack = stack.round(1)
        if trial % 11 == 0:
            stack[0, 0, 0] = np.nan
        expected = [probability_key(p, y, k, loss_first) for p in stack]
        assert probability_keys(stack, y, k, loss_first) == expected


@pytest.mark.parametrize("rounds", [1, 5])
def test_predictions_come_from_the_selected_ensemble(rounds: int) -> None:
    """Noisy data (validation NAUC well below 1), so that several networks and the quick model
    are worth mixing; the prediction is the weighted mean of the members' probabilities."""
    x, labels = blobs((1, 6, 6), 90, 3, seed=0)
    x = 0.15 * x + 3 * np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    data, y = torch.from_numpy(x), torch.from_numpy(labels.argmax(1))
    config = SearchConfig(
        pool_size=6,
        first_batch=4,
        keep=2,
        cell_width=4,
        max_epochs=4,
        ensemble_rounds=rounds,
        adopt_z=0.0,  # every selection with a higher key is adopted (the gate: its own test)
    )
    spec = InputSpec("image", 1, 6, 3)
    search = AnytimeSearch(
        spec,
        (data[:60], y[:60]),
        (data[60:], y[60:]),
        pruning="random",
        seed=0,
        config=config,
        quick=QuickModel.fit(x[:60], labels[:60].argmax(1), spec),
    )
    run_to_the_end(search)
    if rounds == 1:
        assert [s for s, _ in search.ensemble] == [search.best]
    else:  # the mix is data- and thread-dependent; it is never below its best member
        assert search.ensemble_key >= search.best.key and len(search.snapshots) >= 3

    def probabilities(model: torch.nn.Module | QuickModel) -> np.ndarray:
        if isinstance(model, QuickModel):
            return model.predict(x[60:])
        return torch.softmax(model.eval()(data[60:]).double(), 1).detach().numpy()

    members = [probabilities(s.model) for s, _ in search.ensemble]
    mean = np.average(np.stack(members), axis=0, weights=[w for _, w in search.ensemble])
    np.testing.assert_allclose(search.predict(data[60:]), mean, rtol=1e-5)
    summary = search.summary()
    assert summary is not None and summary["val_nauc"] == search.ensemble_key[0]


def test_search_stops_at_the_deadline() -> None:
    search = image_search("random", max_epochs=10**6)
    deadline = time.perf_counter() + 2.0
    while not search.done:
        search.run(deadline)
    assert time.perf_counter() < deadline + 1.0  # one partial batch and a validation late at most
    assert search.events[-1] == {**search.events[-1], "phase": "stop", "reason": "time"}


def test_on_event_reports_every_event() -> None:
    seen: list[dict] = []
    search = image_search("baseline")
    search.on_event = seen.append
    run_to_the_end(search)
    assert search.events[0]["phase"] == "quick"  # logged when built, before on_event was set
    assert seen == search.events[1:] and search.status()["phase"].startswith("done")


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
        config=SearchConfig(pool_size=4, first_batch=4, keep=2, cell_width=4, max_epochs=8),
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
    assert model.summary()["best"]["name"] and model.summary()["threads"] >= 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_without_a_gpu_is_one_error_line(tmp_path: Path) -> None:
    """--device cuda on a machine without CUDA: an `error:` line after prediction 0, exit 1 (the
    CUDA path itself, float16 autocast and loss scaling in zcproxies.train, needs the GPU)."""
    root = small_dataset(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "autodl",
            "run",
            str(root),
            "--time-budget",
            "30",
            "--device",
            "cuda",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
            "--clock",
            "command",
        ],
    )
    assert result.exit_code == 1 and "CUDA is not available" in result.output
    assert "Traceback" not in result.output


# ---- the command line ------------------------------------------------------------------------
def small_dataset(tmp_path: Path) -> Path:
    """A 3-class image dataset of 60 8 x 8 blobs in the AutoDL format (48 train, 12 test)."""
    x, labels = blobs((8, 8, 1), 60, 3, seed=4)
    pixels = np.clip(40 * x + 128, 0, 255).astype(np.uint8)
    return format_dataset(pixels, labels.argmax(1), tmp_path, "blobs", test_fraction=0.2)


def test_a_corrupt_test_split_stops_the_run_before_training(tmp_path: Path) -> None:
    """One flipped byte in a test record's image: `error:` naming the record, exit status 2,
    no prediction and no training (the data CRC check fails while reading it)."""
    root = small_dataset(tmp_path)
    shard = next((root / "blobs.data" / "test").glob("sample*"))
    data = bytearray(shard.read_bytes())
    data[40] ^= 0xFF  # inside the first record's data
    shard.write_bytes(bytes(data))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["autodl", "run", str(root), "--time-budget", "30", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and "record 0" in result.output
    assert "Traceback" not in result.output and not list_predictions(out / "predictions")


@pytest.mark.slow  # a fresh `zcp autodl run` process (about 10 s)
def test_ctrl_c_keeps_and_scores_the_predictions(tmp_path: Path) -> None:
    """SIGINT in the middle of `zcp autodl run`: exit status 130, one line saying so, the
    predictions written so far kept and scored, no traceback. The command starts with SIGINT
    at its default, as a terminal's Ctrl-C finds it: a suite run in the background of a
    non-interactive shell inherits SIGINT ignored, and Python (rightly) keeps it ignored."""
    root, out = small_dataset(tmp_path), tmp_path / "run"
    command = [sys.executable, "-m", "zcproxies.cli", "autodl", "run", str(root)]
    process = subprocess.Popen(
        [*command, "--time-budget", "120", "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline, predictions = time.monotonic() + 60, out / "predictions"
    while time.monotonic() < deadline:
        if predictions.is_dir() and len(list_predictions(predictions)) >= 2:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert "interrupted (Ctrl-C)" in stderr and "Traceback" not in stderr + stdout
    scores = json.loads((out / "scores.json").read_text())
    assert scores["num_predictions"] >= 2


@pytest.mark.slow  # a fresh `zcp autodl run` process (15 s): the full suite runs it
def test_the_first_prediction_comes_before_torch_is_imported(tmp_path: Path) -> None:
    """In a fresh process: prediction 0 (the quick model's) is written while torch is not yet
    imported, and it is informative; the run goes on to networks' predictions."""
    root = small_dataset(tmp_path)
    script = f"""
import sys, json
from autodl.ingestion import run_ingestion
seen = []
def status(info):
    seen.append((info["predictions"], "torch" in sys.modules))
run_ingestion({str(root)!r}, {str(tmp_path / "run")!r}, 90.0, pruning="baseline", threads=1,
              config={{"max_epochs": 4}}, on_status=status)
print(json.dumps(seen))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    seen = json.loads(done.stdout.splitlines()[-1])
    assert [1, False] in seen  # prediction 0 is out, torch not imported
    assert seen[-1][1]  # then the search
    first, _ = read_prediction(tmp_path / "run" / "predictions" / "blobs.predict_0")
    assert nauc(load_dataset(root).test_solution, first) > 0.5
    events = json.loads((tmp_path / "run" / "ingestion.json").read_text())["model"]["events"]
    assert [e["phase"] for e in events[:2]] == ["quick", "extend"]


def test_zcp_help_imports_no_torch() -> None:
    """`zcp --help`, `zcp autodl --help` and `zcp autodl run --help` in a fresh process leave
    torch unimported (the lazy commands' static help: tests/test_layering.py)."""
    for args in (["--help"], ["autodl", "--help"], ["autodl", "run", "--help"]):
        code = (
            "import sys; from zcproxies.cli import main\n"
            f"try: main({args!r})\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'"
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)


def test_usage_errors_are_one_error_line(tmp_path: Path) -> None:
    """A bad argument, option or command of a zcp subcommand: one `error:` line naming it and
    where the help is, exit 2 (click's own layout was three lines and a blank)."""
    missing = str(tmp_path / "missing")
    for args, said in [
        (["autodl", "run", missing], "'DATASET_DIR'"),
        (["batch", missing, "--out", str(tmp_path / "out")], "'UPLOADS_DIR'"),
        (["autodl", "run", str(tmp_path), "--pruning", "best"], "'--pruning'"),
        (["autodl", "fly"], "No such command 'fly'"),
        (["--bogus"], "No such option '--bogus'"),
    ]:
        result = CliRunner().invoke(main, args)
        lines = result.stderr.splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert lines[0].startswith("error: ") and said in lines[0] and "--help')" in lines[0]
    settings = ["--time-budget", "5", "--set", "nosuch=1"]
    bad = CliRunner().invoke(main, ["autodl", "run", str(tmp_path), *settings])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: unknown search setting 'nosuch'")
    settings = ["--time-budget", "5", "--set", "adopt_z=abc"]
    bad = CliRunner().invoke(main, ["autodl", "run", str(tmp_path), *settings])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: adopt_z='abc': a number, e.g.")
    bare = CliRunner().invoke(main, ["autodl"])  # a group without a command: its help, as before
    assert bare.exit_code == 2 and "Commands:" in bare.output and "error:" not in bare.output


def test_status_line_on_a_pipe_prints_phase_changes(tmp_path: Path) -> None:
    path = tmp_path / "status.txt"
    with path.open("w") as stream:
        status = StatusLine(stream, every=10.0)
        info = {"phase": "quick", "networks": 1, "scored": 0, "pool": 256, "predictions": 1}
        status.update({**info, "elapsed": 0.5, "val_nauc": None})
        status.update({**info, "elapsed": 1.0, "val_nauc": 0.4})  # same phase, too soon
        status.update({**info, "phase": "first", "elapsed": 2.0, "val_nauc": 0.61})
        status.update({**info, "phase": "first", "elapsed": 13.0, "val_nauc": 0.7})
        status.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and not status.tty
    assert (
        lines[0] == "   0.5 s | quick | 1 networks | 0/256 scored | 1 predictions | best val NAUC -"
    )
    assert lines[2].endswith("best val NAUC 0.700") and lines[2].startswith("  13.0 s | first")
    # a small split ranks by the cross-entropy first: that is what is best, NAUC in brackets
    small = {**info, "elapsed": 3.0, "val_nauc": 0.238, "val_loss": 1.2345}
    assert StatusLine.render(small).endswith("best val loss 1.234 (NAUC 0.238)")
    assert StatusLine.render({**small, "val_loss": None, "val_nauc": None}).endswith(
        "best val loss - (NAUC -)"
    )


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
    """``zcp autodl run`` end to end: the quick model first, predictions within the budget,
    status lines, threads recorded, scores.json, plot."""
    budget = 12.0
    out = tmp_path / "run"
    dataset = shared_dir / "autodl" / "miniciao"
    result = CliRunner().invoke(
        autodl_group,
        [
            *("run", str(dataset), "--time-budget", str(budget), "--seed", "0"),
            *("--out", str(out), "--clock", "command", "--threads", "1"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 thread(s)" in result.output and "best val NAUC" in result.output
    train, test, _ = load_dataset(dataset)
    config = SearchConfig()
    spec = spec_from_metadata(train.metadata, config.max_size_cpu, config.max_frames)
    first = first_step(train, spec, config, 0, test)
    np.testing.assert_allclose(
        read_prediction(out / "predictions" / "miniciao.predict_0")[0],
        first.quick.predict(first.test_inputs),
        rtol=1e-6,
        atol=1e-8,
    )
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
    assert log["model"]["events"][0]["phase"] == "quick" and log["model"]["threads"] == 1
    assert log["prediction_0"] == "quick model" and log["quick_model"]["ridge"] > 0


# ---- the comparison script -------------------------------------------------------------------
def compare_script(name: str = "autodl_compare") -> ModuleType:
    """``benchmarks/<name>.py`` as a module (benchmarks/ is no package)."""
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_search_config_overrides() -> None:
    config = SearchConfig().with_overrides(
        {"keep": "3", "plain_widths": "", "augment": "false", "halving_fraction": "0.3"}
    )
    assert (config.keep, config.plain_widths, config.augment) == (3, (), False)
    assert config.halving_fraction == 0.3 and config.plain == []
    for bad in ({"keep": "x"}, {"no_such": "1"}, {"augment": "yes"}, {"train": "1"}):
        with pytest.raises(ValueError):
            SearchConfig().with_overrides(bad)


def test_compare_script_helpers() -> None:
    """Command lines, core sets, summaries of partial results, the paired bootstrap."""
    script = compare_script()
    command = script.run_command(Path("d"), Path("o"), 60.0, "portfolio", 2, "cpu", 1, ["keep=2"])
    assert command[1:5] == ["-m", "zcproxies.cli", "autodl", "run"]
    assert "--portfolio" in command and command[command.index("--pruning") + 1] == "proxy"
    assert command[-2:] == ["--set", "keep=2"] and "--quiet" in command
    assert "--proxy" in script.run_command(Path("d"), Path("o"), 60, "proxy:nwot", 0, "cpu", 1, [])
    cores = sorted(os.sched_getaffinity(0))
    assert script.core_sets(1) == [cores]
    halves = script.core_sets(2)
    assert len(halves) == 2 and set(halves[0] + halves[1]) == set(cores)
    assert script.core_sets(len(cores) + 1) == [None] * (len(cores) + 1)  # no pinning
    run = {"alc": 0.5, "final_nauc": 0.6, "first_prediction_seconds": 1.0}
    runs = [
        {"dataset": "a", "mode": "proxy", "seed": 0, **run},
        {"dataset": "a", "mode": "proxy", "seed": 1, **run, "alc": 0.7},
        {"dataset": "b", "mode": "random", "seed": 0, **run},
    ]
    rows = script.summarise(runs, ["a", "b"], ["proxy", "random"])  # (b, proxy) not run yet
    assert [(r["dataset"], r["mode"], r["runs"]) for r in rows] == [
        ("a", "proxy", 2),
        ("b", "random", 1),
        ("mean over datasets", "proxy", 2),
        ("mean over datasets", "random", 1),
    ]
    assert rows[0]["alc"] == pytest.approx(0.6) and rows[0]["alc_std"] == pytest.approx(0.1)
    rng = np.random.default_rng(0)
    pairs = [
        {
            "dataset": d,
            "seed": s,
            "mode": m,
            "alc": 0.5 + (0.02 if m == "proxy" else 0.0) + 0.005 * rng.normal(),
        }
        for d in "abcdef"
        for s in range(3)
        for m in ("proxy", "random")
    ]
    result = script.paired(pairs, "proxy", "random")
    assert result["pairs"] == 18 and 0.01 < result["mean_difference"] < 0.03
    low, high = result["ci95"]
    assert 0 < low < result["mean_difference"] < high  # excludes 0
    assert script.paired(pairs, "proxy", "random") == result  # seeded
    assert script.paired(pairs, "proxy", "baseline") is None
    some = script.paired(pairs, "proxy", "random", datasets=frozenset("ab"))
    assert some["pairs"] == 6 and some["datasets"] == ["a", "b"]
    assert set(some["per_dataset"]) == {"a", "b"}
    assert result["dataset_mean_difference"] == pytest.approx(result["mean_difference"])
    assert result["dataset_ci95"][0] > 0


def test_the_dataset_weighted_mean_weighs_every_dataset_the_same() -> None:
    """Unbalanced seeds: the pair mean follows the dataset with more seeds, the mean over
    datasets does not; its stratified interval holds it, and needs two pairs per dataset."""
    script = compare_script()
    gain = {"many": 0.10, "few": 0.0}
    seeds = {"many": range(9), "few": range(3)}
    runs = [
        {
            "dataset": d,
            "seed": s,
            "mode": m,
            "alc": 0.5 + (gain[d] + 0.01 * (s % 3 - 1)) * (m == "proxy"),
        }
        for d in gain
        for s in seeds[d]
        for m in ("proxy", "random")
    ]
    result = script.paired(runs, "proxy", "random")
    assert result["mean_difference"] == pytest.approx(0.075)  # 9 of 12 pairs gain 0.10
    assert result["dataset_mean_difference"] == pytest.approx(0.05)
    low, high = result["dataset_ci95"]
    assert low < 0.05 < high and high - low < 0.05
    single = [r for r in runs if r["dataset"] == "many" or r["seed"] == 0]
    assert "dataset_ci95" not in script.paired(single, "proxy", "random")


def test_resplit_draws_each_seeds_test_split_and_pairs_runs_on_the_same_split(
    tmp_path: Path,
) -> None:
    """--resplit: a dataset without a split of its own gets its test split from the run's seed
    (seed 0's is the default one); the archives keep theirs; a proxy run is compared only with
    a control run on the same split (runs recorded before --resplit were on seed 0's)."""
    script = compare_script()
    assert script.split_seed("wine", 3, resplit=True) == 3
    assert script.split_seed("wine", 3, resplit=False) == 0
    assert script.split_seed("ArrowHead", 3, resplit=True) is None
    assert {"cifar10_1000", "SentencePolarity", "MiniNewsgroups"} <= script.DRAWN_SPLITS

    def test_rows(directory: Path, split: int | None = None) -> set[bytes]:
        root = script.prepare_dataset("wine", directory, split)
        return {e.x.tobytes() for e in load_dataset(root).test.iter_examples()}

    seed_0 = test_rows(tmp_path / "0", 0)
    assert seed_0 == test_rows(tmp_path / "default") != test_rows(tmp_path / "1", 1)
    run = {"dataset": "wine", "alc": 0.5, "final_nauc": 0.5}
    runs = [
        {**run, "mode": "random", "seed": 0},  # before --resplit: seed 0's split
        {**run, "mode": "proxy", "seed": 0, "split_seed": 0, "alc": 0.6},
        {**run, "mode": "random", "seed": 1},  # seed 0's split
        {**run, "mode": "proxy", "seed": 1, "split_seed": 1, "alc": 0.9},  # its own: no pair
        {**run, "mode": "random", "seed": 2, "split_seed": 2},
        {**run, "mode": "proxy", "seed": 2, "split_seed": 2, "alc": 0.6},
    ]
    assert [script.run_split(r) for r in runs] == [0, 0, 0, 1, 2, 2]
    result = script.paired(runs, "proxy", "random")
    assert result["pairs"] == 2 and result["mean_difference"] == pytest.approx(0.1)


def test_grid_files_combine_into_one_comparison(tmp_path: Path) -> None:
    """--combine: the runs of two grid files (more seeds later) compared as one; files of
    other settings, or holding the same run twice, are refused."""
    script = compare_script()
    settings = {"budget_seconds": 300.0, "device": "cpu", "threads": 1, "overrides": []}

    def grid(name: str, seeds: range, **changed: object) -> Path:
        runs = [
            {
                "dataset": d,
                "mode": m,
                "seed": s,
                "alc": 0.5 + (0.01 * (s + 1) if m == "proxy" else 0.0),
                "final_nauc": 0.6,
                "first_prediction_seconds": 1.0,
            }
            for d in "ab"
            for s in seeds
            for m in ("proxy", "random")
        ]
        path = tmp_path / name
        path.write_text(json.dumps({**settings, **changed, "runs": runs}))
        return path

    first, more = grid("first.json", range(3)), grid("more.json", range(3, 6))
    both = script.combine([first, more], tmp_path / "both.json")
    alc = next(r for r in both["paired"] if r["key"] == "alc" and r["datasets"] == "all")
    assert alc["pairs"] == 12 and alc["mean_difference"] == pytest.approx(0.035)
    assert json.loads((tmp_path / "both.json").read_text())["paired"] == both["paired"]
    assert [f["file"] for f in both["combined_from"]] == [str(first), str(more)]
    assert both["replaced"] == []
    with pytest.raises(ValueError, match="other settings"):
        script.combine([first, grid("60s.json", range(3, 6), budget_seconds=60.0)], None)
    with pytest.raises(ValueError, match="more than one file"):
        script.combine([first, first], None)
    with pytest.raises(ValueError, match=r"no runs \(a combined result\): combine the grid files"):
        script.combine([first, tmp_path / "both.json"], None)
    (tmp_path / "cut.json").write_text('{"runs": [')
    with pytest.raises(ValueError, match=r"cut\.json is not JSON"):
        script.combine([first, tmp_path / "cut.json"], None)
    # --replace: a rerun of dataset b, seeds 0-2, where proxy and random now tie
    rerun = tmp_path / "rerun.json"
    runs = [{**r, "alc": 0.5} for r in json.loads(first.read_text())["runs"] if r["dataset"] == "b"]
    rerun.write_text(json.dumps({**settings, "runs": runs}))
    spliced = script.combine([first, more, rerun], None, replacing=True)
    alc = next(r for r in spliced["paired"] if r["key"] == "alc" and r["datasets"] == "all")
    assert alc["pairs"] == 12 and alc["mean_difference"] == pytest.approx((0.42 - 0.06) / 12)
    assert len(spliced["replaced"]) == 6 and spliced["replaced"][0]["by"] == str(rerun)
    only = script.combine([first, more, rerun], None, True, datasets=["b"], seeds=[0, 1, 2])
    alc = next(r for r in only["paired"] if r["key"] == "alc" and r["datasets"] == "all")
    assert alc["pairs"] == 3 and alc["mean_difference"] == 0.0


def test_room_datasets_follow_the_pool_check(tmp_path: Path) -> None:
    """Room to decide: retraining agrees (ceiling) and the pool's members differ (spread)."""
    script = compare_script("autodl_compare")

    def check(name: str, tau: float, mean: float, best: float) -> dict:
        return {
            "dataset": name,
            "retrain_kendall_tau": tau,
            "pool_val_nauc": {"mean": mean, "max": best},
        }

    checks = [
        check("differ", 0.7, 0.57, 0.65),  # room
        check("saturated", 0.7, 0.99, 0.999),  # every member as good
        check("noisy", 0.2, 0.0, 0.23),  # retraining disagrees: nothing learns
    ]
    path = tmp_path / "pool.json"
    path.write_text(json.dumps({"checks": checks}))
    assert script.room_datasets(path) == {"differ"}
    assert script.room_datasets(tmp_path / "absent.json") == frozenset()


def test_greedy_portfolio_and_leave_one_dataset_out(tmp_path: Path) -> None:
    """Greedy on rescaled scores: x is best on average, y then covers dataset c; the portfolio
    for a dataset of the file never comes from that dataset's own results."""
    script = compare_script("autodl_portfolio")
    table = {
        "a": {"x": 0.9, "y": 0.5, "z": 0.1, "only_a": 1.0},
        "b": {"x": 0.8, "y": 0.2, "z": 0.7},
        "c": {"x": 0.1, "y": 0.9, "z": 0.5},
    }
    assert script.greedy_portfolio(table, 2) == ["x", "y"]
    assert script.greedy_portfolio(table, 9) == ["x", "y", "z"]  # only shared members
    assert script.greedy_portfolio({"c": table["c"]}, 1) == ["y"]
    path = tmp_path / "portfolio.json"
    domains = {"image": {"all": ["x", "y"], "without": {"c": ["x", "z"]}}}
    path.write_text(json.dumps({"domains": domains}))
    assert portfolio_for("image", "c", path) == ["x", "z"]
    assert portfolio_for("image", "unseen", path) == ["x", "y"]
    assert portfolio_for("text", "c", path) == [] == portfolio_for("image", "c", tmp_path / "no")
