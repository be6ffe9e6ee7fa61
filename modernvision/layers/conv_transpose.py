"""Transposed convolution written out as a scatter, its bilinear initialisation, and the
checkerboard effect made countable.

A transposed convolution ("deconvolution", "up-convolution") runs a convolution's data flow
backwards: instead of each *output* pixel gathering a kxk window of the input, each *input*
pixel scatters a copy of the kernel, scaled by its value, into the output at ``stride`` times
its position; where the copies overlap they add. With stride ``s``, kernel ``k``, padding ``p``,
dilation ``d`` and output padding ``op``, the output side is
``(in - 1) * s - 2 * p + d * (k - 1) + op + 1``: the full scatter, with ``p`` rows cropped
from each border and ``op`` rows added at the bottom/right. It is the gradient of the
convolution with the same geometry with respect to its input, which is why it equals
``torch.nn.functional.conv_transpose2d``. Weights are ``(C_in, C_out / groups, kH, kW)``.

FCN (Long, Shelhamer & Darrell 2015, arXiv:1411.4038, Sec. 3.3) upsamples scores with a
transposed convolution of kernel ``2s`` and stride ``s``, initialised to bilinear interpolation
(:func:`bilinear_kernel`) and then learnt.

Checkerboard artefacts (Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts",
Distill 2016): when the kernel size is not a multiple of the stride, output pixels receive
different numbers of kernel copies (kernel 3, stride 2: 1, 2, 1, 2 ... per axis, so 1/2/4 in
2D), an uneven pattern a net must learn to cancel. Kernel 4 with stride 2 is even (2 per axis,
4 in 2D, away from the border), and so is resizing first then convolving (every output pixel
sees 3x3 taps). :func:`overlap_counts` computes the counts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError

__all__ = ["ConvTranspose2d", "bilinear_kernel", "conv_transpose2d", "overlap_counts"]

IntPair = int | tuple[int, int]


def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise InvalidArgumentError(f"{name} must be an int >= {minimum} or a pair of them, got "
                                   f"{value!r}")
    return pair  # type: ignore[return-value]


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                     stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                     groups: int = 1, dilation: IntPair = 1) -> Tensor:
    """Transposed convolution of ``input (B, C_in, H, W)`` with ``weight (C_in, C_out/groups,
    kH, kW)``: every input pixel scatters the kernel into the output; overlaps add.

    Returns ``(B, C_out, H_out, W_out)`` with ``H_out = (H - 1) * stride - 2 * padding +
    dilation * (kH - 1) + output_padding + 1``; equals ``F.conv_transpose2d``.
    """
    if input.dim() != 4 or weight.dim() != 4:
        raise InvalidArgumentError(f"input must be (B, C, H, W) and weight (C_in, C_out/groups, "
                                   f"kH, kW); got {tuple(input.shape)} and {tuple(weight.shape)}")
    s, p = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    op, d = _pair(output_padding, "output_padding", 0), _pair(dilation, "dilation", 1)
    if any(o >= max(si, di) for o, si, di in zip(op, s, d)):
        raise InvalidArgumentError(f"output_padding {op} must be smaller than stride {s} or "
                                   f"dilation {d}")
    b, c_in, h, w = input.shape
    if not isinstance(groups, int) or groups < 1 or c_in % groups or weight.shape[0] != c_in:
        raise InvalidArgumentError(f"weight {tuple(weight.shape)} and groups={groups} do not "
                                   f"fit an input of {c_in} channels")
    cg_out, kh, kw = weight.shape[1:]
    c_out = cg_out * groups
    full = ((h - 1) * s[0] + d[0] * (kh - 1) + 1, (w - 1) * s[1] + d[1] * (kw - 1) + 1)
    out_h = full[0] - 2 * p[0] + op[0]
    out_w = full[1] - 2 * p[1] + op[1]
    if out_h < 1 or out_w < 1:
        raise InvalidArgumentError(f"padding {p} leaves no output for an input of {h}x{w}")
    # The buffer holds the whole scatter plus the output_padding rows beyond it.
    buf_h, buf_w = max(full[0], p[0] + out_h), max(full[1], p[1] + out_w)
    out = input.new_zeros(b, groups, cg_out, buf_h, buf_w)
    x = input.reshape(b, groups, c_in // groups, h, w)
    wg = weight.reshape(groups, c_in // groups, cg_out, kh, kw)
    # Each input pixel (y, x) adds value * kernel[i, j] at (y*s + i*d, x*s + j*d). Grouping
    # the scatter by kernel tap (i, j) does every pixel's copy of that tap in one slice-add.
    depthwise = c_in // groups == 1 and cg_out == 1
    for i in range(kh):
        for j in range(kw):
            if depthwise:  # one channel in, one out per group: a scaled copy
                tap = x * wg[:, :, :, i, j].view(1, groups, 1, 1, 1)
            else:
                tap = torch.einsum("bgchw,gco->bgohw", x, wg[:, :, :, i, j])
            r, c = i * d[0], j * d[1]
            out[:, :, :, r: r + (h - 1) * s[0] + 1: s[0], c: c + (w - 1) * s[1] + 1: s[1]] += tap
    out = out.reshape(b, c_out, buf_h, buf_w)[:, :, p[0]: p[0] + out_h, p[1]: p[1] + out_w]
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> Tensor:
    """FCN's bilinear upsampling weights ``(in_channels, out_channels, k, k)``.

    Channel ``c`` maps to channel ``c`` only (a diagonal in the channels), with the tent
    ``(1 - |x - centre| / f) (1 - |y - centre| / f)``, ``f = ceil(k / 2)``, ``centre = f - 1``
    for odd ``k`` and ``f - 0.5`` for even ``k`` (Caffe's / FCN's ``upsample_filt``). With
    ``k = 2 * stride`` and ``padding = stride // 2`` a transposed convolution with it equals
    bilinear interpolation (``align_corners=False``) away from the border.
    """
    if in_channels < 1 or out_channels < 1 or kernel_size < 1:
        raise InvalidArgumentError("channels and kernel_size must be positive")
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    tent = 1 - (og - centre).abs() / factor
    filt = (tent[:, None] * tent[None, :]).float()
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    for c in range(min(in_channels, out_channels)):
        weight[c, c] = filt
    return weight


def overlap_counts(size: IntPair, *, kernel_size: int, stride: int, padding: int = 0,
                   resize_conv: bool = False) -> Tensor:
    """How many kernel taps reach each output pixel when upsampling a ``size`` map by
    ``stride``: a transposed convolution of a map of ones with a kernel of ones.

    Args:
        size: input side(s).
        kernel_size: kernel side.
        stride: the upsampling factor.
        padding: cropped from each border of the transposed convolution's output; with
            ``resize_conv`` the convolution's zero padding (default: "same").
        resize_conv: nearest-neighbour resize by ``stride``, then a ``kernel_size``
            convolution: every output pixel gets ``kernel_size ** 2`` taps (fewer at the border
            only with zero padding), the even pattern.

    Returns:
        Float tensor ``(H_out, W_out)`` of counts. Kernel 3 / stride 2 alternates 1 and 2 per
        axis (1, 2 and 4 in 2D: the checkerboard); kernel 4 / stride 2 gives 2 per axis (4 in
        2D) inside a one-pixel border.
    """
    h, w = _pair(size, "size", 1)
    ones = torch.ones(1, 1, h, w)
    kernel = torch.ones(1, 1, kernel_size, kernel_size)
    if resize_conv:
        pad = kernel_size // 2 if padding == 0 else padding
        up = F.interpolate(ones, scale_factor=stride, mode="nearest")
        return F.conv2d(up, kernel, padding=pad)[0, 0]
    return conv_transpose2d(ones, kernel, stride=stride, padding=padding)[0, 0]


class ConvTranspose2d(nn.Module):
    """:func:`conv_transpose2d` with a learnable weight ``(in, out/groups, k, k)`` and bias.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel side.
        stride: upsampling factor.
        padding: rows/columns cropped from each border.
        output_padding: rows/columns added at the bottom/right (to reach an exact size).
        groups: channel groups.
        bias: learn a per-channel bias.
        dilation: spacing of the kernel taps.
        init: ``"default"`` (PyTorch's ``nn.ConvTranspose2d`` initialisation) or
            ``"bilinear"`` (:func:`bilinear_kernel`, zero bias; FCN's learnable upsampling).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, *, output_padding: int = 0, groups: int = 1,
                 bias: bool = True, dilation: int = 1, init: str = "default") -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise InvalidArgumentError(f"groups={groups} must divide in_channels={in_channels} "
                                       f"and out_channels={out_channels}")
        if init not in ("default", "bilinear"):
            raise InvalidArgumentError(f"init must be 'default' or 'bilinear', got {init!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.output_padding, self.groups, self.dilation = output_padding, groups, dilation
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels // groups,
                                               kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.init = init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init == "bilinear":
            if self.groups != 1:
                raise InvalidArgumentError("bilinear init needs groups=1")
            with torch.no_grad():
                self.weight.copy_(bilinear_kernel(self.in_channels, self.out_channels,
                                                  self.kernel_size))
            if self.bias is not None:
                nn.init.zeros_(self.bias)
            return
        # nn.ConvTranspose2d's: fan_in computed from weight.size(1) * k * k.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size ** 2
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return conv_transpose2d(x, self.weight, self.bias, stride=self.stride,
                                padding=self.padding, output_padding=self.output_padding,
                                groups=self.groups, dilation=self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, init={self.init!r}")
