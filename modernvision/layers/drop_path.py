"""Stochastic depth: randomly skip a residual branch per sample during training.

Paper: Huang, Sun, Liu, Sedra, Weinberger, "Deep Networks with Stochastic Depth", 2016,
arXiv:1603.09382.

Departures from the paper:
    * The paper drops a block for the whole mini-batch and, at test time, scales each branch by
      its survival probability (eq. 5). Like EfficientNet and torchvision's ``"row"`` mode, we
      drop each *sample's* branch independently and divide the survivors by the survival
      probability during training ("inverted" scaling, as in inverted dropout), so evaluation is
      the identity. Both give the same expectation.
    * The per-block probability schedule is the caller's: the paper's linear decay
      ``p_l = l / L * p_L`` (written as survival ``1 - p_l``) is what EfficientNet uses with
      ``l`` counted from 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def drop_path(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Zero each sample's ``x`` with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Args:
        x: residual-branch output ``Tensor[N, ...]``; samples along the first dimension.
        p: drop probability in ``[0, 1]``.
        training: when ``False`` (or ``p == 0``) ``x`` is returned unchanged.

    Returns:
        A tensor shaped like ``x``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop probability p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    # One Bernoulli draw per sample, broadcast over the remaining dimensions.
    mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
    mask.bernoulli_(keep)
    if keep > 0.0:
        mask.div_(keep)
    return x * mask


class DropPath(nn.Module):
    """Module wrapper of :func:`drop_path` (active only in training mode)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
