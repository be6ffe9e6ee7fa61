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
      original coordinates (in float64), so the answer is exact. ``principal_axes=None`` gives
      the plain tree of Friedman et al. on the coordinate axes. In 128-d, splitting the coordinate
      axes constrains only ~10 of them along a root-to-leaf path: the plain tree's exact search
      examines nearly every SIFT descriptor (see ``bench/kdtree.md``).
    * Split: the dimension of largest variance (Friedman et al. use the largest spread), at the
      median (``np.argpartition``). Each node keeps the largest coordinate of its left half and
      the smallest of its right half, so the gap between the halves tightens the cell bounds.
    * Exact search: a node is entered only if the bounding box of its points (tighter than the
      cell of its splits) lies within the k-th best distance; of two children, the one on the
      query's side of the split is searched first. In a leaf, points are screened in blocks of
      64 by their partial distance over the tree's axes, 8 axes at a time (partial distance
      search: each partial sum is a lower bound; the block is dropped as soon as none of its
      points is within the k-th best); a survivor is checked over 32 further principal axes, and
      only then gets its exact D-dimensional distance. The screening never changes the result,
      only skips work.
    * Many queries at once (the exact search). The queries are grouped by their home leaf (the
      leaf a query descends to) and each group walks the tree together, depth first: at every
      node each query of the group still in the walk tests the node's box against its own k-th
      best and is dropped or kept, and the walk goes on while one query is kept. So each query
      is pruned exactly as in its own search, and its result is the same, but a node's box and a
      leaf's points are read from memory once per group rather than once per query. This batching
      is our addition; the papers search one query at a time.
    * BBF orders cells by their exact distance to the query in the tree's space (Arya & Mount's
      incremental offsets), as Beis & Lowe order their bins; FLANN's randomized forests use a
      cheaper sum of cut distances. One tree, not FLANN's forest. One query at a time.
    * The rotated coordinates and boxes used for pruning are stored in float32 (half the memory
      traffic of the hot loops). A bound prunes only when it exceeds the k-th best by a slack of
      ``4 (m + 4) 2^-24 (R + r)^2`` (m the axes summed, R the data's and r the query's distance
      from the data mean), twice the worst-case float32 rounding of the rotated coordinates and
      their sums: no true neighbour can be dropped.
    * Ties are broken by the smaller database index: the exact search returns exactly what a
      stable brute-force sort by (distance, index) returns.

The traversals are compiled with numba (``cache=True``; iterative, as numba cannot cache
recursive functions) and release the GIL, so the query groups are shared among
``numba.get_num_threads()`` Python threads; the tree is built in NumPy. Measured against brute
force (NumPy/BLAS, numba, OpenCV) and OpenCV's FLANN in ``bench/kdtree.py``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

__all__ = ["KDTree", "brute_force_knn"]

_STAGE = 8  # tree axes summed per screening pass (unrolled; the tree's axes are padded to it)
_LANES = 8  # float32 lanes of an AVX register: leaf scans read whole vectors of points
_BLOCK = 64  # points screened against one value of the k-th best distance
_GROUP = 64  # the most queries that walk the tree together
_REFINE = 32  # further principal axes summed for a surviving point before its exact distance
_UNIT = 2.0**-24  # float32 unit roundoff
_LIMIT = 1e18  # |coordinates| beyond this would overflow the float32 squared bounds
_NO_INDEX = np.iinfo(np.int64).max  # a placeholder index that loses every tie
# Re-association lets LLVM vectorise sums; it changes nothing for SIFT descriptors
# (integer-valued, so every partial sum is exact) and only the last bits for other data.
_FAST = {"reassoc", "contract"}

