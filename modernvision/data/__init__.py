"""Data: the real offline sets by name, annotation formats, transforms, composited scenes.

Names are imported on first use (PEP 562), so ``from modernvision.data import load_photo`` or
``modernvision.data.io`` does not pull in torch; the torch datasets and transforms load when
they are asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "datasets": ("DATASETS", "PHOTOS", "ArrayDataset", "load_arrays", "load_photo",
                 "opencv_sample", "quokka"),
    "detection_transforms": ("boxes_from_masks", "detection_eval_transforms",
                             "detection_train_transforms"),
    "fetch": ("DataUnavailableError", "data_dir"),
    "formats": ("Category", "DetectionDataset", "ImageRecord", "InstanceDataset",
                "ObjectAnnotation", "collate_detection", "read_coco", "read_coco_panoptic",
                "read_voc", "read_yolo", "write_coco", "write_voc", "write_yolo"),
    "io": ("image_size", "read_image", "read_label_map"),
    "scenes": ("SceneConfig", "SceneSemanticDataset", "make_scenes", "scene_categories",
               "scene_instances", "show_scenes"),
    "torch_datasets": ("ArrayImageDataset", "ImageFolder", "load_image"),
    "transforms": ("build_transforms",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "ArrayDataset",
    "ArrayImageDataset",
    "Category",
    "DATASETS",
    "DataUnavailableError",
    "DetectionDataset",
    "ImageFolder",
    "ImageRecord",
    "InstanceDataset",
    "ObjectAnnotation",
    "PHOTOS",
    "SceneConfig",
    "SceneSemanticDataset",
    "boxes_from_masks",
    "build_transforms",
    "collate_detection",
    "data_dir",
    "detection_eval_transforms",
    "detection_train_transforms",
    "image_size",
    "load_arrays",
    "load_image",
    "load_photo",
    "make_scenes",
    "opencv_sample",
    "quokka",
    "read_coco",
    "read_coco_panoptic",
    "read_image",
    "read_label_map",
    "read_voc",
    "read_yolo",
    "scene_categories",
    "scene_instances",
    "show_scenes",
    "write_coco",
    "write_voc",
    "write_yolo",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from modernvision.data.datasets import (
        DATASETS,
        PHOTOS,
        ArrayDataset,
        load_arrays,
        load_photo,
        opencv_sample,
        quokka,
    )
    from modernvision.data.detection_transforms import (
        boxes_from_masks,
        detection_eval_transforms,
        detection_train_transforms,
    )
    from modernvision.data.fetch import DataUnavailableError, data_dir
    from modernvision.data.formats import (
        Category,
        DetectionDataset,
        ImageRecord,
        InstanceDataset,
        ObjectAnnotation,
        collate_detection,
        read_coco,
        read_coco_panoptic,
        read_voc,
        read_yolo,
        write_coco,
        write_voc,
        write_yolo,
    )
    from modernvision.data.io import image_size, read_image, read_label_map
    from modernvision.data.scenes import (
        SceneConfig,
        SceneSemanticDataset,
        make_scenes,
        scene_categories,
        scene_instances,
        show_scenes,
    )
    from modernvision.data.torch_datasets import ArrayImageDataset, ImageFolder, load_image
    from modernvision.data.transforms import build_transforms
