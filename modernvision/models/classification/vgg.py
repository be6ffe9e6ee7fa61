"""VGG: very deep stacks of 3x3 convolutions.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015, arXiv:1409.1556, Sec. 2 and Table 1.

Five stages of 3x3 stride-1 "same" convolutions, each followed by a 2x2 stride-2 max pool; all
convs of a stage have the same width and widths double after each pool (64, 128, 256, 512,
512). Table 1's configurations A, B, D and E (11, 13, 16 and 19 weight layers) have 1, 1, 2, 2,
2 / 2, 2, 2, 2, 2 / 2, 2, 3, 3, 3 / 2, 2, 4, 4, 4 convs per stage. Then three fully connected
layers (4096, 4096, classes) with ReLU and dropout 0.5 after the first two (Sec. 3).
Configuration D (``vgg16``) has 138,357,544 parameters.

Training deep configurations from scratch was hard in 2014, so the paper trained A first and
initialised the first four conv layers and the three fully connected layers of the deeper nets
from it (Sec. 3.1): :func:`deepen`. The paper then notes that Glorot & Bengio's initialisation
makes this pre-training unnecessary; that is our default initialisation (Xavier-uniform
weights, zero biases).

Departures from the paper:
    * ``_bn`` variants (``vgg11_bn``...) insert batch norm after each conv, as torchvision does
      (Ioffe & Szegedy 2015 came after VGG); their convs keep their biases.
    * An adaptive average pool to 7x7 before fc6 (torchvision's): the identity at 224x224.
    * Configurations A-LRN and C (1x1 convs) of Table 1 are not built.

``small_input=True`` (28x28 / 32x32): the pools round up (``ceil_mode``) so 28x28 inputs reach
pool5 (14, 7, 4, 2, 1) like 32x32 ones (16, 8, 4, 2, 1); the head pools to 1x1 and its hidden
layers have 512 units (as in the usual CIFAR VGGs); weights start from He et al.'s
initialisation (on Fashion-MNIST, 100 SGD steps at batch 64, lr 0.01, momentum 0.9 took a
small VGG-11's loss to 1.04 from He's init but only to 2.24 from Glorot's). The conv stages
are unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

import torch
from torch import nn

from modernvision._errors import unknown_name
from modernvision.layers.conv import ConvNormAct
from modernvision.models.classification._base import FeatureInfo
from modernvision.models.classification._family import (
    PooledFeaturesClassifier,
    check_num_classes,
    check_positive_ints,
)
from modernvision.models.registry import Converter, StateDict, register_model


@dataclass(frozen=True)
class VGGConfig:
    """One column of Table 1.

    Attributes:
        depths: 3x3 convs per stage.
        widths: channels of each stage.
        batch_norm: batch norm after each conv (the ``_bn`` variants).
        fc_width: units of fc6 and fc7.
        head_grid: side of the adaptive average pool before fc6.
        pool_ceil_mode: whether the 2x2 max pools round up.
        init: ``"glorot"`` (Xavier-uniform weights, the paper's closing note) or ``"he"``
            (He et al. 2015 normal weights); biases start at 0 either way.
    """

    depths: tuple[int, ...]
    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    batch_norm: bool = False
    fc_width: int = 4096
    head_grid: int = 7
    pool_ceil_mode: bool = False
    init: str = "glorot"

    def for_small_input(self) -> VGGConfig:
        """The 28x28 / 32x32 variant described in the module docstring."""
        return replace(self, fc_width=512, head_grid=1, pool_ceil_mode=True, init="he")


VGG11 = VGGConfig(depths=(1, 1, 2, 2, 2))  # configuration A
VGG13 = VGGConfig(depths=(2, 2, 2, 2, 2))  # B
VGG16 = VGGConfig(depths=(2, 2, 3, 3, 3))  # D
VGG19 = VGGConfig(depths=(2, 2, 4, 4, 4))  # E
CONFIGS = {"vgg11": VGG11, "vgg13": VGG13, "vgg16": VGG16, "vgg19": VGG19}


class VGG(PooledFeaturesClassifier):
    """VGG family: ``features`` (``conv1_1`` ... ``pool5``), then ``classifier`` (``fc6``..``fc8``).

    Stages (``forward_stages``) are the deepest maps at each stride: ``c1`` = conv2_x (stride
    2), ``c2`` = conv3_x, ``c3`` = conv4_x (SSD's conv4_3 in VGG-16), ``c4`` = conv5_x (Faster
    R-CNN's conv5_3), ``c5`` = pool5.

    Args:
        config: the architecture (a column of Table 1, e.g. :data:`VGG16`).
        num_classes: classifier outputs; 0: headless (no fc6..fc8), ``forward`` returns the
            globally average-pooled pool5 features ``(B, num_features)``.
        in_channels: input image channels.
        small_input: use ``config.for_small_input()`` (28x28 / 32x32 images).
        dropout: dropout probability after fc6 and fc7.
    """

    _size_hint = "small_input=True rounds the pools up so 28x28 works"

    def __init__(
        self,
        config: VGGConfig,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_positive_ints(in_channels=in_channels)
        check_num_classes(num_classes)
        if len(config.depths) != len(config.widths):
            raise ValueError(f"config has {len(config.depths)} depths but "
                             f"{len(config.widths)} widths")
        self.base_config, self.small_input, self.dropout = config, small_input, dropout
        if small_input:
            config = config.for_small_input()
        self.config, self.num_classes, self.in_channels = config, num_classes, in_channels

        norm = nn.BatchNorm2d if config.batch_norm else None
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels, self._stage_ends, self.feature_info = in_channels, {}, []
        for s, (depth, width) in enumerate(zip(config.depths, config.widths), start=1):
            for i in range(1, depth + 1):
                layers[f"conv{s}_{i}"] = ConvNormAct(channels, width, 3, norm_layer=norm,
                                                     bias=True)
                channels = width
            # The last conv of stage s is the deepest map at stride 2^(s-1).
            if s >= 2:
                self._stage_ends[f"conv{s}_{depth}"] = f"c{s - 1}"
                self.feature_info.append(FeatureInfo(f"c{s - 1}", width, 2 ** (s - 1)))
            layers[f"pool{s}"] = nn.MaxPool2d(2, 2, ceil_mode=config.pool_ceil_mode)
        n = len(config.depths)
        self._stage_ends[f"pool{n}"] = f"c{n}"
        self.feature_info.append(FeatureInfo(f"c{n}", channels, 2**n))
        self.features = nn.Sequential(layers)
        self.num_features = channels
        w = config.fc_width
        if num_classes:
            self.avgpool = nn.AdaptiveAvgPool2d(config.head_grid)
            self.classifier = nn.Sequential(OrderedDict(
                fc6=nn.Linear(channels * config.head_grid**2, w), relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(dropout),
                fc7=nn.Linear(w, w), relu7=nn.ReLU(inplace=True), drop7=nn.Dropout(dropout),
                fc8=nn.Linear(w, num_classes),
            ))
        else:  # headless: fc6..fc8 are all classifier; forward gives the pooled pool5 features
            self.avgpool, self.classifier = nn.AdaptiveAvgPool2d(1), nn.Identity()
        self.min_input_size = 1 if config.pool_ceil_mode else 2**n
        if config.init not in ("glorot", "he"):
            raise ValueError(f"config.init must be 'glorot' or 'he', got {config.init!r}")
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                if config.init == "he":
                    nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)


@torch.no_grad()
def deepen(source: VGG, target: str | VGGConfig = "vgg13") -> VGG:
    """A deeper VGG initialised from a trained shallower one (Sec. 3.1).

    As in the paper, the first four conv layers of ``source`` (``conv1_1``, ``conv2_1``,
    ``conv3_1``, ``conv3_2`` for configuration A) and its three fully connected layers are
    copied into the same-named layers of the new net; its other layers keep their random
    initialisation. The new net has ``source``'s classes, input channels, ``small_input``,
    dropout and batch-norm setting.

    Args:
        source: the trained shallower net.
        target: ``"vgg13"``, ``"vgg16"``, ``"vgg19"`` or a :class:`VGGConfig`.

    Returns:
        The new, deeper :class:`VGG` (in training mode).
    """
    if not isinstance(source, VGG):
        raise TypeError(f"source must be a VGG, got {type(source).__name__}")
    if isinstance(target, str):
        if target not in CONFIGS:
            raise unknown_name("VGG configuration", target, CONFIGS)
        target = CONFIGS[target]
    if not isinstance(target, VGGConfig):
        raise TypeError(f"target must be a name or a VGGConfig, got {type(target).__name__}")
    base = source.base_config
    target = replace(target, batch_norm=base.batch_norm)
    if target.widths != base.widths or any(t < s for t, s in zip(target.depths, base.depths)):
        raise ValueError(
            f"target (depths {target.depths}, widths {target.widths}) must be at least as deep "
            f"as the source (depths {base.depths}) in every stage, with the same widths")
    deeper = VGG(target, num_classes=source.num_classes, in_channels=source.in_channels,
                 small_input=source.small_input, dropout=source.dropout)
    convs = [n for n, m in source.features.named_children() if isinstance(m, ConvNormAct)]
    for name in convs[:4]:
        getattr(deeper.features, name).load_state_dict(getattr(source.features, name).state_dict())
    for name in ("fc6", "fc7", "fc8") if source.num_classes else ():
        getattr(deeper.classifier, name).load_state_dict(
            getattr(source.classifier, name).state_dict())
    return deeper


def torchvision_converter(config: VGGConfig) -> Converter:
    """The converter from torchvision's VGG with this configuration to ours.

    torchvision numbers ``features`` and ``classifier`` by position; we name them.
    """
    prefixes: dict[str, str] = {}
    index = 0
    for s, depth in enumerate(config.depths, start=1):
        for i in range(1, depth + 1):
            prefixes[f"features.{index}."] = f"features.conv{s}_{i}.conv."
            if config.batch_norm:
                prefixes[f"features.{index + 1}."] = f"features.conv{s}_{i}.bn."
            index += 3 if config.batch_norm else 2  # conv, (bn,) relu
        index += 1  # pool
    prefixes.update({"classifier.0.": "classifier.fc6.", "classifier.3.": "classifier.fc7.",
                     "classifier.6.": "classifier.fc8."})

    def convert(state_dict: StateDict) -> StateDict:
        out = {}
        for key, value in state_dict.items():
            prefix = key[: key.rindex(".") + 1]
            if prefix not in prefixes:
                raise ValueError(f"unexpected key {key!r} in the torchvision VGG state dict")
            out[prefixes[prefix] + key[len(prefix):]] = value
        return out

    return convert


_BN = {name: replace(cfg, batch_norm=True) for name, cfg in CONFIGS.items()}


@register_model(torchvision="vgg11", converter=torchvision_converter(VGG11))
def vgg11(*, num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration A (11 weight layers)."""
    return VGG(VGG11, num_classes=num_classes, **kwargs)


@register_model(torchvision="vgg11_bn", converter=torchvision_converter(_BN["vgg11"]))
def vgg11_bn(*, num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration A with batch norm."""
    return VGG(_BN["vgg11"], num_classes=num_classes, **kwargs)


@register_model(torchvision="vgg13", converter=torchvision_converter(VGG13))
def vgg13(*, num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration B (13 weight layers)."""
    return VGG(VGG13, num_classes=num_classes, **kwargs)


@register_model(torchvision="vgg13_bn", converter=torchvision_converter(_BN["vgg13"]))
def vgg13_bn(*, num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration B with batch norm."""
    return VGG(_BN["vgg13"], num_classes=num_classes, **kwargs)


@register_model(torchvision="vgg16", converter=torchvision_converter(VGG16))
def vgg16(*, num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration D (16 weight layers)."""
    return VGG(VGG16, num_classes=num_classes, **kwargs)


@register_model(torchvision="vgg16_bn", converter=torchvision_converter(_BN["vgg16"]))
def vgg16_bn(*, num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration D with batch norm."""
    return VGG(_BN["vgg16"], num_classes=num_classes, **kwargs)


@register_model(torchvision="vgg19", converter=torchvision_converter(VGG19))
def vgg19(*, num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration E (19 weight layers)."""
    return VGG(VGG19, num_classes=num_classes, **kwargs)


@register_model(torchvision="vgg19_bn", converter=torchvision_converter(_BN["vgg19"]))
def vgg19_bn(*, num_classes: int = 1000, **kwargs) -> VGG:
    """VGG configuration E with batch norm."""
    return VGG(_BN["vgg19"], num_classes=num_classes, **kwargs)