# Indices in the hot loops are unsigned: numba then skips the negative-index wrap-around, which
# otherwise stops LLVM from vectorising the loops over points.


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _sqdist(points, row, queries, q) -> float:
    """Squared distance of ``points[row]`` to ``queries[q]``, in float64."""
    acc = 0.0
    for j in range(points.shape[1]):
        diff = np.float64(points[row, j]) - queries[q, j]
        acc += diff * diff
    return acc


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _box_sqdist(box_low, box_high, node, rotated, q) -> float:
    """Squared distance from ``rotated[q]`` to the bounding box of ``node``'s points."""
    acc = np.float32(0.0)
    zero = np.float32(0.0)
    for j in range(box_low.shape[1]):
        value = rotated[q, j]
        gap = max(max(box_low[node, j] - value, value - box_high[node, j]), zero)
        acc += gap * gap
    return acc


@numba.njit(cache=True, inline="always")
def _offer(dist, index, best_d, best_i, g) -> None:
    """Insert (dist, index) into row ``g`` of the sorted k-best lists if it beats the k-th."""
    last = best_d.shape[1] - 1
    if dist > best_d[g, last] or (dist == best_d[g, last] and index >= best_i[g, last]):
        return
    pos = last
    while pos > 0 and (
        best_d[g, pos - 1] > dist or (best_d[g, pos - 1] == dist and best_i[g, pos - 1] > index)
    ):
        best_d[g, pos] = best_d[g, pos - 1]
        best_i[g, pos] = best_i[g, pos - 1]
        pos -= 1
    best_d[g, pos] = dist
    best_i[g, pos] = index


@numba.njit(cache=True, fastmath=_FAST, inline="always")
def _scan_leaf(node, queries, rotated, q, slack, tree, best_d, best_i, g, counts, partial) -> None:
    """Offer the points of a leaf that survive the screening to query ``q`` (k-best row ``g``).

    Blocks of ``_BLOCK`` points; in each, the partial distances over the tree's axes grow
    ``_STAGE`` axes per pass (vectorised over the points) until no point of the block is within
    the k-th best (the block is done) or all axes are summed. Each survivor then sums the
    ``_REFINE`` further axes, one point at a time, and only then gets its exact distance.
    counts[q]: [0] += points examined, [1] += exact distances computed.
    """
    points, rot_t, refine, order, start, stop = tree
    last = best_d.shape[1] - 1
    n_axes = np.uint64(rot_t.shape[0])
    n_refine = np.uint64(refine.shape[1])
    one = np.uint64(1)
    leaf_end = np.uint64(stop[node])
    for begin in range(np.uint64(start[node]), leaf_end, np.uint64(_BLOCK)):
        size = min(np.uint64(_BLOCK), leaf_end - begin)
        # Whole vectors: the lanes past the block's end read the next points (or the padding
        # columns of rot_t) and are never looked at.
        padded = (size + np.uint64(_LANES - 1)) // np.uint64(_LANES) * np.uint64(_LANES)
        for i in range(padded):
            partial[i] = 0.0
        alive = np.int32(0)
        for j0 in range(np.uint64(0), n_axes, np.uint64(_STAGE)):
            r0 = rotated[q, j0]
            r1 = rotated[q, j0 + one]
            r2 = rotated[q, j0 + np.uint64(2)]
            r3 = rotated[q, j0 + np.uint64(3)]
            r4 = rotated[q, j0 + np.uint64(4)]
            r5 = rotated[q, j0 + np.uint64(5)]
            r6 = rotated[q, j0 + np.uint64(6)]
            r7 = rotated[q, j0 + np.uint64(7)]
            for i in range(padded):
                p = begin + i
                d0 = rot_t[j0, p] - r0
                d1 = rot_t[j0 + one, p] - r1
                d2 = rot_t[j0 + np.uint64(2), p] - r2
                d3 = rot_t[j0 + np.uint64(3), p] - r3
                d4 = rot_t[j0 + np.uint64(4), p] - r4
                d5 = rot_t[j0 + np.uint64(5), p] - r5
                d6 = rot_t[j0 + np.uint64(6), p] - r6
                d7 = rot_t[j0 + np.uint64(7), p] - r7
                partial[i] += ((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)) + (
                    (d4 * d4 + d5 * d5) + (d6 * d6 + d7 * d7)
                )
            bound32 = np.float32(best_d[g, last] + slack)
            alive = np.int32(0)
            for i in range(size):
                alive += np.int32(partial[i] <= bound32)
            if alive == 0:
                break
        if alive == 0:
            continue
        for i in range(size):
            bound32 = np.float32(best_d[g, last] + slack)
            acc = partial[i]
            if acc > bound32:
                continue
            p = begin + i
            for j in range(n_refine):
                diff = refine[p, j] - rotated[q, n_axes + j]
                acc += diff * diff
            if acc > bound32:
                continue
            _offer(_sqdist(points, p, queries, q), order[p], best_d, best_i, g)
            counts[q, 1] += 1
    counts[q, 0] += stop[node] - start[node]


