"""A Siamese network: one embedding network applied to both images of a pair.

"Signature Verification using a Siamese Time Delay Neural Network" (Bromley et al., NIPS 1993)
and, for images, "Learning a Similarity Metric Discriminatively, with Application to Face
Verification" (Chopra, Hadsell and LeCun, CVPR 2005): two branches with *shared weights* map
``x1`` and ``x2`` to ``f(x1)``, ``f(x2)``; the distance ``||f(x1) - f(x2)||`` says whether the two
show one identity. The weights are shared by construction: there is one network, called twice
(here on the concatenated batch, so batch-norm statistics see both branches at once).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError


class SiameseNetwork(nn.Module):
    """Pairs in, embeddings out: ``forward(x1, x2) -> (f(x1), f(x2))``.

    Args:
        embedder: any network mapping images ``(B, C, H, W)`` to embeddings ``(B, D)``
            (e.g. :class:`~modernvision.models.metric.embedding.EmbeddingNet`).
    """

    def __init__(self, embedder: nn.Module) -> None:
        super().__init__()
        self.embedder = embedder

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        if x1.shape != x2.shape:
            raise InvalidArgumentError(f"x1 and x2 must be pairs of one shape, got "
                                       f"{list(x1.shape)} and {list(x2.shape)}")
        both = self.embedder(torch.cat([x1, x2]))
        return both[: len(x1)], both[len(x1):]

    def distance(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Euclidean distances ``[B]`` between the pairs' embeddings."""
        e1, e2 = self(x1, x2)
        return (e1 - e2).pow(2).sum(1).sqrt()

