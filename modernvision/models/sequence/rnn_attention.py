"""An RNN decoder with dot-product attention over the encoder's states.

Paper: Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine
Translation", 2015, arXiv:1508.04025 -- *global* attention with the *dot* score (Sec. 3.1,
eq. 8): at step ``t`` the decoder state ``h_t`` scores every encoder state ``h_s`` by
``h_t . h_s``; ``a_t = softmax(scores)`` (eq. 7); the context vector is ``c_t = sum_s a_ts
h_s``; it is combined with the state by concatenation, ``h~_t = tanh(W_c [c_t; h_t])``
(eq. 5), and ``p(y_t) = softmax(W_s h~_t)`` (eq. 6). Input feeding (Sec. 3.3): ``h~_{t-1}`` is
concatenated to the next input embedding.

This removes the bottleneck of :class:`~modernvision.models.sequence.rnn.Vec2SeqDecoder`,
where everything the decoder knows of the source is one context vector.

Departures: the memory may be any ``(N, S, memory_dim)`` tensor -- encoder RNN states or a
CNN's flattened feature maps -- projected to the decoder width by a linear map when the
widths differ; the state is also initialised from the context vector (as seq2seq does).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision.layers import Embedding
from modernvision.models.sequence.rnn import Recurrent

__all__ = ["AttentionDecoder"]


class AttentionDecoder(nn.Module):
    """Luong's global dot-product attention decoder (see the module docstring).

    Args:
        vocab_size: target vocabulary ``V``.
        embed_dim: embedding width.
        hidden_size: RNN width ``H``.
        memory_dim: width of the memory (default ``H``; otherwise projected to ``H``).
        num_layers: stacked layers (attention reads the top one).
        cell: ``rnn``, ``gru`` or ``lstm``.
        input_feeding: concatenate ``h~_{t-1}`` to the input (Sec. 3.3).
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, *,
                 memory_dim: int | None = None, num_layers: int = 1, cell: str = "gru",
                 dropout: float = 0.0, input_feeding: bool = True) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.input_feeding = input_feeding
        self.embed = Embedding(vocab_size, embed_dim)
        self.rnn = Recurrent(cell, embed_dim + (hidden_size if input_feeding else 0),
                             hidden_size, num_layers, dropout)
        memory_dim = memory_dim or hidden_size
        self.memory_proj = (nn.Linear(memory_dim, hidden_size) if memory_dim != hidden_size
                            else nn.Identity())
        self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=False)  # W_c, eq. 5
        self.out = nn.Linear(hidden_size, vocab_size)  # W_s, eq. 6

    def initial_state(self, context: Tensor, memory: Tensor,
                      memory_mask: Tensor | None = None) -> dict[str, Any]:
        """``context: (N, H)``, ``memory: (N, S, memory_dim)``, ``memory_mask: (N, S)`` bool,
        True where a memory slot is padding."""
        state = self.rnn.initial_state(context)
        state["memory"] = self.memory_proj(memory)
        if memory_mask is not None:
            state["mask"] = torch.zeros(memory_mask.shape, dtype=state["memory"].dtype,
                                        device=memory.device).masked_fill(memory_mask,
                                                                          float("-inf"))
        if self.input_feeding:
            state["feed"] = context.new_zeros(context.shape[0], self.hidden_size)
        return state

    def _step(self, tokens: Tensor, state: dict[str, Any]
              ) -> tuple[Tensor, Tensor, dict[str, Any]]:
        x = self.embed(tokens)
        if self.input_feeding:
            x = torch.cat([x, state["feed"]], -1)
        rnn_state = {k: state[k] for k in ("h", "c") if k in state}
        out, rnn_state = self.rnn(x[:, None], rnn_state)
        h = out[:, 0]
        memory = state["memory"]
        scores = (memory @ h[:, :, None]).squeeze(-1)  # dot score h_t . h_s, eq. 8: (N, S)
        if "mask" in state:
            scores = scores + state["mask"]
        weights = scores.softmax(-1)  # a_t, eq. 7
        context = (weights[:, None] @ memory).squeeze(1)  # c_t = sum_s a_ts h_s
        combined = torch.tanh(self.combine(torch.cat([context, h], -1)))  # h~_t, eq. 5
        new = dict(state) | rnn_state
        if self.input_feeding:
            new["feed"] = combined
        return self.out(combined), weights, new

    def forward(self, tgt_in: Tensor, state: dict[str, Any], *,
                return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Teacher forcing: logits ``(N, T, V)`` (and the attention ``(N, T, S)``)."""
        logits, weights = [], []
        for t in range(tgt_in.shape[1]):
            lt, wt, state = self._step(tgt_in[:, t], state)
            logits.append(lt)
            weights.append(wt)
        out = torch.stack(logits, 1)
        return (out, torch.stack(weights, 1)) if return_weights else out

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        logits, _, state = self._step(tokens, state)
        return F.log_softmax(logits, -1), state
