"""A kd-tree for nearest neighbours: exact k-NN with backtracking and best-bin-first search.

Papers:
    * J. H. Friedman, J. L. Bentley, R. A. Finkel, "An Algorithm for Finding Best Matches in
      Logarithmic Expected Time", ACM TOMS 1977 (pre-arXiv, no arXiv id): the tree (median split,
      buckets of points at the leaves) and the exact search, which backtracks into a branch only
      when the ball of the current k-th best neighbour reaches it.
    * R. F. Sproull, "Refinements to Nearest-Neighbor Searching in k-Dimensional Trees",
      Algorithmica 1991 (no arXiv id): splitting along the data's principal axes instead of the
      coordinate axes.
    * S. Arya, D. M. Mount, "Algorithms for Fast Vector Quantization", DCC 1993 (no arXiv id):
      the incremental distance from the query to a cell, updated in O(1) per split.
    * J. S. Beis, D. G. Lowe, "Shape Indexing Using Approximate Nearest-Neighbour Search in
      High-Dimensional Spaces", CVPR 1997 (no arXiv id): best-bin-first (BBF) search, which visits
      cells in order of their distance to the query from a priority queue and stops after a fixed
      number of checks; D. G. Lowe, "Distinctive Image Features from Scale-Invariant Keypoints",
      IJCV 2004 (no arXiv id), matches SIFT descriptors with it.
    * M. Muja, D. G. Lowe, "Fast Approximate Nearest Neighbors with Automatic Algorithm
      Configuration", VISAPP 2009 (no arXiv id; FLANN): ``checks`` counts the database points
      examined, the budget this module's ``checks`` argument means.

How this tree works, and where it departs from the papers:
    * Space of the tree. By default the tree lives in the first ``principal_axes`` (32) principal
      components of the data (Sproull): splits, cells and bounding boxes are all taken there. A
      distance over some orthonormal directions never exceeds the full distance, so every bound
      stays a lower bound; the k-NN themselves are always decided by distances computed in the
      original coordinates (float64), so the answer is exact. ``principal_axes=None`` gives the
      plain tree of Friedman et al. on the coordinate axes. In 128-d, splitting the coordinate
      axes constrains only ~10 of them along a root-to-leaf path: the plain tree's exact search
      examines nearly every SIFT descriptor (see ``bench/kdtree.md``).
    * Split: the dimension of largest variance (Friedman et al. use the largest spread), at the
      median (``np.argpartition``). Each node keeps the largest coordinate of its left half and
      the smallest of its right half, so the gap between the halves tightens the cell bounds.
    * Exact search: a node is entered only if the bounding box of its points (tighter than the
      cell of its splits) lies within the k-th best distance. In a leaf, a point is screened by
      its partial distance over the first 8 principal axes, then over all of the tree's axes
      (partial distance search: each is a lower bound); only survivors get their exact
      D-dimensional distance. The screening never changes the result, only skips work.
    * BBF orders cells by their exact distance to the query in the tree's space (Arya & Mount's
      incremental offsets), as Beis & Lowe order their bins; FLANN's randomized forests use a
      cheaper sum of cut distances. One tree, not FLANN's forest.
    * The rotated coordinates and boxes used for pruning are stored in float32 (half the memory
      traffic of the hot loop). Their rounding is ~1e-7 of the data's radius, so a bound prunes
      only when it exceeds the k-th best by a slack of 1e-5 * (data radius + query radius)^2,
      far above that rounding: no true neighbour can be dropped.
    * Ties are broken by the smaller database index: the exact search returns exactly what a
      stable brute-force sort by (distance, index) returns.

The traversals are compiled with numba (``cache=True``; iterative, as numba cannot cache
recursive functions) and release the GIL, so the queries are shared among
``numba.get_num_threads()`` Python threads; the tree is built in NumPy. Measured against brute
force (NumPy/BLAS, numba, OpenCV) and OpenCV's FLANN in ``bench/kdtree.py``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

__all__ = ["KDTree", "brute_force_knn"]

# Relative slack of pruning bounds computed in the float32 rotated space (module docstring).
_SLACK = 1e-5
# Principal axes summed first when screening a point (a compact array that stays in cache).
_HEAD = 8
_CHUNK = 16  # points screened against one value of the k-th best distance
_NO_INDEX = np.iinfo(np.int64).max  # a placeholder index that loses every tie


# Re-association lets LLVM vectorise the sum over dimensions; it changes nothing for SIFT
# descriptors (integer-valued, so every partial sum is exact) and only the last bits for other data.
@numba.njit(cache=True, fastmath={"reassoc", "contract"}, inline="always")
def _sqdist(points: np.ndarray, row: int, query: np.ndarray) -> float:
    """Squared distance of ``points[row]`` to ``query``."""
    acc = 0.0
    for j in range(query.shape[0]):
        diff = points[row, j] - query[j]
        acc += diff * diff
    return acc


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, inline="always")
def _box_sqdist(box_low: np.ndarray, box_high: np.ndarray, node: int, query: np.ndarray) -> float:
    """Squared distance from ``query`` to the bounding box of ``node``'s points."""
    acc = np.float32(0.0)
    zero = np.float32(0.0)
    for j in range(query.shape[0]):
        gap = max(max(box_low[node, j] - query[j], query[j] - box_high[node, j]), zero)
        acc += gap * gap
    return acc