@numba.njit(cache=True, fastmath=_FAST)
def _search_group(
    members, queries, rotated, slacks, tree, nodes, best_d, best_i, counts, pending, active, partial
) -> None:
    """Exact k-NN of the queries ``members`` (k-best rows 0..len-1), walking the tree together.

    Depth first with backtracking. Each pending node carries the list of the group's queries
    still in the walk there, with their bound (the parent's box distance): ``pending[s]`` =
    (node, offset, length) into ``active`` = (row in the group, bound). A popped node writes its
    own list right after its parent's: the far child, popped after the near child's whole
    subtree, overwrites only lists no longer pending. counts[q, 2] += boxes tested.
    """
    split_dim, low, high, left, right = nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
    box_low, box_high = nodes[6], nodes[7]
    n_members = members.shape[0]
    last = best_d.shape[1] - 1
    for g in range(n_members):
        active[g, 0] = g
        active[g, 1] = 0.0
    size = 1
    pending[0, 0] = 0
    pending[0, 1] = 0
    pending[0, 2] = n_members
    while size > 0:
        size -= 1
        node = pending[size, 0]
        begin = pending[size, 1]
        out = begin + pending[size, 2]
        kept = 0
        for a in range(begin, out):
            g = np.int64(active[a, 0])
            q = members[g]
            bound = best_d[g, last] + slacks[q]
            if active[a, 1] > bound:
                continue  # the k-th best ball shrank below this branch's bound meanwhile
            counts[q, 2] += 1
            box = _box_sqdist(box_low, box_high, node, rotated, q)
            if box > bound:
                continue
            active[out + kept, 0] = g
            active[out + kept, 1] = box
            kept += 1
        if kept == 0:
            continue
        if split_dim[node] < 0:
            for a in range(out, out + kept):
                g = np.int64(active[a, 0])
                q = members[g]
                _scan_leaf(node, queries, rotated, q, slacks[q], tree, best_d, best_i, g, counts,
                           partial)
            continue
        # Near child first: the side of the split where most of the kept queries lie (their
        # mean); for one query, its own side.
        dim = split_dim[node]
        total = 0.0
        for a in range(out, out + kept):
            total += rotated[members[np.int64(active[a, 0])], dim]
        if total <= kept * 0.5 * (low[node] + high[node]):
            near, far = left[node], right[node]
        else:
            near, far = right[node], left[node]
        # Last in, first out: the near child is searched first, the far one on the way back.
        pending[size, 0] = far
        pending[size, 1] = out
        pending[size, 2] = kept
        pending[size + 1, 0] = near
        pending[size + 1, 1] = out
        pending[size + 1, 2] = kept
        size += 2


