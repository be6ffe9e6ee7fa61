"""Image to sequence: a CNN encoder read by a decoder through cross-attention.

A small CNN turns the image into feature maps at strides 4, 8 and 16; each attended stage (by
default the two deepest, strides 8 and 16, to keep the CPU cost down) is flattened
to a token sequence (``(B, C, h, w) -> (B, h*w, d_model)`` by a 1x1 projection, plus a 2-D
sinusoidal position code, so that attention knows where a token sits). Cross-attention lets a
decoder read any ``L x d_model`` memory, so a decoder can read them all:

* :class:`PerStageTransformerDecoder` -- a pre-norm Transformer decoder (Vaswani et al. 2017,
  arXiv:1706.03762, with ViT's pre-norm placement) whose every layer has masked
  self-attention, then **one cross-attention module per CNN stage** (the finest first, each
  with its own residual and LayerNorm), then the feed-forward network. Decoding reuses keys
  and values (a key/value cache; the memory's are computed once).
* :class:`RNNAttentionImageDecoder` -- the RNN alternative: a GRU with Luong's dot-product
  attention (arXiv:1508.04025, :mod:`.rnn_attention`) over the tokens of all stages together,
  its state initialised from their mean, as in "Show, Attend and Tell" (Xu et al. 2015,
  arXiv:1502.03044, Sec. 3.1.2) -- with Luong's dot score instead of Xu's MLP score.

:class:`ImageToSequence` is the trainable model: teacher-forced cross entropy
(``{"loss_seq": ...}``) in training mode, decoded tokens in eval mode (greedy, or beam search
with ``beam_size > 1``). Registered as ``string_reader_transformer`` and ``string_reader_rnn``
for the digit strings of ``modernvision data make-strings``.

The per-stage cross-attention is the notes' design, not a paper's; the CNN is ours (a strided
3x3 stem, then two 3x3 conv-BN-ReLU per stage, the first with stride 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.layers import (
    ConvNormAct,
    Embedding,
    MultiheadAttention,
    SinusoidalPositionalEncoding,
    sinusoidal_2d,
)
from modernvision.layers.attention import causal_mask
from modernvision.models.registry import register_model
from modernvision.models.sequence._decoding import beam_search, greedy_decode
from modernvision.models.sequence.rnn_attention import AttentionDecoder

__all__ = ["ConvEncoder", "ImageToSequence", "ImageToSequenceConfig",
           "PerStageTransformerDecoder", "RNNAttentionImageDecoder", "Vocabulary",
           "string_reader_rnn", "string_reader_transformer"]

PAD, BOS, EOS = 0, 1, 2


@dataclass(frozen=True)
class Vocabulary:
    """Tokens ``<pad>=0, <bos>=1, <eos>=2``, then one per character of ``alphabet``."""

    alphabet: str

    @property
    def size(self) -> int:
        return 3 + len(self.alphabet)

    def encode(self, text: str, length: int) -> Tensor:
        """``[bos, chars..., eos, pad...]`` of ``length`` tokens."""
        ids = [BOS] + [3 + self.alphabet.index(c) for c in text] + [EOS]
        if len(ids) > length:
            raise ValueError(f"text {text!r} needs {len(ids)} tokens, more than {length}")
        return torch.tensor(ids + [PAD] * (length - len(ids)), dtype=torch.long)

    def decode(self, tokens: Tensor | list[int]) -> str:
        """Characters up to the first ``eos`` (specials skipped)."""
        out = []
        for t in (tokens.tolist() if isinstance(tokens, Tensor) else tokens):
            if t == EOS:
                break
            if t >= 3:
                out.append(self.alphabet[t - 3])
        return "".join(out)


@dataclass(frozen=True)
class ImageToSequenceConfig:
    """Encoder widths and decoder size.

    Attributes:
        widths: channels of the stem (stride 2) and of the stages (strides 4, 8, 16, ...).
        attend_stages: how many of the deepest stages the decoder reads (one memory each).
        d_model: token width of the memories and the decoder.
        nhead: attention heads (Transformer decoder).
        num_layers: decoder layers.
        dim_feedforward: FFN width (Transformer decoder).
        dropout: dropout in the decoder.
        max_length: the longest string (decoding stops after ``max_length + 1`` tokens).
    """

    widths: tuple[int, ...] = (16, 32, 64, 128)
    attend_stages: int = 2
    d_model: int = 64
    nhead: int = 4
    num_layers: int = 2
    dim_feedforward: int = 128
    dropout: float = 0.1
    max_length: int = 6

    def __post_init__(self) -> None:
        if len(self.widths) < 2:
            raise InvalidArgumentError(f"widths needs a stem and at least one stage, got "
                                       f"{self.widths}")
        if self.d_model % self.nhead or self.d_model % 4:
            raise InvalidArgumentError(f"d_model ({self.d_model}) must be divisible by nhead "
                                       f"({self.nhead}) and by 4")
        if not 1 <= self.attend_stages <= len(self.widths) - 1:
            raise InvalidArgumentError(f"attend_stages must be 1..{len(self.widths) - 1} (the "
                                       f"stages of widths {self.widths}), got "
                                       f"{self.attend_stages}")
        if self.max_length < 1 or self.num_layers < 1:
            raise InvalidArgumentError("max_length and num_layers must be >= 1")


class ConvEncoder(nn.Module):
    """Images ``(B, C, H, W)`` -> one token sequence ``(B, h_k * w_k, d_model)`` per attended
    stage (the ``attend_stages`` deepest), finest first."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], d_model: int,
                 attend_stages: int) -> None:
        super().__init__()
        self.stem = ConvNormAct(in_channels, widths[0], 3, stride=2)
        self.stages = nn.ModuleList(
            nn.Sequential(ConvNormAct(c_in, c_out, 3, stride=2), ConvNormAct(c_out, c_out, 3))
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True))
        self.first_attended = len(self.stages) - attend_stages
        self.proj = nn.ModuleList(nn.Conv2d(c, d_model, 1) for c in widths[1:][
            self.first_attended:])
        self.d_model = d_model

    def forward(self, images: Tensor) -> list[Tensor]:
        x = self.stem(images)
        tokens = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < self.first_attended:
                continue
            m = self.proj[i - self.first_attended](x)
            b, d, h, w = m.shape
            pos = sinusoidal_2d(h, w, d, dtype=m.dtype, device=m.device)
            tokens.append(m.flatten(2).transpose(1, 2) + pos)  # (B, D, h, w) -> (B, h*w, D)
        return tokens


