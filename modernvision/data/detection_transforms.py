"""Detection and instance-segmentation augmentation with ``torchvision.transforms.v2``.

Boxes (``tv_tensors.BoundingBoxes``) and masks (``tv_tensors.Mask``) are transformed with the
image. The training pipeline is the SSD recipe (Liu et al., "SSD: Single Shot MultiBox
Detector", 2016, arXiv:1512.02325, Sec. 2.2 "Data augmentation": photometric distortions,
zoom-out on a mean-coloured canvas, a random crop whose IoU with some object is at least one
of ``{0, 0.1, 0.3, 0.5, 0.7, 0.9}``, horizontal flip), as torchvision's references build it.
Departures: the flip is off by default, since a mirrored digit is not the same digit (turn it
on for data without digits); boxes are recomputed tight around the transformed masks when
masks are present (a crop can cut an object so that its clipped box is no longer tight); a
final ``Resize`` is optional.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2

__all__ = [
    "BoxesFromMasks",
    "boxes_from_masks",
    "detection_eval_transforms",
    "detection_train_transforms",
    "keypoints_from_masks",
]

# ImageNet mean colour in uint8, the zoom-out canvas of the SSD recipe.
MEAN_FILL = (124, 116, 104)


def boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Tight ``(x1, y1, x2, y2)`` pixel-edge boxes of masks ``[N, H, W]``; empty -> zeros.

    ``torchvision.ops.masks_to_boxes`` returns the last pixel's index as ``x2``; this adds 1 so
    that the box's width is the pixel count, as in COCO.
    """
    if masks.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {tuple(masks.shape)}")
    boxes = torch.zeros(masks.shape[0], 4, dtype=torch.float32, device=masks.device)
    nonempty = (masks.flatten(1) != 0).any(1)
    if nonempty.any():
        boxes[nonempty] = masks_to_boxes(masks[nonempty].bool()).float() + torch.tensor(
            [0.0, 0.0, 1.0, 1.0], device=masks.device)
    return boxes


def keypoints_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Four keypoints per object from its mask: its top, right, bottom and left extreme pixels.

    Keypoint data (people's joints) is not available offline; extreme points are well defined
    for every instance mask of the composited scenes, so they stand in for a keypoint task
    (Keypoint R-CNN's CPU variant). Each point is the pixel centre ``(x + 0.5, y + 0.5)`` of
    the middle one of the mask's pixels on its extreme row or column; visibility 2 ("labelled
    and visible", COCO), or all zeros for an empty mask.

    Args:
        masks: ``[N, H, W]`` binary.

    Returns:
        ``Tensor[N, 4, 3]`` float32 ``(x, y, visibility)``, in the order top, right, bottom, left.
    """
    if masks.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got shape {tuple(masks.shape)}")
    out = torch.zeros(masks.shape[0], 4, 3, dtype=torch.float32, device=masks.device)
    for i, mask in enumerate(masks != 0):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        if ys.numel() == 0:
            continue
        points = []
        for along, across, pick in ((ys, xs, ys.min()), (xs, ys, xs.max()),
                                    (ys, xs, ys.max()), (xs, ys, xs.min())):
            on = across[along == pick].sort().values
            middle = on[(on.numel() - 1) // 2]
            points.append((middle, pick) if along is ys else (pick, middle))
        for k, (x, y) in enumerate(points):
            out[i, k] = torch.tensor([float(x) + 0.5, float(y) + 0.5, 2.0])
    return out


def _target(inputs: Any) -> dict[str, Any] | None:
    if isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[1], dict):
        return inputs[1]
    return None


def _labels_and_friends(inputs: Any) -> tuple[torch.Tensor, ...] | None:
    """The per-object tensors SanitizeBoundingBoxes must filter with the boxes."""
    target = _target(inputs)
    if target is None:
        return None
    n = target["boxes"].shape[0] if "boxes" in target else None
    found = tuple(target[k] for k in ("labels", "iscrowd", "area")
                  if isinstance(target.get(k), torch.Tensor) and target[k].shape[:1] == (n,))
    return found or None


class BoxesFromMasks:
    """Replace ``target["boxes"]`` by the tight boxes of ``target["masks"]`` (if present).

    Called as ``(image, target) -> (image, target)``.
    """

    def __call__(self, *inputs: Any) -> Any:
        sample = inputs if len(inputs) > 1 else inputs[0]
        target = _target(sample)
        if target is None or "masks" not in target or "boxes" not in target:
            return sample
        old = target["boxes"]
        if old.format != tv_tensors.BoundingBoxFormat.XYXY:
            raise ValueError(f"BoxesFromMasks needs XYXY boxes, got {old.format}")
        target = dict(target)
        target["boxes"] = tv_tensors.wrap(boxes_from_masks(target["masks"]).to(old.dtype),
                                          like=old)
        return sample[0], target


def detection_train_transforms(
    *,
    size: int | tuple[int, int] | None = None,
    hflip: bool = False,
    photometric: bool = True,
    zoom_out: float | None = 2.0,
    iou_crop: bool = True,
    tight_boxes: bool = True,
    fill: tuple[int, int, int] = MEAN_FILL,
) -> v2.Compose:
    """The SSD-style training pipeline for ``(image, target)`` samples.

    Args:
        size: final ``Resize`` (int: shorter side; ``(h, w)``: exact); ``None`` keeps sizes.
        hflip: random horizontal flip (leave off for digits).
        photometric: random brightness/contrast/saturation/hue/channel order.
        zoom_out: largest zoom-out factor (canvas side / image side); ``None`` disables it.
        iou_crop: SSD's random IoU crop.
        tight_boxes: recompute boxes from the transformed masks when masks are present.
        fill: canvas colour of the zoom-out for uint8 images (masks are padded with 0).

    Returns:
        a ``v2.Compose``; its output images are float32 in ``[0, 1]``.
    """
    steps: list[Any] = [v2.ToImage()]
    if photometric:
        steps.append(v2.RandomPhotometricDistort(p=0.5))
    if zoom_out is not None:
        if zoom_out < 1.0:
            raise ValueError(f"zoom_out must be >= 1 (or None), got {zoom_out}")
        steps.append(v2.RandomZoomOut(fill={tv_tensors.Image: fill, "others": 0},
                                      side_range=(1.0, zoom_out), p=0.5))
    if iou_crop:
        steps.append(v2.RandomIoUCrop())
    if hflip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if size is not None:
        steps.append(v2.Resize(size, antialias=True))
    if tight_boxes:
        steps.append(BoxesFromMasks())
    steps += [v2.SanitizeBoundingBoxes(labels_getter=_labels_and_friends),
              v2.ToDtype(torch.float32, scale=True)]
    return v2.Compose(steps)


def detection_eval_transforms(*, size: int | tuple[int, int] | None = None) -> v2.Compose:
    """Test-time pipeline: optional ``Resize``, then float32 images in ``[0, 1]``."""
    steps: list[Any] = [v2.ToImage()]
    if size is not None:
        steps.append(v2.Resize(size, antialias=True))
    steps.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(steps)