@numba.njit(cache=True, nogil=True)
def _search_groups(
    queries, rotated, slacks, tree, nodes, depth, members, group_ptr, first, stop, out_d, out_i,
    out_counts,
) -> None:
    """Exact search of the query groups ``first:stop`` (group j: ``members[group_ptr[j]:
    group_ptr[j + 1]]``) into the output rows. Runs without the GIL, so threads can share
    the groups."""
    k = out_d.shape[1]
    largest = 1
    for grp in range(first, stop):
        largest = max(largest, group_ptr[grp + 1] - group_ptr[grp])
    best_d = np.empty((largest, k), dtype=np.float64)
    best_i = np.empty((largest, k), dtype=np.int64)
    pending = np.empty((depth + 2, 3), dtype=np.int64)
    active = np.empty((largest * (depth + 3), 2), dtype=np.float64)
    partial = np.empty(_BLOCK, dtype=np.float32)
    for grp in range(first, stop):
        group = members[group_ptr[grp] : group_ptr[grp + 1]]
        for g in range(group.shape[0]):
            for j in range(k):
                best_d[g, j] = np.inf
                best_i[g, j] = _NO_INDEX
            for j in range(3):
                out_counts[group[g], j] = 0
        _search_group(
            group, queries, rotated, slacks, tree, nodes, best_d, best_i, out_counts, pending,
            active, partial,
        )
        # Element-wise copies: array-to-row assignment costs numba seconds of compilation.
        for g in range(group.shape[0]):
            for j in range(k):
                out_d[group[g], j] = best_d[g, j]
                out_i[group[g], j] = best_i[g, j]


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _prepare(queries, mean, axes, data_radius, slack_factor, nodes, first, stop, rotated, slacks,
             home) -> None:
    """Queries ``first:stop``: their coordinates on the principal axes (``rotated``, float32),
    pruning slack and home leaf. In numba, not a BLAS call: OpenBLAS threads left spinning
    after one would compete with the search for the cores."""
    split_dim, low, high, left, right = nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
    n_axes, dim = axes.shape
    centred = np.empty(dim, dtype=np.float64)
    for q in range(first, stop):
        radius_sq = 0.0
        for i in range(dim):
            centred[i] = queries[q, i] - mean[i]
            radius_sq += centred[i] * centred[i]
        for j in range(n_axes):
            acc = 0.0
            for i in range(dim):
                acc += axes[j, i] * centred[i]
            rotated[q, j] = acc
        slacks[q] = slack_factor * (data_radius + np.sqrt(radius_sq)) ** 2
        node = 0
        while split_dim[node] >= 0:
            if rotated[q, split_dim[node]] <= 0.5 * (low[node] + high[node]):
                node = left[node]
            else:
                node = right[node]
        home[q] = node


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


