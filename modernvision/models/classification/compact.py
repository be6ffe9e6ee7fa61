"""A compact CNN for small grey images (the demo's network).

Not from one paper: the classic recipe of the course — stacks of 3x3 conv + batch norm (Ioffe &
Szegedy, "Batch Normalization", 2015, arXiv:1502.03167) + ReLU, 2x2 max-pooling, and dropout
(Srivastava et al., JMLR 2014) before the classifier, sized to train on 2 CPU cores in minutes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from modernvision.layers.conv import ConvNormAct
from modernvision.models.classification._base import Classifier, FeatureInfo
from modernvision.models.classification._family import check_num_classes
from modernvision.models.registry import register_model


@dataclass(frozen=True)
class CompactCNNConfig:
    widths: tuple[int, ...] = (24, 48, 96)  # one stage per width; 2x2 pool after each
    convs_per_stage: int = 1
    hidden: int = 192
    dropout: float = 0.3


class CompactCNN(Classifier):
    """``[conv3x3-BN-ReLU] x n -> maxpool`` per stage, then 3x3 grid -> FC -> dropout -> FC."""

    def __init__(self, cfg: CompactCNNConfig = CompactCNNConfig(), *, num_classes: int = 10,
                 in_channels: int = 1, small_input: bool = True,
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
                 dropout_layer: Callable[[float], nn.Module] = nn.Dropout) -> None:
        super().__init__()
        self.num_classes = num_classes
        del small_input  # built for small inputs only; accepted so create() treats all alike
        stages, c, stride = [], in_channels, 1
        self.feature_info = []
        for i, w in enumerate(cfg.widths):
            blocks = [ConvNormAct(c if j == 0 else w, w, 3, norm_layer=norm_layer)
                      for j in range(cfg.convs_per_stage)]
            stages.append(nn.Sequential(*blocks, nn.MaxPool2d(2)))
            c, stride = w, stride * 2
            self.feature_info.append(FeatureInfo(f"c{i + 1}", w, stride))
        self.stages = nn.Sequential(*stages)
        # A fixed 3x3 grid keeps the spatial layout (28 px in: already 3x3) for any input size.
        check_num_classes(num_classes)
        self.num_features = c
        if num_classes:
            self.pool = nn.AdaptiveAvgPool2d(3)
            self.classifier = nn.Sequential(
                nn.Flatten(),
                nn.Linear(c * 9, cfg.hidden),
                nn.ReLU(inplace=True),
                dropout_layer(cfg.dropout),
                nn.Linear(cfg.hidden, num_classes),
            )
        else:  # headless: the globally pooled last stage, (B, num_features)
            self.pool, self.classifier = nn.AdaptiveAvgPool2d(1), nn.Flatten()

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(x))

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        out = {}
        for info, stage in zip(self.feature_info, self.stages):
            x = stage(x)
            out[info.name] = x
        return out


@register_model
def compact_cnn(*, num_classes: int = 10, hand_written_layers: bool = False,
                **kwargs) -> CompactCNN:
    """``hand_written_layers=True`` swaps in our own BatchNorm2d and Dropout
    (``modernvision.layers``, verified equal to torch.nn's) for torch.nn's."""
    if hand_written_layers:
        from modernvision.layers import BatchNorm2d, Dropout

        kwargs |= {"norm_layer": BatchNorm2d, "dropout_layer": Dropout}
    fields = {f.name for f in dataclasses.fields(CompactCNNConfig)}
    cfg = CompactCNNConfig(**{k: kwargs.pop(k) for k in list(kwargs) if k in fields})
    return CompactCNN(cfg, num_classes=num_classes, **kwargs)
