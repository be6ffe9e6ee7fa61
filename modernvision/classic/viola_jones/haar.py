"""Haar-like features: enumeration over the detection window and evaluation on many windows.

Paper: "Rapid Object Detection using a Boosted Cascade of Simple Features", Viola & Jones,
CVPR 2001, section 2 and Figure 1. Five kinds of rectangle features, each a set of equal-size
adjacent rectangles whose pixel sums are added (white, weight ``+1``) or subtracted (black,
weight ``-1``):

* ``two_horizontal``: two rectangles side by side (left white, right black);
* ``two_vertical``: two rectangles stacked (top white, bottom black);
* ``three_horizontal``: three side by side (outer two white, centre black);
* ``three_vertical``: three stacked (outer two white, centre black);
* ``four``: a 2x2 checkerboard (top-left and bottom-right white).

Enumerated at every position and every size in a 24x24 window these are the well-known
162,336 features (the paper only gives a rounded count for its enumeration).

Departure, kept from the paper rather than from OpenCV: the three-rectangle features weigh
their cells ``+1, -1, +1`` (so they are not zero-sum on a flat patch), where OpenCV's training
writes ``-1`` on the whole rectangle and ``+3`` on the centre.

Each feature value is divided by the window's ``area * std`` (the paper's variance
normalisation, section 5.6), computed as OpenCV does: over the window shrunk by one pixel on
each side, and in float32 in the same order as the detector, so that a stump threshold
learned here behaves identically when the cascade scans an image.
"""

from __future__ import annotations

import numba
import numpy as np

from modernvision.classic.viola_jones._threads import bands, parallel_map
from modernvision.classic.viola_jones.cascade import MAX_RECTS, HaarFeatures

__all__ = ["FEATURE_TYPES", "enumerate_features", "feature_values", "window_integrals"]

# name -> (cells across, cells down, weight of each cell in row-major order)
FEATURE_TYPES: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "two_horizontal": (2, 1, (1, -1)),
    "two_vertical": (1, 2, (1, -1)),
    "three_horizontal": (3, 1, (1, -1, 1)),
    "three_vertical": (1, 3, (1, -1, 1)),
    "four": (2, 2, (1, -1, -1, 1)),
}


