"""Scoring entry points: one proxy, or a set of proxies sharing one context's cached passes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import torch
from torch import nn

from zcproxies.proxies.context import LossFn, ProxyContext, finite_score
from zcproxies.proxies.registry import get_proxy


class BatchLike(Protocol):
    """Anything with ``x``, ``y`` and ``num_classes``, e.g. ``zcproxies.data.Batch``."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int


def make_context(
    model: nn.Module,
    x: torch.Tensor | BatchLike,
    y: torch.Tensor | None = None,
    num_classes: int | None = None,
    seed: int = 0,
    loss_fn: LossFn | None = None,
) -> ProxyContext:
    """A fresh context; ``x`` may be a Batch, whose labels and class count are then used.

    ``loss_fn(output, y)`` defaults to cross-entropy; give the task's loss for other heads.
    """
    if not isinstance(x, torch.Tensor):
        y = x.y if y is None else y
        num_classes = x.num_classes if num_classes is None else num_classes
        x = x.x
    if y is None or num_classes is None:
        raise ValueError("labels y and num_classes are required with a tensor batch")
    ctx = ProxyContext(model=model, x=x, y=y, num_classes=int(num_classes), seed=seed)
    if loss_fn is not None:
        ctx.loss_fn = loss_fn
    return ctx


def score(
    name: str,
    model: nn.Module,
    batch_x: torch.Tensor | BatchLike,
    batch_y: torch.Tensor | None = None,
    num_classes: int | None = None,
    seed: int = 0,
    *,
    loss_fn: LossFn | None = None,
) -> float:
    """Proxy ``name`` of ``model`` on one minibatch, through its own fresh context.

    The model is not modified. The result is always finite (NaN/inf become -1e8).
    """
    ctx = make_context(model, batch_x, batch_y, num_classes, seed, loss_fn)
    return finite_score(get_proxy(name).fn(ctx))


def score_many(
    names: Iterable[str],
    model: nn.Module,
    x: torch.Tensor | BatchLike,
    y: torch.Tensor | None = None,
    num_classes: int | None = None,
    seed: int = 0,
    *,
    loss_fn: LossFn | None = None,
) -> dict[str, float]:
    """Several proxies of one model through ONE shared context: each equals ``score`` bitwise."""
    infos = [get_proxy(name) for name in names]  # unknown names fail before any work
    ctx = make_context(model, x, y, num_classes, seed, loss_fn)
    return {info.name: finite_score(info.fn(ctx)) for info in infos}
