"""Retrieval metrics: Recall@K, precision@1, R-precision and MAP@R.

Definitions follow pytorch-metric-learning's ``AccuracyCalculator`` (and "A Metric Learning
Reality Check", Musgrave, Belongie and Lim, 2020, arXiv:2003.08505, sec. 3.2), which is the
reference in the tests: each query ranks the reference set by Euclidean distance; ``R`` is the
number of references that share its label.

* precision@1: the nearest reference has the query's label.
* Recall@K (as in image retrieval papers, e.g. Oh Song et al., arXiv:1511.06452): at least one
  of the ``K`` nearest has the query's label (Recall@1 = precision@1).
* R-precision: the fraction of the ``R`` nearest with the query's label.
* MAP@R: ``1/R sum_{i<=R} P(i) rel(i)``, the mean average precision over the first ``R``.

With ``reference=None`` each query is searched among the other queries (leave-one-out).
Queries whose label no reference has (``R = 0``) are left out, as the reference does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from modernvision._errors import InvalidArgumentError
from modernvision.retrieval.index import exact_knn


def retrieval_metrics(query: Tensor, query_labels: Tensor, reference: Tensor | None = None,
                      reference_labels: Tensor | None = None, *,
                      ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """``recall@K`` for each ``K`` in ``ks``, ``precision_at_1``, ``r_precision``,
    ``map_at_r`` (floats) and ``queries`` (how many were scored).

    Args:
        query: ``[Q, D]`` embeddings.
        query_labels: ``[Q]`` integer labels.
        reference: ``[N, D]`` (None: leave-one-out among the queries).
        reference_labels: ``[N]``.
        ks: the cut-offs of Recall@K.
    """
    query = torch.as_tensor(query).float()
    query_labels = torch.as_tensor(query_labels)
    loo = reference is None
    if loo:
        reference, reference_labels = query, query_labels
    reference = torch.as_tensor(reference).float()
    reference_labels = torch.as_tensor(reference_labels)
    if query.dim() != 2 or reference.dim() != 2 or query.shape[1] != reference.shape[1]:
        raise InvalidArgumentError(f"query and reference must be [Q, D] and [N, D] with one D, "
                                   f"got {list(query.shape)} and {list(reference.shape)}")
    if query_labels.shape != (len(query),) or reference_labels.shape != (len(reference),):
        raise InvalidArgumentError("one label per query and per reference embedding expected")
    if any(not isinstance(k, int) or k < 1 for k in ks):
        raise InvalidArgumentError(f"ks must be positive integers, got {list(ks)}")
    # R per query: references with its label (minus itself when leave-one-out)
    counts = (query_labels[:, None] == reference_labels[None, :]).sum(1) - int(loo)
    keep = counts > 0
    n_ref = len(reference) - int(loo)
    out: dict[str, float] = {}
    if not keep.any() or n_ref < 1:
        nan = float("nan")
        return {**{f"recall@{k}": nan for k in ks}, "precision_at_1": nan,
                "r_precision": nan, "map_at_r": nan, "queries": 0}
    k_max = min(n_ref, max(int(counts.max()), *ks))
    q_idx = torch.where(keep)[0]
    if loo:
        # Leave-one-out: search the full set, masking each query's own row.
        _, nn_idx = exact_knn(query, reference, k_max, exclude_self=True)
        nn_idx = nn_idx[q_idx]
    else:
        _, nn_idx = exact_knn(query[q_idx], reference, k_max)
    hits = reference_labels[nn_idx] == query_labels[q_idx, None]  # (Q', k_max)
    r = counts[q_idx]
    for k in ks:
        out[f"recall@{k}"] = float(hits[:, :k].any(1).double().mean())
    out["precision_at_1"] = float(hits[:, 0].double().mean())
    within_r = torch.arange(k_max)[None, :] < r[:, None]
    rel = hits & within_r
    out["r_precision"] = float((rel.sum(1).double() / r).mean())
    precision_at_i = rel.cumsum(1).double() / torch.arange(1, k_max + 1)[None, :]
    out["map_at_r"] = float(((precision_at_i * rel).sum(1) / r).mean())
    out["queries"] = int(len(q_idx))
    return out
