"""zcproxies: benchmark search spaces as exact PyTorch models, minibatch data and zero-cost proxies.

The library never imports the ``evaluator`` or ``autodl`` packages; they build on it.
"""

from zcproxies.errors import DataError, InvalidArchitecture, UnknownName, ZcpError
from zcproxies.spaces import build, get_space, list_spaces

__version__ = "0.1.0"

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
