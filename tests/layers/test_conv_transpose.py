"""Transposed convolution as a scatter: equals F.conv_transpose2d, gradcheck, the worked
example, bilinear initialisation and the checkerboard counts."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from modernvision import layers
from modernvision._errors import InvalidArgumentError


def _scatter_reference(x: torch.Tensor, w: torch.Tensor, s: int) -> torch.Tensor:
    """The definition, one input pixel at a time (one channel, no padding)."""
    h, wd = x.shape
    k = w.shape[0]
    out = torch.zeros((h - 1) * s + k, (wd - 1) * s + k, dtype=x.dtype)
    for i in range(h):
        for j in range(wd):
            out[i * s: i * s + k, j * s: j * s + k] += x[i, j] * w
    return out


def test_ones_kernel_3x3_stride2_example() -> None:
    x = torch.ones(1, 1, 2, 2)
    out = layers.conv_transpose2d(x, torch.ones(1, 1, 3, 3), stride=2)[0, 0]
    row = torch.tensor([1.0, 1, 2, 1, 1])
    assert torch.equal(out, row[:, None] * row[None, :])  # the overlaps add: 2s and a 4
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    expected = _scatter_reference(x, torch.ones(3, 3), 2)
    assert torch.equal(layers.conv_transpose2d(x[None, None], torch.ones(1, 1, 3, 3),
                                               stride=2)[0, 0], expected)
    assert expected[2, 2] == 10  # all four pixels land on the centre


def test_equals_torch_over_geometries() -> None:
    g = torch.Generator().manual_seed(0)
    checked = 0
    for k, s, p, op, d, groups in itertools.product([1, 2, 3, 4], [1, 2, 3], [0, 1, 2],
                                                    [0, 1], [1, 2], [1, 2]):
        if op >= max(s, d):
            continue
        x = torch.randn(2, 4, 5, 6, generator=g)
        w = torch.randn(4, 6 // groups, k, k, generator=g)
        b = torch.randn(6, generator=g)
        try:
            ref = F.conv_transpose2d(x, w, b, s, p, op, groups, d)
        except RuntimeError:
            continue
        ours = layers.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op,
                                       groups=groups, dilation=d)
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5,
                                   msg=f"k={k} s={s} p={p} op={op} d={d} g={groups}")
        checked += 1
    assert checked > 150


def test_gradcheck() -> None:
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: layers.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        (x, w, b))


def test_module_matches_torch_module() -> None:
    torch.manual_seed(0)
    ours = layers.ConvTranspose2d(3, 5, 4, 2, 1)
    ref = torch.nn.ConvTranspose2d(3, 5, 4, 2, 1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 7, 5)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(InvalidArgumentError, match="output_padding"):
        layers.conv_transpose2d(x, ours.weight, stride=2, output_padding=2)


def test_bilinear_init_is_bilinear_interpolation_inside() -> None:
    x = torch.randn(1, 3, 6, 7)
    for factor in (2, 4):
        up = layers.ConvTranspose2d(3, 3, 2 * factor, factor, factor // 2, init="bilinear",
                                    bias=False)
        ours = up(x)
        ref = F.interpolate(x, scale_factor=factor, mode="bilinear")
        assert ours.shape == ref.shape
        m = factor  # away from the border, where the transposed conv sees zeros
        torch.testing.assert_close(ours[..., m:-m, m:-m], ref[..., m:-m, m:-m],
                                   atol=1e-5, rtol=1e-5)
    w = layers.bilinear_kernel(2, 2, 3)
    assert torch.equal(w[0, 1], torch.zeros(3, 3)) and w[0, 0, 1, 1] == 1


def test_checkerboard_counts() -> None:
    k3 = layers.overlap_counts(6, kernel_size=3, stride=2)
    inner = k3[2:-2, 2:-2]
    assert set(inner.unique().tolist()) == {1.0, 2.0, 4.0}  # uneven: the checkerboard
    k4 = layers.overlap_counts(6, kernel_size=4, stride=2, padding=1)
    assert k4.shape == (12, 12) and set(k4[1:-1, 1:-1].unique().tolist()) == {4.0}
    rc = layers.overlap_counts(6, kernel_size=3, stride=2, resize_conv=True)
    assert rc.shape == (12, 12) and set(rc[1:-1, 1:-1].unique().tolist()) == {9.0}


def test_plot(tmp_path) -> None:
    from modernvision.viz.plots import plot_overlap_counts

    assert plot_overlap_counts(tmp_path / "c.png").stat().st_size > 1000
