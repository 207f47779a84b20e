"""zcproxies: benchmark search spaces as exact PyTorch models, minibatch data and zero-cost proxies.

The library never imports the ``evaluator`` or ``autodl`` packages; they build on it.
"""

from __future__ import annotations

import importlib
from typing import Any

from zcproxies.errors import DataError, InvalidArchitecture, UnknownName, ZcpError

__version__ = "0.1.0"
# Imported on first use (they import torch): ``zcp --help`` and the evaluator's light paths stay
# fast.
_LAZY = {
    "build": "zcproxies.spaces",
    "get_space": "zcproxies.spaces",
    "list_spaces": "zcproxies.spaces",
}


def __getattr__(name: str) -> Any:
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
