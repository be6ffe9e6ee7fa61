"""Helpers shared by the model families: config overrides, input checks, weight initialisation,
stage bookkeeping and the forward passes that several families have in common."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.classification._base import AuxOutput, Classifier, FeatureInfo
from modernvision.models.registry import StateDict

C = TypeVar("C")


def apply_overrides(config: C, overrides: dict[str, Any], *, model: str) -> C:
    """``config`` with the fields named in ``overrides`` replaced.

    Every keyword a builder does not consume itself must name a field of the family's config
    (e.g. ``create("resnet50", stride_in_1x1=True)``); anything else is an error rather than a
    silently dropped argument.

    Raises:
        TypeError: an override names no field of the config.
    """
    if not overrides:
        return config
    fields = {f.name for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(
            f"{model} got unexpected keyword argument(s) {unknown}; it accepts num_classes, "
            f"in_channels, small_input and the fields of {type(config).__name__}: "
            f"{', '.join(sorted(fields))}"
        )
    return dataclasses.replace(config, **overrides)  # type: ignore[type-var]


def check_images(x: Tensor, in_channels: int, model: str) -> None:
    """Raise a clear error unless ``x`` is a batch of images ``(B, in_channels, H, W)``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{model} expects a Tensor of images, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"{model} expects images of shape (B, {in_channels}, H, W), got {tuple(x.shape)}"
        )


def check_num_classes(num_classes: int) -> None:
    """Raise ``InvalidArgumentError`` unless ``num_classes`` is an int ``>= 0`` (0: headless)."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
        raise InvalidArgumentError(
            f"num_classes must be an int >= 0 (0 builds a headless model that returns pooled "
            f"features), got {num_classes!r}")


def linear_head(in_features: int, num_classes: int) -> nn.Module:
    """The classifier's last linear layer, or ``nn.Identity`` when ``num_classes == 0``.

    A headless model (``num_classes=0``) has no classifier parameters at all, so a detector or
    an embedding head built on it leaves no parameter without a gradient (DDP then needs no
    ``find_unused_parameters``); its ``forward`` returns the ``num_features`` pooled features.
    """
    check_num_classes(num_classes)
    return nn.Linear(in_features, num_classes) if num_classes else nn.Identity()


def head_dropout(p: float, num_classes: int, **kwargs: Any) -> nn.Module:
    """Dropout before the classifier; none in a headless model (it regularises the classifier,
    and the pooled features of ``forward`` should not depend on the mode)."""
    return nn.Dropout(p, **kwargs) if num_classes else nn.Identity()


def check_positive_ints(**values: int) -> None:
    """Raise ``ValueError`` unless every value is a positive int (``bool`` is refused)."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_image_batch(x: Tensor, in_channels: int, min_size: int, hint: str) -> None:
    """Raise a clear error unless ``x`` is ``(B, in_channels, H, W)`` with both sides at least
    ``min_size``; ``hint`` (in brackets) tells the user what to do about a too-small input."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a Tensor of shape (B, C, H, W), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"x must have shape (B, {in_channels}, H, W), got {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"x is {x.shape[-2]}x{x.shape[-1]} but this network needs at least "
            f"{min_size}x{min_size} ({hint})")


def imagenet_to_unit_range(x: Tensor) -> Tensor:
    """Re-normalise ImageNet-normalised RGB ``(B, 3, H, W)`` to mean 0.5, std 0.5 ([-1, 1]),
    the range Google's ported GoogLeNet / Inception weights expect (``transform_input``)."""
    mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x * std + mean - 0.5) / 0.5


