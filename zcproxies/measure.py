"""Parameter and FLOP counts with the conventions of the benchmarks' reference tables.

FLOPs are multiply-accumulates counted by forward hooks at batch size 1, as NAS-Bench-201's
``get_model_infos`` counts them: convolutions ``k_h*k_w*C_in*C_out/groups`` per output
position (+ one per output for a bias), linear layers ``in*out`` (the bias is not counted) and
pooling ``k*k`` per output element; everything else (BN, ReLU, additions) is free.
"""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (weights, biases and BatchNorm affine parameters)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[-1]))


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs of one example of shape ``input_shape`` (C, H, W), hook-counted.

    The model is run in eval mode on zeros under ``no_grad`` and restored to its former mode.
    """
    total = 0

    def conv_hook(module: nn.Conv2d, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        per_position = kh * kw * module.in_channels * module.out_channels // module.groups
        positions = output.shape[0] * output.shape[2] * output.shape[3]
        total += per_position * positions
        if module.bias is not None:
            total += module.out_channels * positions

    def linear_hook(module: nn.Linear, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        total += output.shape[0] * module.in_features * module.out_features

    def pool_hook(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = _pair(module.kernel_size)
        total += output.numel() * kh * kw

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
        elif isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
            handles.append(module.register_forward_hook(pool_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return int(total)
