"""Proxy-pruned architecture search with any-time training: the engine of ``autodl.model.Model``.

Two halves:

- ``Planner``: a pure time-budget planner. It sees a ``View`` (seconds left to the deadline,
  the proxy scores and measured seconds per epoch of the pool members so far, every network's
  epochs and validation key) and returns the next ``Action``: ``Train`` a network for k epochs
  within a cap, ``Score`` pool members with the proxy, ``Time`` a member (one SGD step), or
  ``Stop``. It never reads a clock, so it is tested with synthetic timings.
- ``AnytimeSearch``: the executor. It asks the planner, carries the action out (building,
  scoring, timing, training, validating), measures, keeps every network's best snapshot and the
  predicting ensemble (re-selected after every chunk), and logs events.

The search starts from the quick model (``autodl.quick``: a ridge classifier fitted before
torch was imported), which is a member of the ensemble from the start. The plan (proxy and
random pruning; ``baseline`` trains one fixed network, no search):

1. **first network**, chosen at once and by cost: the pick among the first ``first_batch`` pool
   members (the plain grid first, then NB201 cells) maximises the *cost-aware utility*
   ``r - cost_penalty * log2(target_epochs / E)`` (r: the member's proxy percentile among the
   scored members of the batch, E: the epochs its measured seconds per epoch allow in the time
   left; no penalty from ``target_epochs`` on, excluded below ``min_epochs``), found by branch
   and bound so that only members that could still win are timed. The proxy scores only the
   first ``first_slice`` members before the first network trains; the rest of the batch is
   scored between its chunks (each scoring capped by the last chunk's seconds) and the choice
   revised with the new scores, so the proxy modes start training about as early as the
   baseline. ``random`` draws r at random (same costs, no scoring time); with ``portfolio`` the
   portfolio's order gives r (``autodl/portfolio.json``), both decided once;
2. the first network trains in chunks of doubling epochs (1, 2, 4, ...) while each chunk
   improves its validation key, up to ``max_epochs / 2``: no search while more epochs of it
   are a sure gain (on a validation split below ``small_validation`` examples, a chunk without
   gain ends it only from ``target_epochs`` on);
3. **pre-filter**: the rest of the pool (``pool_size``: far more members than can be trained)
   is scored within ``scoring_fraction`` of the time left (proxy mode);
4. **challengers**: the ``keep - 1`` members of best utility (rung share instead of the time
   left) join the first network (the incumbent) in successive halving (eta = 2): each rung gets
   an equal part of ``halving_fraction`` of the time left, split over its survivors, trained
   round-robin in doubling chunks (any-time); the best half by validation key goes on;
5. the winner trains on in doubling chunks while each chunk improves its validation key, up to
   ``max_epochs``; then the other networks (best first), whose snapshots join the ensemble;
6. **further brackets** while time is left: the ``keep`` members of best utility among those
   not yet entered (the proxy's next best, or the next random draws) go through steps 3-5
   without an incumbent (step 3 scores whatever of the pool is still unscored), until no member
   is left or none can train ``min_epochs`` in its share. So a large budget trains more of the
   pool, in the pruning's order, instead of ending early.

Every chunk is one ``zcproxies.train.train_model`` call capped by time; each chunk restarts the
cosine schedule over its own epochs (warm restarts: every snapshot is annealed). After each
chunk the network is validated (NAUC, ties broken by the lower cross-entropy; on a validation
split below ``small_validation`` examples the cross-entropy first, ``order_key``) and the ensemble
re-selected: greedy selection with replacement (Caruana et al., 2004) over the best snapshot of
every network and the quick model, adopted only when it improves on validation.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from autodl import families
from autodl.errors import ScoringError
from autodl.metrics import nauc
from autodl.networks import (
    DENSE_OPS,
    TrainAugment,
    build_baseline,
    build_candidate,
)
from autodl.preprocess import InputSpec
from autodl.quick import NAME as QUICK
from autodl.quick import QuickModel
from autodl.settings import PRUNING_MODES, SearchConfig
from zcproxies.proxies import get_proxy, score_many
from zcproxies.spaces.nb201 import OPS, NasBench201
from zcproxies.train import TrainConfig, predict_logits, train_model

PROXY_CHOICE_PATH = Path(__file__).with_name("proxy_choice.json")
PORTFOLIO_PATH = Path(__file__).with_name("portfolio.json")
ETA = 2  # successive halving keeps 1 / ETA per rung
Arch = tuple[int, ...]
Split = tuple[torch.Tensor, torch.Tensor]  # (inputs, class ids)
Key = tuple[float, float]  # higher is better: (validation NAUC, -cross-entropy), or on a small
# validation split (-cross-entropy, NAUC) (``order_key``)
_SPACE = NasBench201()
_PLAIN_NAME = re.compile(r"^plain c(\d+) d(\d+)$")


def default_proxy() -> str:
    """The default pruning proxy, from the evidence recorded in ``autodl/proxy_choice.json``."""
    with PROXY_CHOICE_PATH.open(encoding="utf-8") as f:
        return str(json.load(f)["default"])


def proxy_names(proxy: str) -> tuple[str, ...]:
    """The registered proxy names of ``proxy`` (one name, or several joined by ``+``)."""
    names = tuple(name.strip() for name in proxy.split("+") if name.strip())
    if not names:
        raise ValueError(f"no proxy name in {proxy!r}")
    for name in names:
        get_proxy(name)  # UnknownName lists the registered proxies
    return names


def portfolio_for(domain: str, dataset: str, path: Path = PORTFOLIO_PATH) -> list[str]:
    """The portfolio of ``domain`` (member names, best first) built without ``dataset``'s runs:
    its leave-one-dataset-out entry when ``dataset`` was a source, else the one from all."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as f:
        entry = json.load(f)["domains"].get(domain)
    if entry is None:
        return []
    return list(entry["without"].get(dataset, entry["all"]))


