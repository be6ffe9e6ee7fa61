"""Residual blocks: ResNet's basic and bottleneck blocks, and the inverted residual (MBConv).

Papers:
    * He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", 2015,
      arXiv:1512.03385 -- basic block (two 3x3) and bottleneck block (1x1, 3x3, 1x1; Fig. 5);
      shortcut options A (zero-padding identity), B (projection where the shape changes) and
      C (projection everywhere), Sec. 3.3 / Table 3; plain nets are the same stacks without
      shortcuts (Sec. 4.1).
    * Xie, Girshick, Dollar, Tu, He, "Aggregated Residual Transformations for Deep Neural
      Networks" (ResNeXt), 2016, arXiv:1611.05431 -- the bottleneck's 3x3 as a grouped
      convolution (Fig. 3c): ``groups`` = cardinality, ``width_per_group`` = bottleneck width.
    * Hu et al., "Squeeze-and-Excitation Networks", 2017, arXiv:1709.01507 -- an SE gate on the
      residual branch before the addition (Fig. 3).
    * Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear
      Bottlenecks", 2018, arXiv:1801.04381 -- expand 1x1, depthwise 3x3, linear 1x1 projection,
      identity shortcut between the thin bottlenecks (Table 1, Fig. 3b).
    * Tan, Le, "EfficientNet", 2019, arXiv:1905.11946 -- MBConv = the inverted residual plus an
      SE gate and stochastic depth on the branch.

Departures:
    * The bottleneck's stride sits on the 3x3 convolution by default ("ResNet v1.5", as in
      torchvision); ``stride_in_1x1=True`` puts it on the first 1x1 as in the paper.
    * Child names (``conv1``, ``bn1``, ..., ``downsample.0/1``) follow torchvision's so its
      ResNet state dicts load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from modernvision.layers.conv import ConvNormAct
from modernvision.layers.drop_path import drop_path
from modernvision.layers.squeeze_excite import SqueezeExcite

NormLayer = Callable[[int], nn.Module]
Shortcut = Literal["A", "B", "C"] | None
SHORTCUTS = ("A", "B", "C", None)


class ZeroPadShortcut(nn.Module):
    """Option A: the identity, subsampled by ``stride`` and zero-padded to ``out_channels``.

    Parameter-free (Sec. 3.3: "the shortcut still performs identity mapping, with extra zero
    entries padded for increasing dimensions ... performed with a stride of 2").
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"option A cannot reduce channels ({in_channels} -> {out_channels}); use B or C"
            )
        self.pad = out_channels - in_channels
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad))  # new channels after the old ones
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, pad_channels={self.pad}"


def make_shortcut(
    kind: Shortcut,
    in_channels: int,
    out_channels: int,
    stride: int,
    norm_layer: NormLayer = nn.BatchNorm2d,
) -> nn.Module | None:
    """The shortcut module of one block, or ``None`` for the plain identity.

    Args:
        kind: ``"A"`` zero-padding identity, ``"B"`` 1x1 projection where the shape changes,
            ``"C"`` 1x1 projection in every block, ``None`` (plain net) -- no shortcut at all,
            the caller skips the addition.
    """
    if kind not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of 'A', 'B', 'C' or None, got {kind!r}")
    same = stride == 1 and in_channels == out_channels
    if kind is None or (same and kind in ("A", "B")):
        return None
    if kind == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), norm_layer(out_channels)
    )


