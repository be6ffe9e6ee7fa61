"""Darknet-53, the backbone of YOLOv3.

Paper: Redmon, Farhadi, "YOLOv3: An Incremental Improvement", 2018, arXiv:1804.02767, Table 1.
A 3x3 convolution (32), then five stages, each a stride-2 3x3 convolution that doubles the
width followed by residual blocks (a 1x1 convolution halving the width, a 3x3 restoring it, and
the identity shortcut added): 1, 2, 8, 8 and 4 blocks at 64, 128, 256, 512 and 1024 channels
(52 convolutions plus the classifier: 53 layers). Every convolution is followed by batch norm
and a leaky ReLU of slope 0.1, as in the Darknet framework's ``darknet53.cfg``; the classifier
is global average pooling and a fully connected layer (the paper's "Connected 1000"; the cfg
uses a 1x1 convolution, the same parameters). With 1000 classes: 41,609,928 parameters.

Stages for detection (``feature_info``): ``c1``..``c5`` at strides 2..32, the outputs of the
five stages (YOLOv3 reads ``c3``, ``c4``, ``c5``: 256, 512, 1024 channels at strides 8, 16, 32).

Departures: the width multiplier ``width_mult`` and the block counts ``depths`` of
:class:`DarknetConfig` can be changed (the paper defines only Darknet-53); the CPU-sized
detectors use a narrower, shallower one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from modernvision.layers.conv import ConvNormAct
from modernvision.models.classification._base import Classifier, FeatureInfo
from modernvision.models.classification._family import (
    apply_overrides,
    check_image_batch,
    linear_head,
)
from modernvision.models.registry import register_model

__all__ = ["DARKNET53", "Darknet", "DarknetConfig", "darknet53", "darknet_conv"]

#: The leaky ReLU of every Darknet convolution (slope 0.1).
LeakyReLU = functools.partial(nn.LeakyReLU, 0.1)


def darknet_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, *,
                 norm_layer: type[nn.Module] = nn.BatchNorm2d) -> ConvNormAct:
    """Darknet's ``convolutional`` layer: conv (no bias) -> batch norm -> leaky ReLU 0.1."""
    return ConvNormAct(in_channels, out_channels, kernel_size, stride, norm_layer=norm_layer,
                       act_layer=LeakyReLU)


@dataclass(frozen=True)
class DarknetConfig:
    """A Darknet-53-style network.

    Attributes:
        depths: residual blocks per stage (Table 1: 1, 2, 8, 8, 4).
        stem_width: channels of the first convolution (32).
        width_mult: multiplies every width (1.0 is the paper's).
    """

    depths: tuple[int, ...] = (1, 2, 8, 8, 4)
    stem_width: int = 32
    width_mult: float = 1.0

    def __post_init__(self) -> None:
        if len(self.depths) != 5 or any(not isinstance(d, int) or d < 1 for d in self.depths):
            raise ValueError(f"depths must be five positive ints, got {self.depths}")
        if not isinstance(self.stem_width, int) or self.stem_width < 1:
            raise ValueError(f"stem_width must be a positive int, got {self.stem_width!r}")
        if not self.width_mult > 0:
            raise ValueError(f"width_mult must be > 0, got {self.width_mult}")

    def width(self, channels: int) -> int:
        return max(1, int(round(channels * self.width_mult)))


DARKNET53 = DarknetConfig()


class DarknetResidual(nn.Module):
    """``x + conv3x3(conv1x1(x))``: the 1x1 halves the width, the 3x3 restores it."""

    def __init__(self, channels: int, *, norm_layer: type[nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = darknet_conv(channels, channels // 2, 1, norm_layer=norm_layer)
        self.conv2 = darknet_conv(channels // 2, channels, 3, norm_layer=norm_layer)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


class Darknet(Classifier):
    """Darknet-53 (or a narrower/shallower variant) from a :class:`DarknetConfig`.

    Args:
        config: the architecture.
        num_classes: classifier outputs; 0 builds no ``fc`` (headless).
        in_channels: image channels.
        small_input: accepted for the zoo's interface; Darknet has no stride-changing stem,
            so it only lowers the smallest accepted input (all five stages still halve).
        norm_layer: normalisation constructor.
        **overrides: fields of ``config`` to replace (``width_mult=0.25``).
    """

    def __init__(self, config: DarknetConfig, *, num_classes: int = 1000, in_channels: int = 3,
                 small_input: bool = False, norm_layer: type[nn.Module] = nn.BatchNorm2d,
                 **overrides) -> None:
        super().__init__()
        config = apply_overrides(config, overrides, model=type(self).__name__)
        self.config = config
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.small_input = small_input
        channels = config.width(config.stem_width)
        self.stem = darknet_conv(in_channels, channels, 3, norm_layer=norm_layer)
        self.feature_info = []
        for i, depth in enumerate(config.depths):
            width = config.width(config.stem_width * 2 ** (i + 1))
            layers: list[nn.Module] = [darknet_conv(channels, width, 3, 2, norm_layer=norm_layer)]
            layers += [DarknetResidual(width, norm_layer=norm_layer) for _ in range(depth)]
            self.add_module(f"stage{i + 1}", nn.Sequential(*layers))
            channels = width
            self.feature_info.append(FeatureInfo(f"c{i + 1}", width, 2 ** (i + 1)))
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = linear_head(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.1, mode="fan_out",
                                        nonlinearity="leaky_relu")

    def _check(self, x: Tensor) -> None:
        check_image_batch(x, self.in_channels, 1 if self.small_input else 32,
                          "Darknet halves the grid five times")

    def forward_features(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> the last stage ``(B, num_features, H/32, W/32)``."""
        self._check(x)
        x = self.stem(x)
        for i in range(5):
            x = getattr(self, f"stage{i + 1}")(x)
        return x

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def stage_layers(self) -> list[tuple[str, tuple[str, ...]]]:
        return [("c1", ("stem", "stage1")), *((f"c{i}", (f"stage{i}",)) for i in range(2, 6))]

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        self._check(x)
        x, out = self.stem(x), {}
        for i in range(5):
            x = getattr(self, f"stage{i + 1}")(x)
            out[f"c{i + 1}"] = x
        return out


@register_model
def darknet53(*, num_classes: int = 1000, **kwargs) -> Darknet:
    """Darknet-53 (YOLOv3, Table 1): 41.6 M parameters with 1000 classes."""
    return Darknet(DARKNET53, num_classes=num_classes, **kwargs)
