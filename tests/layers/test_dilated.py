"""Dilated convolution by zero insertion: equals F.conv2d(dilation=...), gradcheck, the
padding-tap fraction and the receptive field that summary reports."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modernvision import layers


def test_zero_insertion() -> None:
    w = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    big = layers.dilate_kernel(w, 2)
    assert big.shape == (1, 1, 5, 5)
    assert big[0, 0, 0].tolist() == [1, 0, 2, 0, 3] and big[0, 0, 1].abs().sum() == 0


def test_equals_torch() -> None:
    g = torch.Generator().manual_seed(0)
    for k, d, p, s in itertools.product([1, 2, 3], [1, 2, 3, 6], [0, 1, 6], [1, 2]):
        x = torch.randn(2, 3, 13, 11, generator=g)
        w = torch.randn(4, 3, k, k, generator=g)
        b = torch.randn(4, generator=g)
        try:
            ref = F.conv2d(x, w, b, s, p, d)
        except RuntimeError:
            continue
        torch.testing.assert_close(
            layers.dilated_conv2d(x, w, b, dilation=d, padding=p, stride=s), ref,
            atol=1e-5, rtol=1e-5)


def test_gradcheck_and_module() -> None:
    x = torch.randn(1, 2, 7, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w: layers.dilated_conv2d(x, w, dilation=2, padding=2), (x, w))
    m = layers.DilatedConv2d(2, 3, dilation=4)
    assert m(torch.randn(1, 2, 9, 9)).shape == (1, 3, 9, 9)


def test_padding_tap_fraction() -> None:
    # by hand: 5 positions, rate 3, taps at -3, 0, +3 -> 2, 2, 1, 2, 2 of 3 inside (9 / 15);
    # a width of 1 keeps only the centre column (1 / 3)
    assert layers.padding_tap_fraction(5, 1, dilation=3) == pytest.approx(1 - 9 / 15 / 3)
    assert layers.padding_tap_fraction(8, dilation=24) == pytest.approx(1 - 1 / 9)
    assert layers.padding_tap_fraction(64, dilation=1) == pytest.approx(1 - (1 - 2 / 192) ** 2)
    assert layers.padding_tap_fraction(33, dilation=24) > layers.padding_tap_fraction(
        33, dilation=6)


def test_receptive_field_growth_in_summary() -> None:
    from modernvision.analysis import summarize

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = layers.DilatedConv2d(1, 1, dilation=1)
            self.b = layers.DilatedConv2d(1, 1, dilation=2)
            self.c = layers.DilatedConv2d(1, 1, dilation=4)

        def forward(self, x):
            return self.c(self.b(self.a(x)))

    rows = {r.name: r for r in summarize(Stack(), "1x32x32").rows}
    assert [rows[n].receptive_field for n in "abc"] == [3, 7, 15]  # 1 + 2 * (1 + 2 + 4)
