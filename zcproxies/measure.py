"""Parameter and FLOP counts with the conventions of the benchmarks' reference tables.

FLOPs are counted by forward hooks on one example (batch size 1) under one of two conventions:

``"naslib"`` (the default): NAS-Bench-Suite-Zero's ``flops`` field. NASLib computed it with
    ``tensorwatch.ModelStats`` (torchstat's rules), summing each leaf module's ``Flops``:
    Conv2d ``k_h*k_w*C_in*C_out/groups`` per output position (+1 per output for a bias),
    Linear ``in*out`` (no bias), BatchNorm2d 2 per input element (1 if not affine), ReLU-family
    1 per input element, Avg/MaxPool2d ``k*k`` per output element, adaptive pools
    ``(y_end-y_start+1)*(x_end-x_start+1)`` per output element (tensorwatch's over-count, kept),
    Upsample 1 per output element. A module called several times counts only its last call.
``"nb201"``: NAS-Bench-201 / NATS-Bench's ``get_model_infos``: Conv1d/Conv2d as above, Linear
    ``in*out + out`` (bias counted); pooling, BN and activations are free; every call counts.

Additions of node sums, concatenations and functional ops (``torch.mean`` ...) are free in both.
See ``docs/flops.md`` for the evidence and the match rates against the reference tables.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zcproxies.hooks import forward_hooks

Rule = Callable[[Any, torch.Tensor, torch.Tensor], int]


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (weights, biases and BatchNorm affine parameters)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[-1]))


# ---- per-module rules: (module, first input tensor, first output tensor) -> FLOPs ------------
def _conv(module: nn.Conv1d | nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> int:
    """Multiply-accumulates of a convolution, plus one addition per output for its bias."""
    positions = y.numel() // module.out_channels  # batch x output spatial positions
    per_position = math.prod(module.kernel_size) * module.in_channels * module.out_channels
    flops = per_position // module.groups * positions
    return flops + (module.out_channels * positions if module.bias is not None else 0)


def _linear(module: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> int:
    """Multiply-accumulates of a linear layer (its bias is free)."""
    return y.numel() // module.out_features * module.in_features * module.out_features


def _linear_with_bias(module: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> int:
    """Multiply-accumulates of a linear layer plus one addition per output for its bias."""
    return _linear(module, x, y) + (y.numel() if module.bias is not None else 0)


def _batchnorm(module: nn.BatchNorm2d, x: torch.Tensor, y: torch.Tensor) -> int:
    """Normalise (+ scale-shift when affine): 1 or 2 per input element, as tensorwatch counts."""
    return x.numel() * (2 if module.affine else 1)


def _elementwise_in(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """One operation per input element (activations)."""
    return x.numel()


def _elementwise_out(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """One operation per output element (upsampling)."""
    return y.numel()


def _pool(module: nn.AvgPool2d | nn.MaxPool2d, x: torch.Tensor, y: torch.Tensor) -> int:
    """``k_h*k_w`` per output element, the output size recomputed as tensorwatch does.

    tensorwatch ignores ``ceil_mode`` and dilation and uses the first stride for both axes; the
    quirk is kept so that counts agree with NASLib's tables on any pooling layer.
    """
    k_w, k_h = _pair(module.kernel_size)
    p_w, p_h = _pair(module.padding)
    s = _pair(module.stride)[0]
    out_w = math.floor((x.shape[3] + 2 * p_w - k_w) / s + 1)
    out_h = math.floor((x.shape[2] + 2 * p_h - k_h) / s + 1)
    return x.shape[0] * x.shape[1] * out_w * out_h * k_w * k_h


def _adaptive_pool(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """tensorwatch's adaptive-pool rule: ``(rows+1)*(cols+1)`` of each output's input window.

    The ``+1`` over-counts every window by one row and one column (8x8 -> 1x1 counts 81 per
    channel, not 64); NAS-Bench-Suite-Zero's values include it.
    """

    def window_sum(size_in: int, size_out: int) -> int:
        return sum(
            math.ceil((i + 1) * size_in / size_out) - math.floor(i * size_in / size_out) + 1
            for i in range(size_out)
        )

    rows = window_sum(x.shape[2], y.shape[2])
    cols = window_sum(x.shape[3], y.shape[3])
    return x.shape[0] * x.shape[1] * rows * cols


@dataclass(frozen=True)
class Convention:
    """A FLOP-counting convention: which module types cost what, and how calls are combined."""

    rules: tuple[tuple[type[nn.Module] | tuple[type[nn.Module], ...], Rule], ...]
    per_call: bool  # True: a module's calls add up; False: only its last call counts
    leaves_only: bool  # True: modules with children are never counted (tensorwatch)
    description: str = ""

    def rule_for(self, module: nn.Module) -> Rule | None:
        """The rule of the first matching module type, or ``None`` when the module is free."""
        if self.leaves_only and next(module.children(), None) is not None:
            return None
        return next((rule for types, rule in self.rules if isinstance(module, types)), None)


CONVENTIONS: dict[str, Convention] = {
    "naslib": Convention(
        rules=(
            (nn.Conv2d, _conv),
            (nn.BatchNorm2d, _batchnorm),
            ((nn.AvgPool2d, nn.MaxPool2d), _pool),
            ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), _adaptive_pool),
            ((nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU), _elementwise_in),
            (nn.Upsample, _elementwise_out),
            (nn.Linear, _linear),
        ),
        per_call=False,
        leaves_only=True,
        description="NAS-Bench-Suite-Zero / NASLib (tensorwatch ModelStats 'Flops')",
    ),
    "nb201": Convention(
        rules=(((nn.Conv1d, nn.Conv2d), _conv), (nn.Linear, _linear_with_bias)),
        per_call=True,
        leaves_only=False,
        description="NAS-Bench-201 / NATS-Bench (AutoDL get_model_infos)",
    ),
}


def _first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor in a (nested) tuple/list, as tensorwatch picks a module's input/output."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        return next((t for t in map(_first_tensor, value) if t is not None), None)
    return None


def _device_of(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a model without either)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def count_flops(model: nn.Module, input_shape: tuple[int, ...], convention: str = "naslib") -> int:
    """Forward FLOPs of one example of shape ``input_shape`` (C, H, W) under ``convention``.

    The model is run in eval mode on zeros under ``no_grad``; every submodule's train/eval mode
    is restored afterwards.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown FLOP convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    conv = CONVENTIONS[convention]
    counts: dict[int, int] = {}  # id(module) -> FLOPs so far

    def hook(module: nn.Module, inputs: tuple[Any, ...], output: Any, rule: Rule) -> None:
        x, y = _first_tensor(inputs), _first_tensor(output)
        flops = int(rule(module, x, y))
        counts[id(module)] = counts.get(id(module), 0) + flops if conv.per_call else flops

    # each shared instance once, as tensorwatch's leaf list
    rules = [(module, conv.rule_for(module)) for module in model.modules()]
    hooks = [(m, functools.partial(hook, rule=rule)) for m, rule in rules if rule is not None]
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with forward_hooks(hooks), torch.no_grad():
            model(torch.zeros(1, *input_shape, device=_device_of(model)))
    finally:
        for module, training in modes:
            module.training = training
    return sum(counts.values())
