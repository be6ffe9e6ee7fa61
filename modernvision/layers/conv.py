"""Convolution building blocks: conv-norm-act and factorised convolutions (Inception v3, 2015)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

NormLayer = Callable[[int], nn.Module]
ActLayer = Callable[..., nn.Module]


class ConvNormAct(nn.Sequential):
    """``Conv2d -> norm -> activation``; the conv has no bias when a norm follows it.

    Children are named ``conv``, ``bn`` and ``act`` (absent when ``None``), so state dicts
    read ``<block>.conv.weight``, ``<block>.bn.running_mean``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: int or (kh, kw).
        stride: convolution stride.
        padding: ``None`` means "same" for odd kernels: ``(k - 1) // 2 * dilation``.
        groups: convolution groups (``in_channels`` for depthwise).
        norm_layer: constructor taking the channel count, or ``None``.
        act_layer: activation constructor, or ``None`` for a linear output.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | None = None,
        *,
        groups: int = 1,
        dilation: int = 1,
        bias: bool | None = None,
        norm_layer: NormLayer | None = nn.BatchNorm2d,
        act_layer: ActLayer | None = nn.ReLU,
        inplace: bool = True,
    ) -> None:
        ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if padding is None:
            padding = tuple((k - 1) // 2 * dilation for k in ks)
        if bias is None:
            bias = norm_layer is None
        layers: dict[str, nn.Module] = {
            "conv": nn.Conv2d(in_channels, out_channels, ks, stride, padding,
                              dilation=dilation, groups=groups, bias=bias)
        }
        if norm_layer is not None:
            layers["bn"] = norm_layer(out_channels)
        if act_layer is not None:
            layers["act"] = act_layer(inplace=inplace) if _takes_inplace(act_layer) else act_layer()
        super().__init__()
        for name, module in layers.items():
            self.add_module(name, module)
        self.in_channels, self.out_channels = in_channels, out_channels


def _takes_inplace(act_layer: ActLayer) -> bool:
    return act_layer in (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.LeakyReLU, nn.ELU)


class Factorized5x5(nn.Sequential):
    """A 5x5 receptive field as two stacked 3x3 convs (Inception v3, Sec. 3.1): 18 vs 25 weights."""

    def __init__(self, in_channels: int, out_channels: int, *, mid_channels: int | None = None,
                 norm_layer: NormLayer | None = nn.BatchNorm2d) -> None:
        mid = mid_channels or out_channels
        super().__init__(
            ConvNormAct(in_channels, mid, 3, norm_layer=norm_layer),
            ConvNormAct(mid, out_channels, 3, norm_layer=norm_layer),
        )


class FactorizedNxN(nn.Sequential):
    """An n x n conv as ``1 x n`` then ``n x 1`` (Inception v3, Sec. 3.2): 2n vs n^2 weights."""

    def __init__(self, in_channels: int, out_channels: int, n: int = 3, *,
                 mid_channels: int | None = None,
                 norm_layer: NormLayer | None = nn.BatchNorm2d) -> None:
        mid = mid_channels or out_channels
        super().__init__(
            ConvNormAct(in_channels, mid, (1, n), norm_layer=norm_layer),
            ConvNormAct(mid, out_channels, (n, 1), norm_layer=norm_layer),
        )
