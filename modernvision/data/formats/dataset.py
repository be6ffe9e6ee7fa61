"""A torch ``Dataset`` of images with boxes, labels and instance masks, from any format.

Samples follow torchvision's detection convention (the one its detection models and
``transforms.v2`` expect): ``(image, target)`` with ``image`` a ``tv_tensors.Image`` uint8
``[3, H, W]`` and ``target`` a dict of ``boxes`` (``tv_tensors.BoundingBoxes``, XYXY,
pixel-edge coordinates, float32), ``labels`` (int64 category ids, so 0 stays free for the
background), ``masks`` (``tv_tensors.Mask`` uint8 ``[N, H, W]``, when the annotations have
segmentations), ``iscrowd`` (int64) and ``image_id`` (int). Crowd regions are left out unless
``include_crowd=True`` (as torchvision's detection references do for training).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError
from modernvision.data.formats.coco import read_coco
from modernvision.data.formats.records import DetectionDataset
from modernvision.data.io import read_image

__all__ = ["InstanceDataset", "collate_detection", "load_rgb"]


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 ``[H, W, 3]`` RGB (:func:`modernvision.data.io.read_image`)."""
    return read_image(path, mode="RGB")


class InstanceDataset(torch.utils.data.Dataset):
    """Images and their objects as torchvision-style detection samples.

    Args:
        records: the annotations (from :func:`read_coco`, ``read_voc`` or ``read_yolo``).
        image_dir: folder the records' ``file_name`` are relative to.
        transforms: called as ``transforms(image, target)`` (e.g. a ``transforms.v2``
            pipeline from :mod:`modernvision.data.detection_transforms`).
        masks: include instance masks; ``None`` includes them when every kept annotation of
            the data set has a segmentation.
        include_crowd: keep ``iscrowd`` annotations.
    """

    def __init__(self, records: DetectionDataset, image_dir: str | Path, *,
                 transforms: Callable[..., Any] | None = None, masks: bool | None = None,
                 include_crowd: bool = False) -> None:
        self.records = records
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise MissingFileError(f"image folder not found: {self.image_dir}")
        self.transforms = transforms
        self.include_crowd = include_crowd
        kept = [a for im in records.images for a in im.annotations
                if include_crowd or not a.iscrowd]
        has_all = all(a.segmentation is not None for a in kept)
        if masks and not has_all:
            missing = next(a for a in kept if a.segmentation is None)
            raise InvalidArgumentError(
                f"masks=True but annotation {missing.id} has no segmentation")
        self.with_masks = has_all if masks is None else masks
        self.categories = records.categories

    @classmethod
    def from_coco(cls, annotation_file: str | Path, image_dir: str | Path,
                  **kwargs: Any) -> InstanceDataset:
        """Build from a COCO instances JSON and its image folder."""
        return cls(read_coco(annotation_file), image_dir, **kwargs)

    def __len__(self) -> int:
        return len(self.records.images)

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict[str, Any]]:
        rec = self.records.images[index]
        rgb = load_rgb(self.image_dir / rec.file_name)
        if rgb.shape[:2] != (rec.height, rec.width):
            raise BadFileError(f"{rec.file_name}: image is {rgb.shape[1]}x{rgb.shape[0]} but its "
                               f"annotation says {rec.width}x{rec.height}")
        image = tv_tensors.Image(torch.from_numpy(rgb).permute(2, 0, 1).contiguous())
        anns = [a for a in rec.annotations if self.include_crowd or not a.iscrowd]
        size = (rec.height, rec.width)
        boxes = torch.tensor([a.bbox for a in anns], dtype=torch.float32).reshape(-1, 4)
        target: dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=size),
            "labels": torch.tensor([a.category_id for a in anns], dtype=torch.int64),
            "iscrowd": torch.tensor([int(a.iscrowd) for a in anns], dtype=torch.int64),
            "image_id": rec.image_id,
        }
        if self.with_masks:
            stack = np.zeros((len(anns), *size), dtype=np.uint8)
            for k, a in enumerate(anns):
                stack[k] = a.mask(rec.height, rec.width)
            target["masks"] = tv_tensors.Mask(torch.from_numpy(stack))
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def collate_detection(batch: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """Collate detection samples into ``(images, targets)`` lists (sizes may differ)."""
    images, targets = zip(*batch)
    return list(images), list(targets)
