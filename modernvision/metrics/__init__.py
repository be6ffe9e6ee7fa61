"""Metrics: classification, detection (VOC AP, COCO), semantic segmentation and panoptic quality.

Each module's docstring names the paper or reference implementation it follows.
"""

from modernvision.metrics.classification import accuracy, confusion_matrix
from modernvision.metrics.coco import (
    COCO_STAT_NAMES,
    CocoEvaluation,
    coco_evaluate,
    coco_evaluation,
)
from modernvision.metrics.detection import (
    VocEvaluation,
    average_precision,
    box_iou_xyxy,
    match_detections_voc,
    precision_recall_curve,
    voc_evaluate,
)
from modernvision.metrics.masks import (
    mask_iou,
    masks_to_rles,
    polygons_to_mask,
    polygons_to_rle,
    rle_area,
    rle_decode,
    rle_encode,
    rle_merge,
    rle_to_bbox,
)
from modernvision.metrics.panoptic import (
    PanopticImage,
    PanopticQuality,
    PanopticResult,
    PQStat,
    panoptic_quality,
)
from modernvision.metrics.segmentation import SegmentationMetrics, segmentation_scores

__all__ = [
    "COCO_STAT_NAMES",
    "CocoEvaluation",
    "PQStat",
    "PanopticImage",
    "PanopticQuality",
    "PanopticResult",
    "SegmentationMetrics",
    "VocEvaluation",
    "accuracy",
    "average_precision",
    "box_iou_xyxy",
    "coco_evaluate",
    "coco_evaluation",
    "confusion_matrix",
    "mask_iou",
    "masks_to_rles",
    "match_detections_voc",
    "panoptic_quality",
    "polygons_to_mask",
    "polygons_to_rle",
    "precision_recall_curve",
    "rle_area",
    "rle_decode",
    "rle_encode",
    "rle_merge",
    "rle_to_bbox",
    "segmentation_scores",
    "voc_evaluate",
]
