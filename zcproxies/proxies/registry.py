"""The proxy registry: a proxy is a plain function registered by name with its metadata.

Like the ``@measure`` registry of SamsungLabs' zero-cost-nas, but each entry also says whether it
needs labels or gradients, which direction is better, and whether it scores one architecture or
ranks a population.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from zcproxies.errors import UnknownName
from zcproxies.proxies.context import ProxyContext, finite_score

ProxyFn = Callable[[ProxyContext], float]


@dataclass(frozen=True)
class ProxyInfo:
    """A registered proxy and what a caller must know to use it."""

    name: str
    fn: ProxyFn  # always returns a finite float (``finite_score``)
    needs_labels: bool
    needs_grad: bool
    higher_is_better: bool
    population: bool  # True: the score is only meaningful as a rank within a population
    data_free: bool  # True: the score ignores the minibatch's content (shape only)
    citation: str
    description: str


_REGISTRY: dict[str, ProxyInfo] = {}


def proxy(
    name: str,
    *,
    needs_labels: bool,
    needs_grad: bool,
    citation: str,
    higher_is_better: bool = True,
    population: bool = False,
    data_free: bool = False,
) -> Callable[[ProxyFn], ProxyFn]:
    """Register ``fn(ctx) -> float`` as proxy ``name`` (the docstring's first line describes it).

    The one registration path of every proxy: the registered (and returned) function is ``fn``
    made finite by ``finite_score`` (NaN/inf become -1e8), so every caller (``score``,
    ``zcp proxies``, the evaluator's NASLib shim) gets the same values.
    """

    def register(fn: ProxyFn) -> ProxyFn:
        if name in _REGISTRY:
            raise ValueError(f"proxy {name!r} registered twice")

        @functools.wraps(fn)
        def finite(ctx: ProxyContext) -> float:
            return finite_score(fn(ctx))

        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ProxyInfo(
            name=name,
            fn=finite,
            needs_labels=needs_labels,
            needs_grad=needs_grad,
            higher_is_better=higher_is_better,
            population=population,
            data_free=data_free,
            citation=citation,
            description=doc[0] if doc else "",
        )
        return finite

    return register


def get_proxy(name: str) -> ProxyInfo:
    """The registered proxy ``name``; a clear error lists the known names otherwise."""
    _load_builtin()
    if name not in _REGISTRY:
        raise UnknownName(f"unknown proxy {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_proxies() -> list[ProxyInfo]:
    """All registered proxies, sorted by name."""
    _load_builtin()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


BUILTIN_MODULES = (
    "zcproxies.proxies.classic",
    "zcproxies.proxies.modern",
    "zcproxies.proxies.ensemble",
)


def _load_builtin() -> None:
    """Import the modules that define the built-in proxies (they register on import)."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