def output_size(n: int, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling window over ``n`` positions, as torch computes
    it; 0 when the window does not fit."""
    span = n + 2 * padding - kernel
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    # As in torch: with ceil_mode the last window must start inside the (left-padded) input.
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    return out


def smallest_input(layers: Iterable[tuple[int, int, int, bool]], limit: int) -> int:
    """Smallest square input side below ``limit`` for which every layer ``(kernel, stride,
    padding, ceil_mode)`` that shrinks the grid, in order, still has an output."""
    layers = list(layers)
    for n in range(1, limit):
        size = n
        for kernel, stride, padding, ceil_mode in layers:
            size = output_size(size, kernel, stride, padding, ceil_mode)
            if size < 1:
                break
        else:
            return n
    raise ValueError(f"no input size up to {limit} fits this network")


def init_fan_out(
    model: nn.Module,
    *,
    linear: Callable[[nn.Linear], None] | None = None,
    zero_conv_bias: bool = True,
) -> None:
    """torchvision's initialisation of ResNet, MobileNetV2 and EfficientNet.

    Kaiming-normal (fan-out, ReLU gain) convolution weights, batch/group-norm weights 1 and
    biases 0; convolution biases 0 when ``zero_conv_bias``; linear layers are left at PyTorch's
    default unless ``linear`` is given, which then sets each one's weight (its bias becomes 0).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if zero_conv_bias and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif linear is not None and isinstance(m, nn.Linear):
            linear(m)
            nn.init.zeros_(m.bias)


def deepest_per_stride(
    layers: Iterable[tuple[str, int, int]],
) -> tuple[dict[str, str], list[FeatureInfo]]:
    """The stages of a net given as ``(layer name, stride after it, channels)`` in forward order.

    The last layer at each stride ``s >= 2`` ends stage ``c<log2 s>``.

    Returns:
        ``({layer name: stage name}, feature_info)``, both in increasing stride.
    """
    last_at: dict[int, tuple[str, int]] = {}
    for name, stride, channels in layers:
        last_at[stride] = (name, channels)
    stage_ends: dict[str, str] = {}
    feature_info = []
    for s, (name, channels) in sorted(last_at.items()):
        if s >= 2:
            stage = f"c{s.bit_length() - 1}"
            stage_ends[name] = stage
            feature_info.append(FeatureInfo(stage, channels, s))
    return stage_ends, feature_info


class PooledFeaturesClassifier(Classifier):
    """``features`` (a sequence of named layers), ``avgpool``, flatten, ``classifier``: AlexNet,
    ZFNet and VGG.

    Subclasses set those three modules, ``in_channels``, ``min_input_size``, ``_stage_ends``
    (``{layer name in features: stage name}``) and ``_size_hint`` (the advice given with a
    too-small input).
    """

    features: nn.Sequential
    avgpool: nn.Module
    classifier: nn.Module
    in_channels: int
    min_input_size: int
    _stage_ends: dict[str, str]
    _size_hint: str

    def _check_input(self, x: Tensor) -> None:
        check_image_batch(x, self.in_channels, self.min_input_size, self._size_hint)

    def forward_features(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return self.features(x)

    def forward_head(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.avgpool(x), 1)  # (B, C, g, g) -> (B, C*g*g)
        return self.classifier(x)

    def stage_layers(self) -> list[tuple[str, tuple[str, ...]]]:
        stages, pending = [], []
        for name, _ in self.features.named_children():
            pending.append(f"features.{name}")
            if name in self._stage_ends:
                stages.append((self._stage_ends[name], tuple(pending)))
                pending = []
        return stages

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        self._check_input(x)
        out = {}
        for name, layer in self.features.named_children():
            x = layer(x)
            if name in self._stage_ends:
                out[self._stage_ends[name]] = x
        return out


class TappedBodyClassifier(Classifier):
    """A body of named top-level layers run in order, with stage outputs and auxiliary
    classifiers tapped along it: GoogLeNet and Inception v3.

    Subclasses build the body with :meth:`_add_body`, set ``in_channels``, ``min_input_size``,
    ``transform_input``, ``aux_weight``, ``_aux_heads`` (``{tapped layer: head attribute}``, empty
    without auxiliary classifiers) and ``_size_hint``, and implement ``forward_head``. In
    training mode with auxiliary heads, ``forward`` returns an :class:`AuxOutput`.
    """

    in_channels: int
    min_input_size: int
    transform_input: bool
    aux_weight: float
    _aux_heads: dict[str, str]
    _size_hint: str

    def _add_body(
        self, body: list[tuple[str, nn.Module, int]], is_stage: Callable[[nn.Module], bool]
    ) -> None:
        """Register ``(name, module, stride factor)`` layers in forward order; the deepest layer
        passing ``is_stage`` at each stride ends that stride's stage (``feature_info``)."""
        self._body: list[str] = []
        stride, candidates = 1, []
        for name, module, factor in body:
            self.add_module(name, module)
            self._body.append(name)
            stride *= factor
            if is_stage(module):
                candidates.append((name, stride, module.out_channels))
        self._stage_ends, self.feature_info = deepest_per_stride(candidates)

    def _check_input(self, x: Tensor) -> None:
        check_image_batch(x, self.in_channels, self.min_input_size, self._size_hint)

    def _transform(self, x: Tensor) -> Tensor:
        return imagenet_to_unit_range(x) if self.transform_input else x

    def _run_body(self, x: Tensor, with_aux: bool) -> tuple[Tensor, list[Tensor], dict]:
        self._check_input(x)
        x = self._transform(x)
        aux, stages = [], {}
        for name in self._body:
            x = getattr(self, name)(x)
            if with_aux and name in self._aux_heads:
                aux.append(getattr(self, self._aux_heads[name])(x))
            if name in self._stage_ends:
                stages[self._stage_ends[name]] = x
        return x, aux, stages

    def forward_features(self, x: Tensor) -> Tensor:
        return self._run_body(x, with_aux=False)[0]

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        return self._run_body(x, with_aux=False)[2]

    def forward(self, x: Tensor) -> Tensor | AuxOutput:
        with_aux = self.training and bool(self._aux_heads)
        features, aux, _ = self._run_body(x, with_aux)
        logits = self.forward_head(features)
        return AuxOutput(logits, aux, self.aux_weight) if with_aux else logits


def stage_names(strides: list[int], head_stride: int) -> dict[int, str]:
    """Map stage index (``-1`` = head) -> ``c<k>`` for the last stage at each stride 2^k."""
    names: dict[int, str] = {}
    for i, s in enumerate(strides):
        k = int(math.log2(s))
        names = {j: n for j, n in names.items() if n != f"c{k}"}
        names[i] = f"c{k}"
    k = int(math.log2(head_stride))
    names = {j: n for j, n in names.items() if n != f"c{k}"}
    names[-1] = f"c{k}"
    return names


class StemStagesHeadClassifier(Classifier):
    """``stem``, ``stages`` (a sequence of stages), ``head`` (the last 1x1 convolution), then
    global average pooling, ``dropout`` and ``fc``: MobileNetV2 and EfficientNet.

    Subclasses set those modules and ``in_channels``, and call :meth:`_set_feature_info`.
    """

    stem: nn.Module
    stages: nn.Sequential
    head: nn.Module
    dropout: nn.Module
    fc: nn.Linear
    in_channels: int
    num_features: int

    def _set_feature_info(
        self, strides: list[int], stage_channels: list[int], stem_stride: int
    ) -> None:
        """Stages from the stride and channels after each stage (the head is the last stage);
        named as with the stride-2 stem, so ``small_input`` halves the strides, not the names."""
        nominal = [s * 2 // stem_stride for s in strides]
        self._stage_names = stage_names(nominal, nominal[-1])
        self.feature_info = [
            FeatureInfo(
                name,
                self.num_features if i == -1 else stage_channels[i],
                strides[-1] if i == -1 else strides[i],
            )
            for i, name in sorted(self._stage_names.items(), key=lambda kv: kv[1])
        ]

    def forward_features(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> the final 1x1 convolution's map
        ``(B, num_features, H/32, W/32)``."""
        check_images(x, self.in_channels, type(self).__name__)
        return self.head(self.stages(self.stem(x)))

    def forward_head(self, x: Tensor) -> Tensor:
        """Feature map -> logits: global average pool, dropout, linear."""
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.dropout(x))

    def stage_layers(self) -> list[tuple[str, tuple[str, ...]]]:
        stages, pending = [], ["stem"]
        for i in range(len(self.stages)):
            pending.append(f"stages.{i}")
            if i in self._stage_names:
                stages.append((self._stage_names[i], tuple(pending)))
                pending = []
        stages.append((self._stage_names[-1], (*pending, "head")))
        return sorted(stages)

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        check_images(x, self.in_channels, type(self).__name__)
        out: dict[str, Tensor] = {}
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self._stage_names:
                out[self._stage_names[i]] = x
        out[self._stage_names[-1]] = self.head(x)
        return dict(sorted(out.items()))


# Positions inside torchvision's Conv2dNormActivation.
CONV_NORM_ACT = {"0": "conv", "1": "bn", "2": "act"}


def convert_torchvision_features(
    state_dict: StateDict,
    *,
    last: int,
    model: str,
    rename_block: Callable[[str, str, str], str],
) -> StateDict:
    """Rename a torchvision MobileNetV2 / EfficientNet state dict to our names.

    torchvision keeps one ``features`` list: ``features.0`` the stem, ``features.<last>`` the
    last 1x1 convolution (both ``Conv2dNormActivation``), blocks in between; ``classifier.1`` is
    the linear layer. ``rename_block(key, index, rest)`` renames ``features.<index>.<rest>``.
    """
    out: StateDict = {}
    for key, value in state_dict.items():
        m = re.fullmatch(r"features\.(\d+)\.(.+)", key)
        if key.startswith("classifier.1."):
            new = "fc." + key[len("classifier.1.") :]
        elif m is None:
            raise KeyError(f"unexpected key {key!r} in a torchvision {model} state dict")
        elif int(m[1]) in (0, last):
            part = "stem" if int(m[1]) == 0 else "head"
            new = f"{part}.{CONV_NORM_ACT[m[2][0]]}.{m[2][2:]}"
        else:
            new = rename_block(key, m[1], m[2])
        out[new] = value
    return out
