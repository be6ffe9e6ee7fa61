"""GoogLeNet (Inception v1), as in the paper, and torchvision's batch-norm variant.

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842, Sec. 5,
Table 1 and Figure 3.

``googlenet`` (the paper): a stem (7x7/2 conv, 3x3/2 max pool, local response normalisation,
1x1 conv 64, 3x3 conv 192, local response normalisation, 3x3/2 max pool), nine Inception
modules (3a, 3b | 3x3/2 pool | 4a..4e | 3x3/2 pool | 5a, 5b) with Table 1's widths, a 7x7
average pool, dropout 0.4 and a linear classifier; ReLU after every conv and no batch norm.
Two auxiliary classifiers on the outputs of 4a and 4d (Sec. 5): 5x5/3 average pool, 1x1 conv
128 + ReLU, fully connected 1024 + ReLU, dropout 0.7, linear classifier; their losses are
added with weight 0.3 in training and they are dropped in eval (:class:`AuxOutput`).
``inception_module="naive"`` swaps every module for Fig. 2a's naive one (no 1x1 reductions,
the pool branch passes its input through), which shows why the reductions are there: widths
then grow module after module (4,944 channels out of 5b) and so does the cost.

Departures from the paper:
    * The paper gives no LRN parameters nor initialisation; we take them from the BVLC Caffe
      reproduction (``bvlc_googlenet``): LRN size 5, alpha 1e-4 (divided by the size, as Caffe
      and torch do), beta 0.75, k 1; Caffe's "xavier" weights (uniform, variance 1/fan_in),
      biases 0.2 except 0 in the classifier outputs.
    * Max pools round up (``ceil_mode``) as in Caffe, so 224x224 gives Table 1's 56, 28, 14
      and 7.
    * The final 7x7 average pool is adaptive (the identity change at 224x224), so other input
      sizes work.

``googlenet_tv``: torchvision's ``googlenet`` with ``weights=None``: batch norm (eps 1e-3)
after every conv, no LRN, a 3x3 kernel in the "5x5" branch (pytorch/vision issue #906), a 2x2
max pool before 5a, auxiliary heads that pool adaptively to 4x4, dropout 0.2, truncated
normal (std 0.01) weights; its names are torchvision's, so its state dicts load as they are.
13,004,888 parameters (6,624,904 without ``aux_logits``). ``transform_input=True`` rescales
ImageNet-normalised inputs to the [-1, 1] range Google's ported weights expect (torchvision
turns it on with its pretrained weights).

``small_input=True`` (28x28 / 32x32): conv1 becomes a 3x3 stride-1 conv and the first max pool
is dropped, so 3a/3b see a 16x16 (14x14) grid instead of 28x28; the auxiliary heads pool
adaptively to 4x4. Everything else is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from modernvision.layers.conv import ConvNormAct, NormLayer
from modernvision.layers.inception import InceptionModule, NaiveInceptionModule
from modernvision.layers.lrn import LocalResponseNorm
from modernvision.models.classification._family import (
    TappedBodyClassifier,
    check_num_classes,
    check_positive_ints,
    head_dropout,
    linear_head,
    smallest_input,
)
from modernvision.models.registry import register_model


@dataclass(frozen=True)
class InceptionSpec:
    """One Inception row of Table 1."""

    ch1x1: int
    ch3x3_reduce: int
    ch3x3: int
    ch5x5_reduce: int
    ch5x5: int
    pool_proj: int


@dataclass(frozen=True)
class GoogLeNetConfig:
    """Table 1 plus the choices that tell the paper and torchvision's variant apart.

    Attributes:
        stage3, stage4, stage5: the Inception modules at 28x28, 14x14 and 7x7 (224x224 input).
        aux_after: modules whose outputs feed an auxiliary classifier.
        batch_norm: batch norm (eps 1e-3) after every conv.
        lrn: local response normalisation in the stem.
        kernel_5x5: kernel of the "5x5" branches.
        pool4_kernel: kernel of the max pool before 5a (stride 2).
        aux_adaptive_pool: auxiliary heads pool adaptively to 4x4 (else 5x5 stride 3).
        dropout: before the classifier.
        dropout_aux: in the auxiliary heads.
        aux_weight: weight of the auxiliary losses.
        init_std: truncated-normal std for the weights; ``None`` for the Caffe init.
    """

    stage3: tuple[InceptionSpec, ...]
    stage4: tuple[InceptionSpec, ...]
    stage5: tuple[InceptionSpec, ...]
    aux_after: tuple[str, ...] = ("inception4a", "inception4d")
    batch_norm: bool = False
    lrn: bool = True
    kernel_5x5: int = 5
    pool4_kernel: int = 3
    aux_adaptive_pool: bool = False
    dropout: float = 0.4
    dropout_aux: float = 0.7
    aux_weight: float = 0.3
    init_std: float | None = None


TABLE1_STAGE3 = (InceptionSpec(64, 96, 128, 16, 32, 32), InceptionSpec(128, 128, 192, 32, 96, 64))
TABLE1_STAGE4 = (
    InceptionSpec(192, 96, 208, 16, 48, 64),
    InceptionSpec(160, 112, 224, 24, 64, 64),
    InceptionSpec(128, 128, 256, 24, 64, 64),
    InceptionSpec(112, 144, 288, 32, 64, 64),
    InceptionSpec(256, 160, 320, 32, 128, 128),
)
TABLE1_STAGE5 = (InceptionSpec(256, 160, 320, 32, 128, 128),
                 InceptionSpec(384, 192, 384, 48, 128, 128))

GOOGLENET = GoogLeNetConfig(TABLE1_STAGE3, TABLE1_STAGE4, TABLE1_STAGE5)
GOOGLENET_TV = GoogLeNetConfig(
    TABLE1_STAGE3, TABLE1_STAGE4, TABLE1_STAGE5,
    batch_norm=True, lrn=False, kernel_5x5=3, pool4_kernel=2, aux_adaptive_pool=True,
    dropout=0.2, init_std=0.01,
)


class InceptionAux(nn.Module):
    """Auxiliary classifier (Sec. 5): pool to 4x4, 1x1 conv 128, fc 1024, dropout, fc.

    Args:
        in_channels: channels of the tapped module's output.
        num_classes: classifier outputs.
        adaptive_pool: pool adaptively to 4x4 (torchvision) instead of 5x5 stride 3.
        norm_layer: normalisation after the conv, or ``None``.
        dropout: dropout probability before the last layer.
    """

    def __init__(self, in_channels: int, num_classes: int, *, adaptive_pool: bool = False,
                 norm_layer: NormLayer | None = None, dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4) if adaptive_pool else nn.AvgPool2d(5, stride=3)
        self.conv = ConvNormAct(in_channels, 128, 1, norm_layer=norm_layer)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        if x.shape[-2:] != (4, 4):
            raise ValueError(
                f"the auxiliary classifier's 5x5/3 pool needs a 14x14 to 16x16 input map (a "
                f"224x224 image), got {tuple(x.shape[-2:])} after pooling; use aux_logits=False "
                f"or a 224x224 input")
        x = torch.flatten(self.conv(x), 1)  # (B, 128, 4, 4) -> (B, 2048)
        return self.fc2(self.dropout(self.act(self.fc1(x))))


class GoogLeNet(TappedBodyClassifier):
    """GoogLeNet family. Module names are torchvision's (``conv1``, ``inception3a``, ``aux1``).

    Stages (``forward_stages``): ``c1`` = conv1 (stride 2), ``c2`` = the stem's last conv
    (stride 4), ``c3`` = 3b, ``c4`` = 4e, ``c5`` = 5b (strides halve with ``small_input``).

    Args:
        config: the architecture (:data:`GOOGLENET` or :data:`GOOGLENET_TV`).
        num_classes: classifier outputs; 0: headless (no ``fc``, no auxiliary heads),
            ``forward`` returns the pooled ``(B, 1024)`` features.
        in_channels: input image channels.
        small_input: the 28x28 / 32x32 stem described in the module docstring.
        aux_logits: build the auxiliary classifiers (used in training mode only).
        inception_module: ``"reduced"`` (Fig. 2b) or ``"naive"`` (Fig. 2a).
        transform_input: map ImageNet-normalised inputs to [-1, 1] first (3 channels only).
        dropout: overrides ``config.dropout`` when given.
    """

    _size_hint = "small_input=True builds a variant for 28x28 / 32x32"

    def __init__(
        self,
        config: GoogLeNetConfig,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        small_input: bool = False,
        aux_logits: bool = True,
        inception_module: str = "reduced",
        transform_input: bool = False,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        check_positive_ints(in_channels=in_channels)
        check_num_classes(num_classes)
        aux_logits = aux_logits and num_classes > 0  # auxiliary classifiers are heads too
        if inception_module not in ("reduced", "naive"):
            raise ValueError(
                f"inception_module must be 'reduced' or 'naive', got {inception_module!r}")
        if transform_input and in_channels != 3:
            raise ValueError("transform_input needs in_channels=3 (it maps ImageNet's RGB "
                             f"normalisation), got in_channels={in_channels}")
        self.config, self.num_classes, self.in_channels = config, num_classes, in_channels
        self.transform_input, self.aux_weight = transform_input, config.aux_weight
        norm = partial(nn.BatchNorm2d, eps=1e-3) if config.batch_norm else None
        conv = partial(ConvNormAct, norm_layer=norm)
        pool = partial(nn.MaxPool2d, stride=2, ceil_mode=True)

        # (name, module, stride factor); the order is the forward order.
        body: list[tuple[str, nn.Module, int]] = []
        if small_input:
            body.append(("conv1", conv(in_channels, 64, 3), 1))
        else:
            body += [("conv1", conv(in_channels, 64, 7, 2), 2), ("maxpool1", pool(3), 2)]
        if config.lrn:
            body.append(("norm1", self._lrn(), 1))
        body += [("conv2", conv(64, 64, 1), 1), ("conv3", conv(64, 192, 3), 1)]
        if config.lrn:
            body.append(("norm2", self._lrn(), 1))
        body.append(("maxpool2", pool(3), 2))
        channels, aux_channels = 192, {}
        stages = [("3", config.stage3, None), ("4", config.stage4, 3),
                  ("5", config.stage5, config.pool4_kernel)]
        for number, specs, pool_before in stages:
            if pool_before is not None:
                body.append((f"maxpool{int(number) - 1}", pool(pool_before), 2))
            for letter, spec in zip("abcdefgh", specs):
                if inception_module == "naive":
                    block = NaiveInceptionModule(channels, spec.ch1x1, spec.ch3x3, spec.ch5x5,
                                                 kernel_5x5=config.kernel_5x5, norm_layer=norm)
                else:
                    block = InceptionModule(channels, *_row(spec), kernel_5x5=config.kernel_5x5,
                                            norm_layer=norm)
                body.append((f"inception{number}{letter}", block, 1))
                channels = block.out_channels
                aux_channels[f"inception{number}{letter}"] = channels

        stage_types = (ConvNormAct, InceptionModule, NaiveInceptionModule)
        self._add_body(body, lambda m: isinstance(m, stage_types))

        self._aux_heads: dict[str, str] = {}
        for i, tap in enumerate(config.aux_after if aux_logits else (), start=1):
            if tap not in aux_channels:
                raise ValueError(f"aux_after names {tap!r}, not one of {list(aux_channels)}")
            self.add_module(f"aux{i}", InceptionAux(
                aux_channels[tap], num_classes, norm_layer=norm, dropout=config.dropout_aux,
                adaptive_pool=config.aux_adaptive_pool or small_input))
            self._aux_heads[tap] = f"aux{i}"
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = head_dropout(config.dropout if dropout is None else dropout, num_classes)
        self.num_features = channels
        self.fc = linear_head(channels, num_classes)
        self.min_input_size = self._min_input_size(small_input)
        self._init_weights()

    def _lrn(self) -> LocalResponseNorm:
        return LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

    def _min_input_size(self, small_input: bool) -> int:
        """Smallest square input every max pool accepts."""
        stem = [] if small_input else [(7, 2, 3, False), (3, 2, 0, True)]  # conv1, pool 1
        pools = [(3, 2, 0, True), (3, 2, 0, True), (self.config.pool4_kernel, 2, 0, True)]
        return smallest_input(stem + pools, 1024)

    def _init_weights(self) -> None:
        std = self.config.init_std
        for name, module in self.named_modules():
            if not isinstance(module, (nn.Conv2d, nn.Linear)):
                continue
            if std is not None:
                nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-2, b=2)
                continue
            # Caffe's "xavier" filler: U(-a, a) with a = sqrt(3 / fan_in).
            nn.init.kaiming_uniform_(module.weight, nonlinearity="linear")
            is_output = name == "fc" or name.endswith(".fc2")
            nn.init.constant_(module.bias, 0.0 if is_output else 0.2)

    def forward_head(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (B, C, 1, 1) -> (B, C)
        return self.fc(self.dropout(x))


def _row(spec: InceptionSpec) -> tuple[int, ...]:
    return (spec.ch1x1, spec.ch3x3_reduce, spec.ch3x3, spec.ch5x5_reduce, spec.ch5x5,
            spec.pool_proj)


@register_model
def googlenet(*, num_classes: int = 1000, **kwargs) -> GoogLeNet:
    """GoogLeNet as in the paper (no batch norm, LRN, 5x5 branches, aux heads at 4a and 4d)."""
    return GoogLeNet(GOOGLENET, num_classes=num_classes, **kwargs)


@register_model(torchvision="googlenet")
def googlenet_tv(*, num_classes: int = 1000, **kwargs) -> GoogLeNet:
    """torchvision's GoogLeNet (batch norm, weights=None defaults: aux heads included)."""
    return GoogLeNet(GOOGLENET_TV, num_classes=num_classes, **kwargs)
