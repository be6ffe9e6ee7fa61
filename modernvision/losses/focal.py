"""Focal losses: RetinaNet's sigmoid focal loss and CenterNet's penalty-reduced pixel focal loss.

Sigmoid focal loss: "Focal Loss for Dense Object Detection" (Lin et al., 2017, arXiv:1708.02002),
eq. (5): ``FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p_t = p`` for positives and
``1 - p`` for negatives, applied per class with sigmoids. ``log(p_t)`` is computed as
binary cross-entropy with logits for stability. ``alpha=None`` (or torchvision's ``-1``) turns
the alpha weighting off; with ``gamma = 0`` and no alpha the loss is binary cross-entropy.

Penalty-reduced pixel-wise focal loss: "Objects as Points" (Zhou et al., 2019, arXiv:1904.07850),
eq. (1), after CornerNet (Law and Deng, 2018, arXiv:1808.01244, eq. 1):
``L = -1/N sum_xyc [(1 - p)^a log p if y = 1 else (1 - y)^b p^a log(1 - p)]`` with ``a = 2``,
``b = 4`` and ``N`` the number of keypoints (cells with ``y = 1``). Departure: the released code
clamps sigmoids to ``[1e-4, 1 - 1e-4]``; here ``log p`` and ``log(1 - p)`` come from
``logsigmoid`` of the logits, which is exact and never infinite, and ``N`` is at least 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from modernvision.ops._checks import check_reduction, check_tensor

__all__ = ["centernet_focal_loss", "sigmoid_focal_loss"]


def _check_pair(inputs: Tensor, targets: Tensor, a: str, b: str) -> None:
    check_tensor(inputs, a)
    check_tensor(targets, b)
    if inputs.shape != targets.shape:
        raise ValueError(
            f"{a} and {b} must have the same shape, got {list(inputs.shape)} and "
            f"{list(targets.shape)}"
        )
    if not inputs.is_floating_point():
        raise TypeError(f"{a} must be floating point logits, got {inputs.dtype}")


def sigmoid_focal_loss(
    inputs: Tensor,
    targets: Tensor,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> Tensor:
    """Sigmoid focal loss (RetinaNet, eq. 5).

    Args:
        inputs: logits, any shape.
        targets: same shape, 1 for the positive class and 0 for the negative (soft targets in
            between are allowed).
        alpha: weight of the positives in ``[0, 1]`` (negatives get ``1 - alpha``); ``None`` or
            ``-1`` for no weighting.
        gamma: focusing exponent ``>= 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Returns:
        Element-wise loss (``"none"``) or its mean or sum.
    """
    _check_pair(inputs, targets, "inputs", "targets")
    check_reduction(reduction)
    if alpha is not None and alpha != -1 and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], or None / -1 for no weighting, got {alpha}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    targets = targets.to(inputs.dtype)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    if gamma == 0:
        loss = ce
    else:
        p = torch.sigmoid(inputs)
        p_t = p * targets + (1 - p) * (1 - targets)
        loss = ce * (1 - p_t) ** gamma
    if alpha is not None and alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def centernet_focal_loss(
    logits: Tensor, heatmap: Tensor, alpha: float = 2.0, beta: float = 4.0
) -> Tensor:
    """Penalty-reduced pixel-wise focal loss on Gaussian heatmaps (CenterNet, eq. 1).

    Args:
        logits: ``Tensor[B, C, H, W]`` (any shape) heatmap logits.
        heatmap: same shape, target heatmap in ``[0, 1]`` with exactly 1 at object centres
            (see :func:`modernvision.ops.draw_gaussian`).
        alpha: focusing exponent ``a`` (2 in the paper).
        beta: exponent ``b`` of the penalty reduction ``(1 - y)^b`` around centres (4).

    Returns:
        Scalar loss: the sum over all cells divided by the number of centres (at least 1).
    """
    _check_pair(logits, heatmap, "logits", "heatmap")
    heatmap = heatmap.to(logits.dtype)
    if heatmap.numel() and bool(((heatmap < 0) | (heatmap > 1)).any()):
        raise ValueError("heatmap values must lie in [0, 1]")
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    positive = heatmap == 1
    pos_loss = (1 - p) ** alpha * log_p
    neg_loss = (1 - heatmap) ** beta * p**alpha * log_not_p
    loss = torch.where(positive, pos_loss, neg_loss).sum()
    num_centres = positive.sum().clamp(min=1)
    return -loss / num_centres
