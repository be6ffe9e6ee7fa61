"""EfficientNet B0-B7: MBConv blocks, scaled in depth, width and resolution together.

Paper: Tan, Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
2019, arXiv:1905.11946.

B0 (Table 1): a 3x3/2 convolution to 32 channels, seven stages of MBConv blocks (the
MobileNetV2 inverted residual with a squeeze-and-excitation gate of ratio 0.25 of the block's
input channels and SiLU ("swish") activations; rows: expansion, kernel, stride, channels,
repeats), a 1x1 convolution to 1280 channels, pooling, dropout and a linear classifier.
Stochastic depth drops block ``i`` of ``N`` with probability ``0.2 * i / N``.

Compound scaling (Sec. 3.3, eq. 3): depth ``d = alpha^phi``, width ``w = beta^phi``, resolution
``r = gamma^phi`` with ``alpha = 1.2, beta = 1.1, gamma = 1.15`` found by grid search on B0
under ``alpha * beta^2 * gamma^2 ~= 2`` (so FLOPs grow by about ``2^phi``). Channels become
``make_divisible(c * w, 8)`` and repeats ``ceil(n * d)``. The released B1-B7 do not use the
formula's values exactly: their coefficients were rounded by hand. :func:`compound_scaling_table`
sets the two side by side; the registered ``efficientnet_b0`` .. ``efficientnet_b7`` use the
released coefficients (``efficientnet(phi)``), ``efficientnet(phi, scaling="compound")`` the
formula's.

Departures from the paper:
    * Batch norm: eps 1e-5 / momentum 0.1 for B0-B4 and eps 1e-3 / momentum 0.01 for B5-B7,
      as torchvision (whose B5-B7 weights were ported from TensorFlow); the paper's code uses
      eps 1e-3 / momentum 0.01 throughout (set ``bn_eps``/``bn_momentum``).
    * ``small_input=True`` gives the stem stride 1, so 28x28 / 32x32 images end at 2x2 / 1x1
      (total stride 16); nothing else changes.
    * The model does not resize its input: ``config.resolution`` records the resolution the
      variant is meant for; any size works (global pooling).
    * Module names are ours; :func:`convert_torchvision_efficientnet` maps torchvision's state
      dict onto them.

Stages (``feature_info``): ``c1`` = stage 1 (stride 2), ``c2`` = stage 2 (4), ``c3`` = stage 3
(8), ``c4`` = stage 5 (16), ``c5`` = the final 1x1 convolution (32).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial
from typing import Literal

from torch import nn

from modernvision.layers.conv import ConvNormAct
from modernvision.layers.residual import InvertedResidual
from modernvision.models.classification._family import (
    CONV_NORM_ACT,
    StemStagesHeadClassifier,
    apply_overrides,
    convert_torchvision_features,
    head_dropout,
    init_fan_out,
    linear_head,
)
from modernvision.models.classification.mobilenet import make_divisible
from modernvision.models.registry import StateDict, register_model

__all__ = [
    "ALPHA",
    "BETA",
    "GAMMA",
    "EfficientNet",
    "EfficientNetConfig",
    "MBConvStage",
    "ScalingRow",
    "compound_scaling_table",
    "convert_torchvision_efficientnet",
    "efficientnet",
    "format_compound_scaling_table",
]

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # depth, width, resolution bases (Sec. 3.3, step 1)
BASE_RESOLUTION = 224


@dataclass(frozen=True)
class MBConvStage:
    """One row of Table 1: expansion, kernel, stride, input/output channels, repeats."""

    expand_ratio: int
    kernel_size: int
    stride: int
    in_channels: int
    out_channels: int
    num_blocks: int


TABLE1 = (
    MBConvStage(1, 3, 1, 32, 16, 1),
    MBConvStage(6, 3, 2, 16, 24, 2),
    MBConvStage(6, 5, 2, 24, 40, 2),
    MBConvStage(6, 3, 2, 40, 80, 3),
    MBConvStage(6, 5, 1, 80, 112, 3),
    MBConvStage(6, 5, 2, 112, 192, 4),
    MBConvStage(6, 3, 1, 192, 320, 1),
)


@dataclass(frozen=True)
class EfficientNetConfig:
    """B0's Table 1 and the scaling coefficients of one variant.

    Attributes:
        width_mult: channel multiplier ``w``.
        depth_mult: repeat multiplier ``d``.
        resolution: the input resolution the variant is meant for (not enforced).
        dropout: dropout before the classifier.
        stochastic_depth_prob: drop probability of the last block (linear from 0).
        stages: Table 1's MBConv rows.
        stem_channels: channels of the first convolution before scaling.
        head_channels: channels of the final 1x1 convolution before scaling.
        se_ratio: SE bottleneck width as a fraction of the block's input channels.
        bn_eps: batch-norm epsilon.
        bn_momentum: batch-norm momentum (PyTorch convention).
    """

    width_mult: float = 1.0
    depth_mult: float = 1.0
    resolution: int = BASE_RESOLUTION
    dropout: float = 0.2
    stochastic_depth_prob: float = 0.2
    stages: tuple[MBConvStage, ...] = TABLE1
    stem_channels: int = 32
    head_channels: int = 1280
    se_ratio: float = 0.25
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1


# Released coefficients (width, depth, resolution, dropout) of B0..B7.
OFFICIAL = (
    (1.0, 1.0, 224, 0.2),
    (1.0, 1.1, 240, 0.2),
    (1.1, 1.2, 260, 0.3),
    (1.2, 1.4, 300, 0.3),
    (1.4, 1.8, 380, 0.4),
    (1.6, 2.2, 456, 0.4),
    (1.8, 2.6, 528, 0.5),
    (2.0, 3.1, 600, 0.5),
)


def official_config(phi: int) -> EfficientNetConfig:
    """The released EfficientNet-B``phi`` coefficients (``phi`` in 0..7)."""
    if not isinstance(phi, int) or not 0 <= phi < len(OFFICIAL):
        raise ValueError(f"phi must be an int in 0..7 for the released variants, got {phi!r}")
    w, d, r, p = OFFICIAL[phi]
    bn = {"bn_eps": 1e-3, "bn_momentum": 0.01} if phi >= 5 else {}
    return EfficientNetConfig(width_mult=w, depth_mult=d, resolution=r, dropout=p, **bn)


def compound_config(phi: float) -> EfficientNetConfig:
    """EfficientNet scaled by eq. 3: ``d = 1.2^phi, w = 1.1^phi, r = 224 * 1.15^phi``.

    Dropout follows the released variant nearest to ``phi`` (the paper only says it grows from
    0.2 for B0 to 0.5 for B7).
    """
    if not isinstance(phi, (int, float)) or phi < 0:
        raise ValueError(f"phi must be a number >= 0, got {phi!r}")
    dropout = OFFICIAL[min(len(OFFICIAL) - 1, round(phi))][3]
    return EfficientNetConfig(
        width_mult=BETA**phi,
        depth_mult=ALPHA**phi,
        resolution=round(BASE_RESOLUTION * GAMMA**phi),
        dropout=dropout,
    )


@dataclass(frozen=True)
class ScalingRow:
    """One variant's coefficients from the formula beside the released ones."""

    name: str
    phi: int
    depth: float
    width: float
    resolution: int
    official_depth: float
    official_width: float
    official_resolution: int
    official_dropout: float
    flops_factor: float  # (alpha * beta^2 * gamma^2)^phi, the formula's FLOPs growth


