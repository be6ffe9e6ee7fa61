"""ZFNet: AlexNet with a smaller, denser first layer.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
arXiv:1311.2901, Sec. 4.1 and Figure 3.

Visualising AlexNet's first layers showed dead 11x11 filters and aliasing from the stride-4
sampling; the fix is a 7x7 stride-2 first layer and a stride-2 second layer. Figure 3's net on
224x224 inputs: 96 7x7/2 filters (110x110), 3x3/2 max pool (55x55), contrast normalisation;
256 5x5/2 filters (26x26), 3x3/2 max pool (13x13), contrast normalisation; 384, 384, 256 3x3
filters; 3x3/2 max pool (6x6); fc 4096, 4096, softmax. Dense connections replace AlexNet's
two-GPU sparse ones (no groups). Weights start at N(0, 0.01) and biases at 0 (Sec. 3).
62,357,608 parameters at 1000 classes.

Departures from the paper:
    * The feature map sizes of Figure 3 (110, 55, 26, 13, 6) need conv1 padding 1 and max pools
      that round up (Caffe's pooling, ``ceil_mode=True``); we use both.
    * The paper's "contrast normalisation across feature maps" is not parameterised there; we
      use AlexNet's local response normalisation (n=5, k=2, alpha=1e-4, beta=0.75).
    * The paper renormalises each first-layer filter whose RMS exceeds 0.1 during training:
      a training step, see :func:`renormalize_filters_`.

``small_input=True`` changes the net as for AlexNet (see
:meth:`~modernvision.models.classification.alexnet.AlexNetConfig.for_small_input`): conv1
5x5 stride 1, conv2 stride 1, "same" padding, padded pools, a 4x4 grid and 1024-unit hidden
layers in the head, He et al.'s initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

from modernvision.models.classification.alexnet import AlexNet, AlexNetConfig, ConvLayer
from modernvision.models.registry import register_model

ZFNET = AlexNetConfig(
    convs=(
        ConvLayer(96, 7, stride=2, padding=1, lrn=True, pool=True),
        ConvLayer(256, 5, stride=2, lrn=True, pool=True),
        ConvLayer(384, 3, padding=1),
        ConvLayer(384, 3, padding=1),
        ConvLayer(256, 3, padding=1, pool=True),
    ),
    pool_ceil_mode=True,
    lrn_after_pool=True,
)


@torch.no_grad()
def renormalize_filters_(model: AlexNet, radius: float = 0.1) -> int:
    """Rescale every conv1 filter whose RMS exceeds ``radius`` back to ``radius`` (Sec. 3).

    Call it after each optimiser step. Returns how many filters were rescaled.
    """
    conv: nn.Conv2d = model.features.conv1.conv
    rms = conv.weight.square().mean(dim=(1, 2, 3)).sqrt()  # one value per output filter
    over = rms > radius
    conv.weight[over] *= (radius / rms[over]).view(-1, 1, 1, 1)
    return int(over.sum())


@register_model
def zfnet(*, num_classes: int = 1000, **kwargs) -> AlexNet:
    """ZFNet (Zeiler & Fergus 2013, Figure 3): 7x7/2 conv1, 5x5/2 conv2, no groups."""
    return AlexNet(ZFNET, num_classes=num_classes, **kwargs)
