"""RetinaNet: a one-stage detector trained with the focal loss.

Paper: Lin, Goyal, Girshick, He, Dollar, "Focal Loss for Dense Object Detection", 2017,
arXiv:1708.02002.

A ResNet + FPN backbone gives ``P3..P7`` (Sec. 4: ``P6`` by a 3x3/2 convolution, ``P7`` by ReLU and
another 3x3/2; no ``P2``, "for computational reasons"); at every position of every level sit
``A = 9`` anchors (3 scales ``2^0, 2^(1/3), 2^(2/3)`` x 3 aspect ratios 1:2, 1:1, 2:1, areas
``32^2..512^2`` on ``P3..P7``). Two small fully convolutional subnets, shared across levels but
*not* with each other, run on every level: the classification subnet (4 x [3x3 conv, 256, ReLU],
then a 3x3 conv to ``K A`` sigmoid outputs -- one binary classifier per class, no background
class) and the box subnet (the same, ending in ``4 A`` class-agnostic offsets). Anchors match a
ground truth at IoU >= 0.5, are background below 0.4 and ignored in between. The loss is
``L = L_cls + lambda L_reg``: the alpha-weighted focal loss (eq. 5, ``alpha = 0.25``,
``gamma = 2``) summed over all non-ignored anchors and divided by the number of positive
anchors, plus a box loss on the positives only. The last classification conv's bias starts at
``-log((1 - pi) / pi)``, ``pi = 0.01`` (Sec. 4.1, "Initialization"), so that the ~100k
background anchors do not swamp the first iterations. Inference (Sec. 4.1): per level, the top
1000 predictions scoring above 0.05 are decoded, then merged and non-maximum suppressed at 0.5.

``retinanet_resnet50_fpn`` is torchvision's model: same structure, defaults and builder keywords
(``min_size``, ``max_size``, ``image_mean``, ``image_std``, ``score_thresh``, ``nms_thresh``,
``detections_per_img``, ``fg_iou_thresh``, ``bg_iou_thresh``, ``topk_candidates``,
``weights_backbone``, ``trainable_backbone_layers``), and
``convert_torchvision_state_dict("retinanet_resnet50_fpn", sd)`` maps its state dict onto ours;
the tests check equal detections and training losses.

Departures from the paper (torchvision's, unless said otherwise):
    * ``P6`` is computed from ``P5`` (torchvision's ``LastLevelP6P7(256, 256)``), not from
      ``C5``; ``p6_input="c5"`` gives the paper's (the CPU variants use it).
    * The box loss is L1 (``box_loss="l1"``), not smooth L1; ``box_loss="smooth_l1"`` gives the
      paper's (``beta = 1/9``). Box targets are unweighted ``(dx, dy, dw, dh)``.
    * Every anchor tied for a ground truth's highest IoU is positive too ("low-quality matches",
      so each ground truth gets an anchor).
    * The losses are normalised per image and averaged over the batch; ``detections_per_img``
      is 300 (the paper keeps 100 for COCO); heads start from ``N(0, 0.01)`` weights.
    * The classifier keeps a column for class 0 (the background index of the library's labels):
      it is trained as always-negative and never reported. So there are ``num_classes`` sigmoid
      outputs for ``num_classes - 1`` object classes, as in torchvision.
    * ``cls_loss="bce"`` (ours) trains with plain binary cross-entropy (``gamma = 0``, no
      alpha), the paper's baseline for the class-imbalance claim (Table 1a).
    * The CPU-sized variant (ResNet-18) is ours: 64-channel FPN and subnets, anchors
      ``16..256`` (x 3 scales) and 256-pixel images, for the composited scenes of
      :mod:`modernvision.data`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.losses import sigmoid_focal_loss, smooth_l1_loss
from modernvision.models.backbone import create_backbone
from modernvision.models.detection._generalized import Detector, replace_config
from modernvision.models.detection._structures import Detections, ImageBatch
from modernvision.models.detection.transform import IMAGENET_MEAN, IMAGENET_STD, DetectionTransform
from modernvision.models.necks.fpn import ConvP6P7, FeaturePyramidNetwork, FPNBackbone
from modernvision.models.registry import StateDict, register_model
from modernvision.ops import (
    AnchorGenerator,
    BoxCoder,
    Matcher,
    batched_nms,
    box_iou,
    clip_boxes_to_image,
)

__all__ = [
    "RetinaNet",
    "RetinaNetConfig",
    "RetinaNetHead",
    "convert_torchvision_retinanet",
    "retinanet",
    "retinanet_mobilenet_v2_050_fpn",
    "retinanet_resnet18_fpn",
    "retinanet_resnet50_fpn",
]


def _octave_sizes(base: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Per level, the sizes ``x, x 2^(1/3), x 2^(2/3)`` (truncated to ints, as torchvision)."""
    return tuple((x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3))) for x in base)


