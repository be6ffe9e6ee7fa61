"""Inception modules: the naive one and the one with 1x1 reductions.

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842, Sec. 4 and
Figure 2. Four parallel branches over the same input are concatenated along channels:

* naive (Fig. 2a): 1x1 conv, 3x3 conv, 5x5 conv and a 3x3 max pool. The pool branch passes its
  input channels through, so the output is always wider than the input and widths grow from
  module to module; the 3x3 and 5x5 convs see every input channel.
* with dimension reductions (Fig. 2b): 1x1 convs shrink the input before the 3x3 and 5x5
  convs, and a 1x1 "pool projection" after the max pool sets that branch's width.

Every conv is followed by a ReLU (``norm_layer`` inserts batch norm in between, as in
torchvision's GoogLeNet; the paper has none). Children are named ``branch1``..``branch4`` with
the reduce conv at index 0 and the main conv at index 1 (the pool at index 0 of ``branch4``),
the layout of torchvision's ``Inception`` block, so its state dicts load unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modernvision.layers.conv import ConvNormAct, NormLayer


class InceptionModule(nn.Module):
    """Inception module with dimension reductions (Fig. 2b, Table 1's column names).

    Args:
        in_channels: input channels.
        ch1x1: "#1x1", width of the 1x1 branch.
        ch3x3_reduce: "#3x3 reduce", 1x1 conv before the 3x3.
        ch3x3: "#3x3", width of the 3x3 branch.
        ch5x5_reduce: "#5x5 reduce", 1x1 conv before the 5x5.
        ch5x5: "#5x5", width of the 5x5 branch.
        pool_proj: "pool proj", 1x1 conv after the 3x3 max pool.
        kernel_5x5: kernel of the "5x5" branch; 5 in the paper, 3 in torchvision's GoogLeNet
            (pytorch/vision issue #906, kept there for weight compatibility).
        norm_layer: normalisation after each conv, or ``None`` (the paper).
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
        *,
        kernel_5x5: int = 5,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        self.branch1 = ConvNormAct(in_channels, ch1x1, 1, norm_layer=norm_layer)
        self.branch2 = nn.Sequential(
            ConvNormAct(in_channels, ch3x3_reduce, 1, norm_layer=norm_layer),
            ConvNormAct(ch3x3_reduce, ch3x3, 3, norm_layer=norm_layer),
        )
        self.branch3 = nn.Sequential(
            ConvNormAct(in_channels, ch5x5_reduce, 1, norm_layer=norm_layer),
            ConvNormAct(ch5x5_reduce, ch5x5, kernel_5x5, norm_layer=norm_layer),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1),
            ConvNormAct(in_channels, pool_proj, 1, norm_layer=norm_layer),
        )
        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)


class NaiveInceptionModule(nn.Module):
    """The naive Inception module (Fig. 2a): no reductions, the pool branch passes through.

    Args:
        in_channels: input channels.
        ch1x1: width of the 1x1 branch.
        ch3x3: width of the 3x3 branch (applied to all ``in_channels``).
        ch5x5: width of the 5x5 branch (applied to all ``in_channels``).
        kernel_5x5: kernel of the "5x5" branch.
        norm_layer: normalisation after each conv, or ``None`` (the paper).

    The output has ``ch1x1 + ch3x3 + ch5x5 + in_channels`` channels.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3: int,
        ch5x5: int,
        *,
        kernel_5x5: int = 5,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        self.branch1 = ConvNormAct(in_channels, ch1x1, 1, norm_layer=norm_layer)
        self.branch2 = ConvNormAct(in_channels, ch3x3, 3, norm_layer=norm_layer)
        self.branch3 = ConvNormAct(in_channels, ch5x5, kernel_5x5, norm_layer=norm_layer)
        self.branch4 = nn.MaxPool2d(3, stride=1, padding=1)
        self.in_channels = in_channels
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)
