"""Machinery shared by the newer zero-cost proxies of ``modern.py``.

Seeded randomness (a local ``torch.Generator``, never the global RNG), the authors'
re-initialisations, ReLU activation codes, pattern counting and the rank combiners of the
population proxies (AZ-NAS, TE-NAS). The finite-value rule, the weight layers and the ReLU rule
are the project's own (``context.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from zcproxies.hooks import forward_hooks
from zcproxies.proxies.context import ProxyContext, is_relu, weight_layers
from zcproxies.proxies.registry import ProxyFn


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded from ``seed``: all randomness of a proxy draws from it.

    Draws are made on the CPU and then moved to the model's device, so a CUDA run sees the same
    random numbers as a CPU run (and CPU scores stay bitwise reproducible)."""
    return torch.Generator().manual_seed(int(seed))


def seeded(fn: ProxyFn) -> ProxyFn:
    """Run proxy ``fn`` under ``ctx.seeded_rng()``: randomness inside the model (dropout) is
    seeded from ``ctx.seed`` and the caller's global RNG state is left as it was."""

    @functools.wraps(fn)
    def wrapper(ctx: ProxyContext) -> float:
        with ctx.seeded_rng():
            return fn(ctx)

    return wrapper


def weight_grads(model: nn.Module) -> list[torch.Tensor]:
    """Flattened ``.grad`` of each weight layer's weight (zeros where no gradient reached it)."""
    return [
        (m.weight.grad if m.weight.grad is not None else torch.zeros_like(m.weight)).flatten()
        for m in weight_layers(model)
    ]


def _batchnorm_forward(module: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """Train-mode BatchNorm, defined on one value per channel too: (x - mean) is 0 there, so
    the output is the bias (zeros without affine), where ``F.batch_norm`` refuses the input."""
    if module.training and x.numel() == x.shape[1]:
        bias = module.bias if module.bias is not None else torch.zeros_like(x[0])
        return bias.reshape(1, -1, *[1] * (x.dim() - 2)).expand_as(x).clone()
    return type(module).forward(module, x)


def single_value_batchnorm(model: nn.Module) -> nn.Module:
    """``model`` with every BatchNorm accepting a batch of one with one value per channel (a
    single example reaching a 1x1 map, e.g. a 64x64 jigsaw tile through 6 downsamplings)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.forward = functools.partial(_batchnorm_forward, module)
    return model


@torch.no_grad()
def reinit_(model: nn.Module, init_weight: Callable[[torch.Tensor], Any]) -> None:
    """Re-initialise in place as the authors do: ``init_weight`` on Conv2d/Linear weights, zero
    biases, BatchNorm/GroupNorm scale 1 and shift 0.

    ``init_weight`` fills a CPU tensor (CPU generators), which is then copied to the weight's
    device."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fresh = torch.empty(module.weight.shape, dtype=module.weight.dtype)
            init_weight(fresh)
            module.weight.copy_(fresh)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@torch.no_grad()
def relu_codes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Binary activation codes (N, neurons) of ``x``: 1 where a ReLU output is positive.

    Every ReLU-family module (``context.is_relu``) fed a 4-D tensor is recorded, as TE-NAS' and
    SWAP's hooks record ``nn.ReLU``; functional ReLUs are invisible to hooks and not counted.
    """
    codes: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if inputs[0].dim() == 4:
            codes.append(output.reshape(len(x), -1) > 0)

    with forward_hooks((m, hook) for m in model.modules() if is_relu(m)):
        model(x)
    return (
        torch.cat(codes, 1) if codes else torch.zeros(len(x), 0, dtype=torch.bool, device=x.device)
    )


def count_unique_rows(codes: torch.Tensor) -> int:
    """Number of distinct rows of a boolean matrix (distinct activation patterns of samples)."""
    if codes.shape[1] == 0:
        return min(len(codes), 1)
    return int(torch.unique(codes.to(torch.uint8), dim=0).shape[0])


def count_unique_columns(codes: torch.Tensor) -> int:
    """Number of distinct columns of a boolean (N, M) matrix, N <= 20 (distinct neuron patterns).

    Each column is packed into an integer (bit i = row i) and the distinct codes are counted
    with a histogram of 2^N bins (several times faster than ``unique`` on 10^6 neurons).
    """
    if len(codes) > 20:
        raise ValueError(f"at most 20 samples are supported, got {len(codes)}")
    # float32 holds every integer below 2^24 exactly, so the product is an exact packing
    bits = torch.tensor([float(1 << i) for i in range(len(codes))], device=codes.device)
    packed = (bits @ codes.to(torch.float32)).to(torch.int64)
    return int(torch.count_nonzero(torch.bincount(packed, minlength=1)))


def rank_combine(scores: pd.DataFrame, columns: Sequence[str], log: bool) -> np.ndarray:
    """Per row, the sum over ``columns`` of the rank (``log``: of log(rank/N)); ties share ranks.

    Ranks are ascending (rank N = highest value), so every column must be higher-is-better.
    """
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise ValueError(f"score table lacks columns {missing}; it has {list(scores.columns)}")
    values = scores[list(columns)].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("population scores must be finite (the proxies never return NaN/inf)")
    ranks = np.column_stack([stats.rankdata(col) for col in values.T])
    if log:
        return np.log(ranks / len(values)).sum(axis=1)
    return ranks.sum(axis=1)
