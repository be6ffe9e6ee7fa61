"""Feature Pyramid Network and the pyramid's RoI pooling.

Paper: Lin, Dollar, Girshick, He, Hariharan, Belongie, "Feature Pyramid Networks for Object
Detection", 2017, arXiv:1612.03144.

Sec. 3: a 1x1 *lateral* convolution brings each backbone stage ``C_k`` to ``d`` channels (256);
going *top-down*, the coarser map is upsampled by 2 with nearest-neighbour interpolation and
added to the lateral one; a 3x3 convolution smooths each sum into ``P_k`` ("to reduce the
aliasing effect of upsampling"); no non-linearity anywhere. Extra coarser levels:

* :class:`MaxPoolP6` -- ``P6`` by stride-2 subsampling of ``P5`` (Sec. 4.1, the RPN's level
  for 512^2 anchors);
* :class:`ConvP6P7` -- ``P6`` by a 3x3/2 convolution and ``P7`` by ReLU and another 3x3/2
  (RetinaNet, Lin et al. 2017, arXiv:1708.02002, Sec. 4), from ``C5`` or from ``P5``.

Eq. (1) of Sec. 4.2 assigns an RoI of size ``w x h`` (input-image pixels) to the level
``k = floor(k0 + log2(sqrt(w h) / 224))``, ``k0 = 4``, clamped to the pyramid's levels;
:class:`MultiScaleRoIAlign` pools each RoI from its level with RoIAlign.

Departures from the paper, all as torchvision (the reference the tests compare against):
    * The top-down path resizes to the lateral map's exact size (not always x2), so inputs whose
      sides are not multiples of 32 work.
    * ``P6`` of :class:`MaxPoolP6` is ``max_pool2d(P5, kernel_size=1, stride=2)``.
    * Weights start Kaiming-uniform with ``a = 1`` and zero biases (the paper does not say).
    * :class:`MultiScaleRoIAlign` infers each level's scale as the power of two nearest to
      ``feature size / largest image size`` and adds 1e-6 inside the floor of eq. (1); RoIAlign
      runs with ``aligned=False`` (Detectron's original pixel model).
    * ``top_down=False`` drops the top-down additions: each level is its own lateral and 3x3
      smoothing ("bottom-up pyramid", row (c) of the paper's Table 1, an ablation, not FPN).

State-dict keys are torchvision's (``inner_blocks.{i}.0``, ``layer_blocks.{i}.0``,
``extra_blocks.p6``/``p7``), so its FPN weights load as they are. Output names: a stage named
``c<k>`` gives ``p<k>`` and the extra levels continue the numbering (``p6``, ``p7``); other
input names are kept and the extra levels are called ``pool`` (max-pool) or ``p6``/``p7``, as
torchvision names them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.ops import roi_align, roi_pool

__all__ = [
    "ConvP6P7",
    "ExtraLevels",
    "FPNBackbone",
    "FeaturePyramidNetwork",
    "MaxPoolP6",
    "MultiScaleRoIAlign",
    "MultiScaleRoIPool",
    "fpn_level",
]


class ExtraLevels(nn.Module):
    """Coarser levels appended after the top-down pass.

    ``forward(results, inputs)`` gets the pyramid levels (finest first) and the backbone maps
    they came from, and returns the extra maps (finest first). ``num_levels`` is their number.
    """

    num_levels: int

    def forward(self, results: list[Tensor], inputs: list[Tensor]) -> list[Tensor]:
        raise TypeError(f"{type(self).__name__} must implement forward")


class MaxPoolP6(ExtraLevels):
    """``P6 = max_pool2d(P5, kernel_size=1, stride=2)`` (FPN, Sec. 4.1)."""

    num_levels = 1

    def forward(self, results: list[Tensor], inputs: list[Tensor]) -> list[Tensor]:
        return [F.max_pool2d(results[-1], kernel_size=1, stride=2, padding=0)]


class ConvP6P7(ExtraLevels):
    """``P6 = conv3x3/2(x)``, ``P7 = conv3x3/2(relu(P6))`` with ``x`` = ``P5`` when
    ``in_channels == out_channels`` else ``C5`` (RetinaNet, Sec. 4; torchvision's rule).

    Args:
        in_channels: channels of the map ``P6`` is computed from.
        out_channels: channels of ``P6`` and ``P7``.
    """

    num_levels = 2

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.p6 = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, 2, 1)
        self.use_p5 = in_channels == out_channels

    def forward(self, results: list[Tensor], inputs: list[Tensor]) -> list[Tensor]:
        p6 = self.p6(results[-1] if self.use_p5 else inputs[-1])
        return [p6, self.p7(F.relu(p6))]


class FeaturePyramidNetwork(nn.Module):
    """FPN over backbone maps given finest first (Sec. 3).

    Args:
        in_channels: channels of each input map, finest first (e.g. ResNet-50's C2..C5:
            ``(256, 512, 1024, 2048)``).
        out_channels: ``d``, the channels of every pyramid level.
        extra_levels: extra coarser levels (:class:`MaxPoolP6`, :class:`ConvP6P7`) or ``None``.
        top_down: add the upsampled coarser level to each lateral (FPN); ``False`` gives the
            bottom-up pyramid of the paper's ablation.

    Attributes:
        out_channels: ``d``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        *,
        extra_levels: ExtraLevels | None = None,
        top_down: bool = True,
    ) -> None:
        super().__init__()
        if not in_channels or any(c <= 0 for c in in_channels) or out_channels <= 0:
            raise InvalidArgumentError(
                f"in_channels must be positive channel counts and out_channels positive, got "
                f"{list(in_channels)} and {out_channels}")
        self.in_channels = tuple(in_channels)
        self.out_channels = out_channels
        self.top_down = top_down
        # One-layer Sequentials so that the keys are torchvision's (inner_blocks.{i}.0.weight).
        self.inner_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, out_channels, 1)) for c in in_channels
        )
        self.layer_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1))
            for _ in in_channels
        )
        self.extra_blocks = extra_levels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=1)
                nn.init.zeros_(m.bias)

    def output_names(self, input_names: Sequence[str]) -> list[str]:
        """Names of the outputs for inputs named ``input_names`` (see the module docstring)."""
        names = list(input_names)
        extra = self.extra_blocks.num_levels if self.extra_blocks is not None else 0
        levels = [re.fullmatch(r"c(\d+)", n) for n in names]
        if all(levels):
            last = int(levels[-1][1])
            return [f"p{m[1]}" for m in levels] + [f"p{last + 1 + i}" for i in range(extra)]
        if isinstance(self.extra_blocks, MaxPoolP6):
            return names + ["pool"]
        return names + [f"p{6 + i}" for i in range(extra)]

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{name: (B, C_i, H_i, W_i)}`` finest first -> pyramid ``{name: (B, d, H_i, W_i)}``."""
        names = list(features)
        inputs = list(features.values())
        if len(inputs) != len(self.inner_blocks):
            raise InvalidArgumentError(
                f"FeaturePyramidNetwork was built for {len(self.inner_blocks)} maps, got "
                f"{len(inputs)} ({names})")
        last = self.inner_blocks[-1](inputs[-1])
        results = [self.layer_blocks[-1](last)]
        for i in range(len(inputs) - 2, -1, -1):
            lateral = self.inner_blocks[i](inputs[i])
            if self.top_down:
                lateral = lateral + F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            last = lateral
            results.insert(0, self.layer_blocks[i](last))
        if self.extra_blocks is not None:
            results.extend(self.extra_blocks(results, inputs))
        return dict(zip(self.output_names(names), results))


class FPNBackbone(nn.Module):
    """A backbone followed by an FPN: ``forward(x) -> dict`` of pyramid levels.

    The parts keep torchvision's names (``body``, ``fpn``), so a torchvision
    ``BackboneWithFPN`` state dict loads into it.

    Args:
        body: returns the stages, finest first, with ``out_channels`` and ``strides`` dicts
            (:class:`~modernvision.models.backbone.Backbone`).
        fpn: the pyramid built for those stages.

    Attributes:
        out_channels: channels of each level, by name (all ``fpn.out_channels``).
        strides: stride of each level, by name.
    """

    def __init__(self, body: nn.Module, fpn: FeaturePyramidNetwork) -> None:
        super().__init__()
        self.body = body
        self.fpn = fpn
        names = fpn.output_names(list(body.out_channels))
        strides = list(body.strides.values())
        extra = len(names) - len(strides)
        strides += [strides[-1] * 2 ** (i + 1) for i in range(extra)]
        self.out_channels = {n: fpn.out_channels for n in names}
        self.strides = dict(zip(names, strides))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.fpn(self.body(x))


def fpn_level(
    boxes: Tensor, k_min: int, k_max: int, *, canonical_scale: float = 224.0,
    canonical_level: int = 4, eps: float = 1e-6,
) -> Tensor:
    """Eq. (1) of FPN: the pyramid level of each box, ``floor(k0 + log2(sqrt(wh) / 224))``
    clamped to ``[k_min, k_max]``, as ``int64`` offsets ``level - k_min``.

    Args:
        boxes: ``Tensor[K, 4]`` ``(x1, y1, x2, y2)`` in input-image pixels.
    """
    size = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    level = torch.floor(canonical_level + torch.log2(size / canonical_scale)
                        + torch.tensor(eps, dtype=size.dtype))
    return (level.clamp(min=k_min, max=k_max).to(torch.int64) - k_min)


class MultiScaleRoIAlign(nn.Module):
    """RoIAlign over the pyramid, each RoI from the level eq. (1) of FPN assigns it.

    Args:
        featmap_names: the pyramid levels to pool from, finest first (e.g. ``["p2", "p3",
            "p4", "p5"]``; FPN's Faster R-CNN leaves the max-pooled ``P6`` to the RPN).
        output_size: ``(PH, PW)`` bins per RoI, or one int.
        sampling_ratio: RoIAlign's sample points per bin side (``<= 0``: adaptive).
        canonical_scale: ``224``, the ImageNet size of eq. (1).
        canonical_level: ``k0 = 4``, the level of a 224x224 RoI.
    """

    def __init__(
        self,
        featmap_names: Sequence[str],
        output_size: int | tuple[int, int],
        sampling_ratio: int,
        *,
        canonical_scale: int = 224,
        canonical_level: int = 4,
    ) -> None:
        super().__init__()
        if isinstance(featmap_names, str) or not featmap_names:
            raise InvalidArgumentError(
                f"featmap_names must be a non-empty list of level names, got {featmap_names!r}")
        self.featmap_names = list(featmap_names)
        self.output_size = (output_size, output_size) if isinstance(output_size, int) \
            else tuple(output_size)
        self.sampling_ratio = sampling_ratio
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level

    def extra_repr(self) -> str:
        return (f"featmap_names={self.featmap_names}, output_size={self.output_size}, "
                f"sampling_ratio={self.sampling_ratio}")

    @staticmethod
    def level_scale(feature: Tensor, image_size: tuple[int, int]) -> float:
        """``feature size / image size`` rounded to the nearest power of two (from the height)."""
        return 2.0 ** round(math.log2(feature.shape[-2] / image_size[0]))

    def forward(
        self,
        features: dict[str, Tensor],
        boxes: list[Tensor],
        image_sizes: Sequence[tuple[int, int]],
    ) -> Tensor:
        """Pool ``PH x PW`` features for each box.

        Args:
            features: the pyramid, ``{name: (B, C, H_l, W_l)}``.
            boxes: per image, ``Tensor[K_i, 4]`` ``(x1, y1, x2, y2)`` in (resized) input pixels.
            image_sizes: per image, its ``(height, width)`` before padding; the largest decides
                the levels' scales.

        Returns:
            ``Tensor[sum K_i, C, PH, PW]``, boxes in order (image by image).
        """
        maps = [features[name] for name in self.featmap_names]
        rois = _to_rois(boxes)
        largest = (max(s[0] for s in image_sizes), max(s[1] for s in image_sizes))
        scales = [self.level_scale(m, largest) for m in maps]
        if len(maps) == 1:
            return self.pool(maps[0], rois, scales[0])
        # Levels are named by their stride: scale 2^-k is level k.
        k_min, k_max = int(-math.log2(scales[0])), int(-math.log2(scales[-1]))
        levels = fpn_level(rois[:, 1:], k_min, k_max, canonical_scale=self.canonical_scale,
                           canonical_level=self.canonical_level)
        out = maps[0].new_zeros((rois.shape[0], maps[0].shape[1], *self.output_size))
        for level, (fmap, scale) in enumerate(zip(maps, scales)):
            index = torch.where(levels == level)[0]
            out[index] = self.pool(fmap, rois[index], scale).to(out.dtype)
        return out

    def pool(self, feature: Tensor, rois: Tensor, scale: float) -> Tensor:
        """Pool ``rois`` (``Tensor[K, 5]``) from one level: RoIAlign."""
        return roi_align(feature, rois, self.output_size, scale, self.sampling_ratio)


class MultiScaleRoIPool(MultiScaleRoIAlign):
    """:class:`MultiScaleRoIAlign` with Fast R-CNN's RoI max pooling (quantised bins) instead of
    RoIAlign -- the baseline Mask R-CNN's Table 2c compares RoIAlign with;
    ``sampling_ratio`` is unused."""

    def pool(self, feature: Tensor, rois: Tensor, scale: float) -> Tensor:
        return roi_pool(feature, rois, self.output_size, scale)


def _to_rois(boxes: list[Tensor]) -> Tensor:
    """Per-image boxes -> ``Tensor[K, 5]`` rows ``(image index, x1, y1, x2, y2)``."""
    if not boxes:
        raise InvalidArgumentError("boxes must hold one Tensor[K_i, 4] per image, got none")
    index = torch.cat([torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)])
    return torch.cat([index, torch.cat(boxes)], dim=1)