class _PerStageLayer(nn.Module):
    """Pre-norm: ``x += SA(LN(x))``; for each stage ``k``: ``x += CA_k(LN_k(x), M_k)``;
    ``x += FFN(LN(x))``."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float,
                 num_memories: int) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, batch_first=True)
        self.norm_self = nn.LayerNorm(d_model)
        self.cross_attn = nn.ModuleList(MultiheadAttention(d_model, nhead, dropout,
                                                           batch_first=True)
                                        for _ in range(num_memories))
        self.norm_cross = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(num_memories))
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.GELU(),
                                nn.Dropout(dropout), nn.Linear(dim_feedforward, d_model))
        self.drop = nn.Dropout(dropout)

    def memory_kv(self, memories: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
        return [(ca.project(m, "k"), ca.project(m, "v"))
                for ca, m in zip(self.cross_attn, memories, strict=True)]

    def _cross_and_ff(self, x: Tensor, kv: list[tuple[Tensor, Tensor]]) -> Tensor:
        for ca, norm, (k, v) in zip(self.cross_attn, self.norm_cross, kv, strict=True):
            x = x + self.drop(ca.attend(ca.project(norm(x), "q"), k, v, need_weights=False)[0])
        return x + self.drop(self.ff(self.norm_ff(x)))

    def forward(self, x: Tensor, kv: list[tuple[Tensor, Tensor]], mask: Tensor) -> Tensor:
        h = self.norm_self(x)
        sa = self.self_attn
        x = x + self.drop(sa.attend(sa.project(h, "q"), sa.project(h, "k"), sa.project(h, "v"),
                                    mask, need_weights=False)[0])
        return self._cross_and_ff(x, kv)

    def step(self, x: Tensor, cache: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        h = self.norm_self(x)
        sa = self.self_attn
        k = torch.cat([cache["k"], sa.project(h, "k")], 2)
        v = torch.cat([cache["v"], sa.project(h, "v")], 2)
        x = x + self.drop(sa.attend(sa.project(h, "q"), k, v, need_weights=False)[0])
        return self._cross_and_ff(x, cache["memory"]), dict(cache, k=k, v=v)


class PerStageTransformerDecoder(nn.Module):
    """Transformer decoder with one cross-attention module per memory (see the module)."""

    def __init__(self, vocab_size: int, config: ImageToSequenceConfig, num_memories: int
                 ) -> None:
        super().__init__()
        d = config.d_model
        self.embed = Embedding(vocab_size, d)
        self.pos = SinusoidalPositionalEncoding(d, config.max_length + 2, config.dropout)
        self.layers = nn.ModuleList(
            _PerStageLayer(d, config.nhead, config.dim_feedforward, config.dropout,
                           num_memories) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(d)
        self.generator = nn.Linear(d, vocab_size)
        self.scale = math.sqrt(d)

    def initial_state(self, memories: list[Tensor]) -> dict[str, Any]:
        layers = []
        for layer in self.layers:
            kv = layer.memory_kv(memories)
            k0 = kv[0][0]
            empty = k0.new_zeros(k0.shape[0], k0.shape[1], 0, k0.shape[3])
            layers.append({"k": empty, "v": empty, "memory": kv})
        return {"layers": layers, "position": torch.zeros(memories[0].shape[0],
                                                          dtype=torch.long,
                                                          device=memories[0].device)}

    def forward(self, tgt_in: Tensor, state: dict[str, Any]) -> Tensor:
        x = self.pos(self.embed(tgt_in) * self.scale)
        mask = causal_mask(tgt_in.shape[1], device=x.device, dtype=x.dtype)
        for layer, cache in zip(self.layers, state["layers"], strict=True):
            x = layer(x, cache["memory"], mask)
        return self.generator(self.norm(x))

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        x = self.pos(self.embed(tokens[:, None]) * self.scale, offset=int(state["position"][0]))
        layers = []
        for layer, cache in zip(self.layers, state["layers"], strict=True):
            x, cache = layer.step(x, cache)
            layers.append(cache)
        logits = self.generator(self.norm(x[:, 0]))
        return F.log_softmax(logits, -1), {"layers": layers, "position": state["position"] + 1}


class RNNAttentionImageDecoder(nn.Module):
    """A GRU with dot-product attention over all stages' tokens (see the module)."""

    def __init__(self, vocab_size: int, config: ImageToSequenceConfig, num_memories: int
                 ) -> None:
        super().__init__()
        d = config.d_model
        self.init = nn.Linear(d, d)
        self.decoder = AttentionDecoder(vocab_size, d, d, num_layers=config.num_layers,
                                        cell="gru", dropout=config.dropout)

    def initial_state(self, memories: list[Tensor]) -> dict[str, Any]:
        memory = torch.cat(memories, 1)
        context = torch.tanh(self.init(memory.mean(1)))
        return self.decoder.initial_state(context, memory)

    def forward(self, tgt_in: Tensor, state: dict[str, Any]) -> Tensor:
        return self.decoder(tgt_in, state)

    def step(self, tokens: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        return self.decoder.step(tokens, state)


class ImageToSequence(nn.Module):
    """CNN encoder + a sequence decoder; the trainable model of the sequence job.

    ``forward(images, targets)`` in training mode: ``{"loss_seq": CE}`` of the teacher-forced
    next-token logits (``targets``: ``[bos, chars..., eos, pad...]``, pad ignored).
    ``forward(images)`` in eval mode: decoded tokens ``(B, T)`` (``eos``, then ``pad``).

    Args:
        decoder: ``"transformer"`` (:class:`PerStageTransformerDecoder`) or ``"rnn"``
            (:class:`RNNAttentionImageDecoder`).
        alphabet: the characters.
        config: sizes.
        in_channels: image channels.
        beam_size: 1 for greedy decoding.
        label_smoothing: of the cross entropy.
    """

    def __init__(self, decoder: str, alphabet: str, config: ImageToSequenceConfig, *,
                 in_channels: int = 1, beam_size: int = 1, label_smoothing: float = 0.0
                 ) -> None:
        super().__init__()
        kinds = {"transformer": PerStageTransformerDecoder, "rnn": RNNAttentionImageDecoder}
        if decoder not in kinds:
            raise InvalidArgumentError(f"decoder must be transformer or rnn, got {decoder!r}")
        if beam_size < 1:
            raise InvalidArgumentError(f"beam_size must be >= 1, got {beam_size}")
        self.vocab = Vocabulary(alphabet)
        self.config = config
        self.in_channels = in_channels
        self.beam_size = beam_size
        self.label_smoothing = label_smoothing
        self.encoder = ConvEncoder(in_channels, config.widths, config.d_model,
                                   config.attend_stages)
        self.decoder = kinds[decoder](self.vocab.size, config, config.attend_stages)

    def _state(self, images: Tensor) -> dict[str, Any]:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects images (B, {self.in_channels}, H, "
                             f"W), got {tuple(images.shape)}")
        return self.decoder.initial_state(self.encoder(images))

    def forward(self, images: Tensor, targets: Tensor | None = None) -> Any:
        if self.training:
            if targets is None:
                raise ValueError("training mode needs targets (B, T) of token ids")
            logits = self.decoder(targets[:, :-1], self._state(images))
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets[:, 1:].flatten(),
                                   ignore_index=PAD, label_smoothing=self.label_smoothing)
            return {"loss_seq": loss}
        return self.decode(images)

    @torch.no_grad()
    def decode(self, images: Tensor, beam_size: int | None = None) -> Tensor:
        beam = beam_size or self.beam_size
        kw = dict(bos=BOS, eos=EOS, pad=PAD, max_len=self.config.max_length + 1,
                  device=images.device)
        state = self._state(images)
        if beam == 1:
            return greedy_decode(self.decoder.step, state, images.shape[0], **kw)
        return beam_search(self.decoder.step, state, images.shape[0], beam_size=beam, **kw)[0]

    def read(self, images: Tensor, beam_size: int | None = None) -> list[str]:
        """The strings in ``images``."""
        return [self.vocab.decode(t) for t in self.decode(images, beam_size)]


