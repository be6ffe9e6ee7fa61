"""Multi-scale sliding-window detection with an attentional cascade.

Paper: "Rapid Object Detection using a Boosted Cascade of Simple Features", Viola & Jones,
CVPR 2001 / "Robust Real-Time Face Detection", IJCV 2004, section 5.6 ("Scanning the
detector", "Integration of multiple detections").

Two ways to scan, chosen by ``mode``:

``mode="opencv"`` (the default)
    ``cv2.CascadeClassifier.detectMultiScale``'s algorithm, reproduced step for step so that
    OpenCV's cascades give OpenCV's boxes: scales ``1, f, f**2, ...`` kept while the window
    fits the image and ``min_size``/``max_size``; at each scale the *image* is shrunk to
    ``round(W / s) x round(H / s)`` (bilinear, ``cv2.resize`` with ``INTER_LINEAR_EXACT``: the
    one step we borrow from OpenCV, for bit-exact pixels) and the fixed-size window slides with
    a step of 2 pixels while ``s < 2`` and 1 pixel after, skipping the next position whenever
    a window is rejected by the very first stage; windows whose variance normaliser is tiny
    (standard deviation of at most 10 grey levels) are rejected outright; detections are grouped
    by :func:`group_rectangles` (``eps = 0.2``, ``min_neighbors``). This is the default
    because it is what the OpenCV cascades were tuned for and what users compare against.

``mode="paper"``
    The paper's scheme: one integral image of the original picture; at scale ``s`` the
    *features* are scaled (rectangle corners rounded, each rectangle's weight corrected by its
    true area so the feature keeps its value), the window is shifted by ``round(s * step)``
    pixels, and the same variance normalisation is applied. No image resampling at all.
    Grouping as in the paper (overlapping detections merged, corners averaged), then optional
    greedy non-maximum suppression (``nms_iou``) keeping the largest groups first.

Both modes share the per-window evaluation (a numba kernel), with the paper's early
rejection: a window leaves the cascade at the first stage that rejects it, and the kernel
counts how many features each window needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from modernvision.classic.viola_jones._threads import bands, parallel_map
from modernvision.classic.viola_jones.cascade import Cascade
from modernvision.classic.viola_jones.integral import tilted_integral_image
from modernvision.classic.viola_jones.postprocess import greedy_nms, group_rectangles

__all__ = ["DetectionStats", "check_gray", "detect_multiscale", "opencv_scales", "to_gray"]

MODES = ("opencv", "paper")
# HaarEvaluator::setWindow rejects a window when area / sqrt(area * sqsum - sum**2) >= 0.1,
# i.e. when its standard deviation is at most 10 grey levels.
VARIANCE_REJECT = 0.1


@dataclass
class DetectionStats:
    """What a detection run cost.

    Attributes:
        windows: windows whose variance test passed and that entered the cascade.
        rejected_flat: windows rejected before any stage (standard deviation <= 10).
        features: weak-classifier nodes evaluated in total.
        raw_detections: windows accepted by every stage (before grouping).
        scales: number of scales scanned.
    """

    windows: int = 0
    rejected_flat: int = 0
    features: int = 0
    raw_detections: int = 0
    scales: int = 0

    @property
    def features_per_window(self) -> float:
        """Average number of features evaluated per window entering the cascade."""
        return self.features / max(self.windows, 1)


# ---------------------------------------------------------------------------------------------
# input checks


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB(A) or grey uint8 image to grey uint8, with OpenCV's fixed-point BT.601 weights.

    Equals ``cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)`` bit for bit:
    ``(9798 R + 19235 G + 3735 B + 2**14) >> 15``.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got dtype {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = image[..., :3].astype(np.int32)
        g = (rgb[..., 0] * 9798 + rgb[..., 1] * 19235 + rgb[..., 2] * 3735 + 16384) >> 15
        return g.astype(np.uint8)
    raise ValueError(f"image must be [H, W] grey or [H, W, 3|4] RGB(A), got shape {image.shape}")


def check_gray(gray: np.ndarray) -> np.ndarray:
    """Validate a detector input: a non-empty 2-D uint8 array."""
    if not isinstance(gray, np.ndarray):
        raise TypeError(f"gray must be a numpy array, got {type(gray).__name__}")
    if gray.ndim != 2:
        raise ValueError(
            f"gray must be a 2-D grey image [H, W], got shape {gray.shape}; convert colour "
            "images first (modernvision.classic.viola_jones.to_gray)"
        )
    if gray.size == 0:
        raise ValueError(f"gray is an empty image (shape {gray.shape})")
    if gray.dtype != np.uint8:
        raise ValueError(f"gray must be uint8 grey levels, got dtype {gray.dtype}")
    return np.ascontiguousarray(gray)


# ---------------------------------------------------------------------------------------------
# the per-window kernel


@numba.njit(cache=True, inline="always")
def _window_norm(table, sqsum, p, n0, n1, n2, n3, norm_area):
    """HaarEvaluator::setWindow: the variance normaliser ``1 / sqrt(area * sum(x^2) - sum(x)^2)``
    over the window (shrunk by 1 pixel) at cell ``p``, in float32; 0 for a refused ("flat")
    window: a non-positive variance, or ``area * factor >= 0.1`` (std <= 10 grey levels)."""
    s = table[p + n0] - table[p + n1] - table[p + n2] + table[p + n3]
    q = sqsum[p + n0] - sqsum[p + n1] - sqsum[p + n2] + sqsum[p + n3]
    nf = norm_area * np.float64(q) - np.float64(s) * np.float64(s)
    if nf <= 0.0:
        return np.float32(0.0)
    vnf = np.float32(1.0 / math.sqrt(nf))
    if not norm_area * np.float64(vnf) < VARIANCE_REJECT:
        return np.float32(0.0)
    return vnf


@numba.njit(cache=True, inline="always")
def _feature(table, p, node_ofs, node_w, node_nr, k):
    """Value of feature ``k`` at the window whose top-left cell is ``p`` in the flat integral
    ``table``: OptFeature::calc, float32 products and sums in rectangle order (2 to 4 rectangles,
    four look-ups each)."""
    ret = node_w[k, 0] * np.float32(
        table[p + node_ofs[k, 0]]
        - table[p + node_ofs[k, 1]]
        - table[p + node_ofs[k, 2]]
        + table[p + node_ofs[k, 3]]
    )
    for r in range(1, max(node_nr[k], 2)):  # rectangles 0 and 1 always (as OpenCV)
        ret = ret + node_w[k, r] * np.float32(
            table[p + node_ofs[k, 4 * r]]
            - table[p + node_ofs[k, 4 * r + 1]]
            - table[p + node_ofs[k, 4 * r + 2]]
            + table[p + node_ofs[k, 4 * r + 3]]
        )
    return ret


@numba.njit(cache=True, nogil=True)
def _scan_stumps(
    y0,
    y1,
    table,
    sqsum,
    stride,
    nx,
    step,
    opencv_skip,
    norm_ofs,
    norm_area,
    node_ofs,
    node_w,
    node_nr,
    node_thr,
    leaves,
    stage_first,
    stage_count,
    stage_thr,
    out,
    stats,
):
    # Cascades of stumps (OpenCV's predictOrderedStump): weak classifier i is node i with
    # leaves 2i (value < threshold) and 2i + 1. Rows y0..y1-1 of the grid; rows are
    # independent (the skip rule only looks along a row), so bands of rows run in parallel.
    # The window set-up and feature sums are written out here (not in helpers) on purpose:
    # this loop is the detector's whole cost and numba optimises it best flat.
    n_stages = stage_first.shape[0]
    n0, n1, n2, n3 = norm_ofs[0], norm_ofs[1], norm_ofs[2], norm_ofs[3]
    for iy in range(y0, y1):
        row = iy * step * stride
        skip = False
        n_win = 0
        n_flat = 0
        n_feat = 0
        for ix in range(nx):
            if skip:  # OpenCV: after a window rejected by stage 0, the next one is skipped
                skip = False
                continue
            p = row + ix * step
            vnf = _window_norm(table, sqsum, p, n0, n1, n2, n3, norm_area)
            if vnf == 0.0:
                n_flat += 1
                continue
            n_win += 1
            result = 1
            for si in range(n_stages):
                acc = 0.0
                first = stage_first[si]
                for k in range(first, first + stage_count[si]):
                    ret = _feature(table, p, node_ofs, node_w, node_nr, k)
                    n_feat += 1
                    if ret * vnf < node_thr[k]:
                        acc += leaves[2 * k]
                    else:
                        acc += leaves[2 * k + 1]
                if acc < np.float64(stage_thr[si]):
                    result = -si
                    break
            if result == 1:
                out[iy, ix] = 1
            elif result == 0 and opencv_skip:
                skip = True
        stats[iy, 0] = n_win
        stats[iy, 1] = n_flat
        stats[iy, 2] = n_feat


@numba.njit(cache=True, nogil=True)
def _scan_trees(
    y0,
    y1,
    table,
    sqsum,
    stride,
    nx,
    step,
    opencv_skip,
    norm_ofs,
    norm_area,
    node_ofs,
    node_w,
    node_nr,
    node_thr,
    node_left,
    node_right,
    leaves,
    stage_first,
    stage_count,
    stage_thr,
    weak_node,
    weak_leaf,
    out,
    stats,
):
    # Cascades of trees (OpenCV's predictOrdered): children > 0 are nodes of the same tree,
    # children <= 0 index the tree's leaves. Otherwise as _scan_stumps.
    n_stages = stage_first.shape[0]
    n0, n1, n2, n3 = norm_ofs[0], norm_ofs[1], norm_ofs[2], norm_ofs[3]
    for iy in range(y0, y1):
        row = iy * step * stride
        skip = False
        n_win = 0
        n_flat = 0
        n_feat = 0
        for ix in range(nx):
            if skip:
                skip = False
                continue
            p = row + ix * step
            vnf = _window_norm(table, sqsum, p, n0, n1, n2, n3, norm_area)
            if vnf == 0.0:
                n_flat += 1
                continue
            n_win += 1
            result = 1
            for si in range(n_stages):
                acc = 0.0
                first = stage_first[si]
                for wi in range(first, first + stage_count[si]):
                    root = weak_node[wi]
                    idx = 0
                    while True:
                        k = root + idx
                        ret = _feature(table, p, node_ofs, node_w, node_nr, k)
                        n_feat += 1
                        if ret * vnf < node_thr[k]:
                            idx = node_left[k]
                        else:
                            idx = node_right[k]
                        if idx <= 0:
                            break
                    acc += leaves[weak_leaf[wi] - idx]
                if acc < np.float64(stage_thr[si]):
                    result = -si
                    break
            if result == 1:
                out[iy, ix] = 1
            elif result == 0 and opencv_skip:
                skip = True
        stats[iy, 0] = n_win
        stats[iy, 1] = n_flat
        stats[iy, 2] = n_feat


@numba.njit(cache=True, nogil=True)
def _integrals_kernel(img, s, sq):
    h, w = img.shape
    for y in range(h):
        rs = np.int64(0)
        rq = np.int64(0)
        for x in range(w):
            v = np.int64(img[y, x])
            rs += v
            rq += v * v
            s[y + 1, x + 1] = s[y, x + 1] + rs
            sq[y + 1, x + 1] = sq[y, x + 1] + rq


def rect_corners(rects: np.ndarray, tilted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column and row of the four table look-ups of each rectangle, int64 ``[..., 4]`` each.

    Upright ``(x, y, w, h)``: ``(x, y), (x+w, y), (x, y+h), (x+w, y+h)`` (OpenCV's
    ``CV_SUM_OFS``); tilted: ``(x, y), (x-h, y+h), (x+w, y+w), (x+w-h, y+w+h)``
    (``CV_TILTED_OFS``). The sum is ``t[0] - t[1] - t[2] + t[3]`` in both cases.
    """
    x, y, w, h = (rects[..., k].astype(np.int64) for k in range(4))
    tl = np.broadcast_to(np.asarray(tilted, bool), x.shape)
    cx = np.where(
        tl[..., None],
        np.stack([x, x - h, x + w, x + w - h], -1),
        np.stack([x, x + w, x, x + w], -1),
    )
    cy = np.where(
        tl[..., None],
        np.stack([y, y + h, y + w, y + w + h], -1),
        np.stack([y, y, y + h, y + h], -1),
    )
    return cx, cy


