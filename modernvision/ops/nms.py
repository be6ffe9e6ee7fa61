"""Greedy non-maximum suppression, per image and per class.

Greedy NMS as used by R-CNN ("Rich feature hierarchies for accurate object detection and semantic
segmentation", Girshick et al., 2013, arXiv:1311.2524) and every detector since: visit boxes in
descending score order, keep a box unless a kept box overlaps it with IoU ``> iou_threshold``.

Results equal torchvision's, index for index: scores are ordered by the same stable descending
sort (equal scores keep their input order) and IoU is evaluated with the same float operations.
On CPU a numba kernel with spatial culling replaces torchvision's O(N^2) loop
(:mod:`modernvision.ops._nms_cpu`); CUDA tensors use two Triton kernels
(:mod:`modernvision.ops._nms_triton`), except float64 ones, or where Triton is missing or
``MODERNVISION_DISABLE_TRITON=1``, which go through the CPU kernel. float16/bfloat16 boxes are
compared in float32. Departure: boxes with ``x2 < x1`` or ``y2 < y1`` and NaN/inf boxes or scores
raise a ``ValueError`` (torchvision silently computes with them).

``batched_nms`` runs independent NMS per category in one pass. For inputs small enough that
torchvision offsets each category's boxes by ``idx * (max_coordinate + 1)`` (its "coordinate
trick"), the IoUs here are computed on the same offset boxes, so both round alike; categories
never interact here even where that trick would let them (negative coordinates). The order of
equal-score results follows torchvision's in both of its regimes.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from modernvision.ops._checks import check_boxes, check_finite, check_tensor
from modernvision.ops._nms_cpu import greedy_nms_sorted

__all__ = ["batched_nms", "nms"]


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression.

    Args:
        boxes: ``Tensor[N, 4]`` in ``(x1, y1, x2, y2)`` format, floating point, finite.
        scores: ``Tensor[N]`` score of each box, finite.
        iou_threshold: a box is discarded when its IoU with a kept, higher-scoring box is
            ``> iou_threshold``.

    Returns:
        ``Tensor[K]`` int64 indices of the kept boxes, in decreasing order of score.

    Raises:
        TypeError: non-tensor or non-floating-point ``boxes``/``scores``.
        ValueError: wrong shapes, mismatched lengths, ``x2 < x1``/``y2 < y1``, NaN or inf.
    """
    _check_shapes(boxes, scores)
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    if _on_triton(boxes):
        _check_values(boxes, scores)
        return _nms_triton(boxes, scores, None, float(iou_threshold))
    b, s = _as_numpy(boxes, scores)
    keep = _nms_numpy(b, s, np.zeros(len(s), np.int64), float(iou_threshold))
    return torch.from_numpy(keep).to(boxes.device)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Non-maximum suppression applied independently to each category.

    Args:
        boxes: ``Tensor[N, 4]`` in ``(x1, y1, x2, y2)`` format, floating point, finite.
        scores: ``Tensor[N]`` score of each box, finite.
        idxs: ``Tensor[N]`` integer category of each box; boxes of different categories never
            suppress each other.
        iou_threshold: IoU above which a lower-scoring box of the same category is discarded.

    Returns:
        ``Tensor[K]`` int64 indices of the kept boxes, in decreasing order of score.
    """
    _check_shapes(boxes, scores)
    check_tensor(idxs, "idxs")
    if idxs.dim() != 1 or idxs.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"idxs must have shape [N] = [{boxes.shape[0]}] like boxes, got {list(idxs.shape)}"
        )
    if idxs.is_floating_point() or idxs.is_complex():
        raise TypeError(f"idxs must be an integer tensor of category ids, got {idxs.dtype}")
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    threshold = float(iou_threshold)
    # torchvision offsets each category's boxes by idx * (max_coordinate + 1) when the input is
    # small, and runs NMS per category otherwise; the IoUs here use the same (offset or not)
    # coordinates, so they round alike.
    small = boxes.numel() <= (4000 if boxes.device.type == "cpu" else 100_000)
    if _on_triton(boxes):
        _check_values(boxes, scores)
        if small:
            offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
            boxes = boxes + offsets[:, None]
        keep = _nms_triton(boxes, scores, idxs.to(torch.int64), threshold)
    else:
        b, s = _as_numpy(boxes, scores)
        labels = idxs.detach().cpu().numpy().astype(np.int64)
        if small:
            offsets = labels.astype(b.dtype) * (b.max() + b.dtype.type(1))
            b = b + offsets[:, None]
        keep = torch.from_numpy(_nms_numpy(b, s, labels, threshold)).to(boxes.device)
    if small:
        return keep
    # torchvision's per-category regime orders the survivors by index, then by an (unstable)
    # descending sort of their scores: equal scores come out in that sort's order.
    keep = keep.sort().values
    return keep[scores[keep].sort(descending=True)[1]]


def _check_shapes(boxes: Tensor, scores: Tensor) -> None:
    check_tensor(boxes, "boxes")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape [N, 4], got {list(boxes.shape)}")
    if not boxes.is_floating_point():
        raise TypeError(f"boxes must be a floating point tensor, got {boxes.dtype}")
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
        raise ValueError(
            f"boxes and scores must be on one device, got {boxes.device} and {scores.device}"
        )


def _check_values(boxes: Tensor, scores: Tensor) -> None:
    # One device sync for all three checks; the detailed message only when one fails.
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    bad = bad.any() | ~torch.isfinite(boxes).all() | ~torch.isfinite(scores).all()
    if bool(bad):
        check_boxes(boxes, "boxes")
        check_finite(boxes, "boxes")
        check_finite(scores, "scores")


def _as_numpy(boxes: Tensor, scores: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """float32/float64 numpy copies-or-views, checked (numpy: no intra-op thread hand-offs)."""
    b = boxes.detach().cpu()
    if b.dtype not in (torch.float32, torch.float64):
        b = b.float()
    s = scores.detach().cpu()
    if s.dtype not in (torch.float32, torch.float64):
        s = s.float()
    b, s = b.numpy(), s.numpy()
    if not (np.isfinite(b).all() and np.isfinite(s).all()):
        raise ValueError("boxes and scores must be finite, got NaN or infinite values")
    bad = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"boxes must be in (x1, y1, x2, y2) format with x2 >= x1 and y2 >= y1; box {i} is "
            f"{b[i].tolist()}. Convert other formats with box_convert()."
        )
    return b, s


def _nms_numpy(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, threshold: float):
    """Kept indices (int64 numpy) in descending score order."""
    # Stable descending order, as torch.sort(stable=True, descending=True): ties by index.
    order = np.argsort(-scores, kind="stable")
    b = boxes[order]
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, i]) for i in range(4))
    positions = greedy_nms_sorted(x1, y1, x2, y2, labels[order], threshold)
    return order[positions]


def _on_triton(boxes: Tensor) -> bool:
    if not boxes.is_cuda or boxes.dtype == torch.float64:
        return False
    if os.environ.get("MODERNVISION_DISABLE_TRITON", "0") == "1":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _nms_triton(
    boxes: Tensor, scores: Tensor, labels: Tensor | None, iou_threshold: float
) -> Tensor:
    from modernvision.ops._nms_triton import nms_sorted_triton

    order = torch.sort(scores.detach(), stable=True, dim=0, descending=True)[1]
    sorted_boxes = boxes.detach()[order].float().contiguous()
    sorted_labels = labels[order] if labels is not None else None
    return order[nms_sorted_triton(sorted_boxes, sorted_labels, iou_threshold)]
