"""Input checks shared by the ops: one clear error naming the argument, never a deep traceback."""

from __future__ import annotations

import torch
from torch import Tensor

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def check_tensor(value: object, name: str) -> Tensor:
    """Raise ``TypeError`` unless ``value`` is a tensor."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_format(fmt: str, name: str = "fmt") -> str:
    """Raise ``ValueError`` unless ``fmt`` is one of :data:`BOX_FORMATS`."""
    if fmt not in BOX_FORMATS:
        raise ValueError(f"{name} must be one of {BOX_FORMATS}, got {fmt!r}")
    return fmt


def check_boxes(
    boxes: object,
    name: str,
    *,
    fmt: str = "xyxy",
    ndim: int | None = None,
    floating: bool = False,
    check_order: bool = True,
) -> Tensor:
    """Check a box tensor's type, shape and format; return it unchanged.

    Args:
        boxes: the value to check.
        name: the argument name used in error messages.
        fmt: box format; for ``"xyxy"`` the check is ``x2 >= x1`` and ``y2 >= y1``, for the
            formats with a width and a height it is ``w >= 0`` and ``h >= 0``.
        ndim: required number of dimensions (``None``: at least one).
        floating: require a floating-point dtype.
        check_order: also check the corner order (or the signs of ``w, h``). That check reads
            the values back on the host, a device synchronisation on CUDA, so the per-call ops
            (IoU, conversion, the box coder) skip it: data is validated once where it enters
            (:func:`modernvision.ops.validate_boxes`, called by the detectors' forward).

    Raises:
        TypeError: not a tensor, or not floating point when ``floating``.
        ValueError: wrong shape, or boxes whose corners are in the wrong order (for example
            ``(x, y, w, h)`` boxes passed where ``(x1, y1, x2, y2)`` is expected).
    """
    boxes = check_tensor(boxes, name)
    if floating and not boxes.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got {boxes.dtype}")
    if boxes.is_complex() or boxes.dtype == torch.bool:
        raise TypeError(f"{name} must be a real-valued tensor, got {boxes.dtype}")
    if ndim is not None and boxes.dim() != ndim:
        expected = "[N, 4]" if ndim == 2 else f"{ndim} dimensions ending in 4"
        raise ValueError(f"{name} must have shape {expected}, got {list(boxes.shape)}")
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [..., 4] ({fmt}), got {list(boxes.shape)}")
    if boxes.numel() == 0 or not check_order:
        return boxes
    if fmt == "xyxy":
        bad = (boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
        what = "x2 >= x1 and y2 >= y1"
    else:
        bad = (boxes[..., 2] < 0) | (boxes[..., 3] < 0)
        what = "w >= 0 and h >= 0"
    if bool(bad.any()):
        first = [int(i) for i in bad.nonzero()[0]]
        where = first[0] if len(first) == 1 else tuple(first)
        raise ValueError(
            f"{name} must be in ({', '.join(_fields(fmt))}) format with {what}; box {where} is "
            f"{boxes[tuple(first)].tolist()}. Convert other formats with box_convert()."
        )
    return boxes


def _fields(fmt: str) -> tuple[str, ...]:
    return {
        "xyxy": ("x1", "y1", "x2", "y2"),
        "xywh": ("x1", "y1", "w", "h"),
        "cxcywh": ("cx", "cy", "w", "h"),
    }[fmt]


def check_finite(tensor: Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``tensor`` holds a NaN or an infinity."""
    if tensor.numel() and not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be finite, got NaN or infinite values")


def check_reduction(reduction: str) -> str:
    """Raise ``ValueError`` unless ``reduction`` is ``'none'``, ``'mean'`` or ``'sum'``."""
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    return reduction
