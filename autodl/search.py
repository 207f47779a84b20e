"""Proxy-pruned architecture search with any-time training: the engine of ``autodl.model.Model``.

One run works towards one deadline (the end of the time budget less a reserve for testing):

1. any-time first model: a linear probe (``build_linear_probe``) trained for a second or two, so
   that the first prediction comes within seconds;
2. warm-up (search modes, ``warmup_fraction`` > 0): the baseline network (``build_baseline``,
   also a pool member) in chunks of doubling epochs until a chunk does not improve it, it has
   ``max_epochs / 2`` epochs or ``warmup_fraction`` of the time left is spent (default: all of
   it): a good network within seconds, and no search while more epochs of it are a sure gain;
   the search then has to beat it: it is the incumbent, one of the ``keep`` networks of the
   halving (``keep_incumbent``), going on from its training;
3. candidates: a pool of ``pool_size`` networks adapted to the input: every plain network of the
   baseline's family in the config's width x depth grid (the baseline among them) and distinct,
   connected NB201 cells (one per isomorphism class) for the rest, scored by a zero-cost proxy
   (or a rank aggregation of several) on one minibatch of the training data; members join the
   incumbent in the proxy's order until there are ``keep``, passing over those too slow for the
   budget: a member whose measured seconds per epoch would give it fewer than
   ``min_rung_epochs`` epochs in its share of the first rung (the minimum resource below which
   successive halving compares noise: Li et al., Hyperband, JMLR 2018). ``pruning="random"``
   walks the same pool in a random order (and spends nothing on scoring);
   ``pruning="baseline"`` skips the search and trains one fixed network (``build_baseline``);
4. successive halving (``eta`` = 2) over the kept candidates: rung r gives each of its n_r
   survivors an equal share of the rung's time (``halving_fraction`` of the time left when
   halving starts, split evenly over the rungs; at most ``max_epochs / 2`` epochs in all per
   candidate), trained round-robin in chunks of doubling epochs (any-time: the rung's first
   predictions come after one epoch); the best 1/eta by validation score go on;
5. the winner trains on in chunks of doubling epochs until the deadline or ``max_epochs``;
6. time left after that goes to the halving's other networks (best first), the same way, for
   the ensemble (a network that has converged gains less from more epochs than the ensemble
   gains from a second one).

Every chunk is one ``zcproxies.train.train_model`` call capped by ``time_budget``. With
``continued_schedule`` a network's chunks carry on one SGD + cosine schedule (``TrainState``)
over the epochs it would get if it won (re-planned to end at the deadline once it has won);
without (the default, measured better: docs/autodl_trainer.md), each chunk restarts the
schedule over its own epochs (warm restarts), so every prediction comes from an annealed
network. Image and video networks (not the probe) train on randomly translated and mirrored
inputs (``networks.TrainAugment``). After each chunk the network is scored on the validation
split (NAUC, ties broken by the lower cross-entropy). Predictions come from an ensemble: greedy
selection with replacement (Caruana et al., 2004) over the best snapshot of every network trained
so far, on the validation split, replaced only when that improves (``ensemble_rounds`` = 1: the
best single network).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from autodl.errors import ScoringError
from autodl.families import FAMILY_DOMAINS, family_baseline, family_pool, proxy_view
from autodl.metrics import nauc
from autodl.networks import (
    DENSE_OPS,
    TrainAugment,
    build_baseline,
    build_candidate,
    build_linear_probe,
)
from autodl.preprocess import InputSpec
from zcproxies.proxies import get_proxy, score_many
from zcproxies.spaces.nb201 import OPS, NasBench201
from zcproxies.train import TrainConfig, TrainState, predict_logits, train_model

PRUNING_MODES = ("proxy", "random", "baseline")
PROXY_CHOICE_PATH = Path(__file__).with_name("proxy_choice.json")
Arch = tuple[int, ...]
Split = tuple[torch.Tensor, torch.Tensor]  # (inputs, class ids)
_SPACE = NasBench201()


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


@dataclass(frozen=True)
class Member:
    """A pool member: NB201 cell ``cell`` in NB201's skeleton or, when ``cell`` is None, a plain
    network of the baseline's family (``build_baseline``) of ``width`` and ``depth``."""

    cell: Arch | None = None
    width: int = 0
    depth: int = 1

    @property
    def name(self) -> str:
        """The cell's NB201 string, or ``plain c<width> d<depth>``."""
        if self.cell is not None:
            return _SPACE.to_string(self.cell)
        return f"plain c{self.width} d{self.depth}"

    def build(self, spec: InputSpec, config: SearchConfig) -> nn.Module:
        """The member's network for inputs of ``spec`` (untrained, current torch RNG)."""
        if self.cell is not None:
            return build_candidate(self.cell, spec, config.width, config.cells_per_stage)
        return build_baseline(spec, self.width, self.depth)


