"""A kd-tree for nearest neighbours: exact k-NN with backtracking and best-bin-first search.

Papers:
    * J. H. Friedman, J. L. Bentley, R. A. Finkel, "An Algorithm for Finding Best Matches in
      Logarithmic Expected Time", ACM TOMS 1977 (pre-arXiv, no arXiv id): the tree (median split,
      buckets of points at the leaves) and the exact search that backtracks into a sibling cell
      only when the query ball crosses it.
    * S. Arya, D. M. Mount, "Algorithms for Fast Vector Quantization", DCC 1993 (no arXiv id):
      the incremental distance from the query to a cell, updated in O(1) per split.
    * J. S. Beis, D. G. Lowe, "Shape Indexing Using Approximate Nearest-Neighbour Search in
      High-Dimensional Spaces", CVPR 1997 (no arXiv id): best-bin-first (BBF) search, which visits
      cells in order of their distance to the query from a priority queue and stops after a fixed
      number of checks; D. G. Lowe, "Distinctive Image Features from Scale-Invariant Keypoints",
      IJCV 2004 (no arXiv id), uses it for SIFT matching.
    * M. Muja, D. G. Lowe, "Fast Approximate Nearest Neighbors with Automatic Algorithm
      Configuration", VISAPP 2009 (no arXiv id; FLANN): ``checks`` counts the database points
      whose distance was computed, the budget this module's ``checks`` argument means.

Departures and choices, all stated:
    * The split dimension is the one of largest variance (Friedman et al. use the largest spread);
      the split is at the median (``np.argpartition``), and each node keeps both the largest
      coordinate of its left half and the smallest of its right half, so the gap between the halves
      tightens the bound on the far side (as in FLANN's single kd-tree).
    * Both searches bound a cell by its exact distance to the query (Arya & Mount's incremental
      distance over the cell's per-dimension offsets). Beis & Lowe's BBF orders the bins the same
      way; FLANN's randomized trees use a cheaper sum of cut distances instead.
    * A distance computation stops as soon as its partial sum exceeds the current k-th best
      (partial distance search); it only skips work, never changes a result. The columns are
      stored in decreasing order of variance so that the first dimensions summed carry most of
      the distance (a permutation of the coordinates: distances are unchanged).
    * Ties are broken by the smaller database index, so the exact search returns exactly what a
      stable brute-force sort by (distance, index) returns.
    * One tree, not FLANN's forest of randomized trees.

The traversals are compiled with numba (``cache=True``), queries run in parallel over numba's
threads; the tree is built in NumPy.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["KDTree", "brute_force_knn"]


# Dimensions summed between two looks at the bound in the partial distance search. The columns
# are stored in decreasing order of variance, so the first blocks carry most of the distance.
_BLOCK = 32


# Re-association lets LLVM vectorise each block; it changes nothing for SIFT descriptors
# (integer-valued, so every partial sum is exact) and only the last bits for other data.
@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _bounded_sqdist(points: np.ndarray, row: int, query: np.ndarray, bound: float) -> float:
    """Squared distance of ``points[row]`` to ``query``, accumulated in the data's precision.

    Gives up (returning the partial sum) once a block of dimensions takes it past ``bound``.
    """
    dim = query.shape[0]
    acc = query[0] - query[0]  # a zero of the data's dtype
    full = dim - dim % _BLOCK
    for begin in range(0, full, _BLOCK):
        block = acc - acc
        for j in range(begin, begin + _BLOCK):
            diff = points[row, j] - query[j]
            block += diff * diff
        acc += block
        if acc > bound:
            return acc
    for j in range(full, dim):
        diff = points[row, j] - query[j]
        acc += diff * diff
    return acc


@numba.njit(cache=True, inline="always")
def _offer(dist: float, index: int, best_d: np.ndarray, best_i: np.ndarray) -> None:
    """Insert (dist, index) into the sorted k-best lists if it beats the current k-th."""
    k = best_d.shape[0]
    last = k - 1
    if dist > best_d[last] or (dist == best_d[last] and index >= best_i[last]):
        return
    pos = last
    while pos > 0 and (
        best_d[pos - 1] > dist or (best_d[pos - 1] == dist and best_i[pos - 1] > index)
    ):
        best_d[pos] = best_d[pos - 1]
        best_i[pos] = best_i[pos - 1]
        pos -= 1
    best_d[pos] = dist
    best_i[pos] = index


@numba.njit(cache=True, inline="always")
def _scan_leaf(
    node: int, query, points, order, start, stop, best_d, best_i
) -> int:
    last = best_d.shape[0] - 1
    for p in range(start[node], stop[node]):
        dist = _bounded_sqdist(points, p, query, best_d[last])
        _offer(dist, order[p], best_d, best_i)
    return stop[node] - start[node]


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _bounded_box_sqdist(
    box_low: np.ndarray, box_high: np.ndarray, node: int, query: np.ndarray, bound: float
) -> float:
    """Squared distance from ``query`` to the bounding box of ``node``'s points.

    A lower bound on the distance to every point below ``node``; like ``_bounded_sqdist`` it
    gives up once a block of dimensions takes it past ``bound``.
    """
    dim = query.shape[0]
    acc = query[0] - query[0]
    for begin in range(0, dim, _BLOCK):
        block = acc - acc
        for j in range(begin, min(begin + _BLOCK, dim)):
            gap = max(box_low[node, j] - query[j], query[j] - box_high[node, j], acc - acc)
            block += gap * gap
        acc += block
        if acc > bound:
            return acc
    return acc


@numba.njit(cache=True)
def _search_exact(
    query, pending_d, pending_n, points, order, split_dim, low, high, left, right, box_low,
    box_high, start, stop, best_d, best_i,
) -> tuple[int, int]:
    """Exact k-NN, depth-first with backtracking; returns (point, box) distances computed.

    A node is entered only if the bounding box of its points lies within the current k-th best
    distance; of two children the one on the query's side of the split is searched first, and the
    other (backtracking) only if its box still reaches the shrinking k-th best ball.
    Iterative, with an explicit stack: numba cannot cache recursive functions.
    """
    last = best_d.shape[0] - 1
    size = 1
    pending_d[0] = 0.0
    pending_n[0] = 0
    point_checks = 0
    box_checks = 0
    while size > 0:
        size -= 1
        parent_bound = pending_d[size]
        node = pending_n[size]
        if parent_bound > best_d[last]:
            continue  # the k-th best ball shrank below this branch's bound meanwhile
        box_checks += 1
        bound = _bounded_box_sqdist(box_low, box_high, node, query, best_d[last])
        if bound > best_d[last]:
            continue
        if split_dim[node] < 0:
            point_checks += _scan_leaf(node, query, points, order, start, stop, best_d, best_i)
            continue
        dim = split_dim[node]
        if query[dim] <= 0.5 * (low[node] + high[node]):
            near, far = left[node], right[node]
        else:
            near, far = right[node], left[node]
        # Last in, first out: the near child is searched first, the far one on the way back.
        pending_d[size] = bound
        pending_n[size] = far
        pending_d[size + 1] = bound
        pending_n[size + 1] = near
        size += 2
    return point_checks, box_checks


@numba.njit(cache=True, inline="always")
def _heap_push(heap_d, heap_n, size: int, dist: float, node: int) -> int:
    pos = size
    while pos > 0:
        parent = (pos - 1) // 2
        if heap_d[parent] <= dist:
            break
        heap_d[pos] = heap_d[parent]
        heap_n[pos] = heap_n[parent]
        pos = parent
    heap_d[pos] = dist
    heap_n[pos] = node
    return size + 1


@numba.njit(cache=True, inline="always")
def _heap_pop(heap_d, heap_n, size: int) -> int:
    """Remove the root (the caller has read it); returns the new size."""
    size -= 1
    dist = heap_d[size]
    node = heap_n[size]
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and heap_d[child + 1] < heap_d[child]:
            child += 1
        if heap_d[child] >= dist:
            break
        heap_d[pos] = heap_d[child]
        heap_n[pos] = heap_n[child]
        pos = child
    if size > 0:
        heap_d[pos] = dist
        heap_n[pos] = node
    return size


@numba.njit(cache=True)
def _best_bin_first(
    query, max_checks, offsets, heap_d, heap_n, points, order, split_dim, low, high, left,
    right, parent, start, stop, best_d, best_i,
) -> int:
    """Beis & Lowe's best-bin-first search; returns the number of point distances computed.

    Cells wait in a priority queue keyed by their distance to the query; the search stops after
    ``max_checks`` distances (once k points are known), or when the nearest waiting cell lies
    beyond the k-th best, in which case the answer is exact.
    """
    last = best_d.shape[0] - 1
    size = _heap_push(heap_d, heap_n, 0, 0.0, 0)
    checks = 0
    while size > 0:
        cell_dist = heap_d[0]
        node = heap_n[0]
        size = _heap_pop(heap_d, heap_n, size)
        if cell_dist > best_d[last]:
            break
        if checks >= max_checks and best_d[last] < np.inf:
            break
        # Rebuild the per-dimension offsets of this cell from its ancestors' splits.
        child = node
        up = parent[child]
        while up >= 0:
            dim = split_dim[up]
            side = query[dim] - low[up] if left[up] == child else high[up] - query[dim]
            if side > offsets[dim]:
                offsets[dim] = side
            child = up
            up = parent[child]
        # Descend to a leaf, queueing every far sibling with its exact cell distance
        # (Arya & Mount: only the split dimension's offset changes).
        while split_dim[node] >= 0:
            dim = split_dim[node]
            value = query[dim]
            old = offsets[dim]
            off_left = max(old, value - low[node])
            off_right = max(old, high[node] - value)
            if value <= 0.5 * (low[node] + high[node]):
                near, far, off_near, off_far = left[node], right[node], off_left, off_right
            else:
                near, far, off_near, off_far = right[node], left[node], off_right, off_left
            far_dist = cell_dist - old * old + off_far * off_far
            if far_dist <= best_d[last]:
                size = _heap_push(heap_d, heap_n, size, far_dist, far)
            cell_dist = cell_dist - old * old + off_near * off_near
            offsets[dim] = off_near
            node = near
        checks += _scan_leaf(node, query, points, order, start, stop, best_d, best_i)
        # Every non-zero offset lies on a split dimension of this leaf's ancestors.
        up = parent[node]
        while up >= 0:
            offsets[split_dim[up]] = 0.0
            up = parent[up]
    return checks


@numba.njit(cache=True, parallel=True)
def _query_all(
    queries, k, max_checks, points, order, split_dim, low, high, left, right, parent, box_low,
    box_high, start, stop,
):
    """All queries, in parallel; ``max_checks == 0`` selects the exact search."""
    n_queries, dim = queries.shape
    out_d = np.empty((n_queries, k), dtype=np.float64)
    out_i = np.empty((n_queries, k), dtype=np.int64)
    out_checks = np.zeros((n_queries, 2), dtype=np.int64)  # (point, box) distances
    n_nodes = split_dim.shape[0]
    n_chunks = min(n_queries, 256)
    for chunk in numba.prange(n_chunks):
        # Work buffers are allocated once per chunk, not once per query.
        offsets = np.zeros(dim, dtype=np.float64)
        pending_d = np.empty(n_nodes, dtype=np.float64)
        pending_n = np.empty(n_nodes, dtype=np.int64)
        best_d = np.empty(k, dtype=np.float64)
        best_i = np.empty(k, dtype=np.int64)
        for q in range(chunk, n_queries, n_chunks):
            best_d[:] = np.inf
            best_i[:] = np.iinfo(np.int64).max
            query = queries[q]
            if max_checks > 0:
                out_checks[q, 0] = _best_bin_first(
                    query, max_checks, offsets, pending_d, pending_n, points, order, split_dim,
                    low, high, left, right, parent, start, stop, best_d, best_i)
            else:
                out_checks[q, 0], out_checks[q, 1] = _search_exact(
                    query, pending_d, pending_n, points, order, split_dim, low, high, left,
                    right, box_low, box_high, start, stop, best_d, best_i)
            out_d[q] = best_d
            out_i[q] = best_i
    return out_d, out_i, out_checks


def _as_points(array: np.ndarray, name: str, dim: int | None = None) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {array.dtype}")
    if array.ndim == 1 and dim is not None:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N, D), got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"{name}: expected {dim} columns like the tree's data, "
                         f"got shape {array.shape}")
    dtype = np.float32 if array.dtype in (np.float32, np.uint8, np.int8, np.uint16) else np.float64
    array = np.ascontiguousarray(array, dtype=dtype)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


class KDTree:
    """A kd-tree over N points in D dimensions (Euclidean distance).

    Args:
        data: the database, ``(N, D)``. float32 (e.g. SIFT descriptors) stays float32 and its
            distances are summed in float32, which is exact for SIFT (integers below 256, so
            every sum stays below 2**24); other numeric types become float64.
        leaf_size: the largest number of points in a leaf (a bucket).

    Example:
        >>> tree = KDTree(descriptors)
        >>> dist, idx = tree.query(queries, k=2)               # exact
        >>> dist, idx = tree.query(queries, k=2, checks=200)   # best-bin-first, approximate
    """

    def __init__(self, data: np.ndarray, *, leaf_size: int = 16) -> None:
        if not isinstance(leaf_size, (int, np.integer)) or leaf_size < 1:
            raise ValueError(f"leaf_size: expected a positive integer, got {leaf_size!r}")
        data = _as_points(data, "data")
        if data.shape[0] == 0 or data.shape[1] == 0:
            raise ValueError(f"data: expected at least one point and one dimension, got shape "
                             f"{data.shape}")
        self.leaf_size = int(leaf_size)
        # Columns in decreasing variance: the partial distance search then stops soonest.
        self._columns = np.argsort(-data.var(axis=0), kind="stable")
        self._build(np.ascontiguousarray(data[:, self._columns]))

    def _build(self, data: np.ndarray) -> None:
        n = data.shape[0]
        max_nodes = 2 * max(1, -(-n // self.leaf_size)) + 1
        split_dim = np.full(max_nodes * 2, -1, dtype=np.int64)
        low = np.zeros(max_nodes * 2)
        high = np.zeros(max_nodes * 2)
        left = np.full(max_nodes * 2, -1, dtype=np.int64)
        right = np.full(max_nodes * 2, -1, dtype=np.int64)
        parent = np.full(max_nodes * 2, -1, dtype=np.int64)
        start = np.zeros(max_nodes * 2, dtype=np.int64)
        stop = np.zeros(max_nodes * 2, dtype=np.int64)
        box_low = np.zeros((max_nodes * 2, data.shape[1]), dtype=data.dtype)
        box_high = np.zeros((max_nodes * 2, data.shape[1]), dtype=data.dtype)
        order = np.arange(n, dtype=np.int64)
        n_nodes = 1
        depth = 0
        stack = [(0, 0, n, 0)]  # (node, start, stop, depth)
        while stack:
            node, lo, hi, level = stack.pop()
            depth = max(depth, level)
            start[node], stop[node] = lo, hi
            idx = order[lo:hi]
            cell = data[idx]
            box_low[node] = cell.min(axis=0)
            box_high[node] = cell.max(axis=0)
            if hi - lo <= self.leaf_size:
                continue
            dim = int(np.argmax(cell.var(axis=0)))
            values = cell[:, dim]
            if values.min() == values.max():
                continue  # all points coincide in every dimension: keep them in one leaf
            half = (hi - lo) // 2
            part = np.argpartition(values, half)
            order[lo:hi] = idx[part]
            split_dim[node] = dim
            low[node] = float(values[part[:half]].max())
            high[node] = float(values[part[half:]].min())
            left[node], right[node] = n_nodes, n_nodes + 1
            parent[n_nodes] = parent[n_nodes + 1] = node
            stack.append((n_nodes + 1, lo + half, hi, level + 1))
            stack.append((n_nodes, lo, lo + half, level + 1))
            n_nodes += 2
        self._points = np.ascontiguousarray(data[order])  # leaf-contiguous copy of the data
        self._order = order
        self._split_dim = split_dim[:n_nodes].copy()
        self._low = low[:n_nodes].copy()
        self._high = high[:n_nodes].copy()
        self._left = left[:n_nodes].copy()
        self._right = right[:n_nodes].copy()
        self._parent = parent[:n_nodes].copy()
        self._start = start[:n_nodes].copy()
        self._stop = stop[:n_nodes].copy()
        self._box_low = box_low[:n_nodes].copy()
        self._box_high = box_high[:n_nodes].copy()
        self.depth = depth

    @property
    def n_points(self) -> int:
        """Number of points in the database."""
        return int(self._points.shape[0])

    @property
    def dim(self) -> int:
        """Dimension D of the points."""
        return int(self._points.shape[1])

    @property
    def n_nodes(self) -> int:
        """Number of nodes (internal and leaves)."""
        return int(self._split_dim.shape[0])

    @property
    def n_leaves(self) -> int:
        """Number of leaves (buckets)."""
        return int((self._split_dim < 0).sum())

    def query(
        self,
        queries: np.ndarray,
        k: int = 1,
        *,
        checks: int | None = None,
        return_checks: bool = False,
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k nearest database points of each query.

        Args:
            queries: ``(Q, D)`` or one point ``(D,)``.
            k: number of neighbours, at most ``n_points``.
            checks: ``None`` for the exact search (depth-first with backtracking, pruned by the
                nodes' bounding boxes). An integer runs best-bin-first search, which stops once
                it has computed this many point distances (finishing the leaf it is in); with
                ``checks >= n_points`` it is exact too.
            return_checks: also return the work done per query.

        Returns:
            ``distances`` ``(Q, k)`` Euclidean, ascending, and ``indices`` ``(Q, k)`` into the
            data (ties go to the smaller index). With ``return_checks`` also ``checks``
            ``(Q, 2)``: the point distances and the bounding-box distances computed (the second
            is 0 for best-bin-first, which bounds cells by their splits instead).
        """
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= self.n_points:
            raise ValueError(f"k: expected an integer in [1, {self.n_points}], got {k!r}")
        if checks is not None and (not isinstance(checks, (int, np.integer)) or checks < 1):
            raise ValueError(f"checks: expected None (exact) or a positive integer, got {checks!r}")
        queries = _as_points(queries, "queries", dim=self.dim)
        if queries.shape[0] == 0:
            empty = np.empty((0, k))
            out = (empty, empty.astype(np.int64))
            return (*out, np.empty((0, 2), dtype=np.int64)) if return_checks else out
        queries = np.ascontiguousarray(queries[:, self._columns], dtype=self._points.dtype)
        sq, idx, counts = _query_all(
            queries, int(k), int(checks or 0), self._points, self._order, self._split_dim,
            self._low, self._high, self._left, self._right, self._parent, self._box_low,
            self._box_high, self._start, self._stop,
        )
        dist = np.sqrt(sq)
        return (dist, idx, counts) if return_checks else (dist, idx)


