"""Box regression targets relative to anchors or proposals.

"Rich feature hierarchies for accurate object detection and semantic segmentation" (Girshick et
al., 2013, arXiv:1311.2524), appendix C, as used by Fast/Faster R-CNN: for an anchor with centre
``(xa, ya)`` and size ``(wa, ha)`` and a target box ``(x, y, w, h)``,
``t = (wx (x - xa) / wa, wy (y - ya) / ha, ww log(w / wa), wh log(h / ha))``. The weights
``(wx, wy, ww, wh)`` scale the targets (Fast R-CNN's second stage uses ``(10, 10, 5, 5)``).
Decoding clamps ``dw, dh`` at ``log(1000 / 16)`` before ``exp`` so a wild prediction cannot
overflow, as Detectron and torchvision do. Widths are ``x2 - x1`` (no "+1"). Shapes are checked
on every call, values are not (that would synchronise with the device): validate boxes where they
enter, with :func:`modernvision.ops.validate_boxes`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from modernvision.ops._checks import check_boxes, check_tensor

__all__ = ["BoxCoder"]


class BoxCoder:
    """Encode boxes as regression targets against reference boxes, and decode predictions.

    Args:
        weights: ``(wx, wy, ww, wh)`` multipliers of the four targets.
        bbox_xform_clip: upper bound of ``dw`` and ``dh`` before ``exp`` when decoding.
    """

    def __init__(
        self,
        weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
        bbox_xform_clip: float = math.log(1000.0 / 16),
    ) -> None:
        if len(weights) != 4 or any(w <= 0 for w in weights):
            raise ValueError(f"weights must be four positive numbers, got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        self.bbox_xform_clip = float(bbox_xform_clip)

    def __repr__(self) -> str:
        return f"BoxCoder(weights={self.weights}, bbox_xform_clip={self.bbox_xform_clip:.4f})"

    def encode(self, boxes: Tensor, anchors: Tensor) -> Tensor:
        """Regression targets that move ``anchors`` onto ``boxes``.

        Args:
            boxes: ``Tensor[N, 4]`` ``(x1, y1, x2, y2)`` targets (e.g. matched ground truth).
            anchors: ``Tensor[N, 4]`` ``(x1, y1, x2, y2)`` anchors or proposals.

        Returns:
            ``Tensor[N, 4]`` of ``(dx, dy, dw, dh)``.
        """
        check_boxes(boxes, "boxes", ndim=2, check_order=False)
        check_boxes(anchors, "anchors", ndim=2, check_order=False)
        if boxes.shape[0] != anchors.shape[0]:
            raise ValueError(
                f"boxes and anchors must pair up, got {boxes.shape[0]} and {anchors.shape[0]} boxes"
            )
        wx, wy, ww, wh = self.weights
        anchor_w = anchors[:, 2] - anchors[:, 0]
        anchor_h = anchors[:, 3] - anchors[:, 1]
        anchor_cx = anchors[:, 0] + 0.5 * anchor_w
        anchor_cy = anchors[:, 1] + 0.5 * anchor_h
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        cx = boxes[:, 0] + 0.5 * w
        cy = boxes[:, 1] + 0.5 * h
        dx = wx * (cx - anchor_cx) / anchor_w
        dy = wy * (cy - anchor_cy) / anchor_h
        dw = ww * torch.log(w / anchor_w)
        dh = wh * torch.log(h / anchor_h)
        return torch.stack((dx, dy, dw, dh), dim=1)

    def decode(self, deltas: Tensor, anchors: Tensor) -> Tensor:
        """Boxes obtained by applying ``deltas`` to ``anchors``.

        Args:
            deltas: ``Tensor[N, 4 * J]`` predicted ``(dx, dy, dw, dh)`` (``J`` sets per box,
                e.g. one per class).
            anchors: ``Tensor[N, 4]`` ``(x1, y1, x2, y2)`` anchors or proposals.

        Returns:
            ``Tensor[N, 4 * J]`` decoded ``(x1, y1, x2, y2)`` boxes, in ``deltas``' dtype.
        """
        check_tensor(deltas, "deltas")
        check_boxes(anchors, "anchors", ndim=2, check_order=False)
        if deltas.dim() != 2 or deltas.shape[1] % 4 != 0 or deltas.shape[1] == 0:
            raise ValueError(f"deltas must have shape [N, 4 * J], got {list(deltas.shape)}")
        if deltas.shape[0] != anchors.shape[0]:
            raise ValueError(
                f"deltas and anchors must pair up, got {deltas.shape[0]} and "
                f"{anchors.shape[0]} rows"
            )
        anchors = anchors.to(deltas.dtype)
        wx, wy, ww, wh = self.weights
        widths = (anchors[:, 2] - anchors[:, 0])[:, None]
        heights = (anchors[:, 3] - anchors[:, 1])[:, None]
        ctr_x = anchors[:, 0, None] + 0.5 * widths
        ctr_y = anchors[:, 1, None] + 0.5 * heights
        dx = deltas[:, 0::4] / wx
        dy = deltas[:, 1::4] / wy
        dw = (deltas[:, 2::4] / ww).clamp(max=self.bbox_xform_clip)
        dh = (deltas[:, 3::4] / wh).clamp(max=self.bbox_xform_clip)
        pred_cx = dx * widths + ctr_x
        pred_cy = dy * heights + ctr_y
        half_w = 0.5 * (torch.exp(dw) * widths)
        half_h = 0.5 * (torch.exp(dh) * heights)
        boxes = torch.stack(
            (pred_cx - half_w, pred_cy - half_h, pred_cx + half_w, pred_cy + half_h), dim=2
        )
        return boxes.flatten(1)