def enumerate_features(
    window_size: tuple[int, int] = (24, 24),
    *,
    types: tuple[str, ...] | list[str] | None = None,
    position_step: int = 1,
    size_step: int = 1,
) -> HaarFeatures:
    """All Haar features of the given types at every position and size in the window.

    Args:
        window_size: ``(width, height)``.
        types: feature kinds (keys of :data:`FEATURE_TYPES`); all five by default.
        position_step: stride between positions (1 = every pixel, as in the paper).
        size_step: stride between cell sizes (cells of 1, 1 + step, ... pixels).

    Returns:
        :class:`HaarFeatures` with disjoint ``+1``/``-1`` rectangles; 162,336 features for the
        default 24x24 window with unit steps.
    """
    from modernvision._errors import unknown_name

    win_w, win_h = (int(v) for v in window_size)
    if win_w < 2 or win_h < 2:
        raise ValueError(f"window_size must be at least 2x2, got {window_size}")
    if position_step < 1 or size_step < 1:
        raise ValueError(
            f"position_step and size_step must be >= 1, got {position_step}, {size_step}"
        )
    types = tuple(FEATURE_TYPES) if types is None else tuple(types)
    all_rects, all_weights = [], []
    for name in types:
        if name not in FEATURE_TYPES:
            raise unknown_name("Haar feature type", name, FEATURE_TYPES)
        nx, ny, cell_w = FEATURE_TYPES[name]
        cw_all = np.arange(1, win_w // nx + 1, size_step)
        ch_all = np.arange(1, win_h // ny + 1, size_step)
        for cw in cw_all:
            for ch in ch_all:
                xs = np.arange(0, win_w - nx * cw + 1, position_step)
                ys = np.arange(0, win_h - ny * ch + 1, position_step)
                gy, gx = np.meshgrid(ys, xs, indexing="ij")
                gx, gy = gx.ravel(), gy.ravel()
                rects = np.zeros((len(gx), MAX_RECTS, 4), np.int32)
                weights = np.zeros((len(gx), MAX_RECTS), np.float32)
                for k in range(nx * ny):
                    cx, cy = k % nx, k // nx
                    rects[:, k] = np.stack(
                        [gx + cx * cw, gy + cy * ch, np.full_like(gx, cw), np.full_like(gx, ch)], 1
                    )
                    weights[:, k] = cell_w[k]
                all_rects.append(rects)
                all_weights.append(weights)
    if not all_rects:
        raise ValueError(f"no features fit a {win_w}x{win_h} window for types {types}")
    rects = np.concatenate(all_rects)
    return HaarFeatures(rects, np.concatenate(all_weights), np.zeros(len(rects), np.bool_))


def window_integrals(
    patches: np.ndarray, *, tilted: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integral images and variance normalisers of a stack of equal-size windows.

    Args:
        patches: uint8 ``[N, h, w]`` windows.
        tilted: also append each window's tilted integral image (for tilted features).

    Returns:
        ``(tables, norm, ok)``: int64 ``[N, (h+1)*(w+1)]`` flattened integral images (followed
        by the tilted ones when asked), float32 ``[N]`` factors ``1 / (area * std)``, and bool
        ``[N]``: False for windows the detector rejects as flat (std <= 10 grey levels).
    """
    from modernvision.classic.viola_jones.integral import tilted_integral_image

    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.dtype != np.uint8:
        raise ValueError(f"patches must be uint8 [N, h, w], got {patches.dtype} {patches.shape}")
    n, h, w = patches.shape
    ii = np.zeros((n, h + 1, w + 1), np.int64)
    np.cumsum(np.cumsum(patches, axis=1, dtype=np.int64), axis=2, out=ii[:, 1:, 1:])
    sq = patches.astype(np.int64) ** 2
    sqi = np.zeros((n, h + 1, w + 1), np.int64)
    np.cumsum(np.cumsum(sq, axis=1), axis=2, out=sqi[:, 1:, 1:])

    def inner(t: np.ndarray) -> np.ndarray:  # the window shrunk by one pixel on each side
        return t[:, h - 1, w - 1] - t[:, 1, w - 1] - t[:, h - 1, 1] + t[:, 1, 1]

    area = float((w - 2) * (h - 2))
    s, q = inner(ii).astype(np.float64), inner(sqi).astype(np.float64)
    nf = area * q - s * s
    pos = nf > 0
    vnf = np.ones(n, np.float32)
    vnf[pos] = (1.0 / np.sqrt(nf[pos])).astype(np.float32)
    ok = pos & (area * vnf.astype(np.float64) < 0.1)
    tables = ii.reshape(n, -1)
    if tilted:
        tt = (
            np.stack([tilted_integral_image(p).ravel() for p in patches])
            if n
            else np.zeros((0, (h + 1) * (w + 1)), np.int64)
        )
        tables = np.concatenate([tables, tt], axis=1)
    return np.ascontiguousarray(tables), vnf, ok


@numba.njit(cache=True, nogil=True)
def _values_kernel(f0, f1, tables, vnf, ofs, weights, n_rects, out):
    n = tables.shape[0]
    for f in range(f0, f1):
        for i in range(n):
            t = tables[i]
            ret = np.float32(0.0)
            for r in range(n_rects[f]):
                o = ofs[f, r]
                s = t[o[0]] - t[o[1]] - t[o[2]] + t[o[3]]
                if r == 0:
                    ret = weights[f, r] * np.float32(s)
                else:
                    ret = ret + weights[f, r] * np.float32(s)
            out[f, i] = ret * vnf[i]


def feature_values(
    features: HaarFeatures, tables: np.ndarray, norm: np.ndarray, window_size: tuple[int, int]
) -> np.ndarray:
    """Variance-normalised values of every feature on every window.

    Args:
        features: the features (rectangles inside ``window_size``).
        tables, norm: from :func:`window_integrals` on the windows.
        window_size: ``(width, height)`` of the windows.

    Returns:
        float32 ``[F, N]``, bit-identical to what the detector computes for these windows.
    """
    from modernvision.classic.viola_jones.detect import _corner_offsets, _n_rects

    w, h = window_size
    stride = w + 1
    if features.tilted.any() and tables.shape[1] != 2 * (h + 1) * stride:
        raise ValueError("tilted features need window_integrals(..., tilted=True)")
    ofs = _corner_offsets(features.rects, features.tilted, stride, (h + 1) * stride)
    n_rects = _n_rects(features.weights)
    out = np.empty((len(features), tables.shape[0]), np.float32)
    if len(features) and tables.shape[0]:
        norm = np.asarray(norm, np.float32)
        parallel_map(
            lambda b: _values_kernel(b[0], b[1], tables, norm, ofs, features.weights, n_rects, out),
            bands(len(features)),
        )
    return out


def feature_count(window_size: tuple[int, int] = (24, 24)) -> int:
    """Closed-form number of features :func:`enumerate_features` yields with unit steps."""
    w, h = window_size
    total = 0
    for nx, ny, _ in FEATURE_TYPES.values():
        across = sum(w - nx * c + 1 for c in range(1, w // nx + 1))
        down = sum(h - ny * c + 1 for c in range(1, h // ny + 1))
        total += across * down
    return total
