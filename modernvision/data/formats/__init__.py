"""Annotation formats (COCO JSON, Pascal VOC XML, YOLO txt) into one typed in-memory record.

Every reader returns a :class:`DetectionDataset` and every writer takes one; malformed files
raise ``BadFileError`` (missing ones ``MissingFileError``; malformed records handed to a writer
``InvalidArgumentError``), naming the file and the record: all are
:class:`modernvision._errors.UserError` and subclass ``ValueError`` / ``FileNotFoundError``.
:class:`InstanceDataset` serves any of them to torch as torchvision-style detection samples.
"""

from modernvision.data.formats.coco import (
    PanopticRecord,
    PanopticSegment,
    coco_from_dict,
    coco_to_dict,
    id_to_rgb,
    read_coco,
    read_coco_panoptic,
    rgb_to_id,
    write_coco,
    write_coco_panoptic,
)
from modernvision.data.formats.dataset import InstanceDataset, collate_detection, load_rgb
from modernvision.data.formats.records import (
    Category,
    DetectionDataset,
    ImageRecord,
    ObjectAnnotation,
    check_annotation,
)
from modernvision.data.formats.voc import VOC_CLASSES, read_voc, write_voc
from modernvision.data.formats.yolo import read_yolo, read_yolo_names, write_yolo

__all__ = [
    "Category",
    "DetectionDataset",
    "ImageRecord",
    "InstanceDataset",
    "ObjectAnnotation",
    "PanopticRecord",
    "PanopticSegment",
    "VOC_CLASSES",
    "check_annotation",
    "coco_from_dict",
    "coco_to_dict",
    "collate_detection",
    "id_to_rgb",
    "load_rgb",
    "read_coco",
    "read_coco_panoptic",
    "read_voc",
    "read_yolo",
    "read_yolo_names",
    "rgb_to_id",
    "write_coco",
    "write_coco_panoptic",
    "write_voc",
    "write_yolo",
]