@numba.njit(cache=True, inline="always")
def _offer(dist: float, index: int, best_d: np.ndarray, best_i: np.ndarray) -> None:
    """Insert (dist, index) into the sorted k-best lists if it beats the current k-th."""
    last = best_d.shape[0] - 1
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


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, inline="always")
def _screen(begin, end, rotated_query, bound, tree, survivors) -> int:
    """Rows ``begin:end`` whose distance over the principal axes is within ``bound``.

    Partial sums over some principal axes are lower bounds of the distance: a point is dropped
    as soon as one exceeds ``bound`` (first over ``head``'s axes, then over the rest). Writes the
    survivors' rows into ``survivors`` and returns how many there are. No calls in this loop:
    it is the hot one.
    """
    head, tail = tree[1], tree[2]
    n_head, n_tail = head.shape[1], tail.shape[1]
    count = 0
    for p in range(begin, end):
        partial = np.float32(0.0)
        for j in range(n_head):
            diff = head[p, j] - rotated_query[j]
            partial += diff * diff
        if partial > bound:
            continue
        for j in range(n_tail):
            diff = tail[p, j] - rotated_query[n_head + j]
            partial += diff * diff
        if partial <= bound:
            survivors[count] = p
            count += 1
    return count


@numba.njit(cache=True, inline="always")
def _scan_leaf(node, query, rotated_query, slack, tree, best_d, best_i, counts, survivors) -> None:
    """Offer the points of a leaf that survive the screening, _CHUNK points at a time (so that
    the k-th best tightens within a leaf too); counts[0] += points examined, counts[1] += exact
    distances computed."""
    points, order, start, stop = tree[0], tree[3], tree[4], tree[5]
    last = best_d.shape[0] - 1
    for begin in range(start[node], stop[node], _CHUNK):
        end = min(begin + _CHUNK, stop[node])
        n = _screen(begin, end, rotated_query, best_d[last] + slack, tree, survivors)
        for s in range(n):
            p = survivors[s]
            _offer(_sqdist(points, p, query), order[p], best_d, best_i)
        counts[1] += n
    counts[0] += stop[node] - start[node]


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _search_exact(
    query,
    rotated_query,
    slack,
    tree,
    nodes,
    pending_d,
    pending_n,
    best_d,
    best_i,
    counts,
    survivors,
) -> None:
    """Exact k-NN, depth-first with backtracking.

    Of two children the one on the query's side of the split is searched first; the other is
    entered on the way back only if its bounding box still reaches the (shrinking) k-th best ball.
    counts[2] += bounding boxes tested.
    """
    split_dim, low, high, left, right = nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
    box_low, box_high = nodes[6], nodes[7]
    last = best_d.shape[0] - 1
    size = 1
    pending_d[0] = 0.0
    pending_n[0] = 0
    while size > 0:
        size -= 1
        parent_bound = pending_d[size]
        node = pending_n[size]
        if parent_bound > best_d[last] + slack:
            continue  # the k-th best ball shrank below this branch's bound meanwhile
        counts[2] += 1
        bound = _box_sqdist(box_low, box_high, node, rotated_query)
        if bound > best_d[last] + slack:
            continue
        if split_dim[node] < 0:
            _scan_leaf(node, query, rotated_query, slack, tree, best_d, best_i, counts, survivors)
            continue
        dim = split_dim[node]
        if rotated_query[dim] <= 0.5 * (low[node] + high[node]):
            near, far = left[node], right[node]
        else:
            near, far = right[node], left[node]
        # Last in, first out: the near child is searched first, the far one on the way back.
        pending_d[size] = bound
        pending_n[size] = far
        pending_d[size + 1] = bound
        pending_n[size + 1] = near
        size += 2


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


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _best_bin_first(
    query,
    rotated_query,
    slack,
    max_checks,
    tree,
    nodes,
    offsets,
    heap_d,
    heap_n,
    best_d,
    best_i,
    counts,
    survivors,
) -> None:
    """Beis & Lowe's best-bin-first search.

    Cells wait in a priority queue keyed by their distance to the query; the search stops once
    ``max_checks`` points have been examined (and k are known), or when the nearest waiting cell
    lies beyond the k-th best, in which case the answer is exact.
    """
    split_dim, low, high, left, right, parent = (
        nodes[0],
        nodes[1],
        nodes[2],
        nodes[3],
        nodes[4],
        nodes[5],
    )
    last = best_d.shape[0] - 1
    size = _heap_push(heap_d, heap_n, 0, 0.0, 0)
    while size > 0:
        cell_dist = heap_d[0]
        node = heap_n[0]
        size = _heap_pop(heap_d, heap_n, size)
        if cell_dist > best_d[last] + slack:
            break
        if counts[0] >= max_checks and best_d[last] < np.inf:
            break
        # Rebuild the per-dimension offsets of this cell from its ancestors' splits.
        child = node
        up = parent[child]
        while up >= 0:
            dim = split_dim[up]
            value = rotated_query[dim]
            side = value - low[up] if left[up] == child else high[up] - value
            if side > offsets[dim]:
                offsets[dim] = side
            child = up
            up = parent[child]
        # Descend to a leaf, queueing every far sibling with its exact cell distance
        # (Arya & Mount: only the split dimension's offset changes).
        while split_dim[node] >= 0:
            dim = split_dim[node]
            value = rotated_query[dim]
            old = offsets[dim]
            off_left = max(old, value - low[node])
            off_right = max(old, high[node] - value)
            if value <= 0.5 * (low[node] + high[node]):
                near, far, off_near, off_far = left[node], right[node], off_left, off_right
            else:
                near, far, off_near, off_far = right[node], left[node], off_right, off_left
            far_dist = cell_dist - old * old + off_far * off_far
            if far_dist <= best_d[last] + slack:
                size = _heap_push(heap_d, heap_n, size, far_dist, far)
            cell_dist = cell_dist - old * old + off_near * off_near
            offsets[dim] = off_near
            node = near
        _scan_leaf(node, query, rotated_query, slack, tree, best_d, best_i, counts, survivors)
        # Every non-zero offset lies on a split dimension of this leaf's ancestors.
        up = parent[node]
        while up >= 0:
            offsets[split_dim[up]] = 0.0
            up = parent[up]