def _corner_offsets(
    rects: np.ndarray, tilted: np.ndarray, stride: int, tilt_base: int
) -> np.ndarray:
    """Flat table offsets of each rectangle's four look-ups, int64 ``[F, R, 4]``."""
    cx, cy = rect_corners(rects, tilted[:, None])
    return cx + stride * cy + np.where(tilted, tilt_base, 0)[:, None, None]


@dataclass
class _Packed:
    """A cascade flattened into the node-major arrays the kernel reads."""

    stage_first: np.ndarray
    stage_count: np.ndarray
    stage_thr: np.ndarray
    weak_node: np.ndarray
    weak_leaf: np.ndarray
    is_stump: bool
    node_feat: np.ndarray
    node_thr: np.ndarray
    node_left: np.ndarray
    node_right: np.ndarray
    leaves: np.ndarray
    node_nr: np.ndarray  # rectangles used by each node's feature
    node_cx: np.ndarray  # [n_nodes, 16] look-up columns (4 rectangles x 4 corners)
    node_cy: np.ndarray
    node_tilted: np.ndarray
    node_w: np.ndarray  # [n_nodes, 4] float32 rectangle weights
    has_tilted: bool


def _n_rects(weights: np.ndarray) -> np.ndarray:
    # rectangles are used in order; the first zero weight ends the list (OpenCV skips
    # rect[2] when its weight is 0). At least two are always evaluated, as OpenCV does.
    nz = weights != 0
    n = np.where(nz.all(axis=1), weights.shape[1], np.argmin(nz, axis=1))
    return np.maximum(n, 2).astype(np.int32)


