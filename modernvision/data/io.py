"""Reading image files: the one decoding path of the whole library.

Every reader (``predict``, ``faces``, ``match``, ``ImageFolder``, the COCO/VOC/YOLO data sets,
the scenes) goes through :func:`read_image`, so one file gives the same pixels everywhere.

What a file becomes (uint8 ``[H, W]`` grey or ``[H, W, 3]`` RGB):

* **8-bit** grey, RGB, BGR files as they are (OpenCV's channel order is turned into RGB).
* **16-bit** samples (grey or colour PNG/TIFF) scaled to 8 bits by ``round(v * 255 / 65535)``,
  so 65535 -> 255 and 32768 -> 128; never clipped, never truncated to the high byte (Pillow
  truncates 16-bit colour PNGs; ``convert("L")`` of a 16-bit grey image clips everything
  above 255 to white).
* **Alpha is dropped**, not composited: RGBA / grey+alpha / palette-with-transparency files
  give their colour channels. This is what ``PIL.Image.convert("RGB")``,
  ``cv2.imread(..., IMREAD_COLOR)`` and ``torchvision.io.decode_image(..., mode=RGB)`` do,
  so a model trained through torchvision's ``ImageFolder`` sees the same pixels here.
* **Palette** images give their palette colours (RGB).
* **EXIF orientation** (any format carrying it, JPEG in practice) is applied, as a viewer
  shows the photo and as ``cv2.imread`` and ``PIL.ImageOps.exif_transpose`` do.
* A grey file stays ``[H, W]`` with ``mode=None``; ``mode="L"`` turns colour into grey with
  OpenCV's fixed-point BT.601 weights (``cv2.COLOR_RGB2GRAY``, bit for bit the same as
  :func:`modernvision.classic.viola_jones.to_gray`); ``mode="RGB"`` repeats grey into 3
  channels.

Decoding: OpenCV decodes the pixels (``IMREAD_UNCHANGED`` keeps 16-bit samples in every
channel layout); Pillow reads the header only (colour mode, EXIF orientation) and decodes the
formats OpenCV cannot. Semantic label maps are not images: :func:`read_label_map` keeps their
raw values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError

__all__ = ["image_size", "read_image", "read_json", "read_label_map"]

MODES = ("RGB", "L", None)
# Pillow modes of single-channel images (with or without alpha): they decode to [H, W].
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_EXIF_ORIENTATION = 0x0112


def read_json(path: str | Path, *, what: str = "JSON file") -> object:
    """Parse a JSON file; a missing, empty, truncated or malformed file is an error naming it.

    Args:
        path: the file.
        what: how errors name the file (e.g. ``"COCO annotation file"``).

    Raises:
        MissingFileError: ``path`` does not exist or is a directory.
        BadFileError: empty, not UTF-8 text, or not valid JSON (the message gives the line
            and column, and says when the text stops early, as a truncated file does).
    """
    import json

    path = _check_file(path, what)
    data = path.read_bytes()
    if not data.strip():
        raise BadFileError(f"{what} {path} is empty, expected JSON")
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise BadFileError(f"{what} {path} is not UTF-8 JSON text") from None
    except json.JSONDecodeError as exc:
        early = exc.pos >= len(data.rstrip()) or exc.msg.startswith("Unterminated string")
        cut = "; the text stops early: a truncated file?" if early else ""
        raise BadFileError(f"{what} {path} is not valid JSON ({exc.msg}, line {exc.lineno} "
                           f"column {exc.colno}{cut})") from None


def _check_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if path.is_dir():
        kind = "an image file" if "image" in what else "a file"
        raise MissingFileError(f"{what} {path} is a directory, expected {kind}")
    if not path.is_file():
        raise MissingFileError(f"{what} {path} does not exist")
    return path


def _header(path: Path, what: str) -> tuple[str, int] | None:
    """``(Pillow mode, EXIF orientation)`` without decoding pixels; None if Pillow can't tell."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            try:
                orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1))
            except Exception:  # a malformed EXIF block: show the pixels as stored
                orientation = 1
            return img.mode, orientation
    except Image.DecompressionBombError as exc:
        raise BadFileError(f"{what} {path} is too large to decode safely ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def _orient(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 (TIFF 6.0 tag 274) so the image shows as intended."""
    if orientation == 2:
        return img[:, ::-1]
    if orientation == 3:
        return img[::-1, ::-1]
    if orientation == 4:
        return img[::-1]
    if orientation == 5:  # transpose
        return img.swapaxes(0, 1)
    if orientation == 6:  # stored rotated 90 degrees counter-clockwise
        return img.swapaxes(0, 1)[:, ::-1]
    if orientation == 7:  # transverse
        return img[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return img.swapaxes(0, 1)[::-1]
    return img


def _to_uint8(img: np.ndarray, path: Path, what: str) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:  # round(v / 257): the 16-bit range mapped onto 0..255
        return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    raise BadFileError(f"{what} {path} has {img.dtype} pixels; expected 8- or 16-bit "
                       "integer samples")


def _decode_pillow(path: Path, what: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
                arr = np.asarray(img)
                if arr.min() < 0 or arr.max() > 65535:
                    raise BadFileError(f"{what} {path} has 32-bit integer pixels; expected 8- "
                                       "or 16-bit samples")
                return arr.astype(np.uint16)
            if img.mode in _GREY_MODES:
                return np.asarray(img.convert("L"))
            return np.asarray(img.convert("RGB"))
    except BadFileError:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        raise BadFileError(f"cannot read {what} {path}: {exc}") from None


def read_image(path: str | Path, *, mode: str | None = "RGB", what: str = "image") -> np.ndarray:
    """Decode an image file to uint8 pixels (the conventions are in the module docstring).

    Args:
        path: the file (PNG, JPEG, BMP, TIFF, WebP, GIF, PPM/PGM, ...).
        mode: ``"RGB"`` for ``[H, W, 3]``, ``"L"`` for grey ``[H, W]``, ``None`` for the
            file's own layout (grey files ``[H, W]``, everything else ``[H, W, 3]``).
        what: how errors name the file (e.g. ``"scene image"``).

    Returns:
        uint8 ``[H, W]`` or ``[H, W, 3]``, C-contiguous.

    Raises:
        MissingFileError: ``path`` does not exist or is a directory.
        BadFileError: the file is empty, not a decodable image, has no pixels, or has
            pixels other than 8/16-bit integers.
        InvalidArgumentError: ``mode`` is not ``"RGB"``, ``"L"`` or None.
    """
    import cv2

    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be 'RGB', 'L' or None, got {mode!r}")
    path = _check_file(path, what)
    data = path.read_bytes()
    if not data:
        raise BadFileError(f"{what} {path} is empty (0 bytes), expected an image file")
    header = _header(path, what)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        if header is None:
            raise BadFileError(f"cannot read {what} {path}: not an image file OpenCV or Pillow "
                               "can decode (PNG, JPEG, BMP, TIFF, WebP, GIF, ...)")
        img = _decode_pillow(path, what)
    elif img.ndim == 3:
        if img.shape[2] == 1:
            img = img[..., 0]
        elif img.shape[2] in (3, 4):
            img = img[..., 2::-1]  # BGR(A) -> RGB, alpha dropped
        else:
            raise BadFileError(f"{what} {path} has {img.shape[2]} channels; expected 1, 3 "
                               "or 4")
    if img.size == 0:
        raise BadFileError(f"{what} {path} has no pixels (shape {img.shape})")
    img = _to_uint8(img, path, what)
    grey_file = header is not None and header[0] in _GREY_MODES
    if img.ndim == 3 and grey_file:  # OpenCV expands grey + alpha to 4 equal channels
        img = img[..., 0]
    if header is not None:
        img = _orient(img, header[1])
    if mode == "L" and img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    elif mode == "RGB" and img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img)


def image_size(path: str | Path, *, what: str = "image") -> tuple[int, int]:
    """``(width, height)`` of an image file as :func:`read_image` returns it (EXIF orientation
    applied), from the header alone."""
    from PIL import Image

    path = _check_file(path, what)
    try:
        with Image.open(path) as img:
            width, height = img.size
            orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:
        h, w = read_image(path, mode=None, what=what).shape[:2]
        return w, h
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def read_label_map(path: str | Path, *, what: str = "label map") -> np.ndarray:
    """The raw values of a single-channel label PNG (palette indices or grey levels), ``[H, W]``.

    Unlike :func:`read_image`, nothing is scaled, expanded or oriented: a label map is data.
    """
    from PIL import Image

    path = _check_file(path, what)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N"):
                raise BadFileError(f"{what} {path} is a {img.mode} image; expected one channel "
                                   "of labels (mode L, P or 16-bit grey)")
            return np.asarray(img).copy()
    except BadFileError:
        raise
    except Exception as exc:
        raise BadFileError(f"cannot read {what} {path}: {exc}") from None
