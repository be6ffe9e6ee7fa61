"""SSD: Single Shot MultiBox Detector.

Paper: Liu, Anguelov, Erhan, Szegedy, Reed, Fu, Berg, "SSD: Single Shot MultiBox Detector",
2016, arXiv:1512.02325.

A truncated VGG-16 (Sec. 2.2, 3): its conv layers through ``conv5_3``, ``pool5`` turned into a
3x3/1 pool, ``fc6`` and ``fc7`` turned into convolutions (``fc6`` a 3x3 with dilation 6, 1024
channels; ``fc7`` a 1x1), then four extra blocks (1x1 to halve the width, then 3x3, stride 2 for
the first two, unpadded for the last two) that shrink the map 19 -> 10 -> 5 -> 3 -> 1 for a
300x300 input. Six maps predict: ``conv4_3`` (38x38, L2-normalised with a learned per-channel
scale starting at 20, after ParseNet, "since it has a different feature scale"), ``fc7``,
``conv8_2``, ``conv9_2``, ``conv10_2``, ``conv11_2``. On each, a 3x3 conv predicts, for each of
the ``k`` default boxes of each position, ``C`` class scores (softmax, with background) and 4
offsets (Fig. 2).

Default boxes (Sec. 2.2, "Choosing scales and aspect ratios"): on map ``k`` of ``m``, scale
``s_k``, aspect ratios ``a_r`` in ``{1, 2, 1/2}`` (and ``3, 1/3`` on the middle maps) with
``w = s_k sqrt(a_r)``, ``h = s_k / sqrt(a_r)``, plus an extra square box of scale
``sqrt(s_k s_{k+1})``: 4 or 6 per position, centred at ``((i + 0.5) / f_k, (j + 0.5) / f_k)``.

Training (Sec. 2.2): every ground truth is matched to its best default box, then every default
box with IoU > 0.5 to its best ground truth. ``L = (L_conf + alpha L_loc) / N`` with ``N`` the
matched boxes (``alpha = 1``): smooth L1 on the ``(cx, cy, w, h)`` offsets of the positives
(scaled by ``(10, 10, 5, 5)``, the released code's "variances" 0.1, 0.2), softmax cross entropy
on the positives and on the *hardest negatives* only -- those with the highest confidence loss,
at most 3 per positive ("hard negative mining"). Inference: per class, scores > 0.01, the top
400 (``topk_candidates``), NMS at 0.45, 200 detections per image.

``ssd300_vgg16`` is torchvision's model: same structure, defaults and builder keywords
(``num_classes``, ``weights_backbone``, ``trainable_backbone_layers``, ``image_mean``,
``image_std``, ``score_thresh``, ``nms_thresh``, ``detections_per_img``, ``iou_thresh``,
``topk_candidates``, ``positive_fraction`` -- ``neg:pos = (1 - f) / f``, 3 for 0.25), and
``convert_torchvision_state_dict("ssd300_vgg16", sd)`` maps its state dict onto ours; the tests
check equal detections and training losses.

Departures from the paper (torchvision's, unless said otherwise):
    * Default-box scales ``(0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)`` and steps
      ``(8, 16, 32, 64, 100, 300)`` (the released Caffe model's COCO settings), not eq. (4)'s
      linear ``0.2..0.9``; box sides clipped to the image (``clip``).
    * ``pool3`` rounds up (``ceil_mode``) so a 300x300 input gives 38x38 at ``conv4_3``.
    * Matching uses IoU ``>= 0.5``; the negatives mined per image are ``3 x`` its positives
      (so an image without objects contributes none); ties in the mined losses are broken by
      index (torchvision's sort is not stable).
    * No pretrained backbone by default (``weights_backbone=None``; torchvision defaults to
      ImageNet features, unavailable offline). ``trainable_backbone_layers`` is honoured also
      without pretrained weights (default 5, all). Pixel normalisation is torchvision's:
      Caffe-style, mean ``(0.48235, 0.45882, 0.40784)`` and std ``1/255``.
    * The paper's data augmentation (Sec. 2.2, zoom in/out crops) lives in the data pipeline
      (``modernvision train --augmentation ssd``), not in the model.
    * ``ssd256_resnet18`` is ours, for the 2-core CPU and the 256x256 composited scenes: a
      ResNet-18 (``C3``, ``C4``, ``C5``, strides 8-32) instead of VGG-16, three extra blocks
      with batch norm (maps 32, 16, 8, 4, 2, 1), no L2 normalisation (ResNet's maps are batch
      normalised), ImageNet mean/std, scales ``0.07..0.9`` for 20-90 pixel objects.
      ``ssd256_mobilenet_v2_050`` is the same on the demo detector's MobileNetV2 x0.5, held as
      ``backbone.body`` as there, so ``train --init`` of its weights starts it trained.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.layers.conv import ConvNormAct
from modernvision.losses import smooth_l1_loss
from modernvision.models.backbone import create_backbone
from modernvision.models.detection._generalized import Detector, replace_config
from modernvision.models.detection._structures import Detections, ImageBatch
from modernvision.models.detection.transform import IMAGENET_MEAN, IMAGENET_STD, DetectionTransform
from modernvision.models.registry import StateDict, register_model
from modernvision.ops import (
    BoxCoder,
    SSDMatcher,
    batched_nms,
    box_iou,
    clip_boxes_to_image,
    hard_negative_mining,
)

__all__ = [
    "SSD",
    "DefaultBoxGenerator",
    "SSDConfig",
    "SSDHead",
    "SSDVGG16Backbone",
    "convert_torchvision_ssd",
    "ssd",
    "ssd256_mobilenet_v2_050",
    "ssd256_resnet18",
    "ssd300_vgg16",
]

#: torchvision's pixel normalisation for its Caffe-style VGG-16 (0..255 inputs, mean removed).
VGG_MEAN = (0.48235, 0.45882, 0.40784)
VGG_STD = (1.0 / 255.0, 1.0 / 255.0, 1.0 / 255.0)

#: VGG-16's conv stages (Table 1, column D).
_VGG16_DEPTHS = (2, 2, 3, 3, 3)
_VGG16_WIDTHS = (64, 128, 256, 512, 512)

Extra = tuple[int, int, int, int, int]  # (1x1 width, output width, kernel, stride, padding)


@dataclass(frozen=True)
class SSDConfig:
    """The architecture of an SSD variant.

    Attributes:
        backbone: ``"vgg16"`` (the paper's truncated, dilated VGG-16) or a classifier of the
            registry used headless (``"resnet18"``).
        levels: for a registry backbone, its stages that predict, finest first.
        extras: the extra blocks after the backbone, each ``(1x1 width, output width, kernel,
            stride, padding)``: a 1x1 conv then a ``kernel`` conv, each with ReLU.
        extra_batch_norm: batch norm in the extra blocks (ours, for training from scratch).
        size: ``(height, width)`` every image is resized to.
        aspect_ratios: per map, the ratios ``a_r > 1`` (each gives ``a_r`` and ``1 / a_r``).
        scales: ``m + 1`` scales ``s_k`` relative to the image (the last only for ``s'_m``).
        steps: per map, its stride in pixels, for the box centres (``None``: from the map size).
        clip: clip default-box sides to the image.
        l2_scale: initial scale of the L2-normalised ``conv4_3`` (VGG only; 20).
        fc_width: channels of ``fc6`` and ``fc7`` (VGG only; 1024).
        backbone_kwargs: keyword arguments of a registry backbone's builder, as pairs
            (``(("width_mult", 0.5),)``).
    """

    backbone: str = "vgg16"
    levels: tuple[str, ...] = ()
    extras: tuple[Extra, ...] = ((256, 512, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 3, 1, 0),
                                 (128, 256, 3, 1, 0))
    extra_batch_norm: bool = False
    size: tuple[int, int] = (300, 300)
    aspect_ratios: tuple[tuple[int, ...], ...] = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
    scales: tuple[float, ...] = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
    steps: tuple[int, ...] | None = (8, 16, 32, 64, 100, 300)
    clip: bool = True
    l2_scale: float = 20.0
    fc_width: int = 1024
    backbone_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        maps = (2 if self.backbone == "vgg16" else len(self.levels)) + len(self.extras)
        if self.backbone != "vgg16" and not self.levels:
            raise InvalidArgumentError(
                f"backbone {self.backbone!r} needs levels, the stages that predict")
        if len(self.aspect_ratios) != maps:
            raise InvalidArgumentError(
                f"aspect_ratios needs one tuple per predicting map ({maps}), got "
                f"{len(self.aspect_ratios)}")
        if len(self.scales) != maps + 1:
            raise InvalidArgumentError(
                f"scales needs {maps + 1} values (one per map plus the last s'), got "
                f"{len(self.scales)}")
        if self.steps is not None and len(self.steps) != maps:
            raise InvalidArgumentError(
                f"steps needs one value per predicting map ({maps}), got {len(self.steps)}")
        if len(self.size) != 2 or any(not isinstance(s, int) or s < 1 for s in self.size):
            raise InvalidArgumentError(f"size must be (height, width), got {self.size!r}")
        if any(len(e) != 5 for e in self.extras):
            raise InvalidArgumentError(
                f"each extra block is (1x1 width, output width, kernel, stride, padding), got "
                f"{self.extras!r}")

    @property
    def num_maps(self) -> int:
        return len(self.aspect_ratios)


class DefaultBoxGenerator(nn.Module):
    """SSD's default boxes (Sec. 2.2) for a set of feature maps.

    Args:
        aspect_ratios: per map, the ratios ``a_r > 1`` (each adds ``a_r`` and ``1 / a_r``).
        scales: ``m + 1`` scales relative to the image.
        steps: per map, its stride in pixels (``None``: centres from the map's own size).
        clip: clip the boxes' relative sides to ``[0, 1]``.
    """

    def __init__(self, aspect_ratios: Sequence[Sequence[int]], scales: Sequence[float],
                 steps: Sequence[int] | None = None, *, clip: bool = True) -> None:
        super().__init__()
        self.aspect_ratios = tuple(tuple(r) for r in aspect_ratios)
        self.scales = tuple(float(s) for s in scales)
        self.steps = None if steps is None else tuple(steps)
        self.clip = clip
        self.wh_pairs = []
        for k, ratios in enumerate(self.aspect_ratios):
            s_k, s_next = self.scales[k], self.scales[k + 1]
            s_prime = math.sqrt(s_k * s_next)
            pairs = [[s_k, s_k], [s_prime, s_prime]]
            for ratio in ratios:
                root = math.sqrt(ratio)
                pairs += [[s_k * root, s_k / root], [s_k / root, s_k * root]]
            self.wh_pairs.append(torch.as_tensor(pairs, dtype=torch.float32))

    def extra_repr(self) -> str:
        return (f"aspect_ratios={self.aspect_ratios}, scales={self.scales}, "
                f"steps={self.steps}, clip={self.clip}")

    def num_anchors_per_location(self) -> list[int]:
        """``2 + 2 len(ratios)`` boxes per position, per map."""
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def relative_boxes(self, grid_sizes: Sequence[tuple[int, int]],
                       image_size: tuple[int, int]) -> Tensor:
        """``Tensor[sum H W k, 4]`` ``(cx, cy, w, h)`` relative to the image, position-major."""
        boxes = []
        for k, (grid_h, grid_w) in enumerate(grid_sizes):
            if self.steps is not None:
                cells_x, cells_y = image_size[1] / self.steps[k], image_size[0] / self.steps[k]
            else:
                cells_y, cells_x = grid_h, grid_w
            cx = ((torch.arange(grid_w) + 0.5) / cells_x).float()
            cy = ((torch.arange(grid_h) + 0.5) / cells_y).float()
            cy, cx = torch.meshgrid(cy, cx, indexing="ij")
            pairs = self.wh_pairs[k].clamp(0, 1) if self.clip else self.wh_pairs[k]
            # (H W, 2) centres, each repeated for the k boxes of its position.
            centres = torch.stack((cx.reshape(-1), cy.reshape(-1)) * len(pairs), -1).reshape(-1, 2)
            boxes.append(torch.cat((centres, pairs.repeat(grid_h * grid_w, 1)), dim=1))
        return torch.cat(boxes)

    def forward(self, images: Tensor, feature_maps: Sequence[Tensor]) -> list[Tensor]:
        """Per image of the ``(B, C, H, W)`` batch, ``Tensor[A, 4]`` ``(x1, y1, x2, y2)``."""
        if len(feature_maps) != len(self.aspect_ratios):
            raise InvalidArgumentError(
                f"got {len(feature_maps)} feature maps for {len(self.aspect_ratios)} sets of "
                f"default boxes")
        image_size = (int(images.shape[-2]), int(images.shape[-1]))
        rel = self.relative_boxes([tuple(f.shape[-2:]) for f in feature_maps], image_size)
        rel = rel.to(device=images.device, dtype=feature_maps[0].dtype)
        scale = torch.tensor([image_size[1], image_size[0]], device=images.device)
        boxes = torch.cat([(rel[:, :2] - 0.5 * rel[:, 2:]) * scale,
                           (rel[:, :2] + 0.5 * rel[:, 2:]) * scale], -1)
        return [boxes for _ in range(images.shape[0])]


def _extra_blocks(in_channels: int, extras: Sequence[Extra], *, first: int,
                  batch_norm: bool) -> tuple[list[nn.Module], list[int]]:
    """The extra blocks ``conv{first}_1/_2``, ...: 1x1 then ``kernel``, each with ReLU."""
    norm = nn.BatchNorm2d if batch_norm else None
    blocks, widths = [], []
    for i, (mid, out, kernel, stride, padding) in enumerate(extras):
        n = first + i
        blocks.append(nn.Sequential(OrderedDict([
            (f"conv{n}_1", ConvNormAct(in_channels, mid, 1, norm_layer=norm)),
            (f"conv{n}_2", ConvNormAct(mid, out, kernel, stride, padding, norm_layer=norm)),
        ])))
        in_channels = out
        widths.append(out)
    return blocks, widths


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SSDVGG16Backbone(nn.Module):
    """VGG-16 truncated and dilated for SSD, with its extra blocks.

    ``features`` runs ``conv1_1`` to ``conv4_3`` (``pool3`` rounding up); ``extra[0]`` runs
    ``pool4``, ``conv5_1..3``, the 3x3/1 ``pool5``, ``fc6`` (dilation 6) and ``fc7``;
    ``extra[1:]`` are the extra blocks. The conv names are those of
    :class:`~modernvision.models.classification.vgg.VGG`, so its weights load by name.

    Args:
        extras: the extra blocks (:class:`SSDConfig`).
        fc_width: channels of ``fc6`` and ``fc7``.
        l2_scale: initial per-channel scale of the L2-normalised ``conv4_3``.
        trainable_layers: VGG stages, counted back from ``conv5``, whose convs train (0..5).

    Attributes:
        out_channels: channels of the six predicting maps.
    """

    def __init__(self, extras: Sequence[Extra], *, fc_width: int = 1024, l2_scale: float = 20.0,
                 trainable_layers: int = 5) -> None:
        super().__init__()
        if not 0 <= trainable_layers <= 5:
            raise InvalidArgumentError(
                f"trainable_backbone_layers must be in [0, 5] for VGG-16, got {trainable_layers}")
        stages: list[OrderedDict[str, nn.Module]] = []
        channels = 3
        for s, (depth, width) in enumerate(zip(_VGG16_DEPTHS, _VGG16_WIDTHS), start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            if s > 1:
                layers[f"pool{s - 1}"] = nn.MaxPool2d(2, 2, ceil_mode=s == 4)
            for i in range(1, depth + 1):
                layers[f"conv{s}_{i}"] = ConvNormAct(channels, width, 3, norm_layer=None)
                channels = width
            if s <= 5 - trainable_layers:
                for m in layers.values():
                    m.requires_grad_(False)
            stages.append(layers)
        self.features = nn.Sequential(OrderedDict(
            (k, v) for layers in stages[:4] for k, v in layers.items()))
        self.scale_weight = nn.Parameter(torch.full((512,), float(l2_scale)))
        fc = OrderedDict(stages[4])
        fc["pool5"] = nn.MaxPool2d(3, 1, 1)
        fc["fc6"] = ConvNormAct(512, fc_width, 3, padding=6, dilation=6, norm_layer=None)
        fc["fc7"] = ConvNormAct(fc_width, fc_width, 1, norm_layer=None)
        _xavier(fc["fc6"])
        _xavier(fc["fc7"])
        blocks, widths = _extra_blocks(fc_width, extras, first=8, batch_norm=False)
        for block in blocks:
            _xavier(block)
        self.extra = nn.ModuleList([nn.Sequential(fc), *blocks])
        self.out_channels = [512, fc_width, *widths]

    @torch.no_grad()
    def load_vgg16_convs(self, state_dict: StateDict) -> None:
        """Copy the conv weights of our VGG-16 classifier's ``state_dict`` (``features.conv1_1
        .conv.weight``, ...; pretrained through ``create("vgg16", weights=...)``), by name."""
        own = {**{name: m for name, m in self.features.named_children()},
               **{name: m for name, m in self.extra[0].named_children()}}
        for key, value in state_dict.items():
            if key.startswith("features.conv"):
                _, layer, rest = key.split(".", 2)
                own[layer].get_parameter(rest).copy_(value)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Images ``(B, 3, H, W)`` -> the six predicting maps, finest first."""
        x = self.features(x)
        # ParseNet's L2 normalisation across channels, with a learned per-channel scale.
        out = [self.scale_weight.view(1, -1, 1, 1) * F.normalize(x)]
        for block in self.extra:
            x = block(x)
            out.append(x)
        return out


class SSDBackbone(nn.Module):
    """A registry backbone's stages, then extra blocks on its last one (ours, for the CPU).

    Attributes:
        out_channels: channels of every predicting map.
    """

    def __init__(self, body: nn.Module, extras: Sequence[Extra], *, batch_norm: bool) -> None:
        super().__init__()
        self.body = body
        widths = list(body.out_channels.values())
        blocks, extra_widths = _extra_blocks(widths[-1], extras, first=len(widths) + 1,
                                             batch_norm=batch_norm)
        self.extra = nn.ModuleList(blocks)
        self.out_channels = widths + extra_widths

    def forward(self, x: Tensor) -> list[Tensor]:
        out = list(self.body(x).values())
        x = out[-1]
        for block in self.extra:
            x = block(x)
            out.append(x)
        return out


class SSDScoringHead(nn.Module):
    """One 3x3 conv per map predicting ``columns`` values for each of its ``k`` boxes."""

    def __init__(self, in_channels: Sequence[int], num_anchors: Sequence[int],
                 columns: int) -> None:
        super().__init__()
        self.module_list = nn.ModuleList(
            nn.Conv2d(c, columns * a, 3, padding=1) for c, a in zip(in_channels, num_anchors))
        _xavier(self.module_list)
        self.columns = columns

    def forward(self, features: list[Tensor]) -> Tensor:
        """Per map ``(B, C_k, H_k, W_k)`` -> ``(B, sum H W k, columns)``, position-major."""
        out = []
        for conv, f in zip(self.module_list, features):
            y = conv(f)
            b, _, h, w = y.shape
            # (B, k * columns, H, W) -> (B, H, W, k, columns) -> (B, H W k, columns)
            out.append(y.view(b, -1, self.columns, h, w).permute(0, 3, 4, 1, 2)
                       .reshape(b, -1, self.columns))
        return torch.cat(out, dim=1)


class SSDHead(nn.Module):
    """The class-score and box-offset predictors of every map."""

    def __init__(self, in_channels: Sequence[int], num_anchors: Sequence[int],
                 num_classes: int) -> None:
        super().__init__()
        self.classification_head = SSDScoringHead(in_channels, num_anchors, num_classes)
        self.regression_head = SSDScoringHead(in_channels, num_anchors, 4)

    def forward(self, features: list[Tensor]) -> tuple[Tensor, Tensor]:
        return self.classification_head(features), self.regression_head(features)


class SSD(Detector):
    """SSD composed of its parts.

    Args:
        backbone: images -> the list of predicting maps, with ``out_channels``.
        anchor_generator: the default boxes.
        head: the class-score and box-offset predictors.
        transform: the input transform (``fixed_size``) or ``None``.
        num_classes: classes including the background.
        iou_thresh: default boxes with IoU ``>=`` this match (0.5).
        neg_pos_ratio: hard negatives kept per positive (3).
        score_thresh: per-class scores at most this are dropped (0.01).
        nms_thresh: the per-class NMS IoU (0.45).
        detections_per_img: detections kept per image (200).
        topk_candidates: boxes kept per class before NMS (400).
        config: the configuration it was built from, if any.
    """

    def __init__(
        self,
        backbone: nn.Module,
        anchor_generator: DefaultBoxGenerator,
        head: SSDHead,
        *,
        transform: DetectionTransform | None,
        num_classes: int,
        iou_thresh: float = 0.5,
        neg_pos_ratio: float = 3.0,
        score_thresh: float = 0.01,
        nms_thresh: float = 0.45,
        detections_per_img: int = 200,
        topk_candidates: int = 400,
        config: SSDConfig | None = None,
    ) -> None:
        super().__init__(transform, num_classes=num_classes)
        self.backbone = backbone
        self.anchor_generator = anchor_generator
        self.head = head
        self.matcher = SSDMatcher(iou_thresh)
        self.box_coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.neg_pos_ratio = neg_pos_ratio
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.topk_candidates = topk_candidates
        self.config = config

    def forward_batch(
        self, batch: ImageBatch, targets: list[dict[str, Tensor]] | None
    ) -> dict[str, Tensor] | list[Detections]:
        features = self.backbone(batch.tensors)
        cls_logits, box_deltas = self.head(features)
        anchors = self.anchor_generator(batch.tensors, features)
        if targets is not None:
            return self.compute_loss(targets, cls_logits, box_deltas, anchors)
        return self.detect(cls_logits, box_deltas, anchors, batch.image_sizes)

    def compute_loss(
        self, targets: list[dict[str, Tensor]], cls_logits: Tensor, box_deltas: Tensor,
        anchors: list[Tensor],
    ) -> dict[str, Tensor]:
        """``{"bbox_regression": L_loc / N, "classification": L_conf / N}``, ``N`` the
        positives of the whole batch (at least 1).

        Args:
            cls_logits: ``(B, A, C)``.
            box_deltas: ``(B, A, 4)``.
        """
        box_losses, cls_targets, num_fg = [], [], 0
        for target, deltas, anchors_i in zip(targets, box_deltas, anchors):
            if target["boxes"].numel() == 0:
                matched = torch.full((anchors_i.shape[0],), -1, dtype=torch.int64,
                                     device=anchors_i.device)
            else:
                matched = self.matcher(box_iou(target["boxes"], anchors_i))
            foreground = torch.where(matched >= 0)[0]
            gt_index = matched[foreground]
            num_fg += foreground.numel()
            goal = self.box_coder.encode(target["boxes"][gt_index], anchors_i[foreground])
            box_losses.append(smooth_l1_loss(deltas[foreground], goal, beta=1.0, reduction="sum"))
            labels = torch.zeros(anchors_i.shape[0], dtype=torch.int64, device=anchors_i.device)
            labels[foreground] = target["labels"][gt_index]
            cls_targets.append(labels)
        labels = torch.stack(cls_targets)
        num_classes = cls_logits.shape[-1]
        # (B, A, C) -> (B A, C) -> per-box softmax cross entropy (B, A)
        ce = F.cross_entropy(cls_logits.reshape(-1, num_classes), labels.reshape(-1),
                             reduction="none").view_as(labels)
        positive = labels > 0
        negative = hard_negative_mining(ce, labels, self.neg_pos_ratio)
        n = max(1, num_fg)
        return {"bbox_regression": torch.stack(box_losses).sum() / n,
                "classification": (ce[positive].sum() + ce[negative].sum()) / n}

    def detect(self, cls_logits: Tensor, box_deltas: Tensor, anchors: list[Tensor],
               image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        """Softmax scores; per class the top ``topk_candidates`` above ``score_thresh``;
        per-class NMS; the best ``detections_per_img``."""
        probs = F.softmax(cls_logits, dim=-1)
        results = []
        for prob, deltas, anchors_i, size in zip(probs, box_deltas, anchors, image_sizes):
            boxes = clip_boxes_to_image(self.box_coder.decode(deltas, anchors_i), size)
            all_boxes, all_scores, all_labels = [], [], []
            for label in range(1, prob.shape[-1]):
                score = prob[:, label]
                keep = score > self.score_thresh
                score, box = score[keep], boxes[keep]
                score, order = score.topk(min(self.topk_candidates, score.numel()))
                all_boxes.append(box[order])
                all_scores.append(score)
                all_labels.append(torch.full_like(order, label))
            boxes_i, scores_i, labels_i = (torch.cat(all_boxes), torch.cat(all_scores),
                                           torch.cat(all_labels))
            keep = batched_nms(boxes_i, scores_i, labels_i, self.nms_thresh)
            keep = keep[: self.detections_per_img]
            results.append(Detections(boxes_i[keep], scores_i[keep], labels_i[keep]))
        return results


def ssd(
    config: SSDConfig,
    *,
    num_classes: int = 91,
    weights_backbone: str | None = None,
    trainable_backbone_layers: int | None = None,
    image_mean: Sequence[float] | None = None,
    image_std: Sequence[float] | None = None,
    score_thresh: float = 0.01,
    nms_thresh: float = 0.45,
    detections_per_img: int = 200,
    iou_thresh: float = 0.5,
    topk_candidates: int = 400,
    positive_fraction: float = 0.25,
    **overrides: Any,
) -> SSD:
    """Build an SSD from ``config`` with torchvision's builder keywords.

    Args:
        config: the architecture.
        num_classes: classes including the background (COCO's 91 by default, as torchvision).
        weights_backbone: ``None`` (random), ``"torchvision"`` or a path to a torchvision
            classifier state dict for the backbone.
        trainable_backbone_layers: backbone stages that train, counted from the deepest (0..5);
            default 4 with pretrained weights (torchvision's), else 5.
        image_mean: the transform's mean (default: Caffe-style for VGG, ImageNet's otherwise).
        image_std: the transform's standard deviation (likewise).
        positive_fraction: ``f``: hard negatives are mined at ``(1 - f) / f`` per positive.
        **overrides: fields of ``config`` to replace (``size=(256, 256)``, ...).

    Raises:
        TypeError: a keyword that is neither a builder keyword nor a config field.
    """
    if not 0 < positive_fraction <= 1:
        raise InvalidArgumentError(
            f"positive_fraction must be in (0, 1], got {positive_fraction!r}")
    config = replace_config(config, overrides, model="SSD")
    pretrained = weights_backbone is not None
    if trainable_backbone_layers is None:
        trainable_backbone_layers = 4 if pretrained else 5
    vgg = config.backbone == "vgg16"
    if vgg:
        backbone: nn.Module = SSDVGG16Backbone(config.extras, fc_width=config.fc_width,
                                               l2_scale=config.l2_scale,
                                               trainable_layers=trainable_backbone_layers)
        if pretrained:
            _load_vgg16(backbone, weights_backbone)
    else:
        body = create_backbone(config.backbone, out_features=config.levels,
                               trainable_layers=trainable_backbone_layers, frozen_bn=pretrained,
                               weights=weights_backbone, **dict(config.backbone_kwargs))
        backbone = SSDBackbone(body, config.extras, batch_norm=config.extra_batch_norm)
    boxes = DefaultBoxGenerator(config.aspect_ratios, config.scales, config.steps,
                                clip=config.clip)
    head = SSDHead(backbone.out_channels, boxes.num_anchors_per_location(), num_classes)
    mean = image_mean if image_mean is not None else VGG_MEAN if vgg else IMAGENET_MEAN
    std = image_std if image_std is not None else VGG_STD if vgg else IMAGENET_STD
    transform = DetectionTransform(min(config.size), max(config.size), image_mean=mean,
                                   image_std=std, size_divisible=1, fixed_size=config.size)
    return SSD(backbone, boxes, head, transform=transform, num_classes=num_classes,
               iou_thresh=iou_thresh, neg_pos_ratio=(1 - positive_fraction) / positive_fraction,
               score_thresh=score_thresh, nms_thresh=nms_thresh,
               detections_per_img=detections_per_img, topk_candidates=topk_candidates,
               config=config)


def _load_vgg16(backbone: SSDVGG16Backbone, weights: str) -> None:
    from modernvision.models.registry import create

    vgg = create("vgg16", num_classes=0, weights=weights)
    backbone.load_vgg16_convs(vgg.state_dict())


def convert_torchvision_ssd(state_dict: StateDict) -> StateDict:
    """torchvision's ``ssd300_vgg16`` state dict -> ours: its position-numbered VGG layers get
    their names (``backbone.features.21`` -> ``backbone.features.conv4_3.conv``, ``extra.0.7.1``
    -> ``extra.0.fc6.conv``, ``extra.1.2`` -> ``extra.1.conv8_2.conv``)."""
    names, index = {}, 0
    for s, depth in enumerate(_VGG16_DEPTHS, start=1):
        for i in range(1, depth + 1):
            names[index] = f"conv{s}_{i}"
            index += 2
        index += 1
    prefixes = {f"backbone.features.{i}.": f"backbone.features.{n}.conv."
                for i, n in names.items() if i < 23}
    # extra.0 = pool4, conv5_1, relu, conv5_2, relu, conv5_3, relu, (pool5, fc6, relu, fc7).
    prefixes.update({f"backbone.extra.0.{i - 23}.": f"backbone.extra.0.{n}.conv."
                     for i, n in names.items() if i > 23})
    prefixes.update({"backbone.extra.0.7.1.": "backbone.extra.0.fc6.conv.",
                     "backbone.extra.0.7.3.": "backbone.extra.0.fc7.conv."})
    for k in range(1, 5):
        prefixes[f"backbone.extra.{k}.0."] = f"backbone.extra.{k}.conv{7 + k}_1.conv."
        prefixes[f"backbone.extra.{k}.2."] = f"backbone.extra.{k}.conv{7 + k}_2.conv."
    out = {}
    for key, value in state_dict.items():
        prefix = key[: key.rindex(".") + 1]
        out[prefixes.get(prefix, prefix) + key[len(prefix):]] = value
    return out


SSD300_VGG16 = SSDConfig()
SSD256_RESNET18 = SSDConfig(
    "resnet18", levels=("c3", "c4", "c5"),
    extras=((128, 256, 3, 2, 1), (128, 256, 3, 2, 1), (128, 256, 3, 2, 1)),
    extra_batch_norm=True, size=(256, 256), scales=(0.07, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9),
    steps=(8, 16, 32, 64, 128, 256))
#: The demo detector's backbone (MobileNetV2 x0.5; C3-C5 of 16, 48, 1280 channels) held as
#: ``backbone.body`` as there, so ``train --init`` of its weights starts it trained.
SSD256_MOBILENET_V2_050 = replace(
    SSD256_RESNET18, backbone="mobilenet_v2", backbone_kwargs=(("width_mult", 0.5),))


@register_model(task="detection", torchvision="ssd300_vgg16", converter=convert_torchvision_ssd)
def ssd300_vgg16(*, num_classes: int = 91, **kwargs) -> SSD:
    """torchvision's SSD300 on VGG-16 (35.6 M parameters with 91 classes)."""
    return ssd(SSD300_VGG16, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def ssd256_resnet18(*, num_classes: int = 91, **kwargs) -> SSD:
    """CPU-sized: ResNet-18 C3-C5 + 3 batch-normed extra blocks, six maps, 256x256 images."""
    return ssd(SSD256_RESNET18, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def ssd256_mobilenet_v2_050(*, num_classes: int = 91, **kwargs) -> SSD:
    """CPU-sized: the demo detector's MobileNetV2 x0.5 (C3-C5, named as there for
    ``train --init``) + 3 batch-normed extra blocks, six maps, 256x256 images."""
    return ssd(SSD256_MOBILENET_V2_050, num_classes=num_classes, **kwargs)
