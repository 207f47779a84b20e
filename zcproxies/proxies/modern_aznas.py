"""AZ-NAS' four components (Lee & Ham, CVPR 2024; cvlab-yonsei/AZ-NAS), per architecture.

One pass (cached in ``ctx.cache``) re-initialises a copy of the network (Kaiming-normal fan-in
conv/linear weights, zero biases, BN 1/0), feeds a Gaussian batch of ``ctx.x``'s shape and
records the block features (the stem and every cell/layer output, the authors'
``extract_cell_features`` for NAS-Bench-201). From them: expressivity, progressivity and
trainability; complexity is the FLOP count. The paper's AZ-NAS score is the population rank
combination ``aznas_population`` in ``modern.py``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zcproxies.hooks import forward_hooks
from zcproxies.measure import count_flops
from zcproxies.proxies.context import ProxyContext, finite_score
from zcproxies.proxies.modern_common import generator, reinit_
from zcproxies.proxies.registry import proxy

CITATION = (
    "Lee & Ham, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search, "
    "CVPR 2024 (cvlab-yonsei/AZ-NAS)"
)
CACHE_KEY = "modern.aznas"


def trunk_blocks(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs AZ-NAS reads as successive block features.

    In the first module (``model`` itself, then its submodules in order) that has a trunk
    attribute ``cells``, ``layers`` or ``blocks`` (a Sequential/ModuleList): its ``stem`` if any,
    then every trunk element. NB201: stem + 17 cells, the authors' ``extract_cell_features``;
    NB101: ``layers``; DARTS: stem + cells; TransNAS-Bench-101: the encoder's stem + layers.
    A network without a trunk attribute: its direct children except ``global_pool`` and
    ``classifier``.
    """
    for module in model.modules():
        for name in ("cells", "layers", "blocks"):
            trunk = getattr(module, name, None)
            if isinstance(trunk, (nn.Sequential, nn.ModuleList)):
                stem = getattr(module, "stem", None)
                return ([stem] if isinstance(stem, nn.Module) else []) + list(trunk)
    head = {id(getattr(model, n, None)) for n in ("global_pool", "classifier")}
    return [m for m in model.children() if id(m) not in head]


def block_features(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs (kept in the autograd graph) of ``trunk_blocks`` that are 4-D, in call order."""
    features: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            features.append(output)

    with forward_hooks((m, hook) for m in trunk_blocks(model)):
        model(x)
    return features


def spectral_entropy(feature: torch.Tensor) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance of a (B, C, H, W) map.

    Every position of every example is one C-dimensional sample. Eigenvalues are clamped at 0
    (round-off can make them slightly negative; the authors' ``log(p + 1e-8)`` then NaNs for
    some): NaN when the covariance is zero (a constant feature map).
    """
    rows = feature.detach().permute(0, 2, 3, 1).reshape(-1, feature.shape[1]).double()
    rows = rows - rows.mean(dim=0, keepdim=True)
    eigenvalues = torch.linalg.eigvalsh(rows.T @ rows / len(rows)).clamp(min=0.0)
    p = eigenvalues / eigenvalues.sum()
    return float(-(p * torch.log(p + 1e-8)).sum())


def spectral_score(sigma: float) -> float:
    """AZ-NAS' per-block trainability term -sigma - 1/sigma + 2, maximal (0) at sigma = 1."""
    return -sigma - 1.0 / (sigma + 1e-6) + 2.0


def unshuffle_factor(f_in: torch.Tensor, f_out: torch.Tensor) -> int | None:
    """The integer factor by which a block shrinks both spatial sides, or ``None``.

    Pairs without one (upsampling blocks, non-nesting resolutions) cannot be folded onto the
    output's grid and are left out of trainability; NB201, NB101 and DARTS networks have none.
    """
    (h_in, w_in), (h_out, w_out) = f_in.shape[2:], f_out.shape[2:]
    if h_in % h_out or w_in % w_out or h_in // h_out != w_in // w_out:
        return None
    return h_in // h_out


def block_trainability(f_in: torch.Tensor, f_out: torch.Tensor, gen: torch.Generator) -> float:
    """Spectral term of the block f_in -> f_out, probed with a random +-1 backward.

    The input gradient is space-to-depth folded onto the output's resolution (pixel unshuffle);
    M = g_in^T g_out / positions; sigma = its largest singular value. An identity block (the
    gradient passes unchanged) is -inf, as the authors score it.
    """
    g_out = torch.randint(0, 2, f_out.shape, generator=gen).to(f_out.device, f_out.dtype) * 2 - 1
    (g_in,) = torch.autograd.grad(f_out, f_in, g_out, retain_graph=True, allow_unused=True)
    if g_in is None:  # f_out does not depend on f_in at all
        g_in = torch.zeros_like(f_in)
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf
    factor = unshuffle_factor(f_in, f_out) or 1  # callers pass only pairs that have one
    if factor > 1:
        g_in = F.pixel_unshuffle(g_in, factor)
    g_in = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1]).double()
    g_out = g_out.permute(0, 2, 3, 1).reshape(-1, g_out.shape[1]).double()
    sigma = float(torch.linalg.matrix_norm(g_in.T @ g_out / len(g_out), ord=2))
    return spectral_score(sigma)