def brute_force_knn(
    data: np.ndarray, queries: np.ndarray, k: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-NN by computing every distance (the reference the tree is checked against).

    Squared distances are the sums of squared coordinate differences in float64 (no
    ``|x|^2 - 2 x.q + |q|^2`` expansion, which loses digits), and each row is sorted stably by
    (distance, index), the same tie rule as :class:`KDTree`.

    Args:
        data: ``(N, D)``.
        queries: ``(Q, D)``.
        k: number of neighbours, at most N.

    Returns:
        ``distances`` ``(Q, k)`` Euclidean and ``indices`` ``(Q, k)``.
    """
    data = _as_points(data, "data").astype(np.float64)
    queries = _as_points(queries, "queries", dim=data.shape[1]).astype(np.float64)
    if not 1 <= k <= data.shape[0]:
        raise ValueError(f"k: expected an integer in [1, {data.shape[0]}], got {k!r}")
    out_d = np.empty((queries.shape[0], k))
    out_i = np.empty((queries.shape[0], k), dtype=np.int64)
    step = max(1, 4_000_000 // data.size)  # queries per block: bounds the (step, N, D) temporary
    for s in range(0, queries.shape[0], step):
        q = queries[s:s + step]
        sq = ((q[:, None, :] - data[None, :, :]) ** 2).sum(-1)  # (q, N)
        order = np.argsort(sq, axis=1, kind="stable")[:, :k]
        out_i[s:s + step] = order
        out_d[s:s + step] = np.sqrt(np.take_along_axis(sq, order, axis=1))
    return out_d, out_i
