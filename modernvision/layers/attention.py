"""Multi-head attention written out, and ViT's self-attention on top of it.

Paper: Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser, Polosukhin,
"Attention Is All You Need", 2017, arXiv:1706.03762. Sec. 3.2.1, eq. 1:
``Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V``; Sec. 3.2.2:
``MultiHead(Q, K, V) = Concat(head_1..head_h) W^O``, ``head_i = Attention(Q W_i^Q, K W_i^K,
V W_i^V)``, ``d_k = d_v = d_model / h``.

:class:`MultiheadAttention` has ``nn.MultiheadAttention``'s constructor, forward signature,
return value and state-dict keys (``in_proj_weight`` holding ``W^Q; W^K; W^V`` stacked by rows
-- or ``q_proj_weight`` / ``k_proj_weight`` / ``v_proj_weight`` when ``kdim`` / ``vdim`` differ
from ``embed_dim`` -- ``in_proj_bias`` and ``out_proj``), so the two are interchangeable.
Mask conventions are torch's: a boolean ``attn_mask`` / ``key_padding_mask`` is True where
attention is *not* allowed; a float mask is added to the logits.

Departures:
    * ``add_bias_kv`` and ``add_zero_attn`` are not implemented (refused).
    * ``scale=False`` (keyword, ours) drops the ``1/sqrt(d_k)`` factor, for the ablation of
      ``bench/sequences.md``.
    * ``is_causal=True`` without an ``attn_mask`` builds the causal mask (torch requires the
      mask and treats the flag as a hint).
    * When the weights are not needed (``need_weights=False``), the same function runs
      through ``F.scaled_dot_product_attention``, so PyTorch can use a fused kernel; the
      written-out :func:`scaled_dot_product_attention` is the path otherwise (tests hold them
      equal).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MultiHeadSelfAttention", "MultiheadAttention", "causal_mask",
           "scaled_dot_product_attention"]


def causal_mask(length: int, *, device: torch.device | None = None,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """``Tensor[L, L]``: 0 on and below the diagonal, -inf above (position i sees j <= i);
    ``nn.Transformer.generate_square_subsequent_mask``."""
    return torch.triu(torch.full((length, length), float("-inf"), device=device, dtype=dtype),
                      diagonal=1)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
                                 *, dropout_p: float = 0.0, scale: bool = True,
                                 training: bool = False) -> tuple[Tensor, Tensor]:
    """Eq. 1 per head: ``softmax(Q K^T / sqrt(d_k) + mask) V``.

    Args:
        q: ``Tensor[..., L, d_k]``; k: ``Tensor[..., S, d_k]``; v: ``Tensor[..., S, d_v]``.
        mask: float, broadcastable to ``[..., L, S]``, added to the logits (-inf: blocked).
        scale: divide the logits by ``sqrt(d_k)`` (the paper); False for the ablation.

    Returns:
        ``(output[..., L, d_v], weights[..., L, S])``, the weights after dropout.
    """
    logits = q @ k.transpose(-2, -1)
    if scale:
        logits = logits / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = logits + mask
    weights = logits.softmax(dim=-1)
    if dropout_p > 0 and training:
        weights = F.dropout(weights, dropout_p)
    return weights @ v, weights


def _float_mask(mask: Tensor | None, dtype: torch.dtype, name: str) -> Tensor | None:
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    if not mask.is_floating_point():
        raise ValueError(f"{name} must be a bool or float tensor, got {mask.dtype}")
    return mask.to(dtype)


class MultiheadAttention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s interface (see the module).

    Args:
        embed_dim: ``d_model``.
        num_heads: ``h``; must divide ``embed_dim``.
        dropout: dropout on the attention weights (training only).
        bias: biases of the input and output projections.
        kdim, vdim: widths of keys and values (default ``embed_dim``).
        batch_first: inputs and output are ``(N, L, E)`` instead of ``(L, N, E)``.
        scale: divide by ``sqrt(d_k)`` (keyword only; False only for the ablation).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 device: torch.device | None = None, dtype: torch.dtype | None = None, *,
                 scale: bool = True) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be > 0, got {embed_dim} and "
                             f"{num_heads}")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise ValueError("add_bias_kv and add_zero_attn are not implemented")
        kw = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.scale = scale
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = nn.Parameter(torch.empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = nn.Parameter(torch.empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """As torch: Xavier-uniform projections, zero biases."""
        if self._qkv_same_embed_dim:
            nn.init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    # -- the pieces (batch-first, ``(N, L, E)``) ------------------------------------------
    def _weights(self, i: int) -> tuple[Tensor, Tensor | None]:
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight[i * e:(i + 1) * e]
        else:
            w = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
        b = None if self.in_proj_bias is None else self.in_proj_bias[i * e:(i + 1) * e]
        return w, b

    def _split_heads(self, x: Tensor) -> Tensor:
        n, length, _ = x.shape
        # (N, L, E) -> (N, L, h, d_k) -> (N, h, L, d_k)
        return x.view(n, length, self.num_heads, self.head_dim).transpose(1, 2)

    def project(self, x: Tensor, which: str) -> Tensor:
        """``x W^{which}`` split into heads: ``(N, L, E_in) -> (N, h, L, d_k)``; ``which`` is
        ``"q"``, ``"k"`` or ``"v"``. (Used by decoders that cache keys and values.)"""
        w, b = self._weights("qkv".index(which))
        return self._split_heads(F.linear(x, w, b))

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *,
               need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
        """Heads ``(N, h, L, d_k)`` -> the projected output ``(N, L, E)`` and the per-head
        weights ``(N, h, L, S)`` (None unless ``need_weights``); ``mask`` is a float mask
        broadcastable to ``(N, h, L, S)``."""
        p = self.dropout if self.training else 0.0
        if need_weights or not self.scale:
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p=p,
                                                        scale=self.scale,
                                                        training=self.training)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            weights = None
        n, _, length, _ = out.shape
        out = out.transpose(1, 2).reshape(n, length, self.embed_dim)  # concat heads
        return self.out_proj(out), weights

    def merge_masks(self, attn_mask: Tensor | None, key_padding_mask: Tensor | None,
                    n: int, length: int, source: int, dtype: torch.dtype) -> Tensor | None:
        """One float mask broadcastable to ``(N, h, L, S)`` from torch's two masks."""
        attn = _float_mask(attn_mask, dtype, "attn_mask")
        pad = _float_mask(key_padding_mask, dtype, "key_padding_mask")
        mask = None
        if attn is not None:
            if attn.dim() == 2:
                if attn.shape != (length, source):
                    raise ValueError(f"attn_mask of shape {tuple(attn.shape)}; expected "
                                     f"{(length, source)}")
                mask = attn.view(1, 1, length, source)
            elif attn.dim() == 3:
                if attn.shape != (n * self.num_heads, length, source):
                    raise ValueError(f"attn_mask of shape {tuple(attn.shape)}; expected "
                                     f"{(n * self.num_heads, length, source)}")
                mask = attn.view(n, self.num_heads, length, source)
            else:
                raise ValueError(f"attn_mask must be 2-D or 3-D, got {attn.dim()}-D")
        if pad is not None:
            if pad.shape != (n, source):
                raise ValueError(f"key_padding_mask of shape {tuple(pad.shape)}; expected "
                                 f"{(n, source)}")
            pad = pad.view(n, 1, 1, source)
            mask = pad if mask is None else mask + pad
        return mask

    # -- torch's interface --------------------------------------------------------------
    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """``(attn_output, attn_weights)`` as ``nn.MultiheadAttention``: the output ``(L, N,
        E)`` (``(N, L, E)`` batch first, ``(L, E)`` unbatched); the weights ``(N, L, S)``
        averaged over heads, ``(N, h, L, S)`` with ``average_attn_weights=False``, or None."""
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            # (L, N, E) -> (N, L, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if query.shape[-1] != self.embed_dim:
            raise ValueError(f"query width {query.shape[-1]} != embed_dim {self.embed_dim}")
        n, length, source = query.shape[0], query.shape[1], key.shape[1]
        if is_causal and attn_mask is None:
            attn_mask = causal_mask(length, device=query.device, dtype=query.dtype)
        mask = self.merge_masks(attn_mask, key_padding_mask, n, length, source, query.dtype)
        q, k, v = self.project(query, "q"), self.project(key, "k"), self.project(value, "v")
        out, weights = self.attend(q, k, v, mask, need_weights=need_weights)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if unbatched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights


class MultiHeadSelfAttention(MultiheadAttention):
    """ViT's self-attention: :class:`MultiheadAttention` on batch-first tokens, ``x`` as
    query, key and value, with dropout after the output projection.

    Args:
        dim: token width ``D``.
        num_heads: number of heads; must divide ``dim``.
        qkv_bias: whether the packed QKV projection has a bias (the output projection always
            has one).
        attention_dropout: dropout on the attention weights (training only).
        proj_dropout: dropout after the output projection.
    """

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = True,
                 attention_dropout: float = 0.0, proj_dropout: float = 0.0) -> None:
        super().__init__(dim, num_heads, dropout=attention_dropout, batch_first=True)
        if not qkv_bias:
            self.register_parameter("in_proj_bias", None)
        self.proj_drop = nn.Dropout(proj_dropout)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        """Attend over ``x: Tensor[B, N, D]``; returns ``Tensor[B, N, D]``."""
        q, k, v = (self.project(x, c) for c in "qkv")
        return self.proj_drop(self.attend(q, k, v, need_weights=False)[0])
