"""Nearest / bilinear upsampling against F.interpolate, and the 2x2 -> 4x4 worked examples."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modernvision import layers
from modernvision._errors import InvalidArgumentError

X = torch.tensor([[1.0, 2.0], [3.0, 4.0]])[None, None]


def test_nearest_2x2_example() -> None:
    expected = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4.0]])
    out = layers.upsample_nearest(X, scale_factor=2)
    assert torch.equal(out[0, 0], expected)
    assert torch.equal(out, F.interpolate(X, scale_factor=2, mode="nearest"))


def test_bilinear_2x2_example() -> None:
    expected = torch.tensor([[1, 1.25, 1.75, 2], [1.5, 1.75, 2.25, 2.5],
                             [2.5, 2.75, 3.25, 3.5], [3, 3.25, 3.75, 4]])
    out = layers.upsample_bilinear(X, scale_factor=2)
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(out, F.interpolate(X, scale_factor=2, mode="bilinear"))
    corners = layers.upsample_bilinear(X, scale_factor=2, align_corners=True)
    torch.testing.assert_close(corners[0, 0, 0], torch.tensor([1, 4 / 3, 5 / 3, 2]))


@pytest.mark.parametrize("size", [(7, 9), (16, 3), (5, 5), (2, 11)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_equal_interpolate_any_size(size, align_corners) -> None:
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64, requires_grad=True)
    ours = layers.upsample_bilinear(x, size, align_corners=align_corners)
    ref = F.interpolate(x, size, mode="bilinear", align_corners=align_corners)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(layers.upsample_nearest(x, size),
                               F.interpolate(x, size, mode="nearest"))
    g = torch.randn_like(ref)
    (ga,) = torch.autograd.grad((ours * g).sum(), x)
    (gb,) = torch.autograd.grad((ref * g).sum(), x)
    torch.testing.assert_close(ga, gb)


def test_labels_resize_nearest_never_invents_classes() -> None:
    labels = torch.tensor([[1, 3], [3, 1]])
    out = layers.resize_labels(labels, 5)
    assert set(out.unique().tolist()) == {1, 3}
    blurred = layers.upsample_bilinear(labels.float()[None, None], 5)
    assert ((blurred > 1.5) & (blurred < 2.5)).any()  # bilinear makes "class 2"
    with pytest.raises(InvalidArgumentError, match="float"):
        layers.upsample_bilinear(labels[None, None], 4)


def test_module_and_errors() -> None:
    assert layers.Upsample(3, "nearest")(X).shape == (1, 1, 6, 6)
    with pytest.raises(InvalidArgumentError):
        layers.Upsample(2, "bicubic")
    with pytest.raises(InvalidArgumentError):
        layers.upsample_nearest(X)
