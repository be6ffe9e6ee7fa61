"""Backbones for detection and segmentation: multi-scale features from any classifier."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from modernvision.models.classification._base import Classifier


class Backbone(nn.Module):
    """Wraps a classifier; ``forward(x) -> dict[str, Tensor]`` of the chosen stages.

    Attributes:
        out_channels: channels of each returned stage, by name.
        strides: stride of each returned stage w.r.t. the input, by name.
    """

    def __init__(self, body: Classifier, out_features: Sequence[str] | None = None) -> None:
        super().__init__()
        info = {f.name: f for f in body.feature_info}
        out_features = list(out_features) if out_features is not None else list(info)
        unknown = [n for n in out_features if n not in info]
        if unknown:
            raise ValueError(f"out_features {unknown} not among the stages {list(info)}")
        self.body = body
        self.out_features = out_features
        self.out_channels = {n: info[n].channels for n in out_features}
        self.strides = {n: info[n].stride for n in out_features}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        feats = self.body.forward_stages(x)
        return {n: feats[n] for n in self.out_features}


def create_backbone(name: str, *, out_features: Sequence[str] | None = None, **kwargs) -> Backbone:
    """A registered classifier as a multi-scale backbone (its head is kept but unused)."""
    from modernvision.models.registry import create

    return Backbone(create(name, **kwargs), out_features)
