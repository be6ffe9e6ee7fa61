"""Losses (detection, metric learning), each verified against a reference or the paper's
formula."""

from modernvision.losses.class_weights import label_frequencies, median_frequency_weights
from modernvision.losses.focal import centernet_focal_loss, sigmoid_focal_loss
from modernvision.losses.giou import generalized_box_iou_loss
from modernvision.losses.metric import contrastive_loss, mine_triplets, triplet_loss
from modernvision.losses.smooth_l1 import smooth_l1_loss

__all__ = [
    "centernet_focal_loss",
    "contrastive_loss",
    "generalized_box_iou_loss",
    "label_frequencies",
    "median_frequency_weights",
    "mine_triplets",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "triplet_loss",
]
