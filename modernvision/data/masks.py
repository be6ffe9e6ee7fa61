"""Binary masks: COCO run-length encoding (RLE) and polygon rasterisation (NumPy only).

The encoding is the one of the COCO toolbox (Lin et al., "Microsoft COCO: Common Objects in
Context", 2014, arXiv:1405.0312; the ``maskApi`` of pycocotools), written here from its
specification so that the library does not need pycocotools at run time:

* a mask ``[H, W]`` is read in column-major (Fortran) order and stored as alternating run
  lengths, the first run counting zeros (so a mask whose first pixel is set starts with ``0``);
* the compressed ``counts`` string stores each run, from the fourth on as the difference to the
  run two places earlier, in a LEB128-like code of 5 data bits per character (bit 5 = "more
  follows", bit 4 of the last character = sign), offset by 48 into printable ASCII;
* polygons are rasterised as ``rleFrPoly`` does: vertices are snapped to a 5x finer grid, edges
  are walked with a DDA, and a pixel belongs to the mask when its centre lies inside.

This codec sits below both the annotation formats (:mod:`modernvision.data.formats`) and the
metrics (:mod:`modernvision.metrics.masks` adds mask IoU and re-exports everything here), and
imports neither torch nor either of them. Tests check every function against
``pycocotools.mask`` (string equality of the counts, decoded masks, areas, boxes, polygon
masks). Departures: any non-zero mask value is foreground
(pycocotools would start a new run at a change between two non-zero values), malformed RLEs
raise ``ValueError`` instead of decoding garbage, a polygon of exactly two points is an error
(pycocotools' ``frPyObjects`` would read its four numbers as a box).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

RLE = dict[str, Any]

__all__ = [
    "RLE",
    "bbox_to_rle",
    "mask_to_rle",
    "masks_to_rles",
    "polygon_to_rle",
    "polygons_to_mask",
    "polygons_to_rle",
    "rle_area",
    "rle_counts",
    "rle_counts_from_string",
    "rle_counts_to_string",
    "rle_decode",
    "rle_encode",
    "rle_merge",
    "rle_to_bbox",
]


# ---------------------------------------------------------------------------------------------
# counts <-> string


def rle_counts_to_string(counts: Sequence[int] | np.ndarray) -> str:
    """Compress run lengths into COCO's counts string (``rleToString`` of ``maskApi``).

    Args:
        counts: alternating run lengths, zeros first.

    Returns:
        the ASCII string (characters ``'0'`` to ``'o'``).
    """
    counts = [int(c) for c in counts]
    chars: list[str] = []
    for i, run in enumerate(counts):
        # From the fourth run on, store the difference to the run of the same parity before it.
        x = run - counts[i - 2] if i > 2 else run
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences end in all-ones
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return "".join(chars)


def rle_counts_from_string(s: str | bytes) -> list[int]:
    """Decompress COCO's counts string into run lengths (``rleFrString`` of ``maskApi``).

    Raises:
        ValueError: a character outside ``'0'..'o'``, a string that ends inside a number, or
            a negative run length.
    """
    if isinstance(s, bytes):
        s = s.decode("ascii")
    codes = [ord(ch) - 48 for ch in s]
    counts: list[int] = []
    p, n = 0, len(codes)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ValueError(f"RLE counts string ends inside a number: {s[:40]!r}")
            c = codes[p]
            if not 0 <= c < 64:
                raise ValueError(f"RLE counts string has an invalid character {s[p]!r} at {p}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)  # sign-extend
        if len(counts) > 2:
            x += counts[-2]
        if x < 0:
            raise ValueError(f"RLE counts string decodes to a negative run ({x}) at run "
                             f"{len(counts)}")
        counts.append(x)
    return counts


def _check_size(rle: RLE) -> tuple[int, int]:
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"an RLE must be a dict with 'size' and 'counts', got {_brief(rle)}")
    size = rle["size"]
    if len(size) != 2 or any(int(v) != v or v < 0 for v in size):
        raise ValueError(f"RLE 'size' must be [height, width] of non-negative ints, got {size}")
    return int(size[0]), int(size[1])


def _brief(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


def rle_counts(rle: RLE) -> np.ndarray:
    """The run lengths of an RLE, compressed (string/bytes counts) or not (list counts).

    Returns:
        int64 ``[m]``, checked to sum to ``height * width``.
    """
    h, w = _check_size(rle)
    raw = rle["counts"]
    if isinstance(raw, (str, bytes)):
        counts = np.asarray(rle_counts_from_string(raw), dtype=np.int64)
    else:
        counts = np.asarray(raw, dtype=np.int64).reshape(-1)
        if counts.size and counts.min() < 0:
            raise ValueError("RLE counts must be non-negative")
    total = int(counts.sum())
    if total != h * w:
        raise ValueError(f"RLE counts sum to {total} pixels but size {h}x{w} has {h * w}")
    return counts


# ---------------------------------------------------------------------------------------------
# encode / decode


def _as_numpy_mask(mask: np.ndarray | Tensor, name: str = "mask") -> np.ndarray:
    torch = sys.modules.get("torch")  # a tensor can only exist once torch is imported
    if torch is not None and isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != bool and not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"{name} must be bool or integer (0/1), got dtype {mask.dtype}")
    return mask


def _runs(mask: np.ndarray) -> np.ndarray:
    """Alternating run lengths (zeros first) of a 2-D mask in column-major order."""
    flat = mask.ravel(order="F") != 0
    n = flat.size
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [n]))
    runs = np.diff(bounds)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return runs.astype(np.int64)


def rle_encode(mask: np.ndarray | Tensor) -> RLE:
    """Encode a binary mask as a compressed COCO RLE (``pycocotools.mask.encode``).

    Args:
        mask: ``[H, W]`` bool or integer; non-zero is foreground.

    Returns:
        ``{"size": [H, W], "counts": str}``.
    """
    mask = _as_numpy_mask(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D [H, W], got shape {tuple(mask.shape)}; "
                         "use masks_to_rles for a stack [N, H, W]")
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": rle_counts_to_string(_runs(mask))}


mask_to_rle = rle_encode


def masks_to_rles(masks: np.ndarray | Tensor) -> list[RLE]:
    """Encode a stack of masks ``[N, H, W]`` into ``N`` compressed RLEs."""
    masks = _as_numpy_mask(masks, "masks")
    if masks.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {tuple(masks.shape)}")
    return [rle_encode(m) for m in masks]


def rle_decode(rle: RLE) -> np.ndarray:
    """Decode an RLE (compressed string/bytes or uncompressed list counts) into a mask.

    Returns:
        uint8 ``[H, W]`` of 0/1.
    """
    h, w = _check_size(rle)
    counts = rle_counts(rle)
    values = (np.arange(counts.size) % 2).astype(np.uint8)
    flat = np.repeat(values, counts)
    return np.ascontiguousarray(flat.reshape(w, h).T)


def rle_area(rle: RLE) -> int:
    """Number of foreground pixels (``pycocotools.mask.area``)."""
    return int(rle_counts(rle)[1::2].sum())


def rle_to_bbox(rle: RLE) -> np.ndarray:
    """Tight box of an RLE as COCO ``[x, y, width, height]`` (``pycocotools.mask.toBbox``).

    Returns:
        float64 ``[4]``; all zeros for an empty mask.
    """
    h, _ = _check_size(rle)
    counts = rle_counts(rle)
    ends = np.cumsum(counts)
    starts = ends - counts
    fg = np.arange(counts.size) % 2 == 1
    fg &= counts > 0
    if not fg.any() or h == 0:
        return np.zeros(4, dtype=np.float64)
    first, last = starts[fg], ends[fg] - 1  # inclusive pixel indices, column-major
    col0, col1 = first // h, last // h
    row0, row1 = first % h, last % h
    spans = col1 > col0  # a run crossing a column covers the bottom and top rows
    y0 = 0 if spans.any() else int(row0.min())
    y1 = h - 1 if spans.any() else int(row1.max())
    x0, x1 = int(col0.min()), int(col1.max())
    return np.array([x0, y0, x1 - x0 + 1, y1 - y0 + 1], dtype=np.float64)


def rle_merge(rles: Sequence[RLE], *, intersect: bool = False) -> RLE:
    """Union (or intersection) of RLEs of one size (``pycocotools.mask.merge``)."""
    if not rles:
        raise ValueError("rle_merge needs at least one RLE")
    sizes = {tuple(int(v) for v in _check_size(r)) for r in rles}
    if len(sizes) > 1:
        raise ValueError(f"rle_merge: RLEs have different sizes {sorted(sizes)}")
    if len(rles) == 1:
        r = rles[0]
        return {"size": list(r["size"]), "counts": rle_counts_to_string(rle_counts(r))}
    masks = np.stack([rle_decode(r).astype(bool) for r in rles])
    merged = masks.all(0) if intersect else masks.any(0)
    return rle_encode(merged)


# ---------------------------------------------------------------------------------------------
# polygons and boxes


def _flat_polygon(polygon: Sequence[float] | np.ndarray) -> np.ndarray:
    xy = np.asarray(polygon, dtype=np.float64).reshape(-1)
    if xy.size % 2 or xy.size < 6:
        raise ValueError("a polygon must be a flat list [x1, y1, x2, y2, ...] of at least 3 "
                         f"points, got {xy.size} numbers")
    if not np.isfinite(xy).all():
        raise ValueError("polygon coordinates must be finite")
    return xy


def polygon_to_rle(polygon: Sequence[float] | np.ndarray, height: int, width: int) -> RLE:
    """Rasterise one polygon as ``rleFrPoly`` does (``pycocotools.mask.frPyObjects``).

    A pixel is inside when its centre is inside the polygon, with the vertices first snapped
    to a grid five times finer than the pixels.

    Args:
        polygon: flat ``[x1, y1, x2, y2, ...]`` in pixel coordinates (pixel ``i`` spans
            ``[i, i + 1)``), at least three points.
        height: mask height.
        width: mask width.
    """
    xy = _flat_polygon(polygon)
    h, w = int(height), int(width)
    scale = 5.0
    # (int)(v + .5) in C truncates toward zero.
    x = np.trunc(scale * xy[0::2] + 0.5).astype(np.int64)
    y = np.trunc(scale * xy[1::2] + 0.5).astype(np.int64)
    x, y = np.append(x, x[0]), np.append(y, y[0])
    us, vs = [], []
    for j in range(len(x) - 1):
        xs, xe, ys, ye = int(x[j]), int(x[j + 1]), int(y[j]), int(y[j + 1])
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe, ys, ye = xe, xs, ye, ys
        if dx >= dy:
            s = (ye - ys) / dx if dx else 0.0  # a repeated vertex gives one point
            t = np.arange(dx + 1)
            t = dx - t if flip else t
            us.append(t + xs)
            vs.append(np.trunc(ys + s * t + 0.5).astype(np.int64))
        else:
            s = (xe - xs) / dy
            t = np.arange(dy + 1)
            t = dy - t if flip else t
            vs.append(t + ys)
            us.append(np.trunc(xs + s * t + 0.5).astype(np.int64))
    u, v = np.concatenate(us), np.concatenate(vs)
    # Where the walk crosses a pixel column centre, the boundary point on the coarse grid.
    j = np.flatnonzero(u[1:] != u[:-1]) + 1
    xd = np.where(u[j] < u[j - 1], u[j], u[j] - 1).astype(np.float64)
    xd = (xd + 0.5) / scale - 0.5
    keep = (np.floor(xd) == xd) & (xd >= 0) & (xd <= w - 1)
    yd = np.where(v[j] < v[j - 1], v[j], v[j - 1]).astype(np.float64)
    yd = (yd + 0.5) / scale - 0.5
    yd = np.ceil(np.clip(yd, 0, h))
    xi, yi = xd[keep].astype(np.int64), yd[keep].astype(np.int64)
    # Each boundary point toggles the mask at column-major index x * h + y.
    a = np.sort(np.append(xi * h + yi, h * w))
    a = np.diff(a, prepend=0).tolist()
    counts = [a[0]]
    i = 1
    while i < len(a):
        if a[i] > 0:
            counts.append(a[i])
            i += 1
        else:  # two toggles at one index cancel: the runs on either side join
            i += 1
            if i < len(a):
                counts[-1] += a[i]
                i += 1
    return {"size": [h, w], "counts": rle_counts_to_string(counts)}


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int, width: int) -> RLE:
    """Union of polygons as one RLE, as ``pycocotools`` does for an annotation's polygons."""
    if len(polygons) == 0:
        raise ValueError("polygons_to_rle needs at least one polygon")
    rles = [polygon_to_rle(p, height, width) for p in polygons]
    return rles[0] if len(rles) == 1 else rle_merge(rles)


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Union of polygons as a uint8 ``[height, width]`` mask (COCO's rasterisation)."""
    return rle_decode(polygons_to_rle(polygons, height, width))


def bbox_to_rle(bbox_xywh: Sequence[float], height: int, width: int) -> RLE:
    """A COCO box ``[x, y, w, h]`` as an RLE (``pycocotools.mask.frBbox``)."""
    x, y, bw, bh = (float(v) for v in bbox_xywh)
    return polygon_to_rle([x, y, x, y + bh, x + bw, y + bh, x + bw, y], height, width)
