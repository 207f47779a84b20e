"""The AutoDL trainer's settings (``SearchConfig``), torch-free: ``zcp autodl run`` reads them
(``--set``) and prepares the data with them before it imports torch."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

PRUNING_MODES = ("proxy", "random", "baseline")  # how the search prunes (baseline: no search)
WANTED = {int: "an integer", float: "a number"}  # what a --set value of a field's type must be


@dataclass(frozen=True)
class SearchConfig:
    """Knobs of the search (defaults: a 60 s CPU budget; see docs/autodl_trainer.md)."""

    pool_size: int = 256  # pool members: portfolio, the plain grid, NB201 cells for the rest
    first_batch: int = 16  # members the first network is chosen from (and the most members
    # timed by one choice)
    first_slice: int = 4  # of them scored before the first network trains; the rest of the
    # batch is scored between its chunks, and the choice revised
    plain_widths: tuple[int, ...] = (8, 16, 32)  # plain members: these first-stage widths ...
    plain_depths: tuple[int, ...] = (1, 2)  # ... times these blocks per stage (empty: none)
    baseline_width: int = 16  # the fixed baseline: plain c16 d1
    cell_width: int = 8  # C of the NB201 skeleton (stages c, 2c, 4c)
    cells_per_stage: int = 1  # N of the NB201 skeleton
    keep: int = 3  # networks per successive-halving bracket (the first: the first network and
    # keep - 1 challengers; later brackets, while time is left: keep new members)
    proxy_batch: int = 32  # training examples in the proxies' minibatch
    max_size_cpu: int = 16  # working image side on the CPU
    max_size_gpu: int = 32  # working image side with CUDA
    max_frames: int = 4  # video frames folded into channels
    val_fraction: float = 0.2  # of the training data, stratified, for model selection
    small_validation: int = 20  # a validation split of fewer examples ranks by cross-entropy
    # first, and the first network trains target_epochs before it can stop for lack of gain
    scoring_fraction: float = 0.1  # cap on each proxy scoring, share of the time left
    halving_fraction: float = 0.5  # share of the time left given to successive halving
    min_epochs: int = 4  # a member whose time share allows fewer epochs is passed over
    target_epochs: int = 32  # ... and below this many it pays cost_penalty per halving
    cost_penalty: float = 0.25  # utility lost per halving of the epochs below target_epochs
    max_epochs: int = 200  # a network stops there (the first network at half of it)
    ensemble_rounds: int = 5  # greedy selection over the snapshots (1: the best one)
    adopt_z: float = 0.0  # the noise gate, off by default (measured: it pays where nothing
    # learns and costs 0.01-0.05 ALC elsewhere): > 0, a selected ensemble replaces the
    # predicting one only when its per-example validation cross-entropy is lower by this many
    # standard errors of the paired differences (1.645: a one-sided test at 5 %)
    augment: bool = True  # random translations and flips while training image/video networks
    portfolio: bool = False  # the first network from the portfolio (autodl/portfolio.json)
    batch_size: int = 64  # SGD minibatch (lowered by safe_batch_size where needed)
    lr: float = 0.05  # SGD learning rate at the start of every chunk's cosine schedule

    @property
    def plain(self) -> list[tuple[int, int]]:
        """(width, depth) of the pool's plain members."""
        return list(itertools.product(self.plain_widths, self.plain_depths))

    def max_size(self, device: str | None) -> int:
        """The working image side for training ``device`` (a torch device string; None: the
        CPU, where the run decides before torch is imported)."""
        cuda = device is not None and str(device).startswith("cuda")
        return self.max_size_gpu if cuda else self.max_size_cpu

    def with_overrides(self, changes: Mapping[str, object]) -> SearchConfig:
        """A copy with ``changes`` to its fields; string values are parsed by the field's type
        (numbers; booleans true/false; comma-separated integers for tuples, '' = empty)."""
        parsed = {}
        names = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown search setting {key!r}; one of {sorted(names)}")
            current = getattr(self, key)
            if not isinstance(value, str):
                parsed[key] = value
            elif isinstance(current, bool):
                if value not in ("true", "false"):
                    raise ValueError(f"{key}={value!r}: a boolean is true or false")
                parsed[key] = value == "true"
            else:
                parse = type(current)
                try:
                    if isinstance(current, tuple):
                        parsed[key] = tuple(int(v) for v in value.split(",") if v)
                    else:
                        parsed[key] = parse(value)
                except ValueError:
                    tup = isinstance(current, tuple)
                    wanted = "comma-separated integers" if tup else WANTED[parse]
                    example = ",".join(map(str, current)) if tup else current
                    raise ValueError(f"{key}={value!r}: {wanted}, e.g. {key}={example}") from None
        return replace(self, **parsed)
