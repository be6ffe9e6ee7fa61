"""R-CNN: a CNN run on every warped region proposal.

Paper: Girshick, Donahue, Darrell, Malik, "Rich feature hierarchies for accurate object
detection and semantic segmentation", 2014, arXiv:1311.2524.

1. **Proposals**: about 2,000 selective-search regions per image ("fast" mode, Sec. 2.1), from
   the detector's :class:`~modernvision.models.detection._proposals.ProposalProvider`
   (memoised by image content, so later epochs do not recompute them).
2. **Warping** (Sec. 2.1 and Appendix A): each proposal is dilated so that, once warped, there
   are exactly ``p = 16`` pixels of context around it in the ``227 x 227`` CNN input: the box
   grows about its centre by ``S / (S - 2p)`` per axis, and the dilated box is warped
   anisotropically (bilinear sampling at the output pixels' centres) to ``S x S``. Pixels
   outside the image are the image mean (zero after the mean is subtracted), as in the paper.
   :func:`warp_regions` does it.
3. **Features**: a classifier of the zoo, headless (``create(name, num_classes=0)``), its
   convolutional features (``pool5``) pooled to a fixed grid, then FC6 and FC7 (ReLU).
4. **Two parallel heads** on FC7, as the course notes describe R-CNN: ``K + 1`` class scores
   (softmax, with background) and ``4 K`` class-specific box corrections, trained together with
   cross entropy plus smooth L1 -- the box corrections are learned against the best-overlapping
   ground-truth box of each foreground proposal. The second stage (sampling, losses, per-class
   decoding and NMS) is :class:`~modernvision.models.detection._roi_heads.RoIHeads`, with the
   warp as its "RoI pooling" and the whole CNN as its "box head".

Training follows the paper's fine-tuning (Sec. 2.3): proposals with IoU >= 0.5 with a
ground-truth box are that box's class, all others background; mini-batches of 128 regions,
32 foreground and 96 background (here 64 per image, 25 % foreground, with 2 images per batch),
the ground-truth boxes included as regions. Inference: per class, decode, clip, greedy NMS at
IoU 0.3 (the paper's Sec. 2.2), at most 100 detections per image.

Where this departs from the paper:
    * The paper fine-tunes the CNN with a softmax, then trains one linear **SVM per class on
      fc7** features (hard-negative mining, negatives IoU < 0.3) and scores with the SVMs, and
      fits class-specific **ridge regressors on pool5** features (Appendix C, proposals with
      IoU > 0.6) for the boxes. Here both outputs are linear layers on FC7 trained jointly with
      the network (as Fast R-CNN later does, and as the notes draw R-CNN). The paper's SVMs
      are offered after fine-tuning: :func:`fit_class_svms` trains them (liblinear through
      scikit-learn's ``LinearSVC``, the solver the paper's code calls, with its ``C = 10^-3``,
      positive weight 2, bias term 10, fc7 scaled to mean norm 20, positives only the
      ground-truth boxes, negatives below IoU 0.3, hard-negative mining) and puts an
      :class:`SVMPredictor` in the softmax's place; its scores are ``sigmoid(margin)`` (the
      paper thresholds raw margins). The box corrections stay on FC7.
    * Box corrections are encoded as in Fast R-CNN (``(10, 10, 5, 5)``-weighted ``dx, dy, dw,
      dh``, smooth L1) and learned on every foreground proposal (IoU >= 0.5), not only IoU > 0.6.
    * The regions of a batch are drawn per image (64 each), not from the pooled windows of
      the batch's images.
    * ``rcnn_alexnet`` is the paper's network (AlexNet, 227 pixels, 6x6 pool5, 4096-d FC6/FC7,
      from random initialisation unless ``weights_backbone`` is given; the paper starts from
      ImageNet). The CPU-sized variants are ours: ``rcnn_compact`` warps to 64 pixels with
      ``p = 4`` (the paper's 16 / 227 of the side, rounded down) into the zoo's small
      ``compact_cnn``; ``rcnn_resnet18`` does the same into a ResNet-18.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.detection._generalized import replace_config
from modernvision.models.detection._proposals import (
    ProposalBatch,
    ProposalDetector,
    ProposalProvider,
    proposal_provider,
)
from modernvision.models.detection._roi_heads import FastRCNNPredictor, RoIHeads, TwoMLPHead
from modernvision.models.detection._structures import Detections
from modernvision.models.detection.transform import IMAGENET_MEAN, IMAGENET_STD
from modernvision.models.registry import create, register_model
from modernvision.ops import box_iou

__all__ = [
    "RCNN",
    "ContextWarp",
    "RCNNConfig",
    "RCNNHeads",
    "RegionCNNHead",
    "SVMPredictor",
    "SVMSettings",
    "fit_class_svms",
    "rcnn",
    "rcnn_alexnet",
    "rcnn_compact",
    "rcnn_resnet18",
    "svm_region_labels",
    "warp_regions",
]


def warp_regions(image: Tensor, boxes: Tensor, size: int, context_padding: int = 16) -> Tensor:
    """Warp each box of one image, with context, to ``size x size`` (R-CNN's Appendix A).

    Each box is dilated about its centre by ``size / (size - 2 * context_padding)`` per axis,
    so that in the output it occupies the central ``size - 2 p`` pixels with ``p`` pixels of
    its surroundings on every side; the dilated box is sampled bilinearly at the centres of the
    output pixels (anisotropic scaling). Samples outside the image are 0 -- pass a
    mean-subtracted image to fill them with the image mean, as the paper does.

    Args:
        image: ``Tensor[C, H, W]``.
        boxes: ``Tensor[K, 4]`` ``(x1, y1, x2, y2)`` pixel edges.
        size: side of the output.
        context_padding: ``p``, output pixels of context around the box (16 in the paper).

    Returns:
        ``Tensor[K, C, size, size]``.
    """
    if image.dim() != 3:
        raise InvalidArgumentError(f"image must be a Tensor[C, H, W], got {tuple(image.shape)}")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise InvalidArgumentError(f"boxes must be a Tensor[K, 4], got {tuple(boxes.shape)}")
    if not isinstance(size, int) or size < 1 or not 0 <= 2 * context_padding < size:
        raise InvalidArgumentError(
            f"need size >= 1 and 0 <= 2 * context_padding < size, got size={size!r}, "
            f"context_padding={context_padding!r}")
    c, h, w = image.shape
    k = boxes.shape[0]
    if k == 0:
        return image.new_zeros((0, c, size, size))
    boxes = boxes.to(image.dtype)
    grow = size / (size - 2 * context_padding)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2  # (K, 2) as (x, y)
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * grow
    start, extent = centre - half, 2 * half
    # Output pixel centres, (j + 0.5) / size of the dilated box, in image pixels.
    t = (torch.arange(size, dtype=image.dtype, device=image.device) + 0.5) / size
    xs = start[:, 0:1] + t[None] * extent[:, 0:1]  # (K, S)
    ys = start[:, 1:2] + t[None] * extent[:, 1:2]
    # grid_sample's align_corners=False: -1 and 1 are the image's outer pixel edges.
    gx = (2 * xs / w - 1)[:, None, :].expand(k, size, size)
    gy = (2 * ys / h - 1)[:, :, None].expand(k, size, size)
    grid = torch.stack([gx, gy], dim=-1)  # (K, S, S, 2)
    return F.grid_sample(image[None].expand(k, c, h, w), grid, mode="bilinear",
                         padding_mode="zeros", align_corners=False)


class ContextWarp(nn.Module):
    """R-CNN's "RoI pooling": normalise each image, then :func:`warp_regions` its proposals.

    Args:
        size: the CNN's input side (227).
        context_padding: ``p`` (16).
        image_mean: subtracted per channel (so outside pixels become the mean).
        image_std: divided by per channel.
    """

    def __init__(self, size: int, context_padding: int, *,
                 image_mean: Sequence[float] = IMAGENET_MEAN,
                 image_std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.size = size
        self.context_padding = context_padding
        self.register_buffer("mean", torch.tensor(image_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(image_std).view(-1, 1, 1), persistent=False)

    def extra_repr(self) -> str:
        return f"size={self.size}, context_padding={self.context_padding}"

    def forward(self, features: dict[str, Tensor], rois: list[Tensor],
                image_sizes: Sequence[tuple[int, int]]) -> Tensor:
        """``features["image"]``: the padded batch ``(B, 3, H, W)`` in [0, 1]; ``rois``: per
        image ``Tensor[K_i, 4]`` -> ``(sum K_i, 3, size, size)``."""
        images = features["image"]
        crops = []
        for image, boxes, (h, w) in zip(images, rois, image_sizes):
            image = (image[:, :h, :w] - self.mean) / self.std
            crops.append(warp_regions(image, boxes, self.size, self.context_padding))
        return torch.cat(crops)


class RegionCNNHead(nn.Module):
    """A headless classifier on the warped regions, its features pooled to ``pool_size``
    (``pool5``), then FC6 and FC7 with ReLU.

    Args:
        cnn: a headless zoo classifier (``create(name, num_classes=0)``).
        pool_size: side of the pooled grid.
        representation_size: width of FC6 and FC7.
    """

    def __init__(self, cnn: nn.Module, pool_size: int, representation_size: int) -> None:
        super().__init__()
        self.cnn = cnn
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.fc = TwoMLPHead(cnn.num_features * pool_size * pool_size, representation_size)
        self.out_channels = representation_size

    def forward(self, crops: Tensor) -> Tensor:
        return self.fc(self.pool(self.cnn.forward_features(crops)))


class RCNNHeads(RoIHeads):
    """:class:`RoIHeads` with the warp as RoI pooling and the CNN as box head; without
    gradients the regions go through the CNN ``chunk_size`` at a time (2,000 warped crops
    at once would hold every activation of the network in memory).

    Args:
        chunk_size: regions per CNN call in evaluation.
        *args: :class:`RoIHeads`' arguments.
        **kwargs: :class:`RoIHeads`' keyword arguments.
    """

    def __init__(self, *args: Any, chunk_size: int = 256, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidArgumentError(f"chunk_size must be a positive int, got {chunk_size!r}")
        self.chunk_size = chunk_size

    def box_forward(self, features: dict[str, Tensor], rois: list[Tensor],
                    image_sizes: Sequence[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        if torch.is_grad_enabled():
            return super().box_forward(features, rois, image_sizes)
        logits, deltas = [], []
        images = features["image"]
        for i, (boxes, size) in enumerate(zip(rois, image_sizes)):
            for chunk in boxes.split(self.chunk_size):
                out = super().box_forward({"image": images[i:i + 1]}, [chunk], [size])
                logits.append(out[0])
                deltas.append(out[1])
        if not logits:  # no region at all
            return self.box_predictor(images.new_zeros((0, self.box_head.out_channels)))
        return torch.cat(logits), torch.cat(deltas)


@dataclass(frozen=True)
class RCNNConfig:
    """The architecture of an R-CNN variant.

    Attributes:
        backbone: a classifier of the registry, used headless (``"alexnet"``).
        warp_size: side ``S`` of the warped regions (227).
        context_padding: ``p``, warped pixels of context around each region (16).
        pool_size: the CNN's features are pooled to this grid (6: AlexNet's pool5).
        representation_size: width of FC6 and FC7 (4096).
        chunk_size: regions per CNN call in evaluation.
        backbone_kwargs: keyword arguments of the backbone's builder, as pairs.
    """

    backbone: str
    warp_size: int = 227
    context_padding: int = 16
    pool_size: int = 6
    representation_size: int = 4096
    chunk_size: int = 256
    backbone_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        for name in ("warp_size", "pool_size", "representation_size", "chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.context_padding, int) or not (
                0 <= 2 * self.context_padding < self.warp_size):
            raise InvalidArgumentError(
                f"context_padding must be an int with 0 <= 2 * context_padding < warp_size "
                f"({self.warp_size}), got {self.context_padding!r}")


class RCNN(ProposalDetector):
    """R-CNN composed of its parts.

    Args:
        roi_heads: the warp, the CNN with FC6/FC7, the two heads (:class:`RCNNHeads`).
        proposal_provider: where proposals come from.
        num_classes: classes including the background.
        config: the configuration it was built from, if any.
    """

    def __init__(self, roi_heads: RCNNHeads, *, proposal_provider: ProposalProvider,
                 num_classes: int, config: RCNNConfig | None = None) -> None:
        # No DetectionTransform: regions are warped from the input images themselves.
        super().__init__(None, num_classes=num_classes, proposal_provider=proposal_provider)
        self.roi_heads = roi_heads
        self.config = config

    def forward_batch(self, batch: ProposalBatch, targets: list[dict[str, Tensor]] | None
                      ) -> dict[str, Tensor] | list[Detections]:
        features = {"image": batch.tensors}
        detections, losses = self.roi_heads(features, batch.proposals, batch.image_sizes,
                                            targets)
        return losses if targets is not None else detections


def rcnn(
    config: RCNNConfig,
    *,
    num_classes: int = 21,
    weights_backbone: str | None = None,
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
    box_batch_size_per_image: int = 64,
    box_positive_fraction: float = 0.25,
    bbox_reg_weights: tuple[float, float, float, float] | None = None,
    **overrides: Any,
) -> RCNN:
    """Build an R-CNN from ``config``.

    Args:
        config: the architecture.
        num_classes: classes including the background (Pascal VOC's 21 by default).
        weights_backbone: ``None`` (random), ``"torchvision"`` or a path, for the CNN.
        image_mean: per-channel mean subtracted from the warped regions.
        image_std: per-channel standard deviation they are divided by.
        proposal_mode: selective search's ``"fast"``, ``"quality"`` or ``"single"``.
        proposal_top: proposals kept per image (2,000).
        proposal_cache: a folder to keep proposals in across runs (``None``: memory only).
        box_score_thresh: detections need a class probability above this.
        box_nms_thresh: per-class NMS IoU (0.3, the paper's).
        box_detections_per_img: the most detections per image.
        box_fg_iou_thresh: proposals with this IoU or more are foreground in training (0.5).
        box_bg_iou_thresh: proposals below it are background (0.5).
        box_batch_size_per_image: regions sampled per image in training (64).
        box_positive_fraction: at most this fraction of them foreground (0.25).
        bbox_reg_weights: weights of the box coder (``(10, 10, 5, 5)``).
        **overrides: fields of ``config`` to replace (``warp_size=96``, ...).

    Raises:
        TypeError: a keyword that is neither a builder keyword nor a config field.
    """
    config = replace_config(config, overrides, model="R-CNN")
    cnn = create(config.backbone, num_classes=0, weights=weights_backbone,
                 **dict(config.backbone_kwargs))
    heads = RCNNHeads(
        ContextWarp(config.warp_size, config.context_padding, image_mean=image_mean,
                    image_std=image_std),
        RegionCNNHead(cnn, config.pool_size, config.representation_size),
        FastRCNNPredictor(config.representation_size, num_classes),
        fg_iou_thresh=box_fg_iou_thresh, bg_iou_thresh=box_bg_iou_thresh,
        batch_size_per_image=box_batch_size_per_image, positive_fraction=box_positive_fraction,
        bbox_reg_weights=bbox_reg_weights, score_thresh=box_score_thresh,
        nms_thresh=box_nms_thresh, detections_per_img=box_detections_per_img,
        chunk_size=config.chunk_size)
    provider = proposal_provider(proposal_mode, proposal_top, proposal_cache)
    return RCNN(heads, proposal_provider=provider, num_classes=num_classes, config=config)


# The paper's network, and two sized for the 2-core CPU and the 256-pixel scenes.
ALEXNET = RCNNConfig("alexnet")
COMPACT = RCNNConfig("compact_cnn", warp_size=64, context_padding=4, pool_size=4,
                     representation_size=512, backbone_kwargs=(("in_channels", 3),))
RESNET18 = RCNNConfig("resnet18", warp_size=64, context_padding=4, pool_size=2,
                      representation_size=512)


@register_model(task="detection")
def rcnn_alexnet(*, num_classes: int = 21, **kwargs) -> RCNN:
    """The paper's R-CNN: AlexNet on 227-pixel warps with 16 pixels of context, 4096-d FC7."""
    return rcnn(ALEXNET, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def rcnn_compact(*, num_classes: int = 21, **kwargs) -> RCNN:
    """CPU-sized R-CNN: 64-pixel warps (4 of context) into the zoo's compact_cnn, 512-d FC7."""
    return rcnn(COMPACT, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def rcnn_resnet18(*, num_classes: int = 21, **kwargs) -> RCNN:
    """R-CNN with a ResNet-18 on 64-pixel warps (4 of context), 512-d FC7."""
    return rcnn(RESNET18, num_classes=num_classes, **kwargs)


# ---------------------------------------------------------------------------------------------
# The paper's class SVMs on fc7 (Sec. 2.3 and Appendix B)


@dataclass(frozen=True)
class SVMSettings:
    """How :func:`fit_class_svms` trains the per-class SVMs; the defaults are the paper's
    released code's (``rcnn_train.m``).

    Attributes:
        C: the SVMs' regularisation constant (``10^-3``).
        positive_weight: weight of a positive's hinge loss (2).
        negative_iou: regions below this IoU with every ground-truth box of a class are that
            class's negatives (0.3, chosen by grid search in the paper's Appendix B).
        feature_norm: fc7 features are scaled so that their mean L2 norm is this (20).
        bias_scale: the constant feature appended for the bias (liblinear's ``-B``, 10).
        initial_negatives: random negatives per class in the first cache.
        rounds: hard-negative mining rounds after the first fit.
        hard_margin: a negative scoring above this is hard and joins the cache (-1: inside
            the margin).
        evict_margin: a cached negative scoring below this leaves it (-1.2).
        seed: for the initial random negatives.
    """

    C: float = 1e-3
    positive_weight: float = 2.0
    negative_iou: float = 0.3
    feature_norm: float = 20.0
    bias_scale: float = 10.0
    initial_negatives: int = 2000
    rounds: int = 3
    hard_margin: float = -1.0
    evict_margin: float = -1.2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("C", "positive_weight", "feature_norm", "bias_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidArgumentError(f"{name} must be a positive number, got {value!r}")
        if not 0.0 < self.negative_iou <= 1.0:
            raise InvalidArgumentError(
                f"negative_iou must be in (0, 1], got {self.negative_iou!r}")
        for name in ("initial_negatives", "rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgumentError(f"{name} must be an int >= 0, got {value!r}")
        if not self.evict_margin <= self.hard_margin:
            raise InvalidArgumentError(
                f"evict_margin ({self.evict_margin}) must not exceed hard_margin "
                f"({self.hard_margin})")


class SVMPredictor(FastRCNNPredictor):
    """The paper's scoring: one linear SVM per class on (scaled) fc7, beside the box
    corrections; row 0 of ``cls_score`` (background) stays zero. Its detection scores are
    ``sigmoid(margin)`` per class (monotone in the SVM's margin, so every class's ranking
    and AP are the SVM's; in ``(0, 1)`` so that ``box_score_thresh`` still applies).

    Args:
        in_channels: width of the representation (fc7).
        num_classes: classes including the background.
        feature_scale: the factor applied to fc7 before the SVMs (their training scale).
    """

    def __init__(self, in_channels: int, num_classes: int, *, feature_scale: float) -> None:
        super().__init__(in_channels, num_classes)
        self.cls_score.requires_grad_(False)  # fitted by liblinear, not by gradients
        self.register_buffer("feature_scale", torch.tensor(float(feature_scale)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training:
            raise InvalidArgumentError(
                "an R-CNN with class SVMs is not trained by back-propagation: fine-tune the "
                "softmax model, then fit the SVMs with fit_class_svms (call model.eval() "
                "before using this one)")
        x = x.flatten(start_dim=1)
        return self.cls_score(x * self.feature_scale), self.bbox_pred(x)

    def class_scores(self, class_logits: Tensor) -> Tensor:
        return torch.sigmoid(class_logits)


def svm_region_labels(gt_boxes: Tensor, gt_labels: Tensor, regions: Tensor, num_classes: int,
                      negative_iou: float = 0.3) -> Tensor:
    """The paper's SVM labels of one image's regions, the ground-truth boxes first.

    Only ground-truth boxes are positives (for their class); a region (ground-truth boxes of
    other classes included) whose IoU with every ground-truth box of class ``c`` is below
    ``negative_iou`` is a negative for ``c``; the rest is ignored for ``c``.

    Args:
        gt_boxes: ``Tensor[G, 4]`` xyxy.
        gt_labels: ``Tensor[G]`` in ``[1, num_classes)``.
        regions: ``Tensor[G + P, 4]``: ``gt_boxes`` then the proposals.
        num_classes: classes including the background.
        negative_iou: the negatives' IoU bound.

    Returns:
        ``Tensor[G + P, num_classes - 1]`` int8: 1 positive, -1 negative, 0 ignored, column
        ``c - 1`` for class ``c``.
    """
    g, num_regions = gt_boxes.shape[0], regions.shape[0]
    labels = torch.zeros((num_regions, num_classes - 1), dtype=torch.int8)
    iou = box_iou(regions, gt_boxes) if g else regions.new_zeros((num_regions, 0))
    for c in range(1, num_classes):
        of_class = gt_labels == c
        best = iou[:, of_class].max(dim=1).values if bool(of_class.any()) \
            else regions.new_zeros(num_regions)
        labels[best < negative_iou, c - 1] = -1
        labels[torch.where(of_class)[0], c - 1] = 1
    return labels


def _fit_svm(features: Tensor, labels: Tensor, settings: SVMSettings,
             generator: torch.Generator) -> tuple[Tensor, float, dict[str, Any]]:
    """One class: LinearSVC (liblinear's L2-regularised hinge loss, dual) on the positives
    and a cache of negatives, grown by hard-negative mining; returns weight, bias, a log."""
    from sklearn.svm import LinearSVC

    positives = torch.where(labels == 1)[0]
    negatives = torch.where(labels == -1)[0]
    order = torch.randperm(negatives.numel(), generator=generator)
    cache = negatives[order[: settings.initial_negatives]]
    log: dict[str, Any] = {"positives": int(positives.numel()),
                           "negatives": int(negatives.numel()), "cache": [], "hard_added": []}
    svm = LinearSVC(C=settings.C, loss="hinge", dual=True, fit_intercept=True,
                    intercept_scaling=settings.bias_scale,
                    class_weight={1: settings.positive_weight, -1: 1.0}, max_iter=20000,
                    random_state=0)
    for round_ in range(settings.rounds + 1):
        rows = torch.cat([positives, cache])
        y = torch.cat([torch.ones(positives.numel()), -torch.ones(cache.numel())])
        svm.fit(features[rows].numpy(), y.numpy())
        log["cache"].append(int(cache.numel()))
        if round_ == settings.rounds:
            break
        weight = torch.from_numpy(svm.coef_[0]).to(features.dtype)
        margins = features[negatives] @ weight + float(svm.intercept_[0])
        in_cache = torch.zeros(labels.numel(), dtype=torch.bool)
        in_cache[cache] = True
        hard = negatives[(margins > settings.hard_margin) & ~in_cache[negatives]]
        log["hard_added"].append(int(hard.numel()))
        if hard.numel() == 0:  # every negative outside the cache is beyond the margin
            break
        kept = cache[margins[torch.searchsorted(negatives, cache)] >= settings.evict_margin]
        cache = torch.cat([kept, hard])
    return (torch.from_numpy(svm.coef_[0]).float(), float(svm.intercept_[0]), log)


@torch.no_grad()
def fit_class_svms(model: ProposalDetector, samples: Iterable[tuple[Tensor, dict[str, Tensor]]],
                   settings: SVMSettings | None = None) -> dict[str, Any]:
    """Train the paper's per-class linear SVMs on a fine-tuned model's fc7 and put them in
    its place (:class:`SVMPredictor`; the box corrections are kept).

    Every region of every image (its proposals and its ground-truth boxes) goes through the
    network once; all fc7 features are held in memory (images x regions x
    ``representation_size`` floats), scaled to a mean norm of ``settings.feature_norm``.
    Labels per class: :func:`svm_region_labels`. Per class, a cache of random negatives, then
    ``settings.rounds`` rounds of hard-negative mining (negatives inside the margin join, easy
    ones leave, as in the paper). A class with no positive gets weight 0 and bias -20 (it
    never scores).

    Args:
        model: an :class:`RCNN` (or any :class:`ProposalDetector` with :class:`RoIHeads`)
            after fine-tuning.
        samples: ``(image Tensor[3, H, W] in [0, 1], target)`` with the target's ``boxes``
            (xyxy pixels) and ``labels``.
        settings: :class:`SVMSettings` (the paper's by default).

    Returns:
        A report: images, regions, the feature scale, and per class the numbers of
        positives and negatives, the cache size after each fit and the hard negatives each
        mining round added.
    """
    settings = settings or SVMSettings()
    heads = model.roi_heads
    if not isinstance(heads, RoIHeads) or not isinstance(heads.box_predictor,
                                                          FastRCNNPredictor):
        raise InvalidArgumentError(
            "model must be a ProposalDetector whose roi_heads is a RoIHeads with a "
            f"FastRCNNPredictor, got {type(model).__name__}")
    num_classes = heads.box_predictor.cls_score.out_features
    was_training = model.training
    model.eval()
    captured: list[Tensor] = []
    hook = heads.box_head.register_forward_hook(lambda _m, _i, out: captured.append(out))
    features, labels = [], []
    try:
        for i, (image, target) in enumerate(samples):
            gt_boxes = target["boxes"].to(torch.float32).reshape(-1, 4)
            gt_labels = target["labels"].reshape(-1)
            regions = torch.cat([gt_boxes, model.proposal_provider(image).to(torch.float32)])
            captured.clear()
            model([image], proposals=[regions])
            fc7 = torch.cat(captured) if captured else regions.new_zeros((0, 0))
            if fc7.shape[0] != regions.shape[0]:
                raise RuntimeError(f"image {i}: {regions.shape[0]} regions gave "
                                   f"{fc7.shape[0]} fc7 features")
            features.append(fc7.flatten(start_dim=1).float())
            labels.append(svm_region_labels(gt_boxes, gt_labels, regions,
                                            num_classes, settings.negative_iou))
    finally:
        hook.remove()
        model.train(was_training)
    if not features:
        raise InvalidArgumentError("samples is empty: the SVMs need at least one image")
    x = torch.cat(features)
    y = torch.cat(labels)
    scale = settings.feature_norm / float(x.norm(dim=1).mean().clamp(min=1e-12))
    x = x * scale
    old = heads.box_predictor
    svm = SVMPredictor(old.cls_score.in_features, num_classes, feature_scale=scale)
    svm.bbox_pred.load_state_dict(old.bbox_pred.state_dict())
    svm.cls_score.weight.zero_()
    svm.cls_score.bias.zero_()
    report: dict[str, Any] = {"images": len(features), "regions": int(x.shape[0]),
                              "feature_scale": scale, "classes": {}}
    generator = torch.Generator().manual_seed(settings.seed)
    for c in range(1, num_classes):
        column = y[:, c - 1]
        if not bool((column == 1).any()) or not bool((column == -1).any()):
            svm.cls_score.bias[c] = -20.0
            report["classes"][c] = {"positives": int((column == 1).sum()), "skipped": True}
            continue
        weight, bias, log = _fit_svm(x, column, settings, generator)
        svm.cls_score.weight[c] = weight
        svm.cls_score.bias[c] = bias
        report["classes"][c] = log
    heads.box_predictor = svm.to(old.bbox_pred.weight.device)
    svm.train(was_training)
    return report
