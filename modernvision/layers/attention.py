"""Multi-head self-attention over a token sequence.

Paper: Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser, Polosukhin,
"Attention Is All You Need", 2017, arXiv:1706.03762 (Sec. 3.2, eq. 1:
``softmax(Q K^T / sqrt(d_k)) V`` per head, heads concatenated and projected).

Departures from the paper: Q, K and V come from one packed ``Linear(dim, 3 * dim)`` (the same
function as three separate projections, in the row order ``[q; k; v]`` that
``nn.MultiheadAttention.in_proj_weight`` uses), and the attention itself runs through
``F.scaled_dot_product_attention`` so PyTorch can pick a fused (flash / memory-efficient) kernel.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with ``num_heads`` heads of width ``dim // num_heads``.

    Args:
        dim: token width ``D``.
        num_heads: number of heads; must divide ``dim``.
        qkv_bias: whether the packed QKV projection has a bias.
        attention_dropout: dropout on the attention weights (training only).
        proj_dropout: dropout after the output projection.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        qkv_bias: bool = True,
        attention_dropout: float = 0.0,
        proj_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Attend over ``x: Tensor[B, N, D]``; returns ``Tensor[B, N, D]``."""
        b, n, d = x.shape
        # (B, N, 3D) -> (B, N, 3, H, hd) -> (3, B, H, N, hd); views, no copy.
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        p = self.attention_dropout if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # scale 1/sqrt(hd), eq. 1
        x = x.transpose(1, 2).reshape(b, n, d)  # (B, H, N, hd) -> (B, N, D)
        return self.proj_drop(self.proj(x))
