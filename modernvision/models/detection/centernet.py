"""CenterNet: objects as points -- a heatmap peak per object, its offset and its size.

Paper: Zhou, Wang, Krahenbuhl, "Objects as Points", 2019, arXiv:1904.07850.

Network (Sec. 4, "ResNet"): a ResNet's last stage (stride 32) is brought back to stride 4 by
three up-convolutions (4x4 transposed convolutions of stride 2, initialised as bilinear
upsampling channel by channel) of 256, 128 and 64 channels, each preceded by a 3x3 convolution
and followed by batch norm and ReLU. Three heads -- 3x3 conv (64) + ReLU + 1x1 conv -- predict
on that stride-4 map: a heatmap per class ``Y_hat`` (sigmoid; the bias starts at ``-2.19``), a local
offset ``O_hat`` (2 channels) and the box size ``S_hat`` (2 channels, output-map pixels).

Targets (Sec. 3): an object's centre ``p`` falls at ``p~ = floor(p / R)`` on the map (``R = 4``);
its class's heatmap gets a Gaussian ``exp(-|x - p~|^2 / (2 sigma_p^2))`` there, with
CornerNet's size-adaptive radius (:func:`modernvision.ops.gaussian_radius`, ``min_overlap``
0.7, ``sigma = (2 r + 1) / 6``), element-wise maximum where Gaussians of a class overlap. At
``p~`` the offset target is ``p / R - p~`` and the size target ``(x2 - x1, y2 - y1) / R``.

Loss (eqs. 1-3): the penalty-reduced focal loss (``alpha = 2``, ``beta = 4``,
:func:`modernvision.losses.centernet_focal_loss`) on the heatmaps, plus L1 on the offsets and
sizes at the centres only, each divided by the number of objects:
``L = L_k + 0.1 L_size + 1 L_off``.

Decoding (Sec. 4): a 3x3 max-pool keeps the cells that are their neighbourhood's peak; the
``K = 100`` highest peaks over all classes are the detections, with the box
``(x + dx - w / 2, y + dy - h / 2, x + dx + w / 2, y + dy + h / 2) R``. No NMS.

Keypoints (Sec. 4.2, the "flexible design"): ``centernet_keypoints_resnet18`` adds, per
keypoint type ``j``, a heatmap (focal loss, Gaussians with the object's radius), a shared local
offset (L1), and at the object centre the displacement of each keypoint from the centre cell
(``2K`` channels, L1), the paper's ``J_hat`` and ``Phi_hat``. Decoding regresses each keypoint
from the centre and snaps it to the nearest peak (score > 0.1) of its heatmap inside the
detected box, as the paper does for human joints. On the composited scenes the keypoints are
*derived* from the instance masks -- each object's four extreme points
(:func:`modernvision.ops.extreme_points.extreme_points`) -- since the scenes carry none.

Departures:
    * The 3x3 convolutions before the up-convolutions are ordinary, not deformable (the
      library has no deformable convolution); the paper's ResNet-18 gets 28.1 AP with them.
    * ``centernet_resnet18`` here keeps the paper's structure at 256-pixel inputs for the
      composited scenes (``min_size``, ``max_size``); the paper trains at 512.
    * ``centernet_mobilenet_v2_050_fpn`` is ours: an FPN over C3-C5 whose levels are summed at
      stride 8 (:class:`FusedFPN`; the paper's DLA-34 likewise merges finer stages before its
      heads) and one up-convolution to stride 4, so it starts from the demo detector's backbone
      and FPN.
    * Decoding drops boxes with no area after clipping to the image.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.layers.conv_transpose import bilinear_kernel
from modernvision.losses.focal import centernet_focal_loss
from modernvision.models.backbone import AsBody, create_backbone
from modernvision.models.detection._generalized import Detector, apply_size_overrides
from modernvision.models.detection._structures import Detections, ImageBatch
from modernvision.models.detection.transform import IMAGENET_MEAN, IMAGENET_STD, DetectionTransform
from modernvision.models.necks.fpn import FeaturePyramidNetwork, FPNBackbone
from modernvision.models.registry import register_model
from modernvision.ops import clip_boxes_to_image, draw_gaussian, gaussian_radius

__all__ = ["CenterNet", "CenterNetConfig", "CenterNetHeads", "CenterNetKeypoints", "UpConvNeck",
           "FusedFPN", "centernet", "centernet_keypoints_resnet18", "centernet_mobilenet_v2_050",
           "centernet_mobilenet_v2_050_fpn",
           "centernet_resnet18", "centernet_resnet50",
           "centernet_targets", "decode_centers", "keypoint_targets"]


@dataclass(frozen=True)
class CenterNetConfig:
    """A CenterNet variant.

    Attributes:
        backbone: a registered classifier used headless; its ``c5`` (stride 32) is read.
        up_channels: channels of the up-convolutions (the paper's three: 256, 128, 64).
        fpn_channels: ``0`` (the paper): the up-convolutions start from ``c5``. Else the
            ``fpn_levels`` go through an FPN of this width, its levels are upsampled to the
            finest and summed (:class:`FusedFPN`), and the up-convolutions start there.
        fpn_levels: the backbone stages an FPN reads, finest first.
        head_channels: width of each head's 3x3 convolution (64).
        min_overlap: CornerNet's IoU for the Gaussian radius (0.7).
        size_weight: ``lambda_size`` (0.1).
        offset_weight: ``lambda_off`` (1).
        max_detections: ``K`` peaks decoded (100).
        num_keypoints: keypoint types of the keypoint variant (0: boxes only).
        min_size: the shorter image side after resizing.
        max_size: the longest the longer side may become.
        backbone_kwargs: keyword arguments of the backbone builder, as pairs.
        body_name: hold the backbone as ``backbone.body`` (the FPN detectors' parameter
            names), so a detector of this library can initialise it (``train --init``).
    """

    backbone: str = "resnet18"
    up_channels: tuple[int, ...] = (256, 128, 64)
    fpn_channels: int = 0
    fpn_levels: tuple[str, ...] = ("c3", "c4", "c5")
    head_channels: int = 64
    min_overlap: float = 0.7
    size_weight: float = 0.1
    offset_weight: float = 1.0
    max_detections: int = 100
    num_keypoints: int = 0
    min_size: int | tuple[int, ...] = 512
    max_size: int = 512
    backbone_kwargs: tuple[tuple[str, Any], ...] = ()
    body_name: bool = False

    def __post_init__(self) -> None:
        if not self.up_channels or any(not isinstance(c, int) or c < 1
                                       for c in self.up_channels):
            raise InvalidArgumentError(
                f"up_channels must be positive ints, got {self.up_channels}")
        if not 0 < self.min_overlap < 1:
            raise InvalidArgumentError(f"min_overlap must be in (0, 1), got {self.min_overlap}")
        if not isinstance(self.max_detections, int) or self.max_detections < 1:
            raise InvalidArgumentError(
                f"max_detections must be a positive int, got {self.max_detections!r}")

        if self.fpn_channels and (not self.fpn_levels or any(
                re.fullmatch(r"c[2-5]", n) is None for n in self.fpn_levels)):
            raise InvalidArgumentError(
                f"fpn_levels must be backbone stages c2..c5, finest first, got {self.fpn_levels}")

    @property
    def output_stride(self) -> int:
        start = 2 ** int(self.fpn_levels[0][1]) if self.fpn_channels else 32
        return start // 2 ** len(self.up_channels)


class FusedFPN(FPNBackbone):
    """An :class:`FPNBackbone` (``body`` and ``fpn``, the FPN detectors' names) whose levels
    are upsampled bilinearly to the finest and summed: one map at the finest stride,
    ``{finest: (B, d, H, W)}``, that sees every level (as the semantic branch of Panoptic FPN
    merges its pyramid, and every FPN parameter gets a gradient)."""

    def __init__(self, body: nn.Module, fpn: FeaturePyramidNetwork) -> None:
        super().__init__(body, fpn)
        finest = next(iter(self.out_channels))
        self.out_channels = {finest: self.out_channels[finest]}
        self.strides = {finest: self.strides[finest]}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        levels = list(super().forward(x).values())
        size = levels[0].shape[-2:]
        fused = levels[0]
        for level in levels[1:]:
            fused = fused + F.interpolate(level, size=size, mode="bilinear", align_corners=False)
        return {next(iter(self.out_channels)): fused}


class UpConvNeck(nn.Sequential):
    """Per up-convolution: 3x3 conv + BN + ReLU, 4x4 stride-2 transposed conv + BN + ReLU.

    Each transposed conv starts as bilinear upsampling channel by channel (FCN's
    :func:`~modernvision.layers.bilinear_kernel`, zero between channels). Filling the kernel
    into every (input, output) pair instead, as an earlier version did, makes all output
    channels one and the same map at the start; CenterNet's heatmap then did not learn at all
    on the scenes (bench/detection.md)."""

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        layers: list[nn.Module] = []
        for out in channels:
            up = nn.ConvTranspose2d(out, out, 4, 2, 1, bias=False)
            with torch.no_grad():
                up.weight.copy_(bilinear_kernel(out, out, 4))
            layers += [nn.Conv2d(in_channels, out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                       up, nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            in_channels = out
        super().__init__(*layers)
        self.out_channels = in_channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def _head(in_channels: int, width: int, out: int, bias: float | None = None) -> nn.Sequential:
    """3x3 conv + ReLU + 1x1 conv. A regression head (``bias=None``) starts at N(0, 0.001)
    weights and zero biases; a heatmap head (``bias`` = -2.19) keeps PyTorch's default weights
    and only sets the output bias, as the authors' code does. (With N(0, 0.001) there too,
    training on the scenes turned every output weight of the heatmap negative within the first
    epoch; see bench/detection.md.)"""
    head = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(width, out, 1))
    if bias is None:
        for m in head:
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)
    else:
        nn.init.constant_(head[-1].bias, bias)
    return head


class CenterNetHeads(nn.Module):
    """``heatmap`` (C, bias -2.19 so every cell starts at 0.1), ``offset`` (2), ``size`` (2);
    with ``num_keypoints = K > 0`` also ``keypoint_heatmap`` (K), ``keypoint_offset`` (2) and
    ``keypoint_regression`` (2K, each keypoint's displacement from the centre cell)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64,
                 num_keypoints: int = 0) -> None:
        super().__init__()
        self.heatmap = _head(in_channels, width, num_classes, bias=-2.19)
        self.offset = _head(in_channels, width, 2)
        self.size = _head(in_channels, width, 2)
        self.num_keypoints = num_keypoints
        if num_keypoints:
            self.keypoint_heatmap = _head(in_channels, width, num_keypoints, bias=-2.19)
            self.keypoint_offset = _head(in_channels, width, 2)
            self.keypoint_regression = _head(in_channels, width, 2 * num_keypoints)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = {"heatmap": self.heatmap(x), "offset": self.offset(x), "size": self.size(x)}
        if self.num_keypoints:
            out |= {"keypoint_heatmap": self.keypoint_heatmap(x),
                    "keypoint_offset": self.keypoint_offset(x),
                    "keypoint_regression": self.keypoint_regression(x)}
        return out


def centernet_targets(targets: Sequence[dict[str, Tensor]], num_classes: int,
                      map_size: tuple[int, int], stride: int, *, min_overlap: float = 0.7
                      ) -> dict[str, Tensor]:
    """CenterNet's ground truth at output stride ``stride``.

    Args:
        targets: per image, ``boxes`` ``[N, 4]`` xyxy input pixels, ``labels`` ``[N]`` in
            ``1..num_classes``.
        num_classes: foreground classes (heatmap channels).
        map_size: the output map's ``(H, W)``.
        stride: input pixels per output cell (``R``).
        min_overlap: CornerNet's IoU for the radius.

    Returns:
        ``heatmap`` ``[B, C, H, W]``; and per object (all images concatenated): ``index``
        ``[M, 4]`` of ``(image, class, y, x)``, ``offset`` ``[M, 2]`` and ``size`` ``[M, 2]``
        (``w, h`` in cells).
    """
    h, w = map_size
    device = targets[0]["boxes"].device if targets else torch.device("cpu")
    heatmap = torch.zeros(len(targets), num_classes, h, w)
    index, offset, size = [], [], []
    for i, target in enumerate(targets):
        boxes = target["boxes"].detach().to("cpu", torch.float64) / stride
        for box, label in zip(boxes.tolist(), target["labels"].tolist()):
            bw, bh = box[2] - box[0], box[3] - box[1]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            ix, iy = min(max(int(math.floor(cx)), 0), w - 1), min(max(int(math.floor(cy)), 0),
                                                                  h - 1)
            radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw), min_overlap)))
            draw_gaussian(heatmap[i, label - 1], (ix, iy), radius)
            index.append((i, label - 1, iy, ix))
            offset.append((cx - ix, cy - iy))
            size.append((bw, bh))
    return {"heatmap": heatmap.to(device),
            "index": torch.tensor(index, dtype=torch.long, device=device).view(-1, 4),
            "offset": torch.tensor(offset, dtype=torch.float32, device=device).view(-1, 2),
            "size": torch.tensor(size, dtype=torch.float32, device=device).view(-1, 2)}


