"""The base class of every detector: one input boundary, one train/eval contract.

``model(images, targets)`` in training mode returns a dict of losses; ``model(images)`` in eval
mode returns one :class:`~modernvision.models.detection._structures.Detections` per image, its
boxes in that image's pixels. ``images`` is a list of ``Tensor[3, H_i, W_i]`` floats in [0, 1]
(sizes may differ) or one ``Tensor[B, 3, H, W]``; targets are torchvision-style dicts
(``boxes``: ``Tensor[N, 4]`` xyxy pixels, ``labels``: ``Tensor[N]`` int64 in
``1..num_classes-1``, optional ``masks`` ``[N, H, W]`` and ``keypoints`` ``[N, K, 3]``; other
keys pass through). An image may have no objects (``boxes`` of shape ``[0, 4]``).

Everything the user hands in is checked here, once, with one host synchronisation for all the
value checks of a batch -- wrong types, channel counts or dtypes, a target list of the wrong
length, labels out of range, degenerate boxes (``x2 <= x1`` or ``y2 <= y1``, which torchvision
refuses too) and boxes outside their image -- each error naming the image's index. The ops the
model calls afterwards check shapes only.

A subclass implements :meth:`Detector.forward_batch` on an
:class:`~modernvision.models.detection._structures.ImageBatch`; two-stage (Faster/Mask R-CNN)
and one-stage detectors (SSD, RetinaNet, YOLO, CenterNet) alike. :meth:`Detector.postprocess`
maps results back to the input images (Mask R-CNN extends it to paste its masks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from modernvision._errors import InvalidArgumentError
from modernvision.models.detection._structures import Detections, ImageBatch
from modernvision.models.detection.transform import DetectionTransform, pad_images
from modernvision.ops import validate_boxes

__all__ = ["Detector"]

Target = dict[str, Any]


class Detector(nn.Module):
    """Input checks, the optional :class:`DetectionTransform`, and the train/eval contract.

    Args:
        transform: normalises, resizes and pads the images, and maps boxes back; ``None`` for
            callers who normalise and size their own tensors (a list is then zero-padded to its
            largest image, a batch tensor used as it is).
        num_classes: classes including the background (index 0).
        in_channels: image channels (3).
    """

    def __init__(self, transform: DetectionTransform | None, *, num_classes: int,
                 in_channels: int = 3) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
            raise InvalidArgumentError(
                f"num_classes counts the background too and must be an int >= 2, got "
                f"{num_classes!r}")
        if transform is not None and not isinstance(transform, DetectionTransform):
            raise InvalidArgumentError(
                f"transform must be a DetectionTransform or None, got {type(transform).__name__}")
        if transform is not None and transform.in_channels != in_channels:
            raise InvalidArgumentError(
                f"transform normalises {transform.in_channels} channels but the model takes "
                f"{in_channels}")
        self.transform = transform
        self.num_classes = num_classes
        self.in_channels = in_channels

    # -- the contract ----------------------------------------------------------------------

    def forward(
        self, images: Tensor | Sequence[Tensor], targets: Sequence[Target] | None = None
    ) -> dict[str, Tensor] | list[Detections]:
        """Losses (training) or detections (eval) for ``images``; see the module docstring."""
        image_list = self.check_images(images)
        original_sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in image_list]
        if self.training:
            if targets is None:
                raise InvalidArgumentError(
                    "targets are required in training mode (one dict with 'boxes' and 'labels' "
                    "per image); call model.eval() to detect")
            targets = self.check_targets(targets, original_sizes, image_list[0])
        batch, targets = self.prepare(images, image_list, targets if self.training else None)
        if self.training:
            return self.forward_batch(batch, targets)
        detections = self.forward_batch(batch, None)
        return self.postprocess(detections, batch.image_sizes, original_sizes)

    def forward_batch(
        self, batch: ImageBatch, targets: list[Target] | None
    ) -> dict[str, Tensor] | list[Detections]:
        """Losses (``targets`` given, training) or detections in ``batch`` coordinates."""
        raise TypeError(f"{type(self).__name__} must implement forward_batch")

    def postprocess(
        self,
        detections: list[Detections],
        image_sizes: Sequence[tuple[int, int]],
        original_sizes: Sequence[tuple[int, int]],
    ) -> list[Detections]:
        """Detections in batch coordinates -> in the input images' pixels."""
        if self.transform is None:
            return detections
        return self.transform.postprocess(detections, image_sizes, original_sizes)

    def prepare(
        self, images: Tensor | Sequence[Tensor], image_list: list[Tensor],
        targets: list[Target] | None,
    ) -> tuple[ImageBatch, list[Target] | None]:
        """Checked images (and targets) -> the network's batch (and resized targets)."""
        if self.transform is not None:
            return self.transform(image_list, targets)
        if isinstance(images, Tensor):
            size = (int(images.shape[-2]), int(images.shape[-1]))
            return ImageBatch(images.as_subclass(Tensor), [size] * images.shape[0]), targets
        return pad_images(image_list), targets

    # -- the boundary checks -----------------------------------------------------------------

    def check_images(self, images: Tensor | Sequence[Tensor]) -> list[Tensor]:
        """``images`` as a list of checked ``Tensor[C, H, W]`` (plain tensors)."""
        c = self.in_channels
        if isinstance(images, Tensor):
            if images.dim() != 4:
                raise InvalidArgumentError(
                    f"images must be a list of Tensor[{c}, H, W] or one Tensor[B, {c}, H, W], "
                    f"got a tensor of shape {tuple(images.shape)}"
                    + (" (wrap a single image in a list)" if images.dim() == 3 else ""))
            images = list(images.as_subclass(Tensor).unbind(0))
            if not images:
                raise InvalidArgumentError("images is an empty batch")
            self._check_image(images[0], "images[0]", batch=True)
            return images
        if not isinstance(images, (list, tuple)) or not images:
            raise InvalidArgumentError(
                f"images must be a non-empty list of Tensor[{c}, H, W] or one "
                f"Tensor[B, {c}, H, W], got {type(images).__name__}"
                + (" of length 0" if isinstance(images, (list, tuple)) else ""))
        out = []
        for i, image in enumerate(images):
            if not isinstance(image, Tensor):
                raise InvalidArgumentError(
                    f"images[{i}] must be a Tensor[{c}, H, W], got {type(image).__name__}")
            image = image.as_subclass(Tensor)
            self._check_image(image, f"images[{i}]", batch=False)
            out.append(image)
        return out

    def _check_image(self, image: Tensor, name: str, *, batch: bool) -> None:
        c = self.in_channels
        if image.dim() != 3 or image.shape[0] != c:
            shape = tuple(image.shape)
            got = f"{shape[0]} channel(s)" if image.dim() == 3 else f"shape {shape}"
            where = "images (a batch)" if batch else name
            raise InvalidArgumentError(
                f"{where}: expected {c} channels (Tensor[{c}, H, W] in [0, 1], RGB), got {got}")
        if min(image.shape[-2:]) < 1:
            raise InvalidArgumentError(f"{name} is empty: shape {tuple(image.shape)}")
        if not image.is_floating_point():
            raise InvalidArgumentError(
                f"{name} has dtype {image.dtype}; expected floats in [0, 1] (convert uint8 "
                f"images with image.float() / 255 or transforms.v2.ToDtype(torch.float32, "
                f"scale=True))")
        device = self._device()
        if device is not None and image.device != device:
            raise InvalidArgumentError(
                f"{name} is on {image.device} but the model is on {device}")

    def _device(self) -> torch.device | None:
        for p in self.parameters():
            return p.device
        return None

    def check_targets(
        self, targets: Sequence[Target], image_sizes: Sequence[tuple[int, int]],
        reference: Tensor,
    ) -> list[Target]:
        """Checked targets (boxes in the images' float dtype, labels int64), new dicts."""
        if not isinstance(targets, (list, tuple)):
            raise InvalidArgumentError(
                f"targets must be a list with one dict per image, got {type(targets).__name__}")
        if len(targets) != len(image_sizes):
            raise InvalidArgumentError(
                f"targets has {len(targets)} entries for {len(image_sizes)} images; give one "
                f"dict (boxes, labels) per image, with boxes of shape [0, 4] for an image "
                f"without objects")
        out, flags = [], []
        for i, (target, size) in enumerate(zip(targets, image_sizes)):
            target = self._check_target_structure(target, i, size, reference)
            boxes, labels = target["boxes"], target["labels"]
            x1, y1, x2, y2 = boxes.unbind(1)
            bad_box = ((x2 <= x1) | (y2 <= y1) | (x1 < 0) | (y1 < 0) | (x2 > size[1])
                       | (y2 > size[0]) | ~torch.isfinite(boxes).all(1))
            bad_label = (labels < 1) | (labels >= self.num_classes)
            flags.append(torch.stack([bad_box.any(), bad_label.any()]))
            out.append(target)
        bad = torch.stack(flags)
        if bool(bad.any()):  # the one synchronisation; details only on failure
            i, kind = (int(v) for v in bad.nonzero()[0])
            if kind == 0:
                validate_boxes(out[i]["boxes"], f"targets[{i}]['boxes']",
                               image_size=image_sizes[i], positive_size=True)
            labels = out[i]["labels"]
            wrong = labels[(labels < 1) | (labels >= self.num_classes)][0]
            raise InvalidArgumentError(
                f"targets[{i}]['labels'] has {int(wrong)}; labels must be in "
                f"[1, {self.num_classes - 1}] (0 is the background) for num_classes="
                f"{self.num_classes}")
        return out

    def _check_target_structure(self, target: Any, i: int, size: tuple[int, int],
                                reference: Tensor) -> Target:
        if not isinstance(target, Mapping):
            raise InvalidArgumentError(
                f"targets[{i}] must be a dict with 'boxes' and 'labels', got "
                f"{type(target).__name__}")
        missing = [k for k in ("boxes", "labels") if k not in target]
        if missing:
            raise InvalidArgumentError(f"targets[{i}] has no {' or '.join(map(repr, missing))}")
        boxes, labels = target["boxes"], target["labels"]
        if not isinstance(boxes, Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
            got = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
            raise InvalidArgumentError(
                f"targets[{i}]['boxes'] must be a Tensor[N, 4] of (x1, y1, x2, y2) pixels, "
                f"got {got}")
        if not isinstance(labels, Tensor) or labels.shape != (boxes.shape[0],):
            got = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
            raise InvalidArgumentError(
                f"targets[{i}]['labels'] must be a Tensor[N] with N = {boxes.shape[0]} (one "
                f"per box), got {got}")
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise InvalidArgumentError(
                f"targets[{i}]['labels'] must hold integer class indices, got {labels.dtype}")
        if boxes.is_complex() or boxes.dtype == torch.bool:
            raise InvalidArgumentError(
                f"targets[{i}]['boxes'] must be real-valued, got {boxes.dtype}")
        out = dict(target)
        out["boxes"] = boxes.as_subclass(Tensor).to(device=reference.device,
                                                    dtype=reference.dtype)
        out["labels"] = labels.as_subclass(Tensor).to(device=reference.device,
                                                      dtype=torch.int64)
        n = boxes.shape[0]
        if "masks" in target:
            masks = target["masks"]
            if not isinstance(masks, Tensor) or tuple(masks.shape) != (n, *size):
                got = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
                raise InvalidArgumentError(
                    f"targets[{i}]['masks'] must be a Tensor[N, H, W] = [{n}, {size[0]}, "
                    f"{size[1]}] (one mask per box, the image's size), got {got}")
            out["masks"] = masks.as_subclass(Tensor).to(reference.device)
        if "keypoints" in target:
            points = target["keypoints"]
            if not isinstance(points, Tensor) or points.dim() != 3 or points.shape[0] != n \
                    or points.shape[2] != 3:
                got = tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__
                raise InvalidArgumentError(
                    f"targets[{i}]['keypoints'] must be a Tensor[N, K, 3] of (x, y, visibility) "
                    f"with N = {n}, got {got}")
            out["keypoints"] = points.as_subclass(Tensor).to(reference.device, reference.dtype)
        return out


def replace_config(config: Any, overrides: Mapping[str, Any], *, model: str) -> Any:
    """``config`` (a detector's config dataclass) with ``overrides`` -- the builder's
    ``**overrides``, fields of that dataclass -- replaced; an unknown keyword is a ``TypeError``
    naming ``model`` and every accepted field."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"{model} got unexpected keyword argument(s) {unknown}; besides its "
                        f"builder keywords it accepts the {type(config).__name__} fields: "
                        f"{', '.join(sorted(fields))}")
    return dataclasses.replace(config, **overrides)


def apply_size_overrides(config: Any, overrides: dict[str, Any], *, model: str) -> Any:
    """``config`` with ``overrides`` (fields of its dataclass) replaced, for a one-stage
    detector's builder: as :func:`replace_config`, and a ``min_size`` without ``max_size`` sets
    both, and a list ``min_size`` (multi-scale training, as JSON gives it) becomes a tuple."""
    overrides = dict(overrides)
    if "min_size" in overrides and "max_size" not in overrides:
        size = overrides["min_size"]
        overrides["max_size"] = max(size) if isinstance(size, (list, tuple)) else size
    if isinstance(overrides.get("min_size"), list):
        overrides["min_size"] = tuple(overrides["min_size"])
    return replace_config(config, overrides, model=model)