def compound_scaling_table() -> list[ScalingRow]:
    """Depth, width and resolution of B0..B7 from eq. 3 (``phi`` = 0..7) and as released."""
    rows = []
    for phi, (w, d, r, p) in enumerate(OFFICIAL):
        c = compound_config(phi)
        rows.append(
            ScalingRow(
                f"efficientnet_b{phi}",
                phi,
                c.depth_mult,
                c.width_mult,
                c.resolution,
                d,
                w,
                r,
                p,
                (ALPHA * BETA**2 * GAMMA**2) ** phi,
            )
        )
    return rows


def format_compound_scaling_table() -> str:
    """:func:`compound_scaling_table` as a markdown table."""
    lines = [
        "| model | phi | depth d=1.2^phi (released) | width w=1.1^phi (released) "
        "| resolution 224*1.15^phi (released) | dropout | FLOPs x |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in compound_scaling_table():
        lines.append(
            f"| {r.name} | {r.phi} | {r.depth:.2f} ({r.official_depth}) | {r.width:.2f} "
            f"({r.official_width}) | {r.resolution} ({r.official_resolution}) "
            f"| {r.official_dropout} | {r.flops_factor:.1f} |"
        )
    return "\n".join(lines)


class EfficientNet(StemStagesHeadClassifier):
    """EfficientNet built from an :class:`EfficientNetConfig`.

    Args:
        config: the architecture.
        num_classes: size of the classifier output; 0: headless (pooled features out).
        in_channels: image channels.
        small_input: stem stride 1 for 28x28 / 32x32 images.
        **overrides: fields of ``config`` to replace (e.g. ``stochastic_depth_prob=0.0``).
    """

    def __init__(
        self,
        config: EfficientNetConfig,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        **overrides,
    ) -> None:
        super().__init__()
        config = apply_overrides(config, overrides, model=type(self).__name__)
        self.config = config
        self.num_classes = num_classes
        self.in_channels = in_channels
        norm = partial(nn.BatchNorm2d, eps=config.bn_eps, momentum=config.bn_momentum)
        width = partial(make_divisible, divisor=8)

        stem_stride = 1 if small_input else 2
        channels = width(config.stem_channels * config.width_mult)
        self.stem = ConvNormAct(
            in_channels, channels, 3, stem_stride, norm_layer=norm, act_layer=nn.SiLU
        )
        repeats = [math.ceil(row.num_blocks * config.depth_mult) for row in config.stages]
        total, index = sum(repeats), 0
        stages, strides, stage_channels = [], [], []
        stride = stem_stride
        for row, n in zip(config.stages, repeats):
            out = width(row.out_channels * config.width_mult)
            blocks = []
            for j in range(n):
                blocks.append(
                    InvertedResidual(
                        channels,
                        out,
                        hidden_channels=width(channels * row.expand_ratio),
                        stride=row.stride if j == 0 else 1,
                        kernel_size=row.kernel_size,
                        act_layer=nn.SiLU,
                        se_channels=max(1, int(channels * config.se_ratio)),
                        drop_path_prob=config.stochastic_depth_prob * index / total,
                        norm_layer=norm,
                    )
                )
                channels, index = out, index + 1
            stride *= row.stride
            stages.append(nn.Sequential(*blocks))
            strides.append(stride)
            stage_channels.append(out)
        self.stages = nn.Sequential(*stages)
        self.num_features = width(config.head_channels * config.width_mult)
        self.head = ConvNormAct(channels, self.num_features, 1, norm_layer=norm, act_layer=nn.SiLU)
        self.dropout = head_dropout(config.dropout, num_classes, inplace=True)
        self.fc = linear_head(self.num_features, num_classes)
        self._set_feature_info(strides, stage_channels, stem_stride)
        init_fan_out(self, linear=_init_linear)


def _init_linear(m: nn.Linear) -> None:
    bound = 1.0 / math.sqrt(m.out_features)
    nn.init.uniform_(m.weight, -bound, bound)


def efficientnet(
    phi: float,
    *,
    num_classes: int = 1000,
    scaling: Literal["official", "compound"] = "official",
    **kwargs,
) -> EfficientNet:
    """EfficientNet-B``phi``.

    Args:
        phi: the compound coefficient; 0..7 for the released variants.
        num_classes: size of the classifier output.
        scaling: ``"official"`` -- the released B0..B7 coefficients (torchvision-compatible);
            ``"compound"`` -- exactly ``d = 1.2^phi, w = 1.1^phi, r = 224 * 1.15^phi``.
        **kwargs: ``in_channels``, ``small_input`` and config fields to override.
    """
    if scaling == "official":
        config = official_config(phi)  # type: ignore[arg-type]
    elif scaling == "compound":
        config = compound_config(phi)
    else:
        raise ValueError(f"scaling must be 'official' or 'compound', got {scaling!r}")
    return EfficientNet(config, num_classes=num_classes, **kwargs)


def convert_torchvision_efficientnet(state_dict: StateDict) -> StateDict:
    """Rename a torchvision ``efficientnet_b*`` state dict to :class:`EfficientNet`'s names.

    torchvision: ``features.0`` stem, ``features.1..7`` stages of ``MBConv`` whose ``block`` is
    positional (``block.0`` expand if present, then depthwise, SE, project), ``features.8``
    last conv, ``classifier.1`` linear.
    """
    indices = {int(k.split(".")[1]) for k in state_dict if k.startswith("features.")}

    def rename_block(key: str, index: str, rest: str) -> str:
        bm = re.fullmatch(r"(\d+)\.block\.(\d+)\.(.+)", rest)
        if bm is None:
            raise KeyError(f"unexpected key {key!r} in a torchvision efficientnet state dict")
        block, layer, rest = bm[1], bm[2], bm[3]
        expands = f"features.{index}.{block}.block.3.0.weight" in state_dict
        name = (_EXPAND if expands else _NO_EXPAND)[layer]
        if name != "se":  # Conv2dNormActivation: 0 conv, 1 bn
            rest = f"{CONV_NORM_ACT[rest[0]]}.{rest[2:]}"
        return f"stages.{int(index) - 1}.{block}.{name}.{rest}"

    return convert_torchvision_features(
        state_dict, last=max(indices, default=0), model="efficientnet", rename_block=rename_block
    )


_EXPAND = {"0": "expand", "1": "depthwise", "2": "se", "3": "project"}
_NO_EXPAND = {"0": "depthwise", "1": "se", "2": "project"}


@register_model(torchvision="efficientnet_b0", converter=convert_torchvision_efficientnet)
def efficientnet_b0(*, num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B0 (Table 1): 5.3 M parameters, 224 px."""
    return efficientnet(0, num_classes=num_classes, **kwargs)


@register_model(torchvision="efficientnet_b1", converter=convert_torchvision_efficientnet)
def efficientnet_b1(*, num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B1: width 1.0, depth 1.1, 240 px, 7.8 M parameters."""
    return efficientnet(1, num_classes=num_classes, **kwargs)


@register_model(torchvision="efficientnet_b2", converter=convert_torchvision_efficientnet)
def efficientnet_b2(*, num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B2: width 1.1, depth 1.2, 260 px, 9.1 M parameters."""
    return efficientnet(2, num_classes=num_classes, **kwargs)


@register_model(torchvision="efficientnet_b3", converter=convert_torchvision_efficientnet)
def efficientnet_b3(*, num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B3: width 1.2, depth 1.4, 300 px, 12.2 M parameters."""
    return efficientnet(3, num_classes=num_classes, **kwargs)


@register_model(torchvision="efficientnet_b4", converter=convert_torchvision_efficientnet)
def efficientnet_b4(*, num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B4: width 1.4, depth 1.8, 380 px, 19.3 M parameters."""
    return efficientnet(4, num_classes=num_classes, **kwargs)


@register_model(torchvision="efficientnet_b5", converter=convert_torchvision_efficientnet)
def efficientnet_b5(*, num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B5: width 1.6, depth 2.2, 456 px, 30.4 M parameters."""
    return efficientnet(5, num_classes=num_classes, **kwargs)


@register_model(torchvision="efficientnet_b6", converter=convert_torchvision_efficientnet)
def efficientnet_b6(*, num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B6: width 1.8, depth 2.6, 528 px, 43.0 M parameters."""
    return efficientnet(6, num_classes=num_classes, **kwargs)


@register_model(torchvision="efficientnet_b7", converter=convert_torchvision_efficientnet)
def efficientnet_b7(*, num_classes: int = 1000, **kwargs) -> EfficientNet:
    """EfficientNet-B7: width 2.0, depth 3.1, 600 px, 66.3 M parameters."""
    return efficientnet(7, num_classes=num_classes, **kwargs)
