"""Pure tensor ops for detection and segmentation, each verified against torchvision.ops.

Boxes are ``(x1, y1, x2, y2)`` unless a function says otherwise; shapes are in the docstrings.
"""

from modernvision.ops.anchor_kmeans import kmeans_anchors, mean_best_iou, shape_iou
from modernvision.ops.anchors import AnchorGenerator, cell_anchors, grid_anchors
from modernvision.ops.box_coder import BoxCoder
from modernvision.ops.boxes import (
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    generalized_box_iou,
    remove_small_boxes,
    validate_boxes,
)
from modernvision.ops.heatmaps import draw_gaussian, gaussian_radius
from modernvision.ops.matcher import Matcher, SSDMatcher
from modernvision.ops.nms import batched_nms, nms
from modernvision.ops.roi_align import RoIAlign, roi_align
from modernvision.ops.roi_pool import RoIPool, roi_pool
from modernvision.ops.sampling import BalancedPositiveNegativeSampler, hard_negative_mining

__all__ = [
    "AnchorGenerator",
    "BalancedPositiveNegativeSampler",
    "BoxCoder",
    "Matcher",
    "RoIAlign",
    "RoIPool",
    "SSDMatcher",
    "batched_nms",
    "box_area",
    "box_convert",
    "box_iou",
    "cell_anchors",
    "clip_boxes_to_image",
    "draw_gaussian",
    "gaussian_radius",
    "generalized_box_iou",
    "grid_anchors",
    "hard_negative_mining",
    "kmeans_anchors",
    "mean_best_iou",
    "nms",
    "remove_small_boxes",
    "roi_align",
    "roi_pool",
    "shape_iou",
    "validate_boxes",
]
