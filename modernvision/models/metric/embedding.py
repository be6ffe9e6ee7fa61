"""An embedding network: a headless zoo backbone + a projection + L2 normalisation.

After FaceNet ("FaceNet: A Unified Embedding for Face Recognition and Clustering", Schroff,
Kalenichenko and Philbin, 2015, arXiv:1503.03832, sec. 3): a deep network maps an image to
``f(x)`` on the unit hypersphere (``||f(x)||_2 = 1``), trained so that squared distances between
embeddings mean identity. Departures: any zoo backbone (headless, ``create(name,
num_classes=0)``: its globally pooled features) instead of the paper's Zeiler&Fergus / Inception
nets, and a two-layer MLP projection (``hidden=None``: FaceNet's single linear layer) to
``embedding_dim`` dimensions (FaceNet: 128; 64 here by default for the small grey images).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.registry import create, register_model


class EmbeddingNet(nn.Module):
    """``x -> normalize(projection(backbone(x)))``.

    Args:
        backbone: a headless classifier: ``forward(x) -> (B, backbone.num_features)``.
        embedding_dim: the embedding size.
        hidden: width of the projection's hidden layer (None: one linear layer).
    """

    def __init__(self, backbone: nn.Module, *, embedding_dim: int = 64,
                 hidden: int | None = 256) -> None:
        super().__init__()
        if not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise InvalidArgumentError(f"embedding_dim must be a positive integer, got "
                                       f"{embedding_dim!r}")
        features = getattr(backbone, "num_features", None)
        if getattr(backbone, "num_classes", None) != 0 or not isinstance(features, int):
            raise InvalidArgumentError(
                "backbone must be headless (create(name, num_classes=0)), with num_features")
        self.backbone = backbone
        self.embedding_dim = embedding_dim
        if hidden is None:
            self.projection: nn.Module = nn.Linear(features, embedding_dim)
        else:
            self.projection = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(inplace=True),
                                            nn.Linear(hidden, embedding_dim))

    def project(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> unnormalised embeddings ``(B, embedding_dim)``."""
        return self.projection(self.backbone(x))

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> unit-length embeddings ``(B, embedding_dim)``."""
        return F.normalize(self.project(x).float(), dim=1)


@register_model(task="embedding")
def embedding_net(*, backbone: str = "compact_cnn", embedding_dim: int = 64,
                  hidden: int | None = 256, **backbone_kwargs) -> EmbeddingNet:
    """A zoo backbone (``backbone``, headless; ``backbone_kwargs`` go to its builder) with a
    projection to ``embedding_dim`` and L2 normalisation."""
    return EmbeddingNet(create(backbone, num_classes=0, **backbone_kwargs),
                        embedding_dim=embedding_dim, hidden=hidden)
