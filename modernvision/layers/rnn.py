"""Recurrent networks written out: the Elman RNN, LSTM and GRU, stacked, optionally
bidirectional, loading ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` state dicts under their own keys.

Papers:
    * RNN: Elman, "Finding Structure in Time", Cognitive Science 1990.
      ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.
    * LSTM: Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997, with
      the forget gate of Gers, Schmidhuber & Cummins 2000 (no peepholes):
      ``i, f, g, o = sigma, sigma, tanh, sigma (W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``,
      ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)``.
    * GRU: Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for
      Statistical Machine Translation", 2014, arXiv:1406.1078, in PyTorch's form (the reset gate
      multiplies ``W_hn h + b_hn``, cuDNN's variant): ``r, z = sigma(...)``,
      ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h_t = (1 - z) * n + z * h_{t-1}``.

The gate blocks are stacked by rows in ``weight_ih_l{k}`` in PyTorch's order (LSTM ``i, f, g,
o``; GRU ``r, z, n``), so a state dict moves between these modules and torch's unchanged.
Forward signature and return value are torch's: ``(output, h_n)`` (LSTM: ``(output, (h_n,
c_n))``), ``batch_first`` affecting ``input``/``output`` only, unbatched ``(L, H_in)`` inputs
accepted. Not supported: packed sequences and LSTM ``proj_size``.

The input projection ``W_ih x_t`` of a layer is computed for all time steps in one matrix
product; only the recurrence ``W_hh h_{t-1}`` runs step by step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GRU", "LSTM", "RNN"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class _RecurrentBase(nn.Module):
    mode: str = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, device: torch.device | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        gates = _GATES[self.mode] * hidden_size
        directions = 2 if bidirectional else 1
        kw = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                s = f"_l{layer}{suffix}"
                self.register_parameter("weight_ih" + s,
                                        nn.Parameter(torch.empty(gates, in_size, **kw)))
                self.register_parameter("weight_hh" + s,
                                        nn.Parameter(torch.empty(gates, hidden_size, **kw)))
                if bias:
                    self.register_parameter("bias_ih" + s, nn.Parameter(torch.empty(gates, **kw)))
                    self.register_parameter("bias_hh" + s, nn.Parameter(torch.empty(gates, **kw)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias, as torch."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _params(self, layer: int, reverse: bool) -> tuple[Tensor, Tensor, Tensor | None,
                                                          Tensor | None]:
        s = f"_l{layer}{'_reverse' if reverse else ''}"
        get = self.__getattr__
        return (get("weight_ih" + s), get("weight_hh" + s),
                get("bias_ih" + s) if self.bias else None,
                get("bias_hh" + s) if self.bias else None)

    def _cell(self, gi: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """One step from the precomputed input part ``gi = W_ih x_t + b_ih``."""
        gh = F.linear(h, w_hh, b_hh)
        if self.mode == "RNN_TANH":
            return torch.tanh(gi + gh), None
        if self.mode == "RNN_RELU":
            return torch.relu(gi + gh), None
        if self.mode == "LSTM":
            i, f, g, o = (gi + gh).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c
        ir, iz, in_ = gi.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        return (1 - z) * n + z * h, None

    def _run(self, x: Tensor, h0: Tensor, c0: Tensor | None) -> tuple[Tensor, Tensor,
                                                                      Tensor | None]:
        """``x: (L, N, H_in)``, ``h0/c0: (layers * dirs, N, H)`` -> output, h_n, c_n."""
        directions = 2 if self.bidirectional else 1
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(directions):
                w_ih, w_hh, b_ih, b_hh = self._params(layer, d == 1)
                gi_all = F.linear(x, w_ih, b_ih)  # (L, N, G*H): every step's input part at once
                k = layer * directions + d
                h, c = h0[k], None if c0 is None else c0[k]
                steps = range(x.shape[0] - 1, -1, -1) if d == 1 else range(x.shape[0])
                ys: list[Tensor] = [h] * x.shape[0]
                for t in steps:
                    h, c = self._cell(gi_all[t], h, c, w_hh, b_hh)
                    ys[t] = h
                outs.append(torch.stack(ys))
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if directions == 1 else torch.cat(outs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, torch.stack(h_n), (torch.stack(c_n) if c0 is not None else None)

    def _forward(self, x: Tensor, hx: Tensor | None, cx: Tensor | None):
        if x.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__} expects input (L, H_in) or 3-D batched "
                             f"input, got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input size {x.shape[-1]} != "
                             f"input_size {self.input_size}")
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)
            hx = None if hx is None else hx.unsqueeze(1)
            cx = None if cx is None else cx.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (N, L, H) -> (L, N, H)
        n = x.shape[1]
        k = self.num_layers * (2 if self.bidirectional else 1)
        if hx is None:
            hx = x.new_zeros(k, n, self.hidden_size)
        if self.mode == "LSTM" and cx is None:
            cx = x.new_zeros(k, n, self.hidden_size)
        if hx.shape != (k, n, self.hidden_size):
            raise ValueError(f"{type(self).__name__}: expected hidden state of shape "
                             f"{(k, n, self.hidden_size)}, got {tuple(hx.shape)}")
        out, h_n, c_n = self._run(x, hx, cx)
        if unbatched:
            out, h_n = out.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, h_n, c_n

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RecurrentBase):
    """The Elman RNN, ``nn.RNN``'s signature (``nonlinearity`` ``'tanh'`` or ``'relu'``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *,
                 device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``input: (L, N, H_in)`` (``(N, L, H_in)`` batch first) -> ``(output, h_n)``."""
        out, h_n, _ = self._forward(input, hx, None)
        return out, h_n


class GRU(_RecurrentBase):
    """The gated recurrent unit, ``nn.GRU``'s signature."""

    mode = "GRU"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out, h_n, _ = self._forward(input, hx, None)
        return out, h_n


class LSTM(_RecurrentBase):
    """Long short-term memory, ``nn.LSTM``'s signature (without ``proj_size``)."""

    mode = "LSTM"

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h0, c0 = (None, None) if hx is None else hx
        out, h_n, c_n = self._forward(input, h0, c0)
        return out, (h_n, c_n)