def candidate_pool(
    domain: str, size: int, seed: int, plain: Sequence[tuple[int, int]] = ()
) -> list[Member]:
    """``size`` members for ``domain`` in a seeded order: the plain networks of ``plain``
    ((width, depth) pairs) and NB201 cells of distinct isomorphism classes drawn from ``seed``."""
    if domain in FAMILY_DOMAINS:  # speech, time series, text: autodl.families
        return family_pool(domain, size, seed)
    rng = np.random.default_rng(seed)
    members = [Member(width=width, depth=depth) for width, depth in plain][:size]
    cells = distinct_cells(domain == "tabular")
    picks = rng.choice(len(cells), size=min(size - len(members), len(cells)), replace=False)
    members += [Member(cells[i]) for i in picks]
    return [members[i] for i in rng.permutation(len(members))]


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


def score_pool(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    names: Sequence[str],
    seed: int,
    deadline: float = math.inf,
    minimum: int = 1,
) -> np.ndarray:
    """(scored models, proxies) table of proxy values, higher = better, in ``models`` order.

    Scoring stops at ``deadline`` (``time.perf_counter()`` seconds) once ``minimum`` models are
    scored; the models left out are dropped from the search.
    """
    signs = np.array([1.0 if get_proxy(name).higher_is_better else -1.0 for name in names])
    rows = []
    for model in models:
        if len(rows) >= minimum and time.perf_counter() >= deadline:
            break
        values = score_many(names, *proxy_view(model, x), y, num_classes, seed)
        rows.append([values[name] for name in names])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names)) * signs


def halving_rungs(k: int, eta: int = 2) -> list[int]:
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


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: ``round(val_fraction * n_c)`` of each class (by argmax)
    go to validation, drawn from ``seed``; a class of one example stays in training."""
    classes = np.asarray(labels).argmax(axis=1)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(classes):
        members = rng.permutation(np.flatnonzero(classes == c))
        n_val = round(val_fraction * len(members)) if len(members) > 1 else 0
        val.extend(members[:n_val].tolist())
    val_idx = np.sort(np.asarray(val, dtype=np.int64))
    train_idx = np.setdiff1d(np.arange(len(classes)), val_idx)
    return train_idx, val_idx


def finite_or_none(value: float) -> float | None:
    """``value``, or None when it is infinite or NaN (JSON has no infinities)."""
    return value if math.isfinite(value) else None


def seeded_build(builder: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``builder()`` with torch's RNG forked and seeded (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()


def pool_network(
    member: Member, spec: InputSpec, config: SearchConfig, seed: int, index: int
) -> nn.Module:
    """Member ``index`` of the pool drawn from ``seed``: its network, initialised from both."""
    return seeded_build(functools.partial(member.build, spec, config), seed * 100_003 + index)


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


def probability_key(probs: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[float, float]:
    """(NAUC, -mean cross-entropy) of class probabilities ``probs`` for class ids ``y``: the
    order of networks and ensembles. NAUC falls back to 2 * accuracy - 1 when no class has both
    positives and negatives; non-finite probabilities give (-inf, -inf)."""
    if not np.all(np.isfinite(probs)):
        return -math.inf, -math.inf
    loss = float(-np.log(np.maximum(probs[np.arange(len(y)), y], 1e-300)).mean())
    try:
        score = nauc(np.eye(num_classes)[y], probs)
    except ScoringError:
        score = 2 * float((probs.argmax(1) == y).mean()) - 1
    return score, -loss


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


def select_ensemble(
    probs: Sequence[np.ndarray],
    own_keys: Sequence[tuple[float, float]],
    y: np.ndarray,
    num_classes: int,
    rounds: int,
) -> tuple[list[int], tuple[float, float]]:
    """Greedy ensemble selection with replacement (Caruana et al., ICML 2004): ``rounds`` times,
    add the member whose addition gives the average of probabilities the best validation key;
    returns the member counts of the best prefix and its key. One round: the best member.
    ``own_keys``: the members' own ``probability_key`` values (the first round, not recomputed)."""
    counts, keys = [0] * len(probs), list(own_keys)
    best_counts, best_key = counts, (-math.inf, -math.inf)
    total = np.zeros_like(probs[0])
    for size in range(1, max(1, rounds) + 1):
        if size > 1:
            keys = [probability_key((total + p) / size, y, num_classes) for p in probs]
        pick = max(range(len(probs)), key=keys.__getitem__)  # first on ties
        counts = [c + (i == pick) for i, c in enumerate(counts)]
        total = total + probs[pick]
        if keys[pick] > best_key:
            best_counts, best_key = counts, keys[pick]
    return best_counts, best_key


