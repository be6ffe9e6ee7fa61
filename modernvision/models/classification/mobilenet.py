"""MobileNetV2: inverted residuals with linear bottlenecks.

Paper: Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", 2018, arXiv:1801.04381.

Table 2: a 3x3/2 convolution to 32 channels, seven stages of inverted residual blocks
(rows ``t, c, n, s``: expansion, output channels, repeats, stride of the first block), a 1x1
convolution to 1280 channels, global average pooling and a linear classifier. Every block
expands by ``t`` with a 1x1, filters with a depthwise 3x3, and projects back with a *linear*
1x1 (no activation, Sec. 3.2); the shortcut joins the thin bottlenecks when the shape allows.
Activations are ReLU6. The width multiplier ``width_mult`` scales every layer's channels,
rounded to a multiple of 8, except that the last 1x1 never shrinks below 1280 (Sec. 6.1).

Departures from the paper:
    * Dropout 0.2 before the classifier and torchvision's initialisation (Kaiming-normal
      fan-out convolutions, classifier N(0, 0.01)), as the paper does not specify them.
    * ``small_input=True`` gives the stem stride 1, so 28x28 / 32x32 images end at 2x2 / 1x1
      (total stride 16) rather than collapsing below one pixel; nothing else changes.
    * Module names are ours (``stem``, ``stages.{i}.{j}.expand/depthwise/project``, ``head``,
      ``fc``); :func:`convert_torchvision_mobilenet_v2` maps torchvision's state dict onto them.

Stages (``feature_info``): ``c1`` = stage 1 (16 ch, stride 2), ``c2`` = stage 2 (24, 4),
``c3`` = stage 3 (32, 8), ``c4`` = stage 5 (96, 16), ``c5`` = the final 1x1 convolution
(1280, 32) -- for each stride the last layer at that stride. With ``small_input`` the strides
halve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

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
from modernvision.models.registry import StateDict, register_model

__all__ = [
    "InvertedResidualStage",
    "MobileNetV2",
    "MobileNetV2Config",
    "convert_torchvision_mobilenet_v2",
    "make_divisible",
    "mobilenet_v2",
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, never more than 10% below it.

    The channel rounding of the MobileNet papers' reference code (and EfficientNet's).
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class InvertedResidualStage:
    """One row of Table 2: ``t`` expansion, ``c`` output channels, ``n`` blocks, ``s`` stride."""

    expand_ratio: int
    out_channels: int
    num_blocks: int
    stride: int


TABLE2 = (
    InvertedResidualStage(1, 16, 1, 1),
    InvertedResidualStage(6, 24, 2, 2),
    InvertedResidualStage(6, 32, 3, 2),
    InvertedResidualStage(6, 64, 4, 2),
    InvertedResidualStage(6, 96, 3, 1),
    InvertedResidualStage(6, 160, 3, 2),
    InvertedResidualStage(6, 320, 1, 1),
)


@dataclass(frozen=True)
class MobileNetV2Config:
    """Table 2 and the width multiplier.

    Attributes:
        stages: the ``t, c, n, s`` rows.
        stem_channels: output channels of the first 3x3/2 convolution.
        last_channels: output channels of the final 1x1 convolution.
        width_mult: width multiplier (Sec. 6.1: 0.35 to 1.4).
        round_nearest: channels are rounded to multiples of this.
        dropout: dropout before the classifier.
    """

    stages: tuple[InvertedResidualStage, ...] = TABLE2
    stem_channels: int = 32
    last_channels: int = 1280
    width_mult: float = 1.0
    round_nearest: int = 8
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {self.width_mult}")


MOBILENET_V2 = MobileNetV2Config()


class MobileNetV2(StemStagesHeadClassifier):
    """MobileNetV2 built from a :class:`MobileNetV2Config`.

    Args:
        config: the architecture.
        num_classes: size of the classifier output; 0: headless (pooled features out).
        in_channels: image channels.
        small_input: stem stride 1 for 28x28 / 32x32 images.
        norm_layer: normalisation constructor.
        **overrides: fields of ``config`` to replace (e.g. ``width_mult=0.5``).
    """

    def __init__(
        self,
        config: MobileNetV2Config = MOBILENET_V2,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        **overrides,
    ) -> None:
        super().__init__()
        config = apply_overrides(config, overrides, model=type(self).__name__)
        self.config = config
        self.num_classes = num_classes
        self.in_channels = in_channels
        width = partial(make_divisible, divisor=config.round_nearest)
        channels = width(config.stem_channels * config.width_mult)
        stem_stride = 1 if small_input else 2
        self.stem = ConvNormAct(
            in_channels, channels, 3, stem_stride, norm_layer=norm_layer, act_layer=nn.ReLU6
        )
        stages, strides, stage_channels = [], [], []
        stride = stem_stride
        for row in config.stages:
            out = width(row.out_channels * config.width_mult)
            blocks = []
            for j in range(row.num_blocks):
                blocks.append(
                    InvertedResidual(
                        channels,
                        out,
                        hidden_channels=int(round(channels * row.expand_ratio)),
                        stride=row.stride if j == 0 else 1,
                        act_layer=nn.ReLU6,
                        norm_layer=norm_layer,
                    )
                )
                channels = out
            stride *= row.stride
            stages.append(nn.Sequential(*blocks))
            strides.append(stride)
            stage_channels.append(out)
        self.stages = nn.Sequential(*stages)
        self.num_features = width(config.last_channels * max(1.0, config.width_mult))
        self.head = ConvNormAct(
            channels, self.num_features, 1, norm_layer=norm_layer, act_layer=nn.ReLU6
        )
        self.dropout = head_dropout(config.dropout, num_classes)
        self.fc = linear_head(self.num_features, num_classes)
        self._set_feature_info(strides, stage_channels, stem_stride)
        init_fan_out(self, linear=lambda m: nn.init.normal_(m.weight, 0, 0.01))


def convert_torchvision_mobilenet_v2(
    state_dict: StateDict, config: MobileNetV2Config = MOBILENET_V2
) -> StateDict:
    """Rename a torchvision ``mobilenet_v2`` state dict to :class:`MobileNetV2`'s names.

    torchvision keeps one flat ``features`` list (stem, 17 blocks, last conv) and names a
    block's layers by position (``conv.0.0`` = expand conv when ``t != 1``).
    """
    where = [(i, j) for i, row in enumerate(config.stages) for j in range(row.num_blocks)]

    def rename_block(key: str, index: str, rest: str) -> str:
        stage, block = where[int(index) - 1]
        expands = f"features.{index}.conv.3.weight" in state_dict
        layers = _MNV2_EXPAND if expands else _MNV2_NO_EXPAND
        lm = re.fullmatch(r"conv\.(\d+)\.(.+)", rest)
        if lm is None:
            raise KeyError(f"unexpected key {key!r} in a torchvision mobilenet_v2 state dict")
        name, rest = layers[lm[1]], lm[2]
        if name in ("expand", "depthwise"):  # Conv2dNormActivation: 0 conv, 1 bn
            name, rest = f"{name}.{CONV_NORM_ACT[rest[0]]}", rest[2:]
        return f"stages.{stage}.{block}.{name}.{rest}"

    return convert_torchvision_features(
        state_dict, last=len(where) + 1, model="mobilenet_v2", rename_block=rename_block
    )


_MNV2_EXPAND = {"0": "expand", "1": "depthwise", "2": "project.conv", "3": "project.bn"}
_MNV2_NO_EXPAND = {"0": "depthwise", "1": "project.conv", "2": "project.bn"}


@register_model(torchvision="mobilenet_v2", converter=convert_torchvision_mobilenet_v2)
def mobilenet_v2(*, num_classes: int = 1000, **kwargs) -> MobileNetV2:
    """MobileNetV2 1.0 (Table 2): 3.5 M parameters; ``width_mult`` scales it."""
    return MobileNetV2(MOBILENET_V2, num_classes=num_classes, **kwargs)