def keypoint_targets(targets: Sequence[dict[str, Tensor]], num_keypoints: int,
                     map_size: tuple[int, int], stride: int, *, min_overlap: float = 0.7
                     ) -> dict[str, Tensor]:
    """The keypoint variant's ground truth from each target's ``keypoints [N, K, 3]``.

    Returns:
        ``heatmap [B, K, H, W]`` (a Gaussian per visible keypoint, the object's radius);
        per object (in :func:`centernet_targets`' order) ``regression [M, 2K]`` (keypoint minus
        centre cell, in cells) and ``regression_mask [M, 2K]`` (1 where visible); per visible
        keypoint ``point_index [P, 4]`` ``(image, type, y, x)`` and ``point_offset [P, 2]``.
    """
    h, w = map_size
    device = targets[0]["boxes"].device if targets else torch.device("cpu")
    heatmap = torch.zeros(len(targets), num_keypoints, h, w)
    regression, reg_mask, point_index, point_offset = [], [], [], []
    for i, target in enumerate(targets):
        boxes = target["boxes"].detach().to("cpu", torch.float64) / stride
        points = target["keypoints"].detach().to("cpu", torch.float64)
        for box, kps in zip(boxes.tolist(), points.tolist()):
            bw, bh = box[2] - box[0], box[3] - box[1]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            ix, iy = min(max(int(math.floor(cx)), 0), w - 1), min(max(int(math.floor(cy)), 0),
                                                                  h - 1)
            radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw), min_overlap)))
            reg, mask = [], []
            for j, (x, y, v) in enumerate(kps):
                x, y = x / stride, y / stride
                visible = v > 0 and 0 <= x < w and 0 <= y < h
                reg += [x - ix, y - iy] if visible else [0.0, 0.0]
                mask += [float(visible)] * 2
                if visible:
                    px, py = int(math.floor(x)), int(math.floor(y))
                    draw_gaussian(heatmap[i, j], (px, py), radius)
                    point_index.append((i, j, py, px))
                    point_offset.append((x - px, y - py))
            regression.append(reg)
            reg_mask.append(mask)
    k2 = 2 * num_keypoints
    return {"heatmap": heatmap.to(device),
            "regression": torch.tensor(regression, dtype=torch.float32,
                                       device=device).view(-1, k2),
            "regression_mask": torch.tensor(reg_mask, dtype=torch.float32,
                                            device=device).view(-1, k2),
            "point_index": torch.tensor(point_index, dtype=torch.long, device=device).view(-1, 4),
            "point_offset": torch.tensor(point_offset, dtype=torch.float32,
                                         device=device).view(-1, 2)}


