"""Mask R-CNN: Faster R-CNN with a mask head (and, the same way, a keypoint head).

Paper: He, Gkioxari, Dollar, Girshick, "Mask R-CNN", 2017, arXiv:1703.06870.

Instance segmentation is detection plus a mask per object. On Faster R-CNN + FPN
(:mod:`modernvision.models.detection.faster_rcnn`), a third branch beside the box classifier and
regressor predicts, for every RoI, one ``m x m`` binary mask *per class* (Sec. 3):

* **RoIAlign** (Sec. 3, "RoIAlign"): the RoI's features are sampled bilinearly at exact,
  unrounded positions, 14x14 from the FPN level of eq. (1) of FPN, 2 samples per bin side.
  RoI max pooling's rounding of the box and bins to the feature grid is harmless for boxes but
  misaligns pixels; ``mask_roi="pool"`` swaps in RoI max pooling for the mask branch (the
  paper's Table 2c / 6 comparison) -- the box branch keeps RoIAlign.
* **Mask head** (Fig. 4, right, the FPN head): 4 x (3x3 conv, 256, ReLU), a 2x2 stride-2
  transposed convolution (256, ReLU) to 28x28, and a 1x1 convolution giving ``num_classes``
  mask logits.
* **Mask loss** (Sec. 3, "the masked loss"): per-pixel sigmoid binary cross-entropy, averaged,
  on **the ground-truth class's channel only** -- the other classes' masks do not compete, which
  decouples mask and class prediction (Table 2b: softmax over classes loses 5.5 AP). Trained on
  the positive RoIs only (IoU >= 0.5 with a ground-truth box); the target is the ground-truth
  mask cropped to the RoI and resampled to 28x28 (RoIAlign of the binary mask).
* **Inference** (Sec. 3.1): the mask branch runs on the final (post-NMS) detections; the channel
  of the predicted class is taken, passed through a sigmoid, and the 28x28 probabilities are
  resized to the box (bilinear) and pasted into the image. :attr:`Detections.masks` holds these
  ``Tensor[N, 1, H, W]`` probabilities over the input image; :meth:`Detections.to_coco_results`
  (``mask_threshold=0.5``) thresholds them and encodes RLE for ``coco_evaluate(iou_type="segm")``
  -- :func:`binary_masks` gives the thresholded masks themselves.

**Keypoints** (Sec. 5, "Mask R-CNN for Human Pose Estimation"): the flexible design -- one more
head on the same RoIs. Each of ``K`` keypoints is a one-hot ``m x m`` mask: 8 x (3x3 conv, 512,
ReLU), a 4x4 stride-2 transposed convolution and 2x bilinear upsampling to 56x56; the loss is a
softmax cross-entropy over the ``m^2`` positions per visible keypoint; at inference each
heatmap is resized to the box (bicubic) and its arg-max is the keypoint.

``maskrcnn_resnet50_fpn`` and ``keypointrcnn_resnet50_fpn`` are torchvision's models (same
structure, defaults, builder keywords -- Faster R-CNN's, plus ``num_keypoints`` -- and state-dict
layout; ``convert_torchvision_state_dict`` maps their weights); the tests check equal boxes,
masks, keypoints and training losses.

Departures from the paper, all torchvision's (the reference the tests compare against):
    * Masks are pasted with one pixel of zero padding around the 28x28 grid and the box
      enlarged to match, box corners truncated to integers (``TO_REMOVE = 1``); keypoints are
      read at the arg-max cell's centre without the paper's sub-pixel refinement.
    * Keypoint R-CNN trains with multi-scale images (shorter side 640..800, Sec. 5 of the
      paper says [640, 800] too) and uses no mask branch (the paper's Table 4 also trains both).
    * The CPU-sized variants (ResNet-18 FPN, 128 channels in the pyramid and the mask head) are
      ours, sized for the composited scenes of :mod:`modernvision.data`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.detection._roi_heads import RoIHeads, fast_rcnn_loss
from modernvision.models.detection._structures import Detections
from modernvision.models.detection.faster_rcnn import (
    MOBILENET_V2_050_FPN,
    RESNET18_FPN,
    RESNET50_FPN,
    FasterRCNN,
    FasterRCNNConfig,
    convert_torchvision_faster_rcnn,
    faster_rcnn,
)
from modernvision.models.necks.fpn import MultiScaleRoIAlign, MultiScaleRoIPool
from modernvision.models.registry import StateDict, register_model
from modernvision.ops import roi_align

__all__ = [
    "KeypointRCNNHeads",
    "KeypointRCNNPredictor",
    "MaskRCNN",
    "MaskRCNNConfig",
    "MaskRCNNHeads",
    "MaskRCNNPredictor",
    "MaskRoIHeads",
    "binary_masks",
    "heatmaps_to_keypoints",
    "keypoint_loss",
    "keypoint_targets",
    "keypointrcnn_resnet18_fpn",
    "keypointrcnn_resnet50_fpn",
    "mask_loss",
    "mask_rcnn",
    "mask_targets",
    "maskrcnn_resnet18_fpn",
    "maskrcnn_resnet50_fpn",
    "paste_masks",
]

MaskRoI = Literal["align", "pool"]


@dataclass(frozen=True)
class MaskRCNNConfig:
    """The architecture of a Mask R-CNN (or Keypoint R-CNN) variant.

    Attributes:
        detector: the Faster R-CNN it extends.
        masks: whether it has the mask branch.
        mask_roi: ``"align"`` (RoIAlign, the paper) or ``"pool"`` (RoI max pooling, the
            baseline of Table 2c) for the mask branch.
        mask_output_size: RoI features of the mask branch are pooled to this grid (14).
        mask_sampling_ratio: RoIAlign samples per bin side (2).
        mask_layers: widths of the 3x3 convolutions of the mask head (4 x 256).
        mask_dim_reduced: width of the transposed convolution (256).
        num_keypoints: keypoints per object; 0 means no keypoint branch.
        keypoint_output_size: RoI grid of the keypoint branch (14).
        keypoint_layers: widths of the keypoint head's 3x3 convolutions (8 x 512).
    """

    detector: FasterRCNNConfig
    masks: bool = True
    mask_roi: MaskRoI = "align"
    mask_output_size: int = 14
    mask_sampling_ratio: int = 2
    mask_layers: tuple[int, ...] = (256, 256, 256, 256)
    mask_dim_reduced: int = 256
    num_keypoints: int = 0
    keypoint_output_size: int = 14
    keypoint_layers: tuple[int, ...] = (512,) * 8

    def __post_init__(self) -> None:
        if self.mask_roi not in ("align", "pool"):
            raise InvalidArgumentError(
                f"mask_roi must be 'align' (RoIAlign) or 'pool' (RoI max pooling), got "
                f"{self.mask_roi!r}")
        if not isinstance(self.num_keypoints, int) or self.num_keypoints < 0:
            raise InvalidArgumentError(
                f"num_keypoints must be an int >= 0, got {self.num_keypoints!r}")
        if not self.masks and not self.num_keypoints:
            raise InvalidArgumentError("a Mask R-CNN needs masks=True or num_keypoints > 0")
        for name in ("mask_layers", "keypoint_layers"):
            layers = getattr(self, name)
            if not layers or any(not isinstance(c, int) or c < 1 for c in layers):
                raise InvalidArgumentError(
                    f"{name} must be a non-empty tuple of positive widths, got {layers!r}")
        for name in ("mask_output_size", "keypoint_output_size", "mask_dim_reduced"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")


# -- heads ---------------------------------------------------------------------------------


def _kaiming(module: nn.Module) -> None:
    # He et al. 2015 initialisation (fan_out, ReLU) and zero biases, as torchvision's heads.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MaskRCNNHeads(nn.Sequential):
    """The mask head's convolutions: per width, a 3x3 convolution (padding 1) and a ReLU.

    Args:
        in_channels: channels of the pooled RoI features.
        layers: the convolutions' widths (the paper: ``(256, 256, 256, 256)``).
    """

    def __init__(self, in_channels: int, layers: Sequence[int]) -> None:
        blocks = []
        for width in layers:
            blocks.append(nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1),
                                        nn.ReLU(inplace=True)))
            in_channels = width
        super().__init__(*blocks)
        self.out_channels = in_channels
        _kaiming(self)


class MaskRCNNPredictor(nn.Module):
    """2x2/2 transposed convolution + ReLU (14 -> 28), then a 1x1 convolution: one mask logit
    map per class.

    Args:
        in_channels: channels of the mask head's output.
        dim_reduced: width of the transposed convolution.
        num_classes: classes including the background.
    """

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        super().__init__()
        self.conv5_mask = nn.ConvTranspose2d(in_channels, dim_reduced, 2, stride=2)
        self.mask_fcn_logits = nn.Conv2d(dim_reduced, num_classes, 1)
        _kaiming(self)

    def forward(self, x: Tensor) -> Tensor:
        """``(K, C, m, m)`` -> ``(K, num_classes, 2m, 2m)`` logits."""
        return self.mask_fcn_logits(F.relu(self.conv5_mask(x)))


class KeypointRCNNHeads(nn.Sequential):
    """The keypoint head: per width, a 3x3 convolution (padding 1) and a ReLU (Sec. 5: 8 x 512).

    Args:
        in_channels: channels of the pooled RoI features.
        layers: the convolutions' widths.
    """

    def __init__(self, in_channels: int, layers: Sequence[int]) -> None:
        modules: list[nn.Module] = []
        for width in layers:
            modules += [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            in_channels = width
        super().__init__(*modules)
        self.out_channels = in_channels
        _kaiming(self)


class KeypointRCNNPredictor(nn.Module):
    """4x4/2 transposed convolution to one heatmap per keypoint, then 2x bilinear upsampling
    (14 -> 28 -> 56, Sec. 5: "a relatively high resolution output").

    Args:
        in_channels: channels of the keypoint head's output.
        num_keypoints: keypoints per object.
    """

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.kps_score_lowres = nn.ConvTranspose2d(in_channels, num_keypoints, 4, stride=2,
                                                   padding=1)
        self.up_scale = 2
        _kaiming(self)

    def forward(self, x: Tensor) -> Tensor:
        """``(K, C, m, m)`` -> ``(K, num_keypoints, 4m, 4m)`` heatmap logits."""
        x = self.kps_score_lowres(x)
        return F.interpolate(x, scale_factor=float(self.up_scale), mode="bilinear",
                             align_corners=False, recompute_scale_factor=False)


# -- the mask branch's targets, loss and inference ---------------------------------------------


def mask_targets(gt_masks: Tensor, rois: Tensor, matched_idxs: Tensor, size: int) -> Tensor:
    """Each RoI's ground-truth mask cropped to the RoI and resampled to ``size x size``.

    Args:
        gt_masks: ``Tensor[G, H, W]`` binary masks of one image (in the network's pixels).
        rois: ``Tensor[K, 4]`` ``(x1, y1, x2, y2)`` positive RoIs.
        matched_idxs: ``Tensor[K]`` the ground-truth index of each RoI.
        size: the mask head's output side (28).

    Returns:
        ``Tensor[K, size, size]`` soft targets in [0, 1] (RoIAlign of the binary mask,
        adaptive sampling, as torchvision).
    """
    boxes = torch.cat([matched_idxs.to(rois)[:, None], rois], dim=1)
    return roi_align(gt_masks[:, None].to(rois), boxes, (size, size), 1.0)[:, 0]


def mask_loss(mask_logits: Tensor, labels: Tensor, targets: Tensor) -> Tensor:
    """The masked loss: mean per-pixel binary cross-entropy on each RoI's ground-truth class.

    Args:
        mask_logits: ``Tensor[K, num_classes, M, M]``.
        labels: ``Tensor[K]`` int64, the ground-truth class of each RoI (``>= 1``).
        targets: ``Tensor[K, M, M]`` in [0, 1].

    Returns:
        A scalar; 0 (still connected to the graph) when there is no positive RoI.
    """
    if targets.numel() == 0:
        return mask_logits.sum() * 0
    chosen = mask_logits[torch.arange(labels.shape[0], device=labels.device), labels]
    return F.binary_cross_entropy_with_logits(chosen, targets)


def binary_masks(detections: Detections, threshold: float = 0.5) -> Tensor:
    """``Tensor[N, H, W]`` bool: the detections' mask probabilities at or above ``threshold``
    (what :meth:`Detections.to_coco_results` RLE-encodes for ``iou_type="segm"``)."""
    if detections.masks is None:
        raise InvalidArgumentError("these detections have no masks (a Mask R-CNN gives them)")
    return detections.masks[:, 0] >= threshold


def paste_masks(masks: Tensor, boxes: Tensor, image_size: tuple[int, int], *,
                padding: int = 1) -> Tensor:
    """Resize each ``M x M`` mask to its box and place it in an empty image.

    The grid is zero-padded by ``padding`` cells on every side and the box enlarged by the same
    factor ``(M + 2 padding) / M`` about its centre, so probabilities fall off to 0 at the box
    edge; box corners are truncated to integers and the mask is resized bilinearly to
    ``(x2 - x1 + 1) x (y2 - y1 + 1)`` pixels (torchvision's rule).

    Args:
        masks: ``Tensor[N, 1, M, M]`` probabilities.
        boxes: ``Tensor[N, 4]`` ``(x1, y1, x2, y2)`` in the image's pixels.
        image_size: ``(height, width)``.

    Returns:
        ``Tensor[N, 1, height, width]``.
    """
    height, width = image_size
    if masks.shape[0] == 0:
        return masks.new_zeros((0, 1, height, width))
    m = masks.shape[-1]
    scale = (m + 2 * padding) / m
    padded = F.pad(masks, (padding,) * 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * scale
    corners = torch.cat([centre - half, centre + half], dim=1).to(torch.int64).tolist()
    out = masks.new_zeros((masks.shape[0], 1, height, width))
    for i, (x1, y1, x2, y2) in enumerate(corners):
        w, h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        resized = F.interpolate(padded[i:i + 1], size=(h, w), mode="bilinear",
                                align_corners=False)[0, 0]
        # The part of the resized box inside the image.
        xa, xb, ya, yb = max(x1, 0), min(x2 + 1, width), max(y1, 0), min(y2 + 1, height)
        if xa < xb and ya < yb:
            out[i, 0, ya:yb, xa:xb] = resized[ya - y1:yb - y1, xa - x1:xb - x1]
    return out


# -- the keypoint branch -------------------------------------------------------------------------


def keypoint_targets(keypoints: Tensor, rois: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Each keypoint's cell in its RoI's ``size x size`` heatmap, and whether it counts.

    Args:
        keypoints: ``Tensor[K, J, 3]`` ``(x, y, visibility)`` of each RoI's matched object.
        rois: ``Tensor[K, 4]``.
        size: the heatmap side (56).

    Returns:
        ``(index, valid)``: ``Tensor[K, J]`` int64 flat cell ``y * size + x`` (0 where invalid)
        and ``Tensor[K, J]`` bool, visible and inside the RoI (a point on the right or bottom
        edge goes to the last cell).
    """
    x1, y1, x2, y2 = (v[:, None] for v in rois.unbind(1))
    x, y = keypoints[..., 0], keypoints[..., 1]
    on_right, on_bottom = x == x2, y == y2
    cx = ((x - x1) * (size / (x2 - x1))).floor().long()
    cy = ((y - y1) * (size / (y2 - y1))).floor().long()
    cx[on_right] = size - 1
    cy[on_bottom] = size - 1
    valid = (cx >= 0) & (cy >= 0) & (cx < size) & (cy < size) & (keypoints[..., 2] > 0)
    return (cy * size + cx) * valid, valid


def keypoint_loss(keypoint_logits: Tensor, index: Tensor, valid: Tensor) -> Tensor:
    """Softmax cross-entropy over the heatmap cells, mean over the valid keypoints (Sec. 5).

    Args:
        keypoint_logits: ``Tensor[K, J, S, S]``.
        index: ``Tensor[K, J]`` the target cell (:func:`keypoint_targets`).
        valid: ``Tensor[K, J]`` bool.
    """
    k, j, h, w = keypoint_logits.shape
    keep = torch.where(valid.reshape(-1))[0]
    if keep.numel() == 0:
        return keypoint_logits.sum() * 0
    flat = keypoint_logits.reshape(k * j, h * w)  # one row per (RoI, keypoint)
    return F.cross_entropy(flat[keep], index.reshape(-1)[keep])


def heatmaps_to_keypoints(maps: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
    """Keypoints from heatmaps: each map resized to its box (bicubic, ``ceil`` of the box's
    sides, at least 1), the arg-max cell's centre mapped back to image pixels.

    Args:
        maps: ``Tensor[K, J, S, S]`` heatmap logits.
        rois: ``Tensor[K, 4]`` the detections' boxes.

    Returns:
        ``Tensor[K, J, 3]`` ``(x, y, 1)`` and ``Tensor[K, J]`` the logit at each keypoint.
    """
    k, j = maps.shape[:2]
    points = maps.new_zeros((k, j, 3), dtype=torch.float32)
    scores = maps.new_zeros((k, j), dtype=torch.float32)
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    for i in range(k):
        w, h = int(widths[i].ceil()), int(heights[i].ceil())
        resized = F.interpolate(maps[i][:, None], size=(h, w), mode="bicubic",
                                align_corners=False)[:, 0]  # (J, h, w)
        best = resized.reshape(j, -1).argmax(dim=1)
        cx, cy = best % w, torch.div(best, w, rounding_mode="floor")
        points[i, :, 0] = (cx.float() + 0.5) * (widths[i] / w) + rois[i, 0]
        points[i, :, 1] = (cy.float() + 0.5) * (heights[i] / h) + rois[i, 1]
        points[i, :, 2] = 1
        scores[i] = resized[torch.arange(j), cy, cx]
    return points, scores


# -- the RoI heads with the extra branches ------------------------------------------------------


class MaskRoIHeads(RoIHeads):
    """Faster R-CNN's RoI heads plus a mask branch and/or a keypoint branch.

    Args:
        box_roi_pool, box_head, box_predictor: the box branch (:class:`RoIHeads`).
        mask_roi_pool: pools ``(K, C, 14, 14)`` for the mask branch, or ``None``.
        mask_head: :class:`MaskRCNNHeads`, or ``None``.
        mask_predictor: :class:`MaskRCNNPredictor`, or ``None``.
        keypoint_roi_pool: pools for the keypoint branch, or ``None``.
        keypoint_head: :class:`KeypointRCNNHeads`, or ``None``.
        keypoint_predictor: :class:`KeypointRCNNPredictor`, or ``None``.
        **box_settings: :class:`RoIHeads`'s sampling and post-processing settings.
    """

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_head: nn.Module,
        box_predictor: nn.Module,
        *,
        mask_roi_pool: nn.Module | None = None,
        mask_head: nn.Module | None = None,
        mask_predictor: nn.Module | None = None,
        keypoint_roi_pool: nn.Module | None = None,
        keypoint_head: nn.Module | None = None,
        keypoint_predictor: nn.Module | None = None,
        **box_settings: Any,
    ) -> None:
        super().__init__(box_roi_pool, box_head, box_predictor, **box_settings)
        mask_parts = (mask_roi_pool, mask_head, mask_predictor)
        keypoint_parts = (keypoint_roi_pool, keypoint_head, keypoint_predictor)
        for name, parts in (("mask", mask_parts), ("keypoint", keypoint_parts)):
            if any(p is None for p in parts) and any(p is not None for p in parts):
                raise InvalidArgumentError(
                    f"the {name} branch needs all of {name}_roi_pool, {name}_head and "
                    f"{name}_predictor, or none of them")
        self.mask_roi_pool, self.mask_head, self.mask_predictor = mask_parts
        self.keypoint_roi_pool, self.keypoint_head, self.keypoint_predictor = keypoint_parts

    @property
    def has_mask(self) -> bool:
        return self.mask_predictor is not None

    @property
    def has_keypoint(self) -> bool:
        return self.keypoint_predictor is not None

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_sizes: Sequence[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[Detections], dict[str, Tensor]]:
        """Detections with masks/keypoints (eval; masks still ``M x M`` per box) or the losses
        (``targets`` given): Faster R-CNN's plus ``loss_mask`` and/or ``loss_keypoint``."""
        if targets is None:
            detections, _ = super().forward(features, proposals, image_sizes)
            boxes = [d.boxes for d in detections]
            if self.has_mask:
                logits = self.mask_forward(features, boxes, image_sizes)
                labels = torch.cat([d.labels for d in detections])
                probs = logits[torch.arange(labels.shape[0]), labels][:, None].sigmoid()
                for det, p in zip(detections, probs.split([len(d) for d in detections])):
                    det.masks = p
            if self.has_keypoint:
                heatmaps = self.keypoint_forward(features, boxes, image_sizes)
                for det, maps in zip(detections, heatmaps.split([len(d) for d in detections])):
                    det.keypoints, det.keypoint_scores = heatmaps_to_keypoints(maps, det.boxes)
            return detections, {}
        sampled = self.select_training_samples(proposals, targets)
        logits, regression = self.box_forward(features, sampled.proposals, image_sizes)
        losses = fast_rcnn_loss(logits, regression, sampled.labels, sampled.regression_targets)
        # The extra branches train on the positive RoIs only.
        positive = [torch.where(labels > 0)[0] for labels in sampled.labels]
        rois = [p[i] for p, i in zip(sampled.proposals, positive)]
        matched = [m[i] for m, i in zip(sampled.matched_idxs, positive)]
        if self.has_mask:
            mask_logits = self.mask_forward(features, rois, image_sizes)
            size = mask_logits.shape[-1]
            gt = torch.cat([mask_targets(t["masks"], r, m, size)
                            for t, r, m in zip(targets, rois, matched)])
            labels = torch.cat([t["labels"][m] for t, m in zip(targets, matched)])
            losses["loss_mask"] = mask_loss(mask_logits, labels, gt)
        if self.has_keypoint:
            heatmaps = self.keypoint_forward(features, rois, image_sizes)
            size = heatmaps.shape[-1]
            pairs = [keypoint_targets(t["keypoints"][m], r, size)
                     for t, r, m in zip(targets, rois, matched)]
            index = torch.cat([p[0] for p in pairs])
            valid = torch.cat([p[1] for p in pairs])
            losses["loss_keypoint"] = keypoint_loss(heatmaps, index, valid)
        return [], losses

    def mask_forward(self, features: dict[str, Tensor], rois: list[Tensor],
                     image_sizes: Sequence[tuple[int, int]]) -> Tensor:
        """``(K, num_classes, 28, 28)`` mask logits of the RoIs."""
        return self.mask_predictor(self.mask_head(self.mask_roi_pool(features, rois,
                                                                     image_sizes)))

    def keypoint_forward(self, features: dict[str, Tensor], rois: list[Tensor],
                         image_sizes: Sequence[tuple[int, int]]) -> Tensor:
        """``(K, num_keypoints, 56, 56)`` heatmap logits of the RoIs."""
        pooled = self.keypoint_roi_pool(features, rois, image_sizes)
        return self.keypoint_predictor(self.keypoint_head(pooled))


class MaskRCNN(FasterRCNN):
    """Mask R-CNN (or Keypoint R-CNN): :class:`FasterRCNN` whose RoI heads are
    :class:`MaskRoIHeads`; training targets need ``masks`` ``[N, H, W]`` (and ``keypoints``
    ``[N, K, 3]``) beside boxes and labels; results carry pasted masks (and keypoints)."""

    roi_heads: MaskRoIHeads

    def check_targets(self, targets: Any, image_sizes: Sequence[tuple[int, int]],
                      reference: Tensor) -> list[dict[str, Any]]:
        out = super().check_targets(targets, image_sizes, reference)
        needed = (["masks"] if self.roi_heads.has_mask else []) + (
            ["keypoints"] if self.roi_heads.has_keypoint else [])
        for i, target in enumerate(out):
            for key in needed:
                if key not in target:
                    what = ("Tensor[N, H, W] of binary instance masks" if key == "masks"
                            else "Tensor[N, K, 3] of (x, y, visibility)")
                    raise InvalidArgumentError(
                        f"targets[{i}] has no {key!r}; {type(self).__name__} trains on a {what}")
        return out

    def postprocess(self, detections: list[Detections], image_sizes: Sequence[tuple[int, int]],
                    original_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """Boxes and keypoints back to the input images, masks pasted into them."""
        detections = super().postprocess(detections, image_sizes, original_sizes)
        sizes = original_sizes if self.transform is not None else image_sizes
        for det, size in zip(detections, sizes):
            if det.masks is not None:
                det.masks = paste_masks(det.masks, det.boxes, size)
        return detections


# -- the builder ---------------------------------------------------------------------------------

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(MaskRCNNConfig)} - {"detector"}
_DETECTOR_KEYWORDS = ({p for p in inspect.signature(faster_rcnn).parameters
                       if p not in ("config", "overrides")}
                      | {f.name for f in dataclasses.fields(FasterRCNNConfig)})


def mask_rcnn(config: MaskRCNNConfig, *, num_classes: int = 91, **kwargs: Any) -> MaskRCNN:
    """Build a Mask R-CNN (or Keypoint R-CNN) with torchvision's builder keywords.

    Args:
        config: the architecture.
        num_classes: classes including the background.
        **kwargs: Faster R-CNN's builder keywords and config fields
            (:func:`~modernvision.models.detection.faster_rcnn.faster_rcnn`), and the fields of
            :class:`MaskRCNNConfig` (``mask_roi="pool"``, ``num_keypoints=17``, ...).

    Raises:
        TypeError: a keyword that is none of those.
    """
    unknown = sorted(set(kwargs) - _CONFIG_FIELDS - _DETECTOR_KEYWORDS)
    if unknown:
        raise TypeError(
            f"Mask R-CNN got unexpected keyword argument(s) {unknown}; it accepts Faster "
            f"R-CNN's keywords and config fields and {', '.join(sorted(_CONFIG_FIELDS))}")
    config = dataclasses.replace(config, **{k: kwargs.pop(k) for k in list(kwargs)
                                            if k in _CONFIG_FIELDS})
    detector = faster_rcnn(config.detector, num_classes=num_classes, **kwargs)
    box = detector.roi_heads
    levels = box.box_roi_pool.featmap_names
    channels = detector.backbone.out_channels[levels[0]]
    parts: dict[str, nn.Module] = {}
    if config.masks:
        pool_cls = MultiScaleRoIAlign if config.mask_roi == "align" else MultiScaleRoIPool
        head = MaskRCNNHeads(channels, config.mask_layers)
        parts |= dict(
            mask_roi_pool=pool_cls(levels, config.mask_output_size, config.mask_sampling_ratio),
            mask_head=head,
            mask_predictor=MaskRCNNPredictor(head.out_channels, config.mask_dim_reduced,
                                             num_classes))
    if config.num_keypoints:
        head = KeypointRCNNHeads(channels, config.keypoint_layers)
        parts |= dict(
            keypoint_roi_pool=MultiScaleRoIAlign(levels, config.keypoint_output_size, 2),
            keypoint_head=head,
            keypoint_predictor=KeypointRCNNPredictor(head.out_channels, config.num_keypoints))
    roi_heads = MaskRoIHeads(
        box.box_roi_pool, box.box_head, box.box_predictor, **parts,
        fg_iou_thresh=box.matcher.high_threshold, bg_iou_thresh=box.matcher.low_threshold,
        batch_size_per_image=box.sampler.batch_size_per_image,
        positive_fraction=box.sampler.positive_fraction, bbox_reg_weights=box.box_coder.weights,
        score_thresh=box.score_thresh, nms_thresh=box.nms_thresh,
        detections_per_img=box.detections_per_img)
    return MaskRCNN(detector.backbone, detector.rpn, roi_heads, transform=detector.transform,
                    num_classes=num_classes, config=detector.config)


def convert_torchvision_mask_rcnn(state_dict: StateDict) -> StateDict:
    """torchvision's ``MaskRCNN`` / ``KeypointRCNN`` state dict -> ours: Faster R-CNN's
    renaming; the mask and keypoint heads' names are the same."""
    return convert_torchvision_faster_rcnn(state_dict)


# Configurations: the papers' (ResNet-50) and CPU-sized ones for the 256x256 scenes.
MASK_RESNET50_FPN = MaskRCNNConfig(RESNET50_FPN)
KEYPOINT_RESNET50_FPN = MaskRCNNConfig(
    dataclasses.replace(RESNET50_FPN, min_size=(640, 672, 704, 736, 768, 800)), masks=False,
    num_keypoints=17)
MASK_RESNET18_FPN = MaskRCNNConfig(RESNET18_FPN, mask_layers=(128,) * 4, mask_dim_reduced=128)
#: The scenes detector's architecture (``fasterrcnn_mobilenet_v2_050_fpn``, 64 FPN channels) with
#: a 4 x 64 mask head: it starts from that detector's weights with ``train --init RUN``.
MASK_MOBILENET_V2_050_FPN = MaskRCNNConfig(MOBILENET_V2_050_FPN, mask_layers=(64,) * 4,
                                           mask_dim_reduced=64)
KEYPOINT_RESNET18_FPN = MaskRCNNConfig(RESNET18_FPN, masks=False, num_keypoints=4,
                                       keypoint_layers=(128,) * 4)


@register_model(task="instance", torchvision="maskrcnn_resnet50_fpn",
                converter=convert_torchvision_mask_rcnn)
def maskrcnn_resnet50_fpn(*, num_classes: int = 91, **kwargs) -> MaskRCNN:
    """torchvision's Mask R-CNN ResNet-50 FPN (44.4 M parameters with 91 classes)."""
    return mask_rcnn(MASK_RESNET50_FPN, num_classes=num_classes, **kwargs)


@register_model(task="instance")
def maskrcnn_resnet18_fpn(*, num_classes: int = 91, **kwargs) -> MaskRCNN:
    """CPU-sized Mask R-CNN: ResNet-18 FPN (128 channels), 4 x 128 mask head, 256-px images."""
    return mask_rcnn(MASK_RESNET18_FPN, num_classes=num_classes, **kwargs)


@register_model(task="instance")
def maskrcnn_mobilenet_v2_050_fpn(*, num_classes: int = 91, **kwargs) -> MaskRCNN:
    """CPU-sized Mask R-CNN on ``fasterrcnn_mobilenet_v2_050_fpn``'s detector (MobileNetV2 x 0.5,
    64-channel FPN on C3-C5) with a 4 x 64 mask head; same parameter names as that detector,
    so a trained detector run initialises all but the mask branch (``train --init RUN``)."""
    return mask_rcnn(MASK_MOBILENET_V2_050_FPN, num_classes=num_classes, **kwargs)


@register_model(task="keypoint", torchvision="keypointrcnn_resnet50_fpn",
                converter=convert_torchvision_mask_rcnn)
def keypointrcnn_resnet50_fpn(*, num_classes: int = 2, num_keypoints: int = 17,
                              **kwargs) -> MaskRCNN:
    """torchvision's Keypoint R-CNN ResNet-50 FPN (59.1 M parameters, person + 17 keypoints)."""
    return mask_rcnn(KEYPOINT_RESNET50_FPN, num_classes=num_classes,
                     num_keypoints=num_keypoints, **kwargs)


@register_model(task="keypoint")
def keypointrcnn_resnet18_fpn(*, num_classes: int = 91, num_keypoints: int = 4,
                              **kwargs) -> MaskRCNN:
    """CPU-sized Keypoint R-CNN: ResNet-18 FPN, 4 x 128 keypoint head, 4 keypoints."""
    return mask_rcnn(KEYPOINT_RESNET18_FPN, num_classes=num_classes,
                     num_keypoints=num_keypoints, **kwargs)