@dataclass(frozen=True)
class SearchConfig:
    """Knobs of the search (defaults: a 60 s CPU budget; see docs/autodl_trainer.md)."""

    pool_size: int = 32  # pool members: the plain grid, NB201 cells for the rest
    plain_widths: tuple[int, ...] = (8, 16, 32)  # plain members: these first-stage widths ...
    plain_depths: tuple[int, ...] = (1, 2)  # ... times these blocks per stage (empty: none)
    keep: int = 3  # candidates that survive pruning and enter successive halving
    eta: int = 2  # successive halving keeps 1/eta per rung
    width: int = 8  # C of the NB201 skeleton (stages c, 2c, 4c)
    baseline_width: int = 16  # the baseline CNN's first stage (stages c, 2c, 4c), depth 1
    cells_per_stage: int = 1  # N of the NB201 skeleton
    proxy_batch: int = 32  # training examples in the proxies' minibatch
    max_size_cpu: int = 16  # working image side on the CPU
    max_size_gpu: int = 32  # working image side with CUDA
    max_frames: int = 4  # video frames folded into channels
    val_fraction: float = 0.2  # of the training data, stratified, for model selection
    probe_seconds: float = 2.0  # cap on the any-time linear probe (and 5 % of the time left)
    probe_epochs: int = 20
    scoring_fraction: float = 0.15  # cap on proxy scoring, share of the time left
    halving_fraction: float = 0.5  # share of the time left given to successive halving
    warmup_fraction: float = 1.0  # search modes: the baseline network first, at most this share
    # of the time left (1: until it stops improving, has max_epochs / 2 epochs or time is up)
    keep_incumbent: bool = True  # the warm-up network is one of the ``keep`` in the halving
    min_rung_epochs: int = 4  # members slower than this many epochs per first-rung share go
    max_epochs: int = 200  # the winner stops there (done_training)
    ensemble_rounds: int = 5  # greedy selection over the networks' snapshots (1: the best one)
    augment: bool = True  # random translations and flips while training image/video networks
    continued_schedule: bool = False  # True: one LR schedule per network; False: restart per chunk
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=1, batch_size=64, lr=0.05)
    )

    @property
    def plain(self) -> list[tuple[int, int]]:
        """(width, depth) of the pool's plain members."""
        return list(itertools.product(self.plain_widths, self.plain_depths))


@dataclass
class Candidate:
    """A network in training with its bookkeeping; ``key`` orders candidates (higher = better)."""

    name: str
    model: nn.Module
    state: TrainState | None = None  # its LR schedule, carried over its chunks
    epochs: int = 0  # epochs trained so far (a budget-cut epoch counts)
    last_epochs: int = 0  # epochs asked of the last chunk
    seconds: float = 0.0  # training wall time so far
    seconds_per_epoch: float | None = None
    val_nauc: float = -math.inf
    val_loss: float = math.inf

    @property
    def key(self) -> tuple[float, float]:
        """(validation NAUC, -validation cross-entropy)."""
        return (self.val_nauc, -self.val_loss)


