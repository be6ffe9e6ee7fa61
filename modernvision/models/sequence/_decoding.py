"""Greedy and beam-search decoding for any step-wise decoder.

A decoder exposes ``step(tokens: Tensor[B], state) -> (log_probs: Tensor[B, V], state)``:
the log-probabilities of the next token given the previous one and its state (an RNN's hidden
state, a Transformer's key/value cache -- any nest of dicts / lists / tuples of tensors whose
first dimension is the batch). Beam search reorders that state with ``index_select`` on dim 0.

Beam search (as in Sutskever, Vinyals & Le 2014, arXiv:1409.3215, Sec. 3.1; the length
penalty of Wu et al. 2016, arXiv:1609.08144, eq. 14, ``((5 + |Y|) / 6)^alpha``, off by default):
keep the ``K`` best prefixes by total log-probability; a prefix that has emitted ``eos`` is
finished and stays in the beam with its score, extended only by ``pad`` at no cost. With
``K = 1`` it is exactly greedy decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["beam_search", "greedy_decode", "map_state"]

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]


def map_state(state: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """Apply ``fn`` to every tensor in a nest of dicts / lists / tuples."""
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, dict):
        return {k: map_state(v, fn) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(map_state(v, fn) for v in state)
    return state


def greedy_decode(step: StepFn, state: Any, batch_size: int, *, bos: int, eos: int, pad: int,
                  max_len: int, device: torch.device | None = None) -> Tensor:
    """The most likely next token at each step, from ``bos``, for ``max_len`` steps or until
    every sequence has emitted ``eos``.

    Returns:
        ``Tensor[B, T]`` (``T <= max_len``): the tokens after ``bos``, ``eos`` included, then
        ``pad``.
    """
    tokens = torch.full((batch_size,), bos, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    out = []
    for _ in range(max_len):
        log_probs, state = step(tokens, state)
        tokens = log_probs.argmax(-1).masked_fill(done, pad)
        out.append(tokens)
        done |= tokens == eos
        if bool(done.all()):
            break
    return torch.stack(out, 1)


def beam_search(step: StepFn, state: Any, batch_size: int, *, bos: int, eos: int, pad: int,
                max_len: int, beam_size: int = 4, length_penalty: float = 0.0,
                device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """The best of ``beam_size`` hypotheses per item (see the module docstring).

    Args:
        state: the decoder state for ``batch_size`` items (expanded to ``B * K`` here).
        length_penalty: ``alpha`` of the final ranking (0: plain sum of log-probabilities).

    Returns:
        ``(tokens: Tensor[B, T], scores: Tensor[B])``; tokens as :func:`greedy_decode`'s.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    b, k = batch_size, beam_size
    state = map_state(state, lambda t: t.repeat_interleave(k, dim=0))  # item-major: (B*K, ...)
    tokens = torch.full((b * k,), bos, dtype=torch.long, device=device)
    scores = torch.zeros(b, k, device=device)
    scores[:, 1:] = float("-inf")  # all beams start as the same prefix: keep only one
    finished = torch.zeros(b * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(b * k, device=device)
    history = torch.empty(b * k, 0, dtype=torch.long, device=device)
    for _ in range(max_len):
        log_probs, state = step(tokens, state)
        log_probs = log_probs.float()
        v = log_probs.shape[-1]
        # a finished hypothesis extends only by pad, at no cost
        frozen = torch.full_like(log_probs, float("-inf"))
        frozen[:, pad] = 0.0
        log_probs = torch.where(finished[:, None], frozen, log_probs)
        total = (scores.view(b * k, 1) + log_probs).view(b, k * v)
        scores, flat = total.topk(k, dim=1)  # (B, K)
        parent = (flat // v) + torch.arange(b, device=device)[:, None] * k  # rows in B*K
        parent, tokens = parent.view(-1), (flat % v).view(-1)
        state = map_state(state, lambda t, rows=parent: t.index_select(0, rows))
        history = torch.cat([history.index_select(0, parent), tokens[:, None]], dim=1)
        lengths = lengths.index_select(0, parent) + (~finished.index_select(0, parent)).float()
        finished = finished.index_select(0, parent) | (tokens == eos)
        if bool(finished.all()):
            break
    ranked = scores.view(-1)
    if length_penalty:
        ranked = ranked / ((5.0 + lengths) / 6.0) ** length_penalty
    best = ranked.view(b, k).argmax(1) + torch.arange(b, device=device) * k
    return history[best], scores.view(-1)[best]
