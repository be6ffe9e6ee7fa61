"""Seq2vec and vec2seq with recurrent networks: the encoder-decoder of sequence learning.

Papers: Sutskever, Vinyals & Le, "Sequence to Sequence Learning with Neural Networks", 2014,
arXiv:1409.3215 (an encoder RNN reads the source into its final state -- a fixed-size vector,
the *context* -- which initialises a decoder RNN that emits the target token by token, trained
with teacher forcing and decoded with a left-to-right beam search, Sec. 2-3); Cho et al. 2014,
arXiv:1406.1078 (the same with GRUs).

* :class:`Seq2VecEncoder`: tokens -> embeddings (a linear map on one-hot vectors,
  :class:`~modernvision.layers.Embedding`) -> RNN; returns every state and the final one.
* :class:`Vec2SeqDecoder`: the context initialises the state; ``forward`` is teacher forcing
  (the true previous token is the input), ``step`` one token at a time for decoding.
* :class:`Seq2Seq`: the two, with ``greedy`` and ``beam`` decoding.

Departures: the source is not reversed (Sec. 3.3's trick; pass it reversed if wanted);
sequences in a batch share one length (no packing); the cell is ``rnn`` / ``gru`` / ``lstm``
(the paper's is a 4-layer LSTM).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision.layers import GRU, LSTM, RNN, Embedding
from modernvision.models.sequence._decoding import beam_search, greedy_decode

__all__ = ["Recurrent", "Seq2Seq", "Seq2VecEncoder", "Vec2SeqDecoder"]

CELLS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}


class Recurrent(nn.Module):
    """A batch-first RNN / GRU / LSTM whose state is batch first too: ``{"h": (N, layers, H)}``
    (+ ``"c"`` for the LSTM), so that beam search can reorder it on dim 0."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers, batch_first=True,
                               dropout=dropout)

    def initial_state(self, context: Tensor) -> dict[str, Tensor]:
        """Every layer starts from ``context: (N, H)`` (the LSTM's cell from zeros)."""
        h = context.unsqueeze(1).expand(-1, self.num_layers, -1).contiguous()
        return {"h": h, "c": torch.zeros_like(h)} if self.cell == "lstm" else {"h": h}

    def forward(self, x: Tensor, state: dict[str, Tensor] | None = None
                ) -> tuple[Tensor, dict[str, Tensor]]:
        """``x: (N, L, in)`` -> outputs ``(N, L, H)`` and the new state."""
        hx = None
        if state is not None:
            hx = state["h"].transpose(0, 1).contiguous()  # (N, layers, H) -> (layers, N, H)
            if self.cell == "lstm":
                hx = (hx, state["c"].transpose(0, 1).contiguous())
        out, hn = self.rnn(x, hx)
        if self.cell == "lstm":
            return out, {"h": hn[0].transpose(0, 1), "c": hn[1].transpose(0, 1)}
        return out, {"h": hn.transpose(0, 1)}


class Seq2VecEncoder(nn.Module):
    """Tokens ``(N, L)`` -> all states ``(N, L, H)`` and the context (the last state of the top
    layer, ``(N, H)``).

    Args:
        vocab_size: source vocabulary.
        embed_dim: embedding width.
        hidden_size: RNN width ``H``.
        num_layers: stacked RNN layers.
        cell: ``rnn`` (Elman, tanh), ``gru`` or ``lstm``.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, *,
                 num_layers: int = 1, cell: str = "gru", dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = Embedding(vocab_size, embed_dim)
        self.rnn = Recurrent(cell, embed_dim, hidden_size, num_layers, dropout)
        self.hidden_size = hidden_size

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        states, last = self.rnn(self.embed(tokens))
        return states, last["h"][:, -1]


class Vec2SeqDecoder(nn.Module):
    """An RNN language model conditioned on a context vector that initialises its state.

    Args:
        vocab_size: target vocabulary ``V``.
        embed_dim: embedding width.
        hidden_size: RNN width (the context's width).
        num_layers: stacked layers.
        cell: ``rnn``, ``gru`` or ``lstm``.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, *,
                 num_layers: int = 1, cell: str = "gru", dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = Embedding(vocab_size, embed_dim)
        self.rnn = Recurrent(cell, embed_dim, hidden_size, num_layers, dropout)
        self.out = nn.Linear(hidden_size, vocab_size)

    def initial_state(self, context: Tensor, memory: Tensor | None = None,
                      memory_mask: Tensor | None = None) -> dict[str, Any]:
        return self.rnn.initial_state(context)

    def forward(self, tgt_in: Tensor, state: dict[str, Any]) -> Tensor:
        """Teacher forcing: logits ``(N, T, V)`` of each next token given the true previous
        ones ``tgt_in: (N, T)`` (``bos`` first)."""
        out, _ = self.rnn(self.embed(tgt_in), state)
        return self.out(out)

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """Log-probabilities ``(N, V)`` of the token after ``tokens: (N,)``, and the state."""
        out, new = self.rnn(self.embed(tokens[:, None]), state)
        return F.log_softmax(self.out(out[:, 0]), -1), new


class Seq2Seq(nn.Module):
    """Encoder + decoder. ``forward(src, tgt_in)`` gives teacher-forced logits; ``greedy`` and
    ``beam`` decode. The decoder is a :class:`Vec2SeqDecoder` or an attention decoder
    (:class:`~modernvision.models.sequence.rnn_attention.AttentionDecoder`), which also
    reads the encoder's states."""

    def __init__(self, encoder: Seq2VecEncoder, decoder: nn.Module, *, bos: int, eos: int,
                 pad: int) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.bos, self.eos, self.pad = bos, eos, pad

    def _state(self, src: Tensor) -> dict[str, Any]:
        states, context = self.encoder(src)
        return self.decoder.initial_state(context, states)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        return self.decoder(tgt_in, self._state(src))

    @torch.no_grad()
    def greedy(self, src: Tensor, max_len: int) -> Tensor:
        return greedy_decode(self.decoder.step, self._state(src), src.shape[0], bos=self.bos,
                             eos=self.eos, pad=self.pad, max_len=max_len, device=src.device)

    @torch.no_grad()
    def beam(self, src: Tensor, max_len: int, beam_size: int = 4,
             length_penalty: float = 0.0) -> Tensor:
        return beam_search(self.decoder.step, self._state(src), src.shape[0], bos=self.bos,
                           eos=self.eos, pad=self.pad, max_len=max_len, beam_size=beam_size,
                           length_penalty=length_penalty, device=src.device)[0]
