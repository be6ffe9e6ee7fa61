"""Panoptic FPN: Mask R-CNN plus a semantic-segmentation branch on the same pyramid.

Paper: Kirillov, Girshick, He, Dollar, "Panoptic Feature Pyramid Networks", 2019,
arXiv:1901.02446.

Panoptic segmentation labels every pixel with a class and, for *things* (countable objects),
an instance; *stuff* (amorphous regions: brick, grass) has no instances. One network, two heads
on one FPN (Sec. 3):

* **Instance branch**: Mask R-CNN (:mod:`.mask_rcnn`) on the pyramid, unchanged.
* **Semantic branch** (Sec. 3.2, Fig. 3): from each level ``P2..P5`` (strides 4..32), as many
  upsampling stages as it takes to reach 1/4 scale -- each stage a 3x3 convolution (128), group
  norm, ReLU and 2x bilinear upsampling; ``P2`` gets one convolution without upsampling -- then
  the four 1/4-scale maps are summed, a 1x1 convolution gives the class logits, and 4x bilinear
  upsampling brings them to the image. The classes are the stuff classes plus one "other" class
  (label 0 here) for every thing pixel, so that thing pixels are not forced into a stuff class.
* **Loss** (Sec. 3.3): ``L = lambda_i (L_c + L_b + L_m) + lambda_s L_s``; ``L_s`` is the per-pixel
  cross-entropy over labelled pixels; ``lambda_i = 1``, ``lambda_s = semantic_loss_weight``
  (0.5, detectron2's Panoptic FPN default).
* **Merge** (Sec. 3.4 of the paper and detectron2's ``combine_semantic_and_instance_outputs``):
  instances sorted by score, kept when the score is at least ``instance_score_thresh`` (0.5);
  each instance's mask (probability >= 0.5) is dropped when more than ``overlap_thresh`` (0.5)
  of it is already taken, otherwise only its free pixels are painted ("things first"; the
  paper's NMS-like overlap resolution). Then each stuff class of the semantic prediction fills
  the pixels still free; a stuff region smaller than the area threshold is dropped and its
  pixels stay unlabelled (void, id 0). :func:`panoptic_merge` does this.

Output: :class:`PanopticOutput` per image -- the detections, the semantic labels, a map of
segment ids and ``segments`` (COCO panoptic ``segments_info``); :meth:`PanopticOutput.to_coco`
gives the RGB-encoded PNG and a :class:`~modernvision.data.formats.coco.PanopticRecord` that
:func:`~modernvision.data.formats.coco.write_coco_panoptic` writes and
:func:`~modernvision.data.formats.coco.read_coco_panoptic` reads back, and
:func:`~modernvision.metrics.panoptic_quality` scores.

Departures from the paper:
    * The stuff area threshold is 4096 pixels at COCO scale (detectron2's ``STUFF_AREA_LIMIT``,
      on images of ~640x480); here it is the same *fraction* of the image, ``4096 / (640 *
      480)`` of its pixels (874 pixels on a 256x256 scene), so that small images keep their
      stuff.
    * The semantic target is resized with the image by nearest-neighbour interpolation; padding
      is ignored (label 255), as detectron2.
    * The semantic classifier starts from N(0, 0.01) weights (detectron2: MSRA fill), so the
      initial class probabilities are uniform.
    * The CPU-sized variant (ResNet-18 FPN, 64-channel semantic head) is ours, for the scenes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.detection._structures import Detections, ImageBatch
from modernvision.models.registry import register_model
from modernvision.models.segmentation.mask_rcnn import (
    MASK_MOBILENET_V2_050_FPN,
    MASK_RESNET18_FPN,
    MASK_RESNET50_FPN,
    MaskRCNN,
    MaskRCNNConfig,
    mask_rcnn,
)

__all__ = [
    "COCO_STUFF_AREA_FRACTION",
    "PanopticFPN",
    "PanopticFPNConfig",
    "PanopticOutput",
    "SemanticFPNHead",
    "panoptic_fpn",
    "panoptic_fpn_resnet18",
    "panoptic_fpn_resnet50",
    "panoptic_merge",
]

#: detectron2's stuff area limit, 4096 pixels, as a fraction of a 640x480 COCO image.
COCO_STUFF_AREA_FRACTION = 4096 / (640 * 480)
IGNORE_INDEX = 255


@dataclass(frozen=True)
class PanopticFPNConfig:
    """The architecture of a Panoptic FPN.

    Attributes:
        instance: the Mask R-CNN of the instance branch.
        semantic_channels: width of the semantic branch's convolutions (128).
        semantic_groups: group norm groups (32).
    """

    instance: MaskRCNNConfig
    semantic_channels: int = 128
    semantic_groups: int = 32

    def __post_init__(self) -> None:
        if not self.instance.masks:
            raise InvalidArgumentError("the instance branch of a Panoptic FPN needs masks")
        if self.semantic_channels % self.semantic_groups:
            raise InvalidArgumentError(
                f"semantic_channels ({self.semantic_channels}) must be a multiple of "
                f"semantic_groups ({self.semantic_groups})")


class SemanticFPNHead(nn.Module):
    """The semantic branch: per level, upsampling stages down to the finest level's scale,
    summed, a 1x1 classifier (Sec. 3.2).

    Args:
        in_channels: channels of the pyramid levels.
        strides: ``{level name: stride}`` of the levels it reads, finest first.
        num_classes: stuff classes + 1 (label 0: any thing).
        channels: width of the stages (128).
        groups: group norm groups (32).
    """

    def __init__(self, in_channels: int, strides: dict[str, int], num_classes: int, *,
                 channels: int = 128, groups: int = 32) -> None:
        super().__init__()
        self.level_names = list(strides)
        finest = min(strides.values())
        self.scale_heads = nn.ModuleList()
        for name in self.level_names:
            ups = int(round(math.log2(strides[name] / finest)))
            stages: list[nn.Module] = []
            for k in range(max(ups, 1)):
                stages += [nn.Conv2d(in_channels if k == 0 else channels, channels, 3,
                                     padding=1, bias=False),
                           nn.GroupNorm(groups, channels), nn.ReLU(inplace=True)]
                if ups:
                    stages.append(nn.Upsample(scale_factor=2, mode="bilinear",
                                              align_corners=False))
            self.scale_heads.append(nn.Sequential(*stages))
        self.predictor = nn.Conv2d(channels, num_classes, 1)
        self.common_stride = finest
        for m in self.scale_heads.modules():
            if isinstance(m, nn.Conv2d):  # MSRA fill, as detectron2
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Near-zero initial logits (uniform class probabilities), like the box classifier's
        # std-0.01 init: the sum of four levels otherwise starts with very large logits.
        nn.init.normal_(self.predictor.weight, std=0.01)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, features: dict[str, Tensor], size: tuple[int, int]) -> Tensor:
        """``(B, num_classes, *size)`` logits (``size``: the padded batch's)."""
        x = None
        for name, head in zip(self.level_names, self.scale_heads):
            y = head(features[name])
            if x is not None and y.shape[-2:] != x.shape[-2:]:
                y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = y if x is None else x + y
        x = self.predictor(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


@dataclass
class PanopticOutput:
    """The panoptic segmentation of one image.

    Attributes:
        detections: the instance branch's detections (masks pasted into the image).
        semantic: ``Tensor[H, W]`` int64 semantic-branch label (0 = a thing, ``j`` = stuff
            class ``j``).
        panoptic: ``Tensor[H, W]`` int64 segment id per pixel, 0 = void.
        segments: per segment ``{"id", "category_id", "isthing", "area", "score"}`` (score:
            things only), COCO's ``segments_info``.
    """

    detections: Detections
    semantic: Tensor
    panoptic: Tensor
    segments: list[dict[str, Any]] = field(default_factory=list)

    def to_coco(self, image_id: int, file_name: str) -> tuple[np.ndarray, Any]:
        """The RGB-encoded panoptic PNG (uint8 ``[H, W, 3]``) and its
        :class:`~modernvision.data.formats.coco.PanopticRecord`; the PNG is to be saved as
        ``file_name`` with ``.png`` in the panoptic folder."""
        from modernvision.data.formats.coco import PanopticRecord, PanopticSegment, id_to_rgb

        ids = self.panoptic.cpu().numpy()
        png = file_name.rsplit(".", 1)[0] + ".png"
        h, w = ids.shape
        rec = PanopticRecord(image_id=image_id, file_name=file_name, segments_file=png,
                             width=w, height=h)
        for s in self.segments:
            ys, xs = np.nonzero(ids == s["id"])
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            rec.segments.append(PanopticSegment(id=s["id"], category_id=s["category_id"],
                                                area=int(s["area"]), bbox=box))
        return id_to_rgb(ids), rec


def panoptic_merge(
    masks: Tensor,
    scores: Tensor,
    labels: Tensor,
    semantic: Tensor,
    stuff_category_ids: Sequence[int],
    *,
    instance_score_thresh: float = 0.5,
    overlap_thresh: float = 0.5,
    stuff_area: float = 4096,
) -> tuple[Tensor, list[dict[str, Any]]]:
    """Combine instances and a semantic map into panoptic segments (things first).

    Args:
        masks: ``Tensor[N, H, W]`` bool instance masks.
        scores: ``Tensor[N]`` their scores.
        labels: ``Tensor[N]`` their category ids.
        semantic: ``Tensor[H, W]`` int64 semantic labels: 0 any thing, ``j >= 1`` stuff class
            ``j`` (category ``stuff_category_ids[j - 1]``).
        stuff_category_ids: the category id of each stuff label.
        instance_score_thresh: instances with a lower score are not used.
        overlap_thresh: an instance is dropped when more than this fraction of its mask is
            already taken by higher-scoring ones.
        stuff_area: stuff regions with fewer free pixels are dropped (left void).

    Returns:
        ``(ids, segments)``: ``Tensor[H, W]`` int64 segment id per pixel (0 void, segments
        numbered from 1 in the order they were painted) and the segments' info.
    """
    ids = torch.zeros(semantic.shape, dtype=torch.int64, device=semantic.device)
    segments: list[dict[str, Any]] = []
    for i in torch.argsort(scores, descending=True).tolist():
        score = float(scores[i])
        if score < instance_score_thresh:
            break
        mask = masks[i]
        area = int(mask.sum())
        if area == 0:
            continue
        taken = int((mask & (ids > 0)).sum())
        if taken / area > overlap_thresh:
            continue
        free = mask & (ids == 0)
        ids[free] = len(segments) + 1
        segments.append({"id": len(segments) + 1, "category_id": int(labels[i]),
                         "isthing": True, "score": score, "area": area - taken})
    for label in torch.unique(semantic).tolist():
        if label == 0 or label == IGNORE_INDEX:  # the "things" class gives no stuff segment
            continue
        if not 1 <= label <= len(stuff_category_ids):
            raise InvalidArgumentError(
                f"semantic label {label} has no stuff category (stuff_category_ids has "
                f"{len(stuff_category_ids)})")
        free = (semantic == label) & (ids == 0)
        area = int(free.sum())
        if area < stuff_area:
            continue
        ids[free] = len(segments) + 1
        segments.append({"id": len(segments) + 1,
                         "category_id": int(stuff_category_ids[label - 1]), "isthing": False,
                         "area": area})
    return ids, segments


@dataclass
class _BatchOutput:
    """Eval-time results in batch coordinates, before :meth:`PanopticFPN.postprocess`."""

    detections: Detections
    semantic_logits: Tensor  # (S + 1, h, w): the image's part of the padded batch


class PanopticFPN(MaskRCNN):
    """Panoptic FPN composed of its parts: a Mask R-CNN and a :class:`SemanticFPNHead`.

    Training targets need ``semantic`` beside Mask R-CNN's: ``Tensor[H, W]`` int64 labels of
    the image's pixels (0 any thing, ``1..S`` stuff, 255 ignored); the loss dict adds
    ``loss_semantic`` (already weighted). Eval returns one :class:`PanopticOutput` per image.

    Args:
        backbone, rpn, roi_heads: the Mask R-CNN's parts.
        semantic_head: the semantic branch.
        transform: the input transform.
        num_classes: thing classes + background.
        stuff_category_ids: category id of stuff labels ``1..S``.
        semantic_loss_weight: ``lambda_s``.
        instance_score_thresh: :func:`panoptic_merge`'s.
        overlap_thresh: :func:`panoptic_merge`'s.
        stuff_area_fraction: stuff regions below this fraction of the image are dropped.
        config: the configuration it was built from.
    """

    def __init__(self, backbone: nn.Module, rpn: nn.Module, roi_heads: nn.Module,
                 semantic_head: SemanticFPNHead, *, transform: Any, num_classes: int,
                 stuff_category_ids: Sequence[int], semantic_loss_weight: float = 0.5,
                 instance_score_thresh: float = 0.5, overlap_thresh: float = 0.5,
                 stuff_area_fraction: float = COCO_STUFF_AREA_FRACTION,
                 config: Any = None) -> None:
        super().__init__(backbone, rpn, roi_heads, transform=transform,
                         num_classes=num_classes, config=config)
        self.semantic_head = semantic_head
        self.stuff_category_ids = tuple(int(c) for c in stuff_category_ids)
        self.semantic_loss_weight = semantic_loss_weight
        self.instance_score_thresh = instance_score_thresh
        self.overlap_thresh = overlap_thresh
        self.stuff_area_fraction = stuff_area_fraction

    @property
    def num_stuff_classes(self) -> int:
        return len(self.stuff_category_ids)

    def check_targets(self, targets: Any, image_sizes: Sequence[tuple[int, int]],
                      reference: Tensor) -> list[dict[str, Any]]:
        out = super().check_targets(targets, image_sizes, reference)
        for i, (target, size) in enumerate(zip(out, image_sizes)):
            sem = target.get("semantic")
            if not isinstance(sem, Tensor) or tuple(sem.shape) != tuple(size) \
                    or sem.is_floating_point():
                got = tuple(sem.shape) if isinstance(sem, Tensor) else type(sem).__name__
                raise InvalidArgumentError(
                    f"targets[{i}]['semantic'] must be an integer Tensor[H, W] = {list(size)} "
                    f"(0 thing, 1..{self.num_stuff_classes} stuff, 255 ignored), got {got}")
            target["semantic"] = sem.as_subclass(Tensor).to(reference.device, torch.int64)
        return out

    def forward_batch(self, batch: ImageBatch, targets: list[dict[str, Tensor]] | None
                      ) -> dict[str, Tensor] | list[_BatchOutput]:
        features = self.backbone(batch.tensors)
        proposals, rpn_losses = self.rpn(batch, features, targets)
        detections, roi_losses = self.roi_heads(features, proposals, batch.image_sizes, targets)
        logits = self.semantic_head(features, tuple(batch.tensors.shape[-2:]))
        if targets is not None:
            labels = self._semantic_targets(targets, batch, logits)
            loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
            return {**rpn_losses, **roi_losses,
                    "loss_semantic": self.semantic_loss_weight * loss}
        return [_BatchOutput(det, logits[i, :, :h, :w])
                for i, (det, (h, w)) in enumerate(zip(detections, batch.image_sizes))]

    @staticmethod
    def _semantic_targets(targets: list[dict[str, Tensor]], batch: ImageBatch,
                          logits: Tensor) -> Tensor:
        """The labels resized with the images (nearest) and padded with the ignore label."""
        out = torch.full((logits.shape[0], *logits.shape[-2:]), IGNORE_INDEX,
                         dtype=torch.int64, device=logits.device)
        for i, (target, (h, w)) in enumerate(zip(targets, batch.image_sizes)):
            sem = target["semantic"]
            if tuple(sem.shape) != (h, w):
                sem = F.interpolate(sem[None, None].float(), size=(h, w))[0, 0].long()
            out[i, :h, :w] = sem
        return out

    def postprocess(self, outputs: list[_BatchOutput], image_sizes: Sequence[tuple[int, int]],
                    original_sizes: Sequence[tuple[int, int]]) -> list[PanopticOutput]:
        """Detections and semantic labels in the input images' pixels, merged."""
        detections = super().postprocess([o.detections for o in outputs], image_sizes,
                                          original_sizes)
        sizes = original_sizes if self.transform is not None else image_sizes
        results = []
        for out, det, size in zip(outputs, detections, sizes):
            logits = out.semantic_logits
            if tuple(logits.shape[-2:]) != tuple(size):
                logits = F.interpolate(logits[None], size=size, mode="bilinear",
                                       align_corners=False)[0]
            semantic = logits.argmax(0)
            ids, segments = panoptic_merge(
                det.masks[:, 0] >= 0.5, det.scores, det.labels, semantic,
                self.stuff_category_ids, instance_score_thresh=self.instance_score_thresh,
                overlap_thresh=self.overlap_thresh,
                stuff_area=self.stuff_area_fraction * size[0] * size[1])
            results.append(PanopticOutput(det, semantic, ids, segments))
        return results


_CONFIG_FIELDS = {f.name for f in dataclasses.fields(PanopticFPNConfig)} - {"instance"}


def panoptic_fpn(
    config: PanopticFPNConfig,
    *,
    num_classes: int,
    num_stuff_classes: int,
    stuff_category_ids: Sequence[int] | None = None,
    semantic_loss_weight: float = 0.5,
    instance_score_thresh: float = 0.5,
    overlap_thresh: float = 0.5,
    stuff_area_fraction: float = COCO_STUFF_AREA_FRACTION,
    **kwargs: Any,
) -> PanopticFPN:
    """Build a Panoptic FPN.

    Args:
        config: the architecture.
        num_classes: thing classes + background (the instance branch's).
        num_stuff_classes: stuff classes (the semantic branch has one more, "any thing").
        stuff_category_ids: category id of each stuff class (default: right after the things,
            ``num_classes .. num_classes + S - 1``, as in the scenes).
        semantic_loss_weight: ``lambda_s`` of the loss.
        instance_score_thresh: merge: the least score of a used instance.
        overlap_thresh: merge: an instance more than this much taken is dropped.
        stuff_area_fraction: merge: stuff regions below this fraction of the image are dropped.
        **kwargs: :func:`~modernvision.models.segmentation.mask_rcnn.mask_rcnn`'s keywords and
            :class:`PanopticFPNConfig`'s fields.
    """
    if not isinstance(num_stuff_classes, int) or num_stuff_classes < 1:
        raise InvalidArgumentError(
            f"num_stuff_classes must be an int >= 1, got {num_stuff_classes!r}")
    if stuff_category_ids is None:
        stuff_category_ids = range(num_classes, num_classes + num_stuff_classes)
    stuff_category_ids = tuple(int(c) for c in stuff_category_ids)
    if len(stuff_category_ids) != num_stuff_classes:
        raise InvalidArgumentError(
            f"stuff_category_ids needs {num_stuff_classes} ids (num_stuff_classes), got "
            f"{len(stuff_category_ids)}")
    for name, value in (("instance_score_thresh", instance_score_thresh),
                        ("overlap_thresh", overlap_thresh),
                        ("stuff_area_fraction", stuff_area_fraction)):
        if not 0 <= value <= 1:
            raise InvalidArgumentError(f"{name} must be in [0, 1], got {value!r}")
    config = dataclasses.replace(config, **{k: kwargs.pop(k) for k in list(kwargs)
                                            if k in _CONFIG_FIELDS})
    instance = mask_rcnn(config.instance, num_classes=num_classes, **kwargs)
    levels = instance.roi_heads.box_roi_pool.featmap_names
    strides = {name: instance.backbone.strides[name] for name in levels}
    channels = instance.backbone.out_channels[levels[0]]
    head = SemanticFPNHead(channels, strides, num_stuff_classes + 1,
                           channels=config.semantic_channels, groups=config.semantic_groups)
    return PanopticFPN(instance.backbone, instance.rpn, instance.roi_heads, head,
                       transform=instance.transform, num_classes=num_classes,
                       stuff_category_ids=stuff_category_ids,
                       semantic_loss_weight=semantic_loss_weight,
                       instance_score_thresh=instance_score_thresh,
                       overlap_thresh=overlap_thresh, stuff_area_fraction=stuff_area_fraction,
                       config=config)


PANOPTIC_RESNET50_FPN = PanopticFPNConfig(MASK_RESNET50_FPN)
PANOPTIC_RESNET18_FPN = PanopticFPNConfig(MASK_RESNET18_FPN, semantic_channels=64)
PANOPTIC_MOBILENET_V2_050_FPN = PanopticFPNConfig(MASK_MOBILENET_V2_050_FPN,
                                                  semantic_channels=64)


@register_model(task="panoptic")
def panoptic_fpn_resnet50(*, num_classes: int = 81, num_stuff_classes: int = 53,
                          **kwargs) -> PanopticFPN:
    """Panoptic FPN on ResNet-50 FPN (COCO panoptic: 80 things, 53 stuff)."""
    return panoptic_fpn(PANOPTIC_RESNET50_FPN, num_classes=num_classes,
                        num_stuff_classes=num_stuff_classes, **kwargs)


@register_model(task="panoptic")
def panoptic_fpn_resnet18(*, num_classes: int = 81, num_stuff_classes: int = 53,
                          **kwargs) -> PanopticFPN:
    """CPU-sized Panoptic FPN: Mask R-CNN ResNet-18 FPN and a 64-channel semantic branch."""
    return panoptic_fpn(PANOPTIC_RESNET18_FPN, num_classes=num_classes,
                        num_stuff_classes=num_stuff_classes, **kwargs)


@register_model(task="panoptic")
def panoptic_fpn_mobilenet_v2_050(*, num_classes: int = 81, num_stuff_classes: int = 53,
                                  **kwargs) -> PanopticFPN:
    """CPU-sized Panoptic FPN on ``maskrcnn_mobilenet_v2_050_fpn`` (64-channel FPN on C3-C5)
    and a 64-channel semantic branch; a trained detector or Mask R-CNN run of that backbone
    initialises all it shares (``train --init RUN``)."""
    return panoptic_fpn(PANOPTIC_MOBILENET_V2_050_FPN, num_classes=num_classes,
                        num_stuff_classes=num_stuff_classes, **kwargs)
