"""Hand-written pooling against torch.nn.functional: forward and backward over many settings."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modernvision import layers

SIZES = [(7, 9), (8, 8), (5, 6)]
GEOMETRIES = [  # kernel, stride, padding
    (2, None, 0), (3, 2, 1), (3, 1, 1), (3, 2, 0), ((3, 2), (2, 1), (1, 0)), (4, 3, 2), (1, 1, 0),
]


def _compare(ours, theirs, x: torch.Tensor, label: str) -> None:
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ya, yb = ours(xa), theirs(xb)
    assert ya.shape == yb.shape, label
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=0, msg=label)
    upstream = torch.randn_like(yb)
    (ya * upstream).sum().backward()
    (yb * upstream).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=0, msg=label)


def test_max_pool_equals_torch() -> None:
    checked = 0
    for (h, w), (k, s, p), ceil, d in itertools.product(SIZES, GEOMETRIES, [False, True], [1, 2]):
        x = torch.randn(2, 3, h, w)
        label = f"size={(h, w)} k={k} s={s} p={p} ceil={ceil} dilation={d}"
        try:
            expected = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
        except RuntimeError:
            with pytest.raises(ValueError):  # torch refuses: so do we, with a clear message
                layers.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
            continue
        assert expected.numel() > 0
        _compare(lambda t: layers.max_pool2d(t, k, s, p, d, ceil),  # noqa: B023
                 lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode=ceil), x, label)  # noqa: B023
        checked += 1
    assert checked > 60


def test_avg_pool_equals_torch() -> None:
    checked = 0
    for (h, w), (k, s, p), ceil, include in itertools.product(SIZES, GEOMETRIES, [False, True],
                                                              [True, False]):
        x = torch.randn(2, 3, h, w)
        label = f"size={(h, w)} k={k} s={s} p={p} ceil={ceil} count_include_pad={include}"
        _compare(lambda t: layers.avg_pool2d(t, k, s, p, ceil, include),  # noqa: B023
                 lambda t: F.avg_pool2d(t, k, s, p, ceil, include), x, label)  # noqa: B023
        checked += 1
    x = torch.randn(2, 3, 7, 7)
    _compare(lambda t: layers.avg_pool2d(t, 3, 2, 1, divisor_override=4),
             lambda t: F.avg_pool2d(t, 3, 2, 1, divisor_override=4), x, "divisor_override")
    assert checked == len(SIZES) * len(GEOMETRIES) * 4


def test_modules_and_unbatched_input_equal_torch() -> None:
    x = torch.randn(3, 9, 8)  # (C, H, W)
    _compare(layers.MaxPool2d(3, 2, 1, ceil_mode=True), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
             x, "MaxPool2d")
    _compare(layers.AvgPool2d(3, 2, 1, count_include_pad=False),
             nn.AvgPool2d(3, 2, 1, count_include_pad=False), x, "AvgPool2d")


def test_gradcheck() -> None:
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layers.avg_pool2d(t, 3, 2, 1, True, False), (x,))
    assert torch.autograd.gradcheck(lambda t: layers.max_pool2d(t, 3, 2, 1, 1, True), (x,))


@pytest.mark.parametrize("flatten", [False, True])
def test_global_pools_equal_adaptive_pooling(flatten: bool) -> None:
    x = torch.randn(2, 5, 6, 7)

    def reference(pool):
        return lambda t: pool(t, 1).flatten(1) if flatten else pool(t, 1)

    _compare(layers.GlobalAvgPool2d(flatten), reference(F.adaptive_avg_pool2d), x, "avg")
    _compare(layers.GlobalMaxPool2d(flatten), reference(F.adaptive_max_pool2d), x, "max")


def test_max_pool_hand_computed() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert layers.max_pool2d(x, 2).flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
    # 3x3 stride 2 ceil_mode on 4x4: windows start at 0 and 2 -> the second is clipped.
    assert layers.max_pool2d(x, 3, 2, ceil_mode=True).flatten().tolist() == [10.0, 11.0,
                                                                              14.0, 15.0]
    avg = layers.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False)
    assert avg[0, 0, 0, 0].item() == pytest.approx((0 + 1 + 4 + 5) / 4)


def test_pooling_errors() -> None:
    with pytest.raises(ValueError, match="padding"):
        layers.max_pool2d(torch.randn(1, 1, 5, 5), 2, padding=2)
    with pytest.raises(ValueError, match="too small"):
        layers.avg_pool2d(torch.randn(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        layers.max_pool2d(torch.randn(4, 4), 2)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        layers.global_avg_pool2d(torch.randn(2, 4, 4))