# ---- members and the candidate space --------------------------------------------------------
@dataclass(frozen=True)
class Member:
    """A candidate network: a unique ``name`` and a ``builder`` of the untrained ``nn.Module``
    for an ``InputSpec`` (any builder fits; it draws from torch's current RNG)."""

    name: str
    builder: Callable[[InputSpec], nn.Module] = field(compare=False, repr=False)
    family: str = ""

    def build(self, spec: InputSpec) -> nn.Module:
        """The member's network for inputs of ``spec``."""
        return self.builder(spec)


@functools.cache
def distinct_cells(dense: bool) -> tuple[Arch, ...]:
    """One connected NB201 cell per isomorphism class, the first in enumeration order.

    ``dense``: only cells whose ops are in ``DENSE_OPS`` (the tabular path, where the other ops
    coincide with these): 124 classes, against 6,461 for the full op set.
    """
    allowed = [OPS.index(name) for name in (DENSE_OPS if dense else OPS)]
    seen: set[str] = set()
    cells = []
    for arch in itertools.product(allowed, repeat=6):
        if _SPACE.is_disconnected(arch):
            continue
        key = _SPACE.canonical_key(arch)
        if key not in seen:
            seen.add(key)
            cells.append(arch)
    return tuple(cells)


def plain_member(width: int, depth: int = 1) -> Member:
    """The plain network of the baseline's family (``build_baseline``) of ``width`` x ``depth``."""
    return Member(
        f"plain c{width} d{depth}",
        functools.partial(_build_plain, width=width, depth=depth),
        "plain",
    )


def cell_member(arch: Arch, config: SearchConfig) -> Member:
    """NB201 cell ``arch`` in NB201's skeleton (conv path, or dense path for tabular inputs)."""
    builder = functools.partial(
        _build_cell, arch=arch, c=config.cell_width, n=config.cells_per_stage
    )
    return Member(_SPACE.to_string(arch), builder, "nb201")


def _build_plain(spec: InputSpec, width: int, depth: int) -> nn.Module:
    return build_baseline(spec, width, depth)


def _build_cell(spec: InputSpec, arch: Arch, c: int, n: int) -> nn.Module:
    return build_candidate(arch, spec, c, n)


def family_member(arch: families.TemporalArch) -> Member:
    """A member of the temporal family (speech, time series, text: ``autodl.families``)."""
    return Member(arch.name, arch.build, "temporal")


def named_member(name: str, domain: str, config: SearchConfig) -> Member | None:
    """The member of ``domain``'s space called ``name`` (a portfolio entry), None if none is."""
    if domain in families.FAMILY_DOMAINS:
        arch = families.arch_from_name(name, domain)
        return None if arch is None else family_member(arch)
    match = _PLAIN_NAME.match(name)
    if match:
        return plain_member(int(match[1]), int(match[2]))
    try:
        arch = tuple(_SPACE.parse(name))
    except (ValueError, KeyError):
        return None
    dense_ok = all(OPS[i] in DENSE_OPS for i in arch)
    if _SPACE.is_disconnected(arch) or (domain == "tabular" and not dense_ok):
        return None
    return cell_member(arch, config)


def candidate_space(
    spec: InputSpec, config: SearchConfig, rng: np.random.Generator, first: Sequence[str] = ()
) -> tuple[Member, list[Member]]:
    """(the baseline member, the pool) for inputs of ``spec``: the one place where a domain's
    candidates come from. The pool, at most ``config.pool_size`` members, starts with the
    members named in ``first`` (a portfolio; names foreign to the domain skipped), then:

    - images, videos, tabular: the plain grid (``plain_widths`` x ``plain_depths``, the baseline
      c16 d1 among them), then NB201 cells of distinct isomorphism classes in ``rng``'s order
      (conv path for images and videos, dense path for tabular inputs: 6,461 and 124 classes);
    - speech, time series, text: the family's baseline, then the rest of its grid
      (``autodl.families.candidate_space``: 324 members, text 972) in ``rng``'s order.
    """
    members = [m for m in (named_member(n, spec.domain, config) for n in first) if m is not None]
    if spec.domain in families.FAMILY_DOMAINS:
        baseline = family_member(families.family_baseline(spec.domain))
        grid = [family_member(a) for a in families.candidate_space(spec.domain)]
        members += [baseline, *(grid[i] for i in rng.permutation(len(grid)))]
    elif spec.domain in ("image", "video", "tabular"):
        baseline = plain_member(config.baseline_width)
        members += [plain_member(w, d) for w, d in config.plain]
        cells = distinct_cells(spec.domain == "tabular")
        members += [cell_member(cells[i], config) for i in rng.permutation(len(cells))]
    else:
        raise ValueError(f"no candidate space for domain {spec.domain!r}")
    pool: dict[str, Member] = {}
    for member in members:  # the first occurrence of a name wins
        pool.setdefault(member.name, member)
        if len(pool) == config.pool_size:
            break
    return baseline, list(pool.values())


# ---- pure helpers ---------------------------------------------------------------------------
def aggregate_ranks(table: np.ndarray) -> np.ndarray:
    """Pool scores from a (candidates, proxies) table oriented so that higher is better.

    One proxy: its values. Several: AZ-NAS's rule, the sum over proxies of log(rank / n) with
    rank n for the best candidate (ties share their average rank).
    """
    table = np.asarray(table, dtype=np.float64)
    if table.shape[1] == 1:
        return table[:, 0].copy()
    ranks = np.column_stack([rankdata(column) for column in table.T])
    return np.log(ranks / len(table)).sum(axis=1)


def percentiles(values: Mapping[str, float]) -> dict[str, float]:
    """Each name's rank / n among ``values`` (1 for the highest; ties share their mean rank)."""
    names = list(values)
    if not names:
        return {}
    ranks = rankdata([values[n] for n in names])
    return {n: float(r) / len(names) for n, r in zip(names, ranks, strict=True)}


