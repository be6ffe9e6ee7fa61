"""FCN: fully convolutional networks for semantic segmentation.

Paper: Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation",
CVPR 2015, arXiv:1411.4038 (and the released Caffe models, ``voc-fcn{32,16,8}s``).

The classifier becomes a dense predictor (Sec. 3.1): VGG-16's fc6 (7x7x512 -> 4096) and fc7
(1x1, 4096) are convolutions, a 1x1 ``score_fr`` scores every class at stride 32, and a
transposed convolution upsamples the scores back to the pixels (Sec. 3.3). Stride 32 is coarse,
so the skip architecture (Sec. 4.2, Fig. 3) adds finer layers' scores:

* **FCN-32s**: ``score_fr`` upsampled 32x;
* **FCN-16s**: ``score_fr`` upsampled 2x (learnable, bilinear-initialised) **plus** a 1x1
  score of ``pool4``, then upsampled 16x;
* **FCN-8s**: that sum upsampled 2x again plus a 1x1 score of ``pool3``, then upsampled 8x.

The skips are **summed**, as in the paper ("we add a 1x1 convolution layer on top of pool4 ...
and sum both predictions", Sec. 4.2), not concatenated as some course notes describe them.
The 2x upsamplings are learnt from bilinear initialisation; the final 32x / 16x / 8x ones are
fixed bilinear interpolation (Sec. 4.2: "the final layer deconvolutional filters are fixed to
bilinear interpolation"), so they are buffers, not parameters: 134,346,581 parameters for
FCN-32s at 21 classes (134.3 M), 134,364,410 for 16s and 134,376,863 for 8s.

Any input size comes back exactly, as in the released models: the first convolution pads by
100 (so fc6's 7x7 fits even small images), the pools round up (Caffe's), and each score map is
cropped at the offsets the released nets use (19 for 32s; 5 and 27 for 16s; 5, 9 and 31 for 8s).

Departures: the score layers start at zero as in the released code; fc6/fc7 are randomly
initialised (no ImageNet weights offline); ``width_mult`` scales every width (conv stages and
fc6/fc7) for CPU-sized runs; ``batch_norm=True`` puts batch norm after every VGG conv (as
torchvision's ``vgg16_bn``; not in the paper), which lets the net train from scratch.
``fcn_resnet50`` is torchvision's model, not the paper's: a dilated ResNet-50 (output stride
8) with a 3x3 conv head and bilinear upsampling.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.layers.conv_transpose import ConvTranspose2d, conv_transpose2d
from modernvision.layers.upsample import upsample_bilinear
from modernvision.models.backbone import create_backbone
from modernvision.models.classification.vgg import VGG, VGG16, VGGConfig
from modernvision.models.registry import StateDict, register_model
from modernvision.models.segmentation._base import Segmenter

__all__ = ["FCN", "FCNConfig", "FCNResNet", "FixedBilinearUpsample", "fcn8s_vgg16",
           "fcn16s_vgg16", "fcn32s_vgg16", "fcn_resnet50"]

#: The released models' crop offsets (Caffe ``Crop`` layers) for VGG-16 with pad 100.
_OFFSETS = {32: {"out": 19}, 16: {"pool4": 5, "out": 27}, 8: {"pool4": 5, "pool3": 9, "out": 31}}
INPUT_PADDING = 100


@dataclass(frozen=True)
class FCNConfig:
    """One FCN of the paper.

    Attributes:
        stride: 32, 16 or 8 (FCN-32s / 16s / 8s).
        vgg: the VGG configuration of the body (pools round up, as Caffe's).
        fc_width: width of fc6 and fc7 (4096).
        dropout: dropout after fc6 and fc7 (0.5).
    """

    stride: int
    vgg: VGGConfig = field(default_factory=lambda: VGG16)
    fc_width: int = 4096
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.stride not in (32, 16, 8):
            raise InvalidArgumentError(f"FCN stride must be 32, 16 or 8, got {self.stride}")
        if len(self.vgg.depths) != 5:
            raise InvalidArgumentError("FCN needs a five-stage VGG (pool3, pool4, pool5)")

    def scaled(self, width_mult: float) -> FCNConfig:
        """Every width times ``width_mult`` (CPU-sized runs)."""
        if not width_mult > 0:
            raise InvalidArgumentError(f"width_mult must be > 0, got {width_mult}")
        widths = tuple(max(1, round(w * width_mult)) for w in self.vgg.widths)
        return replace(self, vgg=replace(self.vgg, widths=widths),
                       fc_width=max(1, round(self.fc_width * width_mult)))


def _tent(factor: int) -> Tensor:
    """1D bilinear weights of a ``2 * factor`` kernel (FCN's ``upsample_filt``, one axis)."""
    k = 2 * factor
    centre = factor - 0.5
    return 1 - (torch.arange(k, dtype=torch.float32) - centre).abs() / factor


class FixedBilinearUpsample(nn.Module):
    """A transposed convolution with FCN's fixed bilinear kernel (size ``2 * factor``, stride
    ``factor``, no padding), per channel: ``(B, C, h, w) -> (B, C, (h - 1) f + 2f, ...)``.

    The 2D bilinear kernel is the outer product of two 1D tents, so it runs as two 1D
    transposed convolutions (rows, then columns); not a parameter (the paper fixes it).
    """

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.channels, self.factor = channels, factor
        self.register_buffer("tent", _tent(factor), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        c, k = self.channels, 2 * self.factor
        rows = self.tent.view(1, 1, k, 1).expand(c, 1, k, 1)
        cols = self.tent.view(1, 1, 1, k).expand(c, 1, 1, k)
        x = conv_transpose2d(x, rows, stride=(self.factor, 1), groups=c)
        return conv_transpose2d(x, cols, stride=(1, self.factor), groups=c)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, factor={self.factor}, kernel={2 * self.factor}"


def _crop(x: Tensor, offset: int, like: Tensor | tuple[int, int]) -> Tensor:
    h, w = like.shape[-2:] if isinstance(like, Tensor) else like
    return x[:, :, offset: offset + h, offset: offset + w]


class FCN(Segmenter):
    """FCN-32s / 16s / 8s on a VGG body (see the module docstring).

    Children: ``features`` (VGG's ``conv1_1`` ... ``pool5``, its names), ``fc6``, ``fc7``,
    ``score_fr``, ``score_pool4`` / ``upscore2`` (16s, 8s), ``score_pool3`` / ``upscore_pool4``
    (8s) and ``upscore`` (the fixed final upsampling).

    Args:
        config: the architecture.
        num_classes: classes (21 for VOC: 20 and the background).
        in_channels: image channels.
        ignore_index: target value left out of the loss.
    """

    def __init__(self, config: FCNConfig, *, num_classes: int = 21, in_channels: int = 3,
                 ignore_index: int = 255) -> None:
        super().__init__(num_classes, in_channels=in_channels, ignore_index=ignore_index)
        self.config = config
        vgg = VGG(VGGConfig(depths=config.vgg.depths, widths=config.vgg.widths,
                            batch_norm=config.vgg.batch_norm, pool_ceil_mode=True),
                  num_classes=0, in_channels=in_channels)
        self.features = vgg.features
        w3, w4, w5 = config.vgg.widths[2:]
        fc = config.fc_width
        self.fc6 = nn.Conv2d(w5, fc, 7)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.drop = nn.Dropout(config.dropout)
        self.score_fr = nn.Conv2d(fc, num_classes, 1)
        for conv in (self.fc6, self.fc7):
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
        scores = [self.score_fr]
        if config.stride <= 16:
            self.score_pool4 = nn.Conv2d(w4, num_classes, 1)
            self.upscore2 = ConvTranspose2d(num_classes, num_classes, 4, 2, bias=False,
                                            init="bilinear")
            scores.append(self.score_pool4)
        if config.stride == 8:
            self.score_pool3 = nn.Conv2d(w3, num_classes, 1)
            self.upscore_pool4 = ConvTranspose2d(num_classes, num_classes, 4, 2, bias=False,
                                                 init="bilinear")
            scores.append(self.score_pool3)
        for conv in scores:  # the released nets zero-initialise the score layers
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.upscore = FixedBilinearUpsample(num_classes, config.stride)

    def _pools(self, x: Tensor) -> dict[str, Tensor]:
        # conv1_1 pads by 100 in the paper; ours pads by 1, so add the other 99 first.
        x = F.pad(x, (INPUT_PADDING - 1,) * 4)
        out = {}
        for name, module in self.features.named_children():
            x = module(x)
            if name in ("pool3", "pool4", "pool5"):
                out[name] = x
        return out

    def forward_logits(self, x: Tensor) -> Tensor:
        pools = self._pools(x)
        h = self.drop(F.relu(self.fc6(pools["pool5"])))
        h = self.drop(F.relu(self.fc7(h)))
        score = self.score_fr(h)
        offsets = _OFFSETS[self.config.stride]
        if self.config.stride <= 16:
            up = self.upscore2(score)
            score = up + _crop(self.score_pool4(pools["pool4"]), offsets["pool4"], up)
        if self.config.stride == 8:
            up = self.upscore_pool4(score)
            score = up + _crop(self.score_pool3(pools["pool3"]), offsets["pool3"], up)
        out = _crop(self.upscore(score), offsets["out"], x)
        if out.shape[-2:] != x.shape[-2:]:  # cannot happen with the paper's geometry
            raise RuntimeError(f"FCN output {tuple(out.shape)} does not cover {tuple(x.shape)}")
        return out


def _fcn(stride: int, num_classes: int, width_mult: float, batch_norm: bool, **kwargs) -> FCN:
    config = FCNConfig(stride=stride)
    if width_mult != 1.0:
        config = config.scaled(width_mult)
    if batch_norm:
        config = replace(config, vgg=replace(config.vgg, batch_norm=True))
    return FCN(config, num_classes=num_classes, **kwargs)


@register_model(task="semantic")
def fcn32s_vgg16(*, num_classes: int = 21, width_mult: float = 1.0, batch_norm: bool = False,
                 **kwargs) -> FCN:
    """FCN-32s (VGG-16; ``width_mult`` < 1 for CPU-sized runs)."""
    return _fcn(32, num_classes, width_mult, batch_norm, **kwargs)


@register_model(task="semantic")
def fcn16s_vgg16(*, num_classes: int = 21, width_mult: float = 1.0, batch_norm: bool = False,
                 **kwargs) -> FCN:
    """FCN-16s: FCN-32s plus the pool4 skip (summed)."""
    return _fcn(16, num_classes, width_mult, batch_norm, **kwargs)


@register_model(task="semantic")
def fcn8s_vgg16(*, num_classes: int = 21, width_mult: float = 1.0, batch_norm: bool = False,
                 **kwargs) -> FCN:
    """FCN-8s: FCN-16s plus the pool3 skip (summed)."""
    return _fcn(8, num_classes, width_mult, batch_norm, **kwargs)


for _builder in (fcn32s_vgg16, fcn16s_vgg16, fcn8s_vgg16):
    _builder.default_image_size = 224


# ---------------------------------------------------------------------------------------------
# torchvision's FCN on a dilated ResNet


class FCNHead(nn.Sequential):
    """torchvision's ``FCNHead``: 3x3 conv (in/4, BN, ReLU), dropout 0.1, 1x1 to classes."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        mid = in_channels // 4
        super().__init__(nn.Conv2d(in_channels, mid, 3, padding=1, bias=False),
                         nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Dropout(0.1),
                         nn.Conv2d(mid, num_classes, 1))


class FCNResNet(Segmenter):
    """torchvision's ``FCN``: a ResNet with ``layer3`` / ``layer4`` dilated (output stride 8),
    :class:`FCNHead` on ``layer4`` (and on ``layer3`` with ``aux_loss``), bilinear upsampling
    to the input. Children ``backbone`` / ``classifier`` / ``aux_classifier`` as torchvision's.

    Args:
        backbone: a ResNet of the registry (``"resnet50"``; ``"resnet18"`` for CPU runs).
        num_classes: classes.
        aux_loss: add the auxiliary head on ``layer3`` (its loss weighted 0.5 in training).
    """

    def __init__(self, backbone: str = "resnet50", *, num_classes: int = 21,
                 aux_loss: bool = False, ignore_index: int = 255) -> None:
        super().__init__(num_classes, ignore_index=ignore_index)
        self.backbone = create_backbone(backbone, out_features=("c4", "c5"),
                                        replace_stride_with_dilation=(False, True, True))
        self.classifier = FCNHead(self.backbone.out_channels["c5"], num_classes)
        self.aux_classifier = (FCNHead(self.backbone.out_channels["c4"], num_classes)
                               if aux_loss else None)

    def forward_train_logits(self, x: Tensor) -> dict[str, Tensor]:
        feats = self.backbone(x)
        size = tuple(x.shape[-2:])
        out = {"out": upsample_bilinear(self.classifier(feats["c5"]), size)}
        if self.aux_classifier is not None:
            out["aux"] = upsample_bilinear(self.aux_classifier(feats["c4"]), size)
        return out

    def forward_logits(self, x: Tensor) -> Tensor:
        feats = self.backbone(x)
        return upsample_bilinear(self.classifier(feats["c5"]), tuple(x.shape[-2:]))


def convert_torchvision_segmentation(state_dict: StateDict) -> StateDict:
    """torchvision's FCN / DeepLabV3 state dict -> ours: the same names, identity."""
    return OrderedDict(state_dict)


@register_model(task="semantic", torchvision="fcn_resnet50",
                converter=convert_torchvision_segmentation)
def fcn_resnet50(*, num_classes: int = 21, aux_loss: bool | None = None, **kwargs) -> FCNResNet:
    """torchvision's FCN-ResNet50 (dilated ResNet-50, output stride 8)."""
    return FCNResNet("resnet50", num_classes=num_classes, aux_loss=bool(aux_loss), **kwargs)


fcn_resnet50.default_image_size = 520
