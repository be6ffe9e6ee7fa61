"""Assigning anchors (or proposals) to ground-truth boxes by IoU.

"Faster R-CNN" (Ren et al., 2015, arXiv:1506.01497), sec. 3.1.2: an anchor is positive when its
IoU with some ground-truth box is ``>= high_threshold`` (0.7), negative below ``low_threshold``
(0.3), ignored in between; and -- so that every ground-truth box gets an anchor -- the anchors
with the highest IoU for a ground-truth box are positive too ("low-quality matches"). As in
Detectron and torchvision, such an anchor is matched to *its own* best ground truth, and every
anchor tied for a ground truth's highest IoU is included.

SSD ("SSD: Single Shot MultiBox Detector", Liu et al., 2015, arXiv:1512.02325, sec. 2.2) matches
every ground truth to its best default box, then every default box with IoU ``> 0.5``;
:class:`SSDMatcher` implements that with torchvision's ``>= threshold``.

Departure from torchvision: an empty quality matrix is not an error. With no ground truth every
prediction is "below the low threshold" (background); with no predictions the result is empty.
"""

from __future__ import annotations

import torch
from torch import Tensor

from modernvision.ops._checks import check_tensor

__all__ = ["Matcher", "SSDMatcher"]


class Matcher:
    """Match each prediction to at most one ground truth.

    Args:
        high_threshold: quality ``>=`` this is a match.
        low_threshold: quality ``<`` this is background (``BELOW_LOW_THRESHOLD``); in between is
            ``BETWEEN_THRESHOLDS`` (ignored by the losses).
        allow_low_quality_matches: also match each ground truth's best predictions (ties
            included) to their own best ground truth.
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(
        self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False
    ) -> None:
        if low_threshold > high_threshold:
            raise ValueError(
                f"low_threshold ({low_threshold}) must be <= high_threshold ({high_threshold})"
            )
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(high_threshold={self.high_threshold}, "
            f"low_threshold={self.low_threshold}, "
            f"allow_low_quality_matches={self.allow_low_quality_matches})"
        )

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        """Match predictions to ground truths.

        Args:
            match_quality_matrix: ``Tensor[M, N]`` quality (e.g. IoU) of ground truth ``m``
                with prediction ``n``.

        Returns:
            ``Tensor[N]`` int64: the matched ground-truth index in ``[0, M)``, or
            ``BELOW_LOW_THRESHOLD`` (-1), or ``BETWEEN_THRESHOLDS`` (-2).
        """
        quality = _check_matrix(match_quality_matrix)
        num_gt, num_pred = quality.shape
        if num_gt == 0 or num_pred == 0:
            return torch.full(
                (num_pred,), self.BELOW_LOW_THRESHOLD, dtype=torch.int64, device=quality.device
            )
        best_quality, matches = quality.max(dim=0)
        best_gt = matches.clone() if self.allow_low_quality_matches else None
        below = best_quality < self.low_threshold
        between = (best_quality >= self.low_threshold) & (best_quality < self.high_threshold)
        matches[below] = self.BELOW_LOW_THRESHOLD
        matches[between] = self.BETWEEN_THRESHOLDS
        if best_gt is not None:
            # Every prediction tied for some ground truth's highest quality keeps its best match.
            highest_per_gt = quality.max(dim=1).values
            _, preds = torch.where(quality == highest_per_gt[:, None])
            matches[preds] = best_gt[preds]
        return matches


class SSDMatcher(Matcher):
    """SSD matching: each ground truth's best prediction, plus every prediction ``>= threshold``.

    Args:
        threshold: quality at or above which a prediction matches.
    """

    def __init__(self, threshold: float) -> None:
        super().__init__(threshold, threshold, allow_low_quality_matches=False)

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        matches = super().__call__(match_quality_matrix)
        num_gt, num_pred = match_quality_matrix.shape
        if num_gt == 0 or num_pred == 0:
            return matches
        best_pred = match_quality_matrix.max(dim=1).indices
        matches[best_pred] = torch.arange(num_gt, dtype=torch.int64, device=matches.device)
        return matches


def _check_matrix(matrix: Tensor) -> Tensor:
    check_tensor(matrix, "match_quality_matrix")
    if matrix.dim() != 2:
        raise ValueError(
            f"match_quality_matrix must have shape [M ground truths, N predictions], got "
            f"{list(matrix.shape)}"
        )
    return matrix
