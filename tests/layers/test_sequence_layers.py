"""One-hot embeddings, RNN / LSTM / GRU and positional encodings against torch (float64)."""

import math

import pytest
import torch
from torch import nn

from modernvision.layers import (
    GRU,
    LSTM,
    RNN,
    Embedding,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    one_hot,
    sinusoidal_2d,
    sinusoidal_positional_encoding,
)

D = torch.float64


def test_one_hot_matches_torch_and_rejects_out_of_range():
    t = torch.tensor([[0, 3], [2, 1]])
    assert torch.equal(one_hot(t, 4).long(), nn.functional.one_hot(t, 4))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        one_hot(torch.tensor([4]), 4)


@pytest.mark.parametrize("padding_idx", [None, 0])
def test_embedding_is_a_linear_map_on_one_hot(padding_idx):
    ref = nn.Embedding(7, 5, padding_idx=padding_idx, dtype=D)
    ours = Embedding(7, 5, padding_idx=padding_idx, dtype=D)
    ours.load_state_dict(ref.state_dict())
    t = torch.tensor([[0, 1, 6], [3, 0, 2]])
    assert torch.equal(ours(t), ref(t))
    ours(t).sum().backward()
    ref(t).sum().backward()
    assert torch.allclose(ours.weight.grad, ref.weight.grad)  # no gradient to the padding row
    if padding_idx is not None:
        assert not Embedding(7, 5, padding_idx=0).weight[0].any()


def _copy(ours, ref):
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict(ref.state_dict())


@pytest.mark.parametrize("kind", ["rnn", "relu", "lstm", "gru"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_equals_torch(kind, batch_first, bidirectional):
    torch.manual_seed(0)
    kw = dict(num_layers=2, batch_first=batch_first, bidirectional=bidirectional, dtype=D)
    if kind in ("rnn", "relu"):
        nl = "tanh" if kind == "rnn" else "relu"
        ref, ours = nn.RNN(3, 4, nonlinearity=nl, **kw), RNN(3, 4, nonlinearity=nl, **kw)
    else:
        ref, ours = {"lstm": (nn.LSTM(3, 4, **kw), LSTM(3, 4, **kw)),
                     "gru": (nn.GRU(3, 4, **kw), GRU(3, 4, **kw))}[kind]
    _copy(ours, ref)
    x = torch.randn((2, 6, 3) if batch_first else (6, 2, 3), dtype=D, requires_grad=True)
    k = 2 * (2 if bidirectional else 1)
    h0 = torch.randn(k, 2, 4, dtype=D)
    state = (h0, torch.randn(k, 2, 4, dtype=D)) if kind == "lstm" else h0
    for args in ((x,), (x, state)):
        a, ha = ours(*args)
        b, hb = ref(*args)
        assert torch.allclose(a, b)
        for u, w in zip(ha if kind == "lstm" else (ha,), hb if kind == "lstm" else (hb,),
                        strict=True):
            assert torch.allclose(u, w)
    (ga,) = torch.autograd.grad(ours(x)[0].sum(), x)
    (gb,) = torch.autograd.grad(ref(x)[0].sum(), x)
    assert torch.allclose(ga, gb)


def test_rnn_unbatched_formula_and_gradcheck():
    rnn = RNN(2, 3, dtype=D)
    x = torch.randn(4, 2, dtype=D)
    out, h = rnn(x)
    ht = torch.zeros(3, dtype=D)
    for t in range(4):  # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
        ht = torch.tanh(rnn.weight_ih_l0 @ x[t] + rnn.bias_ih_l0 + rnn.weight_hh_l0 @ ht
                        + rnn.bias_hh_l0)
        assert torch.allclose(out[t], ht)
    assert torch.allclose(h[0], ht)
    small = GRU(2, 2, dtype=D)
    assert torch.autograd.gradcheck(lambda t: small(t)[0], (x.requires_grad_(),))


def test_sinusoidal_formula():
    pe = sinusoidal_positional_encoding(50, 16, dtype=D)
    for pos, i in ((0, 0), (7, 3), (49, 7)):
        angle = pos / 10000 ** (2 * i / 16)
        assert math.isclose(pe[pos, 2 * i], math.sin(angle), abs_tol=1e-12)
        assert math.isclose(pe[pos, 2 * i + 1], math.cos(angle), abs_tol=1e-12)
    x = torch.zeros(2, 5, 16)
    assert torch.allclose(SinusoidalPositionalEncoding(16)(x, offset=3)[1], pe[3:8].float())
    assert LearnedPositionalEncoding(16, 10)(x).shape == (2, 5, 16)
    grid = sinusoidal_2d(3, 4, 8)
    # token 5 of a 3x4 grid is row 1, column 1: row code in the first half, column in the second
    rows, cols = sinusoidal_positional_encoding(3, 4), sinusoidal_positional_encoding(4, 4)
    assert torch.allclose(grid[5], torch.cat([rows[1], cols[1]]))
    with pytest.raises(ValueError, match="max_len"):
        SinusoidalPositionalEncoding(16, max_len=4)(x)
