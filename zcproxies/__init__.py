"""zcproxies: benchmark search spaces as exact PyTorch models, minibatch data and zero-cost proxies.

The library never imports the ``evaluator`` or ``autodl`` packages; they build on it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zcproxies.errors import DataError, InvalidArchitecture, UnknownName, ZcpError

if TYPE_CHECKING:
    from zcproxies.spaces import build, get_space, list_spaces

__version__ = "0.1.0"
# Imported on first use (they import torch): ``zcp --help``, the evaluator's light paths and the
# AutoDL data path stay fast and torch-free.
_LAZY = {
    "build": "zcproxies.spaces",
    "get_space": "zcproxies.spaces",
    "list_spaces": "zcproxies.spaces",
}


def __getattr__(name: str) -> Any:
    """The torch-importing attributes in ``_LAZY`` on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
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
