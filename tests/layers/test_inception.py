"""Inception modules (GoogLeNet Fig. 2) against torchvision's block and a hand-written forward."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.googlenet import Inception as TorchvisionInception

from modernvision.layers.inception import InceptionModule, NaiveInceptionModule


def _randomize_bn(module: nn.Module) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)


def test_reduced_module_matches_torchvision_block():
    widths = (64, 96, 128, 16, 32, 32)  # Table 1, inception (3a)
    ref = TorchvisionInception(192, *widths).eval()
    _randomize_bn(ref)
    ours = InceptionModule(192, *widths, kernel_5x5=3,  # torchvision's "5x5" is 3x3 (#906)
                           norm_layer=partial(nn.BatchNorm2d, eps=1e-3)).eval()
    ours.load_state_dict(ref.state_dict())  # same parameter names
    x = torch.randn(2, 192, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    assert ours.out_channels == 256


def test_reduced_module_paper_shapes_and_cost():
    block = InceptionModule(192, 64, 96, 128, 16, 32, 32)  # no norm: the paper
    assert block.branch3[1].conv.kernel_size == (5, 5)
    assert all(m.bias is not None for m in block.modules() if isinstance(m, nn.Conv2d))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    assert block(torch.randn(1, 192, 28, 28)).shape == (1, 256, 28, 28)
    # Table 1, (3a): 159K weights (K = 1024).
    weights = sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Conv2d))
    assert abs(weights / 1024 - 159) < 1


def test_naive_module_equals_hand_written_forward():
    block = NaiveInceptionModule(8, 4, 6, 3)
    x = torch.randn(2, 8, 9, 9)
    b1, b2, b3 = (getattr(block, f"branch{i}").conv for i in (1, 2, 3))
    expected = torch.cat([
        F.relu(F.conv2d(x, b1.weight, b1.bias)),
        F.relu(F.conv2d(x, b2.weight, b2.bias, padding=1)),
        F.relu(F.conv2d(x, b3.weight, b3.bias, padding=2)),
        F.max_pool2d(x, 3, stride=1, padding=1),
    ], dim=1)
    torch.testing.assert_close(block(x), expected)
    assert block.out_channels == 4 + 6 + 3 + 8 == expected.shape[1]


@pytest.mark.parametrize("cls", [InceptionModule, NaiveInceptionModule])
def test_every_parameter_gets_a_gradient(cls):
    args = (16, 8, 4, 8, 2, 4, 4) if cls is InceptionModule else (16, 8, 8, 4)
    block = cls(*args)
    block(torch.randn(2, 16, 7, 7)).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
