"""The uniform search-space API: every benchmark space is a ``SearchSpace`` subclass.

An architecture ("arch") is always a hashable Python value equal to NASLib's key for that
space read as a literal (tuples of ints), so ``space.encode`` and ``space.decode`` are exact
inverses of the keys found in NAS-Bench-Suite-Zero files.
"""

from __future__ import annotations

import ast
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from zcproxies.errors import InvalidArchitecture, UnknownName

Arch = Any  # a hashable, space-specific tuple (see each space's docstring)

# Which network ``build`` makes (docs/competition.md, "The models"): ``benchmark`` is the network
# the benchmark's own code trains and NAS-Bench-Suite-Zero scores; ``naslib`` is the one the
# 2022 competition's evaluator (NASLib's automl-conf-competition branch) passed to ``query``.
FLAVORS = ("benchmark", "naslib")


def check_flavor(flavor: str) -> str:
    """``flavor`` if it is one of ``FLAVORS``; a ValueError naming the choices otherwise."""
    if flavor not in FLAVORS:
        raise ValueError(f"unknown model flavor {flavor!r}; choose one of: {', '.join(FLAVORS)}")
    return flavor


@dataclass(frozen=True)
class Task:
    """A task of a space: what the network's head outputs and which data feeds it."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]  # (channels, height, width) of one example
    dataset: str  # name of the minibatch dataset in ``zcproxies.data``
    kind: str = "classification"  # classification | jigsaw | ...
    description: str = ""


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A numpy Generator from a seed or a Generator; ``None`` is refused (seeds are explicit)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("a seed or numpy Generator is required (seeds are explicit in zcp)")
    return np.random.default_rng(int(rng))


def to_tuple(value: Any) -> Any:
    """Recursively turn lists (e.g. from JSON) into tuples so archs are hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(to_tuple(v) for v in value)
    if isinstance(value, np.ndarray):
        return to_tuple(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


class SearchSpace(ABC):
    """A benchmark search space: membership, encodings, hashing and exact PyTorch models."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    tasks: dict[str, Task] = {}  # noqa: RUF012  (overridden per subclass, never mutated)

    # ---- membership -------------------------------------------------------------------
    @abstractmethod
    def validate(self, arch: Arch) -> Arch:
        """Return ``arch`` in canonical tuple form, or raise ``InvalidArchitecture``."""

    @abstractmethod
    def sample(self, rng: np.random.Generator | int) -> Arch:
        """A uniformly sampled valid architecture (seeded)."""

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture of a finite space, in a fixed order."""
        raise InvalidArchitecture(f"space {self.name!r} is too large to enumerate")

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of distinct encodings in the space (see the space's docstring)."""

    # ---- encodings --------------------------------------------------------------------
    def encode(self, arch: Arch) -> str:
        """NASLib's key string of ``arch`` (as written in NAS-Bench-Suite-Zero files)."""
        return str(self.validate(arch))

    def decode(self, key: str) -> Arch:
        """Inverse of ``encode``: parse a NASLib key string."""
        try:
            value = ast.literal_eval(key.strip())
        except (ValueError, SyntaxError) as exc:
            raise InvalidArchitecture(f"{self.name}: cannot parse key {key!r}: {exc}") from None
        return self.validate(to_tuple(value))

    @abstractmethod
    def to_string(self, arch: Arch) -> str:
        """The benchmark's own string form of ``arch`` (e.g. NB201's ``|op~0|+...``)."""

    @abstractmethod
    def from_string(self, text: str) -> Arch:
        """Inverse of ``to_string``."""

    def parse(self, arch: Arch | str) -> Arch:
        """Accept an arch value, a NASLib key string or the benchmark's string form."""
        if not isinstance(arch, str):
            return self.validate(to_tuple(arch))
        text = arch.strip()
        if text[:1] in "([":
            return self.decode(text)
        return self.from_string(text)

    @abstractmethod
    def canonical_key(self, arch: Arch) -> str:
        """A string equal for architectures the benchmark treats as the same network."""

    def canonical_hash(self, arch: Arch) -> str:
        """Short stable hash of ``canonical_key`` (hex, 16 chars)."""
        return hashlib.sha256(self.canonical_key(arch).encode()).hexdigest()[:16]

    # ---- models -----------------------------------------------------------------------
    def task(self, task: str | Task | None) -> Task:
        """Resolve a task name (``None``: the space's first task)."""
        if isinstance(task, Task):
            return task
        if task is None:
            return next(iter(self.tasks.values()))
        if task not in self.tasks:
            raise UnknownName(
                f"space {self.name!r} has no task {task!r}; tasks: {', '.join(self.tasks)}"
            )
        return self.tasks[task]

    @abstractmethod
    def _build(self, arch: Arch, task: Task, flavor: str) -> nn.Module:
        """Construct the network (called with a validated arch, a resolved task and a checked
        flavor; a space whose two flavors are one network ignores ``flavor``)."""

    def build(
        self,
        arch: Arch | str,
        task: str | Task | None = None,
        seed: int = 0,
        flavor: str = "benchmark",
    ) -> nn.Module:
        """The network of ``arch`` on ``task`` in ``flavor`` (``FLAVORS``), initialised from
        ``seed``.

        The global torch RNG is left untouched: initialisation draws from a forked generator.
        """
        check_flavor(flavor)
        arch = self.parse(arch)
        spec = self.task(task)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._build(arch, spec, flavor)

    @abstractmethod
    def describe(self, arch: Arch) -> str:
        """A readable multi-line summary of the cell(s) of ``arch``."""
