"""SE-ResNet: ResNet bottlenecks with a squeeze-and-excitation gate on the residual branch.

Paper: Hu, Shen, Albanie, Sun, Wu, "Squeeze-and-Excitation Networks", 2017, arXiv:1709.01507.

Each bottleneck of ResNet-50/101/152 gets an SE block (global average pool, FC reducing by the
ratio ``r = 16``, ReLU, FC back, sigmoid, channel-wise scale) on its branch, before the addition
with the shortcut (Fig. 3, "SE-ResNet module"). The network around the blocks is
:class:`~modernvision.models.classification.resnet.ResNet` (same stem, stages, head, options
and ``small_input`` stem).

Departures from the paper: the stride of a down-sampling block sits on the 3x3 (ResNet v1.5,
as in mmpretrain's SE-ResNet, whose 28.09 M parameters for SE-ResNet-50 this matches); the FC
layers are 1x1 convolutions with bias (see :mod:`modernvision.layers.squeeze_excite`). The
paper's SENet-154 and SE-ResNeXt variants are not built here.
"""

from __future__ import annotations

from modernvision.models.classification.resnet import ResNet, ResNetConfig
from modernvision.models.registry import register_model

__all__ = ["se_resnet50", "se_resnet101", "se_resnet152"]

SE_RESNET50 = ResNetConfig("bottleneck", (3, 4, 6, 3), se_reduction=16)
SE_RESNET101 = ResNetConfig("bottleneck", (3, 4, 23, 3), se_reduction=16)
SE_RESNET152 = ResNetConfig("bottleneck", (3, 8, 36, 3), se_reduction=16)


@register_model
def se_resnet50(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """SE-ResNet-50 (Table 2), r = 16: 28.09 M parameters."""
    return ResNet(SE_RESNET50, num_classes=num_classes, **kwargs)


@register_model
def se_resnet101(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """SE-ResNet-101 (Table 2), r = 16: 49.3 M parameters."""
    return ResNet(SE_RESNET101, num_classes=num_classes, **kwargs)


@register_model
def se_resnet152(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """SE-ResNet-152 (Table 2), r = 16: 66.8 M parameters."""
    return ResNet(SE_RESNET152, num_classes=num_classes, **kwargs)
