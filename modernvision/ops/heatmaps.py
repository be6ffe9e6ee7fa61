"""Gaussian keypoint heatmaps, the targets of CenterNet's penalty-reduced focal loss.

"Objects as Points" (Zhou et al., 2019, arXiv:1904.07850), sec. 3: each object's centre is
splatted onto its class's heatmap with a Gaussian ``exp(-((x - px)^2 + (y - py)^2) / (2 s^2))``,
taking the element-wise maximum where Gaussians overlap. The standard deviation is
size-adaptive as in CornerNet ("CornerNet: Detecting Objects as Paired Keypoints", Law and Deng,
2018, arXiv:1808.01244, sec. 3.2): the radius ``r`` is the largest shift of a box's corners that
keeps IoU ``>= min_overlap`` with the original box, and ``s = (2 r + 1) / 6``.

Departure: :func:`gaussian_radius` solves CornerNet's three quadratic cases exactly, instead of
reproducing the slip in the released CornerNet/CenterNet code (which divides two of the roots by
2 instead of by ``2a``); the radii are therefore the ones the paper describes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from modernvision.ops._checks import check_tensor

__all__ = ["draw_gaussian", "gaussian_radius"]


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """Largest corner shift ``r`` keeping IoU ``>= min_overlap`` in CornerNet's three cases.

    The cases, for a ``height x width`` box: both corners move outwards by ``r``; both inwards;
    one corner moves so that the boxes overlap partially. Each is a quadratic in ``r`` whose
    smaller positive root is the bound; the result is the smallest of the three.

    Args:
        height: box height (in heatmap cells).
        width: box width.
        min_overlap: IoU the shifted box must keep.

    Returns:
        The radius (a float, ``>= 0``); callers usually take ``max(0, int(r))``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height} and {width}")
    if not 0 < min_overlap < 1:
        raise ValueError(f"min_overlap must be in (0, 1), got {min_overlap}")
    h, w, t = float(height), float(width), float(min_overlap)
    # Partial overlap, one corner moved diagonally by r on both axes:
    # (h - r)(w - r) / (2hw - (h - r)(w - r)) = t  ->  r^2 - (h + w) r + hw (1 - t) / (1 + t) = 0.
    r1 = _smaller_root(1.0, -(h + w), h * w * (1 - t) / (1 + t))
    # Both corners inwards: (h - 2r)(w - 2r) / (hw) = t  ->  4r^2 - 2(h + w) r + (1 - t) hw = 0.
    r2 = _smaller_root(4.0, -2.0 * (h + w), (1 - t) * h * w)
    # Both corners outwards: hw / ((h + 2r)(w + 2r)) = t  ->  4t r^2 + 2t(h + w) r - (1 - t) hw = 0.
    r3 = _larger_root(4.0 * t, 2.0 * t * (h + w), -(1 - t) * h * w)
    return max(0.0, min(r1, r2, r3))


def _smaller_root(a: float, b: float, c: float) -> float:
    return (-b - math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)


def _larger_root(a: float, b: float, c: float) -> float:
    return (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)


def draw_gaussian(heatmap: Tensor, center: tuple[int, int], radius: int) -> Tensor:
    """Splat a Gaussian peak (value 1 at ``center``) onto ``heatmap`` in place, by maximum.

    Args:
        heatmap: ``Tensor[H, W]`` (one class's heatmap), modified in place.
        center: integer ``(x, y)`` cell of the object centre; may lie outside the map.
        radius: Gaussian radius ``r``; the window is ``(2r + 1)^2``, ``sigma = (2r + 1) / 6``.

    Returns:
        ``heatmap``.
    """
    check_tensor(heatmap, "heatmap")
    if heatmap.dim() != 2:
        raise ValueError(f"heatmap must have shape [H, W], got {list(heatmap.shape)}")
    radius = int(radius)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    cx, cy = int(center[0]), int(center[1])
    height, width = heatmap.shape
    sigma = (2 * radius + 1) / 6
    x0, x1 = max(cx - radius, 0), min(cx + radius + 1, width)
    y0, y1 = max(cy - radius, 0), min(cy + radius + 1, height)
    if x0 >= x1 or y0 >= y1:
        return heatmap
    dx = torch.arange(x0, x1, device=heatmap.device, dtype=torch.float64) - cx
    dy = torch.arange(y0, y1, device=heatmap.device, dtype=torch.float64) - cy
    gaussian = torch.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * sigma * sigma))
    window = heatmap[y0:y1, x0:x1]
    torch.maximum(window, gaussian.to(heatmap.dtype), out=window)
    return heatmap
