"""Dilated (atrous) convolution, written as a convolution with a zero-inserted kernel.

Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", 2015, arXiv:1511.07122;
Chen et al., "DeepLab", 2016, arXiv:1606.00915, Sec. 3.1 ("atrous" convolution,
``y[i] = sum_k x[i + r * k] w[k]``).

A kxk kernel with dilation (rate) ``r`` reads the input at taps ``r`` pixels apart: it is the
ordinary convolution with the kernel spread out to ``r * (k - 1) + 1`` pixels by inserting
``r - 1`` zeros between neighbouring taps (:func:`dilate_kernel`). The field of view grows
with ``r`` while the parameters and the output resolution stay the same, which is how DeepLab
keeps a ResNet's last stages at stride 8 instead of 32: each removed stride is replaced by
doubling the dilation of every later 3x3 (the receptive field still grows as before; the
memory of the larger maps is the price, see ``modernvision summary``).

With ``padding = r * (k - 1) // 2`` ("same") and a map not much larger than ``r``, most taps of
a 3x3 fall on the zero padding: :func:`padding_tap_fraction`. As the rate approaches the map's
size only the centre tap still sees the map and the filter degenerates to a 1x1 (DeepLab v3,
arXiv:1706.05587, Sec. 3.3, Fig. 4), why v3 dropped rate 24 and added image-level pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError

__all__ = ["DilatedConv2d", "dilate_kernel", "dilated_conv2d", "padding_tap_fraction"]

IntPair = int | tuple[int, int]


def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise InvalidArgumentError(f"{name} must be an int >= {minimum} or a pair of them, got "
                                   f"{value!r}")
    return pair  # type: ignore[return-value]


def dilate_kernel(weight: Tensor, dilation: IntPair) -> Tensor:
    """``(O, I, kH, kW) -> (O, I, r_h (kH - 1) + 1, r_w (kW - 1) + 1)``: the taps spread out,
    ``r - 1`` zeros between neighbours (differentiable: a scatter into zeros)."""
    rh, rw = _pair(dilation, "dilation", 1)
    o, i, kh, kw = weight.shape
    out = weight.new_zeros(o, i, rh * (kh - 1) + 1, rw * (kw - 1) + 1)
    out[:, :, ::rh, ::rw] = weight
    return out


def dilated_conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                   dilation: IntPair, padding: IntPair = 0, stride: IntPair = 1,
                   groups: int = 1) -> Tensor:
    """Convolution with ``weight`` at rate ``dilation``, as an ordinary convolution with the
    zero-inserted kernel; equals ``F.conv2d(input, weight, bias, stride, padding, dilation)``."""
    if input.dim() != 4 or weight.dim() != 4:
        raise InvalidArgumentError(f"input must be (B, C, H, W) and weight (O, I, kH, kW); got "
                                   f"{tuple(input.shape)} and {tuple(weight.shape)}")
    return F.conv2d(input, dilate_kernel(weight, dilation), bias,
                    stride=_pair(stride, "stride", 1), padding=_pair(padding, "padding", 0),
                    groups=groups)


def padding_tap_fraction(height: int, width: int | None = None, *, dilation: int,
                         kernel_size: int = 3) -> float:
    """The fraction of a "same"-padded ``kernel_size`` convolution's taps, over all output
    positions of a ``height x width`` map, that fall on the zero padding at rate
    ``dilation``."""
    width = height if width is None else width
    if min(height, width) < 1 or dilation < 1 or kernel_size < 1:
        raise InvalidArgumentError("height, width, dilation and kernel_size must be positive")
    half = (kernel_size - 1) // 2
    offsets = (torch.arange(kernel_size) - half) * dilation

    def inside(n: int) -> Tensor:  # (n positions, k taps): tap inside the map?
        pos = torch.arange(n)[:, None] + offsets[None, :]
        return ((pos >= 0) & (pos < n)).double()

    # A 2D tap is inside when both of its coordinates are: the mean factorises per axis.
    valid = inside(height).mean() * inside(width).mean()
    return float(1 - valid)


class DilatedConv2d(nn.Module):
    """:func:`dilated_conv2d` with a learnable ``(out, in, k, k)`` weight (PyTorch's
    ``nn.Conv2d`` initialisation) and "same" padding by default."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
                 dilation: int = 2, padding: int | None = None, stride: int = 1,
                 bias: bool = True) -> None:
        super().__init__()
        ref = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)  # for its init
        self.weight = ref.weight
        self.bias = ref.bias
        self.dilation, self.stride = dilation, stride
        self.padding = dilation * (kernel_size - 1) // 2 if padding is None else padding

    def forward(self, x: Tensor) -> Tensor:
        return dilated_conv2d(x, self.weight, self.bias, dilation=self.dilation,
                              padding=self.padding, stride=self.stride)

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1]}, {self.weight.shape[0]}, "
                f"kernel_size={self.weight.shape[-1]}, dilation={self.dilation}, "
                f"padding={self.padding}")
