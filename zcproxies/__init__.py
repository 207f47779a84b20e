"""zcproxies: benchmark search spaces as exact PyTorch models, minibatch data and zero-cost proxies.

The library never imports the ``evaluator`` or ``autodl`` packages; they build on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zcproxies.errors import DataError, InvalidArchitecture, UnknownName, ZcpError

if TYPE_CHECKING:
    from zcproxies.spaces import build, get_space, list_spaces

__version__ = "0.1.0"

_LAZY = {"build", "get_space", "list_spaces"}  # from zcproxies.spaces, which imports torch


def __getattr__(name: str) -> object:
    """``build``, ``get_space``, ``list_spaces`` on first use (PEP 562), so that importing a
    torch-free submodule (``zcproxies.errors``: the ``zcp`` CLI, the AutoDL data path) does not
    pay torch's import."""
    if name in _LAZY:
        from zcproxies import spaces

        return getattr(spaces, name)
    raise AttributeError(f"module 'zcproxies' has no attribute {name!r}")


__all__ = [
    "DataError",
    "InvalidArchitecture",
    "UnknownName",
    "ZcpError",
    "__version__",
    "build",
    "get_space",
    "list_spaces",
]
