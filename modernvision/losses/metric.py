"""Metric-learning losses and triplet mining: contrastive, triplet, batch-hard, online mining.

The goal is an embedding ``f(x)`` in which Euclidean distance means identity, so that people (or
classes) never seen in training can be recognised by nearest neighbours.

* Contrastive loss — "Dimensionality Reduction by Learning an Invariant Mapping" (Hadsell, Chopra
  and LeCun, CVPR 2006), eq. (4) without the 1/2 factors: ``d^2`` for a same-identity pair,
  ``max(0, m - d)^2`` for a different pair, ``d = ||f(x1) - f(x2)||``, mean over pairs. The
  *unbounded* form (``margin=None``: ``-d^2`` for different pairs) is the naive objective the
  margin repairs: it is minimised by pushing negatives infinitely far apart, so it never
  converges (on L2-normalised embeddings it saturates at ``-4``, not at a useful geometry).
* Triplet loss — "FaceNet: A Unified Embedding for Face Recognition and Clustering" (Schroff,
  Kalenichenko and Philbin, 2015, arXiv:1503.03832), eq. (1)-(3):
  ``max(0, ||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + m)``, mean over triplets. ``squared=False``
  uses plain Euclidean distances instead (pytorch-metric-learning's ``TripletMarginLoss``).
* Mining (:func:`mine_triplets`) — every valid triplet ``(a, p, n)`` of a batch, kept by its
  margin ``t = d(a, n) - d(a, p)`` on *unsquared* Euclidean distances: ``all`` (violating the
  margin, ``t <= m``), ``hard`` (``t <= 0``: the negative at least as close as the positive),
  ``semihard`` (FaceNet sec. 3.2: ``0 < t <= m``, farther than the positive but inside the
  margin) and ``easy`` (``t > m``). The selection and the order of the triplets are exactly those
  of pytorch-metric-learning's ``TripletMarginMiner`` (the reference in the tests). Departure:
  the reference enumerates all ``N^3`` triplets at once (a ``N x N x N`` mask; 8 GB of bytes at
  ``N = 2048``); here anchors are taken in chunks so memory stays ``O(chunk * N^2)``.
* Batch-hard — "In Defense of the Triplet Loss for Person Re-Identification" (Hermans, Beyer and
  Leibe, 2017, arXiv:1703.07737): for each anchor the farthest positive and the closest negative
  of the batch; the batches come from :class:`PKSampler` (``P`` identities x ``K`` images).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Sampler

from modernvision._errors import InvalidArgumentError

__all__ = [
    "MINING_KINDS",
    "OnlineContrastiveLoss",
    "OnlineTripletLoss",
    "PKSampler",
    "batch_hard_triplets",
    "contrastive_loss",
    "mine_triplets",
    "pairwise_distances",
    "random_triplets",
    "triplet_loss",
]

#: ``mine_triplets`` kinds (pytorch-metric-learning's ``type_of_triplets`` plus ``easy``).
MINING_KINDS = ("all", "hard", "semihard", "easy")

Triplets = tuple[Tensor, Tensor, Tensor]


def _check_embeddings(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        got = (f"{x.dtype} of shape {list(x.shape)}" if isinstance(x, Tensor)
               else type(x).__name__)
        raise InvalidArgumentError(f"{name} must be a float tensor [N, D], got {got}")


def _check_labels(labels: Tensor, n: int) -> None:
    if not isinstance(labels, Tensor) or labels.shape != (n,):
        got = list(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise InvalidArgumentError(f"labels must be a tensor [{n}] (one per embedding), got "
                                   f"{got}")


def pairwise_distances(x: Tensor, y: Tensor | None = None) -> Tensor:
    """Euclidean distances ``[N, M]`` between the rows of ``x [N, D]`` and ``y [M, D]``
    (``y = x`` when None), as ``torch.cdist`` (and so pytorch-metric-learning) computes them."""
    return torch.cdist(x, x if y is None else y, p=2)


# ---------------------------------------------------------------------------------------------
# Losses on given pairs and triplets


def contrastive_loss(emb1: Tensor, emb2: Tensor, same: Tensor, *,
                     margin: float | None = 1.0) -> Tensor:
    """Hadsell et al.'s contrastive loss over pairs ``(emb1[i], emb2[i])``.

    Args:
        emb1, emb2: embeddings ``[N, D]``.
        same: ``[N]`` bool (or 0/1): whether pair ``i`` shows one identity.
        margin: ``m`` of ``max(0, m - d)^2``; ``None`` for the unbounded form (``-d^2`` for
            different pairs), which has no minimum.

    Returns:
        The mean over pairs (a scalar; 0 for no pairs).
    """
    _check_embeddings(emb1, "emb1")
    _check_embeddings(emb2, "emb2")
    if emb1.shape != emb2.shape:
        raise InvalidArgumentError(f"emb1 and emb2 must have the same shape, got "
                                   f"{list(emb1.shape)} and {list(emb2.shape)}")
    _check_labels(same, emb1.shape[0])
    if margin is not None and not margin > 0:
        raise InvalidArgumentError(f"margin must be > 0 (or None: unbounded), got {margin}")
    same = same.bool()
    if same.numel() == 0:
        return emb1.sum() * 0.0
    sq = (emb1 - emb2).pow(2).sum(1)
    if margin is None:
        return torch.where(same, sq, -sq).mean()
    # sqrt of 0 has an infinite gradient; positives use d^2 directly, negatives a clamped d.
    d = sq.clamp_min(1e-12).sqrt()
    return torch.where(same, sq, F.relu(margin - d).pow(2)).mean()


def triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *, margin: float = 0.2,
                 squared: bool = True) -> Tensor:
    """FaceNet's triplet loss ``max(0, d(a, p) - d(a, n) + m)``, mean over triplets.

    Args:
        anchor, positive, negative: embeddings ``[T, D]``.
        margin: ``m`` (FaceNet: 0.2 on L2-normalised embeddings).
        squared: ``d`` is the squared Euclidean distance (FaceNet) or the plain one.

    Returns:
        A scalar (0 for no triplets, still attached to the graph).
    """
    for name, t in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        _check_embeddings(t, name)
    if not (anchor.shape == positive.shape == negative.shape):
        raise InvalidArgumentError(
            f"anchor, positive and negative must have one shape, got {list(anchor.shape)}, "
            f"{list(positive.shape)} and {list(negative.shape)}")
    if not margin >= 0:
        raise InvalidArgumentError(f"margin must be >= 0, got {margin}")
    if anchor.shape[0] == 0:
        return (anchor.sum() + positive.sum() + negative.sum()) * 0.0
    d_ap = (anchor - positive).pow(2).sum(1)
    d_an = (anchor - negative).pow(2).sum(1)
    if not squared:
        d_ap, d_an = d_ap.clamp_min(1e-12).sqrt(), d_an.clamp_min(1e-12).sqrt()
    return F.relu(d_ap - d_an + margin).mean()


# ---------------------------------------------------------------------------------------------
# Mining


def _chunk_rows(n: int, budget: int) -> int:
    """Anchors per chunk so that a ``chunk x n x n`` mask stays within ``budget`` elements."""
    return max(1, budget // max(n * n, 1))


@torch.no_grad()
def mine_triplets(embeddings: Tensor, labels: Tensor, *, margin: float = 0.2,
                  kind: str = "all", max_elements: int = 1 << 24) -> Triplets:
    """The triplets of a batch selected by their margin (see the module docstring).

    Args:
        embeddings: ``[N, D]`` (the reference normalises them; pass normalised ones to compare).
        labels: ``[N]`` identities.
        margin: ``m``.
        kind: ``all`` | ``hard`` | ``semihard`` | ``easy``.
        max_elements: the largest ``chunk x N x N`` mask built at once.

    Returns:
        ``(anchor_idx, positive_idx, negative_idx)``, int64 ``[T]`` each, ordered by anchor,
        then positive, then negative (as the reference).
    """
    _check_embeddings(embeddings, "embeddings")
    n = embeddings.shape[0]
    _check_labels(labels, n)
    if kind not in MINING_KINDS:
        raise InvalidArgumentError(f"kind must be one of {', '.join(MINING_KINDS)}, got "
                                   f"{kind!r}")
    dist = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    pos = same.clone()
    pos.fill_diagonal_(False)
    neg = ~same
    out: list[list[Tensor]] = [[], [], []]
    step = _chunk_rows(n, max_elements)
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        valid = pos[rows, :, None] & neg[rows, None, :]  # (c, N, N): a, p, n
        margins = dist[rows, None, :] - dist[rows, :, None]  # d(a, n) - d(a, p)
        if kind == "easy":
            keep = margins > margin
        else:
            keep = margins <= margin
            if kind == "hard":
                keep &= margins <= 0
            elif kind == "semihard":
                keep &= margins > 0
        a, p, q = torch.where(valid & keep)
        out[0].append(a + start)
        out[1].append(p)
        out[2].append(q)
    return tuple(torch.cat(parts) for parts in out)  # type: ignore[return-value]


@torch.no_grad()
def batch_hard_triplets(embeddings: Tensor, labels: Tensor) -> Triplets:
    """Hermans et al.'s batch-hard triplets: for every anchor with a positive and a negative,
    its farthest positive and its closest negative (unsquared Euclidean distances; ties go to
    the lowest index)."""
    _check_embeddings(embeddings, "embeddings")
    _check_labels(labels, embeddings.shape[0])
    dist = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    pos = same.clone()
    pos.fill_diagonal_(False)
    neg = ~same
    anchors = torch.where(pos.any(1) & neg.any(1))[0]
    d = dist[anchors]
    hardest_pos = d.masked_fill(~pos[anchors], -math.inf).argmax(1)
    hardest_neg = d.masked_fill(~neg[anchors], math.inf).argmin(1)
    return anchors, hardest_pos, hardest_neg


@torch.no_grad()
def random_triplets(labels: Tensor, num: int, *,
                    generator: torch.Generator | None = None) -> Triplets:
    """``num`` valid triplets drawn uniformly at random (no mining: the baseline)."""
    n = labels.shape[0]
    same = labels[:, None] == labels[None, :]
    pos = same.clone()
    pos.fill_diagonal_(False)
    neg = ~same
    anchors = torch.where(pos.any(1) & neg.any(1))[0]
    if anchors.numel() == 0 or num <= 0:
        empty = torch.zeros(0, dtype=torch.long, device=labels.device)
        return empty, empty, empty
    a = anchors[torch.randint(anchors.numel(), (num,), generator=generator,
                              device=labels.device)]
    # One uniform draw among each anchor's positives / negatives: argmax of masked noise.
    noise_p = torch.rand(num, n, generator=generator, device=labels.device)
    noise_n = torch.rand(num, n, generator=generator, device=labels.device)
    p = noise_p.masked_fill(~pos[a], -1.0).argmax(1)
    q = noise_n.masked_fill(~neg[a], -1.0).argmax(1)
    return a, p, q


# ---------------------------------------------------------------------------------------------
# Online losses: mine inside each batch, then apply the loss


#: ``OnlineTripletLoss`` mining strategies.
ONLINE_MINING = ("semihard", "hard", "all", "easy", "batch_hard", "random")


class OnlineTripletLoss(nn.Module):
    """Triplet loss over the triplets mined inside each batch of ``(embeddings, labels)``.

    Args:
        margin: ``m`` of both the miner and the loss.
        mining: ``semihard`` | ``hard`` | ``all`` | ``easy`` (:func:`mine_triplets`),
            ``batch_hard`` (:func:`batch_hard_triplets`) or ``random`` (as many random valid
            triplets as the batch has images).
        squared: squared distances in the loss (FaceNet). The default ``False`` keeps the loss
            on the miner's distances, so a mined "violating" triplet is one with a loss > 0.
    """

    def __init__(self, margin: float = 0.2, *, mining: str = "semihard",
                 squared: bool = False) -> None:
        super().__init__()
        if mining not in ONLINE_MINING:
            raise InvalidArgumentError(f"mining must be one of {', '.join(ONLINE_MINING)}, "
                                       f"got {mining!r}")
        self.margin, self.mining, self.squared = margin, mining, squared
        self.last_num_triplets = 0

    def mine(self, embeddings: Tensor, labels: Tensor) -> Triplets:
        if self.mining == "batch_hard":
            return batch_hard_triplets(embeddings.detach(), labels)
        if self.mining == "random":
            return random_triplets(labels, embeddings.shape[0])
        return mine_triplets(embeddings.detach(), labels, margin=self.margin, kind=self.mining)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        a, p, n = self.mine(embeddings, labels)
        self.last_num_triplets = int(a.numel())
        if a.numel() == 0:
            return embeddings.sum() * 0.0
        # triplet_loss(embeddings[a], embeddings[p], embeddings[n]) read off the N x N distance
        # matrix: a batch mines up to ~N^3 / 10 triplets, and gathering T x D rows (and
        # scattering their gradients) costs D times more than gathering T distances.
        sq = (embeddings[:, None, :] - embeddings[None, :, :]).pow(2).sum(-1)  # (N, N)
        d = sq if self.squared else sq.clamp_min(1e-12).sqrt()
        return F.relu(d[a, p] - d[a, n] + self.margin).mean()


class OnlineContrastiveLoss(nn.Module):
    """Contrastive loss over every pair ``i < j`` of a batch of ``(embeddings, labels)``.

    ``balance=True`` averages the positive and the negative pairs separately and adds the two
    means (a P x K batch has far more negative pairs than positive ones); ``False`` is the plain
    mean over all pairs.
    """

    def __init__(self, margin: float | None = 1.0, *, balance: bool = True) -> None:
        super().__init__()
        self.margin, self.balance = margin, balance

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        _check_embeddings(embeddings, "embeddings")
        _check_labels(labels, embeddings.shape[0])
        i, j = torch.triu_indices(len(labels), len(labels), 1, device=labels.device)
        same = labels[i] == labels[j]
        if not self.balance:
            return contrastive_loss(embeddings[i], embeddings[j], same, margin=self.margin)
        total = embeddings.sum() * 0.0
        for mask in (same, ~same):
            if mask.any():
                total = total + contrastive_loss(embeddings[i[mask]], embeddings[j[mask]],
                                                 same[mask], margin=self.margin)
        return total


# ---------------------------------------------------------------------------------------------
# P x K batches


class PKSampler(Sampler[list[int]]):
    """A batch sampler: each batch is ``P`` distinct identities x ``K`` images of each.

    Identities with fewer than ``K`` images are sampled with replacement; identities are drawn
    without replacement within a batch. The order depends only on ``seed`` and the epoch
    (:meth:`set_epoch`).

    Args:
        labels: ``[N]`` identity of each item.
        p: identities per batch (at most the number of identities).
        k: images per identity.
        num_batches: batches per epoch (default: ``N // (P * K)``, at least 1).
        seed: the sampling seed.
    """

    def __init__(self, labels: Tensor | list[int], p: int, k: int, *,
                 num_batches: int | None = None, seed: int = 0) -> None:
        labels = torch.as_tensor(labels)
        self.identities = torch.unique(labels)
        if not isinstance(p, int) or not 1 <= p <= len(self.identities):
            raise InvalidArgumentError(f"p must be 1..{len(self.identities)} (the number of "
                                       f"identities), got {p!r}")
        if not isinstance(k, int) or k < 1:
            raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
        self.members = [torch.where(labels == c)[0] for c in self.identities]
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.num_batches = num_batches or max(1, len(labels) // (p * k))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        for _ in range(self.num_batches):
            batch = []
            for c in torch.randperm(len(self.identities), generator=g)[:self.p].tolist():
                idx = self.members[c]
                if len(idx) >= self.k:
                    pick = idx[torch.randperm(len(idx), generator=g)[:self.k]]
                else:
                    pick = idx[torch.randint(len(idx), (self.k,), generator=g)]
                batch.extend(pick.tolist())
            yield batch
