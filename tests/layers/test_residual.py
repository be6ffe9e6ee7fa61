"""Residual blocks against torchvision's blocks and hand-computed shortcuts."""

import pytest
import torch
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual as TVInvertedResidual
from torchvision.models.resnet import Bottleneck as TVBottleneck

from modernvision.layers.residual import (
    BasicBlock,
    Bottleneck,
    InvertedResidual,
    ZeroPadShortcut,
    make_shortcut,
)


def test_option_a_zero_pads_and_subsamples():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    y = ZeroPadShortcut(2, 5, stride=2)(x)
    assert y.shape == (1, 5, 2, 2)
    assert torch.equal(y[:, :2], x[:, :, ::2, ::2])
    assert torch.equal(y[:, 2:], torch.zeros(1, 3, 2, 2))
    assert sum(p.numel() for p in ZeroPadShortcut(2, 5, 2).parameters()) == 0
    with pytest.raises(ValueError, match="option A"):
        ZeroPadShortcut(8, 4, 1)


def test_shortcut_kinds():
    assert make_shortcut("A", 64, 64, 1) is None
    assert make_shortcut("B", 64, 64, 1) is None
    assert isinstance(make_shortcut("A", 64, 128, 2), ZeroPadShortcut)
    assert isinstance(make_shortcut("B", 64, 128, 2)[0], nn.Conv2d)
    assert isinstance(make_shortcut("C", 64, 64, 1)[0], nn.Conv2d)
    assert make_shortcut(None, 64, 128, 2) is None
    with pytest.raises(ValueError, match="shortcut"):
        make_shortcut("D", 64, 64, 1)


@pytest.mark.parametrize("groups, width", [(1, 64), (32, 4)])
def test_bottleneck_matches_torchvision(groups, width):
    down = nn.Sequential(nn.Conv2d(64, 256, 1, 2, bias=False), nn.BatchNorm2d(256))
    ref = TVBottleneck(64, 64, 2, down, groups=groups, base_width=width).eval()
    ours = Bottleneck(64, 64, 2, groups=groups, width_per_group=width).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 64, 9, 9)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)


def test_basic_block_option_a_by_hand():
    block = BasicBlock(16, 32, 2, shortcut="A").eval()
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        branch = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
        shortcut = torch.cat([x[:, :, ::2, ::2], torch.zeros(1, 16, 4, 4)], dim=1)
        assert torch.allclose(block(x), torch.relu(branch + shortcut), atol=1e-6)


@pytest.mark.parametrize("t, c_in, c_out, stride", [(1, 32, 16, 1), (6, 24, 24, 1), (6, 24, 32, 2)])
def test_inverted_residual_matches_torchvision(t, c_in, c_out, stride):
    ref = TVInvertedResidual(c_in, c_out, stride, t).eval()
    ours = InvertedResidual(c_in, c_out, hidden_channels=round(c_in * t), stride=stride).eval()
    ref_sd, our_keys = ref.state_dict(), list(ours.state_dict())
    assert len(ref_sd) == len(our_keys)  # same layers in the same order
    ours.load_state_dict(dict(zip(our_keys, ref_sd.values())))
    x = torch.randn(2, c_in, 8, 8)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)
    assert ours.use_residual == ref.use_res_connect