@dataclass(frozen=True)
class RetinaNetConfig:
    """The architecture of a RetinaNet variant.

    Attributes:
        backbone: a classifier of the registry, used headless (``"resnet50"``).
        levels: its stages the FPN uses, finest first (``("c3", "c4", "c5")``).
        fpn_channels: width of the pyramid and of both subnets (256).
        p6_input: ``"p5"`` (torchvision) or ``"c5"`` (the paper) feeds the ``P6`` conv.
        anchor_sizes: per pyramid level, the anchor sizes (square roots of the areas).
        aspect_ratios: ``height / width`` of the anchors, the same at every level.
        head_convs: 3x3 conv + ReLU layers in each subnet before its output conv (4).
        prior_probability: ``pi``, the initial foreground probability of every output (0.01).
        min_size: shorter image side after resizing (several: drawn per training image).
        max_size: longest the longer side may become.
        backbone_kwargs: keyword arguments of the backbone's builder, as pairs.
    """

    backbone: str
    levels: tuple[str, ...] = ("c3", "c4", "c5")
    fpn_channels: int = 256
    p6_input: Literal["p5", "c5"] = "p5"
    anchor_sizes: tuple[tuple[float, ...], ...] = _octave_sizes((32, 64, 128, 256, 512))
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    head_convs: int = 4
    prior_probability: float = 0.01
    min_size: int | tuple[int, ...] = 800
    max_size: int = 1333
    backbone_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.levels:
            raise InvalidArgumentError("levels must name at least one backbone stage")
        if self.p6_input not in ("p5", "c5"):
            raise InvalidArgumentError(f"p6_input must be 'p5' or 'c5', got {self.p6_input!r}")
        if len(self.anchor_sizes) != len(self.levels) + 2:
            raise InvalidArgumentError(
                f"anchor_sizes needs one tuple per pyramid level ({len(self.levels) + 2}: "
                f"{self.levels} plus P6, P7), got {len(self.anchor_sizes)}")
        if len({len(s) for s in self.anchor_sizes}) != 1:
            raise InvalidArgumentError(
                f"the subnets are shared across levels, so every level needs as many anchor "
                f"sizes; got {self.anchor_sizes}")
        for name in ("fpn_channels", "max_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.head_convs, int) or self.head_convs < 0:
            raise InvalidArgumentError(f"head_convs must be an int >= 0, got {self.head_convs!r}")
        if not 0 < self.prior_probability < 1:
            raise InvalidArgumentError(
                f"prior_probability must be in (0, 1), got {self.prior_probability!r}")


def _subnet(channels: int, depth: int) -> nn.Sequential:
    """``depth`` x (3x3 conv, ReLU), weights ``N(0, 0.01)``, zero biases (Sec. 4.1)."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        conv = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.normal_(conv.weight, std=0.01)
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _per_anchor(out: Tensor, columns: int) -> Tensor:
    # (B, A * K, H, W) -> (B, H, W, A, K) -> (B, H W A, K): position-major, as the anchors.
    b, _, h, w = out.shape
    return out.view(b, -1, columns, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, columns)


class RetinaNetClassificationHead(nn.Module):
    """The classification subnet: ``head_convs`` x (conv3x3, ReLU), then ``K A`` logits.

    Args:
        in_channels: channels of every pyramid level.
        num_anchors: anchors per position ``A``.
        num_classes: sigmoid outputs per anchor ``K``.
        depth: the hidden conv layers (4).
        prior_probability: ``pi`` of the bias initialisation.
    """

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int, *, depth: int = 4,
                 prior_probability: float = 0.01) -> None:
        super().__init__()
        self.conv = _subnet(in_channels, depth)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, padding=1)
        nn.init.normal_(self.cls_logits.weight, std=0.01)
        # sigmoid(b) = pi at the start: b = -log((1 - pi) / pi).
        nn.init.constant_(self.cls_logits.bias,
                          -math.log((1 - prior_probability) / prior_probability))
        self.num_classes = num_classes

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Per level ``(B, C, H, W)`` -> per level ``(B, H W A, K)`` logits."""
        return [_per_anchor(self.cls_logits(self.conv(f)), self.num_classes) for f in features]


class RetinaNetRegressionHead(nn.Module):
    """The box subnet: ``head_convs`` x (conv3x3, ReLU), then ``4 A`` class-agnostic offsets.

    Args:
        in_channels: channels of every pyramid level.
        num_anchors: anchors per position ``A``.
        depth: the hidden conv layers (4).
    """

    def __init__(self, in_channels: int, num_anchors: int, *, depth: int = 4) -> None:
        super().__init__()
        self.conv = _subnet(in_channels, depth)
        self.bbox_reg = nn.Conv2d(in_channels, num_anchors * 4, 3, padding=1)
        nn.init.normal_(self.bbox_reg.weight, std=0.01)
        nn.init.zeros_(self.bbox_reg.bias)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Per level ``(B, C, H, W)`` -> per level ``(B, H W A, 4)`` offsets."""
        return [_per_anchor(self.bbox_reg(self.conv(f)), 4) for f in features]


class RetinaNetHead(nn.Module):
    """The two subnets (unshared with each other, shared across levels)."""

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int, *, depth: int = 4,
                 prior_probability: float = 0.01) -> None:
        super().__init__()
        self.classification_head = RetinaNetClassificationHead(
            in_channels, num_anchors, num_classes, depth=depth,
            prior_probability=prior_probability)
        self.regression_head = RetinaNetRegressionHead(in_channels, num_anchors, depth=depth)

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        return self.classification_head(features), self.regression_head(features)


class RetinaNet(Detector):
    """RetinaNet composed of its parts.

    Args:
        backbone: images ``(B, 3, H, W)`` -> ``dict`` of pyramid levels, finest first.
        anchor_generator: the anchors of every level (as many per position at every level).
        head: the classification and box subnets.
        transform: the input transform or ``None``.
        num_classes: classes including the background.
        cls_loss: ``"focal"`` (the paper) or ``"bce"`` (plain binary cross-entropy).
        focal_alpha: weight of the positives (``None``: no weighting).
        focal_gamma: the focusing parameter.
        box_loss: ``"l1"`` (torchvision) or ``"smooth_l1"`` (the paper, ``beta = 1/9``).
        box_loss_weight: ``lambda`` of ``L = L_cls + lambda L_reg`` (1).
        fg_iou_thresh: an anchor with IoU ``>=`` this matches a ground truth (0.5).
        bg_iou_thresh: below this it is background (0.4); in between it is ignored.
        score_thresh: detections scoring at most this are dropped (0.05).
        nms_thresh: the per-class NMS IoU (0.5).
        detections_per_img: detections kept per image.
        topk_candidates: predictions kept per level before NMS (1000).
        config: the configuration it was built from, if any.
    """

    def __init__(
        self,
        backbone: nn.Module,
        anchor_generator: AnchorGenerator,
        head: RetinaNetHead,
        *,
        transform: DetectionTransform | None,
        num_classes: int,
        cls_loss: Literal["focal", "bce"] = "focal",
        focal_alpha: float | None = 0.25,
        focal_gamma: float = 2.0,
        box_loss: Literal["l1", "smooth_l1"] = "l1",
        box_loss_weight: float = 1.0,
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.4,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 300,
        topk_candidates: int = 1000,
        config: RetinaNetConfig | None = None,
    ) -> None:
        super().__init__(transform, num_classes=num_classes)
        if cls_loss not in ("focal", "bce"):
            raise InvalidArgumentError(f"cls_loss must be 'focal' or 'bce', got {cls_loss!r}")
        if box_loss not in ("l1", "smooth_l1"):
            raise InvalidArgumentError(
                f"box_loss must be 'l1' or 'smooth_l1', got {box_loss!r}")
        if not box_loss_weight >= 0:
            raise InvalidArgumentError(f"box_loss_weight must be >= 0, got {box_loss_weight!r}")
        self.backbone = backbone
        self.anchor_generator = anchor_generator
        self.head = head
        self.cls_loss, self.focal_alpha, self.focal_gamma = cls_loss, focal_alpha, focal_gamma
        self.box_loss, self.box_loss_weight = box_loss, box_loss_weight
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.topk_candidates = topk_candidates
        self.config = config

    def extra_repr(self) -> str:
        return (f"cls_loss={self.cls_loss!r}, focal_alpha={self.focal_alpha}, "
                f"focal_gamma={self.focal_gamma}, box_loss={self.box_loss!r}, "
                f"box_loss_weight={self.box_loss_weight}")

    def forward_batch(
        self, batch: ImageBatch, targets: list[dict[str, Tensor]] | None
    ) -> dict[str, Tensor] | list[Detections]:
        features = list(self.backbone(batch.tensors).values())
        cls_logits, box_deltas = self.head(features)
        anchors = self.anchor_generator(batch.tensors, features)
        if targets is not None:
            return self.compute_loss(targets, torch.cat(cls_logits, 1), torch.cat(box_deltas, 1),
                                     anchors)
        return self.detect(cls_logits, box_deltas, anchors, batch.image_sizes)

    def match(self, targets: list[dict[str, Tensor]], anchors: list[Tensor]) -> list[Tensor]:
        """Per image, ``Tensor[A_total]``: the matched ground truth, -1 background, -2 ignored."""
        out = []
        for target, anchors_i in zip(targets, anchors):
            if target["boxes"].numel() == 0:
                out.append(torch.full((anchors_i.shape[0],), Matcher.BELOW_LOW_THRESHOLD,
                                      dtype=torch.int64, device=anchors_i.device))
            else:
                out.append(self.matcher(box_iou(target["boxes"], anchors_i)))
        return out

    def compute_loss(
        self, targets: list[dict[str, Tensor]], cls_logits: Tensor, box_deltas: Tensor,
        anchors: list[Tensor],
    ) -> dict[str, Tensor]:
        """``{"classification": L_cls, "bbox_regression": lambda L_reg}``, each normalised by
        the image's positive anchors (at least 1) and averaged over the images.

        Args:
            cls_logits: ``(B, A_total, K)``.
            box_deltas: ``(B, A_total, 4)``.
        """
        cls_losses, box_losses = [], []
        for target, logits, deltas, anchors_i, matched in zip(
                targets, cls_logits, box_deltas, anchors, self.match(targets, anchors)):
            foreground = torch.where(matched >= 0)[0]
            num_fg = max(1, foreground.numel())
            gt_classes = torch.zeros_like(logits)
            gt_classes[foreground, target["labels"][matched[foreground]]] = 1.0
            valid = matched != Matcher.BETWEEN_THRESHOLDS
            if self.cls_loss == "focal":
                cls = sigmoid_focal_loss(logits[valid], gt_classes[valid], self.focal_alpha,
                                         self.focal_gamma, reduction="sum")
            else:
                cls = sigmoid_focal_loss(logits[valid], gt_classes[valid], None, 0.0,
                                         reduction="sum")
            cls_losses.append(cls / num_fg)
            goal = self.box_coder.encode(target["boxes"][matched[foreground]],
                                         anchors_i[foreground])
            beta = 0.0 if self.box_loss == "l1" else 1 / 9
            box_losses.append(smooth_l1_loss(deltas[foreground], goal, beta=beta,
                                             reduction="sum") / num_fg)
        n = len(targets)
        return {"classification": torch.stack(cls_losses).sum() / n,
                "bbox_regression": self.box_loss_weight * torch.stack(box_losses).sum() / n}

    def detect(
        self, cls_logits: list[Tensor], box_deltas: list[Tensor], anchors: list[Tensor],
        image_sizes: Sequence[tuple[int, int]],
    ) -> list[Detections]:
        """Per level top-k above ``score_thresh``, decoded and clipped; then per-class NMS."""
        per_level = [len(c[0]) for c in cls_logits]
        results = []
        for i, size in enumerate(image_sizes):
            level_anchors = anchors[i].split(per_level)
            boxes, scores, labels = [], [], []
            for logits, deltas, anchors_l in zip(cls_logits, box_deltas, level_anchors):
                # Class 0 is the background column: never a detection.
                prob = torch.sigmoid(logits[i][:, 1:]).flatten()
                keep = torch.where(prob > self.score_thresh)[0]
                prob, order = prob[keep].topk(min(self.topk_candidates, keep.numel()))
                keep = keep[order]
                k = logits.shape[-1] - 1
                anchor_index = torch.div(keep, k, rounding_mode="floor")
                decoded = self.box_coder.decode(deltas[i][anchor_index], anchors_l[anchor_index])
                boxes.append(clip_boxes_to_image(decoded, size))
                scores.append(prob)
                labels.append(keep % k + 1)
            all_boxes, all_scores, all_labels = torch.cat(boxes), torch.cat(scores), \
                torch.cat(labels)
            keep = batched_nms(all_boxes, all_scores, all_labels, self.nms_thresh)
            keep = keep[: self.detections_per_img]
            results.append(Detections(all_boxes[keep], all_scores[keep], all_labels[keep]))
        return results


def retinanet(
    config: RetinaNetConfig,
    *,
    num_classes: int = 91,
    weights_backbone: str | None = None,
    trainable_backbone_layers: int | None = None,
    image_mean: Sequence[float] = IMAGENET_MEAN,
    image_std: Sequence[float] = IMAGENET_STD,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 300,
    fg_iou_thresh: float = 0.5,
    bg_iou_thresh: float = 0.4,
    topk_candidates: int = 1000,
    loss: Literal["focal", "bce"] = "focal",
    focal_alpha: float | None = 0.25,
    focal_gamma: float = 2.0,
    box_loss: Literal["l1", "smooth_l1"] = "l1",
    box_loss_weight: float = 1.0,
    **overrides: Any,
) -> RetinaNet:
    """Build a RetinaNet from ``config`` with torchvision's builder keywords.

    Args:
        config: the architecture.
        num_classes: classes including the background (COCO's 91 by default, as torchvision).
        weights_backbone: ``None`` (random), ``"torchvision"`` or a path to a torchvision
            classifier state dict; pretrained backbones get frozen batch norm.
        trainable_backbone_layers: backbone stages that train, from ``c5`` (0..5); default 3
            with pretrained weights, else 5.
        loss: the classification loss, ``"focal"`` or ``"bce"`` (see :class:`RetinaNet`).
        **overrides: fields of ``config`` to replace (``min_size=512``, ``fpn_channels=64``,
            ...); the other keywords are torchvision's and :class:`RetinaNet`'s.

    Raises:
        TypeError: a keyword that is neither a builder keyword nor a config field.
    """
    config = replace_config(config, overrides, model="RetinaNet")
    pretrained = weights_backbone is not None
    if trainable_backbone_layers is None:
        trainable_backbone_layers = 3 if pretrained else 5
    body = create_backbone(config.backbone, out_features=config.levels,
                           trainable_layers=trainable_backbone_layers, frozen_bn=pretrained,
                           weights=weights_backbone, **dict(config.backbone_kwargs))
    in_channels = list(body.out_channels.values())
    width = config.fpn_channels
    p6_channels = width if config.p6_input == "p5" else in_channels[-1]
    if config.p6_input == "c5" and p6_channels == width:
        raise InvalidArgumentError(
            f"p6_input='c5' needs C5's width ({p6_channels}) to differ from fpn_channels "
            f"({width}): ConvP6P7 tells the two inputs apart by their width")
    fpn = FeaturePyramidNetwork(in_channels, width, extra_levels=ConvP6P7(p6_channels, width))
    anchors = AnchorGenerator(config.anchor_sizes,
                              (config.aspect_ratios,) * len(config.anchor_sizes))
    head = RetinaNetHead(width, anchors.num_anchors_per_location()[0], num_classes,
                         depth=config.head_convs, prior_probability=config.prior_probability)
    transform = DetectionTransform(config.min_size, config.max_size, image_mean=image_mean,
                                   image_std=image_std)
    return RetinaNet(
        FPNBackbone(body, fpn), anchors, head, transform=transform, num_classes=num_classes,
        cls_loss=loss, focal_alpha=focal_alpha, focal_gamma=focal_gamma, box_loss=box_loss,
        box_loss_weight=box_loss_weight, fg_iou_thresh=fg_iou_thresh,
        bg_iou_thresh=bg_iou_thresh, score_thresh=score_thresh, nms_thresh=nms_thresh,
        detections_per_img=detections_per_img, topk_candidates=topk_candidates, config=config)


def convert_torchvision_retinanet(state_dict: StateDict) -> StateDict:
    """torchvision's ``RetinaNet`` state dict -> ours. Backbone and FPN names are the same; the
    subnets' ``Conv2dNormActivation`` blocks (``conv.{i}.0``) are flat here (``conv.{2 i}``,
    each followed by its ReLU)."""
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] == "head" and parts[2] == "conv":
            # head.<subnet>.conv.<i>.0.<param> -> head.<subnet>.conv.<2 i>.<param>
            parts = [*parts[:3], str(2 * int(parts[3])), *parts[5:]]
        out[".".join(parts)] = value
    return out


# Configurations. ResNet-50's is the paper's (torchvision's); ResNet-18's is sized for the
# 2-core CPU and the 256x256 composited scenes (objects 20-90 pixels).
RESNET50_FPN = RetinaNetConfig("resnet50")
RESNET18_FPN = RetinaNetConfig("resnet18", fpn_channels=64, p6_input="c5",
                               anchor_sizes=_octave_sizes((16, 32, 64, 128, 256)),
                               min_size=256, max_size=512)
#: The demo detector's backbone and pyramid (``fasterrcnn_mobilenet_v2_050_fpn``: MobileNetV2
#: x0.5, C3-C5, 64 channels, the same parameter names), so ``--init`` of its weights carries
#: the backbone and the FPN over; P6 from P5 (the 64-channel pyramid is cheaper than C5).
MOBILENET_V2_050_FPN = RetinaNetConfig("mobilenet_v2", fpn_channels=64, p6_input="p5",
                                       anchor_sizes=_octave_sizes((16, 32, 64, 128, 256)),
                                       min_size=256, max_size=512,
                                       backbone_kwargs=(("width_mult", 0.5),))


@register_model(task="detection", torchvision="retinanet_resnet50_fpn",
                converter=convert_torchvision_retinanet)
def retinanet_resnet50_fpn(*, num_classes: int = 91, **kwargs) -> RetinaNet:
    """torchvision's RetinaNet ResNet-50 FPN (34.0 M parameters with 91 classes)."""
    return retinanet(RESNET50_FPN, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def retinanet_resnet18_fpn(*, num_classes: int = 91, **kwargs) -> RetinaNet:
    """CPU-sized: ResNet-18, 64-channel P3-P7 and subnets, P6 from C5, 256-pixel images."""
    return retinanet(RESNET18_FPN, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def retinanet_mobilenet_v2_050_fpn(*, num_classes: int = 91, **kwargs) -> RetinaNet:
    """CPU-sized: MobileNetV2 x0.5, 64-channel P3-P7 and subnets, 256-pixel images; its
    backbone and FPN are named as the demo Faster R-CNN's, so its weights can initialise them
    (``train --init``)."""
    return retinanet(MOBILENET_V2_050_FPN, num_classes=num_classes, **kwargs)
