"""Greedy non-maximum suppression, per image and per class.

Greedy NMS as used by R-CNN ("Rich feature hierarchies for accurate object detection and semantic
segmentation", Girshick et al., 2013, arXiv:1311.2524) and every detector since: visit boxes in
descending score order, keep a box unless a kept box overlaps it with IoU ``> iou_threshold``.

Results equal torchvision's, index for index: scores are ordered by the same stable descending
sort (equal scores keep their input order) and IoU is evaluated with the same float operations.
On CPU a numba kernel with spatial culling replaces torchvision's O(N^2) loop
(:mod:`modernvision.ops._nms_cpu`); CUDA float32/float16 tensors use two Triton kernels
(:mod:`modernvision.ops._nms_triton`) and fall back to the CPU kernel where Triton is missing
or ``MODERNVISION_DISABLE_TRITON=1``. float16/bfloat16 boxes are compared in float32.

``batched_nms`` runs independent NMS per category in one pass. For inputs small enough that
torchvision offsets each category's boxes by ``idx * (max_coordinate + 1)`` (its "coordinate
trick"), the IoUs here are computed on the same offset boxes, so both round alike; categories
never interact here even where that trick would let them (negative coordinates). The order of
equal-score results follows torchvision's in both of its regimes.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from modernvision.ops._checks import check_boxes, check_finite, check_tensor
from modernvision.ops._nms_cpu import greedy_nms_sorted

__all__ = ["batched_nms", "nms"]


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression.

    Args:
        boxes: ``Tensor[N, 4]`` in ``(x1, y1, x2, y2)`` format, floating point, finite.
        scores: ``Tensor[N]`` score of each box.
        iou_threshold: a box is discarded when its IoU with a kept, higher-scoring box is
            ``> iou_threshold``.

    Returns:
        ``Tensor[K]`` int64 indices of the kept boxes, in decreasing order of score.

    Raises:
        TypeError: non-tensor or non-floating-point ``boxes``/``scores``.
        ValueError: wrong shapes, mismatched lengths, ``x2 < x1``/``y2 < y1``, NaN or inf.
    """
    _check_inputs(boxes, scores)
    return _nms(boxes, scores, None, float(iou_threshold))


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Non-maximum suppression applied independently to each category.

    Args:
        boxes: ``Tensor[N, 4]`` in ``(x1, y1, x2, y2)`` format, floating point, finite.
        scores: ``Tensor[N]`` score of each box.
        idxs: ``Tensor[N]`` integer category of each box; boxes of different categories never
            suppress each other.
        iou_threshold: IoU above which a lower-scoring box of the same category is discarded.

    Returns:
        ``Tensor[K]`` int64 indices of the kept boxes, in decreasing order of score.
    """
    _check_inputs(boxes, scores)
    check_tensor(idxs, "idxs")
    if idxs.dim() != 1 or idxs.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"idxs must have shape [N] = [{boxes.shape[0]}] like boxes, got {list(idxs.shape)}"
        )
    if idxs.is_floating_point() or idxs.is_complex():
        raise TypeError(f"idxs must be an integer tensor of category ids, got {idxs.dtype}")
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    labels = idxs.to(torch.int64)
    small = boxes.numel() <= (4000 if boxes.device.type == "cpu" else 100_000)
    if small:
        # torchvision's regime: IoU on boxes offset per category (same ops, same rounding).
        max_coordinate = boxes.max()
        offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
        keep = _nms(boxes + offsets[:, None], scores, labels, float(iou_threshold))
        return keep
    keep = _nms(boxes, scores, labels, float(iou_threshold))
    # torchvision's per-category regime orders the survivors by index, then by an (unstable)
    # descending sort of their scores; equal scores come out in that sort's order.
    keep = keep.sort().values
    return keep[scores[keep].sort(descending=True)[1]]


def _check_inputs(boxes: Tensor, scores: Tensor) -> None:
    check_boxes(boxes, "boxes", ndim=2, floating=True)
    check_tensor(scores, "scores")
    if scores.dim() != 1:
        raise ValueError(f"scores must have shape [N], got {list(scores.shape)}")
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"boxes and scores must have the same length N, got {boxes.shape[0]} and "
            f"{scores.shape[0]}"
        )
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a floating point tensor, got {scores.dtype}")
    if scores.device != boxes.device:
        raise ValueError(f"boxes and scores must be on one device, got {boxes.device} and "
                         f"{scores.device}")
    check_finite(boxes, "boxes")


def _nms(boxes: Tensor, scores: Tensor, labels: Tensor | None, iou_threshold: float) -> Tensor:
    """Kept indices in descending score order; ``labels`` separate independent runs."""
    device = boxes.device
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    boxes = boxes.detach()
    scores = scores.detach()
    order = torch.sort(scores, stable=True, dim=0, descending=True)[1]
    if boxes.dtype not in (torch.float32, torch.float64):
        boxes = boxes.float()
    if boxes.is_cuda and boxes.dtype == torch.float32 and _triton_enabled():
        from modernvision.ops._nms_triton import nms_sorted_triton

        sorted_labels = labels[order] if labels is not None else None
        positions = nms_sorted_triton(boxes[order].contiguous(), sorted_labels, iou_threshold)
        return order[positions]
    cpu_order = order.cpu()
    x1, y1, x2, y2 = boxes.cpu()[cpu_order].T.contiguous().numpy()
    if labels is None:
        sorted_labels = torch.zeros(len(cpu_order), dtype=torch.int64).numpy()
    else:
        sorted_labels = labels.cpu()[cpu_order].numpy()
    positions = greedy_nms_sorted(x1, y1, x2, y2, sorted_labels, iou_threshold)
    return cpu_order[torch.from_numpy(positions)].to(device)


def _triton_enabled() -> bool:
    if os.environ.get("MODERNVISION_DISABLE_TRITON", "0") == "1":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