@numba.njit(cache=True, nogil=True)
def _query_range(
    queries, mean, axes, data_radius, max_checks, tree, nodes, begin, end, out_d, out_i, out_counts
) -> None:
    """Queries ``begin:end`` into the output rows; ``max_checks == 0`` is the exact search.

    Runs without the GIL, so threads can share the queries. Each query is rotated onto the
    principal axes here, in float64, not by a BLAS call: OpenBLAS threads left spinning after
    one would compete with the search for the cores.
    """
    k = out_d.shape[1]
    m, dim = axes.shape
    n_nodes = nodes[0].shape[0]
    centred = np.empty(dim, dtype=np.float64)
    rotated_query = np.empty(m, dtype=np.float32)
    offsets = np.zeros(m, dtype=np.float64)
    pending_d = np.empty(n_nodes, dtype=np.float64)
    pending_n = np.empty(n_nodes, dtype=np.int64)
    best_d = np.empty(k, dtype=np.float64)
    best_i = np.empty(k, dtype=np.int64)
    counts = np.zeros(3, dtype=np.int64)
    survivors = np.empty(_CHUNK, dtype=np.int64)
    for q in range(begin, end):
        radius_sq = 0.0
        for i in range(dim):
            centred[i] = queries[q, i] - mean[i]
            radius_sq += centred[i] * centred[i]
        for j in range(m):
            acc = 0.0
            for i in range(dim):
                acc += axes[j, i] * centred[i]
            rotated_query[j] = acc
        # Pruning slack: float32 rounding of rotated coordinates scales with the squared radius.
        slack = _SLACK * (data_radius + np.sqrt(radius_sq)) ** 2
        best_d[:] = np.inf
        best_i[:] = _NO_INDEX
        counts[:] = 0
        if max_checks > 0:
            _best_bin_first(
                queries[q],
                rotated_query,
                slack,
                max_checks,
                tree,
                nodes,
                offsets,
                pending_d,
                pending_n,
                best_d,
                best_i,
                counts,
                survivors,
            )
        else:
            _search_exact(
                queries[q],
                rotated_query,
                slack,
                tree,
                nodes,
                pending_d,
                pending_n,
                best_d,
                best_i,
                counts,
                survivors,
            )
        # Element-wise copies: array-to-row assignment costs numba seconds of compilation.
        for j in range(k):
            out_d[q, j] = best_d[j]
            out_i[q, j] = best_i[j]
        for j in range(3):
            out_counts[q, j] = counts[j]


