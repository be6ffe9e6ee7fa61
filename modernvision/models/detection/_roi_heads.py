"""The second stage of Fast/Faster R-CNN: RoI features, class scores and box corrections.

Papers: Girshick, "Fast R-CNN", 2015, arXiv:1504.08083 (Sec. 2-3); Ren et al., "Faster R-CNN",
2015, arXiv:1506.01497; Lin et al., "Feature Pyramid Networks", 2017, arXiv:1612.03144 (Sec.
4.2: RoIs pooled from the level of eq. (1), a 2-layer MLP head "2fc", 1024-d).

Each proposal's features are pooled to 7x7 (RoIAlign here, He et al. 2017, instead of the
paper's RoI max pooling), flattened, passed through FC6 and FC7 (ReLU after each), and two
sibling layers give ``K + 1`` class scores (softmax) and ``4 K`` class-specific box corrections
(Sec. 2.2). Training (Sec. 2.3): per image 512 RoIs, up to 25% foreground (IoU >= 0.5 with a
ground-truth box; the ground-truth boxes themselves are added to the proposals), the rest
background (IoU < 0.5); cross-entropy on the class plus smooth L1 on the true class's
corrections of the foreground RoIs. Inference: per class, decode, clip, drop scores <= 0.05,
NMS at 0.5 per class, keep the best 100 per image.

Departures from the paper, all torchvision's (the reference the tests compare against):
    * Background is IoU < 0.5 (the paper: [0.1, 0.5)).
    * Regression targets are scaled by ``(10, 10, 5, 5)``, smooth L1 has ``beta = 1/9``, summed
      over foreground RoIs and divided by the number of sampled RoIs.
    * Boxes smaller than 0.01 pixels are dropped before NMS.
    * The sampled RoIs of an image are taken in index order (positives and negatives mixed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision.losses import smooth_l1_loss
from modernvision.models.detection._structures import Detections
from modernvision.ops import (
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    batched_nms,
    box_iou,
    clip_boxes_to_image,
    remove_small_boxes,
)

__all__ = ["FastRCNNPredictor", "RoIHeads", "SampledRoIs", "TwoMLPHead", "fast_rcnn_loss"]


class TwoMLPHead(nn.Module):
    """FC6 and FC7 with ReLU over flattened RoI features (FPN's "2fc" head).

    Args:
        in_channels: ``C * PH * PW`` of the pooled features.
        representation_size: width of both layers (1024).
    """

    def __init__(self, in_channels: int, representation_size: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_channels, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)
        self.out_channels = representation_size

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(start_dim=1)  # (K, C, PH, PW) -> (K, C*PH*PW)
        return F.relu(self.fc7(F.relu(self.fc6(x))))


class FastRCNNPredictor(nn.Module):
    """The sibling outputs: ``num_classes`` scores and ``4 * num_classes`` box corrections.

    Args:
        in_channels: width of the RoI representation.
        num_classes: classes including the background.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)

    def class_scores(self, class_logits: Tensor) -> Tensor:
        """Per-class probabilities ``(K, num_classes)`` of the logits: a softmax."""
        return F.softmax(class_logits, -1)


def fast_rcnn_loss(
    class_logits: Tensor, box_regression: Tensor, labels: Sequence[Tensor],
    regression_targets: Sequence[Tensor],
) -> dict[str, Tensor]:
    """Fast R-CNN's multi-task loss (eq. 1): cross-entropy + smooth L1 on the true class.

    Args:
        class_logits: ``(K, num_classes)``.
        box_regression: ``(K, 4 * num_classes)``.
        labels: per image, ``Tensor[K_i]`` int64 (0 background).
        regression_targets: per image, ``Tensor[K_i, 4]``.
    """
    labels = torch.cat(labels)
    regression_targets = torch.cat(regression_targets)
    classification = F.cross_entropy(class_logits, labels)
    foreground = torch.where(labels > 0)[0]
    deltas = box_regression.reshape(box_regression.shape[0], -1, 4)  # (K, 4C) -> (K, C, 4)
    box_loss = smooth_l1_loss(deltas[foreground, labels[foreground]],
                              regression_targets[foreground], beta=1 / 9, reduction="sum")
    return {"loss_classifier": classification, "loss_box_reg": box_loss / labels.numel()}


