"""The Region Proposal Network of Faster R-CNN.

Paper: Ren, He, Girshick, Sun, "Faster R-CNN: Towards Real-Time Object Detection with Region
Proposal Networks", 2015, arXiv:1506.01497, Sec. 3.1; with FPN (Lin et al. 2017,
arXiv:1612.03144, Sec. 4.1): one head shared by all levels, one anchor size per level.

Sec. 3.1: a 3x3 convolution slides over the feature map (then ReLU); two sibling 1x1
convolutions give, at each position, an objectness score for each of the ``k`` anchors and four
box corrections (the parametrisation of R-CNN's appendix C). Training (Sec. 3.1.2): an anchor
is positive with IoU > 0.7 with some ground-truth box, or when it is some box's best anchor;
negative with IoU < 0.3 for all; the rest do not count. Each image contributes 256 anchors, up
to half positive; the loss is binary cross-entropy on their objectness plus smooth L1 on the
positives' corrections. Proposals (Sec. 3.3): decode all anchors, keep the top-n by objectness,
clip to the image, drop tiny boxes, NMS at IoU 0.7, keep the top-N.

Sampling: ``sampling="random"`` picks the negatives uniformly, as the paper and torchvision
do; ``sampling="hard"`` keeps the negatives with the *highest* objectness (hard negatives, the
course notes' variant, in the spirit of OHEM, Shrivastava et al. 2016, arXiv:1604.03540); the
positives are drawn at random in both.

Departures from the paper, all torchvision's (the reference the tests compare against):
    * ``pre_nms_top_n`` applies per pyramid level, and NMS runs per level (FPN, Sec. 4.1
      leaves it open); the cross-level top-N is by objectness after NMS.
    * Boxes smaller than 1e-3 pixels are dropped (the paper drops boxes crossing the image
      border in training; here proposals are clipped instead, as everyone does since).
    * The box loss is smooth L1 with ``beta = 1/9``, summed over the positives and divided by
      the number of sampled anchors (the paper: ``lambda = 10`` over about 2,400 positions).
    * Head weights start N(0, 0.01), biases 0 (the paper: N(0, 0.01) too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.losses import smooth_l1_loss
from modernvision.models.detection._structures import ImageBatch
from modernvision.ops import (
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    batched_nms,
    box_iou,
    clip_boxes_to_image,
    hard_negative_mining,
    remove_small_boxes,
)

__all__ = ["PerLevelRPNHead", "RPNHead", "RegionProposalNetwork", "flatten_predictions"]

Sampling = Literal["random", "hard"]


class RPNHead(nn.Module):
    """The sliding window: 3x3 convolution + ReLU, then 1x1 objectness (``A`` per position)
    and 1x1 box corrections (``4 A``), shared by every level it is applied to.

    Args:
        in_channels: channels of the feature maps (and of the 3x3 convolution).
        num_anchors: anchors per position ``A``.
    """

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(in_channels, 4 * num_anchors, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level ``(B, C, H, W)`` -> objectness ``(B, A, H, W)`` and deltas
        ``(B, 4A, H, W)``."""
        logits, deltas = [], []
        for x in features:
            x = F.relu(self.conv(x))
            logits.append(self.cls_logits(x))
            deltas.append(self.bbox_pred(x))
        return logits, deltas


