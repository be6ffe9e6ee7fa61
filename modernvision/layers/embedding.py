"""Words as one-hot vectors, and an embedding as a linear map on them.

A token ``i`` of a vocabulary of ``V`` is the one-hot vector ``e_i`` in ``R^V``; an embedding is
the linear map ``x = W^T e_i`` with ``W: V x D``, i.e. row ``i`` of ``W``. :class:`Embedding`
computes it literally as that matrix product (``one_hot(tokens) @ weight``), which makes the
point of the notes, and is the same function as ``nn.Embedding`` (a row lookup, which is what
one would use for a large vocabulary): same ``weight`` key and shape, same ``padding_idx`` rule
(the padding row gets no gradient), same initialisation (N(0, 1), padding row zero).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Embedding", "one_hot"]


def one_hot(tokens: Tensor, num_classes: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot vectors of integer ``tokens: Tensor[...]`` -> ``Tensor[..., num_classes]``.

    Raises:
        ValueError: a token outside ``[0, num_classes)`` (there is no silent wrap-around).
    """
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be an integer tensor, got {tokens.dtype}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= num_classes):
        raise ValueError(f"tokens must lie in [0, {num_classes}), got values in "
                         f"[{int(tokens.min())}, {int(tokens.max())}]")
    # e_i: compare each token with 0..V-1
    return (tokens.unsqueeze(-1) == torch.arange(num_classes, device=tokens.device)).to(dtype)


class Embedding(nn.Module):
    """``x = one_hot(token) @ weight``: a ``V x D`` linear map on one-hot vectors.

    Args:
        num_embeddings: vocabulary size ``V``.
        embedding_dim: width ``D``.
        padding_idx: a token whose row starts at zero and receives no gradient (as
            ``nn.Embedding``'s).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int,
                 padding_idx: int | None = None, *, device: torch.device | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx must lie in [-{num_embeddings}, "
                                 f"{num_embeddings}), got {padding_idx}")
            padding_idx %= num_embeddings
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim, device=device,
                                               dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)
        if self.padding_idx is not None:
            with torch.no_grad():
                self.weight[self.padding_idx].zero_()

    def forward(self, tokens: Tensor) -> Tensor:
        """``tokens: Tensor[...]`` (integers) -> ``Tensor[..., D]``."""
        weight = self.weight
        if self.padding_idx is not None:
            # the padding row enters the product but, as nn.Embedding's, never learns
            keep = torch.ones(self.num_embeddings, 1, dtype=weight.dtype, device=weight.device)
            keep[self.padding_idx] = 0
            weight = weight * keep + (weight * (1 - keep)).detach()
        return one_hot(tokens, self.num_embeddings, dtype=weight.dtype) @ weight

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
