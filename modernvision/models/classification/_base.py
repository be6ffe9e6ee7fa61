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
    ``forward_stages``.

    With ``num_classes == 0`` a classifier is *headless*: it holds no classifier parameters
    and ``forward`` returns its pooled features ``(B, num_features)``.
    """

    feature_info: list[FeatureInfo]
    num_classes: int
    num_features: int  # channels of forward_features' output = length of the headless output

    def forward_features(self, x: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} must implement forward_features")

    def forward_head(self, x: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} must implement forward_head")

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        raise TypeError(f"{type(self).__name__} does not expose multi-scale stages")

    def stage_layers(self) -> list[tuple[str, tuple[str, ...]]]:
        """For each stage of ``feature_info``, in order: the dotted names of the modules that
        compute it from the previous stage's output (the first from the image), each called on
        the previous one's output.

        :class:`modernvision.models.backbone.Backbone` builds a truncated, headless body from
        it (keeping the modules' names, so state dicts still load), for detection and
        segmentation.
        """
        raise TypeError(f"{type(self).__name__} cannot be split into backbone stages")

    def forward(self, x: Tensor) -> Tensor | AuxOutput:
        return self.forward_head(self.forward_features(x))
