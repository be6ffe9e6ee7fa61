"""Integral images: the summed-area table of Viola & Jones, section 2.1.

Paper: "Rapid Object Detection using a Boosted Cascade of Simple Features", Paul Viola and
Michael Jones, CVPR 2001 (no arXiv id; journal version "Robust Real-Time Face Detection",
IJCV 2004). The integral image ``ii(x, y) = sum_{x' < x, y' < y} i(x', y')`` lets any rectangle
sum be read in four look-ups.

Departures from the paper, all taken from OpenCV so that its cascades run unchanged:

* The table has one extra leading row and column of zeros (shape ``(H + 1, W + 1)``), so a
  rectangle ``(x, y, w, h)`` sums to ``ii[y+h, x+w] - ii[y, x+w] - ii[y+h, x] + ii[y, x]``
  without special cases at the border.
* The *squared* integral image (sum of ``i**2``) gives each window's variance for the paper's
  variance normalisation (section 5.6).
* The *tilted* integral image of Lienhart & Maydt ("An Extended Set of Haar-like Features for
  Rapid Object Detection", ICIP 2002) sums 45-degree rotated rectangles; some OpenCV cascades
  use it (none of the frontal-face ones).

All tables are ``int64``: a 32-bit table overflows once an image holds more than
``2**32 / 255**2 ~ 66,000`` pixels (squared sums) or ``2**32 / 255 ~ 16.8 M`` pixels (plain
sums). OpenCV keeps them in 32 bits and relies on wrap-around cancelling in the four-term
difference; 64 bits give the same window sums without that caveat.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "integral_image",
    "squared_integral_image",
    "tilted_integral_image",
    "rect_sum",
    "tilted_rect_sum",
]


def _check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grey image [H, W], got shape {image.shape}")
    if image.dtype.kind not in "ui" and image.dtype != np.bool_:
        raise ValueError(f"{name} must hold integers (uint8 grey levels), got dtype {image.dtype}")
    return image


def integral_image(image: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero first row and column.

    Args:
        image: integer grey image ``[H, W]``.

    Returns:
        int64 ``[H + 1, W + 1]`` with ``out[y, x] = image[:y, :x].sum()``.
    """
    image = _check_image(image)
    h, w = image.shape
    out = np.zeros((h + 1, w + 1), dtype=np.int64)
    np.cumsum(image, axis=0, dtype=np.int64, out=out[1:, 1:])
    np.cumsum(out[1:, 1:], axis=1, out=out[1:, 1:])
    return out


def squared_integral_image(image: np.ndarray) -> np.ndarray:
    """Summed-area table of the squared pixels (for window variances), int64 ``[H+1, W+1]``."""
    image = _check_image(image).astype(np.int64)
    return integral_image(image * image)


@numba.njit(cache=True, nogil=True)
def _tilted_kernel(image: np.ndarray, out: np.ndarray) -> None:
    # out[Y, X] is the sum over the upward-opening 45-degree triangle with apex at pixel
    # (X - 1, Y - 1): rows y <= Y - 1 and |x - (X - 1)| <= Y - 1 - y. Four-term recurrence:
    # apex(a, r) = i(a, r) + i(a, r - 1) + apex(a - 1, r - 1) + apex(a + 1, r - 1)
    # - apex(a, r - 2); computed on a buffer padded by H columns on each side so that apexes
    # outside the image (whose triangles still overlap it) are available.
    h, w = image.shape
    pad = h + 1
    wide = w + 2 * pad
    apex = np.zeros((h, wide), dtype=np.int64)
    for r in range(h):
        for a in range(1, wide - 1):
            x = a - pad
            v = np.int64(0)
            if 0 <= x < w:
                v += image[r, x]
                if r >= 1:
                    v += image[r - 1, x]
            if r >= 1:
                v += apex[r - 1, a - 1] + apex[r - 1, a + 1]
            if r >= 2:
                v -= apex[r - 2, a]
            apex[r, a] = v
    for yy in range(1, h + 1):
        for xx in range(w + 1):
            out[yy, xx] = apex[yy - 1, xx - 1 + pad]


def tilted_integral_image(image: np.ndarray) -> np.ndarray:
    """Rotated (45-degree) summed-area table, as ``cv2.integral3``'s third output.

    ``out[Y, X]`` sums the pixels ``(x, y)`` with ``y < Y`` and ``|x - X + 1| <= Y - 1 - y``.

    Args:
        image: integer grey image ``[H, W]``.

    Returns:
        int64 ``[H + 1, W + 1]``.
    """
    image = np.ascontiguousarray(_check_image(image)).astype(np.int64)
    h, w = image.shape
    out = np.zeros((h + 1, w + 1), dtype=np.int64)
    if h and w:
        _tilted_kernel(image, out)
    return out


def rect_sum(ii: np.ndarray, x: int, y: int, w: int, h: int) -> int:
    """Sum of the pixels in the upright rectangle ``(x, y, w, h)``: four look-ups.

    Args:
        ii: an :func:`integral_image` (or :func:`squared_integral_image`).
        x, y: top-left corner (column, row).
        w, h: width and height, ``>= 0``.
    """
    if w < 0 or h < 0:
        raise ValueError(f"rectangle width and height must be >= 0, got w={w}, h={h}")
    if x < 0 or y < 0 or x + w > ii.shape[1] - 1 or y + h > ii.shape[0] - 1:
        raise ValueError(
            f"rectangle (x={x}, y={y}, w={w}, h={h}) does not fit an image of "
            f"{ii.shape[1] - 1}x{ii.shape[0] - 1}"
        )
    return int(ii[y + h, x + w] - ii[y, x + w] - ii[y + h, x] + ii[y, x])


def tilted_rect_sum(tii: np.ndarray, x: int, y: int, w: int, h: int) -> int:
    """Sum over a 45-degree rotated rectangle, four look-ups in a :func:`tilted_integral_image`.

    The rectangle's top corner is the middle of the top edge of pixel ``(x - 1, y)``; its side
    running down-right spans ``w`` pixel diagonals and the side running down-left ``h``
    (Lienhart & Maydt's convention, as in OpenCV's tilted Haar features): it covers ``2wh``
    pixels.
    """
    return int(tii[y, x] - tii[y + h, x - h] - tii[y + w, x + w] + tii[y + w + h, x + w - h])
