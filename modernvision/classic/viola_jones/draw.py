"""Reading images for the detector and drawing its boxes (plain NumPy; OpenCV only decodes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["draw_boxes", "read_image", "write_image"]


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB ``[H, W, 3]`` or grey ``[H, W]``.

    The library's one decoder, :func:`modernvision.data.io.read_image` with ``mode=None``
    (16-bit scaled, alpha dropped, EXIF orientation applied).

    Raises:
        MissingFileError: the file does not exist or is a directory.
        BadFileError: the file is empty, is not an image, or holds an image with no pixels.
    """
    from modernvision.data.io import read_image as decode

    return decode(path, mode=None)


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 RGB or grey image (PNG/JPEG by extension)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = image[..., ::-1] if image.ndim == 3 else image
    if not cv2.imwrite(str(path), np.ascontiguousarray(out)):
        raise ValueError(f"could not write {path} (unknown extension?)")
    return path


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    color: tuple[int, int, int] = (255, 0, 0),
    thickness: int = 2,
) -> np.ndarray:
    """A copy of the image (made RGB) with ``(x, y, w, h)`` boxes outlined."""
    img = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    img = np.ascontiguousarray(img[..., :3]).copy()
    h, w = img.shape[:2]
    col = np.asarray(color, np.uint8)
    for x, y, bw, bh in np.asarray(boxes, np.int64).reshape(-1, 4):
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + bw, w), min(y + bh, h)
        if x1 <= x0 or y1 <= y0:
            continue
        t = max(1, min(thickness, (x1 - x0) // 2, (y1 - y0) // 2))
        img[y0 : y0 + t, x0:x1] = col
        img[y1 - t : y1, x0:x1] = col
        img[y0:y1, x0 : x0 + t] = col
        img[y0:y1, x1 - t : x1] = col
    return img
