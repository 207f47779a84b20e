"""Activation-based newer proxies: MeCo, SWAP and TE-NAS' linear-region count.

None needs labels or a backward pass; all run ``ctx.clone()`` in train mode (BatchNorm on batch
statistics), as the authors' scripts do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zcproxies.hooks import forward_hooks
from zcproxies.proxies.context import ProxyContext
from zcproxies.proxies.modern_common import (
    count_unique_columns,
    count_unique_rows,
    generator,
    reinit_,
    relu_codes,
    seeded,
    single_value_batchnorm,
)
from zcproxies.proxies.registry import proxy

# SWAP (pym1024/SWAP correlation.py): 16 input samples, scores averaged over re-initialisations.
SWAP_SAMPLES = 16
# The authors average 32 re-initialisations; 4 keep a CPU budget (the mean only reduces noise).
SWAP_REPEATS = 4


def min_correlation_eigenvalue(feature: torch.Tensor) -> float:
    """Smallest eigenvalue of the channel correlation matrix of one example's feature map.

    ``feature`` is (C, ...) and is read as C rows of length H*W; NaN/inf correlations (constant
    channels, one position per channel) are zeroed as MeCo does. Computed in float64 with the
    symmetric solver (MeCo: float32 ``torch.linalg.eig``, same eigenvalues up to round-off).
    """
    rows = feature.reshape(feature.shape[0], -1).double()
    if rows.shape[1] < 2:  # every correlation is NaN, zeroed: the all-zero matrix
        return 0.0
    corr = torch.nan_to_num(torch.corrcoef(rows), nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr.reshape(len(rows), len(rows)))[0])


@proxy(
    "meco",
    needs_labels=False,
    needs_grad=False,
    citation="Jiang et al., MeCo: Zero-Shot NAS with One Data and Single Forward Pass via "
    "Minimum Eigenvalue of Correlation, NeurIPS 2023 (HamsterMimi/MeCo)",
)
@seeded
def meco(ctx: ProxyContext) -> float:
    """MeCo: sum over every module of the minimum eigenvalue of its output's channel correlation.

    One train-mode forward of the first example only (MeCo's NAS-Bench-201 script uses batch
    size 1, so BatchNorm normalises that example's own statistics); the model itself is hooked
    too. Modules whose output is not a tensor (tuples) are skipped. Scores are >= 0 up to
    round-off (correlation matrices are positive semi-definite): an all-zero network scores 0.
    A BatchNorm seeing one value per channel (1x1 map) outputs its exact limit, the bias, where
    PyTorch (and so MeCo's code) raises.
    """
    model = single_value_batchnorm(ctx.clone())
    values: list[float] = []

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.dim() >= 2:
            values.append(min_correlation_eigenvalue(output[0].detach()))

    with forward_hooks((m, hook) for m in model.modules()), torch.no_grad():
        model(ctx.x[:1])
    return float(sum(values))


@proxy(
    "swap",
    needs_labels=False,
    needs_grad=False,
    citation="Peng et al., SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS, "
    "ICLR 2024 (pym1024/SWAP)",
)
@seeded
def swap(ctx: ProxyContext) -> float:
    """SWAP: number of distinct per-neuron activation patterns over 16 examples.

    Post-ReLU signs of every ReLU fed a 4-D tensor, for the first ``SWAP_SAMPLES`` images; a
    neuron's pattern is its 0/1 vector over the samples. Averaged over ``SWAP_REPEATS``
    re-initialisations (conv/linear weights N(0, 1), zero biases, BN 1/0) drawn from a
    generator seeded by ``ctx.seed``. A network without ReLU activity scores 1 (one pattern).
    """
    model = ctx.clone()
    gen = generator(ctx.seed)
    x = ctx.x[:SWAP_SAMPLES]
    counts = []
    for _ in range(SWAP_REPEATS):
        reinit_(model, lambda w: nn.init.normal_(w, 0.0, 1.0, generator=gen))
        counts.append(count_unique_columns(relu_codes(model, x)))
    return sum(counts) / len(counts)


@proxy(
    "tenas_lr",
    needs_labels=False,
    needs_grad=False,
    data_free=True,
    citation="Chen et al., Neural Architecture Search on ImageNet in Four GPU Hours: A "
    "Theoretically Inspired Perspective (TE-NAS), ICLR 2021 (VITA-Group/TENAS)",
)
@seeded
def tenas_lr(ctx: ProxyContext) -> float:
    """TE-NAS linear regions: number of distinct ReLU activation patterns over Gaussian inputs.

    The inputs are a Gaussian batch of ``ctx.x``'s shape drawn from a generator seeded by
    ``ctx.seed`` (AZ-NAS' NAS-Bench-201 port of TE-NAS: one batch of the search batch size; the
    original counts 3000 one-channel 3x3 crops on a width-1 copy of the supernet). On
    benchmark-width networks every connected architecture reaches the cap, the batch size;
    only degenerate ones (no input reaches a ReLU) score lower, down to 1.
    """
    model = ctx.clone()
    x = torch.randn(ctx.x.shape, generator=generator(ctx.seed)).to(ctx.x.device)
    return float(count_unique_rows(relu_codes(model, x)))
