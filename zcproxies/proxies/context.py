"""The per-architecture scoring context handed to every proxy function.

A context holds the model as built (never modified: proxies that change weights or modes work on
``ctx.clone()``), the minibatch, and a seed. Quantities several proxies need (one cross-entropy
backward, the input Jacobian, ReLU codes) are computed once per context and cached, so scoring a
set of proxies through one context shares those passes and gives the same numbers as scoring
each proxy through its own context.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class ProxyContext:
    """Model + minibatch + seed for one architecture, with a cache of shared computations."""

    model: nn.Module
    x: torch.Tensor  # (N, C, H, W) float32 input batch
    y: torch.Tensor  # (N,) int64 labels (ignored by label-free proxies)
    num_classes: int
    seed: int = 0
    cache: dict[str, Any] = field(default_factory=dict)

    def clone(self) -> nn.Module:
        """A deep copy of the model in train mode, for proxies that modify weights or modes."""
        model = copy.deepcopy(self.model)
        model.train()
        return model
