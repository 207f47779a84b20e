"""Operations shared by several cell-based spaces (NAS-Bench-201 and TransNAS-Bench-101 micro)."""

from __future__ import annotations

import torch
from torch import nn


class Zero(nn.Module):
    """The ``none`` operation: an all-zero output of the input's shape (strided if asked)."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d, the NAS-Bench-201 convolution operation."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's reduction block: two ReLUConvBN 3x3 (the first strided) + a shortcut.

    The shortcut is AvgPool(2) then a 1x1 conv when the stride is 2, a 1x1 ReLUConvBN when only
    the width changes, and identity otherwise.
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample: nn.Module
        if stride == 2:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
            )
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0)
        else:
            self.downsample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))
