"""Drawing boxes, masks and labels on images, and tiling images into a grid.

Plain numpy/OpenCV so that anyone can draw a sample, a prediction or a data set without
matplotlib. Box outlines and mask blending follow torchvision's ``draw_bounding_boxes``
(integer-truncated corners, outline pixels inclusive of ``x2``/``y2``, ``width`` pixels
inward) and ``draw_segmentation_masks`` (``image * (1 - alpha) + colour * alpha`` on the
mask, later masks over earlier ones), and the tests check both pixel for pixel. Labels are
drawn with OpenCV's Hershey font on a filled tag, a departure from torchvision's PIL font.

Images are accepted as numpy ``[H, W]``, ``[H, W, 1|3]`` or torch ``[C, H, W]``, uint8 or
float in ``[0, 1]``; every function returns a new uint8 ``[H, W, 3]`` array.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

Color = tuple[int, int, int]

__all__ = [
    "Color",
    "draw_boxes",
    "draw_instances",
    "draw_masks",
    "draw_semantic",
    "image_grid",
    "palette",
    "save_image",
    "to_rgb_uint8",
]


def palette(n: int, *, saturation: float = 0.75, value: float = 0.95) -> list[Color]:
    """``n`` distinct, deterministic colours (hues spaced by the golden ratio)."""
    out = []
    for k in range(n):
        r, g, b = colorsys.hsv_to_rgb((k * 0.6180339887) % 1.0, saturation, value)
        out.append((int(round(r * 255)), int(round(g * 255)), int(round(b * 255))))
    return out


def to_rgb_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Any supported image as a new contiguous uint8 ``[H, W, 3]`` array."""
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 3 and t.shape[0] in (1, 3):
            t = t.permute(1, 2, 0)  # tensors are (C, H, W) -> (H, W, C)
        image = t.numpy()
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be [H, W], [H, W, 3] or [3, H, W], got {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr).copy()
    if np.issubdtype(arr.dtype, np.floating):
        return np.ascontiguousarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8))
    if arr.dtype == bool:
        return np.ascontiguousarray(arr.astype(np.uint8) * 255)
    return np.ascontiguousarray(np.clip(arr, 0, 255).astype(np.uint8))


