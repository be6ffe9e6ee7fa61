"""The typed values every detector passes around and returns.

Conventions (the library's one box convention): boxes are float ``(x1, y1, x2, y2)`` in pixel
edges -- a box covering pixel columns 0..9 is ``x1 = 0, x2 = 10`` -- in the coordinates of the
image the caller passed in. Labels are the model's class indices: 0 is the background and never
appears in a result; with the data sets of :mod:`modernvision.data` they are the category ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

__all__ = ["Detections", "ImageBatch"]


@dataclass
class ImageBatch:
    """Images as the network sees them: normalised, resized, padded into one tensor.

    Attributes:
        tensors: ``Tensor[B, 3, H, W]``, zero-padded at the bottom and right.
        image_sizes: per image, its ``(height, width)`` inside ``tensors`` before padding.
    """

    tensors: Tensor
    image_sizes: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.image_sizes)


@dataclass
class Detections:
    """The objects found in one image.

    Attributes:
        boxes: ``Tensor[N, 4]`` ``(x1, y1, x2, y2)`` in the input image's pixels.
        scores: ``Tensor[N]`` confidence, highest first.
        labels: ``Tensor[N]`` int64 class index (``1..num_classes-1``).
        masks: ``Tensor[N, 1, H, W]`` per-pixel probabilities over the input image (instance
            segmentation), or ``None``.
        keypoints: ``Tensor[N, K, 3]`` ``(x, y, visibility)`` in input pixels, or ``None``.
        keypoint_scores: ``Tensor[N, K]`` the heatmap score of each keypoint, or ``None``.
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    masks: Tensor | None = None
    keypoints: Tensor | None = None
    keypoint_scores: Tensor | None = None

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float32) -> Detections:
        """No detections."""
        return cls(torch.zeros((0, 4), dtype=dtype, device=device),
                   torch.zeros((0,), dtype=dtype, device=device),
                   torch.zeros((0,), dtype=torch.int64, device=device))

    def __getitem__(self, index: Tensor | slice) -> Detections:
        """The detections selected by ``index`` (a mask, indices or a slice)."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)
                                if getattr(self, f.name) is not None})

    def to(self, device: torch.device | str) -> Detections:
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if getattr(self, f.name) is not None})

    def to_coco_results(
        self,
        image_id: int,
        category_ids: Sequence[int] | Mapping[int, int] | None = None,
        *,
        mask_threshold: float = 0.5,
    ) -> list[dict[str, Any]]:
        """COCO result dicts for :func:`modernvision.metrics.coco_evaluate`.

        Args:
            image_id: the image's COCO id.
            category_ids: the COCO category id of each label (``category_ids[label]``, a
                sequence or a mapping); ``None`` when labels are the category ids already (as
                with :mod:`modernvision.data`'s data sets).
            mask_threshold: masks, when present, are binarised at this probability and added
                as RLE ``segmentation`` (for ``iou_type="segm"``).

        Returns:
            ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"(, "segmentation")}]``.
        """
        boxes = self.boxes.detach().to("cpu", torch.float64)
        xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
        labels = self.labels.tolist()
        scores = self.scores.detach().float().tolist()
        if category_ids is None:
            cats = labels
        else:
            try:
                cats = [int(category_ids[label]) for label in labels]
            except (IndexError, KeyError):
                missing = next(label for label in labels if not _has(category_ids, label))
                raise KeyError(f"category_ids has no entry for label {missing}") from None
        results = [{"image_id": image_id, "category_id": c, "bbox": b, "score": s}
                   for c, b, s in zip(cats, xywh, scores)]
        if self.masks is not None and results:
            from modernvision.metrics.masks import masks_to_rles

            binary = (self.masks[:, 0] >= mask_threshold).to("cpu", torch.uint8)
            for result, rle in zip(results, masks_to_rles(binary)):
                result["segmentation"] = rle
        return results


def _has(table: Sequence[int] | Mapping[int, int], key: int) -> bool:
    return key in table if isinstance(table, Mapping) else 0 <= key < len(table)