@dataclass(frozen=True)
class Snapshot:
    """A frozen copy of a network at its best validation key so far, with its validation
    probabilities (what ensemble selection combines)."""

    name: str
    model: nn.Module
    epochs: int
    probs: np.ndarray
    key: tuple[float, float]


class AnytimeSearch:
    """Runs the plan of the module docstring in chunks; ``predict`` uses the ensemble so far.

    ``run(deadline)`` trains chunk after chunk until the ensemble improves (then a new
    prediction is worth making), the plan ends, or no chunk fits before ``deadline`` (both set
    ``done``). ``events`` logs every chunk and the pool's scores. The ensemble: greedy selection
    (``select_ensemble``, ``ensemble_rounds``) over the best snapshot of every network trained so
    far (probe included), on the validation split; it changes only when that improves its key.
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
    ) -> None:
        if pruning not in PRUNING_MODES:
            raise ValueError(f"pruning must be one of {PRUNING_MODES}, got {pruning!r}")
        self.spec, self.val = spec, val
        self.pruning, self.seed = pruning, seed
        self.proxy = (proxy or default_proxy()) if pruning == "proxy" else None
        self.names = proxy_names(self.proxy) if self.proxy else ()
        self.config = config or SearchConfig()
        self.device = torch.device(device)
        # the training split lives on the device (no copy per batch); proxies take a CPU batch
        self.train: Split = (train[0].to(self.device), train[1].to(self.device))
        self.batch_size = safe_batch_size(len(train[0]), self.config.train.batch_size)
        self.events: list[dict] = []
        self.snapshots: dict[str, Snapshot] = {}  # each network's best so far, by name
        self.ensemble: list[tuple[Snapshot, int]] = []  # the predicting snapshots and weights
        self.ensemble_key: tuple[float, float] = (-math.inf, -math.inf)
        self._val_labels = val[1].numpy()
        self.done = False
        self.deadline = math.inf
        self._start = time.perf_counter()
        self._chunks = 0
        self._plan_steps = self._plan()

    # ---- driving ----------------------------------------------------------------------------
    def run(self, deadline: float) -> bool:
        """Train until the ensemble improves (True), or the plan or time ends (False)."""
        self.deadline = deadline
        for improved in self._plan_steps:
            if improved:
                return True
        self.done = True
        return False

    def predict(self, x: torch.Tensor) -> np.ndarray:
        """Class probabilities for inputs ``x``: the ensemble's weighted mean of softmaxes."""
        if not self.ensemble:
            raise RuntimeError("no network trained yet: call run() first")
        total = None
        for snapshot, weight in self.ensemble:
            logits = predict_logits(
                snapshot.model, x, self.config.train.eval_batch_size, self.device
            ).double()
            probs = weight * torch.softmax(logits, dim=1)
            total = probs if total is None else total + probs
        return (total / sum(w for _, w in self.ensemble)).float().numpy()

    @property
    def best(self) -> Snapshot | None:
        """The best single network so far (its snapshot), None before the first chunk."""
        return max(self.snapshots.values(), key=lambda s: s.key, default=None)

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
            "val_nauc": finite_or_none(self.ensemble_key[0]),
            "members": [
                {
                    "name": s.name,
                    "weight": w,
                    "epochs": s.epochs,
                    "val_nauc": finite_or_none(s.key[0]),
                }
                for s, w in members
            ],
        }

    def _left(self) -> float:
        """Seconds until the deadline."""
        return self.deadline - time.perf_counter()

    def _elapsed(self) -> float:
        return time.perf_counter() - self._start

    # ---- the plan ---------------------------------------------------------------------------
    def _plan(self) -> Iterator[bool]:
        """Yields after each chunk whether the ensemble improved."""
        cfg = self.config
        probe = Candidate(
            "linear probe",
            seeded_build(functools.partial(build_linear_probe, self.spec), self.seed),
        )
        yield self._train_chunk(
            probe, cfg.probe_epochs, min(cfg.probe_seconds, 0.05 * self._left()), "probe"
        )
        if self.pruning == "baseline":
            alive = [self._baseline()]
        else:
            warm: Candidate | None = None
            if cfg.warmup_fraction > 0:
                warm = self._baseline()
                self._plan_schedule(warm)
                yield from self._warm_up(warm, cfg.warmup_fraction * self._left())
            if self._left() <= 0:  # the warm-up used the time: nothing left to search with
                return
            alive = self._select(warm if warm is not None and warm.epochs else None)
        if not alive:  # time ran out before a member was timed
            return
        entrants = list(alive)
        for cand in alive:
            self._plan_schedule(cand)
        if len(alive) > 1:
            rung_seconds = self._rung_seconds(len(alive))
            for rung, survivors in enumerate(halving_rungs(len(alive), cfg.eta)):
                alive = sorted(alive, key=lambda c: c.key, reverse=True)[:survivors]
                share = rung_seconds / survivors
                goals = {
                    cand.name: cand.epochs
                    + max(
                        1,
                        min(
                            int(share / self._epoch_seconds(cand)),
                            cfg.max_epochs // 2 - cand.epochs,
                        ),
                    )
                    for cand in alive
                }
                yield from self._rung(alive, goals, 1.5 * share, f"rung {rung}")
                if self._left() <= 0:
                    return
        winner = alive[0]
        yield from self._extend(winner, "extend")
        # time left after the winner's last epoch: the runners-up train on for the ensemble
        for cand in sorted(entrants, key=lambda c: c.key, reverse=True):
            if cand is not winner:
                yield from self._extend(cand, "runner-up")

    def _extend(self, cand: Candidate, phase: str) -> Iterator[bool]:
        """``cand`` in chunks of doubling epochs (from twice its last) until ``max_epochs`` or
        no epoch fits before the deadline; its schedule, if any, re-planned to end by then."""
        cfg = self.config
        while cand.epochs < cfg.max_epochs:
            fit = self._fit(cand, cfg.max_epochs - cand.epochs)
            if cand.state is not None:
                cand.state.total_epochs = cand.epochs + fit
            epochs = min(max(1, 2 * cand.last_epochs), fit)
            if epochs < 1:
                return
            yield self._train_chunk(cand, epochs, self._left(), phase)

    def _baseline(self) -> Candidate:
        """The baseline network, named as the pool's member of the same architecture."""
        cfg = self.config
        if self.spec.domain in FAMILY_DOMAINS:
            arch = family_baseline(self.spec.domain)
            net = seeded_build(functools.partial(arch.build, self.spec), self.seed)
            return Candidate(arch.name, net)
        net = seeded_build(
            functools.partial(build_baseline, self.spec, cfg.baseline_width), self.seed
        )
        return Candidate(
            Member(width=cfg.baseline_width).name,
            for_training(net, self.spec, cfg.augment, self.seed),
        )

    def _plan_schedule(self, cand: Candidate) -> None:
        """With ``continued_schedule``, give ``cand`` its one schedule (once): over the epochs it
        would get if it trained alone until the deadline."""
        if self.config.continued_schedule and cand.state is None:
            cand.state = TrainState(max(1, self._fit(cand, self.config.max_epochs)))

    def _warm_up(self, cand: Candidate, seconds: float) -> Iterator[bool]:
        """The search's any-time start: the baseline network in chunks of doubling epochs (1, 2,
        4, ...) for at most ``seconds`` and ``max_epochs / 2`` epochs, until a chunk does not
        improve its validation key. Yields as ``_train_chunk``."""
        end, epochs = time.perf_counter() + seconds, 1
        while end > time.perf_counter() and self._left() > 0:
            epochs = min(epochs, self.config.max_epochs // 2 - cand.epochs)
            if epochs < 1:
                return
            before = cand.key
            yield self._train_chunk(cand, epochs, end - time.perf_counter(), "warm-up")
            if cand.key <= before:
                return
            epochs *= 2

    def _rung(
        self, alive: list[Candidate], goals: dict[str, int], cap: float, phase: str
    ) -> Iterator[bool]:
        """One rung of successive halving, any-time: round after round, each candidate (best
        first) trains a chunk of doubling epochs (1, 2, 4, ... in its first rung; twice its last
        chunk later) until it has its ``goals`` epochs, so the rung's first predictions come
        after one epoch rather than after a whole share. Yields as ``_train_chunk``."""
        size = {c.name: 1 if c.epochs == 0 else 2 * c.last_epochs for c in alive}
        while True:
            pending = [c for c in alive if c.epochs < goals[c.name]]
            if not pending:
                return
            for cand in pending:
                if self._left() <= 0:
                    return
                before = cand.epochs
                epochs = min(size[cand.name], goals[cand.name] - cand.epochs)
                yield self._train_chunk(cand, epochs, cap, phase)
                size[cand.name] = 2 * epochs
                if cand.epochs == before:  # cut by time before one epoch: the rung is over
                    goals[cand.name] = cand.epochs

    def _rung_seconds(self, k: int) -> float:
        """Seconds of each rung when successive halving over ``k`` candidates starts now."""
        return self.config.halving_fraction * self._left() / len(halving_rungs(k, self.config.eta))

    def _select(self, warm: Candidate | None) -> list[Candidate]:
        """The candidates that enter successive halving, logged as an event: the warm-up network
        ``warm`` (the incumbent, with ``keep_incumbent``; it goes on from its training) and pool
        members in the pruning's order (proxy ranking or a random one), each timed and passed
        over when its first-rung share would give it fewer than ``min_rung_epochs`` epochs, until
        ``keep``; without the incumbent, ``warm``'s member goes on from it where it is reached."""
        cfg = self.config
        start = time.perf_counter()
        pool = candidate_pool(self.spec.domain, cfg.pool_size, self.seed, cfg.plain)
        index = {m: i for i, m in enumerate(pool)}  # a member's network is seeded by its draw

        def build(member: Member) -> nn.Module:
            return pool_network(member, self.spec, cfg, self.seed, index[member])

        x, y = proxy_batch(self.train, cfg.proxy_batch, self.seed)
        if self.pruning == "random":
            order = np.random.default_rng(self.seed).permutation(len(pool)).tolist()
            scores: list[float | None] = [None] * len(pool)
        else:
            models = [build(m) for m in pool]
            table = score_pool(
                models,
                x,
                y,
                self.spec.num_classes,
                self.names,
                self.seed,
                start + cfg.scoring_fraction * self._left(),
            )
            pooled = aggregate_ranks(table)
            order = np.argsort(-pooled, kind="stable").tolist()
            scores = [*pooled.tolist(), *[None] * (len(pool) - len(pooled))]
        scored = time.perf_counter() - start
        incumbent = warm if cfg.keep_incumbent else None
        chosen = [incumbent] if incumbent is not None else []
        share = self._rung_seconds(cfg.keep) / cfg.keep
        too_slow: list[Candidate] = []  # passed over, timed
        for i in order:
            if len(chosen) >= cfg.keep or self._left() <= 0:
                break
            member = pool[i]
            if warm is not None and member.name == warm.name:
                if incumbent is not None:  # already in
                    continue
                cand = warm
            else:
                cand = Candidate(
                    member.name, for_training(build(member), self.spec, cfg.augment, self.seed)
                )
            if share < cfg.min_rung_epochs * self._epoch_seconds(cand):
                too_slow.append(cand)
            else:
                chosen.append(cand)
        if not chosen and too_slow:  # nothing fast enough, no incumbent: the fastest, not none
            chosen.append(min(too_slow, key=self._epoch_seconds))
        slow = {c.name for c in too_slow if c not in chosen}
        timed = {c.name: c.seconds_per_epoch for c in [*chosen, *too_slow]}
        names = {c.name for c in chosen}
        self.events.append(
            {
                "phase": "pool",
                "pruning": self.pruning,
                "proxy": self.proxy,
                "seconds": time.perf_counter() - start,
                "scoring_seconds": scored,
                "t": self._elapsed(),
                "scored": sum(s is not None for s in scores),
                "incumbent": None if incumbent is None else incumbent.name,
                "rung_share_seconds": share,
                "pool": [
                    {
                        "member": m.name,
                        "score": s,
                        "kept": m.name in names,
                        "too_slow": m.name in slow,
                        "seconds_per_epoch": timed.get(m.name),
                    }
                    for m, s in zip(pool, scores, strict=True)
                ],
            }
        )
        return chosen

    # ---- chunks -----------------------------------------------------------------------------
    def _epoch_seconds(self, cand: Candidate) -> float:
        """Seconds per epoch: measured by the candidate's chunks, else timed on one SGD step of a
        copy (through ``train_model``, as it will train; after one untimed set-up step)."""
        if cand.seconds_per_epoch is None:
            model = copy.deepcopy(cand.model)
            batch = (self.train[0][: self.batch_size], self.train[1][: self.batch_size])
            config = replace(self.config.train, epochs=1, batch_size=self.batch_size, lr=0.0)
            for _ in range(2):  # the second step is timed: the first pays one-off set-up costs
                step = train_model(model, batch, None, config, self.seed, self.device).seconds
            cand.seconds_per_epoch = step * -(-len(self.train[0]) // self.batch_size)
        return max(cand.seconds_per_epoch, 1e-3)

    def _fit(self, cand: Candidate, most: int) -> int:
        """Epochs of ``cand`` that fit in the time left, at most ``most``."""
        return min(most, int(self._left() / self._epoch_seconds(cand)))

    def _train_chunk(self, cand: Candidate, epochs: int, cap: float, phase: str) -> bool:
        """Train ``cand`` for ``epochs`` (at most ``cap`` seconds and the time left), validate,
        log; True when the ensemble improved."""
        config = replace(self.config.train, epochs=epochs, batch_size=self.batch_size)
        result = train_model(
            cand.model,
            self.train,
            None,
            config,
            self.seed * 1009 + self._chunks,
            self.device,
            time_budget=max(0.0, min(cap, self._left())),
            state=cand.state,
        )
        self._chunks += 1
        done = len(result.history)
        cand.epochs += done
        cand.last_epochs = epochs
        cand.seconds += result.seconds
        cand.seconds_per_epoch = result.seconds / max(done, 1)
        cand.val_nauc, cand.val_loss, probs = validate(
            cand.model, self.val, self.spec.num_classes, self.device
        )
        improved = False
        previous = self.snapshots.get(cand.name)
        if previous is None or cand.key > previous.key:
            self.snapshots[cand.name] = Snapshot(
                cand.name, copy.deepcopy(cand.model), cand.epochs, probs, cand.key
            )
            improved = self._reselect()
        self.events.append(
            {
                "phase": phase,
                "candidate": cand.name,
                "epochs": done,
                "epochs_asked": epochs,
                "total_epochs": cand.epochs,
                "seconds": result.seconds,
                "t": self._elapsed(),
                "cut_by_time": result.budget_exhausted,
                "lr_factor": None  # the schedule's multiplier of the initial LR, now
                if cand.state is None
                else cand.state.factor(-(-len(self.train[0]) // self.batch_size)),
                "val_nauc": finite_or_none(cand.val_nauc),
                "val_loss": finite_or_none(cand.val_loss),
                "new_best": improved,
                "ensemble_val_nauc": finite_or_none(self.ensemble_key[0]),
            }
        )
        return improved

    def _reselect(self) -> bool:
        """Select an ensemble over the current snapshots; adopt it (True) only when its
        validation key beats the current ensemble's, whose snapshots stay referenced by it."""
        snapshots = list(self.snapshots.values())
        counts, key = select_ensemble(
            [s.probs for s in snapshots],
            [s.key for s in snapshots],
            self._val_labels,
            self.spec.num_classes,
            self.config.ensemble_rounds,
        )
        if key <= self.ensemble_key:
            return False
        self.ensemble = [(s, c) for s, c in zip(snapshots, counts, strict=True) if c]
        self.ensemble_key = key
        return True