def aznas_components(ctx: ProxyContext) -> dict[str, float]:
    """The four AZ-NAS components of ``ctx``'s network, computed once per context."""

    def compute() -> dict[str, float]:
        model = ctx.clone()
        gen = generator(ctx.seed)
        reinit_(
            model,
            lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu", generator=gen),
        )
        # requires_grad: every feature stays in the graph even after parameter-free blocks
        x = torch.randn(ctx.x.shape, generator=gen).to(ctx.x.device).requires_grad_(True)
        features = block_features(model, x)
        entropies = np.array([spectral_entropy(f) for f in features])
        pairs = [
            (a, b) for a, b in itertools.pairwise(features) if unshuffle_factor(a, b) is not None
        ]
        # The authors probe the blocks from the last to the first.
        train_terms = [block_trainability(a, b, gen) for a, b in reversed(pairs)]
        # NaN (-> -1e8) when undefined: one block, or no block pair
        progressivity = np.diff(entropies).min() if len(entropies) > 1 else math.nan
        trainability = np.mean(train_terms) if train_terms else math.nan
        return {
            "expressivity": finite_score(entropies.sum()),
            "progressivity": finite_score(progressivity),
            "trainability": finite_score(trainability),
            "complexity": float(count_flops(model, tuple(ctx.x.shape[1:]), convention="nb201")),
        }

    with ctx.seeded_rng():
        return ctx.cached(CACHE_KEY, compute)


@proxy("az_expressivity", needs_labels=False, needs_grad=False, data_free=True, citation=CITATION)
def az_expressivity(ctx: ProxyContext) -> float:
    """AZ-NAS expressivity: sum over blocks of the spectral entropy of the feature covariance.

    -1e8 when a block's features are constant (e.g. after an all-``none`` NB201 cell).
    """
    return aznas_components(ctx)["expressivity"]


@proxy("az_progressivity", needs_labels=False, needs_grad=False, data_free=True, citation=CITATION)
def az_progressivity(ctx: ProxyContext) -> float:
    """AZ-NAS progressivity: smallest block-to-block increase of the spectral entropy.

    -1e8 when a block's features are constant.
    """
    return aznas_components(ctx)["progressivity"]


@proxy("az_trainability", needs_labels=False, needs_grad=True, data_free=True, citation=CITATION)
def az_trainability(ctx: ProxyContext) -> float:
    """AZ-NAS trainability: mean over blocks of -s - 1/s + 2, s the block Jacobian's norm.

    -1e8 when a block passes its gradient unchanged (the authors' -inf).
    """
    return aznas_components(ctx)["trainability"]


@proxy("az_complexity", needs_labels=False, needs_grad=False, data_free=True, citation=CITATION)
def az_complexity(ctx: ProxyContext) -> float:
    """AZ-NAS complexity: forward FLOPs of one example (NAS-Bench-201's counting convention)."""
    return aznas_components(ctx)["complexity"]