@numba.njit(cache=True, fastmath=_FAST)
def _best_bin_first(
    queries, rotated, q, slack, max_checks, tree, nodes, offsets, heap_d, heap_n, best_d, best_i,
    counts, partial,
) -> None:
    """Beis & Lowe's best-bin-first search for query ``q`` (k-best row 0).

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
    last = best_d.shape[1] - 1
    size = _heap_push(heap_d, heap_n, 0, 0.0, 0)
    while size > 0:
        cell_dist = heap_d[0]
        node = heap_n[0]
        size = _heap_pop(heap_d, heap_n, size)
        if cell_dist > best_d[0, last] + slack:
            break
        if counts[q, 0] >= max_checks and best_d[0, last] < np.inf:
            break
        # Rebuild the per-dimension offsets of this cell from its ancestors' splits.
        child = node
        up = parent[child]
        while up >= 0:
            dim = split_dim[up]
            value = rotated[q, dim]
            side = value - low[up] if left[up] == child else high[up] - value
            if side > offsets[dim]:
                offsets[dim] = side
            child = up
            up = parent[child]
        # Descend to a leaf, queueing every far sibling with its exact cell distance
        # (Arya & Mount: only the split dimension's offset changes).
        while split_dim[node] >= 0:
            dim = split_dim[node]
            value = rotated[q, dim]
            old = offsets[dim]
            off_left = max(old, value - low[node])
            off_right = max(old, high[node] - value)
            if value <= 0.5 * (low[node] + high[node]):
                near, far, off_near, off_far = left[node], right[node], off_left, off_right
            else:
                near, far, off_near, off_far = right[node], left[node], off_right, off_left
            far_dist = cell_dist - old * old + off_far * off_far
            if far_dist <= best_d[0, last] + slack:
                size = _heap_push(heap_d, heap_n, size, far_dist, far)
            cell_dist = cell_dist - old * old + off_near * off_near
            offsets[dim] = off_near
            node = near
        _scan_leaf(node, queries, rotated, q, slack, tree, best_d, best_i, 0, counts, partial)
        # Every non-zero offset lies on a split dimension of this leaf's ancestors.
        up = parent[node]
        while up >= 0:
            offsets[split_dim[up]] = 0.0
            up = parent[up]


@numba.njit(cache=True, nogil=True)
def _best_bin_first_range(
    queries, rotated, slacks, max_checks, tree, nodes, first, stop, out_d, out_i, out_counts
) -> None:
    """Best-bin-first search of queries ``first:stop``, one at a time, into the output rows."""
    k = out_d.shape[1]
    n_nodes = nodes[0].shape[0]
    offsets = np.zeros(rotated.shape[1], dtype=np.float64)
    heap_d = np.empty(n_nodes, dtype=np.float64)
    heap_n = np.empty(n_nodes, dtype=np.int64)
    best_d = np.empty((1, k), dtype=np.float64)
    best_i = np.empty((1, k), dtype=np.int64)
    partial = np.empty(_BLOCK, dtype=np.float32)
    for q in range(first, stop):
        for j in range(k):
            best_d[0, j] = np.inf
            best_i[0, j] = _NO_INDEX
        for j in range(3):
            out_counts[q, j] = 0
        _best_bin_first(
            queries, rotated, q, slacks[q], max_checks, tree, nodes, offsets, heap_d, heap_n,
            best_d, best_i, out_counts, partial,
        )
        for j in range(k):
            out_d[q, j] = best_d[0, j]
            out_i[q, j] = best_i[0, j]


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


def _parts(total: int, n_parts: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Bounds cutting ``range(total)`` into ``n_parts`` runs of about equal (weighted) size."""
    if weights is None:
        return np.linspace(0, total, n_parts + 1).astype(np.int64)
    cumulative = np.concatenate([[0], np.cumsum(weights)])
    bounds = np.searchsorted(cumulative, np.linspace(0, cumulative[-1], n_parts + 1))
    bounds[0], bounds[-1] = 0, total
    return np.maximum.accumulate(bounds).astype(np.int64)


