"""ResNet and the plain nets it is compared with.

Paper: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", 2015,
arXiv:1512.03385.

The nets of Table 1: a 7x7/2 convolution and a 3x3/2 max-pool (stride 4), four stages of basic
(ResNet-18/34) or bottleneck (ResNet-50/101/152) blocks at strides 4, 8, 16 and 32, global
average pooling and one fully connected layer. ``plain18``/``plain34`` are the same stacks
without shortcuts, the nets of the degradation experiment (Sec. 4.1, Fig. 4 left).

Options of the paper, all selectable through :class:`ResNetConfig` (``create("resnet50",
shortcut="A", stride_in_1x1=True)``):
    * shortcut ``"A"`` (zero-padding identity), ``"B"`` (projection where the shape changes,
      the default here and in torchvision) or ``"C"`` (projection everywhere), Table 3;
    * ``stride_in_1x1=True``: the stride of a down-sampling bottleneck on its first 1x1, as in
      the paper; the default ``False`` puts it on the 3x3 ("ResNet v1.5", torchvision's choice,
      slightly more accurate and a smaller receptive field: 427 vs 483 pixels for ResNet-50).

Departures from the paper:
    * Stride on the 3x3 by default (above).
    * ``small_input=True`` replaces the stem by one 3x3/1 convolution without max-pool, the
      CIFAR arrangement of Sec. 4.2, so 28x28 / 32x32 images end at 4x4 (total stride 8)
      instead of 1x1. The stage widths and depths stay those of Table 1.
    * Weights start as in torchvision: Kaiming-normal (fan-out) convolutions, BN weight 1 and
      bias 0, PyTorch's default for the last linear layer; ``zero_init_residual=True`` zeroes
      each branch's last BN weight (Goyal et al., 2017).
    * Module names follow torchvision (``conv1``, ``layer1``, ``fc``), so its ResNet state
      dicts load without a converter.
    * ``replace_stride_with_dilation=(False, True, True)`` (torchvision's keyword): the stride
      of ``layer3`` / ``layer4`` becomes a dilation of their 3x3s, so the last map stays at
      stride 8 (DeepLab, arXiv:1606.00915; ``feature_info`` strides follow).

Stages (``feature_info``): ``c1`` the stem's convolution output (stride 2), ``c2``..``c5`` the
outputs of ``layer1``..``layer4`` (strides 4, 8, 16, 32). With ``small_input`` the same names
have strides 1, 1, 2, 4, 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from modernvision.layers.residual import BasicBlock, Bottleneck, Shortcut
from modernvision.models.classification._base import Classifier, FeatureInfo
from modernvision.models.classification._family import (
    apply_overrides,
    check_images,
    init_fan_out,
    linear_head,
)
from modernvision.models.registry import register_model

__all__ = [
    "ResNet",
    "ResNetConfig",
    "plain18",
    "plain34",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]


@dataclass(frozen=True)
class ResNetConfig:
    """One column of Table 1 (plus the ResNeXt and SE variants, which reuse the network).

    Attributes:
        block: ``"basic"`` (two 3x3) or ``"bottleneck"`` (1x1, 3x3, 1x1 with expansion 4).
        depths: blocks in the stages conv2_x..conv5_x.
        widths: nominal widths of the four stages (the bottleneck's 3x3 width).
        stem_width: channels of the 7x7 stem.
        shortcut: ``"A"``, ``"B"``, ``"C"`` or ``None`` for a plain net.
        stride_in_1x1: the paper's stride placement (see the module docstring).
        groups: cardinality of the 3x3 (ResNeXt); 1 for ResNet.
        width_per_group: ResNeXt's bottleneck width ``d`` at the first stage; 64 for ResNet.
        se_reduction: ratio ``r`` of a squeeze-excitation gate in every block, or ``None``.
    """

    block: Literal["basic", "bottleneck"]
    depths: tuple[int, int, int, int]
    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    stem_width: int = 64
    shortcut: Shortcut = "B"
    stride_in_1x1: bool = False
    groups: int = 1
    width_per_group: int = 64
    se_reduction: int | None = None

    def __post_init__(self) -> None:
        if self.block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {self.block!r}")
        if len(self.depths) != 4 or any(d < 1 for d in self.depths):
            raise ValueError(f"depths must be four positive ints, got {self.depths}")
        if self.shortcut not in ("A", "B", "C", None):
            raise ValueError(f"shortcut must be 'A', 'B', 'C' or None, got {self.shortcut!r}")


RESNET18 = ResNetConfig("basic", (2, 2, 2, 2))
RESNET34 = ResNetConfig("basic", (3, 4, 6, 3))
RESNET50 = ResNetConfig("bottleneck", (3, 4, 6, 3))
RESNET101 = ResNetConfig("bottleneck", (3, 4, 23, 3))
RESNET152 = ResNetConfig("bottleneck", (3, 8, 36, 3))
PLAIN18 = ResNetConfig("basic", (2, 2, 2, 2), shortcut=None)
PLAIN34 = ResNetConfig("basic", (3, 4, 6, 3), shortcut=None)


class ResNet(Classifier):
    """A ResNet (or plain / ResNeXt / SE-ResNet) built from a :class:`ResNetConfig`.

    Args:
        config: the architecture.
        num_classes: size of the classifier output; 0 builds no ``fc`` and ``forward`` returns
            the pooled ``(B, num_features)`` features.
        in_channels: image channels (1 for grey images).
        small_input: the CIFAR stem for 28x28 / 32x32 images (see the module docstring).
        zero_init_residual: start every residual branch's last BN weight at zero.
        norm_layer: normalisation constructor.
        replace_stride_with_dilation: for ``layer2``..``layer4``, replace the stage's stride 2
            by dilating its 3x3s (torchvision's keyword; DeepLab's output stride 8 or 16).
        **overrides: fields of ``config`` to replace (e.g. ``stride_in_1x1=True``).
    """

    def __init__(
        self,
        config: ResNetConfig,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        zero_init_residual: bool = False,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        replace_stride_with_dilation: tuple[bool, bool, bool] = (False, False, False),
        **overrides,
    ) -> None:
        super().__init__()
        dilate = tuple(bool(v) for v in replace_stride_with_dilation)
        if len(dilate) != 3:
            raise ValueError(f"replace_stride_with_dilation must be three booleans (layer2.."
                             f"layer4), got {replace_stride_with_dilation!r}")
        config = apply_overrides(config, overrides, model=type(self).__name__)
        self.config = config
        self.num_classes = num_classes
        self.in_channels = in_channels
        block = BasicBlock if config.block == "basic" else Bottleneck

        stem = config.stem_width
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = norm_layer(stem)
        self.relu = nn.ReLU(inplace=True)

        channels, stride = stem, 1 if small_input else 2
        self.feature_info = [FeatureInfo("c1", stem, stride)]
        stride *= 1 if small_input else 2
        dilation = 1
        for i, (depth, width) in enumerate(zip(config.depths, config.widths)):
            first_stride = 1 if i == 0 else 2
            previous_dilation = dilation
            if i > 0 and dilate[i - 1]:
                dilation, first_stride = dilation * first_stride, 1
            blocks = []
            for j in range(depth):
                blocks.append(
                    block(
                        channels,
                        width,
                        first_stride if j == 0 else 1,
                        shortcut=config.shortcut,
                        groups=config.groups,
                        width_per_group=config.width_per_group,
                        stride_in_1x1=config.stride_in_1x1,
                        se_reduction=config.se_reduction,
                        norm_layer=norm_layer,
                        dilation=dilation,
                        first_dilation=previous_dilation if j == 0 else None,
                    )
                )
                channels = width * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            stride *= first_stride
            self.feature_info.append(FeatureInfo(f"c{i + 2}", channels, stride))
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = linear_head(channels, num_classes)

        init_fan_out(self, zero_conv_bias=False)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_norm().weight)

    def _stem(self, x: Tensor) -> Tensor:
        check_images(x, self.in_channels, type(self).__name__)
        return self.relu(self.bn1(self.conv1(x)))

    def forward_features(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> last stage map ``(B, num_features, H/32, W/32)``."""
        x = self.maxpool(self._stem(x))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward_head(self, x: Tensor) -> Tensor:
        """Last stage map -> logits ``(B, num_classes)``: global average pool, fc."""
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def stage_layers(self) -> list[tuple[str, tuple[str, ...]]]:
        return [("c1", ("conv1", "bn1", "relu")), ("c2", ("maxpool", "layer1")),
                ("c3", ("layer2",)), ("c4", ("layer3",)), ("c5", ("layer4",))]

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        out = {"c1": self._stem(x)}
        x = self.maxpool(out["c1"])
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
            out[f"c{i + 2}"] = x
        return out


@register_model(torchvision="resnet18")
def resnet18(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-18 (Table 1): basic blocks [2, 2, 2, 2], 11.7 M parameters."""
    return ResNet(RESNET18, num_classes=num_classes, **kwargs)


@register_model(torchvision="resnet34")
def resnet34(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-34 (Table 1): basic blocks [3, 4, 6, 3], 21.8 M parameters."""
    return ResNet(RESNET34, num_classes=num_classes, **kwargs)


@register_model(torchvision="resnet50")
def resnet50(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-50 (Table 1): bottleneck blocks [3, 4, 6, 3], 25.6 M parameters."""
    return ResNet(RESNET50, num_classes=num_classes, **kwargs)


@register_model(torchvision="resnet101")
def resnet101(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-101 (Table 1): bottleneck blocks [3, 4, 23, 3], 44.5 M parameters."""
    return ResNet(RESNET101, num_classes=num_classes, **kwargs)


@register_model(torchvision="resnet152")
def resnet152(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-152 (Table 1): bottleneck blocks [3, 8, 36, 3], 60.2 M parameters."""
    return ResNet(RESNET152, num_classes=num_classes, **kwargs)


@register_model
def plain18(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """Plain-18 (Sec. 4.1): ResNet-18 without shortcuts."""
    return ResNet(PLAIN18, num_classes=num_classes, **kwargs)


@register_model
def plain34(*, num_classes: int = 1000, **kwargs) -> ResNet:
    """Plain-34 (Sec. 4.1): ResNet-34 without shortcuts."""
    return ResNet(PLAIN34, num_classes=num_classes, **kwargs)
