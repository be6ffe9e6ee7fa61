"""The controller: an LSTM that emits a child architecture token by token.

Paper: Zoph & Le 2017, arXiv:1611.01578, Sec. 3.1-3.3. For each layer the controller emits the
filter count, then the kernel size (each a softmax over the choices, the sampled token's
embedding fed back as the next input), then, at the layer's anchor point, one sigmoid per
earlier layer ``j`` deciding the skip ``j -> i``: ``P(j -> i) = sigmoid(v^T tanh(W_prev h_j +
W_curr h_i))`` (eq. in Sec. 3.3), ``h`` the anchor states. Its parameters are trained with
REINFORCE (Sec. 3.2): ``grad = sum_t grad log P(a_t) (R - b)``, ``b`` an exponential moving
average of past rewards.

Departures: one LSTM layer of 32 units (the paper: two of 35), one child per update (the paper
trains 800 children in parallel and updates asynchronously), an entropy bonus against early
collapse.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from modernvision.layers import LSTM, Embedding
from modernvision.nas.child import SearchSpace

__all__ = ["Controller"]


class Controller(nn.Module):
    """Samples architectures of a :class:`SearchSpace`; ``sample`` returns the architecture,
    the summed log-probability of its tokens and their summed entropy."""

    def __init__(self, space: SearchSpace, hidden: int = 32) -> None:
        super().__init__()
        self.space = space
        self.lstm = LSTM(hidden, hidden)
        self.start = nn.Parameter(torch.zeros(hidden))
        self.embed_filters = Embedding(len(space.filters), hidden)
        self.embed_kernel = Embedding(len(space.kernels), hidden)
        self.head_filters = nn.Linear(hidden, len(space.filters))
        self.head_kernel = nn.Linear(hidden, len(space.kernels))
        self.w_prev = nn.Linear(hidden, hidden, bias=False)
        self.w_curr = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, 1, bias=False)
        with torch.no_grad():
            self.embed_filters.weight.mul_(0.1)
            self.embed_kernel.weight.mul_(0.1)

    def _step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        out, state = self.lstm(x.view(1, 1, -1), state)
        return out.view(-1), state

    def sample(self, generator: torch.Generator | None = None
               ) -> tuple[list[dict[str, Any]], Tensor, Tensor]:
        log_prob, entropy = torch.zeros(()), torch.zeros(())
        x, state, anchors, arch = self.start, None, [], []

        def categorical(logits: Tensor) -> int:
            nonlocal log_prob, entropy
            logp = logits.log_softmax(-1)
            choice = int(torch.multinomial(logp.exp(), 1, generator=generator))
            log_prob = log_prob + logp[choice]
            entropy = entropy - (logp.exp() * logp).sum()
            return choice

        for i in range(self.space.num_layers):
            h, state = self._step(x, state)
            f = categorical(self.head_filters(h))
            h, state = self._step(self.embed_filters(torch.tensor(f)), state)
            k = categorical(self.head_kernel(h))
            h, state = self._step(self.embed_kernel(torch.tensor(k)), state)
            skips = []
            for j in range(i - 1):  # anchor point: one sigmoid per earlier layer
                p = torch.sigmoid(self.v(torch.tanh(self.w_prev(anchors[j]) + self.w_curr(h))))
                p = p.view(())
                take = bool(torch.rand((), generator=generator) < p)
                log_prob = log_prob + torch.log(p if take else 1 - p)
                entropy = entropy - (p * p.log() + (1 - p) * (1 - p).log())
                if take:
                    skips.append(j)
            anchors.append(h)
            arch.append({"filters": self.space.filters[f], "kernel": self.space.kernels[k],
                         "skips": skips})
            x = h
        return arch, log_prob, entropy
