"""Gradient-based newer proxies: ZiCo, GradSign and TE-NAS' NTK condition number.

All three run on ``ctx.clone()`` in train mode (BatchNorm on batch statistics), as the authors
do, and score the network as built (no re-initialisation).
"""

from __future__ import annotations

import math

import torch

from zcproxies.proxies.context import NONFINITE_SCORE, ProxyContext
from zcproxies.proxies.modern_common import seeded, single_value_batchnorm, weight_grads
from zcproxies.proxies.registry import proxy

# TE-NAS scores the NTK of a 16-image batch (VITA-Group/TENAS prune_tenas.py --batch_size 16).
NTK_BATCH = 16
# Condition numbers above this are treated as a singular NTK (float64 round-off territory).
NTK_COND_CAP = 1e8


@proxy(
    "zico",
    needs_labels=True,
    needs_grad=True,
    citation="Li et al., ZiCo: Zero-shot NAS via inverse Coefficient of Variation on "
    "Gradients, ICLR 2023 (SLDGroup/ZiCo)",
)
@seeded
def zico(ctx: ProxyContext) -> float:
    """ZiCo: sum over conv/linear layers of log(sum over weights of mean|g| / std(g)).

    g is the cross-entropy gradient of each of two batches: ``ctx.x`` split into halves (as
    HamsterMimi/MeCo's port of ZiCo does with one batch). Weights whose gradient does not vary
    (std 0) are skipped, and so are layers left with nothing; the lowest score is 0.0 (no layer
    contributes, e.g. an all-``none`` NB201 cell) since every kept ratio is at least 1.
    """
    if len(ctx.x) < 2:
        raise ValueError("zico needs a batch of at least 2 examples (two half-batches)")
    model = ctx.clone()
    per_batch = []
    for xb, yb in zip(torch.tensor_split(ctx.x, 2), torch.tensor_split(ctx.y, 2), strict=True):
        # Gradients of each half on their own, as the paper defines them: SLDGroup's
        # compute_zico.py and MeCo's port never zero the gradients between the batches (their
        # second "batch gradient" is g1 + g2).
        model.zero_grad(set_to_none=True)
        ctx.loss_fn(model(xb), yb).backward()
        per_batch.append(weight_grads(model))
    score = 0.0
    for layer_grads in zip(*per_batch, strict=True):
        grads = torch.stack(layer_grads).double()
        std = grads.std(dim=0, unbiased=False)
        kept = std > 0
        ratio_sum = float((grads.abs().mean(dim=0)[kept] / std[kept]).sum())
        if ratio_sum > 0:
            score += math.log(ratio_sum)
    return score


@proxy(
    "gradsign",
    needs_labels=True,
    needs_grad=True,
    citation="Zhang & Jia, GradSign: Model Performance Inference with Theoretical Insights, "
    "ICLR 2022 (cmu-catalyst/GradSign)",
)
@seeded
def gradsign(ctx: ProxyContext) -> float:
    """GradSign: sum over conv/linear weights of |sum over examples of sign(dL_i/dw)|.

    One forward/backward per example (batch of one, train-mode BatchNorm), as the authors'
    ``get_grad_conflict``. Summed over weights as in the paper and cmu-catalyst's
    zero-cost-nas code (its NAS-Bench-201 script and AZ-NAS' port average instead). The lowest
    score is 0.0 (no gradient reaches any weight). A BatchNorm seeing one value per channel
    (1x1 map) outputs its exact limit, the bias (no gradient through it), where PyTorch raises.
    """
    model = single_value_batchnorm(ctx.clone())
    total: torch.Tensor | None = None
    for i in range(len(ctx.x)):
        model.zero_grad(set_to_none=True)
        ctx.loss_fn(model(ctx.x[i : i + 1]), ctx.y[i : i + 1]).backward()
        signs = torch.cat(weight_grads(model)).sign().double()
        total = signs if total is None else total + signs
    return 0.0 if total is None else float(total.abs().sum())


@proxy(
    "tenas_ntk",
    needs_labels=False,
    needs_grad=True,
    citation="Chen et al., Neural Architecture Search on ImageNet in Four GPU Hours: A "
    "Theoretically Inspired Perspective (TE-NAS), ICLR 2021 (VITA-Group/TENAS)",
)
@seeded
def tenas_ntk(ctx: ProxyContext) -> float:
    """Negative condition number of the NTK (TE-NAS; negated so that higher is better).

    Per example i of the first ``NTK_BATCH`` images, the gradient of the sum of its logits with
    respect to every parameter named ``weight`` (BatchNorm scales included, as TE-NAS) after
    one train-mode forward of the batch; NTK = G G^T; cond = lambda_max / lambda_min. A
    singular NTK (lambda_min <= 0, or cond above ``NTK_COND_CAP``) scores -1e8, the project's
    non-finite score (AZ-NAS' port maps NaN to -1e5).
    """
    model = ctx.clone()
    params = [p for name, p in model.named_parameters() if "weight" in name and p.requires_grad]
    logits = model(ctx.x[:NTK_BATCH])
    rows = []
    for i in range(len(logits)):
        grads = torch.autograd.grad(logits[i].sum(), params, retain_graph=True, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).flatten().double()
                    for g, p in zip(grads, params, strict=True)
                ]
            )
        )
    jac = torch.stack(rows)
    eigenvalues = torch.linalg.eigvalsh(jac @ jac.T)
    lo, hi = float(eigenvalues[0]), float(eigenvalues[-1])
    if not (lo > 0 and hi / lo < NTK_COND_CAP):
        return NONFINITE_SCORE
    return -hi / lo
