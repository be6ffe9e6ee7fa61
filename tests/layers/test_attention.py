"""MultiheadAttention against nn.MultiheadAttention (float64, masks, both layouts), ViT's
self-attention on it, and eq. 1 by hand."""

import pytest
import torch
from torch import nn

from modernvision.layers.attention import (
    MultiheadAttention,
    MultiHeadSelfAttention,
    causal_mask,
    scaled_dot_product_attention,
)

D = torch.float64


def _pair(embed=16, heads=4, **kw):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(embed, heads, dtype=D, **kw)
    ours = MultiheadAttention(embed, heads, dtype=D, **kw)
    assert set(ours.state_dict()) == set(ref.state_dict())
    with torch.no_grad():  # random biases too, so that they are tested
        for p in ref.parameters():
            p.normal_()
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("average", [True, False])
def test_equals_torch_with_masks(batch_first, average):
    ours, ref = _pair(batch_first=batch_first)
    n, length, source = 3, 5, 7
    shape_q = (n, length, 16) if batch_first else (length, n, 16)
    shape_k = (n, source, 16) if batch_first else (source, n, 16)
    q, k, v = torch.randn(shape_q, dtype=D), torch.randn(shape_k, dtype=D), torch.randn(
        shape_k, dtype=D)
    pad = torch.zeros(n, source, dtype=torch.bool)
    pad[0, -2:] = True
    pad[2, -1] = True
    attn = torch.randn(length, source, dtype=D)
    for kw in ({}, {"key_padding_mask": pad}, {"attn_mask": attn},
               {"attn_mask": attn > 1, "key_padding_mask": pad},
               {"attn_mask": torch.randn(n * 4, length, source, dtype=D)}):
        a, wa = ours(q, k, v, average_attn_weights=average, **kw)
        b, wb = ref(q, k, v, average_attn_weights=average, **kw)
        assert torch.allclose(a, b, atol=1e-10), kw
        assert torch.allclose(wa, wb, atol=1e-10), kw
        c, none = ours(q, k, v, need_weights=False, **kw)  # the fused path
        assert none is None and torch.allclose(c, b, atol=1e-10), kw


def test_kdim_vdim_and_no_bias_and_unbatched():
    ours, ref = _pair(kdim=6, vdim=10, bias=False)
    assert "q_proj_weight" in ours.state_dict() and "in_proj_bias" not in ours.state_dict()
    q, k, v = torch.randn(4, 16, dtype=D), torch.randn(9, 6, dtype=D), torch.randn(
        9, 10, dtype=D)
    a, wa = ours(q, k, v)
    b, wb = ref(q, k, v)
    assert a.shape == (4, 16) and torch.allclose(a, b) and torch.allclose(wa, wb)


def test_causal_and_gradients():
    ours, ref = _pair(batch_first=True)
    x = torch.randn(2, 6, 16, dtype=D, requires_grad=True)
    mask = causal_mask(6, dtype=D)
    assert torch.equal(mask, nn.Transformer.generate_square_subsequent_mask(6, dtype=D))
    a = ours(x, x, x, is_causal=True)[0]
    b = ref(x, x, x, attn_mask=mask)[0]
    assert torch.allclose(a, b)
    (ga,) = torch.autograd.grad(a.square().sum(), x)
    (gb,) = torch.autograd.grad(b.square().sum(), x)
    assert torch.allclose(ga, gb)
    small = MultiheadAttention(4, 2, batch_first=True, dtype=D)
    y = torch.randn(1, 3, 4, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: small(t, t, t)[0], (y,))


def test_equation_1_by_hand_and_scale_ablation():
    q, k, v = (torch.randn(2, 5, 8, dtype=D) for _ in range(3))
    out, w = scaled_dot_product_attention(q, k, v)
    want = torch.softmax(q @ k.transpose(1, 2) / 8 ** 0.5, -1)
    assert torch.allclose(w, want) and torch.allclose(out, want @ v)
    _, w1 = scaled_dot_product_attention(q, k, v, scale=False)
    assert torch.allclose(w1, torch.softmax(q @ k.transpose(1, 2), -1))


def test_vit_self_attention_is_multihead_attention():
    ref = nn.MultiheadAttention(32, 4, batch_first=True)
    ours = MultiHeadSelfAttention(32, 4)
    with torch.no_grad():
        ref.in_proj_bias.normal_()
    ours.load_state_dict(ref.state_dict())  # the same keys
    x = torch.randn(3, 10, 32)
    assert torch.allclose(ours(x), ref(x, x, x, need_weights=False)[0], atol=1e-5)
    assert "in_proj_bias" not in MultiHeadSelfAttention(32, 4, qkv_bias=False).state_dict()


def test_errors():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(10, 3)
    with pytest.raises(ValueError, match="not implemented"):
        MultiheadAttention(8, 2, add_bias_kv=True)
    m = MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=torch.zeros(1, 4, dtype=torch.bool))
