"""Selective search: object proposals by hierarchical grouping of an over-segmentation.

J. R. R. Uijlings, K. E. A. van de Sande, T. Gevers and A. W. M. Smeulders, "Selective Search for
Object Recognition", IJCV 104(2), 2013.

1. **Initial regions**: the Felzenszwalb-Huttenlocher graph segmentation
   (:func:`modernvision.classic.felzenszwalb.felzenszwalb`, ``sigma = 0.8``, ``min_size = k`` as
   in the authors' code) of the image converted to one colour space.
2. **Hierarchical grouping** (the paper's Algorithm 1): the similarity of every pair of
   neighbouring regions is computed; the most similar pair ``(r_i, r_j)`` is merged into
   ``r_t``, the similarities involving ``r_i`` or ``r_j`` are dropped and those of ``r_t`` with
   its neighbours added, until one region covers the image. ``n`` initial regions give a
   hierarchy of ``2n - 1`` regions, and **every region of every iteration** is a proposal.
3. **Similarities** (Section 3.2), each in ``[0, 1]`` and summed as the strategy says:
   colour ``s_colour = sum_k min(c_i^k, c_j^k)`` over L1-normalised histograms of 25 bins per
   channel; texture ``s_texture``, the same intersection over histograms of 10 bins of Gaussian
   derivatives (``sigma = 1``) in 8 orientations per channel; size ``1 - (|r_i| + |r_j|) /
   |image|``; fill ``1 - (|BB_ij| - |r_i| - |r_j|) / |image|`` with ``BB_ij`` the tight box around
   both. A merged region's histograms are the size-weighted mean of its parts'.
4. **Diversification** (Section 3.3, Table 5): colour spaces x thresholds ``k`` x similarity
   combinations, each one grouping; :data:`SINGLE`, :data:`FAST` and :data:`QUALITY` are the
   paper's "single strategy", "Selective Search Fast" (HSV, Lab; k = 50, 100; C+T+S+F, T+S+F:
   8 groupings) and "Selective Search Quality" (HSV, Lab, rgI, H, I; k = 50, 100, 150, 300;
   C+T+S+F, T+S+F, F, S: 80 groupings).
5. **Ranking** (Section 3.4): in each grouping the region at position ``i`` of the hierarchy
   (``i = 1`` the whole image, then back through the merges to the initial regions) gets
   ``v = RND * i`` with ``RND`` uniform in ``[0, 1)``; all regions are sorted by ``v`` and
   lower-ranked duplicate boxes are dropped afterwards, so boxes proposed by several strategies
   tend to rank high. ``RND`` comes from ``numpy.random.default_rng(seed)``: one seed, one order.

Not the paper, an option: ``ranking="level"`` ranks by ``v = RND * level`` instead, the level of
an initial region being 1 and that of a merged one 1 + the larger level of its two parts, as
OpenCV's ``ximgproc`` implementation does ("inverted from the paper"): small, shallow regions
first. It pays only with coarse initial segments (``min_size`` fixed at 100 as OpenCV's graph
segmentation keeps it, ``k`` of 150 and more); :data:`FAST_LEVEL` (mode ``"fast-level"``) is
OpenCV's fast configuration (HSV, Lab; k = 150, 300, 450; ``min_size`` 100; C+T+S+F, T+S+F) on
our segmentation and grouping. It suits scenes of small objects, where the paper's ranking spends
half of the first 100 proposals on boxes larger than any object, but its coarse segments miss a
few objects the paper's k = 50, 100 find. A tuple of configurations is a *cascade*: the ranked
proposals of the first, then those of the next not listed yet; mode ``"fast-small"`` is
``(FAST_LEVEL, FAST)``, which keeps the paper's fast proposals after OpenCV-style ones.

Details the paper leaves open, chosen here:

* colour spaces are computed by OpenCV from RGB in ``[0, 1]`` and scaled to ``[0, 1]`` per
  channel: HSV as ``(H / 360, S, V)``, Lab as ``(L / 100, a / 255 + 0.5, b / 255 + 0.5)``,
  rgI as ``(R / (R + G + B), G / (R + G + B), (R + G + B) / 3)`` (``1/3, 1/3`` for black), H the
  hue alone and I the intensity ``(R + G + B) / 3`` alone. The segmentation runs on these
  (``k`` then refers to 0..255 steps of them) and the histograms bin them;
* texture: for each channel, Gaussian derivatives ``G_x, G_y`` (``sigma = 1``) give the
  derivative in direction ``theta = 0, 45, ..., 315`` degrees as ``cos(theta) G_x + sin(theta)
  G_y``; its positive part is the response of that orientation (opposite orientations then see
  opposite edges, as OpenCV's implementation also does), scaled by its maximum over the image
  and binned into 10 bins;
* regions are neighbours when two of their pixels are 8-connected (the segmentation's graph);
  equal similarities are merged in the order they were computed;
* grey images are used as RGB with three equal channels, RGBA images without their alpha;
* boxes are pixel-edge ``(x1, y1, x2, y2)``: a region covering columns ``c0..c1`` has
  ``x1 = c0, x2 = c1 + 1``. ``min_box_side`` can drop boxes narrower or lower than that many
  pixels, as the authors' Pascal VOC demo does with 20 (the paper does not; default 0).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import cv2
import numba
import numpy as np
import torch

from modernvision._errors import InvalidArgumentError, unknown_name
from modernvision.classic.felzenszwalb import PixelGraph, pixel_graph, segment_graph

__all__ = [
    "COLOR_SPACES",
    "FAST",
    "FAST_LEVEL",
    "MODES",
    "QUALITY",
    "SINGLE",
    "Hierarchy",
    "SelectiveSearchConfig",
    "as_configs",
    "color_space",
    "hierarchical_grouping",
    "rank_proposals",
    "selective_search",
    "to_rgb",
]

COLOR_SPACES = ("rgb", "hsv", "lab", "rgi", "h", "i")
RANKINGS = ("paper", "level")
COLOR_BINS = 25
TEXTURE_ORIENTATIONS = 8
TEXTURE_BINS = 10
TEXTURE_SIGMA = 1.0


def _similarity_flags(name: str) -> tuple[bool, bool, bool, bool]:
    parts = name.upper().split("+") if isinstance(name, str) else [None]
    if any(p not in ("C", "T", "S", "F") for p in parts) or len(set(parts)) != len(parts):
        raise InvalidArgumentError(
            f"similarity must join distinct C, T, S, F with '+' (e.g. 'C+T+S+F'), got {name!r}")
    return "C" in parts, "T" in parts, "S" in parts, "F" in parts


@dataclass(frozen=True)
class SelectiveSearchConfig:
    """One diversification: every colour space x threshold x similarity is one grouping.

    Attributes:
        color_spaces: names from :data:`COLOR_SPACES`.
        ks: Felzenszwalb thresholds ``k``.
        similarities: combinations of C(olour), T(exture), S(ize), F(ill) joined by ``+``.
        sigma: smoothing of the initial segmentation.
        min_size: the segmentation's smallest segment in pixels; ``None`` (the default, as in
            the authors' code): ``k`` itself.
        ranking: ``"paper"`` (``RND x`` position from the top, Section 3.4) or ``"level"``
            (``RND x`` level in the merge tree, OpenCV's rule; not the paper).
    """

    color_spaces: tuple[str, ...] = ("hsv",)
    ks: tuple[int, ...] = (100,)
    similarities: tuple[str, ...] = ("C+T+S+F",)
    sigma: float = 0.8
    min_size: int | None = None
    ranking: str = "paper"

    def __post_init__(self) -> None:
        for name in ("color_spaces", "ks", "similarities"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, tuple) or not value:
                raise InvalidArgumentError(f"{name} must be a non-empty tuple, got {value!r}")
        for space in self.color_spaces:
            if space not in COLOR_SPACES:
                raise unknown_name("colour space", space, COLOR_SPACES)
        for k in self.ks:
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise InvalidArgumentError(f"ks must be integers >= 1, got {self.ks!r}")
        for sim in self.similarities:
            _similarity_flags(sim)
        if not self.sigma >= 0:
            raise InvalidArgumentError(f"sigma must be >= 0, got {self.sigma}")
        if self.min_size is not None and (isinstance(self.min_size, bool)
                                          or not isinstance(self.min_size, int)
                                          or self.min_size < 1):
            raise InvalidArgumentError(
                f"min_size must be an integer >= 1 or None, got {self.min_size!r}")
        if self.ranking not in RANKINGS:
            raise unknown_name("ranking", self.ranking, RANKINGS)

    @property
    def num_groupings(self) -> int:
        return len(self.color_spaces) * len(self.ks) * len(self.similarities)


SINGLE = SelectiveSearchConfig()
FAST = SelectiveSearchConfig(color_spaces=("hsv", "lab"), ks=(50, 100),
                             similarities=("C+T+S+F", "T+S+F"))
QUALITY = SelectiveSearchConfig(color_spaces=("hsv", "lab", "rgi", "h", "i"),
                                ks=(50, 100, 150, 300),
                                similarities=("C+T+S+F", "T+S+F", "F", "S"))
FAST_LEVEL = SelectiveSearchConfig(color_spaces=("hsv", "lab"), ks=(150, 300, 450),
                                   similarities=("C+T+S+F", "T+S+F"), min_size=100,
                                   ranking="level")
MODES = {"single": SINGLE, "fast": FAST, "quality": QUALITY, "fast-level": FAST_LEVEL,
         "fast-small": (FAST_LEVEL, FAST)}


# ---------------------------------------------------------------------------------------------
# input and colour spaces


def to_rgb(image: np.ndarray | torch.Tensor, name: str = "image") -> np.ndarray:
    """Any supported image as a contiguous uint8 RGB ``[H, W, 3]`` array.

    Accepts ndarrays ``[H, W]``, ``[H, W, 1|3|4]`` and tensors ``[H, W]``, ``[1|3|4, H, W]``;
    uint8, uint16 (top 8 bits), bool or float in ``[0, 1]``. Grey is repeated to three channels,
    alpha dropped.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 3:
            if t.shape[0] not in (1, 3, 4):
                raise InvalidArgumentError(
                    f"{name} tensor must be [H, W] or [C, H, W] with C = 1, 3 or 4, got "
                    f"{tuple(t.shape)}")
            t = t.permute(1, 2, 0)
        arr = t.numpy()
    else:
        arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InvalidArgumentError(
            f"{name} must be [H, W] or [H, W, C] with C = 1, 3 or 4, got {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidArgumentError(f"{name} is empty: shape {tuple(arr.shape)}")
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InvalidArgumentError(f"{name} has NaN or infinite pixels")
        arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    else:
        raise InvalidArgumentError(
            f"{name} must have uint8, uint16, bool or float pixels, got {arr.dtype}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def color_space(rgb: np.ndarray, space: str) -> np.ndarray:
    """A uint8 RGB image in one of :data:`COLOR_SPACES`, float32 ``[H, W, C]`` in ``[0, 1]``."""
    if space not in COLOR_SPACES:
        raise unknown_name("colour space", space, COLOR_SPACES)
    f = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    if space == "rgb":
        out = f
    elif space in ("hsv", "h"):
        hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV)
        hsv[..., 0] *= np.float32(1.0 / 360.0)
        out = hsv if space == "hsv" else hsv[..., :1]
    elif space == "lab":
        lab = cv2.cvtColor(f, cv2.COLOR_RGB2Lab)
        out = np.stack([lab[..., 0] / 100.0, lab[..., 1] / 255.0 + 0.5,
                        lab[..., 2] / 255.0 + 0.5], axis=-1)
    else:
        total = f.sum(axis=-1, keepdims=True)
        intensity = total / np.float32(3.0)
        if space == "i":
            out = intensity
        else:
            safe = np.where(total > 0, total, np.float32(1.0))
            rg = np.where(total > 0, f[..., :2] / safe, np.float32(1.0 / 3.0))
            out = np.concatenate([rg, intensity], axis=-1)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# per-pixel bins, per-region features


def _color_bins(image: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` uint8 colour bin of each pixel and channel (25 bins over ``[0, 1]``)."""
    return np.minimum((image * COLOR_BINS).astype(np.int64), COLOR_BINS - 1).astype(np.uint8)


def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D Gaussian and its derivative as correlation kernels (radius ``4 sigma``)."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    return g.astype(np.float32), (x / sigma**2 * g).astype(np.float32)


def _texture_bins(image: np.ndarray) -> np.ndarray:
    """``[H, W, C, 8]`` uint8 texture bin of each pixel, channel and orientation."""
    smooth, derivative = _gaussian_derivative_kernels(TEXTURE_SIGMA)
    channels = image.shape[2]
    gx = np.empty(image.shape, dtype=np.float32)
    gy = np.empty(image.shape, dtype=np.float32)
    for c in range(channels):
        ch = np.ascontiguousarray(image[..., c])
        gx[..., c] = cv2.sepFilter2D(ch, cv2.CV_32F, derivative, smooth,
                                     borderType=cv2.BORDER_REFLECT)
        gy[..., c] = cv2.sepFilter2D(ch, cv2.CV_32F, smooth, derivative,
                                     borderType=cv2.BORDER_REFLECT)
    angles = np.arange(TEXTURE_ORIENTATIONS) * (2 * math.pi / TEXTURE_ORIENTATIONS)
    return _orientation_bins(gx, gy, np.cos(angles), np.sin(angles), TEXTURE_BINS)


@numba.njit(cache=True, nogil=True)
def _orientation_bins(gx, gy, cos, sin, num_bins):
    """Bins of the rectified directional derivatives, each scaled by its image maximum."""
    height, width, channels = gx.shape
    orientations = cos.size
    peak = np.zeros((channels, orientations))
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                for o in range(orientations):
                    r = cos[o] * gx[y, x, c] + sin[o] * gy[y, x, c]
                    if r > peak[c, o]:
                        peak[c, o] = r
    out = np.zeros((height, width, channels, orientations), dtype=np.uint8)
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                for o in range(orientations):
                    r = cos[o] * gx[y, x, c] + sin[o] * gy[y, x, c]
                    if r > 0.0:
                        out[y, x, c, o] = min(int(r * (num_bins / peak[c, o])), num_bins - 1)
    return out


@dataclass(frozen=True)
class _Segmentation:
    """Initial regions of one image in one colour space at one ``k``."""

    labels: np.ndarray  # [H, W] int64
    colour: np.ndarray  # [n, C * 25] L1-normalised
    texture: np.ndarray  # [n, C * 8 * 10] L1-normalised
    sizes: np.ndarray  # [n] pixels
    boxes: np.ndarray  # [n, 4] inclusive (row0, col0, row1, col1)
    pairs: np.ndarray  # [P, 2] neighbouring regions, i < j


@numba.njit(cache=True, nogil=True)
def _region_features(labels, colour_bins, texture_bins, n):
    height, width, channels = colour_bins.shape
    orientations = texture_bins.shape[3]
    colour = np.zeros((n, channels * COLOR_BINS))
    texture = np.zeros((n, channels * orientations * TEXTURE_BINS))
    sizes = np.zeros(n)
    boxes = np.empty((n, 4), dtype=np.int64)
    boxes[:, 0] = height
    boxes[:, 1] = width
    boxes[:, 2] = -1
    boxes[:, 3] = -1
    for y in range(height):
        for x in range(width):
            r = labels[y, x]
            sizes[r] += 1
            boxes[r, 0] = min(boxes[r, 0], y)
            boxes[r, 1] = min(boxes[r, 1], x)
            boxes[r, 2] = max(boxes[r, 2], y)
            boxes[r, 3] = max(boxes[r, 3], x)
            for c in range(channels):
                colour[r, c * COLOR_BINS + colour_bins[y, x, c]] += 1.0
                for o in range(orientations):
                    q = (c * orientations + o) * TEXTURE_BINS + texture_bins[y, x, c, o]
                    texture[r, q] += 1.0
    for r in range(n):
        colour[r] /= sizes[r] * channels
        texture[r] /= sizes[r] * channels * orientations
    return colour, texture, sizes, boxes


@numba.njit(cache=True, nogil=True)
def _neighbour_pairs(labels, n):
    """Unique ``(i, j)``, ``i < j``, of regions with 8-connected pixels."""
    height, width = labels.shape
    codes = np.empty(4 * height * width, dtype=np.int64)
    m = 0
    for y in range(height):
        for x in range(width):
            a = labels[y, x]
            for dy, dx in ((0, 1), (1, 0), (1, 1), (-1, 1)):
                yy = y + dy
                xx = x + dx
                if 0 <= yy < height and xx < width:
                    b = labels[yy, xx]
                    if a != b:
                        codes[m] = min(a, b) * n + max(a, b)
                        m += 1
    codes = np.unique(codes[:m])
    pairs = np.empty((codes.size, 2), dtype=np.int64)
    pairs[:, 0] = codes // n
    pairs[:, 1] = codes % n
    return pairs


def _segmentation(bins: tuple[np.ndarray, np.ndarray], graph: PixelGraph, k: int,
                  min_size: int | None = None) -> _Segmentation:
    labels = segment_graph(graph, scale=float(k), min_size=k if min_size is None else min_size)
    n = int(labels.max()) + 1
    colour, texture, sizes, boxes = _region_features(labels, bins[0], bins[1], n)
    return _Segmentation(labels, colour, texture, sizes, boxes, _neighbour_pairs(labels, n))


@dataclass(frozen=True)
class _Prepared:
    """What every ``k`` shares in one colour space: pixel bins and the sorted pixel graph."""

    bins: tuple[np.ndarray, np.ndarray]
    graph: PixelGraph


def _prepare(rgb: np.ndarray, space: str, sigma: float) -> _Prepared:
    converted = color_space(rgb, space)
    graph = pixel_graph(converted.astype(np.float64), sigma=sigma)
    return _Prepared((_color_bins(converted), _texture_bins(converted)), graph)


# ---------------------------------------------------------------------------------------------
# hierarchical grouping (Algorithm 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _similarity(a, b, colour, texture, sizes, boxes, image_size, use_c, use_t, use_s, use_f):
    s = 0.0
    if use_c:
        acc = 0.0
        for q in range(colour.shape[1]):
            acc += min(colour[a, q], colour[b, q])
        s += acc
    if use_t:
        acc = 0.0
        for q in range(texture.shape[1]):
            acc += min(texture[a, q], texture[b, q])
        s += acc
    if use_s:
        s += 1.0 - (sizes[a] + sizes[b]) / image_size
    if use_f:
        h = max(boxes[a, 2], boxes[b, 2]) - min(boxes[a, 0], boxes[b, 0]) + 1
        w = max(boxes[a, 3], boxes[b, 3]) - min(boxes[a, 1], boxes[b, 1]) + 1
        s += 1.0 - (h * w - sizes[a] - sizes[b]) / image_size
    return s


@numba.njit(cache=True, nogil=True, inline="always")
def _link(head, link_value, link_next, links, a, b):
    """Prepend ``b`` to the neighbour list of ``a`` (growing the pool when full)."""
    if links == link_value.size:
        grown_value = np.empty(2 * links, dtype=np.int64)
        grown_next = np.empty(2 * links, dtype=np.int64)
        grown_value[:links] = link_value
        grown_next[:links] = link_next
        link_value = grown_value
        link_next = grown_next
    link_value[links] = b
    link_next[links] = head[a]
    head[a] = links
    return link_value, link_next, links + 1


@numba.njit(cache=True, nogil=True)
def _group(colour0, texture0, sizes0, boxes0, pairs, image_size, use_c, use_t, use_s, use_f):
    n = sizes0.size
    m = 2 * n - 1
    colour = np.zeros((m, colour0.shape[1]))
    texture = np.zeros((m, texture0.shape[1]))
    sizes = np.zeros(m)
    boxes = np.zeros((m, 4), dtype=np.int64)
    colour[:n] = colour0
    texture[:n] = texture0
    sizes[:n] = sizes0
    boxes[:n] = boxes0
    children = np.full((m, 2), -1, dtype=np.int64)
    active = np.zeros(m, dtype=np.bool_)
    active[:n] = True
    seen = np.full(m, -1, dtype=np.int64)
    # neighbour lists as linked lists in flat arrays: head[r] -> (value, next) -> ...
    head = np.full(m, -1, dtype=np.int64)
    link_value = np.empty(4 * pairs.shape[0] + 16, dtype=np.int64)
    link_next = np.empty_like(link_value)
    links = 0
    heap = [(0.0, 0, 0, 0)]
    heap.pop()
    for p in range(pairs.shape[0]):
        a = pairs[p, 0]
        b = pairs[p, 1]
        link_value, link_next, links = _link(head, link_value, link_next, links, a, b)
        link_value, link_next, links = _link(head, link_value, link_next, links, b, a)
        heapq.heappush(heap, (-_similarity(a, b, colour, texture, sizes, boxes, image_size,
                                           use_c, use_t, use_s, use_f), p, a, b))
    counter = pairs.shape[0]
    t = n
    while len(heap) > 0:
        _, _, i, j = heapq.heappop(heap)
        if not (active[i] and active[j]):
            continue  # a similarity of a region merged already: dropped (lazily)
        sizes[t] = sizes[i] + sizes[j]
        wi = sizes[i] / sizes[t]
        wj = sizes[j] / sizes[t]
        colour[t] = wi * colour[i] + wj * colour[j]
        texture[t] = wi * texture[i] + wj * texture[j]
        boxes[t, 0] = min(boxes[i, 0], boxes[j, 0])
        boxes[t, 1] = min(boxes[i, 1], boxes[j, 1])
        boxes[t, 2] = max(boxes[i, 2], boxes[j, 2])
        boxes[t, 3] = max(boxes[i, 3], boxes[j, 3])
        children[t, 0] = i
        children[t, 1] = j
        active[i] = False
        active[j] = False
        active[t] = True
        seen[i] = t
        seen[j] = t
        for src in (i, j):
            node = head[src]
            while node >= 0:
                q = link_value[node]
                node = link_next[node]
                if active[q] and seen[q] != t:
                    seen[q] = t
                    link_value, link_next, links = _link(head, link_value, link_next, links, t, q)
                    link_value, link_next, links = _link(head, link_value, link_next, links, q, t)
                    similarity = _similarity(t, q, colour, texture, sizes, boxes, image_size,
                                             use_c, use_t, use_s, use_f)
                    heapq.heappush(heap, (-similarity, counter, t, q))  # ties: oldest first
                    counter += 1
        t += 1
    return boxes[:t], children[:t], sizes[:t]


@dataclass(frozen=True)
class Hierarchy:
    """One grouping: the initial regions and every region the merges create.

    Attributes:
        segments: int64 ``[H, W]`` initial region of each pixel (``0 .. n - 1``).
        boxes: float32 ``[R, 4]`` xyxy pixel-edge box of every region in creation order: the
            ``n`` initial regions, then one per merge (``R = 2n - 1`` when the image is one
            connected piece, which it always is).
        children: int64 ``[R, 2]``, the two regions region ``r`` merged (``-1`` for initial ones).
        sizes: int64 ``[R]`` pixels of each region.
    """

    segments: np.ndarray
    boxes: np.ndarray
    children: np.ndarray
    sizes: np.ndarray

    @property
    def num_segments(self) -> int:
        return int(self.segments.max()) + 1


def _grouping(seg: _Segmentation, similarity: str) -> Hierarchy:
    flags = _similarity_flags(similarity)
    image_size = float(seg.labels.size)
    boxes, children, sizes = _group(seg.colour, seg.texture, seg.sizes, seg.boxes, seg.pairs,
                                    image_size, *flags)
    # inclusive (row0, col0, row1, col1) -> pixel-edge (x1, y1, x2, y2)
    xyxy = np.stack([boxes[:, 1], boxes[:, 0], boxes[:, 3] + 1, boxes[:, 2] + 1], axis=1)
    return Hierarchy(seg.labels, xyxy.astype(np.float32), children, sizes.astype(np.int64))


def hierarchical_grouping(image: np.ndarray | torch.Tensor, *, space: str = "hsv", k: int = 100,
                          similarity: str = "C+T+S+F", sigma: float = 0.8) -> Hierarchy:
    """One grouping strategy of selective search on one image (the paper's Algorithm 1).

    Args:
        image: an image as :func:`to_rgb` accepts.
        space: one of :data:`COLOR_SPACES`.
        k: the segmentation threshold (and its ``min_size``).
        similarity: C, T, S, F joined by ``+``.
        sigma: smoothing of the segmentation.
    """
    config = SelectiveSearchConfig(color_spaces=(space,), ks=(k,), similarities=(similarity,),
                                   sigma=sigma)
    prepared = _prepare(to_rgb(image), space, config.sigma)
    return _grouping(_segmentation(prepared.bins, prepared.graph, k), similarity)


def _hierarchies(rgb: np.ndarray, config: SelectiveSearchConfig,
                 cache: dict | None = None) -> list[Hierarchy]:
    """Every grouping of ``config``, in the authors' order: k, then colour space, then
    similarity. ``cache`` keeps each colour space's preparation for other configurations."""
    cache = {} if cache is None else cache
    prepared = {}
    for space in config.color_spaces:
        if (space, config.sigma) not in cache:
            cache[space, config.sigma] = _prepare(rgb, space, config.sigma)
        prepared[space] = cache[space, config.sigma]
    out = []
    for k in config.ks:
        for space in config.color_spaces:
            seg = _segmentation(prepared[space].bins, prepared[space].graph, k, config.min_size)
            out.extend(_grouping(seg, sim) for sim in config.similarities)
    return out


@numba.njit(cache=True, nogil=True)
def _levels(children, num_segments):
    """1 for an initial region, 1 + the larger level of its two parts for a merged one."""
    level = np.ones(children.shape[0], dtype=np.int64)
    for r in range(num_segments, children.shape[0]):
        level[r] = max(level[children[r, 0]], level[children[r, 1]]) + 1
    return level


def rank_proposals(hierarchies: list[Hierarchy], *, seed: int = 0,
                   ranking: str = "paper") -> np.ndarray:
    """The pseudo-random ranking of all regions, duplicates dropped after ranking.

    ``ranking="paper"``: ``RND x`` position from the top of each hierarchy (Section 3.4);
    ``"level"``: ``RND x`` level in the merge tree (OpenCV's rule, small regions first).

    Returns:
        float32 ``[N, 4]`` unique boxes, best first.
    """
    if ranking not in RANKINGS:
        raise unknown_name("ranking", ranking, RANKINGS)
    boxes = np.concatenate([h.boxes for h in hierarchies])
    if ranking == "paper":
        # position i = 1 for the last region created (the whole image), up to R for the first
        position = np.concatenate([np.arange(len(h.boxes), 0, -1) for h in hierarchies])
    else:
        position = np.concatenate([_levels(h.children, h.num_segments) for h in hierarchies])
    value = np.random.default_rng(seed).random(len(boxes)) * position
    ranked = boxes[np.argsort(value, kind="stable")]
    _, first = np.unique(ranked, axis=0, return_index=True)
    return ranked[np.sort(first)]


def as_configs(config: SelectiveSearchConfig | tuple[SelectiveSearchConfig, ...]
               ) -> tuple[SelectiveSearchConfig, ...]:
    """``config`` as a cascade: one configuration becomes a 1-tuple; anything else than a
    configuration or a non-empty tuple of them is an error naming ``config``."""
    configs = config if isinstance(config, tuple) else (config,)
    if not configs or not all(isinstance(c, SelectiveSearchConfig) for c in configs):
        raise InvalidArgumentError(
            f"config must be a SelectiveSearchConfig or a non-empty tuple of them, got "
            f"{config!r}")
    return configs


def selective_search(image: np.ndarray | torch.Tensor, *, mode: str = "fast",
                     config: SelectiveSearchConfig | None = None, seed: int = 0,
                     min_box_side: int = 0, top: int | None = None) -> torch.Tensor:
    """Object proposals of one image by selective search.

    Args:
        image: ndarray ``[H, W]`` / ``[H, W, 1|3|4]`` or tensor ``[H, W]`` / ``[1|3|4, H, W]``,
            uint8 or float in ``[0, 1]`` (grey used as RGB, alpha dropped).
        mode: ``"fast"``, ``"quality"`` or ``"single"`` (the paper's Table 5), or
            ``"fast-level"`` (:data:`FAST_LEVEL`, OpenCV-style, not the paper) or
            ``"fast-small"`` (the cascade ``FAST_LEVEL``, then ``FAST``), unless ``config``.
        config: a diversification of one's own, or a tuple of them ranked as a cascade
            (overrides ``mode``).
        seed: seed of the ranking's random numbers.
        min_box_side: drop boxes whose width or height is below this many pixels.
        top: keep the best ``top`` proposals (default all).

    Returns:
        float32 ``[N, 4]`` (x1, y1, x2, y2) pixel-edge boxes, best ranked first, no duplicates.
        ``N`` is 0 only when ``min_box_side`` removes every box.
    """
    if config is None:
        if mode not in MODES:
            raise unknown_name("selective search mode", mode, MODES)
        config = MODES[mode]
    configs = as_configs(config)
    if isinstance(min_box_side, bool) or not isinstance(min_box_side, int) or min_box_side < 0:
        raise InvalidArgumentError(f"min_box_side must be an integer >= 0, got {min_box_side!r}")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise InvalidArgumentError(f"top must be an integer >= 1 or None, got {top!r}")
    rgb = to_rgb(image)
    cache: dict = {}
    ranked = [rank_proposals(_hierarchies(rgb, c, cache), seed=seed, ranking=c.ranking)
              for c in configs]
    boxes = ranked[0]
    if len(ranked) > 1:  # cascade: each list after the ones before, its repeats dropped
        boxes = np.concatenate(ranked)
        _, first = np.unique(boxes, axis=0, return_index=True)
        boxes = boxes[np.sort(first)]
    if min_box_side > 0:
        wh = boxes[:, 2:] - boxes[:, :2]
        boxes = boxes[(wh >= min_box_side).all(axis=1)]
    if top is not None:
        boxes = boxes[:top]
    return torch.from_numpy(np.ascontiguousarray(boxes))
