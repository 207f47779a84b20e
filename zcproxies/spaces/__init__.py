"""Registry of search spaces and the one model constructor ``build(space, arch, task)``."""

from __future__ import annotations

from torch import nn

from zcproxies.errors import UnknownName
from zcproxies.spaces.base import FLAVORS, Arch, SearchSpace, Task
from zcproxies.spaces.nb101 import NasBench101
from zcproxies.spaces.nb201 import NasBench201, NasBench201Mini
from zcproxies.spaces.nb301 import NasBench301
from zcproxies.spaces.transnas import TransNasMacro, TransNasMicro

_SPACES: dict[str, SearchSpace] = {}
_ALIASES: dict[str, str] = {}


def register_space(space: SearchSpace) -> SearchSpace:
    """Add a space instance under its name and aliases."""
    _SPACES[space.name] = space
    for alias in (space.name, *space.aliases):
        _ALIASES[alias.lower()] = space.name
    return space


def get_space(name: str | SearchSpace) -> SearchSpace:
    """The registered space called ``name`` (case-insensitive; aliases such as ``nb201``)."""
    if isinstance(name, SearchSpace):
        return name
    key = _ALIASES.get(name.lower())
    if key is None:
        raise UnknownName(f"unknown search space {name!r}; known: {', '.join(_SPACES)}")
    return _SPACES[key]


def list_spaces() -> list[SearchSpace]:
    """All registered spaces, in registration order."""
    return list(_SPACES.values())


def build(
    space: str | SearchSpace,
    arch: Arch | str,
    task: str | None = None,
    seed: int = 0,
    flavor: str = "benchmark",
) -> nn.Module:
    """The network of ``arch`` in ``space`` for ``task`` (like timm's create_model).

    ``flavor``: ``"benchmark"`` (the benchmark's own network) or ``"naslib"`` (the network the
    2022 competition's NASLib evaluator scored; see docs/competition.md).
    """
    return get_space(space).build(arch, task, seed=seed, flavor=flavor)


for _space in (
    NasBench101(),
    NasBench201(),
    NasBench201Mini(),
    NasBench301(),
    TransNasMicro(),
    TransNasMacro(),
):
    register_space(_space)

__all__ = [
    "FLAVORS",
    "Arch",
    "SearchSpace",
    "Task",
    "build",
    "get_space",
    "list_spaces",
    "register_space",
]