class KDTree:
    """A kd-tree over N points in D dimensions (Euclidean distance).

    Args:
        data: the database, ``(N, D)``, any real dtype; distances are computed in float64 (the
            points are stored in float32 when that loses nothing, as for SIFT descriptors).
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
        if np.abs(data).max() > _LIMIT:
            raise ValueError(f"data: coordinates beyond {_LIMIT:g} in magnitude are unsupported")
        self.leaf_size = int(leaf_size)
        dim = data.shape[1]
        if principal_axes is None:
            self._mean = np.zeros(dim)
            tree_axes, refine_axes = np.eye(dim), np.zeros((0, dim))
        else:
            self._mean = data.mean(axis=0)
            centred = data - self._mean
            _, eigvecs = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
            by_variance = eigvecs[:, ::-1].T  # (D, D), rows = axes
            keep = min(int(principal_axes), dim)
            tree_axes, refine_axes = by_variance[:keep], by_variance[keep : keep + _REFINE]
        self.principal_axes = None if principal_axes is None else tree_axes.shape[0]
        # Zero axes pad the tree's to whole screening passes (they add 0 to every bound).
        pad = np.zeros((-tree_axes.shape[0] % _STAGE, dim))
        self._n_tree_axes = tree_axes.shape[0] + pad.shape[0]
        self._axes = np.ascontiguousarray(np.vstack([tree_axes, pad, refine_axes]))  # (m + r, D)
        rotated = (data - self._mean) @ self._axes.T  # (N, D) -> (N, m + r)
        self._radius = float(np.sqrt(((data - self._mean) ** 2).sum(axis=1).max()))
        self._slack_factor = 4.0 * (self._axes.shape[0] + 4) * _UNIT
        self._build(data, rotated)

    def _build(self, data: np.ndarray, rotated: np.ndarray) -> None:
        n, m = rotated.shape[0], self._n_tree_axes
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
            cell = rotated[idx, :m]
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
        # Leaf-contiguous copies of the data: a leaf's points are one block of memory. The tree's
        # axes are stored transposed (a pass over a block reads 8 rows of consecutive points),
        # with _LANES columns of padding for the whole-vector reads past the last leaf.
        rotated = rotated[order].astype(np.float32)
        tree_t = np.zeros((m, n + _LANES), dtype=np.float32)
        tree_t[:, :n] = rotated[:, :m].T
        narrow = data.astype(np.float32)
        if np.array_equal(narrow, data):
            data = narrow  # lossless (e.g. SIFT descriptors): half the memory traffic
        self._tree = (
            np.ascontiguousarray(data[order]),
            tree_t,
            np.ascontiguousarray(rotated[:, m:]),
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
            checks: ``None`` for the exact search (depth-first with backtracking; queries that
                share a home leaf walk the tree together). An integer runs best-bin-first
                search, which stops once it has examined this many database points (finishing
                the leaf it is in); with ``checks >= n_points`` it is exact.
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
        if np.abs(queries).max() > _LIMIT:
            raise ValueError(f"queries: coordinates beyond {_LIMIT:g} in magnitude are unsupported")
        n = queries.shape[0]
        sq = np.empty((n, k))
        idx = np.empty((n, k), dtype=np.int64)
        counts = np.empty((n, 3), dtype=np.int64)
        rotated = np.empty((n, self._axes.shape[0]), dtype=np.float32)
        slacks = np.empty(n)
        home = np.empty(n, dtype=np.int64)
        # numba's thread count (NUMBA_NUM_THREADS, numba.set_num_threads) sets the parallelism.
        n_threads = max(1, min(numba.get_num_threads(), n // 64))
        parts = _parts(n, n_threads)
        self._parallel(
            n_threads,
            lambda t: _prepare(
                queries, self._mean, self._axes, self._radius, self._slack_factor, self._nodes,
                parts[t], parts[t + 1], rotated, slacks, home,
            ),
        )
        if checks is None:
            # Groups: queries with the same home leaf, at most _GROUP of them.
            members = np.argsort(home, kind="stable")
            sorted_home = home[members]
            new_leaf = np.flatnonzero(sorted_home[1:] != sorted_home[:-1]) + 1
            first_of_leaf = np.concatenate([[0], new_leaf])
            rank = np.arange(n) - np.repeat(first_of_leaf, np.diff(np.append(first_of_leaf, n)))
            starts = np.flatnonzero(rank % _GROUP == 0)
            group_ptr = np.append(starts, n).astype(np.int64)
            groups = _parts(len(starts), n_threads, np.diff(group_ptr))
            self._parallel(
                n_threads,
                lambda t: _search_groups(
                    queries, rotated, slacks, self._tree, self._nodes, self.depth, members,
                    group_ptr, groups[t], groups[t + 1], sq, idx, counts,
                ),
            )
        else:
            self._parallel(
                n_threads,
                lambda t: _best_bin_first_range(
                    queries, rotated, slacks, int(checks), self._tree, self._nodes, parts[t],
                    parts[t + 1], sq, idx, counts,
                ),
            )
        dist = np.sqrt(sq)
        return (dist, idx, counts) if return_counts else (dist, idx)

    @staticmethod
    def _parallel(n_threads: int, run) -> None:
        if n_threads == 1:
            run(0)
        else:
            with ThreadPoolExecutor(n_threads) as pool:
                list(pool.map(run, range(n_threads)))


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