def _as_points(array: np.ndarray, name: str, dim: int | None = None) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {array.dtype}")
    if array.ndim == 1 and dim is not None:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N, D), got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(
            f"{name}: expected {dim} columns like the tree's data, got shape {array.shape}"
        )
    array = np.ascontiguousarray(array, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


class KDTree:
    """A kd-tree over N points in D dimensions (Euclidean distance).

    Args:
        data: the database, ``(N, D)``, any real dtype; kept and compared in float64 (exact
            for SIFT descriptors, which are integers below 256).
        leaf_size: the largest number of points in a leaf (a bucket).
        principal_axes: the tree splits and bounds along this many principal components of the
            data (at most D); ``None`` splits the original coordinate axes.

    Example:
        >>> tree = KDTree(descriptors)
        >>> dist, idx = tree.query(queries, k=2)               # exact
        >>> dist, idx = tree.query(queries, k=2, checks=200)   # best-bin-first, approximate
    """

    def __init__(
        self, data: np.ndarray, *, leaf_size: int = 64, principal_axes: int | None = 32
    ) -> None:
        if not isinstance(leaf_size, (int, np.integer)) or leaf_size < 1:
            raise ValueError(f"leaf_size: expected a positive integer, got {leaf_size!r}")
        if principal_axes is not None and (
            not isinstance(principal_axes, (int, np.integer)) or principal_axes < 1
        ):
            raise ValueError(
                f"principal_axes: expected None or a positive integer, got {principal_axes!r}"
            )
        data = _as_points(data, "data")
        if data.shape[0] == 0 or data.shape[1] == 0:
            raise ValueError(
                f"data: expected at least one point and one dimension, got shape {data.shape}"
            )
        self.leaf_size = int(leaf_size)
        if principal_axes is None:
            self._mean = np.zeros(data.shape[1])
            self._axes = np.eye(data.shape[1])
        else:
            self._mean = data.mean(axis=0)
            centred = data - self._mean
            _, eigvecs = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
            keep = min(int(principal_axes), data.shape[1])
            self._axes = np.ascontiguousarray(eigvecs[:, ::-1][:, :keep].T)  # (m, D)
        self.principal_axes = None if principal_axes is None else self._axes.shape[0]
        rotated = (data - self._mean) @ self._axes.T  # (N, D) -> (N, m)
        self._radius = float(np.sqrt(((data - self._mean) ** 2).sum(axis=1).max()))
        self._build(data, rotated)

    def _build(self, data: np.ndarray, rotated: np.ndarray) -> None:
        n, m = rotated.shape
        capacity = 4 * max(1, -(-n // self.leaf_size)) + 1
        split_dim = np.full(capacity, -1, dtype=np.int64)
        low = np.zeros(capacity)
        high = np.zeros(capacity)
        left = np.full(capacity, -1, dtype=np.int64)
        right = np.full(capacity, -1, dtype=np.int64)
        parent = np.full(capacity, -1, dtype=np.int64)
        start = np.zeros(capacity, dtype=np.int64)
        stop = np.zeros(capacity, dtype=np.int64)
        box_low = np.zeros((capacity, m))
        box_high = np.zeros((capacity, m))
        order = np.arange(n, dtype=np.int64)
        n_nodes = 1
        depth = 0
        stack = [(0, 0, n, 0)]  # (node, start, stop, depth)
        while stack:
            node, lo, hi, level = stack.pop()
            depth = max(depth, level)
            start[node], stop[node] = lo, hi
            idx = order[lo:hi]
            cell = rotated[idx]
            box_low[node] = cell.min(axis=0)
            box_high[node] = cell.max(axis=0)
            if hi - lo <= self.leaf_size:
                continue
            dim = int(np.argmax(cell.var(axis=0)))
            values = cell[:, dim]
            if values.min() == values.max():
                continue  # the points coincide along every axis of the tree: one leaf
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
        # Leaf-contiguous copies of the data: a leaf's points are one block of memory.
        rotated = rotated[order].astype(np.float32)
        head = min(_HEAD, m)
        self._tree = (
            np.ascontiguousarray(data[order]),
            np.ascontiguousarray(rotated[:, :head]),
            np.ascontiguousarray(rotated[:, head:]),
            order,
            start[:n_nodes].copy(),
            stop[:n_nodes].copy(),
        )
        self._nodes = (
            split_dim[:n_nodes].copy(),
            low[:n_nodes].copy(),
            high[:n_nodes].copy(),
            left[:n_nodes].copy(),
            right[:n_nodes].copy(),
            parent[:n_nodes].copy(),
            box_low[:n_nodes].astype(np.float32),
            box_high[:n_nodes].astype(np.float32),
        )
        self.depth = depth

    @property
    def n_points(self) -> int:
        """Number of points in the database."""
        return int(self._tree[0].shape[0])

    @property
    def dim(self) -> int:
        """Dimension D of the points."""
        return int(self._tree[0].shape[1])

    @property
    def n_nodes(self) -> int:
        """Number of nodes (internal and leaves)."""
        return int(self._nodes[0].shape[0])

    @property
    def n_leaves(self) -> int:
        """Number of leaves (buckets)."""
        return int((self._nodes[0] < 0).sum())

    def query(
        self,
        queries: np.ndarray,
        k: int = 1,
        *,
        checks: int | None = None,
        return_counts: bool = False,
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k nearest database points of each query.

        Args:
            queries: ``(Q, D)`` or one point ``(D,)``.
            k: number of neighbours, at most ``n_points``.
            checks: ``None`` for the exact search (depth-first with backtracking). An integer
                runs best-bin-first search, which stops once it has examined this many database
                points (finishing the leaf it is in); with ``checks >= n_points`` it is exact.
            return_counts: also return the work done per query.

        Returns:
            ``distances`` ``(Q, k)`` Euclidean, ascending, and ``indices`` ``(Q, k)`` into the
            data (ties go to the smaller index). With ``return_counts`` also ``counts``
            ``(Q, 3)``: points examined (FLANN's "checks"), exact D-dimensional distances
            computed (the others were ruled out over the principal axes), and bounding boxes
            tested (0 for best-bin-first, which bounds cells by their splits).
        """
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= self.n_points:
            raise ValueError(f"k: expected an integer in [1, {self.n_points}], got {k!r}")
        if checks is not None and (not isinstance(checks, (int, np.integer)) or checks < 1):
            raise ValueError(f"checks: expected None (exact) or a positive integer, got {checks!r}")
        queries = _as_points(queries, "queries", dim=self.dim)
        if queries.shape[0] == 0:
            empty = np.empty((0, k))
            out = (empty, empty.astype(np.int64))
            return (*out, np.empty((0, 3), dtype=np.int64)) if return_counts else out
        n = queries.shape[0]
        sq = np.empty((n, k))
        idx = np.empty((n, k), dtype=np.int64)
        counts = np.empty((n, 3), dtype=np.int64)
        # numba's thread count (NUMBA_NUM_THREADS, numba.set_num_threads) sets the parallelism.
        n_threads = max(1, min(numba.get_num_threads(), n // 64))
        bounds = np.linspace(0, n, n_threads + 1).astype(int)

        def run(part: int) -> None:
            _query_range(
                queries,
                self._mean,
                self._axes,
                self._radius,
                int(checks or 0),
                self._tree,
                self._nodes,
                bounds[part],
                bounds[part + 1],
                sq,
                idx,
                counts,
            )

        if n_threads == 1:
            run(0)
        else:
            with ThreadPoolExecutor(n_threads) as pool:
                list(pool.map(run, range(n_threads)))
        dist = np.sqrt(sq)
        return (dist, idx, counts) if return_counts else (dist, idx)


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
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= data.shape[0]:
        raise ValueError(f"k: expected an integer in [1, {data.shape[0]}], got {k!r}")
    out_d = np.empty((queries.shape[0], k))
    out_i = np.empty((queries.shape[0], k), dtype=np.int64)
    step = max(1, 4_000_000 // data.size)  # queries per block: bounds the (step, N, D) temporary
    for s in range(0, queries.shape[0], step):
        q = queries[s : s + step]
        sq = ((q[:, None, :] - data[None, :, :]) ** 2).sum(-1)  # (q, N)
        order = np.argsort(sq, axis=1, kind="stable")[:, :k]
        out_i[s : s + step] = order
        out_d[s : s + step] = np.sqrt(np.take_along_axis(sq, order, axis=1))
    return out_d, out_i
