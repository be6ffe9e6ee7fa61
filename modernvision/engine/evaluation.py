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
