"""Data: the real offline sets by name, annotation formats, transforms, composited scenes."""

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

__all__ = [
    "DATASETS",
    "PHOTOS",
    "ArrayDataset",
    "ArrayImageDataset",
    "Category",
    "DataUnavailableError",
    "DetectionDataset",
    "ImageFolder",
    "ImageRecord",
    "InstanceDataset",
    "ObjectAnnotation",
    "SceneConfig",
    "SceneSemanticDataset",
    "boxes_from_masks",
    "build_transforms",
    "collate_detection",
    "data_dir",
    "detection_eval_transforms",
    "detection_train_transforms",
    "load_arrays",
    "load_image",
    "load_photo",
    "make_scenes",
    "opencv_sample",
    "quokka",
    "read_coco",
    "read_coco_panoptic",
    "read_voc",
    "read_yolo",
    "scene_categories",
    "scene_instances",
    "show_scenes",
    "write_coco",
    "write_voc",
    "write_yolo",
]
