"""Inception v3: factorised convolutions, grid reductions and a batch-normalised aux head.

Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the Inception Architecture for
Computer Vision", CVPR 2016, arXiv:1512.00567, Sec. 3-6, Figures 5-7 and 10, Table 1.

The ideas the modules carry: a 5x5 conv is cheaper as two 3x3 convs (Sec. 3.1, the
``branch3x3dbl`` of the 35x35 modules, Fig. 5); an n x n conv is cheaper as 1 x n then n x 1
(Sec. 3.2, the 17x17 modules with n = 7, Fig. 6); the coarsest 8x8 modules expand their
filter banks with parallel 1x3 and 3x1 convs (Fig. 7); the grid shrinks by concatenating a
stride-2 conv branch with a stride-2 pool instead of pooling first (Sec. 5, Fig. 10); the one
auxiliary classifier, on the last 17x17 layer, has batch norm and acts as a regulariser
(Sec. 4). Every conv is conv + batch norm (eps 1e-3) + ReLU.

Departures from the paper: the architecture is the one Google released (TF-slim
``inception_v3``) and torchvision ports, which differs from Table 1 in the stem (1x1 conv 80
and 3x3 conv 192 around a max pool instead of three 3x3 convs) and keeps a 5x5 conv beside
the 3x3-3x3 branch in the 35x35 modules; module and parameter names are torchvision's, so
its state dicts load as they are. 27,161,264 parameters (23,834,568 without ``aux_logits``),
input 299x299. The paper does not give the auxiliary loss weight; we use 0.4, TF-slim's.
Label smoothing (Sec. 7) belongs to the loss, not the model. Initialisation follows
torchvision: truncated normal weights (std 0.1; 0.01 for the aux head's 5x5 conv, 0.001 for
its classifier).

``small_input=True`` (28x28 / 32x32): the stem keeps its convs but at stride 1 with "same"
padding and a single 3x3/2 max pool (padding 1) after ``Conv2d_2b_3x3``, so the 35x35 modules
see 16x16 (14x14), the 17x17 ones 7x7 (6x6) and the 8x8 ones 3x3 (2x2); the auxiliary head
pools adaptively to 5x5 instead of 5x5 stride 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision.layers.conv import ConvNormAct
from modernvision.models.classification._family import (
    TappedBodyClassifier,
    check_num_classes,
    check_positive_ints,
    head_dropout,
    linear_head,
    smallest_input,
)
from modernvision.models.registry import register_model

_BN = partial(nn.BatchNorm2d, eps=1e-3)


def _conv(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
          stride: int = 1, padding: int | tuple[int, int] | None = 0) -> ConvNormAct:
    """Conv + BN + ReLU; ``padding=None`` means "same"."""
    return ConvNormAct(in_channels, out_channels, kernel_size, stride, padding, norm_layer=_BN)


@dataclass(frozen=True)
class InceptionV3Config:
    """The widths that vary between modules, in order (Table 1 / the released model).

    Attributes:
        pool_features: pool-projection widths of the three 35x35 modules (Mixed_5b..5d).
        channels_7x7: inner width of the factorised 7x7 branches of the four 17x17 modules
            (Mixed_6b..6e).
        aux_weight: weight of the auxiliary loss.
        dropout: before the classifier.
    """

    pool_features: tuple[int, ...] = (32, 64, 64)
    channels_7x7: tuple[int, ...] = (128, 160, 160, 192)
    aux_weight: float = 0.4
    dropout: float = 0.5


INCEPTION_V3 = InceptionV3Config()


class _Concat(nn.Module):
    """Runs each branch (a list of layers applied in order) on the input and concatenates."""

    branches: list[list[str]]

    def forward(self, x: Tensor) -> Tensor:
        outs = []
        for branch in self.branches:
            y = x
            for name in branch:
                y = getattr(self, name)(y)
            outs.append(y)
        return torch.cat(outs, dim=1)


class InceptionA(_Concat):
    """35x35 module (Fig. 5): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _conv(in_channels, 64, 1)
        self.branch5x5_1 = _conv(in_channels, 48, 1)
        self.branch5x5_2 = _conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _conv(in_channels, 64, 1)
        self.branch3x3dbl_2 = _conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _conv(96, 96, 3, padding=1)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1)
        self.branch_pool = _conv(in_channels, pool_features, 1)
        self.branches = [["branch1x1"], ["branch5x5_1", "branch5x5_2"],
                         ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
                         ["pool", "branch_pool"]]
        self.out_channels = 64 + 64 + 96 + pool_features


