"""The embedding net and the Siamese wrapper."""

from __future__ import annotations

import pytest
import torch

from modernvision._errors import InvalidArgumentError
from modernvision.models import create, list_models
from modernvision.models.metric.embedding import EmbeddingNet
from modernvision.models.metric.siamese import SiameseNetwork


def test_embedding_net_is_registered_and_unit_length():
    assert "embedding_net" in list_models(task="embedding")
    torch.manual_seed(0)
    net = create("embedding_net", embedding_dim=16)
    x = torch.rand(5, 1, 28, 28)
    emb = net(x)
    assert emb.shape == (5, 16)
    assert torch.allclose(emb.norm(dim=1), torch.ones(5), atol=1e-5)
    emb.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_embedding_net_any_backbone():
    net = create("embedding_net", backbone="resnet18", embedding_dim=8, hidden=None,
                 in_channels=1, small_input=True)
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 8)


def test_embedding_net_needs_a_headless_backbone():
    with pytest.raises(InvalidArgumentError, match="headless"):
        EmbeddingNet(create("compact_cnn", num_classes=10))
    with pytest.raises(TypeError):
        create("embedding_net", no_such_keyword=1)


def test_siamese_shares_weights():
    torch.manual_seed(0)
    embedder = create("embedding_net", embedding_dim=8).eval()
    siamese = SiameseNetwork(embedder)
    x1, x2 = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    e1, e2 = siamese(x1, x2)
    assert torch.allclose(e1, embedder(x1), atol=1e-6) and torch.allclose(e2, embedder(x2),
                                                                          atol=1e-6)
    assert torch.allclose(siamese.distance(x1, x1), torch.zeros(3), atol=1e-3)
    assert sum(p.numel() for p in siamese.parameters()) == sum(
        p.numel() for p in embedder.parameters())
