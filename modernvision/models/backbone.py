"""Backbones for detection and segmentation: the stages of a classifier, headless.

A :class:`Backbone` keeps only the modules of a classifier that compute the stages it returns
(its :meth:`~modernvision.models.classification._base.Classifier.stage_layers`): no pooling, no
classifier, no stage deeper than the deepest one asked for. So every parameter of a detector
built on it receives a gradient, and DDP never needs ``find_unused_parameters``. The modules
keep their names (``conv1``, ``layer1.0.conv1``, ... for a ResNet), the names torchvision's
``IntermediateLayerGetter`` gives, so its detection state dicts (``backbone.body.*``) load.

``trainable_layers`` follows torchvision's ``trainable_backbone_layers``: the number of stages,
counted back from the classifier's deepest stage (``c5``), whose parameters train; the rest are
frozen (``requires_grad=False``). For a ResNet: 0 freezes everything, 3 trains ``layer2`` to
``layer4`` (torchvision's default with pretrained weights), 5 trains everything including the
stem's ``conv1`` and ``bn1``. Batch-norm statistics are frozen separately, by building the
classifier with ``norm_layer=FrozenBatchNorm2d`` (:func:`create_backbone` does when asked).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.classification._base import Classifier

__all__ = ["AsBody", "Backbone", "create_backbone"]


class Backbone(nn.Module):
    """The stages of a classifier; ``forward(x) -> dict[str, Tensor]`` of ``out_features``.

    Args:
        body: a classifier implementing ``stage_layers`` (ResNet and its variants, MobileNetV2,
            EfficientNet, VGG, AlexNet); its head, if it has one, is not kept.
        out_features: the stages returned (``feature_info`` names, e.g. ``("c2", "c3", "c4",
            "c5")``); default: all of them.
        trainable_layers: stages (counted from the classifier's deepest) that train; ``None``
            trains all of them.

    Attributes:
        out_channels: channels of each returned stage, by name.
        strides: stride of each returned stage w.r.t. the input, by name.
    """

    def __init__(
        self,
        body: Classifier,
        out_features: Sequence[str] | None = None,
        *,
        trainable_layers: int | None = None,
    ) -> None:
        super().__init__()
        plan = body.stage_layers()
        info = {f.name: f for f in body.feature_info}
        order = [stage for stage, _ in plan]
        out_features = list(out_features) if out_features is not None else order
        unknown = [n for n in out_features if n not in info]
        if unknown or not out_features:
            raise InvalidArgumentError(
                f"out_features must be a non-empty subset of the stages {order}, got "
                f"{out_features}")
        if trainable_layers is not None and not 0 <= trainable_layers <= len(plan):
            raise InvalidArgumentError(
                f"trainable_layers must be in [0, {len(plan)}] for {type(body).__name__}, got "
                f"{trainable_layers}")
        deepest = max(order.index(n) for n in out_features)
        self.out_features = sorted(out_features, key=order.index)
        self.out_channels = {n: info[n].channels for n in self.out_features}
        self.strides = {n: info[n].stride for n in self.out_features}
        self.trainable_layers = len(plan) if trainable_layers is None else trainable_layers

        # Register the modules of the needed stages under their own dotted names.
        self._stages: list[tuple[str, list[nn.Module]]] = []
        first_trainable = len(plan) - self.trainable_layers
        for index, (stage, paths) in enumerate(plan[: deepest + 1]):
            modules = []
            for path in paths:
                module = body.get_submodule(path)
                _attach(self, path, module)
                if index < first_trainable:
                    module.requires_grad_(False)
                modules.append(module)
            self._stages.append((stage, modules))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Images ``(B, C, H, W)`` -> ``{stage: (B, out_channels[stage], H/s, W/s)}``."""
        out = {}
        for stage, modules in self._stages:
            for module in modules:
                x = module(x)
            if stage in self.out_channels:
                out[stage] = x
        return out

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, trainable_layers={self.trainable_layers}"


class AsBody(nn.Module):
    """A :class:`Backbone` held as ``body``, so its parameters are named ``backbone.body.*``
    as in the FPN detectors (whose ``FPNBackbone`` holds its classifier so): a detector without
    an FPN built on it loads an FPN detector's backbone with ``train --init``."""

    def __init__(self, body: Backbone) -> None:
        super().__init__()
        self.body = body
        self.out_channels = body.out_channels
        self.strides = body.strides

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.body(x)


def _attach(root: nn.Module, path: str, module: nn.Module) -> None:
    """Register ``module`` under ``root`` at the dotted ``path``, creating plain containers."""
    *parents, leaf = path.split(".")
    for name in parents:
        if not hasattr(root, name):
            root.add_module(name, nn.Module())
        root = getattr(root, name)
    root.add_module(leaf, module)


def create_backbone(
    name: str,
    *,
    out_features: Sequence[str] | None = None,
    trainable_layers: int | None = None,
    frozen_bn: bool = False,
    weights: str | None = None,
    **kwargs,
) -> Backbone:
    """A registered classifier, built headless, as a backbone.

    Args:
        name: a classifier of the registry (``"resnet50"``, ``"mobilenet_v2"``, ...).
        out_features: stages to return (default: all).
        trainable_layers: see :class:`Backbone`.
        frozen_bn: build it with :class:`~modernvision.layers.FrozenBatchNorm2d` (for
            fine-tuning pretrained weights with small batches).
        weights: ``None``, ``"torchvision"`` or a path (as in ``create``); the head's weights
            are dropped.
        **kwargs: passed on to the classifier's builder (e.g. ``width_mult=0.5``).
    """
    from modernvision.models.registry import create

    if frozen_bn:
        from modernvision.layers.norms import FrozenBatchNorm2d

        kwargs["norm_layer"] = FrozenBatchNorm2d
    body = create(name, num_classes=0, weights=weights, **kwargs)
    return Backbone(body, out_features, trainable_layers=trainable_layers)
