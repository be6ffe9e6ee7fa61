"""COCO JSON: object instances (boxes, polygons, RLE) and panoptic segmentation.

Format of Lin et al., "Microsoft COCO: Common Objects in Context" (2014, arXiv:1405.0312), and
of the panoptic annotations of Kirillov et al., "Panoptic Segmentation" (2019,
arXiv:1801.00868): a JSON file with ``images``, ``annotations`` and ``categories``; boxes are
``[x, y, width, height]``; for panoptic data each image has a PNG whose RGB colour encodes a
segment id as ``id = R + 256 G + 256**2 B``, described by ``segments_info``.

Required fields (a missing one is a ``ValueError`` naming the file and the record): images
``id``, ``width``, ``height``, ``file_name``; annotations ``id``, ``image_id``,
``category_id``, ``bbox``; categories ``id``, ``name``. ``iscrowd`` defaults to 0 and a missing
``area`` is computed from the segmentation (else the box), as pycocotools would need it for its
area ranges. Every other key is kept in the records' ``attributes`` and written back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modernvision._errors import BadFileError, MissingFileError
from modernvision.data.formats.records import (
    Category,
    DetectionDataset,
    ImageRecord,
    ObjectAnnotation,
    check_categories,
    check_image,
)
from modernvision.data.io import read_json

__all__ = [
    "PanopticRecord",
    "PanopticSegment",
    "coco_from_dict",
    "coco_to_dict",
    "id_to_rgb",
    "read_coco",
    "read_coco_panoptic",
    "rgb_to_id",
    "write_coco",
    "write_coco_panoptic",
]

_IMAGE_KEYS = ("id", "width", "height", "file_name")
_ANN_KEYS = ("id", "image_id", "category_id", "bbox")
_CAT_KEYS = ("id", "name")


def _require(obj: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, dict):
        raise BadFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for k in keys:
        if k not in obj:
            raise BadFileError(f"{where}: missing required field {k!r}")


def _int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise BadFileError(f"{where}: {name} must be an integer, got {value!r}")
    return int(value)


def _categories_from_json(raw: Any, source: str) -> list[Category]:
    if not isinstance(raw, list):
        raise BadFileError(f"{source}: 'categories' must be a list")
    cats = []
    for k, c in enumerate(raw):
        _require(c, _CAT_KEYS, f"{source}: category {k}")
        cats.append(Category(id=_int(c["id"], "id", f"{source}: category {k}"),
                             name=str(c["name"]),
                             supercategory=str(c.get("supercategory", "")),
                             isthing=bool(c.get("isthing", 1))))
    check_categories(cats, source)
    return cats


def _categories_to_json(categories: list[Category]) -> list[dict[str, Any]]:
    return [{"id": c.id, "name": c.name, "supercategory": c.supercategory,
             "isthing": int(c.isthing)} for c in categories]


def coco_from_dict(data: Mapping[str, Any], source: str = "<coco>", *,
                   bbox_tolerance: float = 0.01) -> DetectionDataset:
    """Parse a loaded COCO instances JSON into a validated :class:`DetectionDataset`.

    Args:
        data: the parsed JSON object.
        source: the file name to put in error messages.
        bbox_tolerance: how far (pixels) a box may reach outside its image.
    """
    if not isinstance(data, Mapping):
        raise BadFileError(f"{source}: expected a JSON object at the top level")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise BadFileError(f"{source}: missing top-level field {key!r}")
    categories = _categories_from_json(data["categories"], source)
    images: list[ImageRecord] = []
    by_id: dict[int, ImageRecord] = {}
    for k, raw in enumerate(data["images"]):
        where = f"{source}: image {raw.get('id', f'#{k}') if isinstance(raw, dict) else k}"
        _require(raw, _IMAGE_KEYS, where)
        image_id = _int(raw["id"], "id", where)
        if image_id in by_id:
            raise BadFileError(f"{where}: duplicate image id {image_id}")
        check_image(raw["width"], raw["height"], where)
        im = ImageRecord(file_name=str(raw["file_name"]), width=int(raw["width"]),
                         height=int(raw["height"]), image_id=image_id,
                         attributes={k2: v for k2, v in raw.items() if k2 not in _IMAGE_KEYS})
        images.append(im)
        by_id[image_id] = im
    for k, raw in enumerate(data["annotations"]):
        ann_id = raw.get("id", f"#{k}") if isinstance(raw, dict) else k
        img = raw.get("image_id", "?") if isinstance(raw, dict) else "?"
        where = f"{source}: annotation id {ann_id} (image {img})"
        _require(raw, _ANN_KEYS, where)
        image_id = _int(raw["image_id"], "image_id", where)
        if image_id not in by_id:
            raise BadFileError(f"{where}: image_id {image_id} is not among the images")
        im = by_id[image_id]
        where = f"{source}: annotation id {ann_id} (image {image_id}, {im.file_name!r})"
        bbox = raw["bbox"]
        if (not isinstance(bbox, list) or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in bbox)):
            raise BadFileError(f"{where}: bbox must be [x, y, width, height], got {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0:
            raise BadFileError(f"{where}: bbox has non-positive size ({w:g} x {h:g}) in "
                               f"[x, y, width, height] = {bbox}")
        seg = raw.get("segmentation")
        if seg is not None and not isinstance(seg, (list, dict)):
            raise BadFileError(f"{where}: segmentation must be polygons or an RLE dict, "
                               f"got {type(seg).__name__}")
        if isinstance(seg, list) and len(seg) == 0:
            seg = None
        area = raw.get("area")
        if area is not None and (isinstance(area, bool) or not isinstance(area, (int, float))):
            raise BadFileError(f"{where}: area must be a number, got {area!r}")
        extras = {k2: v for k2, v in raw.items()
                  if k2 not in _ANN_KEYS + ("iscrowd", "segmentation", "area")}
        ann = ObjectAnnotation(bbox=(x, y, x + w, y + h),
                               category_id=_int(raw["category_id"], "category_id", where),
                               id=_int(raw["id"], "id", where),
                               iscrowd=bool(raw.get("iscrowd", 0)), segmentation=seg,
                               area=None if area is None else float(area), attributes=extras)
        im.annotations.append(ann)
    info = {k: v for k, v in data.items() if k not in ("images", "annotations", "categories")}
    dataset = DetectionDataset(images=images, categories=categories, info=info)
    dataset.validate(source, bbox_tolerance=bbox_tolerance)
    for im in images:
        for ann in im.annotations:
            if ann.area is None:
                seg_area = ann.segmentation_area(im.height, im.width)
                x1, y1, x2, y2 = ann.bbox
                ann.area = float(seg_area) if seg_area is not None else (x2 - x1) * (y2 - y1)
    return dataset


def read_coco(path: str | Path, *, bbox_tolerance: float = 0.01) -> DetectionDataset:
    """Read a COCO instances JSON file.

    Args:
        path: the JSON file.
        bbox_tolerance: how far (pixels) a box may reach outside its image.

    Raises:
        FileNotFoundError: no such file.
        ValueError: malformed JSON or a malformed record (message names file and record).
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"COCO annotation file not found: {path}")
    data = read_json(path, what="COCO annotation file")
    return coco_from_dict(data, path.name, bbox_tolerance=bbox_tolerance)


