"""One typed in-memory record for detection and instance-segmentation annotations.

Every reader (COCO JSON, Pascal VOC XML, YOLO txt) produces a :class:`DetectionDataset` and
every writer consumes one, so a data set can go from any format to any other. Conventions:

* boxes are ``(x1, y1, x2, y2)`` in pixel-edge coordinates: pixel ``i`` spans ``[i, i + 1)``, so
  a box tight around pixels ``x0..x1`` is ``(x0, .., x1 + 1, ..)`` and its width is the pixel
  count (COCO's ``[x, y, w, h]`` is the same geometry);
* a segmentation is either polygons (a list of flat ``[x1, y1, x2, y2, ...]`` lists, COCO's
  form) or a COCO RLE dict (see :mod:`modernvision.data.masks`), or ``None``;
* whatever a format stores that the record has no field for (COCO ``info``, an image's
  ``coco_url``, VOC's ``pose``/``truncated``/``difficult``) is kept in ``attributes`` so that a
  read-then-write round trip loses nothing.

Malformed annotations are never dropped silently: :func:`check_annotation` raises a
``ValueError`` that names the file and the record.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modernvision._errors import InvalidArgumentError
from modernvision.data.masks import (
    RLE,
    polygons_to_mask,
    polygons_to_rle,
    rle_area,
    rle_counts,
    rle_decode,
)

Polygons = list[list[float]]
Segmentation = Polygons | RLE | None

__all__ = [
    "Category",
    "DetectionDataset",
    "ImageRecord",
    "ObjectAnnotation",
    "Polygons",
    "Segmentation",
    "check_annotation",
    "check_image",
]


@dataclass
class Category:
    """An object class.

    Attributes:
        id: the class id stored in annotations (COCO ``category_id``).
        name: unique class name.
        supercategory: COCO's grouping (may be empty).
        isthing: ``True`` for countable objects, ``False`` for "stuff" (COCO panoptic).
    """

    id: int
    name: str
    supercategory: str = ""
    isthing: bool = True


@dataclass
class ObjectAnnotation:
    """One object in one image.

    Attributes:
        bbox: ``(x1, y1, x2, y2)`` pixel-edge coordinates.
        category_id: a :class:`Category` id.
        id: annotation id (COCO), or ``None`` where the format has none (VOC, YOLO).
        iscrowd: COCO's crowd flag (a region of many objects, ignored in matching).
        segmentation: polygons, an RLE dict, or ``None``.
        area: the object's area in pixels (COCO stores the mask area), or ``None``.
        attributes: format-specific extras kept for round trips (e.g. VOC ``difficult``).
    """

    bbox: tuple[float, float, float, float]
    category_id: int
    id: int | None = None
    iscrowd: bool = False
    segmentation: Segmentation = None
    area: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def bbox_xywh(self) -> tuple[float, float, float, float]:
        """The box as COCO ``[x, y, width, height]``."""
        x1, y1, x2, y2 = self.bbox
        return (x1, y1, x2 - x1, y2 - y1)

    def mask(self, height: int, width: int) -> np.ndarray:
        """The segmentation rasterised as uint8 ``[height, width]`` (COCO's rasterisation).

        Raises:
            ValueError: the annotation has no segmentation.
        """
        seg = self.segmentation
        if seg is None:
            raise ValueError(f"annotation {self.id} has no segmentation to rasterise")
        if isinstance(seg, dict):
            return rle_decode(seg)
        return polygons_to_mask(seg, height, width)

    def segmentation_area(self, height: int, width: int) -> int | None:
        """Pixel area of the segmentation (RLE area; polygons rasterised), or ``None``."""
        seg = self.segmentation
        if seg is None:
            return None
        if isinstance(seg, dict):
            return rle_area(seg)
        return rle_area(polygons_to_rle(seg, height, width))


@dataclass
class ImageRecord:
    """One image and its objects.

    Attributes:
        file_name: path of the image relative to the data set's image folder.
        width: image width in pixels.
        height: image height in pixels.
        image_id: unique id of the image.
        annotations: its objects.
        attributes: format-specific extras (e.g. COCO ``license``, ``coco_url``).
    """

    file_name: str
    width: int
    height: int
    image_id: int
    annotations: list[ObjectAnnotation] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class DetectionDataset:
    """Images with their objects, and the category list.

    Attributes:
        images: the images, in order.
        categories: the classes.
        info: data-set-level extras (COCO ``info``, ``licenses``).
    """

    images: list[ImageRecord]
    categories: list[Category]
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_annotations(self) -> int:
        return sum(len(im.annotations) for im in self.images)

    def category_names(self) -> dict[int, str]:
        """``{category_id: name}``."""
        return {c.id: c.name for c in self.categories}

    def image_by_id(self, image_id: int) -> ImageRecord:
        for im in self.images:
            if im.image_id == image_id:
                return im
        raise KeyError(f"no image with id {image_id}")

    def validate(self, source: str = "<dataset>", *, bbox_tolerance: float = 0.01) -> None:
        """Check every image and annotation; raise ``ValueError`` naming the first bad record.

        Args:
            source: the file (or other origin) to name in messages.
            bbox_tolerance: how far (pixels) a box may reach outside the image.
        """
        check_categories(self.categories, source)
        known = {c.id for c in self.categories}
        seen_images: set[int] = set()
        seen_anns: set[int] = set()
        for im in self.images:
            where_im = f"{source}: image {im.image_id} ({im.file_name!r})"
            if im.image_id in seen_images:
                raise InvalidArgumentError(f"{where_im}: duplicate image id {im.image_id}")
            seen_images.add(im.image_id)
            check_image(im.width, im.height, where_im)
            for k, ann in enumerate(im.annotations):
                label = f"annotation id {ann.id}" if ann.id is not None else f"annotation {k}"
                where = f"{source}: {label} (image {im.image_id}, {im.file_name!r})"
                if ann.id is not None:
                    if ann.id in seen_anns:
                        raise InvalidArgumentError(f"{where}: duplicate annotation id {ann.id}")
                    seen_anns.add(ann.id)
                check_annotation(ann, im.width, im.height, known, where,
                                 bbox_tolerance=bbox_tolerance)


def check_categories(categories: Iterable[Category], source: str) -> None:
    """Category ids and names must be unique."""
    ids: set[int] = set()
    names: set[str] = set()
    for c in categories:
        if c.id in ids:
            raise InvalidArgumentError(f"{source}: category id {c.id} appears twice")
        if c.name in names:
            raise InvalidArgumentError(f"{source}: category name {c.name!r} appears twice")
        ids.add(c.id)
        names.add(c.name)


def check_image(width: Any, height: Any, where: str) -> None:
    """Width and height must be positive integers."""
    for name, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise InvalidArgumentError(
                f"{where}: image {name} must be a positive integer, got {v!r}")


def check_annotation(
    ann: ObjectAnnotation,
    width: int,
    height: int,
    known_categories: Container[int],
    where: str,
    *,
    bbox_tolerance: float = 0.01,
) -> None:
    """Raise ``ValueError(f"{where}: ...")`` if the annotation is not valid for its image.

    Checks: a finite box of positive width and height inside the image (within
    ``bbox_tolerance`` pixels), a known category id, a non-negative area, and a well-formed
    segmentation of the image's size.
    """
    x1, y1, x2, y2 = ann.bbox
    if not all(math.isfinite(v) for v in ann.bbox):
        raise InvalidArgumentError(f"{where}: bbox has a non-finite coordinate {tuple(ann.bbox)}")
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        raise InvalidArgumentError(
            f"{where}: bbox has non-positive size "
            f"({x2 - x1:g} x {y2 - y1:g}) in (x1, y1, x2, y2) = {tuple(ann.bbox)}")
    t = bbox_tolerance
    if x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
        raise InvalidArgumentError(
            f"{where}: bbox (x1, y1, x2, y2) = {tuple(round(v, 3) for v in ann.bbox)}"
            f" extends outside the {width}x{height} image")
    if ann.category_id not in known_categories:
        raise InvalidArgumentError(f"{where}: unknown category id {ann.category_id}")
    if ann.area is not None and (not math.isfinite(ann.area) or ann.area < 0):
        raise InvalidArgumentError(f"{where}: area must be a non-negative number, got {ann.area}")
    seg = ann.segmentation
    if seg is None:
        return
    if isinstance(seg, dict):
        try:
            size = [int(v) for v in seg["size"]]
        except (KeyError, TypeError, ValueError):
            raise InvalidArgumentError(
                f"{where}: RLE segmentation needs 'size': [height, width]") from None
        if size != [height, width]:
            raise InvalidArgumentError(f"{where}: RLE size {size} does not match the image "
                                       f"(height, width) = ({height}, {width})")
        try:
            rle_counts(seg)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"{where}: malformed RLE segmentation: {exc}") from None
        return
    if not isinstance(seg, list) or not seg:
        raise InvalidArgumentError(
            f"{where}: segmentation must be polygons (a non-empty list of flat "
            f"[x1, y1, ...] lists) or an RLE dict, got {type(seg).__name__}")
    for p, poly in enumerate(seg):
        if not isinstance(poly, (list, tuple)) or len(poly) % 2 or len(poly) < 6:
            n = len(poly) if isinstance(poly, (list, tuple)) else type(poly).__name__
            raise InvalidArgumentError(
                f"{where}: polygon {p} must be a flat [x1, y1, x2, y2, ...] list of"
                f" at least 3 points, got {n} values")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in poly):
            raise InvalidArgumentError(
                f"{where}: polygon {p} has a non-numeric or non-finite value")
