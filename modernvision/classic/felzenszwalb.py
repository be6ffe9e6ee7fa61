"""Efficient graph-based image segmentation, written out.

P. F. Felzenszwalb and D. P. Huttenlocher, "Efficient Graph-Based Image Segmentation", IJCV 59(2),
2004. The image is a graph: one node per pixel, an edge between each pixel and its 8 neighbours,
weighted by the Euclidean distance of the (smoothed) pixel values. Edges are visited by increasing
weight; the components ``C1``, ``C2`` an edge joins are merged when its weight is below
``min(Int(C1) + k / |C1|, Int(C2) + k / |C2|)``, where ``Int(C)`` is the largest weight of the
component's minimum spanning tree (the weight of the edge that last merged it, since edges come in
increasing order) and ``k`` is ``scale``. A second pass over the same sorted edges merges every
component still smaller than ``min_size`` into its neighbour (Section 4.1 of the paper).

The reference is ``skimage.segmentation.felzenszwalb``, and the labels equal its labels exactly
(not only up to relabelling; the tests check this on real photos). To get there we follow
scikit-image's choices, each a detail the paper leaves open:

* the image is converted as ``img_as_float64`` does (``uint8 * (1 / 255)``; floats unchanged) and
  ``scale`` is divided by 255, so that ``scale`` means the paper's ``k`` on 0..255 intensities;
* each channel is smoothed separately by ``scipy.ndimage.gaussian_filter`` (``truncate=4``,
  ``mode="reflect"``) and colour images are segmented once on the Euclidean distance between
  pixel colours; the paper instead segments each colour channel and intersects the results;
* the thresholds ``Int(C) + k / |C|`` are held in single precision (as scikit-image's Cython
  kernel declares them), the edge weights in double;
* edges are ordered by NumPy's default ``argsort`` of the weights in scikit-image's edge order
  (horizontal, vertical, down-right, up-right neighbours), so equal weights are visited in the
  same order;
* labels are numbered by the first pixel (in raster order) of each segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch
from scipy import ndimage

from modernvision._errors import InvalidArgumentError

__all__ = ["PixelGraph", "as_float_image", "felzenszwalb", "pixel_graph", "segment_graph"]


def as_float_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """``image`` as float64 the way ``skimage.img_as_float64`` converts it.

    Unsigned integers are scaled by ``1 / max`` of their type, booleans become 0/1 and floats are
    kept as they are.
    """
    if image.dtype == bool:
        return image.astype(np.float64)
    if image.dtype in (np.uint8, np.uint16):
        return np.multiply(image, 1.0 / np.iinfo(image.dtype).max, dtype=np.float64)
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float64)
    raise InvalidArgumentError(
        f"{name} must be uint8, uint16, bool or float pixels, got {image.dtype}"
    )


def felzenszwalb(
    image: np.ndarray | torch.Tensor, *, scale: float = 1.0, sigma: float = 0.8, min_size: int = 20
) -> np.ndarray | torch.Tensor:
    """Segment an image into regions by the Felzenszwalb-Huttenlocher graph rule.

    Args:
        image: ``[H, W]`` or ``[H, W, C]`` ndarray, or a ``[H, W]`` / ``[C, H, W]`` tensor; uint8,
            uint16, bool or float pixels (floats are used as they are, nominally in ``[0, 1]``).
        scale: the paper's ``k`` on 0..255 intensities; larger gives larger segments.
        sigma: standard deviation of the Gaussian that smooths each channel first (0: none).
        min_size: segments smaller than this many pixels are merged into a neighbour.

    Returns:
        int64 labels ``[H, W]``, ``0 .. num_segments - 1`` numbered by first pixel in raster
        order: an ndarray for an ndarray input, a tensor for a tensor input.
    """
    as_tensor = isinstance(image, torch.Tensor)
    if as_tensor:
        t = image.detach().cpu()
        array = (t.permute(1, 2, 0) if t.ndim == 3 else t).numpy()
    else:
        array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0 or array.shape[2] == 0:
        layout = "[H, W] or [C, H, W]" if as_tensor else "[H, W] or [H, W, C]"
        raise InvalidArgumentError(
            f"image must be a non-empty {layout} array, got shape {tuple(image.shape)}"
        )
    if not scale > 0:
        raise InvalidArgumentError(f"scale must be > 0, got {scale}")
    if not sigma >= 0:
        raise InvalidArgumentError(f"sigma must be >= 0, got {sigma}")
    if isinstance(min_size, bool) or int(min_size) != min_size or min_size < 0:
        raise InvalidArgumentError(f"min_size must be an integer >= 0, got {min_size}")
    graph = pixel_graph(as_float_image(array), sigma=float(sigma))
    labels = segment_graph(graph, scale=float(scale), min_size=int(min_size))
    return torch.from_numpy(labels) if as_tensor else labels


@dataclass(frozen=True)
class PixelGraph:
    """The 8-connected pixel graph of a smoothed image, its edges sorted by weight.

    Several segmentations of one image (other ``scale`` or ``min_size``) share one graph.

    Attributes:
        height: image height.
        width: image width.
        first: int32 ``[E]`` pixel index (``row * width + col``) of one end of each edge.
        second: int32 ``[E]`` the other end.
        weight: float64 ``[E]`` edge weights, non-decreasing.
    """

    height: int
    width: int
    first: np.ndarray
    second: np.ndarray
    weight: np.ndarray


def pixel_graph(image: np.ndarray, *, sigma: float) -> PixelGraph:
    """Smooth a float64 ``[H, W, C]`` image and build its sorted edge list."""
    height, width = image.shape[:2]
    smooth = ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0.0), mode="reflect",
                                     truncate=4.0)
    costs = edge_weights(smooth)
    order = np.argsort(costs)  # NumPy's default sort, as scikit-image: the same tie order
    first, second, weight = _sorted_edges(order, costs, height, width)
    return PixelGraph(height, width, first, second, weight)


def segment_graph(graph: PixelGraph, *, scale: float, min_size: int) -> np.ndarray:
    """int64 ``[H, W]`` labels of the graph's segmentation (``scale`` in 0..255 units)."""
    return _merge(graph.first, graph.second, graph.weight, graph.height, graph.width,
                  scale / 255.0, min_size)


