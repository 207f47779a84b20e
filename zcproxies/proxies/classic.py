"""The 13 zero-cost proxies of NAS-Bench-Suite-Zero, with NASLib's conventions.

Conventions (NASLib ``naslib/predictors/pruners``, SamsungLabs' zero-cost-nas): the network is
scored as built, in train mode (BatchNorm uses batch statistics); per-weight proxies read only
Conv2d/Linear weights and sum over elements and layers; every score is "higher is better"; NaN or
infinite scores become -1e8 (``finite_score``). Proxies that change weights or modes work on a
clone; grad_norm, snip, plain, fisher, grasp, jacov, epe_nas and nwot share one forward of one
clone through the context's cached passes (see ``zcproxies.proxies.context``).

Deviations from the reference, all numerically negligible or confined to degenerate cases, are
marked "Deviation" below and listed in ``docs/proxies.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from zcproxies.hooks import forward_hooks
from zcproxies.measure import count_flops, count_params
from zcproxies.proxies.context import (
    NONFINITE_SCORE,
    ProxyContext,
    weight_layers,
)
from zcproxies.proxies.registry import proxy

# The 13 proxies of NAS-Bench-Suite-Zero, in its table order.
NSZ_PROXIES = (
    "params",
    "flops",
    "l2_norm",
    "grad_norm",
    "snip",
    "plain",
    "grasp",
    "fisher",
    "synflow",
    "jacov",
    "nwot",
    "epe_nas",
    "zen",
)

EPS = 1e-5  # the k of jacov's and epe_nas's log(. + k), as in the reference
ZEN_MIXUP = 1e-2  # Zen-NAS's mixup_gamma: x' = x + 0.01 * eps

NSZ = "Krishnakumar et al., NAS-Bench-Suite-Zero, NeurIPS 2022 Datasets and Benchmarks"
ABDELFATTAH = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"


def total(values: Iterable[torch.Tensor]) -> float:
    """Sum of per-layer tensors: each summed in its dtype, the layer sums added in float64."""
    return sum((float(v.sum()) for v in values), 0.0)


def corrcoef(rows: torch.Tensor) -> torch.Tensor:
    """``np.corrcoef`` of the rows of a 2-D tensor, in float64, clipped to [-1, 1] like numpy.

    Rows of zero variance give NaN entries, as in numpy (callers turn them into -1e8).
    """
    rows = rows.to(torch.float64)
    centred = rows - rows.mean(dim=1, keepdim=True)
    cov = centred @ centred.T  # numpy's 1/(D-1) factor cancels in the ratio below
    std = cov.diagonal().sqrt()
    return (cov / std[:, None] / std[None, :]).clamp(-1.0, 1.0)


# ---- size ---------------------------------------------------------------------------------
@proxy("params", needs_labels=False, needs_grad=False, data_free=True, citation=NSZ)
def params(ctx: ProxyContext) -> float:
    """Number of trainable parameters, in millions (NAS-Bench-Suite-Zero's ``params``)."""
    return count_params(ctx.model) / 1e6


@proxy("flops", needs_labels=False, needs_grad=False, data_free=True, citation=NSZ)
def flops(ctx: ProxyContext) -> float:
    """Forward FLOPs of one example of ctx.x's shape, in millions (NSZ's tensorwatch rules)."""
    return count_flops(ctx.model, tuple(ctx.x.shape[1:])) / 1e6


@proxy("l2_norm", needs_labels=False, needs_grad=False, data_free=True, citation=ABDELFATTAH)
def l2_norm(ctx: ProxyContext) -> float:
    """Sum over Conv2d/Linear layers of the Frobenius norm of the weight."""
    with torch.no_grad():
        return total(layer.weight.norm() for layer in weight_layers(ctx.model))


# ---- one cross-entropy backward (shared) --------------------------------------------------
@proxy("grad_norm", needs_labels=True, needs_grad=True, citation=ABDELFATTAH)
def grad_norm(ctx: ProxyContext) -> float:
    """Sum over Conv2d/Linear layers of the Frobenius norm of dL/dW (cross-entropy)."""
    return total(grad.norm() for grad in ctx.ce_pass().grads)


@proxy(
    "snip",
    needs_labels=True,
    needs_grad=True,
    citation="Lee et al., SNIP: Single-shot Network Pruning, ICLR 2019",
)
def snip(ctx: ProxyContext) -> float:
    """Sum of |W * dL/dW| (SNIP's connection sensitivity, summed over all weights)."""
    ce = ctx.ce_pass()
    # NASLib differentiates a multiplicative mask of ones: dL/dmask = W * dL/dW, bit for bit.
    return total((w.detach() * g).abs() for w, g in zip(ce.weights, ce.grads, strict=True))


@proxy("plain", needs_labels=True, needs_grad=True, citation=ABDELFATTAH)
def plain(ctx: ProxyContext) -> float:
    """Sum of W * dL/dW (signed; the first-order Taylor saliency)."""
    ce = ctx.ce_pass()
    return total(w.detach() * g for w, g in zip(ce.weights, ce.grads, strict=True))


@proxy(
    "fisher",
    needs_labels=True,
    needs_grad=True,
    citation="Turner et al., BlockSwap, ICLR 2020; Theis et al., Faster gaze prediction "
    "with dense networks and Fisher pruning, 2018",
)
def fisher(ctx: ProxyContext) -> float:
    """Per output channel 0.5 * mean_n (sum_hw act * dL/dact)^2, counted once per its weights."""
    ce = ctx.ce_pass()
    return total(
        f.abs() * math.prod(w.shape[1:]) for f, w in zip(ce.fisher, ce.weights, strict=True)
    )


@proxy(
    "grasp",
    needs_labels=True,
    needs_grad=True,
    citation="Wang et al., Picking Winning Tickets Before Training by Preserving Gradient "
    "Flow, ICLR 2020",
)
def grasp(ctx: ProxyContext) -> float:
    """Sum of -W * (H g): g = dL/dW of the shared pass, H g by a double backward on its graph.

    Deviation: NASLib ran a second, identical forward for the Hessian-gradient product; here the
    shared forward's graph is differentiated again (train-mode BN makes both forwards equal).
    """
    ce = ctx.ce_pass()
    grad_f = torch.autograd.grad(ce.loss, ce.weights, create_graph=True, allow_unused=True)
    terms = [(g * f).sum() for g, f in zip(ce.grads, grad_f, strict=True) if f is not None]
    if not terms or not any(t.requires_grad for t in terms):
        return 0.0  # the gradient does not depend on the weights: H g = 0
    hessian_grad = torch.autograd.grad(
        torch.stack(terms).sum(),
        ce.weights,
        retain_graph=True,
        allow_unused=True,
        materialize_grads=True,
    )
    return total(-w.detach() * hg for w, hg in zip(ce.weights, hessian_grad, strict=True))


# ---- input Jacobian and ReLU codes (shared) -----------------------------------------------
@proxy(
    "jacov",
    needs_labels=False,
    needs_grad=True,
    citation="Mellor et al., Neural Architecture Search without Training, arXiv:2006.04647v1",
)
def jacov(ctx: ProxyContext) -> float:
    """-sum(log(l + k) + 1/(l + k)) over eigenvalues l of the input Jacobians' correlation.

    Deviation: eigenvalues by ``eigvalsh`` (the matrix is symmetric) instead of numpy's general
    ``eig``; equal up to rounding, and never complex.
    """
    corr = corrcoef(ctx.jacobian())
    if not bool(torch.isfinite(corr).all()):
        return NONFINITE_SCORE  # a constant Jacobian row (e.g. a disconnected cell)
    eig = torch.linalg.eigvalsh(corr) + EPS
    return -float((eig.log() + eig.reciprocal()).sum())


@proxy(
    "epe_nas",
    needs_labels=True,
    needs_grad=True,
    citation="Lopes et al., EPE-NAS: Efficient Performance Estimation Without Training "
    "for NAS, ICANN 2021",
)
def epe_nas(ctx: ProxyContext) -> float:
    """Sum over classes of |sum log(|corr| + k)| of that class's input-Jacobian correlations.

    For more than 100 classes the reference's other formula: each class score is divided by its
    sample count (single-sample classes skipped) and the score is the mean over classes of the
    summed absolute differences to every class score. Classes are visited in sorted order (the
    reference: order of first appearance), which only changes the floating-point summation order.
    Soft labels (N, K) count as their argmax (the reference's TransNAS-Bench-101 rule); other
    label shapes (dense targets) have no per-sample class: the score is -1e8.
    """
    jac, labels = ctx.jacobian(), ctx.y
    if labels.dim() == 2:
        labels = labels.argmax(dim=1)
    if labels.dim() != 1:
        return NONFINITE_SCORE
    many = ctx.num_classes > 100
    scores = []
    for label in torch.unique(labels):
        rows = jac[labels == label]
        if many and rows.shape[0] < 2:
            continue  # the reference's len() of a 0-d correlation fails and skips the class
        score = (corrcoef(rows).abs() + EPS).log().sum()
        scores.append(score / rows.shape[0] if many else score)
    if not scores:
        return 0.0
    stacked = torch.stack(scores)
    if not many:
        return float(stacked.abs().sum())
    return float((stacked[:, None] - stacked[None, :]).abs().sum() / len(scores))


@proxy(
    "nwot",
    needs_labels=False,
    needs_grad=False,
    citation="Mellor et al., Neural Architecture Search without Training, ICML 2021",
)
def nwot(ctx: ProxyContext) -> float:
    """log|det K| of NASWOT's kernel of binary ReLU codes (agreements between samples)."""
    return float(torch.linalg.slogdet(ctx.relu_kernel()).logabsdet)


# ---- own clones ---------------------------------------------------------------------------
def _passthrough(x: torch.Tensor) -> torch.Tensor:
    """The forward of a disabled BatchNorm layer."""
    return x


@proxy(
    "synflow",
    needs_labels=False,
    needs_grad=True,
    data_free=True,
    citation="Tanaka et al., Pruning neural networks without any data by iteratively "
    "conserving synaptic flow, NeurIPS 2020",
)
def synflow(ctx: ProxyContext) -> float:
    """log of sum |W * dR/dW|, R = sum of outputs of |W| in float64, BN off, on an all-ones input.

    0 stays 0 (NSZ's rule: a disconnected network scores 0 instead of log 0 = -inf).
    """
    model = ctx.clone()
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.forward = _passthrough  # as NASLib's copynet(bn=False)
    model.double()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.abs_()
    ones = torch.ones((1, *ctx.x.shape[1:]), dtype=torch.float64, device=ctx.x.device)
    with ctx.seeded_rng():
        output = model(ones)
    weights = [layer.weight for layer in weight_layers(model)]
    grads = torch.autograd.grad(output.sum(), weights, allow_unused=True, materialize_grads=True)
    raw = total((w.detach() * g).abs() for w, g in zip(weights, grads, strict=True))
    return 0.0 if raw == 0 else math.log(raw)


def pre_pool_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feature map the network global-average-pools (Zen-NAS's pre-GAP output).

    NASLib models provide ``forward_before_global_avg_pool``; otherwise this is the input of the
    last ``AdaptiveAvgPool2d`` called in the forward. Deviation: a network with no such pool
    scores its final output instead.
    """
    if hasattr(model, "forward_before_global_avg_pool"):
        return model.forward_before_global_avg_pool(x)
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        captured.append(inputs[0])

    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    with forward_hooks((pool, hook) for pool in pools):
        output = model(x)
    return captured[-1] if captured else output


@proxy(
    "zen",
    needs_labels=False,
    needs_grad=False,
    data_free=True,
    citation="Lin et al., Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition, "
    "ICCV 2021",
)
def zen(ctx: ProxyContext) -> float:
    """log E_n sum|f(x) - f(x + 0.01 eps)| on pre-GAP features + sum_BN log sqrt(mean running var).

    Weights are re-drawn N(0, 1) (BN gamma 1, beta 0) and x, eps are Gaussian, all from one
    CPU ``torch.Generator`` seeded with ``ctx.seed`` (weights in ``modules()`` order, then x, then
    eps) and moved to the model's device, so every device draws the same numbers; the model stays
    in train mode, so both forwards update the running variances read.
    """
    model = ctx.clone()
    gen = torch.Generator().manual_seed(ctx.seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                w = module.weight
                w.copy_(torch.empty(w.shape, dtype=w.dtype).normal_(generator=gen))
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None:
                module.weight.fill_(1.0)
                module.bias.zero_()
        x = torch.randn(ctx.x.shape, generator=gen, dtype=ctx.x.dtype).to(ctx.x.device)
        eps = torch.randn(ctx.x.shape, generator=gen, dtype=ctx.x.dtype).to(ctx.x.device)
        with ctx.seeded_rng():
            delta = pre_pool_features(model, x) - pre_pool_features(model, x + ZEN_MIXUP * eps)
        score = delta.abs().flatten(1).sum(dim=1).mean().log()
        # Deviation: BN layers without running statistics are skipped (the reference fails).
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d) and module.running_var is not None:
                score = score + module.running_var.mean().sqrt().log()
    return float(score)
