"""Smooth L1 loss for box regression.

"Fast R-CNN" (Girshick, 2015, arXiv:1504.08083), eq. (3):
``smooth_L1(x) = 0.5 x^2`` if ``|x| < 1``, else ``|x| - 0.5``. The ``beta`` generalisation
(quadratic below ``beta``: ``0.5 x^2 / beta``, else ``|x| - 0.5 beta``) is Detectron's; the
paper's loss is ``beta = 1``, torchvision's detection heads use ``beta = 1/9``, and ``beta = 0``
is the L1 loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

from modernvision.ops._checks import check_reduction, check_tensor

__all__ = ["smooth_l1_loss"]


def smooth_l1_loss(
    input: Tensor, target: Tensor, beta: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Smooth L1 loss (Fast R-CNN, eq. 3).

    Args:
        input: predictions, any shape.
        target: targets, same shape as ``input``.
        beta: where the loss turns from quadratic to linear (``>= 0``).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        Element-wise loss (``"none"``) or its mean or sum.
    """
    check_tensor(input, "input")
    check_tensor(target, "target")
    check_reduction(reduction)
    if input.shape != target.shape:
        raise ValueError(
            f"input and target must have the same shape, got {list(input.shape)} and "
            f"{list(target.shape)}"
        )
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    diff = torch.abs(input - target)
    if beta == 0:
        loss = diff
    else:
        loss = torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
