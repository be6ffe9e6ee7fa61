"""U-Net: convolutional networks for biomedical image segmentation.

Paper: Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, arXiv:1505.04597, Sec. 2 and Fig. 1.

A contracting path of four steps (two unpadded 3x3 convolutions with ReLU, then a 2x2 max
pool with stride 2, doubling the channels: 64, 128, 256, 512), a bottom of two 3x3 (1024),
and an expansive path of four steps: a 2x2 up-convolution halving the channels, concatenation
with the centre crop of the contracting path's map at that level (the crop is needed because
unpadded convolutions lose a border), two 3x3 convolutions with ReLU; a final 1x1 maps to the
classes. ``create("unet", num_classes=2, in_channels=1)`` maps a 572x572 tile to 388x388
scores with 31,030,658 parameters, the paper's Fig. 1. Inputs must give even maps before every
pool (sides ``16 k + 12``: 572, 188, ...); the paper tiles larger images ("overlap-tile").

``unet_padded``: the everyday variant (not in the paper) with "same" 3x3 convolutions, so the
output has the input's size (sides divisible by 16), and optional batch norm after each conv.

Departures: weights start from He et al.'s normal initialisation as the paper prescribes
(std ``sqrt(2 / N)``, ``N = 9 * in_channels``); no dropout at the end of the contracting path
and no pixel-wise loss weighting (the paper's border weight map, Eq. 2) -- the loss is plain
cross entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.layers.conv_transpose import ConvTranspose2d
from modernvision.models.registry import register_model
from modernvision.models.segmentation._base import Segmenter, center_crop

__all__ = ["UNet", "UNetConfig", "unet", "unet_padded"]


@dataclass(frozen=True)
class UNetConfig:
    """Attributes:
        base_width: channels of the first step (64); doubled at each of ``depth`` steps.
        depth: pooling steps (4).
        padding: 0 (the paper's valid convolutions) or 1 ("same").
        batch_norm: batch norm after each 3x3 (the padded variant's option).
    """

    base_width: int = 64
    depth: int = 4
    padding: int = 0
    batch_norm: bool = False

    def __post_init__(self) -> None:
        if self.padding not in (0, 1):
            raise InvalidArgumentError(f"padding must be 0 (valid) or 1 (same), got "
                                       f"{self.padding}")
        if self.base_width < 1 or self.depth < 1:
            raise InvalidArgumentError("base_width and depth must be positive")


class _DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, padding: int, batch_norm: bool):
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers.append(nn.Conv2d(c_in, out_channels, 3, padding=padding,
                                    bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class UNet(Segmenter):
    """U-Net (see the module docstring). Children: ``down`` (contracting steps), ``bottom``,
    ``up`` (up-convolutions), ``decode`` (the expansive steps' double convs), ``head``.

    Args:
        config: the architecture.
        num_classes: classes (2 in the paper).
        in_channels: image channels (1 in the paper).
    """

    def __init__(self, config: UNetConfig, *, num_classes: int = 2, in_channels: int = 1,
                 ignore_index: int = 255) -> None:
        super().__init__(num_classes, in_channels=in_channels, ignore_index=ignore_index)
        self.config = config
        p, bn, w = config.padding, config.batch_norm, config.base_width
        widths = [w * 2 ** i for i in range(config.depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for width in widths[:-1]:
            self.down.append(_DoubleConv(c, width, p, bn))
            c = width
        self.pool = nn.MaxPool2d(2, 2)
        self.bottom = _DoubleConv(c, widths[-1], p, bn)
        self.up, self.decode = nn.ModuleList(), nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(ConvTranspose2d(2 * width, width, 2, 2))
            self.decode.append(_DoubleConv(2 * width, width, p, bn))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # Sec. 3: N(0, sqrt(2 / N)), N = 9 * in_channels
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _check_size(self, x: Tensor) -> None:
        h, w = x.shape[-2:]
        step = 2 ** self.config.depth
        for side in (h, w):
            if self.config.padding == 1:
                ok = side % step == 0
            else:
                s, ok = side, True
                for _ in range(self.config.depth):
                    s -= 4
                    ok = ok and s > 0 and s % 2 == 0
                    s //= 2
                ok = ok and s - 4 > 0
            if not ok:
                need = (f"divisible by {step}" if self.config.padding == 1 else
                        "such that every map before a pool is even (572, 188, ...: 16 k + 12 "
                        "for depth 4)")
                raise InvalidArgumentError(f"U-Net input sides must be {need}; got {h}x{w}")

    def forward_logits(self, x: Tensor) -> Tensor:
        self._check_size(x)
        skips = []
        for step in self.down:
            x = step(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, decode, skip in zip(self.up, self.decode, reversed(skips)):
            x = up(x)
            x = decode(torch.cat([center_crop(skip, tuple(x.shape[-2:])), x], dim=1))
        return self.head(x)


def _reject(kwargs: dict, name: str) -> None:
    if kwargs:
        raise TypeError(f"{name} got unexpected keyword argument(s) {sorted(kwargs)}; it "
                        "accepts num_classes, in_channels, base_width, depth, ignore_index"
                        + (", batch_norm" if name == "unet_padded" else ""))


@register_model(task="semantic")
def unet(*, num_classes: int = 2, in_channels: int = 1, base_width: int = 64, depth: int = 4,
         ignore_index: int = 255, **kwargs) -> UNet:
    """U-Net as in the paper (valid convolutions, 572 -> 388)."""
    _reject(kwargs, "unet")
    return UNet(UNetConfig(base_width, depth), num_classes=num_classes,
                in_channels=in_channels, ignore_index=ignore_index)


@register_model(task="semantic")
def unet_padded(*, num_classes: int = 2, in_channels: int = 3, base_width: int = 64,
                depth: int = 4, batch_norm: bool = True, ignore_index: int = 255,
                **kwargs) -> UNet:
    """U-Net with "same" convolutions (output = input size) and batch norm by default."""
    _reject(kwargs, "unet_padded")
    return UNet(UNetConfig(base_width, depth, padding=1, batch_norm=batch_norm),
                num_classes=num_classes, in_channels=in_channels, ignore_index=ignore_index)


unet.default_image_size = 572
unet.default_in_channels = 1
unet_padded.default_image_size = 256