def coco_to_dict(dataset: DetectionDataset, *, things_only: bool = False) -> dict[str, Any]:
    """The data set as a COCO instances JSON object.

    Annotations without an id are numbered after the largest existing id (ids start at 1).
    A missing area is computed from the segmentation, else the box.

    Args:
        dataset: the records.
        things_only: write only ``isthing`` categories (as COCO instance files do).
    """
    next_id = max((a.id for im in dataset.images for a in im.annotations if a.id is not None),
                  default=0) + 1
    images, annotations = [], []
    for im in dataset.images:
        images.append({"id": im.image_id, "file_name": im.file_name, "width": im.width,
                       "height": im.height, **im.attributes})
        for ann in im.annotations:
            if ann.id is None:
                ann_id, next_id = next_id, next_id + 1
            else:
                ann_id = ann.id
            area = ann.area
            if area is None:
                seg_area = ann.segmentation_area(im.height, im.width)
                x1, y1, x2, y2 = ann.bbox
                area = float(seg_area) if seg_area is not None else (x2 - x1) * (y2 - y1)
            seg = ann.segmentation if ann.segmentation is not None else []
            if isinstance(seg, dict) and isinstance(seg.get("counts"), bytes):
                seg = {"size": list(seg["size"]), "counts": seg["counts"].decode("ascii")}
            annotations.append({"id": ann_id, "image_id": im.image_id,
                                "category_id": ann.category_id,
                                "bbox": [float(v) for v in ann.bbox_xywh],
                                "area": float(area), "iscrowd": int(ann.iscrowd),
                                "segmentation": seg, **ann.attributes})
    cats = [c for c in dataset.categories if c.isthing or not things_only]
    return {**dataset.info, "images": images, "annotations": annotations,
            "categories": _categories_to_json(cats)}


