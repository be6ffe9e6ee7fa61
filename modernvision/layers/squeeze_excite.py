"""Squeeze-and-excitation: reweight channels by a gate computed from their global average.

Paper: Hu, Shen, Albanie, Sun, Wu, "Squeeze-and-Excitation Networks", 2017, arXiv:1709.01507.

Squeeze (eq. 2): ``z_c = mean_{i,j} u_c(i, j)``. Excitation (eq. 3):
``s = sigmoid(W2 act(W1 z))`` with ``W1`` reducing the channels by the ratio ``r`` (16 in the
paper). Scale (eq. 4): ``u_c * s_c``.

Departures from the paper: the two fully connected layers are 1x1 convolutions on the pooled
``(N, C, 1, 1)`` map (the same weights, no reshape), and the hidden activation is a parameter
(ReLU in the paper, SiLU in EfficientNet).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn


class SqueezeExcite(nn.Module):
    """Channel gate ``x * sigmoid(fc2(act(fc1(mean_hw(x)))))``.

    Args:
        channels: channels of the input (and the gate).
        squeeze_channels: hidden width of the bottleneck (``channels // r``).
        act_layer: hidden activation constructor (takes ``inplace``).
        gate_layer: gate constructor (sigmoid in the paper).
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        *,
        act_layer: Callable[..., nn.Module] = nn.ReLU,
        gate_layer: Callable[[], nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        if squeeze_channels < 1:
            raise ValueError(f"squeeze_channels must be >= 1, got {squeeze_channels}")
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = act_layer(inplace=True)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = gate_layer()

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)  # squeeze: (N, C, H, W) -> (N, C, 1, 1)
        s = self.gate(self.fc2(self.act(self.fc1(s))))  # excitation
        return x * s
