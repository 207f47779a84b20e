"""``naslib.predictors.pruners.p_utils``: taking data from a loader, per-layer metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def get_some_data(
    train_dataloader: Any, num_batches: int, device: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``num_batches`` batches of the loader, concatenated."""
    batches = []
    iterator = iter(train_dataloader)
    for _ in range(num_batches):
        batches.append(next(iterator))
    inputs = torch.cat([x for x, _ in batches]).to(device)
    targets = torch.cat([y for _, y in batches]).to(device)
    return inputs, targets


def get_some_data_grasp(
    train_dataloader: Any, num_classes: int, samples_per_class: int, device: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """``samples_per_class`` examples of every class, in class order (reads batches until each
    class has them; a loader that runs out raises ``StopIteration`` as NASLib's did)."""
    found: list[list[torch.Tensor]] = [[] for _ in range(num_classes)]
    labels: list[list[torch.Tensor]] = [[] for _ in range(num_classes)]
    full: set[int] = set()
    iterator = iter(train_dataloader)
    while len(full) < num_classes:
        inputs, targets = next(iterator)
        for i in range(inputs.shape[0]):
            category = int(targets[i])
            if len(found[category]) == samples_per_class:
                full.add(category)
                continue
            found[category].append(inputs[i : i + 1])
            labels[category].append(targets[i : i + 1])
    x = torch.cat([torch.cat(parts) for parts in found]).to(device)
    y = torch.cat([torch.cat(parts) for parts in labels]).view(-1).to(device)
    return x, y


def get_layer_metric_array(
    net: nn.Module, metric: Callable[[nn.Module], Any], mode: str
) -> list[Any]:
    """``metric(layer)`` of every Conv2d/Linear layer (in ``channel`` mode, layers marked
    ``dont_ch_prune`` are skipped)."""
    return [
        metric(layer)
        for layer in net.modules()
        if isinstance(layer, (nn.Conv2d, nn.Linear))
        and not (mode == "channel" and hasattr(layer, "dont_ch_prune"))
    ]


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
