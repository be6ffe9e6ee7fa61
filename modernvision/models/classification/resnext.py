"""ResNeXt: ResNet bottlenecks whose 3x3 is a grouped convolution.

Paper: Xie, Girshick, Dollar, Tu, He, "Aggregated Residual Transformations for Deep Neural
Networks", 2016, arXiv:1611.05431.

A ResNeXt block aggregates ``C`` (the cardinality) transformations of width ``d``; Fig. 3c
writes it as a bottleneck whose 3x3 convolution has ``C`` groups and ``C * d`` channels at the
first stage, doubling per stage like ResNet's widths (Table 1). "32x4d" means ``C = 32``,
``d = 4``. The network around the blocks is
:class:`~modernvision.models.classification.resnet.ResNet` (same stem, stages, head, options).

Departures from the paper: the stride of a down-sampling block sits on the 3x3 (as in the
paper's released code and torchvision), and ``resnext101_32x8d`` is the wider variant
torchvision ships rather than one of Table 5's rows (``resnext101_64x4d`` is).
"""

from __future__ import annotations

from modernvision.models.classification.resnet import ResNet, ResNetConfig
from modernvision.models.registry import register_model

__all__ = ["resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"]

RESNEXT50_32X4D = ResNetConfig("bottleneck", (3, 4, 6, 3), groups=32, width_per_group=4)
RESNEXT101_32X8D = ResNetConfig("bottleneck", (3, 4, 23, 3), groups=32, width_per_group=8)
RESNEXT101_64X4D = ResNetConfig("bottleneck", (3, 4, 23, 3), groups=64, width_per_group=4)


@register_model(torchvision="resnext50_32x4d")
def resnext50_32x4d(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNeXt-50 (32x4d), Table 1: 25.0 M parameters."""
    return ResNet(RESNEXT50_32X4D, num_classes=num_classes, **kwargs)


@register_model(torchvision="resnext101_32x8d")
def resnext101_32x8d(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNeXt-101 (32x8d): 88.8 M parameters."""
    return ResNet(RESNEXT101_32X8D, num_classes=num_classes, **kwargs)


@register_model(torchvision="resnext101_64x4d")
def resnext101_64x4d(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNeXt-101 (64x4d), Table 5: 83.5 M parameters."""
    return ResNet(RESNEXT101_64X4D, num_classes=num_classes, **kwargs)
