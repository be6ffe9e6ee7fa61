"""Positional encodings: the Transformer's fixed sinusoids and ViT's learned table.

Paper: Vaswani et al., "Attention Is All You Need", 2017, arXiv:1706.03762, Sec. 3.5:
``PE(pos, 2i) = sin(pos / 10000^(2i / d_model))``, ``PE(pos, 2i + 1) = cos(pos / 10000^(2i /
d_model))``, added to the embeddings (which are multiplied by ``sqrt(d_model)``, Sec. 3.4 --
the model's business, not this layer's). Learned: one ``d_model`` vector per position, as
ViT (Dosovitskiy et al. 2020, arXiv:2010.11929, eq. 1), initialised N(0, 0.02).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LearnedPositionalEncoding", "SinusoidalPositionalEncoding",
           "sinusoidal_2d", "sinusoidal_positional_encoding"]


def sinusoidal_positional_encoding(length: int, dim: int, *, base: float = 10000.0,
                                   dtype: torch.dtype = torch.float32,
                                   device: torch.device | None = None) -> Tensor:
    """``Tensor[length, dim]`` of Sec. 3.5 (``dim`` even)."""
    if dim % 2:
        raise ValueError(f"the sinusoidal encoding needs an even width, got {dim}")
    pos = torch.arange(length, dtype=torch.float64, device=device).unsqueeze(1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64, device=device)
    angle = pos / base ** (two_i / dim)  # (L, D/2)
    pe = torch.empty(length, dim, dtype=torch.float64, device=device)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
    return pe.to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed encoding to ``x: Tensor[N, L, D]`` (batch first), then dropout.

    Args:
        dim: ``d_model``.
        max_len: the longest sequence (the table is a buffer, not saved in state dicts).
        dropout: dropout after the sum (the paper's ``P_drop``).
    """

    def __init__(self, dim: int, max_len: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, dim),
                             persistent=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``offset``: the position of ``x[:, 0]`` (for one-token-at-a-time decoding)."""
        length = x.shape[1]
        if offset + length > self.pe.shape[0]:
            raise ValueError(f"sequence of {offset + length} positions exceeds max_len "
                             f"{self.pe.shape[0]}")
        return self.drop(x + self.pe[offset:offset + length].to(x.dtype))


class LearnedPositionalEncoding(nn.Module):
    """A learned ``(max_len, dim)`` table added to ``x: Tensor[N, L, D]``, then dropout."""

    def __init__(self, dim: int, max_len: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_len, dim).normal_(std=0.02))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        length = x.shape[1]
        if offset + length > self.weight.shape[0]:
            raise ValueError(f"sequence of {offset + length} positions exceeds max_len "
                             f"{self.weight.shape[0]}")
        return self.drop(x + self.weight[offset:offset + length])


def sinusoidal_2d(height: int, width: int, dim: int, *, dtype: torch.dtype = torch.float32,
                  device: torch.device | None = None) -> Tensor:
    """``Tensor[H*W, dim]``: half the channels encode the row, half the column (the 2-D
    extension of DETR, Carion et al. 2020, arXiv:2005.12872), row-major like a flattened
    feature map. ``dim`` must be a multiple of 4."""
    if dim % 4:
        raise ValueError(f"the 2-D sinusoidal encoding needs a width divisible by 4, got {dim}")
    rows = sinusoidal_positional_encoding(height, dim // 2, dtype=dtype, device=device)
    cols = sinusoidal_positional_encoding(width, dim // 2, dtype=dtype, device=device)
    # (H, 1, D/2) and (1, W, D/2) -> (H, W, D) -> (H*W, D)
    grid = torch.cat([rows[:, None].expand(height, width, -1),
                      cols[None].expand(height, width, -1)], dim=-1)
    return grid.reshape(height * width, dim)
