"""Faster R-CNN, with a single feature map, a pyramid without top-down path, or FPN.

Papers: Ren, He, Girshick, Sun, "Faster R-CNN: Towards Real-Time Object Detection with Region
Proposal Networks", 2015, arXiv:1506.01497; Lin, Dollar, Girshick, He, Hariharan, Belongie,
"Feature Pyramid Networks for Object Detection", 2017, arXiv:1612.03144.

A backbone computes feature maps; the Region Proposal Network (:mod:`._rpn`) proposes boxes
from anchors on them; the RoI heads (:mod:`._roi_heads`) pool each proposal's features, classify
it and refine its box per class. The multi-scale designs the course compares are variants of
:class:`FasterRCNNConfig` (``neck``):

* ``"none"`` -- one map (``C4`` or ``C5``), 3 anchor scales x 3 aspect ratios at each position
  (the paper's Sec. 3.1.1: 128^2, 256^2, 512^2 and 1:2, 1:1, 2:1);
* ``"pyramid"`` -- several stages, each brought to one width by a 1x1 and smoothed by a 3x3
  convolution, *without* the top-down path (FPN's Table 1 (c)), each level with its own RPN head
  (``shared_rpn_head=False``) and one anchor scale;
* ``"fpn"`` -- the Feature Pyramid Network: ``P2..P5`` plus a max-pooled ``P6`` for the RPN,
  one RPN head shared by all levels, one anchor scale (32^2..512^2) and 3 ratios per level, RoIs
  pooled from the level of FPN's eq. (1), a 2x1024 MLP head.

``fasterrcnn_resnet50_fpn`` is torchvision's model: same structure, defaults and builder
keywords (``min_size``, ``max_size``, ``rpn_pre_nms_top_n_train``/``_test``,
``rpn_post_nms_top_n_train``/``_test``, ``rpn_nms_thresh``, ``rpn_fg_iou_thresh``,
``rpn_bg_iou_thresh``, ``rpn_batch_size_per_image``, ``rpn_positive_fraction``,
``rpn_score_thresh``, ``box_score_thresh``, ``box_nms_thresh``, ``box_detections_per_img``,
``box_fg_iou_thresh``, ``box_bg_iou_thresh``, ``box_batch_size_per_image``,
``box_positive_fraction``, ``bbox_reg_weights``, ``trainable_backbone_layers``,
``weights_backbone``, ``image_mean``, ``image_std``), and
``convert_torchvision_state_dict("fasterrcnn_resnet50_fpn", sd)`` maps torchvision's state dict
onto it; the tests check equal proposals, detections and training losses.

Departures from the papers (torchvision's, unless said otherwise):
    * RoIAlign (Mask R-CNN) instead of RoI max pooling, 2 samples per bin side.
    * Images resized to a shorter side of 800 (max 1333), not 600 (Sec. 3.3).
    * Both stages train jointly ("approximate joint training", Sec. 3.2), not the paper's
      4-step alternating scheme.
    * Batch norm: frozen (:class:`~modernvision.layers.FrozenBatchNorm2d`) when the backbone
      starts from pretrained weights (``weights_backbone``), else ordinary batch norm, as
      torchvision. Unlike torchvision, ``trainable_backbone_layers`` is honoured also without
      pretrained weights (torchvision then forces 5 with a warning); the default is 5 then.
    * ``rpn_sampling="hard"`` is the course notes' option (hard negatives), not the paper's.
    * The CPU-sized variants (ResNet-18, MobileNetV2) are ours: narrower FPN, smaller anchors
      and images, sized for the composited scenes of :mod:`modernvision.data`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.backbone import create_backbone
from modernvision.models.detection._generalized import Detector, replace_config
from modernvision.models.detection._roi_heads import FastRCNNPredictor, RoIHeads, TwoMLPHead
from modernvision.models.detection._rpn import PerLevelRPNHead, RegionProposalNetwork, RPNHead
from modernvision.models.detection._structures import Detections, ImageBatch
from modernvision.models.detection.transform import IMAGENET_MEAN, IMAGENET_STD, DetectionTransform
from modernvision.models.necks.fpn import (
    ConvP6P7,
    FeaturePyramidNetwork,
    FPNBackbone,
    MaxPoolP6,
    MultiScaleRoIAlign,
)
from modernvision.models.registry import StateDict, register_model
from modernvision.ops import AnchorGenerator

__all__ = [
    "FasterRCNN",
    "FasterRCNNConfig",
    "convert_torchvision_faster_rcnn",
    "faster_rcnn",
    "fasterrcnn_mobilenet_v2_050_fpn",
    "fasterrcnn_mobilenet_v2_fpn",
    "fasterrcnn_resnet18_c4",
    "fasterrcnn_resnet18_fpn",
    "fasterrcnn_resnet18_pyramid",
    "fasterrcnn_resnet50_c4",
    "fasterrcnn_resnet50_fpn",
]

Neck = Literal["none", "pyramid", "fpn"]
ExtraLevel = Literal["none", "maxpool", "p6p7"]


@dataclass(frozen=True)
class FasterRCNNConfig:
    """The architecture of a Faster R-CNN variant.

    Attributes:
        backbone: a classifier of the registry, used headless (``"resnet50"``).
        levels: its stages the detector uses, finest first (``("c2", "c3", "c4", "c5")``).
        neck: ``"none"`` (one stage as it is), ``"pyramid"`` (lateral + smoothing, no
            top-down) or ``"fpn"``.
        fpn_channels: width of the pyramid (256 in the FPN paper).
        extra_level: coarser RPN-only level(s): ``"maxpool"`` (FPN's ``P6``), ``"p6p7"``
            (RetinaNet's) or ``"none"``.
        anchor_sizes: per RPN level, the anchor sizes (square roots of the areas).
        aspect_ratios: ``height / width`` of the anchors, the same at every level.
        shared_rpn_head: one RPN head for all levels (FPN) or one per level.
        representation_size: width of FC6 and FC7.
        roi_output_size: RoI features are pooled to this square grid (7).
        roi_sampling_ratio: RoIAlign samples per bin side (2).
        min_size: shorter image side after resizing (several: drawn per training image).
        max_size: longest the longer side may become.
        backbone_kwargs: keyword arguments of the backbone's builder, as pairs.
    """

    backbone: str
    levels: tuple[str, ...] = ("c2", "c3", "c4", "c5")
    neck: Neck = "fpn"
    fpn_channels: int = 256
    extra_level: ExtraLevel = "maxpool"
    anchor_sizes: tuple[tuple[float, ...], ...] = ((32,), (64,), (128,), (256,), (512,))
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    shared_rpn_head: bool = True
    representation_size: int = 1024
    roi_output_size: int = 7
    roi_sampling_ratio: int = 2
    min_size: int | tuple[int, ...] = 800
    max_size: int = 1333
    backbone_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.neck not in ("none", "pyramid", "fpn"):
            raise InvalidArgumentError(
                f"neck must be 'none', 'pyramid' or 'fpn', got {self.neck!r}")
        if self.extra_level not in ("none", "maxpool", "p6p7"):
            raise InvalidArgumentError(
                f"extra_level must be 'none', 'maxpool' or 'p6p7', got {self.extra_level!r}")
        if not self.levels:
            raise InvalidArgumentError("levels must name at least one backbone stage")
        if self.neck == "none" and (len(self.levels) != 1 or self.extra_level != "none"):
            raise InvalidArgumentError(
                "neck='none' uses one stage as it is: give one level (e.g. ('c4',)) and "
                f"extra_level='none', got levels={self.levels}, extra_level={self.extra_level!r}")
        if len(self.anchor_sizes) != self.num_rpn_levels:
            raise InvalidArgumentError(
                f"anchor_sizes needs one tuple per RPN level ({self.num_rpn_levels}: {self.levels}"
                f" plus {self.extra_level!r} extra), got {len(self.anchor_sizes)}")
        for name in ("fpn_channels", "representation_size", "roi_output_size", "max_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")

    @property
    def num_rpn_levels(self) -> int:
        return len(self.levels) + {"none": 0, "maxpool": 1, "p6p7": 2}[self.extra_level]


class FasterRCNN(Detector):
    """Faster R-CNN composed of its parts.

    Args:
        backbone: images ``(B, 3, H, W)`` -> ``dict`` of feature maps, with ``out_channels``.
        rpn: the region proposal network.
        roi_heads: the second stage.
        transform: the input transform (:class:`DetectionTransform`) or ``None``.
        num_classes: classes including the background.
        config: the configuration it was built from, if any (kept for reference).
    """

    def __init__(
        self,
        backbone: nn.Module,
        rpn: RegionProposalNetwork,
        roi_heads: RoIHeads,
        *,
        transform: DetectionTransform | None,
        num_classes: int,
        config: FasterRCNNConfig | None = None,
    ) -> None:
        super().__init__(transform, num_classes=num_classes)
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.config = config

    def forward_batch(
        self, batch: ImageBatch, targets: list[dict[str, Tensor]] | None
    ) -> dict[str, Tensor] | list[Detections]:
        features = self.backbone(batch.tensors)
        proposals, rpn_losses = self.rpn(batch, features, targets)
        detections, roi_losses = self.roi_heads(features, proposals, batch.image_sizes, targets)
        if targets is not None:
            return {**rpn_losses, **roi_losses}
        return detections


def faster_rcnn(
    config: FasterRCNNConfig,
    *,
    num_classes: int = 91,
    weights_backbone: str | None = None,
    trainable_backbone_layers: int | None = None,
    image_mean: Sequence[float] = IMAGENET_MEAN,
    image_std: Sequence[float] = IMAGENET_STD,
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 1000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_test: int = 1000,
    rpn_nms_thresh: float = 0.7,
    rpn_fg_iou_thresh: float = 0.7,
    rpn_bg_iou_thresh: float = 0.3,
    rpn_batch_size_per_image: int = 256,
    rpn_positive_fraction: float = 0.5,
    rpn_score_thresh: float = 0.0,
    rpn_sampling: Literal["random", "hard"] = "random",
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.5,
    box_detections_per_img: int = 100,
    box_fg_iou_thresh: float = 0.5,
    box_bg_iou_thresh: float = 0.5,
    box_batch_size_per_image: int = 512,
    box_positive_fraction: float = 0.25,
    bbox_reg_weights: tuple[float, float, float, float] | None = None,
    **overrides: Any,
) -> FasterRCNN:
    """Build a Faster R-CNN from ``config`` with torchvision's builder keywords.

    Args:
        config: the architecture.
        num_classes: classes including the background (COCO's 91 by default, as torchvision).
        weights_backbone: ``None`` (random), ``"torchvision"`` or a path to a torchvision
            classifier state dict for the backbone; pretrained backbones get frozen batch norm.
        trainable_backbone_layers: backbone stages that train, counted from ``c5`` (0..5);
            default 3 with pretrained weights, else 5 (all).
        image_mean: the transform's normalisation mean.
        image_std: the transform's normalisation standard deviation.
        rpn_sampling: ``"random"`` (torchvision, the paper) or ``"hard"`` negatives.
        **overrides: fields of ``config`` to replace (``min_size=512``, ``levels=("c5",)``,
            ``fpn_channels=64``, ...); the other keywords are torchvision's (module docstring).

    Raises:
        TypeError: a keyword that is neither a builder keyword nor a config field.
    """
    config = replace_config(config, overrides, model="Faster R-CNN")
    pretrained = weights_backbone is not None
    if trainable_backbone_layers is None:
        trainable_backbone_layers = 3 if pretrained else 5
    body = create_backbone(config.backbone, out_features=config.levels,
                           trainable_layers=trainable_backbone_layers, frozen_bn=pretrained,
                           weights=weights_backbone, **dict(config.backbone_kwargs))
    backbone, roi_levels, channels = _neck(config, body)

    anchors = AnchorGenerator(config.anchor_sizes,
                              (config.aspect_ratios,) * len(config.anchor_sizes))
    per_location = anchors.num_anchors_per_location()
    if config.shared_rpn_head:
        if len(set(per_location)) != 1:
            raise InvalidArgumentError(
                f"a shared RPN head needs the same number of anchors at every level, got "
                f"{per_location}; give each level as many sizes or shared_rpn_head=False")
        head: nn.Module = RPNHead(channels, per_location[0])
    else:
        head = PerLevelRPNHead(channels, per_location)
    rpn = RegionProposalNetwork(
        anchors, head, fg_iou_thresh=rpn_fg_iou_thresh, bg_iou_thresh=rpn_bg_iou_thresh,
        batch_size_per_image=rpn_batch_size_per_image, positive_fraction=rpn_positive_fraction,
        pre_nms_top_n_train=rpn_pre_nms_top_n_train, pre_nms_top_n_test=rpn_pre_nms_top_n_test,
        post_nms_top_n_train=rpn_post_nms_top_n_train,
        post_nms_top_n_test=rpn_post_nms_top_n_test, nms_thresh=rpn_nms_thresh,
        score_thresh=rpn_score_thresh, sampling=rpn_sampling)

    size = config.roi_output_size
    roi_heads = RoIHeads(
        MultiScaleRoIAlign(roi_levels, size, config.roi_sampling_ratio),
        TwoMLPHead(channels * size * size, config.representation_size),
        FastRCNNPredictor(config.representation_size, num_classes),
        fg_iou_thresh=box_fg_iou_thresh, bg_iou_thresh=box_bg_iou_thresh,
        batch_size_per_image=box_batch_size_per_image, positive_fraction=box_positive_fraction,
        bbox_reg_weights=bbox_reg_weights, score_thresh=box_score_thresh,
        nms_thresh=box_nms_thresh, detections_per_img=box_detections_per_img)
    transform = DetectionTransform(config.min_size, config.max_size, image_mean=image_mean,
                                   image_std=image_std)
    return FasterRCNN(backbone, rpn, roi_heads, transform=transform, num_classes=num_classes,
                      config=config)


def _neck(config: FasterRCNNConfig, body: nn.Module) -> tuple[nn.Module, list[str], int]:
    """The backbone with its neck, the levels the RoI heads pool from, and their width."""
    if config.neck == "none":
        (name, channels), = body.out_channels.items()
        return body, [name], channels
    in_channels = list(body.out_channels.values())
    extra: nn.Module | None = None
    if config.extra_level == "maxpool":
        extra = MaxPoolP6()
    elif config.extra_level == "p6p7":
        extra = ConvP6P7(config.fpn_channels, config.fpn_channels)
    fpn = FeaturePyramidNetwork(in_channels, config.fpn_channels, extra_levels=extra,
                                top_down=config.neck == "fpn")
    backbone = FPNBackbone(body, fpn)
    roi_levels = fpn.output_names(list(body.out_channels))[: len(in_channels)]
    return backbone, roi_levels, config.fpn_channels


def convert_torchvision_faster_rcnn(state_dict: StateDict) -> StateDict:
    """torchvision's ``FasterRCNN`` state dict -> ours. Backbone, FPN and RoI-head names are
    the same; only the RPN head's 3x3 convolution (``conv.0.0``, inside a
    ``Conv2dNormActivation``) is a plain ``conv`` here."""
    out = {}
    for key, value in state_dict.items():
        out[key.replace("rpn.head.conv.0.0.", "rpn.head.conv.")] = value
    return out


# Configurations. ResNet-50 ones are the papers'; ResNet-18 / MobileNetV2 ones are sized for the
# 2-core CPU and the 256x256 composited scenes (objects 20-90 pixels).
RESNET50_FPN = FasterRCNNConfig("resnet50")
RESNET50_C4 = FasterRCNNConfig("resnet50", levels=("c4",), neck="none", extra_level="none",
                               anchor_sizes=((128, 256, 512),))
_CPU = dict(min_size=256, max_size=512)
RESNET18_FPN = FasterRCNNConfig(
    "resnet18", fpn_channels=128, representation_size=512,
    anchor_sizes=((16,), (32,), (64,), (128,), (256,)), **_CPU)
RESNET18_C4 = FasterRCNNConfig(
    "resnet18", levels=("c4",), neck="none", extra_level="none",
    anchor_sizes=((24, 48, 96),), representation_size=512, **_CPU)
RESNET18_PYRAMID = FasterRCNNConfig(
    "resnet18", neck="pyramid", fpn_channels=128, representation_size=512,
    shared_rpn_head=False, anchor_sizes=((16,), (32,), (64,), (128,), (256,)), **_CPU)
MOBILENET_V2_FPN = FasterRCNNConfig(
    "mobilenet_v2", levels=("c3", "c4", "c5"), fpn_channels=128, representation_size=512,
    anchor_sizes=((16,), (32,), (64,), (128,)), **_CPU)
MOBILENET_V2_050_FPN = dataclasses.replace(
    MOBILENET_V2_FPN, fpn_channels=64, representation_size=256,
    backbone_kwargs=(("width_mult", 0.5),))


@register_model(task="detection", torchvision="fasterrcnn_resnet50_fpn",
                converter=convert_torchvision_faster_rcnn)
def fasterrcnn_resnet50_fpn(*, num_classes: int = 91, **kwargs) -> FasterRCNN:
    """torchvision's Faster R-CNN ResNet-50 FPN (41.8 M parameters with 91 classes)."""
    return faster_rcnn(RESNET50_FPN, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def fasterrcnn_resnet50_c4(*, num_classes: int = 91, **kwargs) -> FasterRCNN:
    """The paper's single-map design on ResNet-50's C4 (3 scales x 3 ratios)."""
    return faster_rcnn(RESNET50_C4, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def fasterrcnn_resnet18_fpn(*, num_classes: int = 91, **kwargs) -> FasterRCNN:
    """CPU-sized FPN: ResNet-18, 128-channel pyramid, 512-d head, 256-pixel images."""
    return faster_rcnn(RESNET18_FPN, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def fasterrcnn_resnet18_c4(*, num_classes: int = 91, **kwargs) -> FasterRCNN:
    """CPU-sized single map: ResNet-18's C4, 3 scales x 3 ratios."""
    return faster_rcnn(RESNET18_C4, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def fasterrcnn_resnet18_pyramid(*, num_classes: int = 91, **kwargs) -> FasterRCNN:
    """CPU-sized pyramid without top-down path, one RPN head per level."""
    return faster_rcnn(RESNET18_PYRAMID, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def fasterrcnn_mobilenet_v2_fpn(*, num_classes: int = 91, **kwargs) -> FasterRCNN:
    """CPU-sized FPN on MobileNetV2's C3-C5 (strides 8-32, plus P6)."""
    return faster_rcnn(MOBILENET_V2_FPN, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def fasterrcnn_mobilenet_v2_050_fpn(*, num_classes: int = 91, **kwargs) -> FasterRCNN:
    """The smallest CPU variant (1.8 M parameters with 21 classes): MobileNetV2 x0.5, a
    64-channel FPN and a 256-d head; the demo's detector."""
    return faster_rcnn(MOBILENET_V2_050_FPN, num_classes=num_classes, **kwargs)
