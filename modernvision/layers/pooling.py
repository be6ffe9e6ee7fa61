"""Max, average and global pooling written with tensor views (``Tensor.unfold``).

Max pooling as a subsampling layer goes back to Ranzato et al. (CVPR 2007) and was popularised
with overlapping 3x3/2 windows by Krizhevsky et al., "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012. Global average pooling in place of fully connected
layers is from Lin, Chen and Yan, "Network In Network", 2013, arXiv:1312.4400.

The window arithmetic follows torch.nn.functional's ``max_pool2d``/``avg_pool2d`` exactly:
``out = floor_or_ceil((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1``; with
``ceil_mode`` a last window is kept only if it starts inside the input or the left padding; average
pooling divides by the window's size clipped to the padded input (``count_include_pad=True``) or to
the input itself (``False``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IntPair = int | tuple[int, int]


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


def _output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = d * (k - 1) + 1
    out = (size + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # the last window would start in the right padding: torch drops it
    return out


def _windows(x: Tensor, kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
             dilation: IntPair, ceil_mode: bool, fill: float, name: str
             ) -> tuple[Tensor, tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Padded sliding windows of ``x``: ``(N, C, H, W) -> (N, C, OH, OW, kh, kw)`` (a view)."""
    if x.dim() != 4:
        raise ValueError(f"{name} expects input of shape (N, C, H, W) or (C, H, W), got "
                         f"{tuple(x.shape)}")
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or stride == () else _pair(stride, "stride")
    p, d = _pair(padding, "padding"), _pair(dilation, "dilation")
    if min(k) <= 0 or min(s) <= 0 or min(d) <= 0:
        raise ValueError(f"{name}: kernel_size, stride and dilation must be positive, got "
                         f"kernel_size={k}, stride={s}, dilation={d}")
    if min(p) < 0 or any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"{name}: padding must be in [0, kernel_size // 2], got padding={p} "
                         f"for kernel_size={k}")
    size = (x.shape[2], x.shape[3])
    out = tuple(_output_size(size[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(2))
    if min(out) < 1:
        raise ValueError(f"{name}: input of shape {tuple(x.shape)} is too small for "
                         f"kernel_size={k}, padding={p}, dilation={d}: output size {out}")
    span = tuple(d[i] * (k[i] - 1) + 1 for i in range(2))
    # Extra bottom/right padding so that the ceil-mode windows exist; never read beyond them.
    extra = tuple(max(0, (out[i] - 1) * s[i] + span[i] - (size[i] + 2 * p[i])) for i in range(2))
    x = F.pad(x, (p[1], p[1] + extra[1], p[0], p[0] + extra[0]), value=fill)
    win = x.unfold(2, span[0], s[0]).unfold(3, span[1], s[1])  # (N, C, OH', OW', span_h, span_w)
    win = win[:, :, : out[0], : out[1], :: d[0], :: d[1]]
    return win, k, s, p


def _unbatched(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Let a pooling function take an unbatched ``(C, H, W)`` input as well."""

    @functools.wraps(fn)
    def wrapper(x: Tensor, *args, **kwargs) -> Tensor:
        if x.dim() == 3:
            return fn(x.unsqueeze(0), *args, **kwargs).squeeze(0)
        return fn(x, *args, **kwargs)

    return wrapper


@_unbatched
def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0, dilation: IntPair = 1, ceil_mode: bool = False) -> Tensor:
    """Maximum over sliding windows; equals ``torch.nn.functional.max_pool2d``.

    Args:
        x: ``Tensor[N, C, H, W]`` or ``Tensor[C, H, W]``.
        kernel_size: window size.
        stride: window step (defaults to ``kernel_size``).
        padding: implicit ``-inf`` padding on each side (at most half the kernel).
        dilation: spacing between window elements.
        ceil_mode: round the output size up instead of down.

    Returns:
        ``Tensor[N, C, OH, OW]``; the gradient flows to each window's maximum.
    """
    win, _, _, _ = _windows(x, kernel_size, stride, padding, dilation, ceil_mode,
                            -math.inf, "max_pool2d")
    return _max_last(win.flatten(-2))


def _max_last(values: Tensor) -> Tensor:
    """Maximum over the last axis; the gradient goes to the first maximum, as in torch's pools."""
    # argmax + gather rather than max(dim): argmax documents "first maximal value" for ties.
    index = values.argmax(dim=-1, keepdim=True)
    return values.gather(-1, index).squeeze(-1)


def _divisors(size: int, out: int, k: int, s: int, p: int, count_include_pad: bool) -> Tensor:
    divisors = []
    for o in range(out):
        start = o * s - p
        end = min(start + k, size + p)  # windows are clipped to the padded input
        if not count_include_pad:
            start, end = max(start, 0), min(end, size)
        divisors.append(end - start)
    return torch.tensor(divisors)


@_unbatched
def avg_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over sliding windows; equals ``torch.nn.functional.avg_pool2d``.

    Args:
        x: ``Tensor[N, C, H, W]`` or ``Tensor[C, H, W]``.
        kernel_size: window size.
        stride: window step (defaults to ``kernel_size``).
        padding: implicit zero padding on each side (at most half the kernel).
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padded zeros in the divisor.
        divisor_override: divide every window sum by this instead.

    Returns:
        ``Tensor[N, C, OH, OW]``.
    """
    if divisor_override is not None and divisor_override <= 0:
        raise ValueError(f"divisor_override must be a positive int, got {divisor_override!r}")
    win, k, s, p = _windows(x, kernel_size, stride, padding, 1, ceil_mode, 0.0, "avg_pool2d")
    total = win.sum(dim=(-2, -1))
    if divisor_override is not None:
        return total / divisor_override
    size, out = (x.shape[2], x.shape[3]), (total.shape[2], total.shape[3])
    rows, cols = (_divisors(size[i], out[i], k[i], s[i], p[i], count_include_pad)
                  for i in range(2))
    divisor = (rows[:, None] * cols[None, :]).to(device=x.device, dtype=x.dtype)  # (OH, OW)
    return total / divisor


def global_avg_pool2d(x: Tensor, flatten: bool = False) -> Tensor:
    """Mean over ``H, W`` (Network In Network): ``(N, C, H, W) -> (N, C, 1, 1)`` or ``(N, C)``."""
    if x.dim() != 4:
        raise ValueError(f"global_avg_pool2d expects input of shape (N, C, H, W), got "
                         f"{tuple(x.shape)}")
    return x.mean(dim=(2, 3), keepdim=not flatten)


def global_max_pool2d(x: Tensor, flatten: bool = False) -> Tensor:
    """Maximum over ``H, W``: ``(N, C, H, W) -> (N, C, 1, 1)`` or ``(N, C)``."""
    if x.dim() != 4:
        raise ValueError(f"global_max_pool2d expects input of shape (N, C, H, W), got "
                         f"{tuple(x.shape)}")
    pooled = _max_last(x.flatten(2))
    return pooled if flatten else pooled[:, :, None, None]


class MaxPool2d(nn.Module):
    """Module form of :func:`max_pool2d` (torch.nn.MaxPool2d's arguments, no return_indices)."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 dilation: IntPair = 1, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x``."""
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode)


class AvgPool2d(nn.Module):
    """Module form of :func:`avg_pool2d` (torch.nn.AvgPool2d's arguments)."""

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}")

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x``."""
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)


class _GlobalPool2d(nn.Module):
    """Shared ``flatten`` option of the global pools."""

    def __init__(self, flatten: bool = False) -> None:
        super().__init__()
        self.flatten = flatten

    def extra_repr(self) -> str:
        return f"flatten={self.flatten}"


class GlobalAvgPool2d(_GlobalPool2d):
    """Average over all positions; ``flatten=True`` returns ``(N, C)`` instead of ``(N, C, 1, 1)``.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x``."""
        return global_avg_pool2d(x, self.flatten)


class GlobalMaxPool2d(_GlobalPool2d):
    """Maximum over all positions; ``flatten=True`` returns ``(N, C)`` instead of ``(N, C, 1, 1)``.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x``."""
        return global_max_pool2d(x, self.flatten)
