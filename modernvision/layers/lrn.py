"""Local response normalisation (LRN), written out.

Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NeurIPS 2012, Sec. 3.3 (no arXiv id). The paper's Eq. (Sec. 3.3) is

    b^i = a^i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} (a^j)^2) ^ beta

over ``n`` neighbouring channels at the same position. Departure, shared with
``torch.nn.LocalResponseNorm`` and Caffe: ``alpha`` is divided by ``size`` (the sum becomes a
mean over a zero-padded window), so the paper's ``alpha = 1e-4`` with ``n = 5`` is
``alpha = 5e-4`` here. The window of channel ``i`` runs from ``i - size // 2`` to
``i + (size - 1) // 2``, as in torch, so even sizes match torch too.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def local_response_norm(
    x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """Normalise each activation by the energy of its ``size`` neighbouring channels.

    Args:
        x: ``(N, C, *)`` with at least one trailing (spatial) dimension.
        size: number of channels in the window.
        alpha: scale; the summed squares are multiplied by ``alpha / size``.
        beta: exponent.
        k: additive constant.

    Returns:
        ``x / (k + alpha / size * window_sum(x^2)) ** beta``, same shape as ``x``.
    """
    if x.dim() < 3:
        raise ValueError(f"x must have shape (N, C, *) with a spatial dim, got {tuple(x.shape)}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    channels = x.shape[1]
    squares = x.square()
    # Zero-pad the channel dimension (dim 1): F.pad lists pads from the last dim backwards.
    pad = [0, 0] * (x.dim() - 2) + [size // 2, (size - 1) // 2]
    squares = F.pad(squares, pad)
    # Sum of `size` channel-shifted views: (N, C + size - 1, *) -> (N, C, *). Slicing along the
    # channel dim keeps the spatial grid intact (which the receptive-field analysis relies on).
    energy = squares[:, :channels]
    for offset in range(1, size):
        energy = energy + squares[:, offset : offset + channels]
    return x / (energy * (alpha / size) + k).pow(beta)


class LocalResponseNorm(nn.Module):
    """Module form of :func:`local_response_norm` (same arguments as torch's)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
