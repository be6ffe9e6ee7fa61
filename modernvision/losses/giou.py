"""Generalized IoU loss.

"Generalized Intersection over Union: A Metric and A Loss for Bounding Box Regression"
(Rezatofighi et al., 2019, arXiv:1902.09630), Algorithm 2: ``L = 1 - GIoU`` for matched pairs of
boxes, ``GIoU = IoU - |C \\ (A u B)| / |C|``. ``eps`` guards the two divisions, as torchvision's
``generalized_box_iou_loss`` does, so that degenerate (zero-area) pairs give a finite loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

from modernvision.ops._checks import check_boxes, check_reduction

__all__ = ["generalized_box_iou_loss"]


def generalized_box_iou_loss(
    boxes1: Tensor, boxes2: Tensor, reduction: str = "none", eps: float = 1e-7
) -> Tensor:
    """``1 - GIoU`` of matched box pairs, in ``[0, 2]``.

    Args:
        boxes1: ``Tensor[..., 4]`` ``(x1, y1, x2, y2)`` boxes (e.g. predictions).
        boxes2: ``Tensor[..., 4]`` ``(x1, y1, x2, y2)`` boxes, same shape (e.g. targets).
        reduction: ``"none"``, ``"mean"`` or ``"sum"`` (the mean of no pairs is 0).
        eps: added to the denominators.

    Returns:
        ``Tensor[...]`` loss per pair, or its mean or sum.
    """
    check_boxes(boxes1, "boxes1", check_order=False)
    check_boxes(boxes2, "boxes2", check_order=False)
    check_reduction(reduction)
    if boxes1.shape != boxes2.shape:
        raise ValueError(
            f"boxes1 and boxes2 must have the same shape (matched pairs), got "
            f"{list(boxes1.shape)} and {list(boxes2.shape)}"
        )
    if not boxes1.is_floating_point() or boxes1.dtype not in (torch.float32, torch.float64):
        boxes1 = boxes1.float()
    if not boxes2.is_floating_point() or boxes2.dtype not in (torch.float32, torch.float64):
        boxes2 = boxes2.float()
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    inter_w = (torch.min(x2, x2g) - torch.max(x1, x1g)).clamp(min=0)
    inter_h = (torch.min(y2, y2g) - torch.max(y1, y1g)).clamp(min=0)
    inter = inter_w * inter_h
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + eps)
    enclosing = (torch.max(x2, x2g) - torch.min(x1, x1g)) * (
        torch.max(y2, y2g) - torch.min(y1, y1g)
    )
    loss = 1 - (iou - (enclosing - union) / (enclosing + eps))
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    if reduction == "sum":
        return loss.sum()
    return loss
