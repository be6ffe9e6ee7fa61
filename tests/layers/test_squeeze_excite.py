"""Squeeze-excitation against torchvision.ops.SqueezeExcitation and a hand computation."""

import torch
from torch import nn
from torchvision.ops import SqueezeExcitation

from modernvision.layers.squeeze_excite import SqueezeExcite


def test_matches_torchvision_squeeze_excitation():
    ref = SqueezeExcitation(32, 8, activation=nn.SiLU)
    ours = SqueezeExcite(32, 8, act_layer=nn.SiLU)
    ours.load_state_dict(ref.state_dict())  # same names: fc1, fc2
    x = torch.randn(2, 32, 7, 5)
    assert torch.allclose(ours(x), ref(x), atol=1e-6)


def test_equations_2_to_4_by_hand():
    se = SqueezeExcite(4, 2)
    x = torch.randn(3, 4, 6, 6)
    z = x.mean((2, 3))  # eq. 2
    w1, b1 = se.fc1.weight[:, :, 0, 0], se.fc1.bias
    w2, b2 = se.fc2.weight[:, :, 0, 0], se.fc2.bias
    s = torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T + b2)  # eq. 3
    assert torch.allclose(se(x), x * s[:, :, None, None], atol=1e-6)  # eq. 4