def _pack(cascade: Cascade) -> _Packed:
    if cascade._packed is not None:
        return cascade._packed
    stage_first, stage_count, stage_thr = [], [], []
    weak_node, weak_leaf = [], []
    feat, thr, left, right, leaves = [], [], [], [], []
    for s in cascade.stages:
        stage_first.append(len(weak_node))
        stage_count.append(len(s.weak))
        stage_thr.append(s.threshold)
        for t in s.weak:
            weak_node.append(len(feat))
            weak_leaf.append(len(leaves))
            feat.extend(t.feature.tolist())
            thr.extend(t.threshold.tolist())
            left.extend(t.left.tolist())
            right.extend(t.right.tolist())
            leaves.extend(t.leaves.tolist())
    node_feat = np.array(feat, np.int32)
    fs = cascade.features
    cx, cy = rect_corners(fs.rects[node_feat], fs.tilted[node_feat][:, None])
    packed = _Packed(
        np.array(stage_first, np.int32),
        np.array(stage_count, np.int32),
        np.array(stage_thr, np.float32),
        np.array(weak_node, np.int32),
        np.array(weak_leaf, np.int32),
        cascade.max_nodes_per_tree == 1,
        node_feat,
        np.array(thr, np.float32),
        np.array(left, np.int32),
        np.array(right, np.int32),
        np.array(leaves, np.float32),
        _n_rects(fs.weights)[node_feat],
        cx.reshape(len(node_feat), -1),
        cy.reshape(len(node_feat), -1),
        fs.tilted[node_feat],
        np.ascontiguousarray(fs.weights[node_feat]),
        bool(fs.tilted.any()),
    )
    cascade._packed = packed
    return packed


