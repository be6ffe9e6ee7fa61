"""Inverted dropout against torch.nn.Dropout: same mask under the same seed, scaling, statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modernvision import layers


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_equals_torch_dropout_under_the_same_seed(p: float) -> None:
    x = torch.randn(4, 8, 5)
    ours, theirs = layers.Dropout(p), nn.Dropout(p)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    torch.manual_seed(123)
    ya = ours(xa)
    torch.manual_seed(123)
    yb = theirs(xb)
    torch.testing.assert_close(ya, yb, atol=1e-6, rtol=0)
    upstream = torch.randn_like(x)
    (ya * upstream).sum().backward()
    (yb * upstream).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-6, rtol=0)


def test_kept_entries_are_scaled_and_dropped_are_zero_with_a_given_mask() -> None:
    x = torch.arange(1.0, 9.0).reshape(2, 4).requires_grad_(True)
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0]])
    y = layers.dropout(x, p=0.25, mask=mask)
    expected = x.detach() * mask / 0.75
    torch.testing.assert_close(y, expected)
    y.sum().backward()
    torch.testing.assert_close(x.grad, mask / 0.75)


def test_eval_mode_is_identity() -> None:
    x = torch.randn(3, 7)
    module = layers.Dropout(0.9).eval()
    assert module(x) is x
    assert layers.dropout(x, 0.5, training=False) is x


def test_statistics_in_training() -> None:
    p = 0.3
    x = torch.full((200_000,), 2.0)
    y = layers.Dropout(p)(x)
    kept = y != 0
    assert torch.allclose(y[kept], torch.tensor(2.0 / (1 - p)))
    # Keep rate 0.7 +- 5 standard errors (se = sqrt(p (1 - p) / n) ~ 0.001).
    assert abs(kept.float().mean().item() - (1 - p)) < 5e-3
    assert abs(y.mean().item() - 2.0) < 0.015  # inverted scaling keeps the expectation


def test_edge_probabilities_and_inplace() -> None:
    x = torch.randn(10)
    torch.testing.assert_close(layers.Dropout(0.0)(x), x)
    torch.testing.assert_close(layers.Dropout(1.0)(x), torch.zeros(10))
    torch.testing.assert_close(nn.Dropout(1.0)(x), torch.zeros(10))
    y = x.clone()
    torch.manual_seed(5)
    out = layers.Dropout(0.5, inplace=True)(y)
    assert out.data_ptr() == y.data_ptr()
    torch.manual_seed(5)
    torch.testing.assert_close(out, nn.Dropout(0.5)(x))


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_probability_is_validated(p: float) -> None:
    with pytest.raises(ValueError, match="probability p"):
        layers.Dropout(p)
    with pytest.raises(ValueError, match="probability p"):
        layers.dropout(torch.ones(2), p)
