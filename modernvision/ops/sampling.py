"""Choosing which anchors or proposals train the classifier.

Balanced sampling: "Faster R-CNN" (Ren et al., 2015, arXiv:1506.01497), sec. 3.1.3 -- each image
contributes ``batch_size_per_image`` anchors, up to ``positive_fraction`` of them positive, chosen
at random, the rest filled with random negatives (Fast R-CNN samples RoIs the same way, 25%
positive). With ``generator=None`` the random draws are those of torchvision's
``BalancedPositiveNegativeSampler`` (one ``randperm`` for the positives, then one for the
negatives, per image), so a fixed seed reproduces its choice.

Hard-negative mining: "SSD: Single Shot MultiBox Detector" (Liu et al., 2015, arXiv:1512.02325),
sec. 2.2 -- instead of all negatives, keep those with the highest loss (or score) so that
negatives are at most ``neg_pos_ratio`` (3) times the positives, per image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from modernvision.ops._checks import check_tensor

__all__ = ["BalancedPositiveNegativeSampler", "hard_negative_mining"]


class BalancedPositiveNegativeSampler:
    """Sample a fixed number of elements per image with a bounded fraction of positives.

    Args:
        batch_size_per_image: elements to select per image.
        positive_fraction: largest fraction of positives among them.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float) -> None:
        if batch_size_per_image <= 0:
            raise ValueError(f"batch_size_per_image must be positive, got {batch_size_per_image}")
        if not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction

    def __repr__(self) -> str:
        return (
            f"BalancedPositiveNegativeSampler(batch_size_per_image={self.batch_size_per_image}, "
            f"positive_fraction={self.positive_fraction})"
        )

    def __call__(
        self, matched_idxs: Sequence[Tensor], *, generator: torch.Generator | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Sample positives and negatives.

        Args:
            matched_idxs: per image, ``Tensor[N_i]`` with ``>= 1`` positive, ``0`` negative and
                ``< 0`` ignored (e.g. class labels, 0 for background, -1 to ignore).
            generator: random generator (``None``: torch's default one).

        Returns:
            ``(positive_masks, negative_masks)``: per image, ``uint8`` masks of shape ``[N_i]``.
        """
        positives, negatives = [], []
        for i, matched in enumerate(matched_idxs):
            check_tensor(matched, f"matched_idxs[{i}]")
            if matched.dim() != 1:
                raise ValueError(
                    f"matched_idxs[{i}] must have shape [N], got {list(matched.shape)}"
                )
            positive = torch.where(matched >= 1)[0]
            negative = torch.where(matched == 0)[0]
            num_pos = min(positive.numel(), int(self.batch_size_per_image * self.positive_fraction))
            num_neg = min(negative.numel(), self.batch_size_per_image - num_pos)
            perm_pos = torch.randperm(positive.numel(), device=positive.device, generator=generator)
            perm_neg = torch.randperm(negative.numel(), device=negative.device, generator=generator)
            pos_mask = torch.zeros_like(matched, dtype=torch.uint8)
            neg_mask = torch.zeros_like(matched, dtype=torch.uint8)
            pos_mask[positive[perm_pos[:num_pos]]] = 1
            neg_mask[negative[perm_neg[:num_neg]]] = 1
            positives.append(pos_mask)
            negatives.append(neg_mask)
        return positives, negatives


def hard_negative_mining(
    scores: Tensor, labels: Tensor, neg_pos_ratio: float = 3.0, *, min_negatives: int = 0
) -> Tensor:
    """Keep the hardest negatives, at most ``neg_pos_ratio`` per positive (SSD, sec. 2.2).

    Args:
        scores: ``Tensor[B, A]`` (or ``[A]``) hardness of each element, e.g. its background
            classification loss or its highest foreground score.
        labels: same shape, ``> 0`` positive, ``0`` negative, ``< 0`` ignored.
        neg_pos_ratio: negatives kept per positive, per image.
        min_negatives: negatives kept per image even without positives.

    Returns:
        bool ``Tensor`` like ``labels``: the selected negatives (highest scores first; among
        equal scores, lower indices first).
    """
    check_tensor(scores, "scores")
    check_tensor(labels, "labels")
    if scores.shape != labels.shape or scores.dim() not in (1, 2):
        raise ValueError(
            f"scores and labels must have one shape [B, A] or [A], got {list(scores.shape)} and "
            f"{list(labels.shape)}"
        )
    if neg_pos_ratio < 0 or min_negatives < 0:
        raise ValueError("neg_pos_ratio and min_negatives must be non-negative")
    squeeze = scores.dim() == 1
    if squeeze:
        scores, labels = scores[None], labels[None]
    candidate = labels == 0
    num_pos = (labels > 0).sum(dim=1)
    num_neg = torch.floor(num_pos * float(neg_pos_ratio)).long().clamp(min=min_negatives)
    num_neg = torch.minimum(num_neg, candidate.sum(dim=1))
    hardness = torch.where(candidate, scores.detach(), torch.full_like(scores, float("-inf")))
    order = torch.sort(hardness, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    selected = (rank < num_neg[:, None]) & candidate
    return selected[0] if squeeze else selected