@dataclass
class SampledRoIs:
    """The RoIs sampled to train the second stage, per image.

    Attributes:
        proposals: ``Tensor[K_i, 4]`` sampled RoIs (proposals plus ground-truth boxes).
        matched_idxs: ``Tensor[K_i]`` int64 index of the matched ground truth (0 for
            background; the mask head of Mask R-CNN reads the matched masks from it).
        labels: ``Tensor[K_i]`` int64 class, 0 for background.
        regression_targets: ``Tensor[K_i, 4]`` encoded corrections towards the matched box.
    """

    proposals: list[Tensor]
    matched_idxs: list[Tensor]
    labels: list[Tensor]
    regression_targets: list[Tensor]


class RoIHeads(nn.Module):
    """RoI pooling, the box head and predictor, sampling, losses and post-processing.

    Args:
        box_roi_pool: pools ``(K, C, 7, 7)`` features for the RoIs
            (:class:`~modernvision.models.necks.fpn.MultiScaleRoIAlign`).
        box_head: pooled features -> representation (:class:`TwoMLPHead`).
        box_predictor: representation -> class logits and box corrections, with a
            ``class_scores(logits)`` method giving the detection scores
            (:class:`FastRCNNPredictor`: a softmax).
        fg_iou_thresh: IoU at or above which an RoI is foreground (0.5).
        bg_iou_thresh: IoU below which an RoI is background (0.5).
        bg_iou_low: RoIs whose best IoU is below this are not sampled at all (0: torchvision;
            Fast R-CNN's Sec. 2.3 uses 0.1, background in ``[0.1, 0.5)``, a heuristic for hard
            example mining).
        batch_size_per_image: RoIs sampled per image (512).
        positive_fraction: at most this fraction of them foreground (0.25).
        bbox_reg_weights: weights of the box coder (``(10, 10, 5, 5)``).
        score_thresh: detections need a class probability above this (0.05).
        nms_thresh: per-class NMS IoU threshold (0.5).
        detections_per_img: the most detections kept per image (100).
    """

    min_box_size = 1e-2

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_head: nn.Module,
        box_predictor: nn.Module,
        *,
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.5,
        bg_iou_low: float = 0.0,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        bbox_reg_weights: tuple[float, float, float, float] | None = (10.0, 10.0, 5.0, 5.0),
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
    ) -> None:
        super().__init__()
        self.box_roi_pool = box_roi_pool
        self.box_head = box_head
        self.box_predictor = box_predictor
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=False)
        if not 0.0 <= bg_iou_low <= bg_iou_thresh:
            raise ValueError(f"bg_iou_low must be in [0, bg_iou_thresh={bg_iou_thresh}], got "
                             f"{bg_iou_low}")
        self.bg_iou_low = bg_iou_low
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder(bbox_reg_weights or (10.0, 10.0, 5.0, 5.0))
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img

    def extra_repr(self) -> str:
        return (f"matcher={self.matcher}, bg_iou_low={self.bg_iou_low}, "
                f"sampler={self.sampler}, box_coder={self.box_coder}, "
                f"score_thresh={self.score_thresh}, nms_thresh={self.nms_thresh}, "
                f"detections_per_img={self.detections_per_img}")

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_sizes: Sequence[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[Detections], dict[str, Tensor]]:
        """Detections (eval; in the batch's pixels) or the losses ``loss_classifier`` and
        ``loss_box_reg`` (``targets`` given)."""
        if targets is not None:
            sampled = self.select_training_samples(proposals, targets)
            logits, regression = self.box_forward(features, sampled.proposals, image_sizes)
            return [], fast_rcnn_loss(logits, regression, sampled.labels,
                                      sampled.regression_targets)
        logits, regression = self.box_forward(features, proposals, image_sizes)
        return self.postprocess_detections(logits, regression, proposals, image_sizes), {}

    def box_forward(
        self, features: dict[str, Tensor], rois: list[Tensor],
        image_sizes: Sequence[tuple[int, int]],
    ) -> tuple[Tensor, Tensor]:
        """Class logits ``(K, num_classes)`` and corrections ``(K, 4 num_classes)``."""
        pooled = self.box_roi_pool(features, rois, image_sizes)
        return self.box_predictor(self.box_head(pooled))

    def select_training_samples(
        self, proposals: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> SampledRoIs:
        """Add the ground truth to the proposals, match, sample, and encode the targets."""
        out = SampledRoIs([], [], [], [])
        for props, target in zip(proposals, targets):
            gt_boxes = target["boxes"].to(props.dtype)
            gt_labels = target["labels"]
            props = torch.cat([props, gt_boxes])
            if gt_boxes.numel() == 0:  # an image without objects: all background
                matched = torch.zeros(props.shape[0], dtype=torch.int64, device=props.device)
                labels = torch.zeros_like(matched)
                gt_boxes = props.new_zeros((1, 4))
            else:
                iou = box_iou(gt_boxes, props)
                idx = self.matcher(iou)
                matched = idx.clamp(min=0)
                labels = gt_labels[matched].to(torch.int64)
                labels[idx == Matcher.BELOW_LOW_THRESHOLD] = 0
                if self.bg_iou_low > 0:
                    labels[iou.max(dim=0).values < self.bg_iou_low] = -1
                labels[idx == Matcher.BETWEEN_THRESHOLDS] = -1  # ignored by the sampler
            out.proposals.append(props)
            out.matched_idxs.append(matched)
            out.labels.append(labels)
            out.regression_targets.append(gt_boxes)  # replaced below
        positive, negative = self.sampler(out.labels)
        for i, (pos, neg) in enumerate(zip(positive, negative)):
            keep = torch.where(pos | neg)[0]
            out.proposals[i] = out.proposals[i][keep]
            out.labels[i] = out.labels[i][keep]
            out.matched_idxs[i] = out.matched_idxs[i][keep]
            gt_boxes = out.regression_targets[i]
            out.regression_targets[i] = self.box_coder.encode(gt_boxes[out.matched_idxs[i]],
                                                              out.proposals[i])
        return out

    def postprocess_detections(
        self, class_logits: Tensor, box_regression: Tensor, proposals: list[Tensor],
        image_sizes: Sequence[tuple[int, int]],
    ) -> list[Detections]:
        """Per image: decode every class's box, clip, threshold, per-class NMS, top-k."""
        num_classes = class_logits.shape[-1]
        counts = [p.shape[0] for p in proposals]
        # (K, 4C) -> (K, C, 4)
        boxes_all = self.box_coder.decode(box_regression, torch.cat(proposals))
        boxes_all = boxes_all.reshape(-1, num_classes, 4)
        scores_all = self.box_predictor.class_scores(class_logits)
        out = []
        for boxes, scores, size in zip(boxes_all.split(counts), scores_all.split(counts),
                                       image_sizes):
            boxes = clip_boxes_to_image(boxes, size)
            labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
            # Drop the background column, then one candidate per (RoI, class).
            boxes = boxes[:, 1:].reshape(-1, 4)
            scores = scores[:, 1:].reshape(-1)
            labels = labels[:, 1:].reshape(-1)
            keep = torch.where(scores > self.score_thresh)[0]
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = remove_small_boxes(boxes, self.min_box_size)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: self.detections_per_img]
            out.append(Detections(boxes[keep], scores[keep], labels[keep]))
        return out