def _as_array(x: np.ndarray | torch.Tensor | Sequence, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _colors(colors: Sequence[Color] | Color | None, n: int) -> list[Color]:
    if colors is None:
        return palette(n)
    if len(colors) == 3 and all(isinstance(c, (int, np.integer)) for c in colors):
        return [tuple(int(v) for v in colors)] * n  # one colour for all
    colors = [tuple(int(v) for v in c) for c in colors]
    if len(colors) < n:
        raise ValueError(f"colors: need {n} colours, got {len(colors)}")
    return colors


def draw_masks(image: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor, *,
               colors: Sequence[Color] | Color | None = None, alpha: float = 0.5) -> np.ndarray:
    """Blend binary masks onto an image.

    Args:
        image: the image.
        masks: ``[N, H, W]`` (or ``[H, W]``) bool/0-1.
        colors: one colour, or one per mask (default: :func:`palette`).
        alpha: mask opacity in ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = to_rgb_uint8(image)
    m = _as_array(masks, "masks")
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] != out.shape[:2]:
        raise ValueError(f"masks must be [N, H, W] with [H, W] = {out.shape[:2]}, "
                         f"got {m.shape}")
    if m.shape[0] == 0:
        return out
    cols = _colors(colors, m.shape[0])
    painted = out.copy()
    for mask, c in zip(m.astype(bool), cols):
        painted[mask] = c
    blended = (out.astype(np.float32) * np.float32(1 - alpha)
               + painted.astype(np.float32) * np.float32(alpha))
    return blended.astype(np.uint8)


def draw_boxes(image: np.ndarray | torch.Tensor, boxes: np.ndarray | torch.Tensor | Sequence,
               *, labels: Sequence[str] | None = None,
               colors: Sequence[Color] | Color | None = None, width: int = 1,
               font_scale: float = 0.35) -> np.ndarray:
    """Draw box outlines (and optional text labels) on an image.

    Args:
        image: the image.
        boxes: ``[N, 4]`` ``(x1, y1, x2, y2)``; corners are truncated to integers and the
            outline covers pixels ``x1..x2`` and ``y1..y2`` inclusive, ``width`` pixels inward.
        labels: one text per box, drawn on a filled tag at the box's top-left corner.
        colors: one colour, or one per box (default: :func:`palette`).
        width: outline width in pixels.
        font_scale: OpenCV font scale of the labels.
    """
    out = to_rgb_uint8(image)
    b = _as_array(boxes, "boxes").reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
    if labels is not None and len(labels) != len(b):
        raise ValueError(f"labels: need one per box ({len(b)}), got {len(labels)}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    cols = _colors(colors, len(b))
    h, w = out.shape[:2]
    for k, (box, c) in enumerate(zip(b.astype(np.float64), cols)):
        x1, y1, x2, y2 = (int(v) for v in box)  # truncation toward zero, as torch's .to(int64)
        if x2 < x1 or y2 < y1:
            raise ValueError(f"boxes[{k}] = {tuple(box)} has x2 < x1 or y2 < y1")
        bands = [
            (y1, min(y1 + width - 1, y2), x1, x2),  # top
            (max(y2 - width + 1, y1), y2, x1, x2),  # bottom
            (y1, y2, x1, min(x1 + width - 1, x2)),  # left
            (y1, y2, max(x2 - width + 1, x1), x2),  # right
        ]
        for r0, r1, c0, c1 in bands:
            r0, r1, c0, c1 = max(r0, 0), min(r1, h - 1), max(c0, 0), min(c1, w - 1)
            if r0 <= r1 and c0 <= c1:
                out[r0:r1 + 1, c0:c1 + 1] = c
        if labels is not None and labels[k]:
            _draw_tag(out, str(labels[k]), max(x1, 0), max(y1, 0), c, font_scale)
    return out


def _draw_tag(out: np.ndarray, text: str, x: int, y: int, color: Color,
              font_scale: float) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, font_scale, 1)
    top = y - th - base - 2 if y - th - base - 2 >= 0 else y  # above the box if there is room
    x = min(x, max(out.shape[1] - tw - 2, 0))
    cv2.rectangle(out, (x, top), (x + tw + 2, top + th + base + 2), color, thickness=-1)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(out, text, (x + 1, top + th + 1), font, font_scale, ink, 1, cv2.LINE_AA)


def draw_instances(image: np.ndarray | torch.Tensor, *,
                   boxes: np.ndarray | torch.Tensor | None = None,
                   masks: np.ndarray | torch.Tensor | None = None,
                   labels: Sequence[int] | np.ndarray | torch.Tensor | None = None,
                   scores: Sequence[float] | np.ndarray | torch.Tensor | None = None,
                   class_names: Mapping[int, str] | Sequence[str] | None = None,
                   colors: Sequence[Color] | None = None, alpha: float = 0.45,
                   width: int = 1) -> np.ndarray:
    """Draw detections or ground truth: masks, then boxes with ``name score`` tags.

    Colours follow the class (one palette entry per label) unless ``colors`` is given.

    Args:
        image: the image.
        boxes: ``[N, 4]`` XYXY.
        masks: ``[N, H, W]``.
        labels: ``[N]`` class ids.
        scores: ``[N]`` confidences, appended to the tags.
        class_names: ``{id: name}`` or a list indexed by id.
        colors: one colour per instance (overrides the per-class colours).
        alpha: mask opacity.
        width: box outline width.
    """
    n = 0
    for x in (boxes, masks, labels, scores):
        if x is not None:
            n = len(x)
            break
    lab = None if labels is None else [int(v) for v in _as_array(labels, "labels").reshape(-1)]
    if colors is None:
        if lab is not None:
            table = palette(max(lab, default=0) + 1)
            colors = [table[v] for v in lab]
        else:
            colors = palette(n)
    out = to_rgb_uint8(image)
    if masks is not None and len(masks):
        out = draw_masks(out, masks, colors=colors, alpha=alpha)
    if boxes is not None and len(boxes):
        tags = None
        if lab is not None or scores is not None:
            tags = []
            sc = None if scores is None else _as_array(scores, "scores").reshape(-1)
            for k in range(len(boxes)):
                parts = []
                if lab is not None:
                    v = lab[k]
                    if class_names is None:
                        parts.append(str(v))
                    elif isinstance(class_names, Mapping):
                        parts.append(str(class_names.get(v, v)))
                    else:
                        parts.append(str(class_names[v]) if 0 <= v < len(class_names)
                                     else str(v))
                if sc is not None:
                    parts.append(f"{float(sc[k]):.2f}")
                tags.append(" ".join(parts))
        out = draw_boxes(out, boxes, labels=tags, colors=colors, width=width)
    return out


def draw_semantic(image: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                  class_names: Sequence[str], *, alpha: float = 0.5,
                  ignore_index: int | None = 255, legend: bool = True,
                  font_scale: float = 0.4) -> np.ndarray:
    """A semantic label map blended over the image, one colour per class, with a legend.

    Args:
        image: the image ``[H, W(, 3)]``.
        labels: ``[H, W]`` class indices (``ignore_index`` pixels are left unpainted).
        class_names: names by class index (colours: :func:`palette` of their number).
        alpha: opacity of the colours.
        ignore_index: label of unlabelled pixels.
        legend: append a column naming the classes present (with their colour and share of
            the pixels) to the right of the image.
    """
    out = to_rgb_uint8(image)
    lab = _as_array(labels, "labels")
    if lab.shape != out.shape[:2]:
        raise ValueError(f"labels must be [H, W] = {out.shape[:2]}, got {lab.shape}")
    table = palette(len(class_names))
    present = [int(v) for v in np.unique(lab) if v != ignore_index and 0 <= v < len(table)]
    masks = np.stack([lab == v for v in present]) if present else np.zeros((0, *lab.shape))
    out = draw_masks(out, masks, colors=[table[v] for v in present], alpha=alpha)
    if not legend:
        return out
    font = cv2.FONT_HERSHEY_SIMPLEX
    rows = [(v, f"{class_names[v]} {100 * float((lab == v).mean()):.0f}%") for v in present]
    (_, th), base = cv2.getTextSize("Ag", font, font_scale, 1)
    line = th + base + 4
    width = max([cv2.getTextSize(t, font, font_scale, 1)[0][0] for _, t in rows] + [40]) + 24
    panel = np.full((max(out.shape[0], line * len(rows) + 4), width, 3), 255, np.uint8)
    for k, (v, text) in enumerate(rows):
        y = 2 + k * line
        cv2.rectangle(panel, (4, y + 2), (4 + th, y + 2 + th), table[v], thickness=-1)
        cv2.putText(panel, text, (10 + th, y + th + 1), font, font_scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    canvas = np.full((panel.shape[0], out.shape[1] + width, 3), 255, np.uint8)
    canvas[:out.shape[0], :out.shape[1]] = out
    canvas[:, out.shape[1]:] = panel
    return canvas


def image_grid(images: Sequence[np.ndarray | torch.Tensor], *, ncols: int = 4, pad: int = 2,
               pad_value: int = 255) -> np.ndarray:
    """Tile images (any sizes; each cell is as large as the largest) into one RGB array."""
    if len(images) == 0:
        raise ValueError("image_grid needs at least one image")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    tiles = [to_rgb_uint8(im) for im in images]
    ch = max(t.shape[0] for t in tiles)
    cw = max(t.shape[1] for t in tiles)
    ncols = min(ncols, len(tiles))
    nrows = -(-len(tiles) // ncols)
    grid = np.full((nrows * ch + (nrows + 1) * pad, ncols * cw + (ncols + 1) * pad, 3),
                   pad_value, dtype=np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, ncols)
        y, x = pad + r * (ch + pad), pad + c * (cw + pad)
        grid[y:y + t.shape[0], x:x + t.shape[1]] = t
    return grid


def save_image(image: np.ndarray | torch.Tensor, path: str | Path) -> Path:
    """Write an image (PNG/JPEG by suffix), creating parent folders."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_rgb_uint8(image)).save(path)
    return path
