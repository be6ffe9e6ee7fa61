"""The instance-segmentation job: Mask R-CNN (boxes and masks) on scenes or COCO data.

The detection job with masks: training targets carry each object's binary mask, the evaluator
scores boxes and masks the COCO way (``AP``... for boxes, ``mask_AP``... for masks, RLE masks
thresholded at 0.5), validation keeps the best ``val_mask_AP``, and ``predict --out`` draws each
kept object's mask, box and label.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modernvision.engine.jobs.base import register_job
from modernvision.engine.jobs.detection import DetectionJob

#: Mask probabilities at or above this are the object's pixels (Mask R-CNN Sec. 3.1).
MASK_THRESHOLD = 0.5


@register_job
class InstanceJob(DetectionJob):
    name = "instance"
    monitor = ("val_mask_AP", "max")
    with_masks = True

    def summary_line(self, metrics: dict[str, float], prefix: str = "test_") -> str:
        return (f"test box AP {metrics[prefix + 'AP']:.4f}, mask AP "
                f"{metrics[prefix + 'mask_AP']:.4f}, mask AP50 "
                f"{metrics[prefix + 'mask_AP50']:.4f} on {metrics['test_images']} images")

    def draw_prediction(self, rgb: np.ndarray, det: Any, names: dict[int, str]) -> np.ndarray:
        """Each object's mask (its class's colour), then its box and ``label score`` tag."""
        from modernvision.viz.draw import draw_instances

        masks = None if det.masks is None else (det.masks[:, 0] >= MASK_THRESHOLD).numpy()
        return draw_instances(rgb, boxes=det.boxes, masks=masks, labels=det.labels,
                              scores=det.scores, class_names=names)
