"""Dropout with inverted scaling, written out.

Paper: Srivastava, Hinton, Krizhevsky, Sutskever and Salakhutdinov, "Dropout: A Simple Way to
Prevent Neural Networks from Overfitting", JMLR 2014 (first as Hinton et al., 2012,
arXiv:1207.0580).

Departure from the paper (as torch.nn.Dropout): the paper keeps units with probability ``p`` at
training time and multiplies the weights by ``p`` at test time; here ``p`` is the probability of
*dropping* a unit and the kept activations are divided by ``1 - p`` during training ("inverted
dropout"), so evaluation is the identity and the expected activation is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def dropout(x: Tensor, p: float = 0.5, training: bool = True, *, inplace: bool = False,
            mask: Tensor | None = None) -> Tensor:
    """Zero each element of ``x`` with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Args:
        x: input of any shape.
        p: drop probability in ``[0, 1]``.
        training: apply dropout; when ``False`` return ``x`` unchanged.
        inplace: write the result into ``x``.
        mask: optional keep-mask (1 keep, 0 drop) broadcastable to ``x``; drawn from a Bernoulli
            of keep probability ``1 - p`` when ``None`` (the same draw torch's CPU dropout makes,
            so both agree under the same seed).

    Returns:
        Tensor like ``x``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x.mul_(0.0) if inplace else x * 0.0
    if mask is None:
        mask = torch.empty_like(x).bernoulli_(1.0 - p)
    scale = mask.to(x.dtype) / (1.0 - p)  # inverted dropout: E[output] = x
    return x.mul_(scale) if inplace else x * scale


class Dropout(nn.Module):
    """Inverted dropout: identity in eval mode, ``x * mask / (1 - p)`` in training mode.

    Args:
        p: probability of zeroing each element, in ``[0, 1]``.
        inplace: modify the input tensor instead of allocating a new one.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1], got {p!r}")
        self.p, self.inplace = float(p), inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def forward(self, x: Tensor) -> Tensor:
        """Drop and rescale in training; pass ``x`` through in eval."""
        return dropout(x, self.p, self.training, inplace=self.inplace)
