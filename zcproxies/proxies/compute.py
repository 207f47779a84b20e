"""Scoring entry points: one proxy, or a set of proxies sharing one context's cached passes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import torch
from torch import nn

from zcproxies.proxies.context import LossFn, ProxyContext
from zcproxies.proxies.losses import task_objective
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
    *,
    space: str | None = None,
    task: str | None = None,
) -> ProxyContext:
    """A fresh context; ``x`` may be a Batch, whose labels and class count are then used.

    ``loss_fn(output, y)`` defaults to the task's own loss and targets when ``space`` and ``task``
    are given (``losses.task_objective``), else to cross-entropy on ``y``.
    ``space``/``task`` name the model's search space and task (proxies normalised per pair).
    """
    if not isinstance(x, torch.Tensor):
        y = x.y if y is None else y
        num_classes = x.num_classes if num_classes is None else num_classes
        x = x.x
    if y is None or num_classes is None:
        raise ValueError("labels y and num_classes are required with a tensor batch")
    if loss_fn is None and space is not None and task is not None:
        loss_fn, y = task_objective(space, task, x, y)
    ctx = ProxyContext(
        model=model, x=x, y=y, num_classes=int(num_classes), seed=seed, space=space, task=task
    )
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
    space: str | None = None,
    task: str | None = None,
) -> float:
    """Proxy ``name`` of ``model`` on one minibatch, through its own fresh context.

    The model is not modified. The result is always finite (NaN/inf become -1e8).
    """
    ctx = make_context(model, batch_x, batch_y, num_classes, seed, loss_fn, space=space, task=task)
    return proxy_value(ctx, name)


def score_many(
    names: Iterable[str],
    model: nn.Module,
    x: torch.Tensor | BatchLike,
    y: torch.Tensor | None = None,
    num_classes: int | None = None,
    seed: int = 0,
    *,
    loss_fn: LossFn | None = None,
    space: str | None = None,
    task: str | None = None,
) -> dict[str, float]:
    """Several proxies of one model through ONE shared context: each equals ``score`` bitwise."""
    infos = [get_proxy(name) for name in names]  # unknown names fail before any work
    ctx = make_context(model, x, y, num_classes, seed, loss_fn, space=space, task=task)
    return {info.name: proxy_value(ctx, info.name) for info in infos}


def proxy_value(ctx: ProxyContext, name: str) -> float:
    """Registered proxy ``name`` on ``ctx`` as a finite float, computed once per context.

    Cached in ``ctx.cache["proxy:<name>"]``: an ensemble and its components asked together share
    each component's work.
    """
    info = get_proxy(name)
    return ctx.cached(f"proxy:{info.name}", lambda: info.fn(ctx))
