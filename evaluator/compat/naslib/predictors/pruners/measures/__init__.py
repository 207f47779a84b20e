"""``naslib.predictors.pruners.measures``: the measure registry of zero-cost-nas, backed by zcp.

``available_measures`` lists every zcp proxy (``zcp proxies``) followed by the measures a
submission registers itself with ``@measure(name, bn=..., copy_net=...)``, which NASLib's
``calc_measure`` and ``find_measures`` then compute exactly as NASLib did (on a copy of the
network, BatchNorm disabled when ``bn=False``). For a zcp proxy, ``calc_measure`` returns the
proxy's total as a one-entry per-layer list (``jacov``: the number itself), so
``find_measures``' sum gives the proxy's value.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from zcproxies.proxies import get_proxy, list_proxies, score

_CUSTOM: dict[str, Callable[..., Any]] = {}
available_measures: list[str] = [info.name for info in list_proxies()]


def _no_op(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x


def copynet(net: nn.Module, bn: bool) -> nn.Module:
    """A deep copy of ``net``; with ``bn=False`` its BatchNorm layers pass their input through."""
    copied = copy.deepcopy(net)
    if not bn:
        for layer in copied.modules():
            if isinstance(layer, (nn.BatchNorm2d, nn.BatchNorm1d)):
                layer.forward = types.MethodType(_no_op, layer)
    return copied


def measure(
    name: str, bn: bool = True, copy_net: bool = True, force_clean: bool = True, **impl_args: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(net, inputs, targets, loss_fn=..., split_data=..., **impl_args)`` as
    measure ``name`` (a duplicate name raises ``KeyError``, as in NASLib)."""

    def make_impl(func: Callable[..., Any]) -> Callable[..., Any]:
        def impl(net_orig: nn.Module, device: Any, *args: Any, **kwargs: Any) -> Any:
            net = copynet(net_orig, bn).to(device) if copy_net else net_orig
            return func(net, *args, **kwargs, **impl_args)

        if name in available_measures:
            raise KeyError(f"Duplicated measure! {name}")
        available_measures.append(name)
        _CUSTOM[name] = impl
        return func

    return make_impl


def calc_measure(
    name: str,
    net: nn.Module,
    device: Any,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    split_data: int = 1,
) -> Any:
    """Measure ``name`` of ``net`` on (inputs, targets) (see the module doc for the form)."""
    if name in _CUSTOM:
        return _CUSTOM[name](net, device, inputs, targets, loss_fn=loss_fn, split_data=split_data)
    info = get_proxy(name)  # unknown names: an error listing the known ones
    value = score(
        info.name,
        net,
        inputs,
        targets,
        num_classes=getattr(net, "num_classes", None) or _classes(targets),
        seed=torch.initial_seed(),  # the evaluator seeds each architecture: the built-in's seed
        loss_fn=loss_fn,
        space=getattr(getattr(net, "_space", None), "name", None),
        task=getattr(net, "dataset", None) if hasattr(net, "_space") else None,
    )
    value = value if info.higher_is_better else -value
    return value if name == "jacov" else [torch.tensor(value, dtype=torch.float64)]


def _classes(targets: torch.Tensor) -> int:
    """A class count for a bare module: one more than the largest label."""
    return int(targets.max()) + 1 if targets.dim() == 1 and targets.numel() else 1
