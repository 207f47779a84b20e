"""Forward hooks held on a model's modules for one block of code (the proxies' recording passes
and FLOP counting): registered on entry, removed on exit, also when the block raises."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch import nn
from torch.utils.hooks import RemovableHandle


@contextlib.contextmanager
def forward_hooks(hooks: Iterable[tuple[nn.Module, Callable[..., Any]]]) -> Iterator[None]:
    """Register each ``(module, hook)`` pair's forward hook, in order, for the ``with`` block; the
    model is left without them afterwards."""
    handles: list[RemovableHandle] = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