def edge_weights(image: np.ndarray) -> np.ndarray:
    """Euclidean colour distance of the 8-connected pixel pairs of a float ``[H, W, C]`` image.

    The squared channel differences are summed in NumPy's order (one after another below 8
    channels, NumPy's pairwise summation from 8 on), so the weights equal scikit-image's bit for
    bit.

    Returns:
        float64 ``[E]``: first the ``H * (W - 1)`` horizontal pairs, then the ``(H - 1) * W``
        vertical ones, the ``(H - 1) * (W - 1)`` down-right diagonals and the ``(H - 1) * (W - 1)``
        up-right diagonals, each block in raster order of its pairs' upper-left pixel (the order
        :func:`_endpoints` decodes).
    """
    image = np.ascontiguousarray(image, dtype=np.float64)
    if image.shape[2] < 8:
        return _edge_weights_sequential(image)

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = a - b
        return np.sqrt(np.sum(d * d, axis=-1)).ravel()

    return np.concatenate([
        dist(image[:, 1:], image[:, :-1]),
        dist(image[1:, :], image[:-1, :]),
        dist(image[1:, 1:], image[:-1, :-1]),
        dist(image[1:, :-1], image[:-1, 1:]),
    ])


@numba.njit(cache=True, nogil=True)
def _edge_weights_sequential(image: np.ndarray) -> np.ndarray:
    height, width, channels = image.shape
    n = height * width
    flat = image.reshape(n, channels)
    out = np.empty(height * (width - 1) + (height - 1) * width + 2 * (height - 1) * (width - 1))
    for e in range(out.size):
        a, b = _endpoints(e, height, width)
        total = 0.0
        for k in range(channels):
            d = flat[b, k] - flat[a, k]
            total += d * d
        out[e] = np.sqrt(total)
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _endpoints(e: int, height: int, width: int) -> tuple[int, int]:
    """The two pixel indices (``row * width + col``) of edge ``e`` in :func:`edge_weights` order."""
    n_right = height * (width - 1)
    n_down = (height - 1) * width
    n_diag = (height - 1) * (width - 1)
    if e < n_right:
        r, c = divmod(e, width - 1)
        return r * width + c, r * width + c + 1
    e -= n_right
    if e < n_down:
        return e, e + width
    e -= n_down
    if e < n_diag:
        r, c = divmod(e, width - 1)
        return r * width + c, (r + 1) * width + c + 1
    r, c = divmod(e - n_diag, width - 1)
    return r * width + c + 1, (r + 1) * width + c


@numba.njit(cache=True, nogil=True, inline="always")
def _find(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:  # path halving
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@numba.njit(cache=True, nogil=True)
def _sorted_edges(order, costs, height, width):
    first = np.empty(order.size, dtype=np.int32)
    second = np.empty(order.size, dtype=np.int32)
    weight = np.empty(order.size)
    for i in range(order.size):
        a, b = _endpoints(order[i], height, width)
        first[i] = a
        second[i] = b
        weight[i] = costs[order[i]]
    return first, second, weight


@numba.njit(cache=True, nogil=True)
def _merge(first, second, weight, height, width, scale, min_size):
    n = height * width
    parent = np.arange(n, dtype=np.int32)
    size = np.ones(n, dtype=np.int64)
    internal = np.zeros(n)  # Int(C): the largest MST weight inside each component
    for i in range(weight.size):
        ra = _find(parent, first[i])
        rb = _find(parent, second[i])
        if ra == rb:
            continue
        t0 = np.float32(internal[ra] + scale / size[ra])  # single precision, as in skimage
        t1 = np.float32(internal[rb] + scale / size[rb])
        if weight[i] < np.float64(min(t0, t1)):
            if size[ra] < size[rb]:
                ra, rb = rb, ra
            parent[rb] = ra
            size[ra] += size[rb]
            internal[ra] = weight[i]
    for i in range(weight.size):  # merge the components still below min_size
        ra = _find(parent, first[i])
        rb = _find(parent, second[i])
        if ra != rb and (size[ra] < min_size or size[rb] < min_size):
            if size[ra] < size[rb]:
                ra, rb = rb, ra
            parent[rb] = ra
            size[ra] += size[rb]
    labels = np.empty(n, dtype=np.int64)
    label_of_root = np.full(n, -1, dtype=np.int64)
    next_label = 0
    for p in range(n):
        r = _find(parent, p)
        if label_of_root[r] < 0:
            label_of_root[r] = next_label
            next_label += 1
        labels[p] = label_of_root[r]
    return labels.reshape(height, width)
