"""Zero-cost proxies: a registry of ``fn(ctx) -> float`` and the functions that score models.

``score("synflow", model, x, y, num_classes)`` scores one proxy; ``score_many(names, ...)``
scores several through one context so that they share forward/backward passes.
"""

from zcproxies.proxies.compute import make_context, score, score_many
from zcproxies.proxies.context import NONFINITE_SCORE, ProxyContext, finite_score
from zcproxies.proxies.registry import ProxyInfo, get_proxy, list_proxies, proxy

__all__ = [
    "NONFINITE_SCORE",
    "ProxyContext",
    "ProxyInfo",
    "finite_score",
    "get_proxy",
    "list_proxies",
    "make_context",
    "proxy",
    "score",
    "score_many",
]