class _ResidualBlock(nn.Module):
    """What BasicBlock and Bottleneck share after their convolutions: an optional SE gate on the
    branch, the shortcut (none in a plain net), the addition and the final ReLU."""

    relu: nn.Module

    def _add_shortcut(self, in_channels: int, out_channels: int, stride: int,
                      shortcut: Shortcut, se_reduction: int | None,
                      norm_layer: NormLayer) -> None:
        self.se = (
            SqueezeExcite(out_channels, out_channels // se_reduction) if se_reduction else None
        )
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride, norm_layer)
        self.residual = shortcut is not None

    def _join(self, out: Tensor, x: Tensor) -> Tensor:
        """``relu(se(out) + shortcut(x))``: ``out`` is the branch, ``x`` the block's input."""
        if self.se is not None:
            out = self.se(out)
        if self.residual:
            out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class BasicBlock(_ResidualBlock):
    """Two 3x3 convolutions, ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))`` (Fig. 5 left).

    Args:
        in_channels: input channels.
        channels: output channels (expansion 1).
        stride: stride of the first 3x3.
        shortcut: see :func:`make_shortcut`.
        se_reduction: ratio ``r`` of an SE gate on the branch, or ``None``.
        dilation: dilation of the second 3x3, and of the first unless ``first_dilation``
            (DeepLab's atrous ResNet; torchvision's BasicBlock refuses dilation, ours allows it
            for the CPU-sized ResNet-18 segmenters).
        first_dilation: dilation of the first 3x3 (default ``dilation``), the rate before the
            block, as torchvision's ``previous_dilation``.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        *,
        shortcut: Shortcut = "B",
        groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = False,
        se_reduction: int | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
        dilation: int = 1,
        first_dilation: int | None = None,
    ) -> None:
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ValueError("BasicBlock supports only groups=1 and width_per_group=64")
        d1 = dilation if first_dilation is None else first_dilation
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, d1, dilation=d1, bias=False)
        self.bn1 = norm_layer(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, dilation, dilation=dilation,
                               bias=False)
        self.bn2 = norm_layer(channels)
        self._add_shortcut(in_channels, channels, stride, shortcut, se_reduction, norm_layer)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self._join(self.bn2(self.conv2(out)), x)

    def last_norm(self) -> nn.Module:
        return self.bn2


class Bottleneck(_ResidualBlock):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand by 4, plus the shortcut (Fig. 5 right).

    Args:
        in_channels: input channels.
        channels: the bottleneck's nominal width; the output has ``4 * channels``.
        stride: spatial stride of the block.
        shortcut: see :func:`make_shortcut`.
        groups: cardinality of the 3x3 (ResNeXt).
        width_per_group: channels per group at ``channels == 64`` (ResNeXt's "d"); the 3x3 has
            ``int(channels * width_per_group / 64) * groups`` channels.
        stride_in_1x1: stride on the first 1x1 as in the paper, instead of on the 3x3 (v1.5).
        se_reduction: ratio ``r`` of an SE gate on the branch, or ``None``.
        dilation: dilation of the 3x3 (DeepLab's atrous ResNet, torchvision's ``dilation``).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        *,
        shortcut: Shortcut = "B",
        groups: int = 1,
        width_per_group: int = 64,
        stride_in_1x1: bool = False,
        se_reduction: int | None = None,
        norm_layer: NormLayer = nn.BatchNorm2d,
        dilation: int = 1,
        first_dilation: int | None = None,
    ) -> None:
        super().__init__()
        # torchvision gives a block's 3x3 the rate before the block (previous_dilation) in the
        # first block of a dilated stage, and the stage's rate after it.
        dilation = dilation if first_dilation is None else first_dilation
        width = int(channels * (width_per_group / 64.0)) * groups
        out_channels = channels * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, width, 1, s1, bias=False)
        self.bn1 = norm_layer(width)
        self.conv2 = nn.Conv2d(width, width, 3, s3, dilation, dilation=dilation, groups=groups,
                               bias=False)
        self.bn2 = norm_layer(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self._add_shortcut(in_channels, out_channels, stride, shortcut, se_reduction, norm_layer)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self._join(self.bn3(self.conv3(out)), x)

    def last_norm(self) -> nn.Module:
        return self.bn3


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise kxk -> [SE] -> linear 1x1 projection, identity shortcut.

    The shortcut exists only when ``stride == 1`` and ``in_channels == out_channels``; the
    projection has no activation (the "linear bottleneck", Sec. 3.2 of MobileNetV2).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        hidden_channels: expanded width; no expansion conv when equal to ``in_channels``.
        stride: stride of the depthwise convolution.
        kernel_size: depthwise kernel size (3 in MobileNetV2, 3 or 5 in EfficientNet).
        act_layer: activation (ReLU6 in MobileNetV2, SiLU in EfficientNet).
        se_channels: hidden width of an SE gate after the depthwise conv, or ``None``.
        drop_path_prob: stochastic-depth drop probability of the branch (training only).
        norm_layer: normalisation constructor.

    Children: ``expand`` / ``depthwise`` / ``project`` are :class:`ConvNormAct` (``conv``,
    ``bn``, ``act``), ``se`` is :class:`SqueezeExcite` (``fc1``, ``fc2``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        hidden_channels: int,
        stride: int = 1,
        kernel_size: int = 3,
        act_layer: Callable[..., nn.Module] = nn.ReLU6,
        se_channels: int | None = None,
        drop_path_prob: float = 0.0,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if not 0.0 <= drop_path_prob <= 1.0:
            raise ValueError(f"drop_path_prob must be in [0, 1], got {drop_path_prob}")
        hid = hidden_channels
        self.expand = (
            ConvNormAct(in_channels, hid, 1, norm_layer=norm_layer, act_layer=act_layer)
            if hid != in_channels
            else None
        )
        self.depthwise = ConvNormAct(
            hid, hid, kernel_size, stride, groups=hid, norm_layer=norm_layer, act_layer=act_layer
        )
        self.se = None
        if se_channels is not None:
            self.se = SqueezeExcite(hid, se_channels, act_layer=act_layer)
        self.project = ConvNormAct(hid, out_channels, 1, norm_layer=norm_layer, act_layer=None)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.drop_path_prob = drop_path_prob

    def forward(self, x: Tensor) -> Tensor:
        out = x if self.expand is None else self.expand(x)
        out = self.depthwise(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        if self.use_residual:
            out = drop_path(out, self.drop_path_prob, self.training)
            out += x
        return out

    def extra_repr(self) -> str:
        return f"residual={self.use_residual}, drop_path_prob={self.drop_path_prob}"
