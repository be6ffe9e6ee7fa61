"""Mask IoU (``pycocotools.mask.iou``), plus the COCO RLE codec re-exported.

The run-length codec and polygon rasterisation live in :mod:`modernvision.data.masks` (below
both the annotation formats and the metrics); they are re-exported here so
``modernvision.metrics.masks.rle_encode`` and friends keep working. Departure from
pycocotools: two masks of different sizes are an error instead of an IoU of -1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from modernvision.data.masks import *  # noqa: F403 - the codec, re-exported
from modernvision.data.masks import RLE, _as_numpy_mask, rle_decode
from modernvision.data.masks import __all__ as _CODEC

__all__ = [*_CODEC, "mask_iou"]


# ---------------------------------------------------------------------------------------------
# IoU


def _stack(masks: np.ndarray | torch.Tensor | Sequence[RLE], name: str) -> torch.Tensor:
    if isinstance(masks, (list, tuple)):
        if len(masks) == 0:
            return torch.zeros(0, 0, 0, dtype=torch.bool)
        if isinstance(masks[0], dict):
            arrays = [rle_decode(r) for r in masks]
            if len({a.shape for a in arrays}) > 1:
                raise ValueError(f"{name}: RLEs have different sizes")
            return torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros(0, 0, 0)
        masks = np.asarray(masks)
    if isinstance(masks, np.ndarray):
        masks = torch.from_numpy(_as_numpy_mask(masks, name).astype(bool))
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f"{name} must be an array/tensor [N, H, W] or a list of RLE dicts, "
                        f"got {type(masks).__name__}")
    if masks.ndim != 3:
        raise ValueError(f"{name} must be [N, H, W], got shape {tuple(masks.shape)}")
    if masks.is_floating_point() and masks.numel():
        raise TypeError(f"{name} must be bool or integer 0/1 masks, got {masks.dtype}; "
                        "threshold soft masks first")
    return masks


def mask_iou(
    masks1: np.ndarray | torch.Tensor | Sequence[RLE],
    masks2: np.ndarray | torch.Tensor | Sequence[RLE],
    *,
    iscrowd: Sequence[bool] | np.ndarray | torch.Tensor | None = None,
) -> np.ndarray | torch.Tensor:
    """Pairwise IoU of binary masks (``pycocotools.mask.iou``).

    For a crowd region in ``masks2`` the denominator is the area of the ``masks1`` mask alone
    (the fraction of the detection inside the crowd), as in the COCO evaluation. A pair whose
    union is empty has IoU 0.

    Args:
        masks1: ``[N, H, W]`` (detections), bool/integer array or tensor, or a list of RLEs.
        masks2: ``[M, H, W]`` (ground truth), same kinds.
        iscrowd: ``[M]`` flags for ``masks2``.

    Returns:
        ``[N, M]``: a float tensor if either input is a tensor (on its device), else float64
        array.
    """
    as_tensor = isinstance(masks1, torch.Tensor) or isinstance(masks2, torch.Tensor)
    m1, m2 = _stack(masks1, "masks1"), _stack(masks2, "masks2")
    if m1.shape[0] and m2.shape[0] and m1.shape[1:] != m2.shape[1:]:
        raise ValueError(f"masks1 and masks2 must have the same [H, W], got "
                         f"{tuple(m1.shape[1:])} and {tuple(m2.shape[1:])}")
    device = m1.device if isinstance(masks1, torch.Tensor) else m2.device
    m1, m2 = m1.to(device), m2.to(device)
    n, m = m1.shape[0], m2.shape[0]
    # Float32 sums of 0/1 are exact up to 2**24 pixels; use float64 on CPU regardless.
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    a = m1.flatten(1).to(dtype).clamp_(max=1)  # (N, H, W) -> (N, HW)
    b = m2.flatten(1).to(dtype).clamp_(max=1)  # (M, H, W) -> (M, HW)
    if a.shape[1] != b.shape[1]:  # one side empty with a placeholder size
        hw = max(a.shape[1], b.shape[1])
        a, b = a.new_zeros(n, hw) if n == 0 else a, b.new_zeros(m, hw) if m == 0 else b
    inter = a @ b.T
    area1, area2 = a.sum(1), b.sum(1)
    union = area1[:, None] + area2[None, :] - inter
    if iscrowd is not None:
        crowd = torch.as_tensor(np.asarray(iscrowd, dtype=bool) if not isinstance(
            iscrowd, torch.Tensor) else iscrowd, device=device).bool().reshape(-1)
        if crowd.numel() != m:
            raise ValueError(f"iscrowd must have one flag per masks2 entry ({m}), got "
                             f"{crowd.numel()}")
        union = torch.where(crowd[None, :], area1[:, None].expand(n, m), union)
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
    if as_tensor:
        return iou.float() if device.type == "cpu" else iou
    return iou.numpy()
