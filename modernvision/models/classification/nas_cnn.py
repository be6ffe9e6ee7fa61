"""The child networks of the search: a chain of conv layers with searched skip connections.

Paper: Zoph & Le, "Neural Architecture Search with Reinforcement Learning", ICLR 2017,
arXiv:1611.01578, Sec. 3.1 and 3.3: for every layer the controller picks the filter count and
the kernel size, and, at an *anchor point*, which earlier layers feed it (skip connections);
a layer's inputs are concatenated along the channels; a layer with no chosen input takes the
previous layer's output.

An architecture is a list with one entry per layer: ``{"filters": F, "kernel": K, "skips":
[j, ...]}``, ``skips`` naming earlier layers ``j < i - 1`` whose outputs are concatenated to
layer ``i - 1``'s as its input. Each layer is conv-BN-ReLU ("same" padding); the first layer
and the one at ``num_layers // 2`` have stride 2 (28 px -> 14 -> 7), so the search runs in
seconds per child; global average pooling and a linear classifier end the network.

Departures: the paper searches the stride too and pads smaller inputs to the larger size
before concatenating; here strides are fixed and a larger earlier output is average-pooled to
the smaller size. No dropout, no width multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.layers.conv import ConvNormAct
from modernvision.models.classification._base import Classifier, FeatureInfo
from modernvision.models.classification._family import check_num_classes, linear_head
from modernvision.models.registry import register_model

__all__ = ["DEFAULT_ARCH", "NASChild", "SearchSpace", "nas_cnn", "validate_arch"]


@dataclass(frozen=True)
class SearchSpace:
    """The choices per layer (Zoph & Le's are filters 24-64, kernels 1-7, 15-20 layers)."""

    num_layers: int = 4
    filters: tuple[int, ...] = (8, 16, 32)
    kernels: tuple[int, ...] = (3, 5, 7)


DEFAULT_ARCH: list[dict[str, Any]] = [
    {"filters": 16, "kernel": 3, "skips": []}, {"filters": 16, "kernel": 3, "skips": []},
    {"filters": 32, "kernel": 3, "skips": [0]}, {"filters": 32, "kernel": 3, "skips": [1]}]


def validate_arch(arch: Any) -> list[dict[str, Any]]:
    """Check an architecture (as written in ``children.jsonl``); returns a clean copy."""
    if not isinstance(arch, (list, tuple)) or not arch:
        raise InvalidArgumentError(f"arch must be a non-empty list of layers, got {arch!r}")
    out = []
    for i, layer in enumerate(arch):
        if not isinstance(layer, dict) or set(layer) != {"filters", "kernel", "skips"}:
            raise InvalidArgumentError(f"arch layer {i} must be a dict with filters, kernel "
                                       f"and skips, got {layer!r}")
        f, k, skips = layer["filters"], layer["kernel"], layer["skips"]
        if not isinstance(f, int) or f < 1 or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise InvalidArgumentError(f"arch layer {i}: filters must be >= 1 and kernel odd, "
                                       f"got {f!r} and {k!r}")
        if not isinstance(skips, (list, tuple)) or any(
                not isinstance(j, int) or not 0 <= j < i - 1 for j in skips):
            raise InvalidArgumentError(f"arch layer {i}: skips must be earlier layers "
                                       f"0..{i - 2}, got {skips!r}")
        out.append({"filters": f, "kernel": k, "skips": sorted(set(skips))})
    return out


class NASChild(Classifier):
    """A child network built from an architecture (see the module docstring)."""

    def __init__(self, arch: list[dict[str, Any]], *, num_classes: int = 10,
                 in_channels: int = 1) -> None:
        super().__init__()
        self.arch = validate_arch(arch)
        check_num_classes(num_classes)
        self.num_classes = num_classes
        self.in_channels = in_channels
        n = len(self.arch)
        self.strides = [2 if i in (0, n // 2) else 1 for i in range(n)]
        layers, widths = [], []
        for i, layer in enumerate(self.arch):
            c_in = in_channels if i == 0 else widths[i - 1] + sum(widths[j]
                                                                  for j in layer["skips"])
            layers.append(ConvNormAct(c_in, layer["filters"], layer["kernel"],
                                      stride=self.strides[i]))
            widths.append(layer["filters"])
        self.layers = nn.ModuleList(layers)
        self.num_features = widths[-1]
        self.head = linear_head(widths[-1], num_classes)
        self.feature_info = [FeatureInfo("out", widths[-1], 4 if n > 1 else 2)]

    def forward_features(self, x: Tensor) -> Tensor:
        outs: list[Tensor] = []
        for i, (layer, spec) in enumerate(zip(self.layers, self.arch, strict=True)):
            if i == 0:
                inp = x
            else:
                prev = outs[i - 1]
                # earlier, larger outputs are average-pooled to the previous layer's size
                extra = [F.adaptive_avg_pool2d(outs[j], prev.shape[-2:]) for j in spec["skips"]]
                inp = torch.cat([prev, *extra], 1) if extra else prev
            outs.append(layer(inp))
        return outs[-1]

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x.mean((2, 3)))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def nas_cnn(*, arch: list[dict[str, Any]] | None = None, num_classes: int = 10,
            in_channels: int = 1, small_input: bool = True) -> NASChild:
    """A searched child network: ``arch`` as written by ``modernvision nas`` (its
    ``best.json``); default a fixed 4-layer chain. ``small_input`` is accepted (the net is for
    small images only)."""
    del small_input
    return NASChild(arch if arch is not None else DEFAULT_ARCH, num_classes=num_classes,
                    in_channels=in_channels)
