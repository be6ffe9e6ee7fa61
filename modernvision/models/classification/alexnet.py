"""AlexNet, as in the 2012 paper, and torchvision's "one weird trick" variant.

Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NeurIPS 2012 (no arXiv id); the variant follows Krizhevsky, "One weird trick for
parallelizing convolutional neural networks", 2014, arXiv:1404.5997, as torchvision builds it.

``alexnet`` (the paper, Sec. 3 and Figure 2): five convolutions 96-256-384-384-256 with
kernels 11/5/3/3/3, the first with stride 4; the paper's split over two GPUs becomes
``groups=2`` in conv2, conv4 and conv5 (each half sees only its own GPU's 48/192 input maps),
while conv3 and the fully connected layers see everything. ReLU after every layer; local
response normalisation (k=2, n=5, alpha=1e-4, beta=0.75) after the ReLUs of conv1 and conv2;
overlapping 3x3 stride-2 max pools after both normalisations and after conv5; two hidden fully
connected layers of 4096 units, each followed by dropout 0.5. Initialisation as in Sec. 5:
weights N(0, 0.01), biases 1 in conv2, conv4, conv5 and the hidden fully connected layers,
0 elsewhere. 60,965,224 parameters at 1000 classes.

Departures from the paper:
    * The input is 227x227, not the 224x224 the paper states: only 227 gives the paper's
      55x55 conv1 output without padding (as in Caffe's reference model).
    * ``alpha`` of the normalisation is given as 5e-4 because, like torch and Caffe, our
      :class:`~modernvision.layers.lrn.LocalResponseNorm` divides it by the window size; this
      is the paper's alpha = 1e-4 on the plain sum.
    * An adaptive average pool to 6x6 sits before fc6 (torchvision's addition): the identity at
      227x227, it lets other input sizes through.
    * Training-time parts of the paper (PCA colour augmentation, SGD with weight decay,
      test-time 10-crop averaging) live outside the model.

``alexnet_tv``: torchvision's ``alexnet``, widths 64-192-384-256-256, no groups, no LRN, conv1
padded by 2 so 224x224 inputs work, dropout before fc6 and fc7 rather than after; PyTorch's
default initialisation. 61,100,840 parameters; torchvision state dicts load through
:func:`convert_torchvision_alexnet`.

``small_input=True`` (28x28 / 32x32 images): conv1 becomes 5x5 stride 1 (padding 2), every
other conv has stride 1 and "same" padding, the 3x3 stride-2 pools get padding 1, so 28x28 and
32x32 inputs both reach a 4x4 grid after pool5; the head pools to 4x4 and its hidden layers
have 1024 units; weights start from He et al.'s initialisation (with the paper's N(0, 0.01)
and unit biases, a small-input AlexNet stayed at chance level, loss 2.31, for 100 SGD steps
on Fashion-MNIST at batch 64, lr 0.01, momentum 0.9). Widths, groups, LRN and dropout stay as
in the paper.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from torch import nn

from modernvision.layers.conv import ConvNormAct
from modernvision.layers.lrn import LocalResponseNorm
from modernvision.models.classification._family import (
    PooledFeaturesClassifier,
    check_num_classes,
    check_positive_ints,
    deepest_per_stride,
    smallest_input,
)
from modernvision.models.registry import StateDict, register_model


@dataclass(frozen=True)
class ConvLayer:
    """One convolutional layer of the net, followed by a ReLU."""

    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    lrn: bool = False  # local response normalisation after the ReLU
    pool: bool = False  # overlapping max pool after the ReLU (after or before the LRN)


@dataclass(frozen=True)
class AlexNetConfig:
    """AlexNet-style net: convolutions with optional LRN and pooling, then three FC layers.

    Attributes:
        convs: the convolutional layers, in order.
        fc_width: units of fc6 and fc7.
        head_grid: side of the adaptive average pool before fc6.
        pool_kernel, pool_stride, pool_padding, pool_ceil_mode: the max pools.
        lrn_size, lrn_alpha, lrn_beta, lrn_k: the normalisation (alpha divided by size).
        lrn_after_pool: normalise after the pool (ZFNet) rather than before it (AlexNet).
        dropout_before_fc: dropout on the inputs of fc6 and fc7 (torchvision) rather than on
            their outputs (the paper, Sec. 4.2).
        init: ``"normal"``: N(0, ``init_std``) weights, biases 1 in ``unit_bias`` and 0 elsewhere
            (the paper, Sec. 5); ``"he"``: He et al. (2015) normal weights, zero biases;
            ``"default"``: PyTorch's default initialisation (torchvision's AlexNet).
        init_std: std of the ``"normal"`` init.
        unit_bias: layers whose biases start at 1 under the ``"normal"`` init.
    """

    convs: tuple[ConvLayer, ...]
    fc_width: int = 4096
    head_grid: int = 6
    pool_kernel: int = 3
    pool_stride: int = 2
    pool_padding: int = 0
    pool_ceil_mode: bool = False
    lrn_size: int = 5
    lrn_alpha: float = 5e-4
    lrn_beta: float = 0.75
    lrn_k: float = 2.0
    lrn_after_pool: bool = False
    dropout_before_fc: bool = False
    init: str = "normal"
    init_std: float = 0.01
    unit_bias: tuple[str, ...] = ()

    def for_small_input(self) -> AlexNetConfig:
        """The 28x28 / 32x32 variant described in the module docstring."""
        first = replace(self.convs[0], kernel_size=5, stride=1, padding=2)
        rest = tuple(replace(c, stride=1, padding=c.kernel_size // 2) for c in self.convs[1:])
        return replace(self, convs=(first, *rest), pool_padding=1, pool_ceil_mode=False,
                       head_grid=4, fc_width=1024, init="he")


ALEXNET = AlexNetConfig(
    convs=(
        ConvLayer(96, 11, stride=4, lrn=True, pool=True),
        ConvLayer(256, 5, padding=2, groups=2, lrn=True, pool=True),
        ConvLayer(384, 3, padding=1),
        ConvLayer(384, 3, padding=1, groups=2),
        ConvLayer(256, 3, padding=1, groups=2, pool=True),
    ),
    unit_bias=("conv2", "conv4", "conv5", "fc6", "fc7"),
)

ALEXNET_TV = AlexNetConfig(
    convs=(
        ConvLayer(64, 11, stride=4, padding=2, pool=True),
        ConvLayer(192, 5, padding=2, pool=True),
        ConvLayer(384, 3, padding=1),
        ConvLayer(256, 3, padding=1),
        ConvLayer(256, 3, padding=1, pool=True),
    ),
    dropout_before_fc=True,
    init="default",
)


class AlexNet(PooledFeaturesClassifier):
    """AlexNet family: ``features`` (conv1..conv5 with LRN and pools) then ``classifier``.

    Layers are named as in the paper and Caffe: ``features.conv1`` (a ConvNormAct without
    norm), ``features.norm1``, ``features.pool1``, ..., ``features.pool5``; ``classifier.fc6``,
    ``classifier.fc7``, ``classifier.fc8``.

    Args:
        config: the architecture (see :data:`ALEXNET`, :data:`ALEXNET_TV`).
        num_classes: classifier outputs; 0: headless (no fc6..fc8), ``forward`` returns the
            globally average-pooled conv5 features ``(B, num_features)``.
        in_channels: input image channels.
        small_input: use ``config.for_small_input()`` (28x28 / 32x32 images).
        dropout: dropout probability in the classifier.
    """

    _size_hint = "small_input=True builds a variant for 28x28 / 32x32"

    def __init__(
        self,
        config: AlexNetConfig,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_positive_ints(in_channels=in_channels)
        check_num_classes(num_classes)
        if small_input:
            config = config.for_small_input()
        self.config, self.num_classes, self.in_channels = config, num_classes, in_channels

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        stride_after: dict[str, tuple[int, int]] = {}  # layer -> (stride, channels)
        stride, channels, min_size = 1, in_channels, []
        for i, spec in enumerate(config.convs, start=1):
            layers[f"conv{i}"] = ConvNormAct(
                channels, spec.out_channels, spec.kernel_size, spec.stride, spec.padding,
                groups=spec.groups, norm_layer=None,
            )
            channels, stride = spec.out_channels, stride * spec.stride
            min_size.append((spec.kernel_size, spec.stride, spec.padding, False))
            stride_after[f"conv{i}"] = (stride, channels)
            after_conv = [("norm", spec.lrn), ("pool", spec.pool)]
            for kind, present in reversed(after_conv) if config.lrn_after_pool else after_conv:
                if not present:
                    continue
                if kind == "norm":
                    layers[f"norm{i}"] = LocalResponseNorm(
                        config.lrn_size, config.lrn_alpha, config.lrn_beta, config.lrn_k
                    )
                else:
                    layers[f"pool{i}"] = nn.MaxPool2d(
                        config.pool_kernel, config.pool_stride, config.pool_padding,
                        ceil_mode=config.pool_ceil_mode,
                    )
                    stride *= config.pool_stride
                    min_size.append((config.pool_kernel, config.pool_stride,
                                     config.pool_padding, config.pool_ceil_mode))
                stride_after[f"{kind}{i}"] = (stride, channels)
        self.features = nn.Sequential(layers)
        self.num_features = channels
        if num_classes:
            self.avgpool = nn.AdaptiveAvgPool2d(config.head_grid)
            self.classifier = _classifier(channels * config.head_grid**2, config.fc_width,
                                          num_classes, dropout, config.dropout_before_fc)
        else:  # headless: fc6..fc8 are all classifier; forward gives the pooled conv5 features
            self.avgpool, self.classifier = nn.AdaptiveAvgPool2d(1), nn.Identity()

        # The deepest layer at each stride is that stride's stage ("c2" = stride 4, ...).
        self._stage_ends, self.feature_info = deepest_per_stride(
            (name, s, ch) for name, (s, ch) in stride_after.items()
        )
        self.min_input_size = smallest_input(min_size, 4096)
        self._init_weights()

    def _init_weights(self) -> None:
        init = self.config.init
        if init not in ("normal", "he", "default"):
            raise ValueError(f"config.init must be 'normal', 'he' or 'default', got {init!r}")
        if init == "default":
            return
        for name, module in [*self.features.named_children(), *self.classifier.named_children()]:
            layer = module.conv if isinstance(module, ConvNormAct) else module
            if not isinstance(layer, (nn.Conv2d, nn.Linear)):
                continue
            if init == "he":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
            else:
                nn.init.normal_(layer.weight, 0.0, self.config.init_std)
                nn.init.constant_(layer.bias, 1.0 if name in self.config.unit_bias else 0.0)


def _classifier(in_features: int, width: int, num_classes: int, dropout: float,
                dropout_before_fc: bool) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, (n_in, n_out) in enumerate([(in_features, width), (width, width)], start=6):
        if dropout_before_fc:
            layers[f"drop{i}"] = nn.Dropout(dropout)
        layers[f"fc{i}"] = nn.Linear(n_in, n_out)
        layers[f"relu{i}"] = nn.ReLU(inplace=True)
        if not dropout_before_fc:
            layers[f"drop{i}"] = nn.Dropout(dropout)
    layers["fc8"] = nn.Linear(width, num_classes)
    return nn.Sequential(layers)


def convert_torchvision_alexnet(state_dict: StateDict) -> StateDict:
    """torchvision ``alexnet`` state dict -> ours (``alexnet_tv``)."""
    prefixes = {
        "features.0.": "features.conv1.conv.",
        "features.3.": "features.conv2.conv.",
        "features.6.": "features.conv3.conv.",
        "features.8.": "features.conv4.conv.",
        "features.10.": "features.conv5.conv.",
        "classifier.1.": "classifier.fc6.",
        "classifier.4.": "classifier.fc7.",
        "classifier.6.": "classifier.fc8.",
    }
    return _rename_prefixes(state_dict, prefixes)


def _rename_prefixes(state_dict: StateDict, prefixes: dict[str, str]) -> StateDict:
    out = {}
    for key, value in state_dict.items():
        match = next((p for p in prefixes if key.startswith(p)), None)
        if match is None:
            raise ValueError(f"unexpected key {key!r} in the torchvision state dict")
        out[prefixes[match] + key[len(match):]] = value
    return out


@register_model
def alexnet(*, num_classes: int = 1000, **kwargs) -> AlexNet:
    """AlexNet as in the 2012 paper (227x227 input, grouped convs, LRN)."""
    return AlexNet(ALEXNET, num_classes=num_classes, **kwargs)


alexnet.default_image_size = 227  # the size the paper's 55x55 conv1 output implies


@register_model(torchvision="alexnet", converter=convert_torchvision_alexnet)
def alexnet_tv(*, num_classes: int = 1000, **kwargs) -> AlexNet:
    """torchvision's AlexNet ("one weird trick" widths, no LRN, no groups)."""
    return AlexNet(ALEXNET_TV, num_classes=num_classes, **kwargs)
