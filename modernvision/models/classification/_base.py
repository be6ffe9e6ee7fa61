"""The interface every classifier shares, and the multi-scale features detectors plug into.

A classifier is ``forward_head(forward_features(x))``. It also lists its stages in
``feature_info`` (name, channels, stride w.r.t. the input) and returns them from
``forward_stages(x) -> dict[str, Tensor]``, so FPN and detection heads can use any backbone
(see :class:`modernvision.models.backbone.Backbone`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn


@dataclass(frozen=True)
class FeatureInfo:
    name: str  # e.g. "c2".."c5" for the stride-4..32 stages
    channels: int
    stride: int


@dataclass
class AuxOutput:
    """Training-mode output of a net with auxiliary classifiers (GoogLeNet, Inception v3).

    The training loss is ``CE(logits) + aux_weight * sum(CE(a) for a in aux_logits)``;
    in eval mode such nets return the plain logits tensor.
    """

    logits: Tensor
    aux_logits: list[Tensor] = field(default_factory=list)
    aux_weight: float = 0.3


class Classifier(nn.Module):
    """Base class: subclasses implement ``forward_features``, ``forward_head`` and
    ``forward_stages``."""

    feature_info: list[FeatureInfo]
    num_classes: int

    def forward_features(self, x: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} must implement forward_features")

    def forward_head(self, x: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} must implement forward_head")

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        raise TypeError(f"{type(self).__name__} does not expose multi-scale stages")

    def forward(self, x: Tensor) -> Tensor | AuxOutput:
        return self.forward_head(self.forward_features(x))
