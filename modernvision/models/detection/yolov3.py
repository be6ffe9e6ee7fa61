"""YOLOv3: Darknet-53, three scales joined by upsampling and concatenation, logistic objectness.

Paper: Redmon, Farhadi, "YOLOv3: An Incremental Improvement", 2018, arXiv:1804.02767; the box
parameterisation and the k-means anchors come from YOLO9000 (Redmon, Farhadi, 2016,
arXiv:1612.08242, Sec. 2 "Dimension Clusters" and "Direct location prediction").

Network (Sec. 2.3, the Darknet ``yolov3.cfg``): Darknet-53's ``c5`` (stride 32) goes through
five convolutions alternating 1x1 (``w``) and 3x3 (``2w``) with ``w = 512``, then a 3x3 and a
1x1 predictor with ``3 (5 + C)`` outputs -- the 13x13 grid at 416 pixels. The five-convolution
output is reduced by a 1x1 to ``w / 2``, upsampled 2x (nearest) and **concatenated** with ``c4``
(not added, as in FPN), and the same block with ``w = 256`` predicts on the 26x26 grid; once more
with ``c3`` and ``w = 128`` for 52x52. Every convolution but the predictors is conv + batch
norm + leaky ReLU 0.1. 80 classes at 416 pixels: 61,949,149 parameters.

Predictions (Sec. 2.1): at cell ``(c_x, c_y)`` of stride ``s`` with anchor ``(p_w, p_h)``,
``b_x = (sigmoid(t_x) + c_x) s``, ``b_y = (sigmoid(t_y) + c_y) s``, ``b_w = p_w e^{t_w}``,
``b_h = p_h e^{t_h}``; objectness ``sigmoid(t_o)``; classes are independent sigmoids
(multi-label, Sec. 2.2), score = objectness x class probability.

Training (Sec. 2.1): each ground truth is assigned to the one anchor (of all nine) whose shape
overlaps it best, at the cell holding its centre on that anchor's scale; that prediction gets
objectness target 1, box targets ``(x / s - c_x, y / s - c_y, log(w / p_w), log(h / p_h))`` and
one-hot class targets. Every other prediction has objectness target 0, except those whose
decoded box overlaps some ground truth by more than ``ignore_thresh`` (0.5), which get no
objectness loss. Objectness and classes use binary cross-entropy ("logistic regression");
coordinates squared error.

Anchors are pixels of the network's input, nine ``(w, h)`` sorted by area, three per scale
(finest scale the smallest); the paper's COCO ones at 416 pixels are :data:`COCO_ANCHORS`.
``yolov3(anchors=...)`` takes others, e.g. those ``modernvision anchors --data scenes:DIR -k 9``
clusters from a data set (:func:`modernvision.ops.kmeans_anchors`).

Departures:
    * The squared error on ``x, y`` is taken on ``sigmoid(t_x)`` against the cell offset (as
      Darknet does), and box terms are weighted by ``2 - w h / (W H)`` (Darknet's
      ``scale``), which upweights small objects.
    * Losses are sums over the batch divided by the number of ground truths (at least 1), not
      Darknet's plain sums, so the learning rate does not depend on the batch size; the
      objectness bias starts at ``log(0.01 / 0.99)`` (RetinaNet's prior) so the first steps
      are not swamped by thousands of easy negatives.
    * Images are resized by :class:`DetectionTransform` (shorter side ``min_size``, padded to a
      multiple of 32), not letterboxed to a square; pixels are scaled to [0, 1] without mean
      subtraction, as Darknet does.
    * ``yolov3_small`` is ours: a narrower, shallower Darknet (width 1/4, 1-1-2-2-1 blocks) and
      neck, at 256 pixels, with the paper's anchors scaled by 256 / 416, sized for the 2-core
      CPU and the composited scenes. ``yolov3_mobilenet_v2_050`` is ours too: the demo
      detector's MobileNetV2 x0.5 (named as there, for ``train --init``) with a 64-128-256 neck
      and ImageNet normalisation, the input its backbone was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.backbone import AsBody, create_backbone
from modernvision.models.classification.darknet import darknet_conv
from modernvision.models.detection._generalized import Detector, apply_size_overrides
from modernvision.models.detection._structures import Detections, ImageBatch
from modernvision.models.detection.transform import IMAGENET_MEAN, IMAGENET_STD, DetectionTransform
from modernvision.models.registry import register_model
from modernvision.ops import batched_nms, box_iou, clip_boxes_to_image

__all__ = ["COCO_ANCHORS", "YOLOv3", "YOLOv3Config", "YOLOv3Head", "yolov3", "yolov3_darknet53",
           "yolov3_mobilenet_v2_050", "yolov3_small"]

#: The paper's nine COCO anchors, (w, h) pixels at 416x416, by area.
COCO_ANCHORS: tuple[tuple[float, float], ...] = (
    (10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90), (156, 198),
    (373, 326))

Anchors = tuple[tuple[float, float], ...]


def scaled_anchors(anchors: Anchors, factor: float) -> Anchors:
    return tuple((round(w * factor, 2), round(h * factor, 2)) for w, h in anchors)


@dataclass(frozen=True)
class YOLOv3Config:
    """A YOLOv3 variant.

    Attributes:
        backbone: a registered classifier used headless (``"darknet53"``).
        levels: its stages the neck reads, finest first (``("c3", "c4", "c5")``).
        neck_widths: ``w`` of each scale's five-convolution block, finest first
            ((128, 256, 512) in the paper).
        anchors: ``(w, h)`` input pixels, ``anchors_per_scale`` per level, smallest first.
        anchors_per_scale: 3 in the paper.
        min_size: the shorter image side after resizing (several: drawn per training image).
        max_size: the longest the longer side may become.
        backbone_kwargs: keyword arguments of the backbone builder, as pairs.
        body_name: hold the backbone as ``backbone.body`` (the FPN detectors' parameter
            names, so ``train --init`` of such a detector's weights starts it trained).
    """

    backbone: str = "darknet53"
    levels: tuple[str, ...] = ("c3", "c4", "c5")
    neck_widths: tuple[int, ...] = (128, 256, 512)
    anchors: Anchors = COCO_ANCHORS
    anchors_per_scale: int = 3
    min_size: int | tuple[int, ...] = 416
    max_size: int = 416
    backbone_kwargs: tuple[tuple[str, Any], ...] = ()
    body_name: bool = False

    def __post_init__(self) -> None:
        if len(self.neck_widths) != len(self.levels) or not self.levels:
            raise InvalidArgumentError(
                f"neck_widths needs one width per level {self.levels}, got {self.neck_widths}")
        if any(not isinstance(w, int) or w < 2 or w % 2 for w in self.neck_widths):
            raise InvalidArgumentError(
                f"neck_widths must be even ints >= 2, got {self.neck_widths}")
        if not isinstance(self.anchors_per_scale, int) or self.anchors_per_scale < 1:
            raise InvalidArgumentError(
                f"anchors_per_scale must be a positive int, got {self.anchors_per_scale!r}")
        object.__setattr__(self, "anchors", _check_anchors(
            self.anchors, len(self.levels) * self.anchors_per_scale))


def _check_anchors(anchors: Any, expected: int) -> Anchors:
    """``anchors`` as (w, h) float pairs sorted by area; accepts a flat list of pairs or one
    list of pairs per scale (the JSON ``--model-arg anchors=...`` gives)."""
    try:
        nested = isinstance(anchors[0][0], (list, tuple))  # one list of pairs per scale
        flat = [a for scale in anchors for a in scale] if nested else list(anchors)
        pairs = [tuple(float(v) for v in a) for a in flat]
    except (TypeError, ValueError, IndexError, KeyError):
        pairs = []
    if len(pairs) != expected or any(len(p) != 2 or not (p[0] > 0 and p[1] > 0)
                                     for p in pairs):
        raise InvalidArgumentError(
            f"anchors must be {expected} (w, h) pairs of positive input pixels (e.g. "
            f"[[10,13],[16,30],...]; `modernvision anchors` prints them), got {anchors!r}")
    return tuple(sorted(pairs, key=lambda p: (p[0] * p[1], p[0])))  # type: ignore[misc]


def _five_convs(in_channels: int, width: int) -> nn.Sequential:
    """1x1 w, 3x3 2w, 1x1 w, 3x3 2w, 1x1 w (the cfg's block before each detector)."""
    layers, channels = [], in_channels
    for i in range(5):
        out = width if i % 2 == 0 else 2 * width
        layers.append(darknet_conv(channels, out, 1 if i % 2 == 0 else 3))
        channels = out
    return nn.Sequential(*layers)


class YOLOv3Neck(nn.Module):
    """Coarse-to-fine: five convs per scale, 1x1 + 2x upsample, concatenation with the next
    finer backbone stage. Returns each scale's five-conv output, finest first."""

    def __init__(self, in_channels: Sequence[int], widths: Sequence[int]) -> None:
        super().__init__()
        blocks, laterals = [], []
        incoming = 0
        for level in reversed(range(len(in_channels))):
            blocks.append(_five_convs(in_channels[level] + incoming, widths[level]))
            if level > 0:
                laterals.append(darknet_conv(widths[level], widths[level] // 2, 1))
                incoming = widths[level] // 2
        self.blocks = nn.ModuleList(blocks)  # coarsest first
        self.laterals = nn.ModuleList(laterals)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        outs, x = [], None
        for i, feature in enumerate(reversed(features)):
            if x is not None:
                x = F.interpolate(self.laterals[i - 1](x), size=feature.shape[-2:],
                                  mode="nearest")
                feature = torch.cat([x, feature], dim=1)  # concatenation, not a sum
            x = self.blocks[i](feature)
            outs.append(x)
        return outs[::-1]


class YOLOv3Head(nn.Module):
    """Per scale: 3x3 conv (2w) + 1x1 predictor of ``A (5 + C)`` channels."""

    def __init__(self, widths: Sequence[int], num_anchors: int, num_classes: int) -> None:
        super().__init__()
        self.num_anchors, self.num_classes = num_anchors, num_classes
        self.convs = nn.ModuleList(darknet_conv(w, 2 * w, 3) for w in widths)
        self.predictors = nn.ModuleList(nn.Conv2d(2 * w, num_anchors * (5 + num_classes), 1)
                                        for w in widths)
        prior = math.log(0.01 / 0.99)
        for p in self.predictors:
            nn.init.normal_(p.weight, std=0.01)
            bias = p.bias.detach().view(num_anchors, 5 + num_classes)
            bias.zero_()
            bias[:, 4] = prior
            bias[:, 5:] = prior

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Per scale ``(B, A, H, W, 5 + C)``: ``t_x, t_y, t_w, t_h, t_o``, class logits."""
        outs = []
        for x, conv, pred in zip(features, self.convs, self.predictors):
            y = pred(conv(x))
            b, _, h, w = y.shape
            # (B, A (5 + C), H, W) -> (B, A, H, W, 5 + C)
            outs.append(y.view(b, self.num_anchors, 5 + self.num_classes, h, w)
                        .permute(0, 1, 3, 4, 2))
        return outs


class YOLOv3(Detector):
    """YOLOv3 composed of its parts.

    Args:
        backbone: images -> ``dict`` of the ``levels`` feature maps (with ``strides``).
        neck: the upsample-and-concatenate neck.
        head: the per-scale predictors.
        anchors: ``(w, h)`` pixels, ``A`` per scale, finest scale first.
        transform: the input transform or ``None``.
        num_classes: classes including the background (which YOLO never predicts).
        ignore_thresh: predictions overlapping a ground truth by more than this get no
            objectness loss.
        score_thresh: least ``objectness x class`` score kept at inference.
        nms_thresh: per-class NMS IoU.
        detections_per_img: most detections kept per image.
        pre_nms_top_n: most candidates per image going into NMS.
        config: the configuration it was built from.
    """

    def __init__(self, backbone: nn.Module, neck: YOLOv3Neck, head: YOLOv3Head, *,
                 anchors: Anchors, transform: DetectionTransform | None, num_classes: int,
                 ignore_thresh: float = 0.5, score_thresh: float = 0.005,
                 nms_thresh: float = 0.45, detections_per_img: int = 100,
                 pre_nms_top_n: int = 1000, config: YOLOv3Config | None = None) -> None:
        super().__init__(transform, num_classes=num_classes)
        self.backbone, self.neck, self.head = backbone, neck, head
        self.strides = [int(s) for s in backbone.strides.values()]
        a = head.num_anchors
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32)
                             .view(len(self.strides), a, 2), persistent=False)
        for name, value, low, high in (("ignore_thresh", ignore_thresh, 0, 1),
                                       ("score_thresh", score_thresh, 0, 1),
                                       ("nms_thresh", nms_thresh, 0, 1)):
            if not low <= value <= high:
                raise InvalidArgumentError(f"{name} must be in [{low}, {high}], got {value}")
        self.ignore_thresh, self.score_thresh, self.nms_thresh = (
            ignore_thresh, score_thresh, nms_thresh)
        self.detections_per_img, self.pre_nms_top_n = detections_per_img, pre_nms_top_n
        self.config = config

    def forward_batch(self, batch: ImageBatch, targets: list[dict[str, Tensor]] | None
                      ) -> dict[str, Tensor] | list[Detections]:
        features = self.backbone(batch.tensors)
        outputs = self.head(self.neck(list(features.values())))
        if targets is not None:
            return self.compute_loss(outputs, targets, tuple(batch.tensors.shape[-2:]))
        return self.postprocess_detections(outputs, batch.image_sizes)

    # -- boxes -------------------------------------------------------------------------------

    def decode(self, outputs: list[Tensor]) -> Tensor:
        """Per-scale outputs -> boxes ``(B, N, 4)`` xyxy input pixels, scales concatenated
        (each scale's ``(A, H, W)`` flattened in that order)."""
        boxes = []
        for level, out in enumerate(outputs):
            _, a, h, w, _ = out.shape
            stride = self.strides[level]
            ys, xs = torch.meshgrid(torch.arange(h, device=out.device, dtype=out.dtype),
                                    torch.arange(w, device=out.device, dtype=out.dtype),
                                    indexing="ij")
            cx = (out[..., 0].sigmoid() + xs) * stride
            cy = (out[..., 1].sigmoid() + ys) * stride
            anchor = self.anchors[level].to(out.dtype).view(1, a, 1, 1, 2)
            # exp is clamped so an untrained net cannot overflow to inf boxes.
            wh = anchor * out[..., 2:4].clamp(max=math.log(1e4)).exp()
            xyxy = torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2,
                                cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], dim=-1)
            boxes.append(xyxy.flatten(1, 3))  # (B, A, H, W, 4) -> (B, AHW, 4)
        return torch.cat(boxes, 1)

    def postprocess_detections(self, outputs: list[Tensor],
                               image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """Score = objectness x class sigmoid (multi-label), threshold, top-n, per-class NMS."""
        boxes_all = self.decode(outputs)
        # (B, A, H, W, 5 + C) -> (B, AHW, 5 + C), scales concatenated
        flat = torch.cat([o.flatten(1, 3) for o in outputs], 1)
        scores_all = flat[..., 4:5].sigmoid() * flat[..., 5:].sigmoid()
        results = []
        num_fg = scores_all.shape[-1]
        for boxes, scores, size in zip(boxes_all, scores_all, image_sizes):
            scores = scores.reshape(-1)  # (N, C) -> (N C)
            keep = torch.where(scores > self.score_thresh)[0]
            if keep.numel() > self.pre_nms_top_n:
                keep = keep[scores[keep].topk(self.pre_nms_top_n).indices]
            box_index, label = keep // num_fg, keep % num_fg + 1
            b = clip_boxes_to_image(boxes[box_index], size)
            s = scores[keep]
            ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            b, s, label = b[ok], s[ok], label[ok]
            kept = batched_nms(b, s, label, self.nms_thresh)[: self.detections_per_img]
            results.append(Detections(b[kept], s[kept], label[kept]))
        return results

    # -- training ------------------------------------------------------------------------------

    def build_targets(self, outputs: list[Tensor], targets: list[dict[str, Tensor]]
                      ) -> list[tuple[Tensor, ...]]:
        """Per scale: the assigned ``(image, anchor, y, x)`` indices, box targets ``(t_x
        offset, t_y offset, t_w, t_h)``, classes and the ground truths' areas."""
        num_anchors = self.anchors.shape[1]
        all_anchors = self.anchors.reshape(-1, 2)
        per_level: list[list[list[Tensor]]] = [[] for _ in outputs]
        for image, target in enumerate(targets):
            gt = target["boxes"]
            if gt.numel() == 0:
                continue
            wh = gt[:, 2:] - gt[:, :2]
            centre = (gt[:, :2] + gt[:, 2:]) / 2
            # Shape-only IoU of every box with every anchor (both centred at the origin).
            inter = torch.minimum(wh[:, None], all_anchors[None].to(wh)).prod(-1)
            iou = inter / (wh.prod(-1)[:, None] + all_anchors.prod(-1)[None].to(wh) - inter)
            best = iou.argmax(1)  # one anchor per ground truth
            for level, out in enumerate(outputs):
                on_level = torch.where(best // num_anchors == level)[0]
                if on_level.numel() == 0:
                    continue
                h, w = out.shape[2:4]
                stride = self.strides[level]
                grid = centre[on_level] / stride
                cell = grid.floor().long()
                cell[:, 0].clamp_(0, w - 1)
                cell[:, 1].clamp_(0, h - 1)
                anchor = best[on_level] % num_anchors
                anchor_wh = self.anchors[level][anchor].to(wh)
                box_t = torch.cat([grid - cell.to(grid), (wh[on_level] / anchor_wh).log()], 1)
                per_level[level].append([
                    torch.full_like(anchor, image), anchor, cell[:, 1], cell[:, 0], box_t,
                    target["labels"][on_level], wh[on_level].prod(-1)])
        out = []
        for level, parts in enumerate(per_level):
            if parts:
                out.append(tuple(torch.cat(p) for p in zip(*parts)))
            else:
                dev = outputs[level].device
                empty = torch.zeros(0, dtype=torch.long, device=dev)
                out.append((empty, empty, empty, empty,
                            torch.zeros(0, 4, device=dev, dtype=outputs[level].dtype), empty,
                            torch.zeros(0, device=dev, dtype=outputs[level].dtype)))
        return out

    def compute_loss(self, outputs: list[Tensor], targets: list[dict[str, Tensor]],
                     input_size: tuple[int, int]) -> dict[str, Tensor]:
        """``loss_box`` (squared error), ``loss_objectness`` and ``loss_classifier`` (BCE)."""
        assigned = self.build_targets(outputs, targets)
        num_gt = max(1, sum(int(t["boxes"].shape[0]) for t in targets))
        # Ignore: negatives whose decoded box overlaps a ground truth by > ignore_thresh.
        with torch.no_grad():
            boxes = self.decode([o.detach() for o in outputs])
            best_iou = torch.zeros(boxes.shape[:2], device=boxes.device, dtype=boxes.dtype)
            for i, target in enumerate(targets):
                if target["boxes"].numel():
                    best_iou[i] = box_iou(boxes[i], target["boxes"]).max(1).values
        image_area = float(input_size[0] * input_size[1])
        loss_box = loss_obj = loss_cls = outputs[0].sum() * 0
        offset = 0
        for level, out in enumerate(outputs):
            b, a, h, w, _ = out.shape
            image, anchor, gy, gx, box_t, labels, area = assigned[level]
            obj_target = torch.zeros(out.shape[:4], device=out.device, dtype=out.dtype)
            obj_target[image, anchor, gy, gx] = 1.0
            ignore = best_iou[:, offset:offset + a * h * w].view(b, a, h, w) > self.ignore_thresh
            weight = (~ignore | (obj_target > 0)).to(out.dtype)
            offset += a * h * w
            loss_obj = loss_obj + F.binary_cross_entropy_with_logits(
                out[..., 4], obj_target, weight=weight, reduction="sum")
            if image.numel() == 0:
                continue
            pred = out[image, anchor, gy, gx]  # (M, 5 + C)
            scale = (2.0 - area / image_area)[:, None]
            loss_box = loss_box + (scale * (torch.cat([pred[:, :2].sigmoid(), pred[:, 2:4]], 1)
                                            - box_t) ** 2).sum()
            cls_t = F.one_hot(labels - 1, self.num_classes - 1).to(out.dtype)
            loss_cls = loss_cls + F.binary_cross_entropy_with_logits(pred[:, 5:], cls_t,
                                                                     reduction="sum")
        return {"loss_box": loss_box / num_gt, "loss_objectness": loss_obj / num_gt,
                "loss_classifier": loss_cls / num_gt}




def yolov3(config: YOLOv3Config, *, num_classes: int = 81, weights_backbone: str | None = None,
           trainable_backbone_layers: int | None = None, ignore_thresh: float = 0.5,
           score_thresh: float = 0.005, nms_thresh: float = 0.45, detections_per_img: int = 100,
           pre_nms_top_n: int = 1000, image_mean: Sequence[float] = (0.0, 0.0, 0.0),
           image_std: Sequence[float] = (1.0, 1.0, 1.0), **overrides: Any) -> YOLOv3:
    """Build a YOLOv3 from ``config``.

    Args:
        config: the architecture.
        num_classes: classes including the background (81: COCO's 80 + background).
        weights_backbone: ``None`` or a path/``"torchvision"`` for the backbone classifier.
        trainable_backbone_layers: backbone stages that train, counted from the deepest.
        **overrides: fields of ``config`` to replace, e.g. ``anchors=[[w, h], ...]`` (nine
            pairs, any order), ``min_size=320``, ``neck_widths=(32, 64, 128)``.

    Raises:
        TypeError: a keyword that is neither a builder keyword nor a config field.
    """
    if "neck_widths" in overrides:
        overrides["neck_widths"] = tuple(overrides["neck_widths"])
    config = apply_size_overrides(config, overrides, model="YOLOv3")
    body = create_backbone(config.backbone, out_features=config.levels,
                           trainable_layers=trainable_backbone_layers,
                           weights=weights_backbone, **dict(config.backbone_kwargs))
    neck = YOLOv3Neck(list(body.out_channels.values()), config.neck_widths)
    if config.body_name:
        body = AsBody(body)
    head = YOLOv3Head(config.neck_widths, config.anchors_per_scale, num_classes - 1)
    transform = DetectionTransform(config.min_size, config.max_size, image_mean=image_mean,
                                   image_std=image_std, size_divisible=32)
    return YOLOv3(body, neck, head, anchors=config.anchors, transform=transform,
                  num_classes=num_classes, ignore_thresh=ignore_thresh,
                  score_thresh=score_thresh, nms_thresh=nms_thresh,
                  detections_per_img=detections_per_img, pre_nms_top_n=pre_nms_top_n,
                  config=config)


YOLOV3_DARKNET53 = YOLOv3Config()
YOLOV3_SMALL = YOLOv3Config(
    neck_widths=(32, 64, 128), anchors=scaled_anchors(COCO_ANCHORS, 256 / 416), min_size=256,
    max_size=256, backbone_kwargs=(("width_mult", 0.25), ("depths", (1, 1, 2, 2, 1))))
#: The demo detector's backbone (``fasterrcnn_mobilenet_v2_050_fpn``: MobileNetV2 x0.5, C3-C5 of
#: 16, 48 and 1280 channels) under its parameter names, for ``train --init``.
YOLOV3_MOBILENET_V2_050 = YOLOv3Config(
    "mobilenet_v2", neck_widths=(64, 128, 256), anchors=scaled_anchors(COCO_ANCHORS, 256 / 416),
    min_size=256, max_size=256, backbone_kwargs=(("width_mult", 0.5),), body_name=True)


@register_model(task="detection")
def yolov3_darknet53(*, num_classes: int = 81, **kwargs) -> YOLOv3:
    """The paper's YOLOv3 on Darknet-53 at 416 pixels (61.9 M parameters with 80 classes)."""
    return yolov3(YOLOV3_DARKNET53, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def yolov3_small(*, num_classes: int = 81, **kwargs) -> YOLOv3:
    """CPU-sized YOLOv3: Darknet at 1/4 width with 1-1-2-2-1 blocks, 256 pixels."""
    return yolov3(YOLOV3_SMALL, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def yolov3_mobilenet_v2_050(*, num_classes: int = 81, **kwargs) -> YOLOv3:
    """CPU-sized YOLOv3 on the demo detector's MobileNetV2 x0.5 (named as its backbone, so
    ``train --init`` of that detector's weights starts it trained), a 64-128-256 neck, 256
    pixels. The backbone was trained on ImageNet-normalised inputs, so this variant normalises
    so too (Darknet's variants only scale to [0, 1])."""
    kwargs.setdefault("image_mean", IMAGENET_MEAN)
    kwargs.setdefault("image_std", IMAGENET_STD)
    return yolov3(YOLOV3_MOBILENET_V2_050, num_classes=num_classes, **kwargs)