class InceptionB(_Concat):
    """35x35 -> 17x17 grid reduction (Fig. 10): 3x3/2 | 1x1-3x3-3x3/2 | maxpool 3x3/2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = _conv(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = _conv(in_channels, 64, 1)
        self.branch3x3dbl_2 = _conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _conv(96, 96, 3, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2)
        self.branches = [["branch3x3"],
                         ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], ["pool"]]
        self.out_channels = 384 + 96 + in_channels


class InceptionC(_Concat):
    """17x17 module (Fig. 6): 7x7 convs factorised into 1x7 and 7x1."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = _conv(in_channels, 192, 1)
        self.branch7x7_1 = _conv(in_channels, c7, 1)
        self.branch7x7_2 = _conv(c7, c7, (1, 7), padding=None)
        self.branch7x7_3 = _conv(c7, 192, (7, 1), padding=None)
        self.branch7x7dbl_1 = _conv(in_channels, c7, 1)
        self.branch7x7dbl_2 = _conv(c7, c7, (7, 1), padding=None)
        self.branch7x7dbl_3 = _conv(c7, c7, (1, 7), padding=None)
        self.branch7x7dbl_4 = _conv(c7, c7, (7, 1), padding=None)
        self.branch7x7dbl_5 = _conv(c7, 192, (1, 7), padding=None)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1)
        self.branch_pool = _conv(in_channels, 192, 1)
        self.branches = [
            ["branch1x1"], ["branch7x7_1", "branch7x7_2", "branch7x7_3"],
            ["branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3", "branch7x7dbl_4",
             "branch7x7dbl_5"],
            ["pool", "branch_pool"],
        ]
        self.out_channels = 4 * 192


