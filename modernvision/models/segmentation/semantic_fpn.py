"""Semantic FPN: an FPN with Panoptic FPN's semantic branch, scoring every class per pixel.

Paper: Kirillov, Girshick, He & Dollár, "Panoptic Feature Pyramid Networks", CVPR 2019,
arXiv:1901.02446, Sec. 3.2 and the semantic-segmentation experiments of Sec. 4.2 (Table 1,
"Semantic FPN"). The same branch as :class:`~modernvision.models.segmentation.panoptic_fpn.
SemanticFPNHead`, without the instance branch: every pyramid level P2-P5 is brought to 1/4
scale by (3x3 conv, group norm, ReLU, 2x bilinear) stages, the maps are summed, and a 1x1
convolution gives the logits of all classes (things and stuff alike), upsampled 4x to the input.
The paper's model: ResNet-50 or -101, a 256-channel FPN on C2-C5, a 128-channel branch with
group norm (32 groups) -- ``semantic_fpn_resnet50``.

``semantic_fpn_mobilenet_v2_050`` is ours, sized for the 2-core CPU and the 256-pixel scenes:
the demo detector's MobileNetV2 x0.5 and 64-channel FPN on C3-C5 (the same parameter names, so
``train --init RUN`` loads a trained detector's, Mask R-CNN's or Panoptic FPN's backbone and
FPN), and a P2 built from C2 by one more step of the FPN's own top-down rule (1x1 lateral of C2
plus the nearest-upsampled P3, then a 3x3 smoothing) -- the detector has no P2, and 1/8 scale is
too coarse for digit strokes. Departure: that step adds the smoothed P3 (the FPN's output) where
the FPN itself adds its unsmoothed top-down map, which it does not return.

Segmenters take normalised images and return logits at the input size in eval, a cross-entropy
loss dict in training (:class:`~modernvision.models.segmentation._base.Segmenter`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.backbone import create_backbone
from modernvision.models.detection._generalized import replace_config
from modernvision.models.necks.fpn import FeaturePyramidNetwork, FPNBackbone
from modernvision.models.registry import register_model
from modernvision.models.segmentation._base import Segmenter
from modernvision.models.segmentation.panoptic_fpn import SemanticFPNHead

__all__ = ["SemanticFPN", "SemanticFPNConfig", "semantic_fpn", "semantic_fpn_mobilenet_v2_050",
           "semantic_fpn_resnet50"]


@dataclass(frozen=True)
class SemanticFPNConfig:
    """A Semantic FPN.

    Args:
        backbone: a registered classifier, used headless.
        levels: the backbone stages the FPN reads, finest first.
        fine_level: a stage finer than ``levels[0]`` joined by one more top-down step (our
            CPU variant's P2), or ``None``.
        fpn_channels: the pyramid's width ``d``.
        head_channels: width of the semantic branch's convolutions (128 in the paper).
        head_groups: group-norm groups of the branch (32).
        backbone_kwargs: keywords of the classifier's builder (``(("width_mult", 0.5),)``).
    """

    backbone: str
    levels: tuple[str, ...] = ("c2", "c3", "c4", "c5")
    fine_level: str | None = None
    fpn_channels: int = 256
    head_channels: int = 128
    head_groups: int = 32
    backbone_kwargs: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        if not self.levels:
            raise InvalidArgumentError("levels must name at least one backbone stage")
        if self.fine_level is not None and self.fine_level in self.levels:
            raise InvalidArgumentError(f"fine_level {self.fine_level!r} is already one of "
                                       f"levels {self.levels}")
        if self.head_channels % self.head_groups:
            raise InvalidArgumentError(f"head_channels ({self.head_channels}) must be a "
                                       f"multiple of head_groups ({self.head_groups})")


class _FPNOnLevels(FPNBackbone):
    """An :class:`FPNBackbone` whose body returns more stages than the FPN reads (the fine
    level); its names and strides are those of the FPN's levels only."""

    def __init__(self, body: nn.Module, fpn: FeaturePyramidNetwork,
                 levels: tuple[str, ...]) -> None:
        nn.Module.__init__(self)
        self.body, self.fpn, self.levels = body, fpn, list(levels)
        names = fpn.output_names(self.levels)
        self.out_channels = {n: fpn.out_channels for n in names}
        self.strides = {n: body.strides[level] for n, level in zip(names, levels)}

    def forward_stages(self, stages: dict[str, Tensor]) -> dict[str, Tensor]:
        """The pyramid of the body's ``stages`` (the fine one, if any, is left out)."""
        return self.fpn({n: stages[n] for n in self.levels})

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.forward_stages(self.body(x))


class SemanticFPN(Segmenter):
    """Backbone + FPN (+ an optional finer top-down step) + the semantic branch.

    Args:
        backbone: the body and FPN (``forward_stages`` gives the pyramid of the body's
            stages); the body also returns ``fine_level`` when there is one.
        head: the semantic branch over the pyramid levels it reads.
        num_classes: classes scored per pixel.
        fine_level: the body stage of the extra finer level, or ``None``.
        ignore_index: target value of unlabelled pixels.
    """

    def __init__(self, backbone: _FPNOnLevels, head: SemanticFPNHead, *, num_classes: int,
                 fine_level: str | None = None, ignore_index: int = 255) -> None:
        super().__init__(num_classes, ignore_index=ignore_index)
        self.backbone = backbone
        self.head = head
        self.fine_level = fine_level
        self.fine_lateral: nn.Module | None = None
        self.fine_output: nn.Module | None = None
        if fine_level is not None:
            d = backbone.fpn.out_channels
            self.fine_lateral = nn.Conv2d(backbone.body.out_channels[fine_level], d, 1)
            self.fine_output = nn.Conv2d(d, d, 3, padding=1)
            for m in (self.fine_lateral, self.fine_output):  # the FPN's own initialisation
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def pyramid(self, x: Tensor) -> dict[str, Tensor]:
        """Normalised images -> the levels the head reads, finest first."""
        stages = self.backbone.body(x)
        levels = self.backbone.forward_stages(stages)
        if self.fine_level is None:
            return levels
        coarser = next(iter(levels.values()))
        lateral = self.fine_lateral(stages[self.fine_level])
        lateral = lateral + F.interpolate(coarser, size=lateral.shape[-2:], mode="nearest")
        return {f"p{self.fine_level[1:]}": self.fine_output(lateral), **levels}

    def forward_logits(self, x: Tensor) -> Tensor:
        levels = self.pyramid(x)
        return self.head({n: levels[n] for n in self.head.level_names}, tuple(x.shape[-2:]))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, fine_level={self.fine_level}"


def semantic_fpn(config: SemanticFPNConfig, *, num_classes: int, ignore_index: int = 255,
                 **overrides) -> SemanticFPN:
    """A Semantic FPN from ``config`` (``**overrides``: fields of it to replace)."""
    config = replace_config(config, overrides, model="Semantic FPN")
    stages = list(config.levels) + ([config.fine_level] if config.fine_level else [])
    body = create_backbone(config.backbone, out_features=stages,
                           **dict(config.backbone_kwargs))
    if config.fine_level is not None and (body.strides[config.fine_level]
                                          >= body.strides[config.levels[0]]):
        raise InvalidArgumentError(f"fine_level {config.fine_level!r} must be finer than "
                                   f"levels[0] {config.levels[0]!r}")
    fpn_channels = [body.out_channels[n] for n in config.levels]
    backbone = _FPNOnLevels(body, FeaturePyramidNetwork(fpn_channels, config.fpn_channels),
                            config.levels)
    strides = dict(backbone.strides)
    if config.fine_level is not None:
        strides = {f"p{config.fine_level[1:]}": body.strides[config.fine_level], **strides}
    head = SemanticFPNHead(config.fpn_channels, strides, num_classes,
                           channels=config.head_channels, groups=config.head_groups)
    return SemanticFPN(backbone, head, num_classes=num_classes, fine_level=config.fine_level,
                       ignore_index=ignore_index)


SEMANTIC_FPN_RESNET50 = SemanticFPNConfig("resnet50")
SEMANTIC_FPN_MOBILENET_V2_050 = SemanticFPNConfig(
    "mobilenet_v2", levels=("c3", "c4", "c5"), fine_level="c2", fpn_channels=64,
    head_channels=64, backbone_kwargs=(("width_mult", 0.5),))


@register_model(task="semantic")
def semantic_fpn_resnet50(*, num_classes: int = 21, **kwargs) -> SemanticFPN:
    """The paper's Semantic FPN: ResNet-50, 256-channel FPN on C2-C5, 128-channel branch."""
    return semantic_fpn(SEMANTIC_FPN_RESNET50, num_classes=num_classes, **kwargs)


@register_model(task="semantic")
def semantic_fpn_mobilenet_v2_050(*, num_classes: int = 21, **kwargs) -> SemanticFPN:
    """CPU-sized: the demo detector's MobileNetV2 x0.5 + 64-channel FPN on C3-C5 (same
    parameter names, for ``train --init``), a P2 from C2, a 64-channel branch."""
    return semantic_fpn(SEMANTIC_FPN_MOBILENET_V2_050, num_classes=num_classes, **kwargs)
