"""The Transformer against nn.Transformer (float64, masks, post- and pre-norm), cached decoding
against the full forward, beam 1 == greedy, and the RNN seq2seq / attention decoders."""

import pytest
import torch
from torch import nn

from modernvision.models.sequence._decoding import beam_search, greedy_decode
from modernvision.models.sequence.rnn import Seq2Seq, Seq2VecEncoder, Vec2SeqDecoder
from modernvision.models.sequence.rnn_attention import AttentionDecoder
from modernvision.models.sequence.transformer import Transformer, TransformerSeq2Seq

D = torch.float64
pytestmark = [pytest.mark.filterwarnings("ignore:enable_nested_tensor"),
              pytest.mark.filterwarnings("ignore:Support for mismatched")]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_equals_torch(norm_first, batch_first):
    torch.manual_seed(0)
    kw = dict(d_model=16, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=24, dropout=0.0, batch_first=batch_first, norm_first=norm_first,
              dtype=D)
    ref, ours = nn.Transformer(**kw), Transformer(**kw)
    assert set(ours.state_dict()) == set(ref.state_dict())
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))  # LayerNorm / bias values that are not 1 or 0
    ours.load_state_dict(ref.state_dict())
    n, s, t = 3, 7, 5
    src = torch.randn((n, s, 16) if batch_first else (s, n, 16), dtype=D)
    tgt = torch.randn((n, t, 16) if batch_first else (t, n, 16), dtype=D, requires_grad=True)
    src_pad = torch.zeros(n, s, dtype=torch.bool)
    src_pad[1, -3:] = True
    tgt_pad = torch.zeros(n, t, dtype=torch.bool)
    tgt_pad[2, -1] = True
    masks = dict(tgt_mask=nn.Transformer.generate_square_subsequent_mask(t, dtype=D),
                 src_key_padding_mask=src_pad, memory_key_padding_mask=src_pad,
                 tgt_key_padding_mask=tgt_pad)
    for m in ({}, masks):
        a, b = ours(src, tgt, **m), ref(src, tgt, **m)
        assert torch.allclose(a, b, atol=1e-10)
    (ga,) = torch.autograd.grad(ours(src, tgt, **masks).sum(), tgt)
    (gb,) = torch.autograd.grad(ref(src, tgt, **masks).sum(), tgt)
    assert torch.allclose(ga, gb, atol=1e-10)


def _seq2seq(norm_first=False):
    torch.manual_seed(0)
    return TransformerSeq2Seq(9, 8, bos=1, eos=2, pad=0, d_model=16, nhead=2,
                              num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=32,
                              dropout=0.0, norm_first=norm_first).double().eval()


@pytest.mark.parametrize("norm_first", [False, True])
def test_kv_cache_step_equals_full_forward(norm_first):
    model = _seq2seq(norm_first)
    src = torch.randint(3, 9, (2, 6))
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, -2:] = True
    tgt = torch.randint(3, 8, (2, 5))
    full = model(src, tgt, src_key_padding_mask=pad).log_softmax(-1)
    state = model._state(src, pad)
    for i in range(5):
        logp, state = model.step(tgt[:, i], state)
        assert torch.allclose(logp, full[:, i], atol=1e-10)


def test_beam_1_is_greedy_and_greedy_is_argmax():
    model = _seq2seq()
    src = torch.randint(3, 9, (4, 6))
    greedy = model.greedy(src, max_len=7)
    assert torch.equal(model.beam(src, max_len=7, beam_size=1), greedy)
    # greedy by hand with the uncached forward
    tgt = torch.full((4, 1), 1)
    for _ in range(greedy.shape[1]):
        nxt = model(src, tgt)[:, -1].argmax(-1)
        tgt = torch.cat([tgt, nxt[:, None]], 1)
    mine = tgt[:, 1:]
    done = torch.zeros(4, dtype=torch.bool)
    for i in range(mine.shape[1]):  # after eos comes pad
        mine[done, i] = 0
        done |= mine[:, i] == 2
    assert torch.equal(mine, greedy)


def test_beam_search_finds_the_better_sequence():
    # A 2-step toy where greedy's first choice (a, 0.6) leads to a poor second step.
    table = {None: [0.0, 0.0, 0.0, 0.6, 0.4], 3: [0.0, 0.0, 0.5, 0.25, 0.25],
             4: [0.0, 0.0, 1.0, 0.0, 0.0]}

    def step(tokens, state):
        rows = [table[None] if state["t"][i] == 0 else
                table.get(int(tokens[i]), [0.0, 0.0, 1.0, 0.0, 0.0]) for i in range(len(tokens))]
        p = torch.tensor(rows).clamp_min(1e-9)
        return p.log(), {"t": state["t"] + 1}

    state = {"t": torch.zeros(1, dtype=torch.long)}
    kw = dict(bos=1, eos=2, pad=0, max_len=3)
    assert greedy_decode(step, state, 1, **kw).tolist() == [[3, 2]]  # p = 0.6 * 0.5 = 0.30
    tokens, score = beam_search(step, state, 1, beam_size=2, **kw)
    assert tokens.tolist() == [[4, 2]] and torch.isclose(score, torch.tensor(0.4).log())


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_rnn_seq2seq_trains_and_decodes(attention, cell):
    torch.manual_seed(0)
    enc = Seq2VecEncoder(7, 8, 12, cell=cell)
    dec = (AttentionDecoder(6, 8, 12, cell=cell) if attention else
           Vec2SeqDecoder(6, 8, 12, cell=cell))
    model = Seq2Seq(enc, dec, bos=1, eos=2, pad=0)
    src, tgt = torch.randint(0, 7, (3, 5)), torch.randint(3, 6, (3, 4))
    logits = model(src, tgt)
    assert logits.shape == (3, 4, 6)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    greedy = model.greedy(src, 6)
    assert torch.equal(model.beam(src, 6, beam_size=1), greedy)
    # teacher forcing == feeding the same tokens one at a time
    state = model._state(src)
    for i in range(4):
        logp, state = dec.step(tgt[:, i], state)
        assert torch.allclose(logp, logits[:, i].log_softmax(-1), atol=1e-5)


def test_attention_decoder_ignores_padded_memory():
    torch.manual_seed(0)
    dec = AttentionDecoder(6, 4, 8, memory_dim=5).eval()
    memory, context = torch.randn(2, 6, 5), torch.randn(2, 8)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[:, 4:] = True
    tgt = torch.randint(0, 6, (2, 3))
    a, w = dec(tgt, dec.initial_state(context, memory, mask), return_weights=True)
    memory2 = memory.clone()
    memory2[:, 4:] = 100.0
    b = dec(tgt, dec.initial_state(context, memory2, mask))
    assert torch.allclose(a, b) and torch.all(w[..., 4:] == 0)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3))