def _build(decoder: str, *, alphabet: str, max_length: int, in_channels: int, beam_size: int,
           label_smoothing: float, num_classes: int | None, **overrides: Any) -> ImageToSequence:
    if num_classes is not None:
        raise InvalidArgumentError("string readers take alphabet=..., not num_classes")
    fields = set(ImageToSequenceConfig.__dataclass_fields__) - {"max_length"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise InvalidArgumentError(f"unknown keyword(s) {unknown} for a string reader; "
                                   f"expected some of {sorted(fields)}")
    if "widths" in overrides:
        overrides["widths"] = tuple(overrides["widths"])
    config = ImageToSequenceConfig(max_length=max_length, **overrides)
    return ImageToSequence(decoder, alphabet, config, in_channels=in_channels,
                           beam_size=beam_size, label_smoothing=label_smoothing)


@register_model(task="sequence")
def string_reader_transformer(*, alphabet: str = "0123456789", max_length: int = 6,
                              in_channels: int = 1, beam_size: int = 1,
                              label_smoothing: float = 0.0, num_classes: int | None = None,
                              **overrides: Any) -> ImageToSequence:
    """CNN + Transformer decoder with one cross-attention module per CNN stage."""
    return _build("transformer", alphabet=alphabet, max_length=max_length,
                  in_channels=in_channels, beam_size=beam_size,
                  label_smoothing=label_smoothing, num_classes=num_classes, **overrides)


@register_model(task="sequence")
def string_reader_rnn(*, alphabet: str = "0123456789", max_length: int = 6,
                      in_channels: int = 1, beam_size: int = 1, label_smoothing: float = 0.0,
                      num_classes: int | None = None, **overrides: Any) -> ImageToSequence:
    """CNN + GRU decoder with dot-product attention over all stages' tokens."""
    return _build("rnn", alphabet=alphabet, max_length=max_length, in_channels=in_channels,
                  beam_size=beam_size, label_smoothing=label_smoothing,
                  num_classes=num_classes, **overrides)