def decode_centers(heatmap: Tensor, offset: Tensor, size: Tensor, stride: int, k: int = 100
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """Peaks -> boxes: 3x3 max-pool peaks, top ``k`` over classes and cells.

    Args:
        heatmap: ``[B, C, H, W]`` probabilities (after the sigmoid).
        offset: ``[B, 2, H, W]``.
        size: ``[B, 2, H, W]`` (cells).
        stride: input pixels per cell.
        k: detections per image.

    Returns:
        ``boxes [B, k, 4]`` (input pixels), ``scores [B, k]``, ``classes [B, k]`` (0-based).
    """
    b, c, h, w = heatmap.shape
    peaks = heatmap * (F.max_pool2d(heatmap, 3, 1, 1) == heatmap)
    k = min(k, c * h * w)
    scores, flat = peaks.reshape(b, -1).topk(k)  # (B, C H W) -> (B, k)
    classes, cell = flat // (h * w), flat % (h * w)
    ys, xs = (cell // w).to(heatmap.dtype), (cell % w).to(heatmap.dtype)
    off = offset.flatten(2).gather(2, cell[:, None].expand(b, 2, k))  # (B, 2, k)
    wh = size.flatten(2).gather(2, cell[:, None].expand(b, 2, k))
    cx, cy = xs + off[:, 0], ys + off[:, 1]
    boxes = torch.stack([cx - wh[:, 0] / 2, cy - wh[:, 1] / 2, cx + wh[:, 0] / 2,
                         cy + wh[:, 1] / 2], dim=-1) * stride
    return boxes, scores, classes


class CenterNet(Detector):
    """CenterNet composed of its parts.

    Args:
        backbone: images -> ``{"c5": map}`` at stride 32.
        neck: the up-convolutions to the output stride.
        heads: heatmap, offset and size heads.
        transform: the input transform or ``None``.
        num_classes: classes including the background (which has no heatmap).
        config: the configuration (loss weights, radius overlap, ``K``, output stride).
    """

    def __init__(self, backbone: nn.Module, neck: UpConvNeck, heads: CenterNetHeads, *,
                 transform: DetectionTransform | None, num_classes: int,
                 config: CenterNetConfig) -> None:
        super().__init__(transform, num_classes=num_classes)
        self.backbone, self.neck, self.heads = backbone, neck, heads
        self.config = config
        self.stride = config.output_stride

    def forward_batch(self, batch: ImageBatch, targets: list[dict[str, Tensor]] | None
                      ) -> dict[str, Tensor] | list[Detections]:
        features = self.backbone(batch.tensors)
        out = self.heads(self.neck(features[next(reversed(features))]))
        if targets is not None:
            return self.compute_loss(out, targets)
        return self.postprocess_detections(out, batch.image_sizes)

    def compute_loss(self, out: dict[str, Tensor], targets: list[dict[str, Tensor]]
                     ) -> dict[str, Tensor]:
        """``loss_heatmap`` (eq. 1), ``loss_size`` (0.1 x eq. 3), ``loss_offset`` (eq. 2)."""
        cfg = self.config
        t = centernet_targets(targets, self.num_classes - 1, tuple(out["heatmap"].shape[-2:]),
                              self.stride, min_overlap=cfg.min_overlap)
        loss_heatmap = centernet_focal_loss(out["heatmap"], t["heatmap"].to(out["heatmap"]))
        image, _, ys, xs = t["index"].unbind(1)
        n = max(1, t["index"].shape[0])
        # (B, 2, H, W) at the centres -> (M, 2)
        offset = out["offset"][image, :, ys, xs]
        size = out["size"][image, :, ys, xs]
        loss_offset = (offset - t["offset"].to(offset)).abs().sum() / n
        loss_size = (size - t["size"].to(size)).abs().sum() / n
        return {"loss_heatmap": loss_heatmap, "loss_size": cfg.size_weight * loss_size,
                "loss_offset": cfg.offset_weight * loss_offset}

    def postprocess_detections(self, out: dict[str, Tensor],
                               image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        boxes, scores, classes = decode_centers(out["heatmap"].sigmoid(), out["offset"],
                                                out["size"], self.stride,
                                                self.config.max_detections)
        results = []
        for b, s, c, size in zip(boxes, scores, classes, image_sizes):
            b = clip_boxes_to_image(b, size)
            ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            results.append(Detections(b[ok], s[ok], c[ok] + 1))
        return results


class CenterNetKeypoints(CenterNet):
    """CenterNet with per-keypoint heatmaps, offsets and centre displacements (Sec. 4.2).

    Targets need ``keypoints [N, K, 3]`` in input pixels; detections carry ``keypoints``.
    """

    def compute_loss(self, out: dict[str, Tensor], targets: list[dict[str, Tensor]]
                     ) -> dict[str, Tensor]:
        """The box losses plus ``loss_keypoint_heatmap`` (focal), ``loss_keypoint_offset`` and
        ``loss_keypoint_regression`` (L1, over visible keypoints)."""
        for i, target in enumerate(targets):
            if "keypoints" not in target:
                raise InvalidArgumentError(
                    f"targets[{i}] has no 'keypoints'; {type(self).__name__} trains on "
                    f"Tensor[N, {self.heads.num_keypoints}, 3] (x, y, visibility) per image")
        losses = super().compute_loss(out, targets)
        size = tuple(out["heatmap"].shape[-2:])
        boxes_t = centernet_targets(targets, self.num_classes - 1, size, self.stride,
                                    min_overlap=self.config.min_overlap)
        t = keypoint_targets(targets, self.heads.num_keypoints, size, self.stride,
                             min_overlap=self.config.min_overlap)
        image, _, ys, xs = boxes_t["index"].unbind(1)
        reg = out["keypoint_regression"][image, :, ys, xs]  # (M, 2K)
        mask = t["regression_mask"].to(reg)
        loss_reg = ((reg - t["regression"].to(reg)).abs() * mask).sum() / mask.sum().clamp(min=1)
        p_image, _, p_y, p_x = t["point_index"].unbind(1)
        off = out["keypoint_offset"][p_image, :, p_y, p_x]
        loss_off = (off - t["point_offset"].to(off)).abs().sum() / max(1, off.shape[0])
        return {**losses,
                "loss_keypoint_heatmap": centernet_focal_loss(
                    out["keypoint_heatmap"], t["heatmap"].to(out["keypoint_heatmap"])),
                "loss_keypoint_offset": loss_off, "loss_keypoint_regression": loss_reg}

    def postprocess_detections(self, out: dict[str, Tensor],
                               image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
        cfg, stride, k = self.config, self.stride, self.heads.num_keypoints
        boxes, scores, classes = decode_centers(out["heatmap"].sigmoid(), out["offset"],
                                                out["size"], stride, cfg.max_detections)
        b, _, h, w = out["heatmap"].shape
        heat = out["heatmap"].sigmoid()
        peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
        _, cell = peaks.reshape(b, -1).topk(min(cfg.max_detections, peaks[0].numel()))
        kp_heat = out["keypoint_heatmap"].sigmoid()
        kp_peaks = kp_heat * (F.max_pool2d(kp_heat, 3, 1, 1) == kp_heat)
        results = []
        for i, size in enumerate(image_sizes):
            centre = cell[i] % (h * w)
            cy, cx = (centre // w).to(heat.dtype), (centre % w).to(heat.dtype)
            reg = out["keypoint_regression"][i].flatten(1)[:, centre].T.reshape(-1, k, 2)
            points = torch.stack([cx[:, None] + reg[..., 0], cy[:, None] + reg[..., 1]], -1)
            points = points * stride  # (D, K, 2) input pixels, regressed from the centre
            box = boxes[i]
            for j in range(k):
                # Snap to the nearest confident peak of this keypoint's heatmap inside the box.
                ys_j, xs_j = torch.nonzero(kp_peaks[i, j] > 0.1, as_tuple=True)
                if ys_j.numel() == 0:
                    continue
                off = out["keypoint_offset"][i][:, ys_j, xs_j]
                cand = torch.stack([xs_j + off[0], ys_j + off[1]], -1) * stride  # (P, 2)
                x, y = cand[None, :, 0], cand[None, :, 1]
                inside = ((x >= box[:, None, 0]) & (x <= box[:, None, 2])
                          & (y >= box[:, None, 1]) & (y <= box[:, None, 3]))  # (D, P)
                dist = (points[:, j, None] - cand[None]).norm(dim=-1)
                dist = torch.where(inside, dist, torch.full_like(dist, float("inf")))
                best, which = dist.min(1)
                snap = torch.isfinite(best)
                points[snap, j] = cand[which[snap]]
            keypoints = torch.cat([points, torch.full_like(points[..., :1], 2.0)], -1)
            clipped = clip_boxes_to_image(box, size)
            ok = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
            results.append(Detections(clipped[ok], scores[i][ok], classes[i][ok] + 1,
                                      keypoints=keypoints[ok]))
        return results




def centernet(config: CenterNetConfig, *, num_classes: int = 81,
              weights_backbone: str | None = None, trainable_backbone_layers: int | None = None,
              image_mean: Sequence[float] = IMAGENET_MEAN,
              image_std: Sequence[float] = IMAGENET_STD, **overrides: Any) -> CenterNet:
    """Build a CenterNet from ``config``.

    Args:
        config: the architecture.
        num_classes: classes including the background (81: COCO's 80 + background).
        weights_backbone: ``None``, ``"torchvision"`` or a path for the backbone classifier.
        trainable_backbone_layers: backbone stages that train, counted from ``c5``.
        **overrides: fields of ``config`` to replace (``min_size=384``, ``max_detections=50``).

    Raises:
        TypeError: a keyword that is neither a builder keyword nor a config field.
    """
    config = apply_size_overrides(config, overrides, model="CenterNet")
    body = create_backbone(config.backbone,
                           out_features=config.fpn_levels if config.fpn_channels else ("c5",),
                           trainable_layers=trainable_backbone_layers,
                           weights=weights_backbone, frozen_bn=weights_backbone is not None,
                           **dict(config.backbone_kwargs))
    if config.fpn_channels:
        body = FusedFPN(body, FeaturePyramidNetwork(list(body.out_channels.values()),
                                                    config.fpn_channels))
    elif config.body_name:
        body = AsBody(body)
    neck = UpConvNeck(next(iter(body.out_channels.values())), config.up_channels)
    heads = CenterNetHeads(neck.out_channels, num_classes - 1, config.head_channels,
                           config.num_keypoints)
    transform = DetectionTransform(config.min_size, config.max_size, image_mean=image_mean,
                                   image_std=image_std, size_divisible=32)
    cls = CenterNetKeypoints if config.num_keypoints else CenterNet
    return cls(body, neck, heads, transform=transform, num_classes=num_classes, config=config)


CENTERNET_RESNET18 = CenterNetConfig("resnet18", min_size=256, max_size=256)
CENTERNET_RESNET50 = CenterNetConfig("resnet50")
#: The demo detector's backbone (``fasterrcnn_mobilenet_v2_050_fpn``: MobileNetV2 x0.5) under
#: its parameter names, so ``--init`` of the detector's weights starts the backbone trained.
CENTERNET_MOBILENET_V2_050 = CenterNetConfig("mobilenet_v2", min_size=256, max_size=256,
                                             backbone_kwargs=(("width_mult", 0.5),),
                                             body_name=True)
#: The same with the detector's 64-channel FPN over C3-C5 (its names too: ``--init`` loads
#: backbone and FPN), fused at stride 8, and one up-convolution to stride 4.
CENTERNET_MOBILENET_V2_050_FPN = CenterNetConfig(
    "mobilenet_v2", up_channels=(64,), fpn_channels=64, min_size=256, max_size=256,
    backbone_kwargs=(("width_mult", 0.5),))
CENTERNET_KEYPOINTS_RESNET18 = CenterNetConfig("resnet18", num_keypoints=4, min_size=256,
                                               max_size=256)


@register_model(task="detection")
def centernet_resnet18(*, num_classes: int = 81, **kwargs) -> CenterNet:
    """CenterNet on ResNet-18 (up-convolutions 256-128-64 to stride 4), 256-pixel inputs."""
    return centernet(CENTERNET_RESNET18, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def centernet_resnet50(*, num_classes: int = 81, **kwargs) -> CenterNet:
    """CenterNet on ResNet-50, the paper's 512-pixel inputs."""
    return centernet(CENTERNET_RESNET50, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def centernet_mobilenet_v2_050(*, num_classes: int = 81, **kwargs) -> CenterNet:
    """CPU-sized: MobileNetV2 x0.5 (C5, 1280 channels) with the up-convolutions to stride 4,
    256-pixel inputs; its backbone is named as the demo Faster R-CNN's, so that detector's
    weights can initialise it (``train --init``)."""
    return centernet(CENTERNET_MOBILENET_V2_050, num_classes=num_classes, **kwargs)


@register_model(task="detection")
def centernet_mobilenet_v2_050_fpn(*, num_classes: int = 81, **kwargs) -> CenterNet:
    """CPU-sized, ours: the demo detector's MobileNetV2 x0.5 **and** its 64-channel FPN
    (C3-C5; same names, so ``train --init`` loads both), the levels fused at stride 8
    (:class:`FusedFPN`) and one up-convolution to stride 4, 256-pixel inputs. The paper's
    up-convolutions from C5 alone start from a stride-32 map, 8x8 cells for a 256-pixel
    scene; this variant keeps the detector's finer levels."""
    return centernet(CENTERNET_MOBILENET_V2_050_FPN, num_classes=num_classes, **kwargs)


@register_model(task="keypoint")
def centernet_keypoints_resnet18(*, num_classes: int = 81, **kwargs) -> CenterNet:
    """CenterNet keypoint variant on ResNet-18: boxes plus 4 keypoints (on the scenes, the
    extreme points derived from the masks), 256-pixel inputs."""
    return centernet(CENTERNET_KEYPOINTS_RESNET18, num_classes=num_classes, **kwargs)