@dataclass
class _Tables:
    table: np.ndarray  # upright sums, followed by the tilted sums when needed (flat)
    sqsum: np.ndarray
    stride: int
    tilt_base: int


def _tables(image: np.ndarray, tilted: bool) -> _Tables:
    image = np.ascontiguousarray(image)
    h, w = image.shape
    s = np.zeros((h + 1, w + 1), np.int64)
    sq = np.zeros((h + 1, w + 1), np.int64)
    _integrals_kernel(image, s, sq)
    flat = s.ravel()
    if tilted:
        flat = np.concatenate([flat, tilted_integral_image(image).ravel()])
    return _Tables(flat, sq.ravel(), w + 1, s.size)


def _scan(
    pk: _Packed,
    tables: _Tables,
    window_size: tuple[int, int],
    *,
    nx: int,
    ny: int,
    step: int,
    opencv_skip: bool,
    node_cx: np.ndarray | None = None,
    node_cy: np.ndarray | None = None,
    node_w: np.ndarray | None = None,
    norm_rect: tuple[int, int, int, int] | None = None,
    norm_area: float | None = None,
    parallel: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Run a packed cascade over an ``ny x nx`` grid of windows ``step`` pixels apart.

    The feature geometry defaults to the cascade's own (unscaled) one; the paper mode passes
    scaled look-up corners, weights and normalisation rectangle instead. ``parallel`` splits
    the rows into bands run on the thread pool (for one big grid; detection instead runs
    whole pyramid levels in parallel).

    Returns:
        ``(accepted int8 [ny, nx], stats int64 [ny, 3])`` with per-row counts of windows
        entering the cascade, windows rejected as flat, and features evaluated.
    """
    out = np.zeros((max(ny, 0), max(nx, 0)), np.int8)
    stats = np.zeros((max(ny, 0), 3), np.int64)
    if nx <= 0 or ny <= 0:
        return out, stats
    win_w, win_h = window_size
    cx = pk.node_cx if node_cx is None else node_cx
    cy = pk.node_cy if node_cy is None else node_cy
    ofs = cx + tables.stride * cy
    if pk.has_tilted:
        ofs[pk.node_tilted] += tables.tilt_base
    if node_w is None:
        node_w = pk.node_w
    nr = (1, 1, win_w - 2, win_h - 2) if norm_rect is None else norm_rect
    ncx, ncy = rect_corners(np.array(nr), False)
    norm_ofs = ncx + tables.stride * ncy
    area = float(nr[2] * nr[3]) if norm_area is None else norm_area

    def run(band: tuple[int, int]) -> None:
        if pk.is_stump:
            _scan_stumps(
                band[0],
                band[1],
                tables.table,
                tables.sqsum,
                tables.stride,
                nx,
                step,
                opencv_skip,
                norm_ofs,
                area,
                ofs,
                node_w,
                pk.node_nr,
                pk.node_thr,
                pk.leaves,
                pk.stage_first,
                pk.stage_count,
                pk.stage_thr,
                out,
                stats,
            )
        else:
            _scan_trees(
                band[0],
                band[1],
                tables.table,
                tables.sqsum,
                tables.stride,
                nx,
                step,
                opencv_skip,
                norm_ofs,
                area,
                ofs,
                node_w,
                pk.node_nr,
                pk.node_thr,
                pk.node_left,
                pk.node_right,
                pk.leaves,
                pk.stage_first,
                pk.stage_count,
                pk.stage_thr,
                pk.weak_node,
                pk.weak_leaf,
                out,
                stats,
            )

    if parallel:
        parallel_map(run, bands(ny))
    else:
        run((0, ny))
    return out, stats


# ---------------------------------------------------------------------------------------------
# OpenCV's scale pyramid


def opencv_scales(
    image_size: tuple[int, int],
    window_size: tuple[int, int],
    scale_factor: float,
    min_size: tuple[int, int],
    max_size: tuple[int, int] | None,
) -> list[np.float32]:
    """The scales ``detectMultiScale`` scans (float32, as OpenCV stores them)."""
    img_w, img_h = image_size
    win_w, win_h = window_size
    max_w, max_h = (0, 0) if max_size is None else max_size
    if max_w == 0 or max_h == 0:
        max_w, max_h = img_w, img_h
    if img_w < win_w or img_h < win_h:
        return []
    all_scales: list[np.float32] = []
    factor = 1.0
    while True:
        if round_half_even(win_w * factor) > img_w or round_half_even(win_h * factor) > img_h:
            break
        all_scales.append(np.float32(factor))
        factor *= scale_factor
    scales = []
    for sc in all_scales:
        ww = round_half_even(np.float32(win_w) * sc)
        wh = round_half_even(np.float32(win_h) * sc)
        if ww > max_w or wh > max_h:
            break
        if ww < min_size[0] or wh < min_size[1]:
            continue
        scales.append(sc)
    if not scales and all_scales:
        # minSize == maxSize between two scales: OpenCV takes the closest one (L2 on sizes)
        dist = [
            (min_size[0] - round_half_even(np.float32(win_w) * sc)) ** 2
            + (min_size[1] - round_half_even(np.float32(win_h) * sc)) ** 2
            for sc in all_scales
        ]
        scales.append(all_scales[int(np.argmin(dist))])
    return scales


def round_half_even(v: float) -> int:
    """``cvRound``: round to nearest, ties to even (what the x86 conversion does)."""
    return int(np.rint(v))


def _pyramid_level(gray: np.ndarray, scale: np.float32) -> np.ndarray:
    """The image shrunk to ``round(W / s) x round(H / s)`` as OpenCV's FeatureEvaluator does."""
    import cv2

    sz = (
        round_half_even(np.float32(gray.shape[1]) / scale),
        round_half_even(np.float32(gray.shape[0]) / scale),
    )
    if sz == (gray.shape[1], gray.shape[0]):
        return gray
    return cv2.resize(gray, sz, interpolation=cv2.INTER_LINEAR_EXACT)


def _scan_level(
    pk: _Packed, small: np.ndarray, window_size: tuple[int, int], scale: np.float32
) -> tuple[np.ndarray, np.ndarray, int]:
    """OpenCV's scan of one pyramid level: step 2 below scale 2, else 1; skip rule on."""
    win_w, win_h = window_size
    step = 1 if scale >= 2 else 2
    # OpenCV's working size is (size + 1 - window); positions 0, step, ... below it
    nx = -(-max(small.shape[1] + 1 - win_w, 0) // step)
    ny = -(-max(small.shape[0] + 1 - win_h, 0) // step)
    mask, st = _scan(
        pk, _tables(small, pk.has_tilted), window_size, nx=nx, ny=ny, step=step, opencv_skip=True
    )
    return mask, st, step


def _opencv_pass(
    cascade: Cascade, gray: np.ndarray, scales: list[np.float32], stats: DetectionStats
) -> list[np.ndarray]:
    win_w, win_h = cascade.window_size
    pk = _pack(cascade)

    def level(sc: np.float32) -> tuple[np.ndarray, np.ndarray, int]:
        return _scan_level(pk, _pyramid_level(gray, sc), cascade.window_size, sc)

    found = []
    for sc, (mask, st, step) in zip(scales, parallel_map(level, scales)):
        _add_stats(stats, st)
        iy, ix = np.nonzero(mask)
        if len(iy):
            ww = round_half_even(np.float32(win_w) * sc)
            wh = round_half_even(np.float32(win_h) * sc)
            xs = np.rint((ix * step).astype(np.float32) * sc).astype(np.int32)
            ys = np.rint((iy * step).astype(np.float32) * sc).astype(np.int32)
            found.append(np.stack([xs, ys, np.full_like(xs, ww), np.full_like(xs, wh)], 1))
    return found


def _add_stats(stats: DetectionStats, st: np.ndarray) -> None:
    stats.windows += int(st[:, 0].sum())
    stats.rejected_flat += int(st[:, 1].sum())
    stats.features += int(st[:, 2].sum())
    stats.scales += 1


# ---------------------------------------------------------------------------------------------
# the paper's feature scaling


def scaled_features(
    cascade: Cascade, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Features and normalisation rectangle scaled by ``scale`` (paper, section 5.6).

    Returns:
        ``(rects, weights, norm_rect, norm_area_ratio)``: integer rectangles (corners rounded),
        float32 weights multiplied by ``area / scaled_area`` of each rectangle and by the
        ratio of scaled to base normalisation area, so that a scaled feature divided by the
        scaled window's ``area * std`` equals the base feature's value on a resampled window.
    """
    win_w, win_h = cascade.window_size
    r = cascade.features.rects.astype(np.float64)
    x0 = np.rint(r[..., 0] * scale)
    y0 = np.rint(r[..., 1] * scale)
    x1 = np.rint((r[..., 0] + r[..., 2]) * scale)
    y1 = np.rint((r[..., 1] + r[..., 3]) * scale)
    tilted = cascade.features.tilted[:, None]
    # tilted rectangles: (x, y) is the top corner; w and h are side lengths, scaled alike
    w_s = np.maximum(np.where(tilted, np.rint(r[..., 2] * scale), x1 - x0), 1)
    h_s = np.maximum(np.where(tilted, np.rint(r[..., 3] * scale), y1 - y0), 1)
    rects = np.stack([x0, y0, w_s, h_s], -1).astype(np.int32)
    area = r[..., 2] * r[..., 3]
    area_s = w_s * h_s
    nx0, ny0 = round(1 * scale), round(1 * scale)
    nx1, ny1 = round((win_w - 1) * scale), round((win_h - 1) * scale)
    norm = np.array([nx0, ny0, nx1 - nx0, ny1 - ny0], np.int32)
    base_area = (win_w - 2) * (win_h - 2)
    norm_area = float(norm[2] * norm[3])
    weights = cascade.features.weights.astype(np.float64) * area / area_s
    weights *= norm_area / base_area
    return rects, weights.astype(np.float32), norm, norm_area


def _paper_pass(
    cascade: Cascade,
    gray: np.ndarray,
    scale_factor: float,
    min_size: tuple[int, int],
    max_size: tuple[int, int] | None,
    step: float,
    stats: DetectionStats,
) -> tuple[list[np.ndarray], list[float]]:
    pk = _pack(cascade)
    tables = _tables(gray, pk.has_tilted)
    img_h, img_w = gray.shape
    win_w, win_h = cascade.window_size
    max_w, max_h = (img_w, img_h) if max_size is None or 0 in max_size else max_size
    scales = []
    scale = 1.0
    while True:
        ww, wh = round(win_w * scale), round(win_h * scale)
        if ww > min(img_w, max_w) or wh > min(img_h, max_h):
            break
        if ww >= min_size[0] and wh >= min_size[1]:
            scales.append(scale)
        scale *= scale_factor

    def level(scale: float) -> tuple[np.ndarray, np.ndarray, int, int, int]:
        ww, wh = round(win_w * scale), round(win_h * scale)
        rects, weights, norm, norm_area = scaled_features(cascade, scale)
        f = pk.node_feat
        cx, cy = rect_corners(rects[f], cascade.features.tilted[f][:, None])
        delta = max(1, round(step * scale))
        mask, st = _scan(
            pk,
            tables,
            cascade.window_size,
            nx=(img_w - ww) // delta + 1,
            ny=(img_h - wh) // delta + 1,
            step=delta,
            opencv_skip=False,
            node_cx=cx.reshape(len(f), -1),
            node_cy=cy.reshape(len(f), -1),
            node_w=np.ascontiguousarray(weights[f]),
            norm_rect=tuple(int(v) for v in norm),
            norm_area=norm_area,
        )
        return mask, st, delta, ww, wh

    found, found_scale = [], []
    for scale, (mask, st, delta, ww, wh) in zip(scales, parallel_map(level, scales)):
        _add_stats(stats, st)
        iy, ix = np.nonzero(mask)
        if len(iy):
            found.append(
                np.stack(
                    [ix * delta, iy * delta, np.full_like(ix, ww), np.full_like(ix, wh)], 1
                ).astype(np.int32)
            )
            found_scale.append(scale)
    return found, found_scale


# ---------------------------------------------------------------------------------------------
# public entry point


def detect_multiscale(
    cascade: Cascade,
    gray: np.ndarray,
    *,
    scale_factor: float = 1.1,
    min_neighbors: int = 3,
    min_size: tuple[int, int] = (0, 0),
    max_size: tuple[int, int] | None = None,
    mode: str = "opencv",
    step: float = 1.5,
    nms_iou: float | None = None,
    return_stats: bool = False,
) -> np.ndarray | tuple[np.ndarray, DetectionStats]:
    """Find objects with a cascade, as ``cv2.CascadeClassifier.detectMultiScale`` does.

    Args:
        cascade: the cascade (ours or loaded from OpenCV).
        gray: uint8 grey image ``[H, W]``.
        scale_factor: how much the window grows between scales (``> 1``).
        min_neighbors: a detection needs more than this many raw windows in its group;
            ``0`` returns the raw windows ungrouped (OpenCV's meaning).
        min_size: ``(w, h)``: smaller windows are not scanned.
        max_size: ``(w, h)``: larger windows are not scanned; ``None`` or ``(0, 0)`` for the
            image size.
        mode: ``"opencv"`` (image pyramid, OpenCV's exact boxes; default) or ``"paper"``
            (features scaled over one integral image). See the module docstring.
        step: window shift at scale 1 in ``"paper"`` mode (the paper's Delta; shifted by
            ``round(step * s)`` at scale ``s``). OpenCV mode uses OpenCV's 2-or-1 pixel steps.
        nms_iou: when given, greedy non-maximum suppression at this IoU after grouping,
            stronger (more neighbours) boxes first.
        return_stats: also return a :class:`DetectionStats`.

    Returns:
        int32 ``[N, 4]`` boxes ``(x, y, w, h)`` (and the stats when asked).
    """
    if not isinstance(cascade, Cascade):
        raise TypeError(f"cascade must be a Cascade, got {type(cascade).__name__}")
    gray = check_gray(gray)
    if not scale_factor > 1:
        raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if int(min_neighbors) != min_neighbors or min_neighbors < 0:
        raise ValueError(f"min_neighbors must be an integer >= 0, got {min_neighbors}")
    min_size = _size_arg(min_size, "min_size")
    max_size = None if max_size is None else _size_arg(max_size, "max_size")
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    if nms_iou is not None and not 0 < nms_iou <= 1:
        raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")

    stats = DetectionStats()
    if mode == "opencv":
        scales = opencv_scales(
            (gray.shape[1], gray.shape[0]), cascade.window_size, scale_factor, min_size, max_size
        )
        found = _opencv_pass(cascade, gray, scales, stats)
    else:
        found, _ = _paper_pass(cascade, gray, scale_factor, min_size, max_size, step, stats)
    raw = np.concatenate(found) if found else np.zeros((0, 4), np.int32)
    stats.raw_detections = len(raw)
    boxes, neighbors = group_rectangles(raw, int(min_neighbors), eps=0.2)
    if nms_iou is not None and len(boxes):
        keep = greedy_nms(boxes, neighbors.astype(np.float64), nms_iou)
        boxes = boxes[keep]
    boxes = _clip(boxes, gray.shape[1], gray.shape[0])
    return (boxes, stats) if return_stats else boxes


def _size_arg(size: tuple[int, int], name: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a (width, height) pair of ints, got {size!r}") from exc
    if w < 0 or h < 0:
        raise ValueError(f"{name} must be non-negative, got {size!r}")
    return w, h


def _clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Intersect with the image and drop empty boxes (OpenCV's clipObjects)."""
    if not len(boxes):
        return boxes.reshape(0, 4).astype(np.int32)
    x0 = np.clip(boxes[:, 0], 0, width)
    y0 = np.clip(boxes[:, 1], 0, height)
    x1 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y1 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    out = np.stack([x0, y0, x1 - x0, y1 - y0], 1).astype(np.int32)
    return out[(out[:, 2] > 0) & (out[:, 3] > 0)]
