"""The evaluator protocol: how the Trainer and ``modernvision eval`` score a model.

An evaluator sees the model's eval-mode predictions batch by batch and turns them into named
numbers::

    evaluator.reset()
    for inputs, targets in loader:
        evaluator.update(model(inputs), targets)
    metrics = evaluator.compute()   # dict[str, float], the same on every rank

``compute`` is called on every rank under ``torchrun``; it reduces additive totals
(:func:`~modernvision.engine.distributed.all_reduce_sum`) or gathers predictions
(:func:`~modernvision.engine.distributed.all_gather_object`) so that the numbers cover the
whole data set. Each task has its own (classification here; COCO detection, segmentation,
retrieval and sequence evaluators live beside their jobs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

from modernvision.engine import distributed as dist_utils


@runtime_checkable
class Evaluator(Protocol):
    """Accumulates predictions and targets; ``compute`` returns the metrics."""

    def reset(self) -> None: ...

    def update(self, predictions: Any, targets: Any) -> None: ...

    def compute(self) -> dict[str, float]: ...


class ClassificationEvaluator:
    """Cross-entropy loss, accuracy and the confusion matrix of logits ``[B, num_classes]``.

    After :meth:`compute`, :attr:`confusion` holds the ``[num_classes, num_classes]`` counts
    (rows: true class, columns: predicted class) and :attr:`count` the number of images scored.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self._sums: dict[str, Tensor] = {}
        self.confusion: Tensor | None = None
        self.count = 0

    def update(self, predictions: Tensor, targets: Tensor) -> None:
        logits = predictions.float()
        preds = logits.argmax(1)
        cm = torch.bincount(targets * self.num_classes + preds, minlength=self.num_classes ** 2)
        part = {
            "loss_sum": F.cross_entropy(logits, targets, reduction="sum"),
            "correct": (preds == targets).sum(),
            "count": torch.tensor(targets.numel(), device=targets.device),
            "confusion": cm.reshape(self.num_classes, self.num_classes),
        }
        for k, v in part.items():
            v = v.detach().double()
            self._sums[k] = self._sums[k] + v if k in self._sums else v

    def compute(self) -> dict[str, float]:
        if not self._sums:
            raise ValueError("ClassificationEvaluator.compute() before any update()")
        device = self._sums["count"].device
        sums = dist_utils.all_reduce_sum(self._sums, device)
        self.confusion = sums["confusion"].long().cpu()
        self.count = int(sums["count"])
        n = float(sums["count"])
        return {"loss": float(sums["loss_sum"]) / n, "acc": float(sums["correct"]) / n}


class CocoEvaluator:
    """COCO AP/AR of detections (``list[Detections]`` per batch), as pycocotools computes them.

    The ground truth is a COCO dict for the whole data set; only the images the evaluator was
    updated with count (so a subset, or one rank's shard, is scored on its own images), and
    under ``torchrun`` every rank's results are gathered before scoring.

    Args:
        ground_truth: COCO instances dict (``images``, ``annotations``, ``categories``).
        category_ids: ``category_ids[label]`` is the COCO category id of a model label (None:
            labels are category ids).
        iou_types: ``("bbox",)``, or ``("bbox", "segm")`` for models with masks (segm metrics
            are prefixed ``mask_``).
    """

    def __init__(self, ground_truth: dict, *, category_ids: Sequence[int] | None = None,
                 iou_types: Sequence[str] = ("bbox",)) -> None:
        self.ground_truth = ground_truth
        self.category_ids = category_ids
        self.iou_types = tuple(iou_types)
        self.reset()

    def reset(self) -> None:
        self._results: list[dict] = []
        self._image_ids: list[int] = []

    def update(self, predictions: Sequence[Any], targets: Sequence[dict]) -> None:
        for det, target in zip(predictions, targets, strict=True):
            image_id = int(target["image_id"])
            self._image_ids.append(image_id)
            # one result per detection: its box, and its RLE mask when the model has masks
            self._results += det.to_coco_results(image_id, self.category_ids)

    def compute(self) -> dict[str, float]:
        from modernvision.metrics.coco import coco_evaluate

        parts = dist_utils.all_gather_object((self._image_ids, self._results))
        ids = sorted({i for image_ids, _ in parts for i in image_ids})
        results = [r for _, res in parts for r in res]
        gt = subset_coco(self.ground_truth, ids)
        out: dict[str, float] = {}
        for iou_type in self.iou_types:
            stats = coco_evaluate(gt, results, iou_type=iou_type)
            prefix = "" if iou_type == "bbox" else "mask_"
            out |= {f"{prefix}{k}": float(v) for k, v in stats.items()}
        self.count = len(ids)
        #: Every rank's results (COCO result dicts) and the ids of the images scored.
        self.gathered_results, self.gathered_image_ids = results, ids
        return out


def subset_coco(ground_truth: dict, image_ids: Sequence[int]) -> dict:
    """The COCO dict restricted to ``image_ids`` (categories kept)."""
    keep = set(image_ids)
    return {**ground_truth,
            "images": [im for im in ground_truth["images"] if im["id"] in keep],
            "annotations": [a for a in ground_truth["annotations"] if a["image_id"] in keep]}
