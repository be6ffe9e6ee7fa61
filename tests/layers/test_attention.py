"""Packed-QKV self-attention on SDPA against nn.MultiheadAttention."""

import pytest
import torch
from torch import nn

from modernvision.layers.attention import MultiHeadSelfAttention


def _pair(dim: int = 32, heads: int = 4):
    ref = nn.MultiheadAttention(dim, heads, batch_first=True)
    ours = MultiHeadSelfAttention(dim, heads)
    with torch.no_grad():
        ours.qkv.weight.copy_(ref.in_proj_weight)
        ours.qkv.bias.copy_(torch.randn(3 * dim))
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ours.proj.load_state_dict(ref.out_proj.state_dict())
    return ours, ref


def test_matches_multihead_attention_values_and_gradients():
    ours, ref = _pair()
    x = torch.randn(3, 10, 32, requires_grad=True)
    a = ours(x)
    b = ref(x, x, x, need_weights=False)[0]
    assert torch.allclose(a, b, atol=1e-5)
    (ga,) = torch.autograd.grad(a.square().sum(), x)
    (gb,) = torch.autograd.grad(b.square().sum(), x)
    assert torch.allclose(ga, gb, atol=1e-4)


def test_equation_1_by_hand():
    ours, _ = _pair(8, 2)
    x = torch.randn(1, 5, 8)
    q, k, v = ours.qkv(x).split(8, dim=-1)
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        w = torch.softmax(q[..., sl] @ k[..., sl].transpose(1, 2) / 4**0.5, dim=-1)
        heads.append(w @ v[..., sl])
    want = ours.proj(torch.cat(heads, dim=-1))
    assert torch.allclose(ours(x), want, atol=1e-6)


def test_heads_must_divide_dim():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(10, 3)
