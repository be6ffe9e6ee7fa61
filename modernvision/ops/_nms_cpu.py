"""Greedy NMS on the CPU: numpy layout plus a small numba kernel, with spatial culling.

The result is exactly torchvision's greedy NMS: boxes are visited in descending score order and
a kept box suppresses every later box whose IoU with it is ``> threshold``. Three things make it
faster than the reference O(N^2) loop without changing a single decision:

1. Spatial culling. Boxes are laid out in strips (sorted by label then ``x1``) and, inside each
   strip, in blocks of 32 (sorted by label then ``y1``). A kept box skips every strip and block
   whose bounding extent it does not overlap with positive area, whose labels differ from its own,
   or whose boxes all rank before it. A skipped pair has zero intersection, so its IoU is 0 (or
   NaN for two empty boxes), never ``> threshold`` when ``threshold >= 0``; for a negative
   threshold nothing is culled by extent.
2. No rank test in the inner loop: marking a box that ranks *before* the current one is harmless,
   since its fate was decided when it was visited. The inner loop is then float-only and
   branch-free, and LLVM vectorises it (labels are compared as floats for the same reason; the
   "decided" flag is only written there, never read-modified-written, which would block it).
3. Retirement: a block whose boxes are all decided (kept or suppressed) is skipped from then on,
   so heavily overlapping inputs get cheaper as NMS proceeds.

IoU is evaluated as in torchvision's CPU kernel, in the boxes' dtype with the same operations in
the same order: ``inter / (area_i + area_j - inter)``. The comparison ``ovr > threshold`` with a
float64 threshold is done in float32 for float32 boxes against the largest float32 that is
``<= threshold``, which gives the same answer for every float32 ``ovr``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

BLOCK = 32


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _greedy(  # noqa: C901 -- one flat loop nest is what the compiler vectorises
    x1, y1, x2, y2, area, labels, pos,
    sx1, sy1, sx2, sy2, sarea, slabels,
    blocks, strips, blocks_per_strip,
    threshold, zero, cull,
):  # fmt: skip
    n = x1.shape[0]
    nblocks = blocks.shape[0]
    keep = np.empty(n, np.int64)
    # 1 once a box is decided (kept or suppressed), in layout order. Blocks and strips with no
    # undecided box left are retired by setting their max rank to -1.
    decided = np.zeros(n, np.uint8)
    retired_blocks = np.zeros(strips.shape[0], np.int64)
    num_kept = 0
    for r in range(n):
        if decided[pos[r]]:
            continue
        decided[pos[r]] = 1
        keep[num_kept] = r
        num_kept += 1
        ax1 = x1[r]
        ay1 = y1[r]
        ax2 = x2[r]
        ay2 = y2[r]
        aarea = area[r]
        alabel = labels[r]
        for s in range(strips.shape[0]):
            # extent columns: x1 min, y1 min, x2 max, y2 max, label min, label max, rank max
            if strips[s, 6] <= r or strips[s, 4] > alabel or strips[s, 5] < alabel:
                continue
            if cull and (
                strips[s, 0] >= ax2
                or strips[s, 2] <= ax1
                or strips[s, 1] >= ay2
                or strips[s, 3] <= ay1
            ):
                continue
            b0 = s * blocks_per_strip
            b1 = min(b0 + blocks_per_strip, nblocks)
            for b in range(b0, b1):
                if blocks[b, 6] <= r or blocks[b, 4] > alabel or blocks[b, 5] < alabel:
                    continue
                if cull and (
                    blocks[b, 0] >= ax2
                    or blocks[b, 2] <= ax1
                    or blocks[b, 1] >= ay2
                    or blocks[b, 3] <= ay1
                ):
                    continue
                j0 = b * BLOCK
                j1 = min(j0 + BLOCK, n)
                undecided = 0
                for j in range(j0, j1):
                    undecided += 1 - decided[j]
                if undecided == 0:
                    blocks[b, 6] = -1.0
                    retired_blocks[s] += 1
                    if retired_blocks[s] == b1 - b0:
                        strips[s, 6] = -1.0
                    continue
                for j in range(j0, j1):
                    left = max(ax1, sx1[j])
                    top = max(ay1, sy1[j])
                    right = min(ax2, sx2[j])
                    bottom = min(ay2, sy2[j])
                    w = max(zero, right - left)
                    h = max(zero, bottom - top)
                    inter = w * h
                    ovr = inter / (aarea + sarea[j] - inter)
                    if (ovr > threshold) & (slabels[j] == alabel):
                        decided[j] = 1
    return keep[:num_kept]


_REDUCE = (np.minimum, np.minimum, np.maximum, np.maximum, np.minimum, np.maximum, np.maximum)


def _extents(columns: list[np.ndarray], starts: np.ndarray) -> np.ndarray:
    """Per segment starting at ``starts``: min x1, min y1, max x2, max y2, min/max label, max rank.

    float64 holds every float32 coordinate and every rank exactly, so comparisons against it
    decide exactly as comparisons against the original values.
    """
    out = np.empty((len(starts), 7), np.float64)
    for col, (values, reduce) in enumerate(zip(columns, _REDUCE)):
        out[:, col] = reduce.reduceat(values, starts)
    return out


def greedy_nms_sorted(
    x1: np.ndarray,
    y1: np.ndarray,
    x2: np.ndarray,
    y2: np.ndarray,
    labels: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Ranks kept by greedy NMS of boxes already sorted by descending score.

    Args:
        x1, y1, x2, y2: contiguous float32 or float64 coordinates, in score order.
        labels: int64 label per box; boxes with different labels never suppress each other.
        threshold: IoU above which a box is suppressed.

    Returns:
        int64 positions (into the sorted arrays) of the kept boxes, in score order.
    """
    n = x1.shape[0]
    if n == 0:
        return np.empty(0, np.int64)
    dtype = x1.dtype
    area = (x2 - x1) * (y2 - y1)  # same op order as torchvision, in the boxes' dtype
    # Dense float labels (exact below 2**24 distinct labels) keep the inner loop float-only.
    _, dense = np.unique(labels, return_inverse=True)
    flabels = dense.astype(dtype)

    nblocks = -(-n // BLOCK)
    blocks_per_strip = max(1, math.isqrt(nblocks))
    strip = BLOCK * blocks_per_strip
    perm = np.lexsort((x1, flabels))  # by label, then x1
    strip_id = np.arange(n) // strip
    perm = perm[np.lexsort((y1[perm], flabels[perm], strip_id))]  # inside a strip: label, y1
    pos = np.empty(n, np.int64)
    pos[perm] = np.arange(n)
    sx1, sy1, sx2, sy2 = x1[perm], y1[perm], x2[perm], y2[perm]
    sarea, slabels = area[perm], flabels[perm]

    blocks = _extents([sx1, sy1, sx2, sy2, slabels, slabels, perm], np.arange(0, n, BLOCK))
    strips = _extents(list(blocks.T), np.arange(0, nblocks, blocks_per_strip))

    if dtype == np.float32:
        thr, zero = float32_threshold(threshold), np.float32(0)
    else:
        thr, zero = np.float64(threshold), np.float64(0)
    return _greedy(
        x1, y1, x2, y2, area, flabels, pos,
        sx1, sy1, sx2, sy2, sarea, slabels,
        blocks, strips, blocks_per_strip,
        thr, zero, bool(threshold >= 0),
    )  # fmt: skip


def float32_threshold(threshold: float) -> np.float32:
    """Largest float32 ``t <= threshold``: for float32 ``x``, ``x > t`` iff ``x > threshold``."""
    t = np.float32(threshold)
    if float(t) > threshold:
        t = np.nextafter(t, np.float32(-np.inf))
    return t
