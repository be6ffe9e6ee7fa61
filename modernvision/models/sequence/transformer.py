"""The Transformer encoder-decoder.

Paper: Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser, Polosukhin, "Attention Is
All You Need", 2017, arXiv:1706.03762. Sec. 3.1: the encoder is ``N`` layers of multi-head
self-attention and a position-wise feed-forward network (``FFN(x) = max(0, x W_1 + b_1) W_2 +
b_2``, Sec. 3.3), each sub-layer wrapped as ``LayerNorm(x + Sublayer(x))`` (post-norm); the
decoder adds cross-attention over the encoder output between its masked self-attention (a
position sees only earlier positions) and its FFN. Residual dropout ``P_drop`` on each
sub-layer output (Sec. 5.4). Embeddings times ``sqrt(d_model)`` plus sinusoidal positions
(Sec. 3.4-3.5) in :class:`TransformerSeq2Seq`.

:class:`Transformer` has ``nn.Transformer``'s constructor, forward signature and state-dict
keys, so either loads the other's weights and gives the same outputs. As torch, it also has
``norm_first=True`` (pre-norm, ``x + Sublayer(LayerNorm(x))``, as ViT and most later models
-- Xiong et al. 2020, arXiv:2002.04745) and a final LayerNorm after the encoder and the decoder
stacks (in both placements, as torch).

Departures: ``custom_encoder`` / ``custom_decoder`` are not accepted; ``activation`` is
``"relu"`` / ``"gelu"`` or a callable. Decoding one token at a time reuses each layer's keys
and values (a key/value cache): :meth:`TransformerDecoder.step`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision.layers import Embedding, MultiheadAttention, SinusoidalPositionalEncoding
from modernvision.layers.attention import causal_mask
from modernvision.models.sequence._decoding import beam_search, greedy_decode

__all__ = ["Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
           "TransformerEncoderLayer", "TransformerSeq2Seq"]


def _activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise ValueError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")


class _FeedForward(nn.Module):
    """Sec. 3.3: ``linear2(dropout(act(linear1(x))))``; module names as torch's layers."""

    def _init_ff(self, d_model: int, dim_feedforward: int, dropout: float, activation,
                 bias: bool, kw: dict) -> None:
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.activation = _activation(activation)

    def _ff(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class TransformerEncoderLayer(_FeedForward):
    """Self-attention + FFN, each with residual, dropout and LayerNorm (``nn``'s signature)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self._init_ff(d_model, dim_feedforward, dropout, activation, bias, kw)
        self.norm_first = norm_first
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def _sa(self, x: Tensor, mask: Tensor | None, pad: Tensor | None, is_causal: bool) -> Tensor:
        out = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=pad, need_weights=False,
                             is_causal=is_causal)[0]
        return self.dropout1(out)

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self.dropout2(self._ff(self.norm2(x)))
        x = self.norm1(x + self._sa(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self.dropout2(self._ff(x)))


class TransformerDecoderLayer(_FeedForward):
    """Masked self-attention, cross-attention over the memory, FFN (``nn``'s signature)."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, **kw)
        self._init_ff(d_model, dim_feedforward, dropout, activation, bias, kw)
        self.norm_first = norm_first
        self.batch_first = batch_first
        for i in (1, 2, 3):
            setattr(self, f"norm{i}", nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
            setattr(self, f"dropout{i}", nn.Dropout(dropout))

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        def sa(x: Tensor) -> Tensor:
            return self.dropout1(self.self_attn(
                x, x, x, attn_mask=tgt_mask, key_padding_mask=tgt_key_padding_mask,
                need_weights=False, is_causal=tgt_is_causal)[0])

        def ca(x: Tensor) -> Tensor:
            return self.dropout2(self.multihead_attn(
                x, memory, memory, attn_mask=memory_mask,
                key_padding_mask=memory_key_padding_mask, need_weights=False,
                is_causal=memory_is_causal)[0])

        x = tgt
        if self.norm_first:
            x = x + sa(self.norm1(x))
            x = x + ca(self.norm2(x))
            return x + self.dropout3(self._ff(self.norm3(x)))
        x = self.norm1(x + sa(x))
        x = self.norm2(x + ca(x))
        return self.norm3(x + self.dropout3(self._ff(x)))

    # -- one token at a time, batch first, with a key/value cache ------------------------
    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """The cross-attention's keys and values of ``memory: (N, S, E)``, computed once."""
        return self.multihead_attn.project(memory, "k"), self.multihead_attn.project(memory, "v")

    def step(self, x: Tensor, cache: dict[str, Tensor], memory_mask: Tensor | None
             ) -> tuple[Tensor, dict[str, Tensor]]:
        """``x: (N, 1, E)`` the newest position; ``cache`` holds this layer's self-attention
        keys/values so far (``k``, ``v``: ``(N, h, t, d_k)``) and the memory's (``mk``,
        ``mv``); ``memory_mask`` a float mask ``(N, 1, 1, S)``. No causal mask is needed: the
        cache holds only earlier positions."""
        sa_mod, ca_mod = self.self_attn, self.multihead_attn

        def sa(h: Tensor) -> Tensor:
            k = torch.cat([cache["k"], sa_mod.project(h, "k")], 2)
            v = torch.cat([cache["v"], sa_mod.project(h, "v")], 2)
            cache.update(k=k, v=v)
            return self.dropout1(sa_mod.attend(sa_mod.project(h, "q"), k, v,
                                               need_weights=False)[0])

        def ca(h: Tensor) -> Tensor:
            return self.dropout2(ca_mod.attend(ca_mod.project(h, "q"), cache["mk"], cache["mv"],
                                               memory_mask, need_weights=False)[0])

        cache = dict(cache)
        if self.norm_first:
            x = x + sa(self.norm1(x))
            x = x + ca(self.norm2(x))
            return x + self.dropout3(self._ff(self.norm3(x))), cache
        x = self.norm1(x + sa(x))
        x = self.norm2(x + ca(x))
        return self.norm3(x + self.dropout3(self._ff(x))), cache


class TransformerEncoder(nn.Module):
    """``num_layers`` copies of ``encoder_layer``, then ``norm`` (``nn``'s signature)."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(nn.Module):
    """``num_layers`` copies of ``decoder_layer``, then ``norm`` (``nn``'s signature)."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(decoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x

    def init_cache(self, memory: Tensor, memory_key_padding_mask: Tensor | None = None
                   ) -> dict[str, Any]:
        """The decoding state for batch-first ``memory: (N, S, E)``: per layer, empty
        self-attention keys/values and the memory's keys/values; the float memory mask."""
        n = memory.shape[0]
        layers = []
        for layer in self.layers:
            mk, mv = layer.memory_kv(memory)
            empty = mk.new_zeros(n, mk.shape[1], 0, mk.shape[3])
            layers.append({"k": empty, "v": empty, "mk": mk, "mv": mv})
        state: dict[str, Any] = {"layers": layers}
        if memory_key_padding_mask is not None:
            state["memory_mask"] = torch.zeros(
                n, 1, 1, memory.shape[1], dtype=memory.dtype, device=memory.device
            ).masked_fill(memory_key_padding_mask[:, None, None], float("-inf"))
        return state

    def step(self, x: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        """The output ``(N, 1, E)`` for the newest position ``x: (N, 1, E)`` (batch first)."""
        mask = state.get("memory_mask")
        layers = []
        for layer, cache in zip(self.layers, state["layers"], strict=True):
            x, cache = layer.step(x, cache, mask)
            layers.append(cache)
        x = self.norm(x) if self.norm is not None else x
        return x, dict(state, layers=layers)


class Transformer(nn.Module):
    """The encoder-decoder of Sec. 3 with ``nn.Transformer``'s interface and keys.

    Args:
        d_model: model width.
        nhead: attention heads.
        num_encoder_layers, num_decoder_layers: ``N`` of each stack.
        dim_feedforward: FFN hidden width ``d_ff``.
        dropout: ``P_drop``.
        activation: ``relu`` (the paper) or ``gelu``.
        layer_norm_eps: LayerNorm epsilon.
        batch_first: ``(N, L, E)`` tensors instead of ``(L, N, E)``.
        norm_first: pre-norm instead of the paper's post-norm.
        bias: biases in linear layers and LayerNorms.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 custom_encoder: None = None, custom_decoder: None = None,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        if custom_encoder is not None or custom_decoder is not None:
            raise ValueError("custom_encoder / custom_decoder are not supported; compose "
                             "TransformerEncoder / TransformerDecoder yourself")
        kw = {"device": device, "dtype": dtype}
        common = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                      layer_norm_eps=layer_norm_eps, batch_first=batch_first,
                      norm_first=norm_first, bias=bias, **kw)
        self.encoder = TransformerEncoder(
            TransformerEncoderLayer(d_model, nhead, **common), num_encoder_layers,
            nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        self.decoder = TransformerDecoder(
            TransformerDecoderLayer(d_model, nhead, **common), num_decoder_layers,
            nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        for p in self.parameters():  # as torch: Xavier-uniform on every matrix
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        return causal_mask(sz, device=device, dtype=dtype or torch.float32)

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Tensor | None = None,
                tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)


class TransformerSeq2Seq(nn.Module):
    """Token sequences to token sequences: embeddings ``* sqrt(d_model)`` + sinusoidal
    positions, a batch-first :class:`Transformer`, a linear generator; teacher-forced
    ``forward`` and cached ``greedy`` / ``beam`` decoding.

    Args:
        src_vocab, tgt_vocab: vocabulary sizes.
        bos, eos, pad: special tokens of the target (``pad`` is also the source padding).
        **transformer: :class:`Transformer`'s arguments (``batch_first`` is set).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, *, bos: int, eos: int, pad: int,
                 max_len: int = 512, **transformer: Any) -> None:
        super().__init__()
        self.transformer = Transformer(batch_first=True, **transformer)
        d = self.transformer.d_model
        dropout = transformer.get("dropout", 0.1)
        self.src_embed, self.tgt_embed = Embedding(src_vocab, d), Embedding(tgt_vocab, d)
        self.pos = SinusoidalPositionalEncoding(d, max_len, dropout)
        self.generator = nn.Linear(d, tgt_vocab)
        self.bos, self.eos, self.pad = bos, eos, pad
        self.scale = math.sqrt(d)

    def encode(self, src: Tensor, src_key_padding_mask: Tensor | None = None) -> Tensor:
        return self.transformer.encoder(self.pos(self.src_embed(src) * self.scale),
                                        src_key_padding_mask=src_key_padding_mask)

    def forward(self, src: Tensor, tgt_in: Tensor,
                src_key_padding_mask: Tensor | None = None) -> Tensor:
        """Teacher forcing: logits ``(N, T, V)``."""
        memory = self.encode(src, src_key_padding_mask)
        t = tgt_in.shape[1]
        out = self.transformer.decoder(
            self.pos(self.tgt_embed(tgt_in) * self.scale), memory,
            tgt_mask=causal_mask(t, device=src.device, dtype=memory.dtype),
            memory_key_padding_mask=src_key_padding_mask)
        return self.generator(out)

    def _state(self, src: Tensor, src_key_padding_mask: Tensor | None) -> dict[str, Any]:
        memory = self.encode(src, src_key_padding_mask)
        state = self.transformer.decoder.init_cache(memory, src_key_padding_mask)
        state["position"] = torch.zeros(src.shape[0], dtype=torch.long, device=src.device)
        return state

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        offset = int(state["position"][0])
        x = self.pos(self.tgt_embed(tokens[:, None]) * self.scale, offset=offset)
        out, state = self.transformer.decoder.step(x, state)
        state["position"] = state["position"] + 1
        return F.log_softmax(self.generator(out[:, 0]), -1), state

    @torch.no_grad()
    def greedy(self, src: Tensor, max_len: int,
               src_key_padding_mask: Tensor | None = None) -> Tensor:
        return greedy_decode(self.step, self._state(src, src_key_padding_mask), src.shape[0],
                             bos=self.bos, eos=self.eos, pad=self.pad, max_len=max_len,
                             device=src.device)

    @torch.no_grad()
    def beam(self, src: Tensor, max_len: int, beam_size: int = 4, length_penalty: float = 0.0,
             src_key_padding_mask: Tensor | None = None) -> Tensor:
        return beam_search(self.step, self._state(src, src_key_padding_mask), src.shape[0],
                           bos=self.bos, eos=self.eos, pad=self.pad, max_len=max_len,
                           beam_size=beam_size, length_penalty=length_penalty,
                           device=src.device)[0]
