"""Nearest-neighbour search over embeddings: exact (PyTorch) or faiss (flat, IVF, HNSW).

All backends rank by Euclidean (L2) distance and return it unsquared. On L2-normalised
embeddings this is the same order as cosine similarity (``||a - b||^2 = 2 - 2 a.b``).

* ``exact``: brute force in PyTorch, ``||q||^2 - 2 q.x + ||x||^2`` by matrix products over
  chunks of the gallery (memory ``O(queries x chunk)``), then ``topk``.
* ``faiss-flat``: faiss's ``IndexFlatL2``, also exact: the same neighbours as ``exact`` (tested).
* ``faiss-ivf``: ``IndexIVFFlat`` — "Video Google" inverted files over k-means cells (Sivic and
  Zisserman, ICCV 2003; as in Jegou, Douze and Schmid, TPAMI 2011): ``nlist`` cells (default
  ``4 sqrt(N)``), ``nprobe`` of them searched per query.
* ``faiss-hnsw``: ``IndexHNSWFlat`` — "Efficient and robust approximate nearest neighbor search
  using Hierarchical Navigable Small World graphs" (Malkov and Yashunin, 2016, arXiv:1603.09320):
  ``M`` links per node, ``efConstruction`` / ``efSearch`` beam widths.

The approximate backends trade recall for speed; ``bench/retrieval.md`` measures both.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from modernvision._errors import InvalidArgumentError, unknown_name

#: ``KNNIndex`` backends.
BACKENDS = ("exact", "faiss-flat", "faiss-ivf", "faiss-hnsw")


def _as_matrix(x: Tensor | np.ndarray, dim: int | None, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim):
        want = f"[N, {dim}]" if dim is not None else "[N, D]"
        raise InvalidArgumentError(f"{name} must be a matrix {want}, got shape {list(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidArgumentError(f"{name} must be floating point, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def exact_knn(queries: Tensor, reference: Tensor, k: int, *, exclude_self: bool = False,
              chunk: int = 65536) -> tuple[Tensor, Tensor]:
    """Brute-force k nearest neighbours by Euclidean distance.

    Args:
        queries: ``[Q, D]``.
        reference: ``[N, D]``.
        k: neighbours per query (at most ``N``, or ``N - 1`` with ``exclude_self``).
        exclude_self: ``queries`` are ``reference[:Q]``; a query is not its own neighbour.
        chunk: gallery rows per matrix product.

    Returns:
        ``(distances [Q, k], indices [Q, k] int64)``, nearest first.
    """
    q_sq = queries.pow(2).sum(1, keepdim=True)
    best_d = torch.full((queries.shape[0], 0), math.inf, dtype=queries.dtype)
    best_i = torch.zeros((queries.shape[0], 0), dtype=torch.long)
    rows = torch.arange(queries.shape[0])
    for start in range(0, reference.shape[0], chunk):
        part = reference[start:start + chunk]
        # (Q, D) x (D, C) -> (Q, C) squared distances
        d = (q_sq - 2 * queries @ part.T + part.pow(2).sum(1)[None, :]).clamp_min_(0)
        if exclude_self:
            inside = (rows >= start) & (rows < start + part.shape[0])
            d[rows[inside], rows[inside] - start] = math.inf
        idx = torch.arange(start, start + part.shape[0]).expand(queries.shape[0], -1)
        cand_d, cand_i = torch.cat([best_d, d], 1), torch.cat([best_i, idx], 1)
        top_d, pos = cand_d.topk(min(k, cand_d.shape[1]), dim=1, largest=False)
        best_d, best_i = top_d, cand_i.gather(1, pos)
    return best_d.sqrt(), best_i


class KNNIndex:
    """A growing set of vectors searched by Euclidean distance, with a chosen backend.

    Args:
        dim: vector length.
        backend: ``exact`` | ``faiss-flat`` | ``faiss-ivf`` | ``faiss-hnsw``.
        nlist: IVF cells (default ``4 sqrt(N)`` of the first :meth:`add`, at most ``N / 39``).
        nprobe: IVF cells searched per query.
        hnsw_m: HNSW links per node.
        ef_construction, ef_search: HNSW beam widths when building / searching.
    """

    def __init__(self, dim: int, *, backend: str = "exact", nlist: int | None = None,
                 nprobe: int = 16, hnsw_m: int = 32, ef_construction: int = 64,
                 ef_search: int = 64) -> None:
        if backend not in BACKENDS:
            raise unknown_name("index backend", backend, BACKENDS)
        if not isinstance(dim, int) or dim < 1:
            raise InvalidArgumentError(f"dim must be a positive integer, got {dim!r}")
        self.dim, self.backend = dim, backend
        self.nlist, self.nprobe = nlist, nprobe
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self._vectors: list[np.ndarray] = []  # exact: the gallery, concatenated on search
        self._exact: Tensor | None = None
        self._faiss = None
        self._quantizer = None
        if backend in ("faiss-flat", "faiss-hnsw"):
            import faiss

            if backend == "faiss-flat":
                self._faiss = faiss.IndexFlatL2(dim)
            else:
                self._faiss = faiss.IndexHNSWFlat(dim, hnsw_m)
                self._faiss.hnsw.efConstruction = ef_construction
                self._faiss.hnsw.efSearch = ef_search
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, vectors: Tensor | np.ndarray) -> None:
        """Append ``[N, dim]`` vectors (their ids continue from ``len(self)``)."""
        arr = _as_matrix(vectors, self.dim, "vectors")
        if arr.shape[0] == 0:
            return
        if self.backend == "exact":
            self._vectors.append(arr)
            self._exact = None
        else:
            if self._faiss is None:  # IVF: its cells are learned from the first vectors
                self._faiss = self._build_ivf(arr)
            self._faiss.add(arr)
        self._count += arr.shape[0]

    def _build_ivf(self, arr: np.ndarray):
        import faiss

        n = arr.shape[0]
        nlist = self.nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatL2(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist)
        sample = arr if n <= 256 * nlist else arr[np.random.default_rng(0).choice(
            n, 256 * nlist, replace=False)]
        index.train(sample)
        index.nprobe = min(self.nprobe, nlist)
        self._quantizer = quantizer  # the index holds it without owning it: keep it alive
        return index

    def search(self, queries: Tensor | np.ndarray, k: int) -> tuple[Tensor, Tensor]:
        """The ``k`` nearest vectors of each query.

        Returns:
            ``(distances [Q, k'], indices [Q, k'] int64)`` with ``k' = min(k, len(self))``,
            nearest first (approximate backends may return ``-1`` for a missed slot).
        """
        if self._count == 0:
            raise InvalidArgumentError("the index is empty: add vectors before searching")
        if not isinstance(k, int) or k < 1:
            raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
        q = _as_matrix(queries, self.dim, "queries")
        k = min(k, self._count)
        if self.backend == "exact":
            if self._exact is None:
                self._exact = torch.from_numpy(np.concatenate(self._vectors))
                self._vectors = [self._exact.numpy()]
            return exact_knn(torch.from_numpy(q), self._exact, k)
        d, i = self._faiss.search(q, k)
        return torch.from_numpy(np.sqrt(np.maximum(d, 0))), torch.from_numpy(i).long()