def halving_rungs(k: int, eta: int = ETA) -> list[int]:
    """Survivors per rung of successive halving from ``k`` candidates: k, k // eta, ..., 1."""
    if k < 1 or eta < 2:
        raise ValueError(f"need k >= 1 and eta >= 2, got k={k}, eta={eta}")
    rungs = [k]
    while rungs[-1] > 1:
        rungs.append(max(1, rungs[-1] // eta))
    return rungs


def safe_batch_size(n: int, preferred: int) -> int:
    """``preferred`` (at most ``n``), lowered while it would leave a last batch of one example
    (BatchNorm cannot train on one value per channel: dense nets, 1 x 1 maps)."""
    if n < 2:
        raise ValueError(f"training needs at least 2 examples, got {n}")
    size = min(preferred, n)
    while n % size == 1:
        size -= 1
    return size


def finite_or_none(value: float) -> float | None:
    """``value``, or None when it is infinite or NaN (JSON has no infinities)."""
    return value if math.isfinite(value) else None


def order_key(score: float, loss: float, loss_first: bool) -> Key:
    """The key that orders networks and ensembles from validation NAUC ``score`` and mean
    cross-entropy ``loss``: NAUC first, ties broken by the lower loss; ``loss_first`` (a
    validation split below ``SearchConfig.small_validation`` examples): the loss first. On a
    few examples NAUC takes a handful of values and saturates (ArrowHead, 7 validation series:
    an ensemble of networks trained 1-3 epochs reached 1.0, and a network trained 200 epochs at
    0.83 could not replace it), while the cross-entropy, a proper scoring rule, still tells a
    trained network from an untrained one."""
    return (-loss, score) if loss_first else (score, -loss)


def key_nauc(key: Key, loss_first: bool) -> float:
    """The validation NAUC held in ``key`` (``order_key``)."""
    return key[1] if loss_first else key[0]


def probability_key(
    probs: np.ndarray, y: np.ndarray, num_classes: int, loss_first: bool = False
) -> Key:
    """``order_key`` of class probabilities ``probs`` for class ids ``y``. NAUC falls back to
    2 * accuracy - 1 when no class has both positives and negatives; non-finite probabilities
    give (-inf, -inf)."""
    if not np.all(np.isfinite(probs)):
        return -math.inf, -math.inf
    loss = float(example_losses(probs, y).mean())
    try:
        score = nauc(np.eye(num_classes)[y], probs)
    except ScoringError:
        score = 2 * float((probs.argmax(1) == y).mean()) - 1
    return order_key(score, loss, loss_first)


def probability_keys(
    stack: np.ndarray, y: np.ndarray, num_classes: int, loss_first: bool = False
) -> list[Key]:
    """``probability_key`` of each of M sets of class probabilities (``stack``: M x N x K) at
    once: ensemble selection asks for hundreds of keys per re-selection, and one call per key
    cost about 0.2 ms on 32 examples (ranks here along the examples of every set together)."""
    finite = np.isfinite(stack).all(axis=(1, 2))
    safe = np.where(finite[:, None, None], stack, 1.0)
    n = len(y)
    per_example = -np.log(np.maximum(safe[:, np.arange(n), y], 1e-300))
    losses = [row.mean() for row in per_example]  # as ``example_losses(...).mean()`` sums
    counts = np.bincount(y, minlength=num_classes)
    valid = np.flatnonzero((counts > 0) & (counts < n))
    if valid.size:  # NAUC over the classes with positives and negatives (``nauc``)
        aucs = [
            (
                rankdata(safe[:, :, k], axis=1)[:, y == k].sum(axis=1)
                - counts[k] * (counts[k] + 1) / 2
            )
            / (counts[k] * (n - counts[k]))
            for k in valid
        ]
        # each set's mean over its classes as ``nauc`` sums them (a contiguous row), so that
        # the keys equal ``probability_key``'s to the last bit (ties decide selections)
        scores = [2 * row.mean() - 1 for row in np.ascontiguousarray(np.transpose(aucs))]
    else:
        scores = 2 * (safe.argmax(axis=2) == y).mean(axis=1) - 1
    return [
        order_key(float(s), float(loss), loss_first) if ok else (-math.inf, -math.inf)
        for s, loss, ok in zip(scores, losses, finite, strict=True)
    ]


def select_ensemble(
    probs: Sequence[np.ndarray],
    own_keys: Sequence[Key],
    y: np.ndarray,
    num_classes: int,
    rounds: int,
    loss_first: bool = False,
) -> tuple[list[int], Key]:
    """Greedy ensemble selection with replacement (Caruana et al., ICML 2004): ``rounds`` times,
    add the member whose addition gives the average of probabilities the best validation key;
    returns the member counts of the best prefix and its key. One round: the best member.
    ``own_keys``: the members' own ``probability_key`` values (the first round, not recomputed);
    ``loss_first`` as for them."""
    counts, keys = [0] * len(probs), list(own_keys)
    best_counts, best_key = counts, (-math.inf, -math.inf)
    stack = np.stack(probs)
    total = np.zeros_like(probs[0])
    for size in range(1, max(1, rounds) + 1):
        if size > 1:
            keys = probability_keys((total + stack) / size, y, num_classes, loss_first)
        pick = max(range(len(probs)), key=keys.__getitem__)  # first on ties
        counts = [c + (i == pick) for i, c in enumerate(counts)]
        total = total + probs[pick]
        if keys[pick] > best_key:
            best_counts, best_key = counts, keys[pick]
    return best_counts, best_key


def example_losses(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-example cross-entropy of class probabilities ``probs`` for class ids ``y``."""
    return -np.log(np.maximum(probs[np.arange(len(y)), y], 1e-300))


def loss_gain_z(before: np.ndarray, after: np.ndarray, y: np.ndarray) -> float:
    """The paired z statistic of the validation cross-entropy gained from probabilities
    ``before`` to ``after``: the mean per-example loss decrease over its standard error (+inf
    for a gain on every example alike, -inf for none; +inf when ``before`` is not finite)."""
    if not np.all(np.isfinite(before)):
        return math.inf
    gain = example_losses(before, y) - example_losses(after, y)
    mean = float(gain.mean())
    error = float(gain.std(ddof=1)) / math.sqrt(len(gain)) if len(gain) > 1 else 0.0
    if error == 0.0:
        return math.inf if mean > 0 else -math.inf
    return mean / error


# ---- the planner ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NetView:
    """What the planner knows of a network: epochs so far, the last chunk asked, validation key."""

    epochs: int = 0
    last_chunk: int = 0
    key: Key = (-math.inf, -math.inf)


@dataclass(frozen=True)
class View:
    """The executor's state as the planner sees it (no clock: ``left`` is given)."""

    left: float  # seconds until the deadline
    pool: tuple[str, ...]  # member names in pool order
    scores: Mapping[str, float] = field(default_factory=dict)  # pooled proxy score, higher better
    costs: Mapping[str, float] = field(default_factory=dict)  # measured seconds per epoch
    nets: Mapping[str, NetView] = field(default_factory=dict)  # networks trained so far


@dataclass(frozen=True)
class Train:
    """Train ``name`` for ``epochs`` within ``cap`` seconds (and the deadline), then validate."""

    name: str
    epochs: int
    cap: float
    phase: str


@dataclass(frozen=True)
class Score:
    """Score these pool members with the proxy, in order, until ``cap`` seconds (at least one)."""

    names: tuple[str, ...]
    cap: float


@dataclass(frozen=True)
class Time:
    """Measure ``name``'s seconds per epoch (one timed SGD step, after an untimed one)."""

    name: str


@dataclass(frozen=True)
class Stop:
    """Nothing more to do: the plan has ended or no time is left."""

    reason: str


Action = Train | Score | Time | Stop


def utility(r: float, seconds_per_epoch: float, share: float, config: SearchConfig) -> float | None:
    """Cost-aware utility of a member of rank percentile ``r`` given ``share`` seconds:
    ``r - cost_penalty * log2(target_epochs / E)`` with E = share / seconds per epoch (no
    penalty from ``target_epochs`` on); None (passed over) below ``min_epochs``."""
    epochs = share / max(seconds_per_epoch, 1e-9)
    if epochs < config.min_epochs:
        return None
    return r - config.cost_penalty * max(0.0, math.log2(config.target_epochs / epochs))


def choose(
    ranks: Mapping[str, float],
    costs: Mapping[str, float],
    share: float,
    k: int,
    config: SearchConfig,
) -> str | list[str]:
    """The ``k`` members of best ``utility`` (best first), or the name of a member to time first.

    Branch and bound over ``ranks`` (name -> r) from the highest r: a member's utility is at most
    its r, so the walk stops once r cannot beat the k-th best utility found; a member reached
    without a cost is returned to be timed. The walk covers at most ``first_batch`` members (so
    at most that many are timed); when none of them is worth its share, the fastest is chosen.
    """
    picked: list[tuple[float, str]] = []
    for walked, name in enumerate(sorted(ranks, key=lambda n: -ranks[n])):
        if walked >= config.first_batch or (len(picked) >= k and ranks[name] <= picked[k - 1][0]):
            break
        if name not in costs:
            return name
        value = utility(ranks[name], costs[name], share, config)
        if value is not None:
            picked = sorted([*picked, (value, name)], key=lambda p: -p[0])
    if not picked:
        considered = [n for n in ranks if n in costs]
        return [min(considered, key=costs.__getitem__)][:k] if considered else []
    return [name for _, name in picked[:k]]


class Planner:
    """The plan of the module docstring as a state machine over ``View`` s: ``next(view)``
    returns the next ``Action``. Deterministic and clock-free; ``decisions`` logs each choice.

    ``baseline``: the baseline member's name (the one network of ``baseline`` pruning);
    ``first_order``: member names whose order gives r for the first network's choice (a
    portfolio, best first) instead of the proxy scores; ``random`` pruning draws r from ``seed``.
    ``small_validation``: the validation split is too small to tell when the first network stops
    gaining early on (``SearchConfig.small_validation``): it trains ``target_epochs`` before a
    chunk without gain can end its run.
    """

    def __init__(
        self,
        config: SearchConfig,
        pruning: str,
        baseline: str,
        seed: int = 0,
        first_order: Sequence[str] = (),
        small_validation: bool = False,
    ) -> None:
        if pruning not in PRUNING_MODES:
            raise ValueError(f"pruning must be one of {PRUNING_MODES}, got {pruning!r}")
        self.config, self.pruning, self.baseline = config, pruning, baseline
        self.first_order = list(first_order)
        self.small_validation = small_validation
        self.rng = np.random.default_rng(seed)
        self.decisions: list[dict] = []
        self.phase = "start"
        self.first: str | None = None
        self.review: float | None = None  # seconds of scoring between two first-network chunks
        self.review_scored = False  # ... done; the choice is revised next
        self.alive: list[str] = []
        self.entrants: list[str] = []
        self.goals: dict[str, int] = {}
        self.round: list[str] = []
        self.chunk: dict[str, int] = {}
        self.rungs: list[int] = []
        self.rung = 0
        self.rung_seconds = 0.0
        self.share = 0.0
        self.extending: list[str] = []  # networks trained on (to max_epochs, or while improving)
        self.winner: str | None = None  # the first of them
        self.bracket = 0  # successive-halving brackets started (0: the one with the incumbent)
        self.entered: set[str] = set()  # members that entered a bracket
        self.issued: Train | None = None
        self.before: NetView | None = None
        self._random_ranks: dict[str, float] = {}

    # the public step
    def next(self, view: View) -> Action:
        """The next action for the state in ``view``."""
        if view.left <= 0:
            return Stop("time")
        last, before = self.issued, self.before
        self.issued = self.before = None
        action = self._step(view, last, before)
        if isinstance(action, Train):
            self.issued, self.before = action, view.nets.get(action.name, NetView())
        return action

    def _step(self, view: View, last: Train | None, before: NetView | None) -> Action:
        cfg = self.config
        if self.phase == "start":
            if self.pruning == "baseline":
                return self._extend(view, [self.baseline])
            unscored = self._unscored_batch(view)
            if unscored and len(unscored) == len(view.pool[: cfg.first_batch]):
                return Score(unscored[: cfg.first_slice], cfg.scoring_fraction * view.left)
            action = self._choose_first(view)
            if action is not None:
                return action
            self.phase = "first"
            return self._step(view, None, None)
        if self.phase == "first":
            assert self.first is not None
            if last is not None and before is not None:
                net = view.nets.get(self.first, NetView())
                early = self.small_validation and net.epochs < cfg.target_epochs
                if net.epochs == before.epochs or (net.key <= before.key and not early):
                    return self._after_first(view)  # no improvement (or cut by time)
                self.chunk[self.first] = 2 * last.epochs
                if self._unscored_batch(view):  # score more of the batch, as long as the chunk
                    self.review = view.costs.get(self.first, 0.0) * last.epochs
            if self.review is not None:
                if not self.review_scored:
                    self.review_scored = True
                    return Score(self._unscored_batch(view), self.review)
                action = self._choose_first(view)
                if action is not None:
                    return action
            net = view.nets.get(self.first, NetView())
            epochs = min(self.chunk[self.first], cfg.max_epochs // 2 - net.epochs)
            if epochs < 1:
                return self._after_first(view)
            return Train(self.first, epochs, view.left, "first")
        if self.phase == "score":
            self.phase = "challengers"
            unscored = tuple(n for n in view.pool if n not in view.scores)
            if self.pruning == "proxy" and unscored:
                return Score(unscored, cfg.scoring_fraction * view.left)
            return self._step(view, None, None)
        if self.phase == "challengers":
            assert self.first is not None
            incumbent = [self.first] if self.bracket == 0 else []
            names = [n for n in view.pool if n != self.first and n not in self.entered]
            if self.pruning == "proxy":
                names = [n for n in names if n in view.scores]
            if not names and not incumbent:
                return Stop("pool done")
            ranks = self._ranks(view, names, first=False)
            rungs = halving_rungs(cfg.keep)
            share = cfg.halving_fraction * view.left / len(rungs) / cfg.keep
            wanted = cfg.keep - len(incumbent)
            picked = choose(ranks, view.costs, share, wanted, cfg) if wanted > 0 else []
            if isinstance(picked, str):
                return Time(picked)
            picked = [n for n in picked if utility(1.0, view.costs[n], share, cfg) is not None]
            what = "challengers" if self.bracket == 0 else f"bracket {self.bracket}"
            self._decide(what, ranks, view, share, picked)
            self.alive = self.entrants = [*incumbent, *picked]
            self.entered.update(self.alive)
            if not self.alive:
                return Stop("plan done")  # no member can train min_epochs in its share
            if len(self.alive) == 1:
                return self._extend(view, self.alive)
            self.rungs = halving_rungs(len(self.alive))
            self.rung_seconds = cfg.halving_fraction * view.left / len(self.rungs)
            self.rung = -1
            return self._next_rung(view)
        if self.phase == "rung":
            if last is not None and before is not None:
                self.chunk[last.name] = 2 * last.epochs
                if view.nets[last.name].epochs == before.epochs:  # cut by time: its rung is over
                    self.goals[last.name] = before.epochs
            return self._rung_chunk(view)
        if self.phase == "extend":
            if last is not None and before is not None:
                net = view.nets[last.name]
                if net.epochs == before.epochs:  # cut by time before one epoch
                    self.extending.pop(0)
                elif self.pruning != "baseline" and net.key <= before.key:
                    self.extending.pop(0)  # no improvement: time for the next network
            while self.extending:
                name = self.extending[0]
                net = view.nets.get(name, NetView())
                if name not in view.costs:
                    return Time(name)
                fit = min(cfg.max_epochs - net.epochs, int(view.left / view.costs[name]))
                epochs = min(max(1, 2 * net.last_chunk), fit)
                if epochs >= 1:
                    phase = "extend" if name == self.winner else "runner-up"
                    return Train(name, epochs, view.left, phase)
                self.extending.pop(0)
            if self.pruning == "baseline":
                return Stop("plan done")
            self.bracket += 1  # time is left: the next bracket
            self.phase = "score"
            return self._step(view, None, None)
        raise AssertionError(f"unknown phase {self.phase}")

    def _extend(self, view: View, names: list[str]) -> Action:
        """Train ``names`` on in turn (the first is the winner) until max_epochs or time; in the
        search modes each moves on at its first chunk without improvement."""
        self.phase, self.extending, self.winner = "extend", names, names[0]
        return self._step(view, None, None)

    def _after_first(self, view: View) -> Action:
        self.phase = "score"
        return self._step(view, None, None)

    def _unscored_batch(self, view: View) -> tuple[str, ...]:
        """The first batch's members the proxy has still to score for the first choice (none
        unless proxy pruning decides it: random ranks and a portfolio need no scores)."""
        if self.pruning != "proxy" or self.first_order:
            return ()
        return tuple(n for n in view.pool[: self.config.first_batch] if n not in view.scores)

    def _choose_first(self, view: View) -> Action | None:
        """Choose (or revise) the first network among the batch's ranked members: an action
        to carry out first (a member to time, or Stop), or None once ``first`` is set."""
        ranks = self._ranks(view, view.pool[: self.config.first_batch], first=True)
        picked = choose(ranks, view.costs, view.left, 1, self.config)
        if isinstance(picked, str):
            return Time(picked)
        if not picked:
            return Stop("no member could be timed")
        self.review, self.review_scored = None, False
        if picked[0] != self.first:
            self._decide("first", ranks, view, view.left, picked, replaces=self.first)
            self.first = picked[0]
            self.chunk.setdefault(self.first, 1)
        return None

    def _next_rung(self, view: View) -> Action:
        self.rung += 1
        if self.rung >= len(self.rungs):
            others = sorted(
                (n for n in self.entrants if n != self.alive[0]),
                key=lambda n: view.nets.get(n, NetView()).key,
                reverse=True,
            )
            return self._extend(view, [self.alive[0], *others])
        cfg = self.config
        survivors = self.rungs[self.rung]
        self.alive = sorted(
            self.alive, key=lambda n: view.nets.get(n, NetView()).key, reverse=True
        )[:survivors]
        self.share = self.rung_seconds / survivors
        self.goals = {}
        for name in self.alive:
            net = view.nets.get(name, NetView())
            more = min(int(self.share / view.costs[name]), cfg.max_epochs // 2 - net.epochs)
            self.goals[name] = net.epochs + max(1, more)
            self.chunk[name] = 1 if net.epochs == 0 else 2 * net.last_chunk
        self.round = []
        self.phase = "rung"
        return self._rung_chunk(view)

    def _rung_chunk(self, view: View) -> Action:
        """The next chunk of the rung: round after round, each network short of its goal (best
        first) trains a chunk of doubling epochs."""
        while True:
            pending = [n for n in self.alive if view.nets.get(n, NetView()).epochs < self.goals[n]]
            self.round = [n for n in self.round if n in pending]
            if not self.round:
                if not pending:
                    return self._next_rung(view)
                self.round = pending
            name = self.round.pop(0)
            epochs = min(self.chunk[name], self.goals[name] - view.nets.get(name, NetView()).epochs)
            return Train(name, epochs, 1.5 * self.share, f"rung {self.rung}")

    def _ranks(self, view: View, names: Sequence[str], first: bool) -> dict[str, float]:
        """r of each of ``names``: portfolio order (first choice, when given), proxy score
        percentiles (proxy) or a seeded random order (random)."""
        if first and self.first_order:
            present = [n for n in self.first_order if n in names]
            return {n: 1.0 - i / len(present) for i, n in enumerate(present)}
        if self.pruning == "proxy":
            return percentiles({n: view.scores[n] for n in names if n in view.scores})
        missing = [n for n in names if n not in self._random_ranks]
        for name, value in zip(missing, self.rng.random(len(missing)), strict=True):
            self._random_ranks[name] = float(value)
        return percentiles({n: self._random_ranks[n] for n in names})

    def _decide(
        self,
        what: str,
        ranks: Mapping[str, float],
        view: View,
        share: float,
        picked: list[str],
        replaces: str | None = None,
    ) -> None:
        """Log a choice: every timed candidate's r, seconds per epoch and utility; ``replaces``:
        the first network a revised first choice replaces."""
        timed = [n for n in ranks if n in view.costs]
        self.decisions.append(
            {
                "choice": what,
                "replaces": replaces,
                "share_seconds": share,
                "ranked": len(ranks),
                "picked": picked,
                "timed": [
                    {
                        "member": n,
                        "r": ranks[n],
                        "seconds_per_epoch": view.costs[n],
                        "utility": utility(ranks[n], view.costs[n], share, self.config),
                    }
                    for n in sorted(timed, key=lambda n: -ranks[n])
                ],
            }
        )


# ---- the executor ---------------------------------------------------------------------------
def seeded_build(builder: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``builder()`` with torch's RNG forked and seeded (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()


def proxy_batch(train: Split, size: int, seed: int) -> Split:
    """The proxies' minibatch, on the CPU: the first ``size`` examples of a seeded shuffle of
    ``train``."""
    x, y = train
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:size]
    return x[idx].cpu(), y[idx].cpu()


def for_training(net: nn.Module, spec: InputSpec, augment: bool, seed: int) -> nn.Module:
    """``net`` as it trains: behind ``TrainAugment`` (translations of up to size / 8 pixels,
    flips) for images and videos when ``augment``, else as is."""
    if not augment or spec.domain not in ("image", "video"):
        return net
    return TrainAugment(net, max(1, spec.size // 8), seed)


def validate(
    model: nn.Module, split: Split, num_classes: int, device: torch.device | str = "cpu"
) -> tuple[float, float, np.ndarray]:
    """(NAUC, mean cross-entropy, float64 class probabilities) of ``model`` on ``split``
    (``probability_key``; a non-finite output gives (-inf, inf, probabilities))."""
    x, y = split
    logits = predict_logits(model, x, device=device).double()
    probs = torch.softmax(logits, dim=1).numpy()
    score, neg_loss = probability_key(probs, y.numpy(), num_classes)
    return score, -neg_loss, probs


@dataclass
class Network:
    """A network in training with its bookkeeping; ``key`` orders networks (higher = better)."""

    name: str
    model: nn.Module
    epochs: int = 0  # epochs trained so far (a time-cut epoch counts)
    last_chunk: int = 0  # epochs asked of the last chunk
    seconds: float = 0.0  # training wall time so far
    seconds_per_epoch: float | None = None  # measured: by a timed step, then by each chunk
    val_nauc: float = -math.inf
    val_loss: float = math.inf
    loss_first: bool = False  # the validation split is small (``order_key``)

    @property
    def key(self) -> Key:
        """``order_key`` of the last validation."""
        return order_key(self.val_nauc, self.val_loss, self.loss_first)


@dataclass(frozen=True)
class Snapshot:
    """A frozen copy of a network at its best validation key so far (or the quick model), with
    its validation probabilities (what ensemble selection combines)."""

    name: str
    model: nn.Module | QuickModel
    epochs: int
    probs: np.ndarray
    key: Key


class AnytimeSearch:
    """The executor of the ``Planner``'s actions; ``predict`` uses the ensemble so far.

    ``run(deadline)`` carries out actions until the ensemble improves (True: a new prediction is
    worth making) or the planner stops (False; ``done`` is then set). ``events`` logs every
    chunk, scoring, choice and timing; ``on_event`` (optional) is called with each event as it is
    logged (the command line's status line). ``portfolio``: member names tried first when
    ``config.portfolio`` (``portfolio_for``). ``quick``: the quick model (``autodl.quick``), the
    ensemble's first member, validated on ``val`` here.
    """

    def __init__(
        self,
        spec: InputSpec,
        train: Split,
        val: Split,
        *,
        pruning: str = "proxy",
        proxy: str | None = None,
        seed: int = 0,
        config: SearchConfig | None = None,
        device: torch.device | str = "cpu",
        portfolio: Sequence[str] = (),
        quick: QuickModel | None = None,
        on_event: Callable[[dict], None] | None = None,
    ) -> None:
        self.spec, self.val = spec, val
        self.pruning, self.seed = pruning, seed
        self.proxy = (proxy or default_proxy()) if pruning == "proxy" else None
        self.names = proxy_names(self.proxy) if self.proxy else ()
        self.config = config or SearchConfig()
        self.loss_first = len(val[1]) < self.config.small_validation
        self.device = torch.device(device)
        first = list(portfolio) if self.config.portfolio else []
        baseline, pool = candidate_space(spec, self.config, np.random.default_rng(seed), first)
        self.pool = pool
        self.members = {m.name: m for m in [baseline, *pool]}
        self.index = {name: i for i, name in enumerate(self.members)}  # seeds each network
        self.planner = Planner(
            self.config,
            pruning,
            baseline.name,
            seed,
            [n for n in first if n in self.members],
            small_validation=self.loss_first,
        )
        # the training split lives on the device (no copy per batch); proxies take a CPU batch
        self.train: Split = (train[0].to(self.device), train[1].to(self.device))
        self.batch_size = safe_batch_size(len(train[0]), self.config.batch_size)
        self.train_config = TrainConfig(epochs=1, batch_size=self.batch_size, lr=self.config.lr)
        self.on_event = on_event
        self.events: list[dict] = []
        self.networks: dict[str, Network] = {}
        self.proxy_rows: dict[str, list[float]] = {}  # per scored member: oriented proxy values
        self.scores: dict[str, float] = {}  # pooled proxy scores of the scored members
        self.snapshots: dict[str, Snapshot] = {}  # each network's best so far, by name
        self.ensemble: list[tuple[Snapshot, int]] = []  # the predicting snapshots and weights
        self.ensemble_key: Key = (-math.inf, -math.inf)
        self.ensemble_probs: np.ndarray | None = None  # its validation probabilities
        self._val_labels = val[1].numpy()
        self.done = False
        self.phase = "start"
        self.deadline = math.inf
        self._start = time.perf_counter()
        self._chunks = 0
        if quick is not None:
            probs = quick.predict(val[0].numpy())
            key = probability_key(probs, self._val_labels, spec.num_classes, self.loss_first)
            self.snapshots[QUICK] = Snapshot(QUICK, quick, 0, probs, key)
            self._reselect()
            self._log({"phase": "quick", "candidate": QUICK, "val_nauc": self._nauc(key)})

    # ---- driving ----------------------------------------------------------------------------
    def run(self, deadline: float) -> bool:
        """Carry out the planner's actions until the ensemble improves (True), or it stops
        (False; ``done``)."""
        self.deadline = deadline
        while not self.done:
            action = self.planner.next(self._view())
            self._log_decisions()
            if isinstance(action, Stop):
                self.done = True
                self.phase = f"done ({action.reason})"
                self._log({"phase": "stop", "reason": action.reason})
            elif isinstance(action, Score):
                self._score(action)
            elif isinstance(action, Time):
                self._time(action.name)
            elif self._train(action):
                return True
        return False

    def predict(self, x: torch.Tensor) -> np.ndarray:
        """Class probabilities for inputs ``x``: the ensemble's weighted mean of softmaxes."""
        if not self.ensemble:
            raise RuntimeError("no network trained yet: call run() first")
        total = None
        for snapshot, weight in self.ensemble:
            if isinstance(snapshot.model, QuickModel):
                probs = torch.from_numpy(snapshot.model.predict(x.numpy()))
            else:
                logits = predict_logits(
                    snapshot.model, x, self.train_config.eval_batch_size, self.device
                )
                probs = torch.softmax(logits.double(), dim=1)
            total = weight * probs if total is None else total + weight * probs
        return (total / sum(w for _, w in self.ensemble)).float().numpy()

    @property
    def best(self) -> Snapshot | None:
        """The best single network so far (its snapshot), None before the first chunk."""
        return max(self.snapshots.values(), key=lambda s: s.key, default=None)

    def status(self) -> dict:
        """Where the search is: elapsed seconds, phase, networks trained, members scored, the
        ensemble's validation NAUC (None before the first chunk) and, on a split ranked by the
        cross-entropy first (``order_key``), its validation cross-entropy, what it is best by."""
        info = {
            "elapsed": time.perf_counter() - self._start,
            "phase": self.phase,
            "networks": sum(n.epochs > 0 for n in self.networks.values()),
            "scored": len(self.scores),
            "pool": len(self.pool),
            "val_nauc": self._nauc(self.ensemble_key),
        }
        if self.loss_first:
            info["val_loss"] = finite_or_none(-self.ensemble_key[0])
        return info

    def summary(self) -> dict | None:
        """The predicting ensemble, JSON-ready: name, validation NAUC, members and weights."""
        if not self.ensemble:
            return None
        total = sum(w for _, w in self.ensemble)
        members = sorted(self.ensemble, key=lambda m: -m[1])
        return {
            "name": " + ".join(
                s.name if w == total else f"{s.name} ({w}/{total})" for s, w in members
            ),
            "epochs": max(s.epochs for s, _ in members),
            "val_nauc": self._nauc(self.ensemble_key),
            "members": [
                {
                    "name": s.name,
                    "weight": w,
                    "epochs": s.epochs,
                    "val_nauc": self._nauc(s.key),
                }
                for s, w in members
            ],
        }

    def _nauc(self, key: Key) -> float | None:
        """The validation NAUC in ``key``, JSON-ready."""
        return finite_or_none(key_nauc(key, self.loss_first))

    # ---- state for the planner --------------------------------------------------------------
    def _view(self) -> View:
        nets = self.networks.values()
        return View(
            left=self.deadline - time.perf_counter(),
            pool=tuple(m.name for m in self.pool),
            scores=self.scores,
            costs={n.name: n.seconds_per_epoch for n in nets if n.seconds_per_epoch is not None},
            nets={n.name: NetView(n.epochs, n.last_chunk, n.key) for n in nets if n.epochs},
        )

    def _log(self, event: dict) -> None:
        event["t"] = time.perf_counter() - self._start
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _log_decisions(self) -> None:
        while len(self.planner.decisions) > sum(e["phase"] == "choice" for e in self.events):
            decision = self.planner.decisions[sum(e["phase"] == "choice" for e in self.events)]
            self._log({"phase": "choice", "pruning": self.pruning, "proxy": self.proxy, **decision})

    # ---- actions ----------------------------------------------------------------------------
    def _build(self, name: str) -> nn.Module:
        """Member ``name``'s untrained network, initialised from the seed and its index."""
        member = self.members[name]
        return seeded_build(
            functools.partial(member.build, self.spec), self.seed * 100_003 + self.index[name]
        )

    def _network(self, name: str) -> Network:
        """The network of member ``name``, built on first use."""
        if name not in self.networks:
            model = for_training(self._build(name), self.spec, self.config.augment, self.seed)
            self.networks[name] = Network(name, model, loss_first=self.loss_first)
        return self.networks[name]

    def _score(self, action: Score) -> None:
        """Score members in order until ``action.cap`` seconds (at least one); pool the scores."""
        self.phase = "scoring"
        start = time.perf_counter()
        x, y = proxy_batch(self.train, self.config.proxy_batch, self.seed)
        signs = [1.0 if get_proxy(n).higher_is_better else -1.0 for n in self.names]
        done: list[tuple[str, float]] = []
        for name in action.names:
            if done and time.perf_counter() - start >= action.cap:
                break
            began = time.perf_counter()
            values = score_many(
                self.names, self._build(name), x, y, self.spec.num_classes, self.seed
            )
            self.proxy_rows[name] = [s * values[n] for s, n in zip(signs, self.names, strict=True)]
            done.append((name, time.perf_counter() - began))
        pooled = aggregate_ranks(np.array(list(self.proxy_rows.values())))
        self.scores = dict(zip(self.proxy_rows, pooled.tolist(), strict=True))
        self._log(
            {
                "phase": "score",
                "seconds": time.perf_counter() - start,
                "scored": len(done),
                "total_scored": len(self.scores),
                "members": [{"member": n, "score": self.scores[n], "seconds": s} for n, s in done],
            }
        )

    def _time(self, name: str) -> None:
        """Measure ``name``'s seconds per epoch on one SGD step of a copy (through
        ``train_model``, as it will train; after one untimed set-up step)."""
        self.phase = "timing"
        net = self._network(name)
        model = copy.deepcopy(net.model)
        batch = (self.train[0][: self.batch_size], self.train[1][: self.batch_size])
        config = replace(self.train_config, lr=0.0)
        for _ in range(2):  # the second step is timed: the first pays one-off set-up costs
            step = train_model(model, batch, None, config, self.seed, self.device).seconds
        net.seconds_per_epoch = max(step * -(-len(self.train[0]) // self.batch_size), 1e-6)

    def _train(self, action: Train) -> bool:
        """Train a chunk (at most ``action.cap`` seconds and the time left), validate, log;
        True when the ensemble improved."""
        self.phase = action.phase
        net = self._network(action.name)
        config = replace(self.train_config, epochs=action.epochs)
        result = train_model(
            net.model,
            self.train,
            None,
            config,
            self.seed * 1009 + self._chunks,
            self.device,
            time_budget=max(0.0, min(action.cap, self.deadline - time.perf_counter())),
        )
        self._chunks += 1
        done = len(result.history)
        net.epochs += done
        net.last_chunk = action.epochs
        net.seconds += result.seconds
        net.seconds_per_epoch = max(result.seconds / max(done, 1), 1e-6)
        net.val_nauc, net.val_loss, probs = validate(
            net.model, self.val, self.spec.num_classes, self.device
        )
        improved = False
        previous = self.snapshots.get(net.name)
        if previous is None or net.key > previous.key:
            self.snapshots[net.name] = Snapshot(
                net.name, copy.deepcopy(net.model), net.epochs, probs, net.key
            )
            improved = self._reselect()
        self._log(
            {
                "phase": action.phase,
                "candidate": net.name,
                "epochs": done,
                "epochs_asked": action.epochs,
                "total_epochs": net.epochs,
                "seconds": result.seconds,
                "cut_by_time": result.budget_exhausted,
                "val_nauc": finite_or_none(net.val_nauc),
                "val_loss": finite_or_none(net.val_loss),
                "new_best": improved,
                "ensemble_val_nauc": self._nauc(self.ensemble_key),
            }
        )
        return improved

    def _reselect(self) -> bool:
        """Select an ensemble over the current snapshots; adopt it (True) only when its
        validation key beats the current ensemble's, whose snapshots stay referenced by it, and
        its cross-entropy gain over the current one passes the paired test of
        ``SearchConfig.adopt_z`` (a gain within the split's noise is not worth a new prediction:
        on a small split a network fit to noise would otherwise replace a sound one by chance;
        a held selection is logged)."""
        snapshots = list(self.snapshots.values())
        counts, key = select_ensemble(
            [s.probs for s in snapshots],
            [s.key for s in snapshots],
            self._val_labels,
            self.spec.num_classes,
            self.config.ensemble_rounds,
            self.loss_first,
        )
        if key <= self.ensemble_key:
            return False
        probs = sum(c * s.probs for s, c in zip(snapshots, counts, strict=True)) / sum(counts)
        if self.ensemble_probs is not None and self.config.adopt_z > 0:
            z = loss_gain_z(self.ensemble_probs, probs, self._val_labels)
            if z < self.config.adopt_z:
                self._log(
                    {"phase": "hold", "val_nauc": self._nauc(key), "loss_gain_z": finite_or_none(z)}
                )
                return False
        self.ensemble = [(s, c) for s, c in zip(snapshots, counts, strict=True) if c]
        self.ensemble_key, self.ensemble_probs = key, probs
        return True
