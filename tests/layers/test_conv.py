"""Conv-norm-act and factorised convolutions (Inception v3): shapes, structure, receptive fields."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modernvision import layers


def _conv_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


def _linearise(module: nn.Module) -> nn.Module:
    """Replace every activation of a factorised block by the identity (conv stack only)."""
    for block in module:
        if hasattr(block, "act"):
            block.act = nn.Identity()
    return module


def _impulse_support(module: nn.Module, size: int = 11) -> torch.Tensor:
    """Where a unit impulse at the centre changes the output (one in, one out channel)."""
    impulse = torch.zeros(1, 1, size, size)
    impulse[0, 0, size // 2, size // 2] = 1.0
    with torch.no_grad():
        response = module(impulse) - module(torch.zeros_like(impulse))  # remove the biases
    return response[0, 0].abs() > 1e-7


def test_conv_norm_act_structure_and_reference() -> None:
    block = layers.ConvNormAct(3, 8, 3, stride=2)
    assert [name for name, _ in block.named_children()] == ["conv", "bn", "act"]
    assert block.conv.bias is None  # a norm follows: the conv's bias would be redundant
    assert block.conv.padding == (1, 1)
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        block.bn.weight.uniform_(0.5, 1.5)
        block.bn.bias.uniform_(-0.5, 0.5)
    expected = F.relu(F.batch_norm(F.conv2d(x, block.conv.weight, stride=2, padding=1), None,
                                   None, block.bn.weight, block.bn.bias, training=True))
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=0)
    assert block(x).shape == (2, 8, 5, 5)
    wrapper = nn.Sequential()
    wrapper.add_module("block", block)
    assert {"block.conv.weight", "block.bn.weight", "block.bn.running_mean"} <= set(
        wrapper.state_dict())


def test_conv_norm_act_options() -> None:
    plain = layers.ConvNormAct(4, 6, 5, norm_layer=None, act_layer=None)
    assert [name for name, _ in plain.named_children()] == ["conv"]
    assert plain.conv.bias is not None and plain.conv.padding == (2, 2)
    dilated = layers.ConvNormAct(4, 6, 3, dilation=2)
    assert dilated.conv.padding == (2, 2)
    assert dilated(torch.randn(1, 4, 10, 10)).shape == (1, 6, 10, 10)
    depthwise = layers.ConvNormAct(6, 6, 3, groups=6, act_layer=nn.GELU)
    assert depthwise.conv.weight.shape == (6, 1, 3, 3) and isinstance(depthwise.act, nn.GELU)
    rect = layers.ConvNormAct(2, 3, (1, 7))
    assert rect.conv.padding == (0, 3)
    # Our hand-written BatchNorm2d plugs in as the norm layer.
    ours = layers.ConvNormAct(3, 4, 3, norm_layer=layers.BatchNorm2d)
    assert isinstance(ours.bn, layers.BatchNorm2d) and ours(torch.randn(2, 3, 6, 6)).shape == (
        2, 4, 6, 6)


@pytest.mark.parametrize("make,kernel", [
    (lambda: layers.Factorized5x5(1, 1, norm_layer=None), 5),
    (lambda: layers.FactorizedNxN(1, 1, 3, norm_layer=None), 3),
    (lambda: layers.FactorizedNxN(1, 1, 7, norm_layer=None), 7),
])
def test_factorised_receptive_field_by_impulse_response(make, kernel: int) -> None:
    block = _linearise(make())
    support = _impulse_support(block)
    rows, cols = support.nonzero(as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (kernel, kernel)
    assert support.sum() == kernel * kernel  # generic weights fill the whole square


@pytest.mark.parametrize("make,kernel", [
    (lambda: layers.Factorized5x5(2, 3, mid_channels=4, norm_layer=None), 5),
    (lambda: layers.FactorizedNxN(2, 3, 5, mid_channels=4, norm_layer=None), 5),
])
def test_factorised_stack_equals_one_big_convolution_inside(make, kernel: int) -> None:
    """Without activations the stack is one k x k conv: build it from impulse responses."""
    block = _linearise(make())
    size, c = 2 * kernel + 1, kernel  # an impulse at the centre sees no border effects
    effective = torch.zeros(3, 2, kernel, kernel)
    with torch.no_grad():
        offset = block(torch.zeros(1, 2, size, size))[0, :, c, c]
        for i in range(2):
            impulse = torch.zeros(1, 2, size, size)
            impulse[0, i, c, c] = 1.0
            response = block(impulse)[0] - block(torch.zeros_like(impulse))[0]
            # Cross-correlation: the response to an impulse is the kernel flipped.
            window = response[:, c - kernel // 2: c + kernel // 2 + 1,
                              c - kernel // 2: c + kernel // 2 + 1]
            effective[:, i] = window.flip(-1, -2)
        x = torch.randn(1, 2, 12, 12)
        got = block(x)[..., 4:-4, 4:-4]  # interior: the intermediate zero padding is not seen
        expected = F.conv2d(x, effective, offset, padding=kernel // 2)[..., 4:-4, 4:-4]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_factorised_parameter_savings() -> None:
    # Per (in, out) channel pair: 3x3 + 3x3 = 18 weights vs 25; 1x3 + 3x1 = 6 vs 9; 2n vs n^2.
    assert _conv_weights(layers.Factorized5x5(1, 1, norm_layer=None)) == 18
    assert _conv_weights(nn.Conv2d(1, 1, 5)) == 25
    assert _conv_weights(layers.FactorizedNxN(1, 1, 3, norm_layer=None)) == 6
    assert _conv_weights(nn.Conv2d(1, 1, 3)) == 9
    assert _conv_weights(layers.FactorizedNxN(1, 1, 7, norm_layer=None)) == 14
    c = 16  # with C channels throughout: 18 C^2 vs 25 C^2 (28% fewer), 6 C^2 vs 9 C^2 (33%)
    assert _conv_weights(layers.Factorized5x5(c, c)) == 18 * c * c
    assert _conv_weights(layers.FactorizedNxN(c, c, 3)) == 6 * c * c


@pytest.mark.parametrize("block", [
    layers.Factorized5x5(3, 8),
    layers.Factorized5x5(3, 8, mid_channels=5),
    layers.FactorizedNxN(3, 8, 7),
    layers.FactorizedNxN(3, 8, 3, mid_channels=4),
])
def test_factorised_shapes_and_gradients(block: nn.Module) -> None:
    x = torch.randn(2, 3, 9, 11, requires_grad=True)
    y = block(x)
    assert y.shape == (2, 8, 9, 11)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())
    assert isinstance(block[0].bn, nn.BatchNorm2d) and block[0].conv.bias is None
