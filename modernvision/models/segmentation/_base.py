"""What every semantic segmenter shares: logits at the input size in eval, a loss dict in
training.

A segmenter takes normalised images ``Tensor[B, C, H, W]`` (ImageNet mean / std for RGB, as
torchvision's segmentation models) and

* in eval mode (or without targets) returns logits ``Tensor[B, num_classes, H, W]``;
* in training mode, called as ``model(images, targets)`` with ``targets: Tensor[B, H, W]``
  (int64 class indices, ``ignore_index`` for unlabelled pixels), returns
  ``{"loss": cross_entropy}`` (plus ``"loss_aux"`` for a model with an auxiliary head),
  so the same Trainer drives every segmenter. ``class_weight`` (``None``, or
  ``Tensor[num_classes]``, e.g. :func:`~modernvision.losses.median_frequency_weights`) weights
  that cross entropy per class; it is not part of the state dict (the training run's config
  says how it was set).

A model whose output is smaller than its input (the paper's valid-convolution U-Net) scores
the centre of the target: the target is centre-cropped to the logits, as the paper trains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError

__all__ = ["Segmenter", "center_crop"]


def center_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """The centre ``size`` of the last two dimensions of ``x``."""
    h, w = x.shape[-2:]
    th, tw = size
    if th > h or tw > w:
        raise InvalidArgumentError(f"cannot crop {h}x{w} to {th}x{tw}")
    top, left = (h - th) // 2, (w - tw) // 2
    return x[..., top: top + th, left: left + tw]


class Segmenter(nn.Module):
    """Base class: subclasses implement :meth:`forward_logits` (and may return an auxiliary
    head's logits from :meth:`forward_train_logits`).

    Args:
        num_classes: classes scored per pixel.
        in_channels: image channels.
        ignore_index: target value of pixels left out of the loss.
        aux_weight: weight of the auxiliary loss, where there is one.
    """

    def __init__(self, num_classes: int, *, in_channels: int = 3, ignore_index: int = 255,
                 aux_weight: float = 0.5) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise InvalidArgumentError(f"num_classes must be a positive int, got "
                                       f"{num_classes!r}")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.ignore_index, self.aux_weight = ignore_index, aux_weight
        self.register_buffer("class_weight", None, persistent=False)

    def set_class_weight(self, weight: Tensor | None) -> None:
        """Weight the training cross entropy per class (``None``: unweighted)."""
        if weight is not None:
            weight = torch.as_tensor(weight, dtype=torch.float32)
            if weight.shape != (self.num_classes,) or not torch.isfinite(weight).all() or (
                    weight < 0).any():
                raise InvalidArgumentError(
                    f"class_weight must be {self.num_classes} finite, non-negative numbers "
                    f"(one per class), got shape {tuple(weight.shape)}")
            ref = next(iter(self.parameters()), None)
            if ref is not None:
                weight = weight.to(ref.device)
        self.class_weight = weight

    def forward_logits(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> logits ``(B, num_classes, H, W)``."""
        raise NotImplementedError  # pragma: no cover

    def forward_train_logits(self, x: Tensor) -> dict[str, Tensor]:
        """``{"out": logits}`` (and ``"aux"`` for an auxiliary head) for the training loss."""
        return {"out": self.forward_logits(x)}

    def _check(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InvalidArgumentError(f"{type(self).__name__} expects images (B, "
                                       f"{self.in_channels}, H, W), got {shape}")

    def forward(self, images: Tensor, targets: Tensor | None = None
                ) -> Tensor | dict[str, Tensor]:
        self._check(images)
        if not self.training or targets is None:
            return self.forward_logits(images)
        if targets.dim() != 3 or targets.shape[0] != images.shape[0]:
            raise InvalidArgumentError(f"targets must be (B, H, W) class indices, got "
                                       f"{tuple(targets.shape)} for images "
                                       f"{tuple(images.shape)}")
        outputs = self.forward_train_logits(images)
        losses = {}
        for name, logits in outputs.items():
            target = targets
            if logits.shape[-2:] != target.shape[-2:]:
                target = center_crop(target, tuple(logits.shape[-2:]))
            loss = F.cross_entropy(logits, target.long(), weight=self.class_weight,
                                   ignore_index=self.ignore_index)
            losses["loss" if name == "out" else f"loss_{name}"] = (
                loss if name == "out" else self.aux_weight * loss)
        return losses