def write_coco(dataset: DetectionDataset, path: str | Path, *, things_only: bool = False,
               indent: int | None = None) -> Path:
    """Write a COCO instances JSON file (see :func:`coco_to_dict`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco_to_dict(dataset, things_only=things_only), indent=indent))
    return path


# ---------------------------------------------------------------------------------------------
# panoptic


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic segment ids from an RGB PNG: ``R + 256 G + 256**2 B``.

    Args:
        rgb: uint8 ``[H, W, 3]``.

    Returns:
        int64 ``[H, W]``.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be [H, W, 3], got shape {rgb.shape}")
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_id`: ids ``[H, W]`` (0 .. 256**3 - 1) -> uint8 ``[H, W, 3]``."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 256 ** 3):
        raise ValueError("panoptic segment ids must lie in [0, 256**3)")
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


@dataclass
class PanopticSegment:
    """One segment of a panoptic annotation (``segments_info`` entry).

    Attributes:
        id: the segment id (its RGB colour in the PNG).
        category_id: its class.
        area: pixel count.
        bbox: ``(x1, y1, x2, y2)`` pixel-edge coordinates.
        iscrowd: COCO's crowd flag.
    """

    id: int
    category_id: int
    area: int
    bbox: tuple[float, float, float, float]
    iscrowd: bool = False


@dataclass
class PanopticRecord:
    """One image of a COCO panoptic file.

    Attributes:
        image_id: the image's id.
        file_name: the image file (from ``images``).
        segments_file: the PNG of segment ids (relative to the panoptic folder).
        width: image width.
        height: image height.
        segments: the segments.
    """

    image_id: int
    file_name: str
    segments_file: str
    width: int
    height: int
    segments: list[PanopticSegment] = field(default_factory=list)

    def load_ids(self, panoptic_dir: str | Path) -> np.ndarray:
        """Read the PNG and return segment ids ``[H, W]`` (0 = unlabelled)."""
        from modernvision.data.io import read_image

        path = Path(panoptic_dir) / self.segments_file
        return rgb_to_id(read_image(path, mode="RGB", what="panoptic PNG"))


def write_coco_panoptic(records: list[PanopticRecord], categories: list[Category],
                        path: str | Path, *, info: dict[str, Any] | None = None) -> Path:
    """Write a COCO panoptic JSON (the PNGs are written by the caller)."""
    images = [{"id": r.image_id, "file_name": r.file_name, "width": r.width,
               "height": r.height} for r in records]
    annotations = []
    for r in records:
        infos = []
        for s in r.segments:
            x1, y1, x2, y2 = s.bbox
            infos.append({"id": s.id, "category_id": s.category_id, "area": int(s.area),
                          "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                          "iscrowd": int(s.iscrowd)})
        annotations.append({"image_id": r.image_id, "file_name": r.segments_file,
                            "segments_info": infos})
    data = {**(info or {}), "images": images, "annotations": annotations,
            "categories": _categories_to_json(categories)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def read_coco_panoptic(path: str | Path) -> tuple[list[PanopticRecord], list[Category]]:
    """Read a COCO panoptic JSON into records and categories (PNGs are read on demand)."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"COCO panoptic file not found: {path}")
    source = path.name
    data = read_json(path, what="COCO panoptic file")
    if not isinstance(data, dict):
        raise BadFileError(f"{source}: expected a JSON object at the top level")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise BadFileError(f"{source}: missing top-level field {key!r}")
    categories = _categories_from_json(data["categories"], source)
    known = {c.id for c in categories}
    images = {}
    for k, raw in enumerate(data["images"]):
        where = f"{source}: image {raw.get('id', f'#{k}') if isinstance(raw, dict) else k}"
        _require(raw, _IMAGE_KEYS, where)
        check_image(raw["width"], raw["height"], where)
        images[_int(raw["id"], "id", where)] = raw
    records = []
    for k, raw in enumerate(data["annotations"]):
        where = f"{source}: panoptic annotation {k}"
        _require(raw, ("image_id", "file_name", "segments_info"), where)
        image_id = _int(raw["image_id"], "image_id", where)
        where = f"{source}: panoptic annotation of image {image_id}"
        if image_id not in images:
            raise BadFileError(f"{where}: image_id {image_id} is not among the images")
        im = images[image_id]
        rec = PanopticRecord(image_id=image_id, file_name=str(im["file_name"]),
                             segments_file=str(raw["file_name"]), width=int(im["width"]),
                             height=int(im["height"]))
        seen: set[int] = set()
        for s in raw["segments_info"]:
            _require(s, ("id", "category_id", "area", "bbox"), where)
            seg_where = f"{where}, segment {s['id']}"
            sid = _int(s["id"], "id", seg_where)
            if sid in seen or sid <= 0:
                raise BadFileError(f"{seg_where}: segment ids must be unique and positive")
            seen.add(sid)
            cid = _int(s["category_id"], "category_id", seg_where)
            if cid not in known:
                raise BadFileError(f"{seg_where}: unknown category id {cid}")
            x, y, w, h = (float(v) for v in s["bbox"])
            if w < 0 or h < 0 or x < 0 or y < 0 or x + w > rec.width or y + h > rec.height:
                raise BadFileError(f"{seg_where}: bbox {s['bbox']} is invalid for the "
                                   f"{rec.width}x{rec.height} image")
            rec.segments.append(PanopticSegment(id=sid, category_id=cid,
                                                area=_int(s["area"], "area", seg_where),
                                                bbox=(x, y, x + w, y + h),
                                                iscrowd=bool(s.get("iscrowd", 0))))
        records.append(rec)
    return records, categories