class InceptionD(_Concat):
    """17x17 -> 8x8 grid reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool 3x3/2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = _conv(in_channels, 192, 1)
        self.branch3x3_2 = _conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _conv(in_channels, 192, 1)
        self.branch7x7x3_2 = _conv(192, 192, (1, 7), padding=None)
        self.branch7x7x3_3 = _conv(192, 192, (7, 1), padding=None)
        self.branch7x7x3_4 = _conv(192, 192, 3, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2)
        self.branches = [["branch3x3_1", "branch3x3_2"],
                         ["branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"],
                         ["pool"]]
        self.out_channels = 320 + 192 + in_channels


class InceptionE(nn.Module):
    """8x8 module with expanded filter banks (Fig. 7): 3x3 convs split into parallel 1x3, 3x1."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = _conv(in_channels, 320, 1)
        self.branch3x3_1 = _conv(in_channels, 384, 1)
        self.branch3x3_2a = _conv(384, 384, (1, 3), padding=None)
        self.branch3x3_2b = _conv(384, 384, (3, 1), padding=None)
        self.branch3x3dbl_1 = _conv(in_channels, 448, 1)
        self.branch3x3dbl_2 = _conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _conv(384, 384, (1, 3), padding=None)
        self.branch3x3dbl_3b = _conv(384, 384, (3, 1), padding=None)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1)
        self.branch_pool = _conv(in_channels, 192, 1)
        self.out_channels = 320 + 2 * 384 + 2 * 384 + 192

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(a), self.branch3x3_2b(a),
            self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
            self.branch_pool(self.pool(x)),
        ], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17x17 grid (Sec. 4): avgpool 5x5/3, 1x1 128, 5x5 768, fc."""

    def __init__(self, in_channels: int, num_classes: int, *, adaptive_pool: bool = False) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(5) if adaptive_pool else nn.AvgPool2d(5, stride=3)
        self.conv0 = _conv(in_channels, 128, 1)
        self.conv1 = _conv(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        if min(x.shape[-2:]) < 5:
            raise ValueError(
                f"the auxiliary classifier needs a 17x17 map after Mixed_6e (a 299x299 input) "
                f"for its 5x5/3 pool and 5x5 conv, got {tuple(x.shape[-2:])} after pooling; use "
                f"aux_logits=False, eval mode or a larger input")
        x = self.conv1(self.conv0(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)  # (B, 768, h, w) -> (B, 768)
        return self.fc(x)


class InceptionV3(TappedBodyClassifier):
    """Inception v3 with torchvision's module names (``Conv2d_1a_3x3`` ... ``Mixed_7c``).

    Stages (``forward_stages``): ``c1`` = Conv2d_2b_3x3 (stride 2), ``c2`` = Conv2d_4a_3x3,
    ``c3`` = Mixed_5d, ``c4`` = Mixed_6e, ``c5`` = Mixed_7c (strides halve with
    ``small_input``; the stride-1 stem is then not a stage).

    Args:
        config: the architecture (:data:`INCEPTION_V3`).
        num_classes: classifier outputs; 0: headless (no ``fc``, no auxiliary head),
            ``forward`` returns the pooled ``(B, 2048)`` features.
        in_channels: input image channels.
        small_input: the 28x28 / 32x32 stem described in the module docstring.
        aux_logits: build the auxiliary classifier (used in training mode only).
        transform_input: map ImageNet-normalised inputs to [-1, 1] first (3 channels only),
            as torchvision does for Google's ported weights.
        dropout: overrides ``config.dropout`` when given.
    """

    _size_hint = ("299x299 is its native size; small_input=True builds a variant for 28x28 / "
                  "32x32")

    def __init__(
        self,
        config: InceptionV3Config,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        aux_logits: bool = True,
        transform_input: bool = False,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        check_positive_ints(in_channels=in_channels)
        check_num_classes(num_classes)
        aux_logits = aux_logits and num_classes > 0  # auxiliary classifiers are heads too
        if transform_input and in_channels != 3:
            raise ValueError("transform_input needs in_channels=3 (it maps ImageNet's RGB "
                             f"normalisation), got in_channels={in_channels}")
        if len(config.pool_features) != 3 or len(config.channels_7x7) != 4:
            raise ValueError("config needs 3 pool_features (35x35 modules) and 4 channels_7x7 "
                             "(17x17 modules)")
        self.config, self.num_classes, self.in_channels = config, num_classes, in_channels
        self.transform_input, self.aux_weight = transform_input, config.aux_weight

        # (name, module, stride factor), in forward order.
        body: list[tuple[str, nn.Module, int]]
        if small_input:
            body = [
                ("Conv2d_1a_3x3", _conv(in_channels, 32, 3, padding=1), 1),
                ("Conv2d_2a_3x3", _conv(32, 32, 3, padding=1), 1),
                ("Conv2d_2b_3x3", _conv(32, 64, 3, padding=1), 1),
                ("maxpool1", nn.MaxPool2d(3, stride=2, padding=1), 2),
                ("Conv2d_3b_1x1", _conv(64, 80, 1), 1),
                ("Conv2d_4a_3x3", _conv(80, 192, 3, padding=1), 1),
            ]
        else:
            body = [
                ("Conv2d_1a_3x3", _conv(in_channels, 32, 3, stride=2), 2),
                ("Conv2d_2a_3x3", _conv(32, 32, 3), 1),
                ("Conv2d_2b_3x3", _conv(32, 64, 3, padding=1), 1),
                ("maxpool1", nn.MaxPool2d(3, stride=2), 2),
                ("Conv2d_3b_1x1", _conv(64, 80, 1), 1),
                ("Conv2d_4a_3x3", _conv(80, 192, 3), 1),
                ("maxpool2", nn.MaxPool2d(3, stride=2), 2),
            ]
        channels = 192
        for letter, pool_features in zip("bcd", config.pool_features):
            body.append((f"Mixed_5{letter}", InceptionA(channels, pool_features), 1))
            channels = body[-1][1].out_channels
        body.append(("Mixed_6a", InceptionB(channels), 2))
        channels = body[-1][1].out_channels
        for letter, c7 in zip("bcde", config.channels_7x7):
            body.append((f"Mixed_6{letter}", InceptionC(channels, c7), 1))
            channels = body[-1][1].out_channels
        aux_channels = channels
        body.append(("Mixed_7a", InceptionD(channels), 2))
        channels = body[-1][1].out_channels
        for letter in "bc":
            body.append((f"Mixed_7{letter}", InceptionE(channels), 1))
            channels = body[-1][1].out_channels

        self._add_body(body, lambda m: not isinstance(m, nn.MaxPool2d))

        self.AuxLogits = (InceptionAux(aux_channels, num_classes, adaptive_pool=small_input)
                          if aux_logits else None)
        self._aux_heads = {"Mixed_6e": "AuxLogits"} if aux_logits else {}
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = head_dropout(config.dropout if dropout is None else dropout, num_classes)
        self.num_features = channels
        self.fc = linear_head(channels, num_classes)
        self.min_input_size = _min_input_size(small_input)
        self._init_weights()

    def _init_weights(self) -> None:
        special = {}
        if self.AuxLogits is not None:
            special = {self.AuxLogits.conv1.conv: 0.01, self.AuxLogits.fc: 0.001}
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                std = special.get(module, 0.1)
                nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-2, b=2)

    def forward_head(self, x: Tensor) -> Tensor:
        x = self.dropout(self.avgpool(x))
        return self.fc(torch.flatten(x, 1))  # (B, C, 1, 1) -> (B, C)


def _min_input_size(small_input: bool) -> int:
    """Smallest square input whose grid survives every valid conv and stride-2 step."""
    # (kernel, stride, padding) of the layers that shrink the grid, in order.
    if small_input:
        shrinking = [(3, 2, 1), (3, 2, 0), (3, 2, 0)]  # maxpool1, Mixed_6a, Mixed_7a
    else:
        shrinking = [(3, 2, 0), (3, 1, 0), (3, 2, 0), (3, 1, 0), (3, 2, 0), (3, 2, 0), (3, 2, 0)]
    return smallest_input(((k, s, p, False) for k, s, p in shrinking), 1024)


@register_model(torchvision="inception_v3")
def inception_v3(*, num_classes: int = 1000, **kwargs) -> InceptionV3:
    """Inception v3 (299x299 input; torchvision's weights=None defaults: aux head included)."""
    return InceptionV3(INCEPTION_V3, num_classes=num_classes, **kwargs)


inception_v3.default_image_size = 299
