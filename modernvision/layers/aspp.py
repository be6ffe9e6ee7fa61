"""Atrous spatial pyramid pooling: DeepLab v2's summed branch scores and v3's concatenated
features with image-level pooling.

* DeepLab v2 (Chen et al., arXiv:1606.00915, Sec. 3.3, Fig. 4): parallel 3x3 atrous
  convolutions at rates 6, 12, 18, 24 on the last map, each producing class scores; the scores
  are **summed** (ASPP-L). On ResNet-101 each branch is a single 3x3 convolution to the classes
  (the released ``fc1_c0..c3`` layers); the VGG-16 variant's fc6/fc7 branches are not built.
* DeepLab v3 (Chen et al., arXiv:1706.05587, Sec. 3.3, Fig. 5): one 1x1 convolution, three
  3x3 atrous convolutions (rates 6, 12, 18 at output stride 16, doubled at 8), all 256 wide
  with batch norm, and image-level features (global average pool, 1x1, BN, bilinear upsampling
  back); the five are **concatenated** and fused by a 1x1 (256, BN). Children are named as
  torchvision's ``ASPP`` (``convs.0..4``, ``project``) so its state dicts load.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from modernvision.layers.upsample import upsample_bilinear

__all__ = ["ASPP", "SummedASPP"]


class SummedASPP(nn.Module):
    """DeepLab v2's ASPP: ``sum_r conv3x3_rate_r(x)``, each branch scoring ``num_classes``.

    Args:
        in_channels: channels of the backbone's last map.
        num_classes: classes scored by every branch.
        rates: the atrous rates (the paper's ASPP-L: 6, 12, 18, 24).
    """

    def __init__(self, in_channels: int, num_classes: int,
                 rates: Sequence[int] = (6, 12, 18, 24)) -> None:
        super().__init__()
        self.rates = tuple(rates)
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r) for r in self.rates)
        for conv in self.branches:  # the released model: N(0, 0.01) weights, zero bias
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class _ImagePooling(nn.Sequential):
    """Global average pool -> 1x1 -> BN -> ReLU, broadcast back to the map's size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1,
                                                            bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        for module in self:
            x = module(x)
        return upsample_bilinear(x, tuple(size))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: int, rate: int = 1
                  ) -> nn.Sequential:
    pad = rate * (kernel - 1) // 2
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=pad,
                                   dilation=rate, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class ASPP(nn.Module):
    """DeepLab v3's ASPP: ``project(concat(1x1, 3x3@r1, 3x3@r2, 3x3@r3, image pooling))``.

    Args:
        in_channels: channels of the backbone's last map.
        rates: the three atrous rates (6, 12, 18 at output stride 16; 12, 24, 36 at 8).
        out_channels: width of every branch and of the fused output (256).
        dropout: dropout after the fusing 1x1 (torchvision: 0.5; the paper does not say).
    """

    def __init__(self, in_channels: int, rates: Sequence[int] = (6, 12, 18), *,
                 out_channels: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        self.rates = tuple(rates)
        branches: list[nn.Module] = [_conv_bn_relu(in_channels, out_channels, 1)]
        branches += [_conv_bn_relu(in_channels, out_channels, 3, r) for r in self.rates]
        branches.append(_ImagePooling(in_channels, out_channels))
        self.convs = nn.ModuleList(branches)
        project: list[nn.Module] = list(_conv_bn_relu(len(branches) * out_channels,
                                                      out_channels, 1))
        project.append(nn.Dropout(dropout))
        self.project = nn.Sequential(*project)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))
