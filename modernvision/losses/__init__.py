"""Detection losses, each verified against torch/torchvision or the paper's formula."""

from modernvision.losses.focal import centernet_focal_loss, sigmoid_focal_loss
from modernvision.losses.giou import generalized_box_iou_loss
from modernvision.losses.smooth_l1 import smooth_l1_loss

__all__ = [
    "centernet_focal_loss",
    "generalized_box_iou_loss",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
]
