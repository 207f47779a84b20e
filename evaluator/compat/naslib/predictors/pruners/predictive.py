"""``naslib.predictors.pruners.predictive``: ``find_measures`` as NASLib's, backed by zcp.

``find_measures(net_orig, dataloader, dataload_info, device, loss_fn, measure_names)`` takes
the data as NASLib did (``"random"``: the first ``n`` batches; ``"grasp"``: ``n`` examples per
class), computes each measure with ``measures.calc_measure`` and returns the LAST measure's
summed value (NASLib's return rule; ask for one measure at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from naslib.predictors.pruners import measures
from naslib.predictors.pruners.p_utils import get_some_data, get_some_data_grasp
from torch import nn


def find_measures_arrays(
    net_orig: nn.Module,
    trainloader: Any,
    dataload_info: tuple[str, int, int],
    device: Any,
    measure_names: list[str] | None = None,
    loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
) -> dict[str, Any]:
    """``{name: per-layer values}`` of each measure on the data ``dataload_info`` selects."""
    names = measures.available_measures if measure_names is None else measure_names
    dataload, amount, num_classes = dataload_info
    if dataload == "random":
        inputs, targets = get_some_data(trainloader, num_batches=amount, device=device)
    elif dataload == "grasp":
        inputs, targets = get_some_data_grasp(trainloader, num_classes, amount, device)
    else:
        raise NotImplementedError(f"dataload {dataload} is not supported")
    return {
        name: measures.calc_measure(name, net_orig, device, inputs, targets, loss_fn=loss_fn)
        for name in names
    }


def find_measures(
    net_orig: nn.Module,
    dataloader: Any,
    dataload_info: tuple[str, int, int],
    device: Any,
    loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
    measure_names: list[str] | None = None,
    measures_arr: dict[str, Any] | None = None,
) -> float:
    """The value of the (last) measure in ``measure_names`` for ``net_orig`` (see module doc)."""
    if measures_arr is None:
        measures_arr = find_measures_arrays(
            net_orig, dataloader, dataload_info, device, measure_names, loss_fn
        )
    value = 0.0
    for name, arrays in measures_arr.items():
        value = float(arrays) if name == "jacov" else _sum(arrays)
    return value


def _sum(arrays: Any) -> float:
    """NASLib's ``sum_arr``: the sum of every per-layer tensor."""
    total = 0.0
    for array in arrays:
        total += float(torch.sum(array))
    return total
