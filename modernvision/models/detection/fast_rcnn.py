"""Fast R-CNN: the convolutions run once per image, RoI max pooling per proposal.

Paper: Girshick, "Fast R-CNN", 2015, arXiv:1504.08083.

1. **Proposals**: selective search ("fast" mode, about 2,000 per image), from the detector's
   :class:`~modernvision.models.detection._proposals.ProposalProvider`, memoised by image
   content (and optionally kept on disk), so training computes them once, not every epoch;
   ``predict`` computes them for a new image.
2. **Shared convolutions** (Sec. 2): the whole image (shorter side 600, longer at most 1000,
   Sec. 3.3 / 4) goes through the backbone once, to its last convolutional map (VGG16's
   ``conv5_3``, stride 16).
3. **RoI pooling** (Sec. 2.1): each proposal, mapped onto that map (``spatial_scale =
   1 / 16``), is max-pooled to a 7x7 grid (:func:`modernvision.ops.roi_pool`).
4. **FC6, FC7 and two sibling outputs** (Sec. 2, 2.2): ``K + 1`` class scores (softmax) and
   ``4 K`` class-specific box corrections.
5. **Multi-task loss** (eq. 1): ``L = L_cls + lambda [u >= 1] L_loc`` with cross entropy and
   smooth L1, ``lambda = 1``.
6. **Mini-batches** (Sec. 2.3): ``N = 2`` images (``--batch-size 2``), ``R = 128`` RoIs, 64 per
   image; 25 % foreground (IoU >= 0.5 with a ground-truth box), the rest background with
   best IoU in ``[0.1, 0.5)`` (below 0.1 is never sampled, the paper's heuristic for hard
   example mining).
7. **Inference**: per class, decode, clip, NMS at IoU 0.3 (R-CNN's setting, which the paper
   keeps), at most 100 detections per image.

The second stage is the shared :class:`~modernvision.models.detection._roi_heads.RoIHeads`
(Faster R-CNN's) with a single-level RoI max pool; Faster R-CNN on the same backbone differs by
its RPN and RoIAlign only.

Departures from the paper:
    * The ground-truth boxes are added to the proposals as training RoIs (torchvision's rule).
    * Box corrections are ``(10, 10, 5, 5)``-weighted and smooth L1 has ``beta = 1 / 9``,
      summed over foreground RoIs and divided by the sampled RoIs (torchvision's); the paper
      normalises the targets to zero mean and unit variance and uses ``beta = 1``.
    * No dropout in FC6/FC7, no horizontal flips (the scenes' digits do not survive them), no
      truncated SVD of the FC layers (Sec. 3.1).
    * ``fast_rcnn_vgg16`` is the paper's network from random initialisation unless
      ``weights_backbone`` is given (the paper starts from ImageNet and freezes
      ``conv1``-``conv2``; pass ``trainable_backbone_layers``). ``fast_rcnn_resnet18_c4`` is
      ours, sized for the 2-core CPU and the 256-pixel scenes: ResNet-18's ``C4`` (stride 16,
      as ``conv5_3``), 512-d FC6/FC7, images of 256 pixels -- the same backbone and stage as
      ``fasterrcnn_resnet18_c4``, so the two compare proposal sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.backbone import create_backbone
from modernvision.models.detection._generalized import replace_config
from modernvision.models.detection._proposals import (
    ProposalBatch,
    ProposalDetector,
    ProposalProvider,
    proposal_provider,
)
from modernvision.models.detection._roi_heads import FastRCNNPredictor, RoIHeads, TwoMLPHead
from modernvision.models.detection._structures import Detections
from modernvision.models.detection.transform import IMAGENET_MEAN, IMAGENET_STD, DetectionTransform
from modernvision.models.registry import register_model
from modernvision.ops import roi_pool

__all__ = [
    "FastRCNN",
    "FastRCNNConfig",
    "SingleLevelRoIPool",
    "fast_rcnn",
    "fast_rcnn_resnet18_c4",
    "fast_rcnn_vgg16",
]


class SingleLevelRoIPool(nn.Module):
    """RoI max pooling from one feature map (:func:`~modernvision.ops.roi_pool`).

    Args:
        level: the feature map's name in the backbone's output.
        output_size: side of the pooled grid (7).
        spatial_scale: ``1 / stride`` of the map.
    """

    def __init__(self, level: str, output_size: int, spatial_scale: float) -> None:
        super().__init__()
        self.level = level
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def extra_repr(self) -> str:
        return (f"level={self.level!r}, output_size={self.output_size}, "
                f"spatial_scale={self.spatial_scale}")

    def forward(self, features: dict[str, Tensor], rois: list[Tensor],
                image_sizes: Sequence[tuple[int, int]]) -> Tensor:
        """``rois``: per image ``Tensor[K_i, 4]`` -> ``(sum K_i, C, S, S)``."""
        return roi_pool(features[self.level], rois, self.output_size, self.spatial_scale)


@dataclass(frozen=True)
class FastRCNNConfig:
    """The architecture of a Fast R-CNN variant.

    Attributes:
        backbone: a classifier of the registry, used headless (``"vgg16"``).
        level: its stage the RoIs are pooled from (``"c4"``: VGG16's ``conv5_3``, stride 16).
        roi_output_size: RoI pooling grid (7).
        representation_size: width of FC6 and FC7 (4096).
        min_size: shorter image side after resizing (600).
        max_size: longest the longer side may become (1000).
        backbone_kwargs: keyword arguments of the backbone's builder, as pairs.
    """

    backbone: str
    level: str = "c4"
    roi_output_size: int = 7
    representation_size: int = 4096
    min_size: int | tuple[int, ...] = 600
    max_size: int = 1000
    backbone_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        for name in ("roi_output_size", "representation_size", "max_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")


class FastRCNN(ProposalDetector):
    """Fast R-CNN composed of its parts.

    Args:
        backbone: images ``(B, 3, H, W)`` -> ``dict`` with the pooled level.
        roi_heads: RoI pooling, FC6/FC7 and the sibling outputs.
        transform: the input transform.
        proposal_provider: where proposals come from.
        num_classes: classes including the background.
        config: the configuration it was built from, if any.
    """

    def __init__(self, backbone: nn.Module, roi_heads: RoIHeads, *,
                 transform: DetectionTransform | None, proposal_provider: ProposalProvider,
                 num_classes: int, config: FastRCNNConfig | None = None) -> None:
        super().__init__(transform, num_classes=num_classes, proposal_provider=proposal_provider)
        self.backbone = backbone
        self.roi_heads = roi_heads
        self.config = config

    def forward_batch(self, batch: ProposalBatch, targets: list[dict[str, Tensor]] | None
                      ) -> dict[str, Tensor] | list[Detections]:
        features = self.backbone(batch.tensors)
        detections, losses = self.roi_heads(features, batch.proposals, batch.image_sizes,
                                            targets)
        return losses if targets is not None else detections


def fast_rcnn(
    config: FastRCNNConfig,
    *,
    num_classes: int = 21,
    weights_backbone: str | None = None,
    trainable_backbone_layers: int | None = None,
    image_mean: Sequence[float] = IMAGENET_MEAN,
    image_std: Sequence[float] = IMAGENET_STD,
    proposal_mode: str = "fast",
    proposal_top: int | None = 2000,
    proposal_cache: str | Path | None = None,
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = 0.3,
    box_detections_per_img: int = 100,
    box_fg_iou_thresh: float = 0.5,
    box_bg_iou_thresh: float = 0.5,
    box_bg_iou_low: float = 0.1,
    box_batch_size_per_image: int = 64,
    box_positive_fraction: float = 0.25,
    bbox_reg_weights: tuple[float, float, float, float] | None = None,
    **overrides: Any,
) -> FastRCNN:
    """Build a Fast R-CNN from ``config``.

    Args:
        config: the architecture.
        num_classes: classes including the background (Pascal VOC's 21 by default).
        weights_backbone: ``None`` (random), ``"torchvision"`` or a path, for the backbone;
            pretrained backbones get frozen batch norm.
        trainable_backbone_layers: backbone stages that train, counted from the deepest;
            default 3 with pretrained weights, else all.
        image_mean: the transform's normalisation mean.
        image_std: the transform's normalisation standard deviation.
        proposal_mode: selective search's ``"fast"``, ``"quality"`` or ``"single"``.
        proposal_top: proposals kept per image (2,000).
        proposal_cache: a folder to keep proposals in across runs (``None``: memory only).
        box_score_thresh: detections need a class probability above this.
        box_nms_thresh: per-class NMS IoU (0.3).
        box_detections_per_img: the most detections per image.
        box_fg_iou_thresh: RoIs with this IoU or more are foreground (0.5).
        box_bg_iou_thresh: RoIs below it are background (0.5)...
        box_bg_iou_low: ...if their IoU is at least this (0.1); lower ones are not sampled.
        box_batch_size_per_image: RoIs sampled per image (64: 128 per batch of 2).
        box_positive_fraction: at most this fraction of them foreground (0.25).
        bbox_reg_weights: weights of the box coder (``(10, 10, 5, 5)``).
        **overrides: fields of ``config`` to replace (``min_size=256``, ...).

    Raises:
        TypeError: a keyword that is neither a builder keyword nor a config field.
    """
    config = replace_config(config, overrides, model="Fast R-CNN")
    pretrained = weights_backbone is not None
    if trainable_backbone_layers is None and pretrained:
        trainable_backbone_layers = 3
    backbone = create_backbone(config.backbone, out_features=(config.level,),
                               trainable_layers=trainable_backbone_layers, frozen_bn=pretrained,
                               weights=weights_backbone, **dict(config.backbone_kwargs))
    channels = backbone.out_channels[config.level]
    size = config.roi_output_size
    roi_heads = RoIHeads(
        SingleLevelRoIPool(config.level, size, 1.0 / backbone.strides[config.level]),
        TwoMLPHead(channels * size * size, config.representation_size),
        FastRCNNPredictor(config.representation_size, num_classes),
        fg_iou_thresh=box_fg_iou_thresh, bg_iou_thresh=box_bg_iou_thresh,
        bg_iou_low=box_bg_iou_low, batch_size_per_image=box_batch_size_per_image,
        positive_fraction=box_positive_fraction, bbox_reg_weights=bbox_reg_weights,
        score_thresh=box_score_thresh, nms_thresh=box_nms_thresh,
        detections_per_img=box_detections_per_img)
    transform = DetectionTransform(config.min_size, config.max_size, image_mean=image_mean,
                                   image_std=image_std)
    provider = proposal_provider(proposal_mode, proposal_top, proposal_cache)
    return FastRCNN(backbone, roi_heads, transform=transform, proposal_provider=provider,
                    num_classes=num_classes, config=config)


# The paper's network, and one sized for the 2-core CPU and the 256-pixel scenes.
VGG16 = FastRCNNConfig("vgg16")
RESNET18_C4 = FastRCNNConfig("resnet18", level="c4", representation_size=512, min_size=256,
                             max_size=512)


@register_model(task="detection")
def fast_rcnn_vgg16(*, num_classes: int = 21, **kwargs) -> FastRCNN:
    """The paper's Fast R-CNN: VGG16 conv5_3 (stride 16), 7x7 RoI pool, 4096-d FC6/FC7."""
    return fast_rcnn(VGG16, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def fast_rcnn_resnet18_c4(*, num_classes: int = 21, **kwargs) -> FastRCNN:
    """CPU-sized Fast R-CNN: ResNet-18's C4, 7x7 RoI pool, 512-d FC6/FC7, 256-pixel images."""
    return fast_rcnn(RESNET18_C4, num_classes=num_classes, **kwargs)
