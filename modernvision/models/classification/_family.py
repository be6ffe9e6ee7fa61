"""Helpers shared by the model families: config overrides and input checks."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from torch import Tensor

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