class PerLevelRPNHead(nn.Module):
    """One :class:`RPNHead` per level (multi-scale proposals without sharing the head).

    Args:
        in_channels: channels of every level.
        num_anchors: anchors per position of each level.
    """

    def __init__(self, in_channels: int, num_anchors: Sequence[int]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(RPNHead(in_channels, a) for a in num_anchors)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        if len(features) != len(self.heads):
            raise InvalidArgumentError(
                f"PerLevelRPNHead has {len(self.heads)} heads, got {len(features)} levels")
        logits, deltas = [], []
        for head, x in zip(self.heads, features):
            level_logits, level_deltas = head([x])
            logits += level_logits
            deltas += level_deltas
        return logits, deltas


def flatten_predictions(
    logits: Sequence[Tensor], deltas: Sequence[Tensor]
) -> tuple[Tensor, Tensor]:
    """Per-level maps -> ``(B * sum_l H_l W_l A_l, C)`` scores and ``(..., 4)`` deltas, ordered
    like the anchors: image, level, position (row-major), anchor."""
    flat_logits, flat_deltas = [], []
    for score, delta in zip(logits, deltas):
        b, ac, h, w = score.shape
        a = delta.shape[1] // 4
        c = ac // a
        # (B, A*C, H, W) -> (B, A, C, H, W) -> (B, H, W, A, C) -> (B, H*W*A, C)
        flat_logits.append(score.view(b, a, c, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, c))
        flat_deltas.append(delta.view(b, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, 4))
    return torch.cat(flat_logits, 1).flatten(0, -2), torch.cat(flat_deltas, 1).reshape(-1, 4)


class RegionProposalNetwork(nn.Module):
    """Anchors, the head, proposal selection and (in training) the RPN losses.

    Args:
        anchor_generator: anchors for each level.
        head: :class:`RPNHead` (shared) or :class:`PerLevelRPNHead`.
        fg_iou_thresh: IoU at or above which an anchor is positive (0.7).
        bg_iou_thresh: IoU below which an anchor is negative (0.3).
        batch_size_per_image: anchors sampled per image for the loss (256).
        positive_fraction: at most this fraction of them positive (0.5).
        pre_nms_top_n_train: proposals kept per level before NMS in training.
        pre_nms_top_n_test: the same in evaluation.
        post_nms_top_n_train: proposals kept per image after NMS in training.
        post_nms_top_n_test: the same in evaluation.
        nms_thresh: NMS IoU threshold (0.7).
        score_thresh: proposals need an objectness probability at least this.
        sampling: ``"random"`` or ``"hard"`` negatives (module docstring).
    """

    min_box_size = 1e-3

    def __init__(
        self,
        anchor_generator: AnchorGenerator,
        head: nn.Module,
        *,
        fg_iou_thresh: float = 0.7,
        bg_iou_thresh: float = 0.3,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        pre_nms_top_n_train: int = 2000,
        pre_nms_top_n_test: int = 1000,
        post_nms_top_n_train: int = 2000,
        post_nms_top_n_test: int = 1000,
        nms_thresh: float = 0.7,
        score_thresh: float = 0.0,
        sampling: Sampling = "random",
    ) -> None:
        super().__init__()
        if sampling not in ("random", "hard"):
            raise InvalidArgumentError(f"sampling must be 'random' or 'hard', got {sampling!r}")
        counts = dict(pre_nms_top_n_train=pre_nms_top_n_train,
                      pre_nms_top_n_test=pre_nms_top_n_test,
                      post_nms_top_n_train=post_nms_top_n_train,
                      post_nms_top_n_test=post_nms_top_n_test)
        for name, value in counts.items():
            if not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"rpn_{name} must be a positive int, got {value!r}")
        if not 0.0 <= nms_thresh <= 1.0:
            raise InvalidArgumentError(f"rpn_nms_thresh must be in [0, 1], got {nms_thresh}")
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.pre_nms_top_n = {"train": pre_nms_top_n_train, "test": pre_nms_top_n_test}
        self.post_nms_top_n = {"train": post_nms_top_n_train, "test": post_nms_top_n_test}
        self.nms_thresh = nms_thresh
        self.score_thresh = score_thresh
        self.sampling = sampling

    def extra_repr(self) -> str:
        return (f"matcher={self.matcher}, sampler={self.sampler}, sampling={self.sampling!r}, "
                f"pre_nms_top_n={self.pre_nms_top_n}, post_nms_top_n={self.post_nms_top_n}, "
                f"nms_thresh={self.nms_thresh}, score_thresh={self.score_thresh}")

    def _mode(self) -> str:
        return "train" if self.training else "test"

    def forward(
        self,
        batch: ImageBatch,
        features: dict[str, Tensor],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Proposals (per image, ``Tensor[P_i, 4]`` in ``batch`` pixels, best first) and, when
        ``targets`` are given, the losses ``loss_objectness`` and ``loss_rpn_box_reg``."""
        maps = list(features.values())
        logits, deltas = self.head(maps)
        anchors = self.anchor_generator(batch.tensors, maps)
        num_images = len(anchors)
        per_level = [s.shape[1] * s.shape[2] * s.shape[3] for s in logits]
        objectness, box_deltas = flatten_predictions(logits, deltas)
        # Faster R-CNN does not back-propagate through the proposals' coordinates.
        proposals = self.box_coder.decode(box_deltas.detach(), torch.cat(anchors))
        proposals = proposals.view(num_images, -1, 4)
        boxes = self.select_proposals(proposals, objectness.detach(), batch.image_sizes,
                                      per_level)
        losses: dict[str, Tensor] = {}
        if targets is not None:
            labels, matched_boxes = self.assign_targets(anchors, targets)
            regression_targets = self.box_coder.encode(torch.cat(matched_boxes),
                                                       torch.cat(anchors))
            losses = self.loss(objectness.flatten(), box_deltas, labels, regression_targets)
        return boxes, losses

    def select_proposals(
        self,
        proposals: Tensor,
        objectness: Tensor,
        image_sizes: Sequence[tuple[int, int]],
        per_level: Sequence[int],
    ) -> list[Tensor]:
        """Top-n per level, clip, drop tiny and low-scoring boxes, NMS per level, top-N."""
        num_images = proposals.shape[0]
        device = proposals.device
        objectness = objectness.reshape(num_images, -1)
        levels = torch.cat([torch.full((n,), i, dtype=torch.int64, device=device)
                            for i, n in enumerate(per_level)])
        top, offset = [], 0
        for scores in objectness.split(list(per_level), dim=1):
            k = min(self.pre_nms_top_n[self._mode()], scores.shape[1])
            top.append(scores.topk(k, dim=1).indices + offset)
            offset += scores.shape[1]
        top_idx = torch.cat(top, dim=1)
        rows = torch.arange(num_images, device=device)[:, None]
        objectness, proposals = objectness[rows, top_idx], proposals[rows, top_idx]
        levels = levels[top_idx]
        probabilities = torch.sigmoid(objectness)
        out = []
        for boxes, scores, level, size in zip(proposals, probabilities, levels, image_sizes):
            boxes = clip_boxes_to_image(boxes, size)
            keep = remove_small_boxes(boxes, self.min_box_size)
            boxes, scores, level = boxes[keep], scores[keep], level[keep]
            keep = torch.where(scores >= self.score_thresh)[0]
            boxes, scores, level = boxes[keep], scores[keep], level[keep]
            keep = batched_nms(boxes, scores, level, self.nms_thresh)
            out.append(boxes[keep[: self.post_nms_top_n[self._mode()]]])
        return out

    def assign_targets(
        self, anchors: list[Tensor], targets: list[dict[str, Tensor]]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: float labels (1 positive, 0 negative, -1 ignored) and each anchor's
        matched ground-truth box (zeros for an image without objects)."""
        labels, matched = [], []
        for anchors_i, target in zip(anchors, targets):
            gt = target["boxes"]
            if gt.numel() == 0:
                labels.append(anchors_i.new_zeros(anchors_i.shape[0]))
                matched.append(torch.zeros_like(anchors_i))
                continue
            idx = self.matcher(box_iou(gt, anchors_i))
            label = (idx >= 0).to(anchors_i.dtype)
            label[idx == Matcher.BELOW_LOW_THRESHOLD] = 0.0
            label[idx == Matcher.BETWEEN_THRESHOLDS] = -1.0
            labels.append(label)
            matched.append(gt[idx.clamp(min=0)])
        return labels, matched

    def sample(self, labels: list[Tensor], objectness: Tensor) -> tuple[Tensor, Tensor]:
        """Indices (into all images' anchors) of the sampled positives and negatives."""
        positive_masks, negative_masks = self.sampler(labels)
        if self.sampling == "hard":
            scores = objectness.detach().split([len(lab) for lab in labels])
            negative_masks = [
                hard_negative_mining(score, lab, 0.0,
                                     min_negatives=self.sampler.batch_size_per_image
                                     - int(pos.sum()))
                for score, lab, pos in zip(scores, labels, positive_masks)
            ]
        positives = torch.where(torch.cat(positive_masks))[0]
        negatives = torch.where(torch.cat(negative_masks))[0]
        return positives, negatives

    def loss(
        self, objectness: Tensor, deltas: Tensor, labels: list[Tensor],
        regression_targets: Tensor,
    ) -> dict[str, Tensor]:
        """Binary cross-entropy on the sampled anchors, smooth L1 on the sampled positives."""
        positives, negatives = self.sample(labels, objectness)
        sampled = torch.cat([positives, negatives])
        labels_all = torch.cat(labels)
        box_loss = smooth_l1_loss(deltas[positives], regression_targets[positives],
                                  beta=1 / 9, reduction="sum") / sampled.numel()
        objectness_loss = F.binary_cross_entropy_with_logits(objectness[sampled],
                                                             labels_all[sampled])
        return {"loss_objectness": objectness_loss, "loss_rpn_box_reg": box_loss}
