"""Anchor shapes learned from a data set: k-means on box sizes with the ``1 - IoU`` distance.

YOLO9000 (Redmon, Farhadi, 2016, arXiv:1612.08242), Sec. 2 "Dimension Clusters": Euclidean
k-means on ``(w, h)`` lets large boxes dominate, so the distance is ``d(box, centroid) = 1 -
IoU(box, centroid)`` with both boxes centred at the same point (IoU of the shapes only,
:func:`shape_iou`). YOLOv3 (arXiv:1804.02767, Sec. 2.3) clusters nine anchors this way. The
quality of a set of anchors is the mean, over the boxes, of the best IoU with any anchor
(the paper's "Avg IOU", Table 1 of YOLO9000).

The algorithm is Lloyd's: assign each box to its nearest centroid (highest IoU), move each
centroid to the mean ``(w, h)`` of its boxes, repeat until no assignment changes. Seeding is
k-means++ with the same distance, from a ``torch.Generator`` seeded with ``seed``, so a run is
reproducible. Departure: a centroid left without boxes is re-seeded on the box farthest from
all centroids, rather than dropped.
"""

from __future__ import annotations

import torch
from torch import Tensor

from modernvision._errors import InvalidArgumentError

__all__ = ["kmeans_anchors", "mean_best_iou", "shape_iou"]


def shape_iou(sizes: Tensor, anchors: Tensor) -> Tensor:
    """IoU of boxes centred at one point: ``sizes [N, 2]`` and ``anchors [K, 2]`` as ``(w, h)``
    -> ``[N, K]``."""
    inter = torch.minimum(sizes[:, None], anchors[None]).prod(-1)
    return inter / (sizes.prod(-1)[:, None] + anchors.prod(-1)[None] - inter)


def mean_best_iou(sizes: Tensor, anchors: Tensor) -> float:
    """Mean over the boxes of their best :func:`shape_iou` with any anchor."""
    return float(shape_iou(sizes.double(), anchors.double()).max(1).values.mean())


def kmeans_anchors(sizes: Tensor, k: int = 9, *, seed: int = 0, max_iter: int = 300
                   ) -> tuple[Tensor, float]:
    """``k`` anchor shapes clustering ``sizes`` under ``1 - IoU``.

    Args:
        sizes: ``Tensor[N, 2]`` box ``(w, h)``, positive, ``N >= k``.
        k: number of anchors.
        seed: seed of the k-means++ initialisation.
        max_iter: most Lloyd iterations.

    Returns:
        ``(anchors, mean_iou)``: ``Tensor[k, 2]`` (float64) sorted by area, and
        :func:`mean_best_iou` of ``sizes`` with them.
    """
    if not isinstance(sizes, Tensor) or sizes.dim() != 2 or sizes.shape[1] != 2:
        got = tuple(sizes.shape) if isinstance(sizes, Tensor) else type(sizes).__name__
        raise InvalidArgumentError(f"sizes must be a Tensor[N, 2] of (w, h), got {got}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidArgumentError(f"k must be a positive int, got {k!r}")
    sizes = sizes.detach().to("cpu", torch.float64)
    if not bool((sizes > 0).all()) or not bool(torch.isfinite(sizes).all()):
        raise InvalidArgumentError("sizes must be finite and positive (every box w, h > 0)")
    if sizes.shape[0] < k:
        raise InvalidArgumentError(
            f"k-means needs at least k={k} boxes, got {sizes.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    centroids = _plus_plus(sizes, k, g)
    assignment = None
    for _ in range(max_iter):
        new = shape_iou(sizes, centroids).argmax(1)
        if assignment is not None and bool((new == assignment).all()):
            break
        assignment = new
        for j in range(k):
            members = sizes[assignment == j]
            if members.numel():
                centroids[j] = members.mean(0)
            else:  # re-seed on the box worst served by the others
                centroids[j] = sizes[shape_iou(sizes, centroids).max(1).values.argmin()]
    order = centroids.prod(1).argsort()
    centroids = centroids[order]
    return centroids, mean_best_iou(sizes, centroids)


def _plus_plus(sizes: Tensor, k: int, g: torch.Generator) -> Tensor:
    """k-means++ seeding with the ``1 - IoU`` distance."""
    first = int(torch.randint(sizes.shape[0], (1,), generator=g))
    centroids = [sizes[first]]
    for _ in range(1, k):
        d = 1 - shape_iou(sizes, torch.stack(centroids)).max(1).values
        weights = d.clamp(min=0) ** 2
        if float(weights.sum()) <= 0:  # every box already coincides with a centroid
            index = int(torch.randint(sizes.shape[0], (1,), generator=g))
        else:
            index = int(torch.multinomial(weights, 1, generator=g))
        centroids.append(sizes[index])
    return torch.stack(centroids).clone()
