"""The detector's input transform: normalise, resize, pad into one batch; map boxes back.

Faster R-CNN (Ren et al., 2015, arXiv:1506.01497, Sec. 3.3) rescales each image so its shorter
side is ``s = 600`` pixels; Detectron and torchvision use 800 and cap the longer side at 1333.
Here the scale of an ``h x w`` image is ``min(min_size / min(h, w), max_size / max(h, w))``,
the image is resized bilinearly (``F.interpolate(..., scale_factor=scale,
recompute_scale_factor=True)``, so each side is ``floor(side * scale)``), normalised with the
ImageNet mean and standard deviation, and the batch is zero-padded at the bottom and right to
sides that are multiples of ``size_divisible`` (32, the coarsest FPN stride), as torchvision's
``GeneralizedRCNNTransform`` does. Target boxes are scaled by ``new size / old size`` per axis;
predicted boxes are scaled back by ``old / new``, in float32, as there.

Train-time multi-scale: with several ``min_size`` values, each training image draws one
uniformly. The draw is ``int(torch.empty(1).uniform_(0, len(min_size)))`` from torch's default
generator, once per training image even with a single size -- torchvision's rule, so a seeded
run consumes the same random numbers as torchvision's and samples the same anchors. Evaluation
uses the last ``min_size``.

Fixed size (SSD, YOLO): with ``fixed_size = (height, width)`` every image is resized to exactly
that size, its aspect ratio not kept (``F.interpolate(..., size=fixed_size)``), and ``min_size``
/ ``max_size`` only matter for the random draw above, which still happens, as in torchvision's
``GeneralizedRCNNTransform(fixed_size=...)``. Departure: torchvision's ``fixed_size`` is
``(width, height)``; here it is ``(height, width)``, the library's order for sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.detection._structures import Detections, ImageBatch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "DetectionTransform", "pad_images"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DetectionTransform(nn.Module):
    """Normalise, resize and pad images (and scale their targets); map predictions back.

    Args:
        min_size: the shorter side after resizing; several values: one is drawn per training
            image (multi-scale training), the last is used in evaluation.
        max_size: the longest the longer side may become.
        image_mean: per-channel mean subtracted after scaling to [0, 1].
        image_std: per-channel standard deviation divided by.
        size_divisible: the padded batch's sides are multiples of this.
        fixed_size: ``(height, width)`` every image is resized to (its aspect ratio not kept),
            or ``None`` to scale by ``min_size`` / ``max_size``.
    """

    def __init__(
        self,
        min_size: int | Sequence[int] = 800,
        max_size: int = 1333,
        *,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        size_divisible: int = 32,
        fixed_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        sizes = (min_size,) if isinstance(min_size, int) else tuple(min_size)
        if not sizes or any(not isinstance(s, int) or s <= 0 for s in sizes):
            raise InvalidArgumentError(
                f"min_size must be a positive int or a sequence of them, got {min_size!r}")
        if not isinstance(max_size, int) or max_size < max(sizes):
            raise InvalidArgumentError(
                f"max_size must be an int >= min_size ({max(sizes)}), got {max_size!r}")
        if len(image_mean) != len(image_std) or any(s <= 0 for s in image_std):
            raise InvalidArgumentError(
                f"image_mean and image_std need one value per channel and a positive std, got "
                f"{tuple(image_mean)} and {tuple(image_std)}")
        if not isinstance(size_divisible, int) or size_divisible < 1:
            raise InvalidArgumentError(
                f"size_divisible must be a positive int, got {size_divisible!r}")
        if fixed_size is not None and (len(fixed_size) != 2 or any(
                not isinstance(s, int) or s <= 0 for s in fixed_size)):
            raise InvalidArgumentError(
                f"fixed_size must be (height, width), two positive ints, got {fixed_size!r}")
        self.fixed_size = None if fixed_size is None else tuple(fixed_size)
        self.min_size = sizes
        self.max_size = max_size
        self.image_mean = tuple(float(m) for m in image_mean)
        self.image_std = tuple(float(s) for s in image_std)
        self.size_divisible = size_divisible

    @property
    def in_channels(self) -> int:
        return len(self.image_mean)

    def extra_repr(self) -> str:
        min_size = self.min_size[0] if len(self.min_size) == 1 else self.min_size
        return (f"min_size={min_size}, max_size={self.max_size}, image_mean={self.image_mean}, "
                f"image_std={self.image_std}, size_divisible={self.size_divisible}"
                + (f", fixed_size={self.fixed_size}" if self.fixed_size is not None else ""))

    def forward(
        self, images: Sequence[Tensor], targets: Sequence[dict[str, Any]] | None = None
    ) -> tuple[ImageBatch, list[dict[str, Any]] | None]:
        """Images ``[3, H_i, W_i]`` in [0, 1] (and their targets) -> one padded batch.

        Targets are shallow-copied dicts whose ``boxes`` (and ``masks``, ``keypoints``) are
        replaced by resized ones; the caller's dicts are left untouched.
        """
        out_images, out_targets = [], None if targets is None else []
        for i, image in enumerate(images):
            image = self.normalize(image)
            target = None if targets is None else dict(targets[i])
            image, target = self.resize(image, target)
            out_images.append(image)
            if out_targets is not None:
                out_targets.append(target)
        return pad_images(out_images, self.size_divisible), out_targets

    def normalize(self, image: Tensor) -> Tensor:
        """``(image - mean) / std`` per channel."""
        mean = torch.as_tensor(self.image_mean, dtype=image.dtype, device=image.device)
        std = torch.as_tensor(self.image_std, dtype=image.dtype, device=image.device)
        return (image - mean[:, None, None]) / std[:, None, None]

    def _pick_min_size(self) -> int:
        if not self.training:
            return self.min_size[-1]
        # torchvision's draw (see the module docstring), one per training image.
        return self.min_size[int(torch.empty(1).uniform_(0.0, float(len(self.min_size))).item())]

    def resize(
        self, image: Tensor, target: dict[str, Any] | None = None
    ) -> tuple[Tensor, dict[str, Any] | None]:
        """Resize one ``[C, H, W]`` image (and its target) to the chosen scale."""
        h, w = image.shape[-2:]
        min_size = self._pick_min_size()  # drawn even for a fixed size, as torchvision
        if self.fixed_size is not None:
            image = F.interpolate(image[None], size=self.fixed_size, mode="bilinear",
                                  align_corners=False)[0]
        else:
            scale = min(min_size / min(h, w), self.max_size / max(h, w))
            image = F.interpolate(image[None], scale_factor=scale, mode="bilinear",
                                  recompute_scale_factor=True, align_corners=False)[0]
        if target is None:
            return image, None
        new_size = tuple(image.shape[-2:])
        if "boxes" in target:
            target["boxes"] = scale_boxes(target["boxes"], (h, w), new_size)
        if "masks" in target:
            masks = target["masks"]
            target["masks"] = F.interpolate(masks[:, None].float(), size=new_size)[:, 0].byte() \
                if masks.numel() else masks.new_zeros((masks.shape[0], *new_size))
        if "keypoints" in target:
            target["keypoints"] = scale_points(target["keypoints"], (h, w), new_size)
        return image, target

    def postprocess(
        self,
        detections: list[Detections],
        image_sizes: Sequence[tuple[int, int]],
        original_sizes: Sequence[tuple[int, int]],
    ) -> list[Detections]:
        """Map boxes (and keypoints) from the resized images back to the input images."""
        out = []
        for det, size, original in zip(detections, image_sizes, original_sizes):
            det.boxes = scale_boxes(det.boxes, size, original)
            if det.keypoints is not None:
                det.keypoints = scale_points(det.keypoints, size, original)
            out.append(det)
        return out


def _ratios(old: Sequence[int], new: Sequence[int], device: torch.device) -> tuple[Tensor, Tensor]:
    # float32 tensor division, as torchvision's resize_boxes, so both round alike.
    h, w = (torch.tensor(n, dtype=torch.float32, device=device)
            / torch.tensor(o, dtype=torch.float32, device=device) for o, n in zip(old, new))
    return h, w


def scale_boxes(boxes: Tensor, old_size: Sequence[int], new_size: Sequence[int]) -> Tensor:
    """``(x1, y1, x2, y2)`` boxes of an ``old_size = (h, w)`` image, in a ``new_size`` one."""
    ratio_h, ratio_w = _ratios(old_size, new_size, boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=1)


def scale_points(points: Tensor, old_size: Sequence[int], new_size: Sequence[int]) -> Tensor:
    """``[..., (x, y, ...)]`` points of an ``old_size`` image, in a ``new_size`` one."""
    ratio_h, ratio_w = _ratios(old_size, new_size, points.device)
    points = points.clone()
    points[..., 0] *= ratio_w
    points[..., 1] *= ratio_h
    return points


def pad_images(images: Sequence[Tensor], size_divisible: int = 1) -> ImageBatch:
    """Zero-pad ``[C, H_i, W_i]`` images at the bottom and right into one batch whose sides are
    the largest ones rounded up to multiples of ``size_divisible``."""
    sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
    height = -(-max(h for h, _ in sizes) // size_divisible) * size_divisible
    width = -(-max(w for _, w in sizes) // size_divisible) * size_divisible
    batch = images[0].new_zeros((len(images), images[0].shape[0], height, width))
    for out, image in zip(batch, images):
        out[:, : image.shape[-2], : image.shape[-1]].copy_(image)
    return ImageBatch(batch, sizes)
