"""Keypoints derived from instance masks: each object's four extreme points.

The composited scenes of :mod:`modernvision.data.scenes` have exact instance masks but no
annotated keypoints, so a keypoint model is trained here on keypoints *derived* from the masks:
the topmost, leftmost, bottommost and rightmost pixel of each object, the points ExtremeNet
(Zhou, Zhuo, Krahenbuhl, "Bottom-up Object Detection by Grouping Extreme and Center Points",
2019, arXiv:1901.08043) detects. Where several pixels share the extreme row (column), the one in
the middle of them (the lower median) is taken. Points are pixel centres (``x + 0.5, y + 0.5``)
in the library's pixel-edge coordinates.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["EXTREME_POINT_NAMES", "extreme_points"]

EXTREME_POINT_NAMES = ("top", "left", "bottom", "right")


def extreme_points(masks: Tensor) -> Tensor:
    """``masks [N, H, W]`` (nonzero = object) -> ``[N, 4, 3]`` ``(x, y, visibility)`` of the
    top, left, bottom and right extreme pixels; visibility 2 (COCO's "visible"), or all zeros
    for an empty mask."""
    if not isinstance(masks, Tensor) or masks.dim() != 3:
        got = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
        raise ValueError(f"masks must be a Tensor[N, H, W], got {got}")
    out = torch.zeros(masks.shape[0], 4, 3)
    for i, mask in enumerate(masks.bool().cpu()):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        if ys.numel() == 0:
            continue
        points = []
        for along, across, pick in ((ys, xs, ys.min()), (xs, ys, xs.min()),
                                    (ys, xs, ys.max()), (xs, ys, xs.max())):
            middle = across[along == pick].sort().values
            mid = middle[(middle.numel() - 1) // 2]
            points.append((pick, mid) if along is ys else (mid, pick))
        for k, (y, x) in enumerate(points):
            out[i, k] = torch.tensor([float(x) + 0.5, float(y) + 0.5, 2.0])
    return out.to(masks.device)
