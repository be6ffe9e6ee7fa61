"""Box utilities: format conversion, areas, IoU and generalized IoU.

Generalized IoU follows "Generalized Intersection over Union: A Metric and A Loss for Bounding
Box Regression" (Rezatofighi et al., 2019, arXiv:1902.09630), eq. (1):
``GIoU = IoU - |C \\ (A u B)| / |C|`` with ``C`` the smallest enclosing box.

Formats: ``xyxy`` is ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2``; ``xywh`` is
``(x1, y1, w, h)``; ``cxcywh`` is ``(cx, cy, w, h)``. Every function states which it expects and
checks types and shapes (free: no values are read). The values themselves (corner order, finite,
inside the image) are checked by :func:`validate_boxes`, once, where data enters the library --
a detector's forward calls it on its targets -- and not on every call of these ops, because
reading values back on the host synchronises with the device (as in torchvision). Integer boxes
are computed in int32/int64 and half precision in float32, to avoid overflow, as torchvision does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from modernvision.ops._checks import check_boxes, check_format, check_tensor

__all__ = [
    "box_area",
    "box_convert",
    "box_iou",
    "clip_boxes_to_image",
    "generalized_box_iou",
    "remove_small_boxes",
    "validate_boxes",
]


def _upcast(t: Tensor) -> Tensor:
    # Products of coordinates overflow float16 and int16 long before they overflow float32/int32.
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype in (torch.int32, torch.int64) else t.int()


def _to_xyxy(boxes: Tensor, fmt: str) -> Tensor:
    if fmt == "xyxy":
        return boxes
    a, b, w, h = boxes.unbind(-1)
    if fmt == "xywh":
        return torch.stack((a, b, a + w, b + h), dim=-1)
    # cxcywh
    return torch.stack((a - 0.5 * w, b - 0.5 * h, a + 0.5 * w, b + 0.5 * h), dim=-1)


def _from_xyxy(boxes: Tensor, fmt: str) -> Tensor:
    if fmt == "xyxy":
        return boxes
    x1, y1, x2, y2 = boxes.unbind(-1)
    w, h = x2 - x1, y2 - y1
    if fmt == "xywh":
        return torch.stack((x1, y1, w, h), dim=-1)
    # cxcywh
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, w, h), dim=-1)


def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor:
    """Convert boxes between ``xyxy``, ``xywh`` and ``cxcywh``.

    Args:
        boxes: ``Tensor[..., 4]`` in ``in_fmt``; any number of leading dimensions.
        in_fmt: format of ``boxes``.
        out_fmt: format of the result.

    Returns:
        ``Tensor[..., 4]`` in ``out_fmt`` (a new tensor, also when the formats are equal).

    Raises:
        ValueError: unknown format or wrong shape.
    """
    check_format(in_fmt, "in_fmt")
    check_format(out_fmt, "out_fmt")
    check_boxes(boxes, "boxes", fmt=in_fmt, check_order=False)
    if in_fmt == out_fmt:
        return boxes.clone()
    return _from_xyxy(_to_xyxy(boxes, in_fmt), out_fmt)


def box_area(boxes: Tensor, fmt: str = "xyxy") -> Tensor:
    """Area of each box.

    Args:
        boxes: ``Tensor[..., 4]`` in ``fmt``.
        fmt: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.

    Returns:
        ``Tensor[...]`` of areas (float32 for half inputs, int32/int64 for integer inputs).
    """
    check_format(fmt)
    check_boxes(boxes, "boxes", fmt=fmt, check_order=False)
    return _area(boxes, fmt)


def _area(boxes: Tensor, fmt: str = "xyxy") -> Tensor:
    boxes = _upcast(boxes)
    if fmt == "xyxy":
        return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return boxes[..., 2] * boxes[..., 3]


def _inter_union(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> tuple[Tensor, Tensor]:
    """Pairwise intersection and union areas of two sets in ``fmt``: ``[..., N, M]`` each."""
    # Areas from the boxes' own format (w * h for xywh/cxcywh, exact), corners from xyxy.
    area1 = _area(boxes1, fmt)
    area2 = _area(boxes2, fmt)
    boxes1, boxes2 = _to_xyxy(boxes1, fmt), _to_xyxy(boxes2, fmt)
    top_left = torch.max(boxes1[..., :, None, :2], boxes2[..., None, :, :2])  # [..., N, M, 2]
    bottom_right = torch.min(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = _upcast(bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter, union


def _check_pair(boxes1: Tensor, boxes2: Tensor, fmt: str) -> None:
    check_boxes(boxes1, "boxes1", fmt=fmt, check_order=False)
    check_boxes(boxes2, "boxes2", fmt=fmt, check_order=False)
    if boxes1.dim() < 2 or boxes2.dim() < 2:
        raise ValueError(
            f"boxes1 and boxes2 must have shape [..., N, 4] and [..., M, 4], got "
            f"{list(boxes1.shape)} and {list(boxes2.shape)}"
        )
    try:
        torch.broadcast_shapes(boxes1.shape[:-2], boxes2.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading dimensions of boxes1 {list(boxes1.shape[:-2])} and boxes2 "
            f"{list(boxes2.shape[:-2])} do not broadcast"
        ) from None


def box_iou(boxes1: Tensor, boxes2: Tensor, fmt: str = "xyxy") -> Tensor:
    """Pairwise intersection over union (Jaccard index).

    Args:
        boxes1: ``Tensor[..., N, 4]`` in ``fmt``.
        boxes2: ``Tensor[..., M, 4]`` in ``fmt``; leading dimensions broadcast with ``boxes1``.
        fmt: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.

    Returns:
        ``Tensor[..., N, M]`` of IoU values in ``[0, 1]`` (NaN where both boxes have zero area).
    """
    check_format(fmt)
    _check_pair(boxes1, boxes2, fmt)
    inter, union = _inter_union(boxes1, boxes2, fmt)
    return inter / union


def generalized_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise generalized IoU (Rezatofighi et al., 2019, eq. 1), in ``[-1, 1]``.

    Args:
        boxes1: ``Tensor[..., N, 4]`` in ``(x1, y1, x2, y2)`` format.
        boxes2: ``Tensor[..., M, 4]`` in ``(x1, y1, x2, y2)`` format.

    Returns:
        ``Tensor[..., N, M]``.
    """
    _check_pair(boxes1, boxes2, "xyxy")
    inter, union = _inter_union(boxes1, boxes2)
    iou = inter / union
    top_left = torch.min(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    bottom_right = torch.max(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = _upcast(bottom_right - top_left).clamp(min=0)
    enclosing = wh[..., 0] * wh[..., 1]
    return iou - (enclosing - union) / enclosing


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip ``(x1, y1, x2, y2)`` boxes to an image of ``size = (height, width)``.

    Args:
        boxes: ``Tensor[..., 4]`` in ``(x1, y1, x2, y2)`` format.
        size: ``(height, width)`` of the image.

    Returns:
        ``Tensor[..., 4]`` with x in ``[0, width]`` and y in ``[0, height]``.
    """
    check_tensor(boxes, "boxes")
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape [..., 4], got {list(boxes.shape)}")
    if len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    height, width = size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x, y), dim=-1).reshape(boxes.shape)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both at least ``min_size``.

    Args:
        boxes: ``Tensor[N, 4]`` in ``(x1, y1, x2, y2)`` format.
        min_size: minimum side length.

    Returns:
        ``Tensor[K]`` int64 indices into ``boxes``.
    """
    check_tensor(boxes, "boxes")
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape [N, 4], got {list(boxes.shape)}")
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return torch.where((widths >= min_size) & (heights >= min_size))[0]


def validate_boxes(
    boxes: object,
    name: str = "boxes",
    *,
    fmt: str = "xyxy",
    image_size: tuple[int, int] | None = None,
    positive_size: bool = False,
) -> Tensor:
    """Check box values once, where data enters (the per-call ops check only shapes).

    One host synchronisation for all the checks; the detailed message is built only when one
    fails.

    Args:
        boxes: ``Tensor[..., 4]`` in ``fmt``.
        name: the argument named in the error (e.g. ``"targets[3]['boxes']"``).
        fmt: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        image_size: ``(height, width)``: also require every box inside ``[0, width] x [0,
            height]`` (pixel-edge coordinates, so ``x2 == width`` is inside).
        positive_size: require ``x2 > x1`` and ``y2 > y1`` (no zero-width or zero-height box);
            otherwise ``x2 >= x1`` and ``y2 >= y1``.

    Returns:
        ``boxes``, unchanged.

    Raises:
        InvalidArgumentError: (a ``ValueError``) a NaN or infinite coordinate, corners in the
            wrong order, an empty box with ``positive_size``, a box outside ``image_size``;
            or a wrong shape.
        TypeError: not a real-valued tensor.
    """
    from modernvision._errors import InvalidArgumentError

    check_format(fmt)
    try:
        boxes = check_boxes(boxes, name, fmt=fmt, check_order=False)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None
    if boxes.numel() == 0:
        return boxes
    xyxy = _upcast(_to_xyxy(boxes, fmt)).reshape(-1, 4)
    x1, y1, x2, y2 = xyxy.unbind(-1)
    finite = torch.isfinite(xyxy).all(-1) if xyxy.is_floating_point() else None
    bad_order = (x2 <= x1) | (y2 <= y1) if positive_size else (x2 < x1) | (y2 < y1)
    outside = None
    if image_size is not None:
        height, width = image_size
        outside = (x1 < 0) | (y1 < 0) | (x2 > width) | (y2 > height)
    bad = bad_order if finite is None else bad_order | ~finite
    if outside is not None:
        bad = bad | outside
    if not bool(bad.any()):
        return boxes
    i = int(bad.nonzero()[0, 0])
    where = tuple(int(v) for v in torch.unravel_index(torch.tensor(i), boxes.shape[:-1]))
    where_text = where[0] if len(where) == 1 else where
    value = boxes.reshape(-1, 4)[i].tolist()
    fields = ", ".join(_FIELDS[fmt])
    if finite is not None and not bool(finite[i]):
        problem = "has a NaN or infinite coordinate"
    elif bool(bad_order[i]):
        relation = ">" if positive_size else ">="
        need = (f"x2 {relation} x1 and y2 {relation} y1" if fmt == "xyxy"
                else f"w {relation} 0 and h {relation} 0")
        problem = f"is degenerate or has its corners in the wrong order (need {need})"
    else:
        problem = f"lies outside the {image_size[1]}x{image_size[0]} (width x height) image"
    raise InvalidArgumentError(
        f"{name}: box {where_text} {value} {problem}; boxes must be ({fields}) pixel "
        f"coordinates (convert other formats with box_convert())."
    )


_FIELDS = {
    "xyxy": ("x1", "y1", "x2", "y2"),
    "xywh": ("x1", "y1", "w", "h"),
    "cxcywh": ("cx", "cy", "w", "h"),
}
