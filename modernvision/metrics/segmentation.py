"""Semantic segmentation metrics: pixel accuracy, mean accuracy, IoU per class, mIoU, fwIoU.

Paper: Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation",
CVPR 2015, arXiv:1411.4038, Section 5, which defines the four scores on the confusion counts.
With n_ij the number of pixels of true class i predicted as class j, t_i = sum_j n_ij the pixels
of class i and n_cl the number of classes:

* pixel accuracy        sum_i n_ii / sum_i t_i
* mean accuracy         (1 / n_cl) sum_i n_ii / t_i
* mean IU               (1 / n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)
* frequency weighted IU (sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)

Convention where the paper is silent (a class missing from a batch): a class's accuracy is NaN
when it has no pixel in the target (t_i = 0), and its IoU is NaN when it is absent from both the
target and the prediction (the union is 0). NaN entries are left out of the means, so n_cl
counts only the classes that are defined. A class that is predicted but absent from the target
has IoU 0 and pulls mIoU down. Pixels whose target is ``ignore_index`` are not counted at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from modernvision.metrics.classification import confusion_counts

__all__ = ["SegmentationMetrics", "segmentation_scores"]


def segmentation_scores(confusion: Any) -> dict[str, Any]:
    """The FCN scores of a confusion matrix (rows = true class, columns = predicted class).

    Args:
        confusion: [C, C] counts n_ij (pixels of true class i predicted as j).

    Returns:
        ``pixel_acc`` = sum_i n_ii / sum_i t_i; ``acc`` [C] = n_ii / t_i (NaN where t_i = 0);
        ``mean_acc`` = nanmean(acc); ``iou`` [C] = n_ii / (t_i + p_i - n_ii) with
        p_i = sum_j n_ji (NaN where t_i + p_i = 0); ``miou`` = nanmean(iou);
        ``fwiou`` = sum_i t_i iou_i / sum_i t_i over the classes with t_i > 0; and
        ``confusion`` itself. Scores with nothing to average are NaN.
    """
    n = np.asarray(confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion)
    if n.ndim != 2 or n.shape[0] != n.shape[1]:
        raise ValueError(f"confusion must be a square [C, C] matrix, got shape {n.shape}")
    n = n.astype(np.float64)
    diag = np.diag(n)
    t = n.sum(axis=1)  # pixels per true class
    p = n.sum(axis=0)  # pixels per predicted class
    union = t + p - diag
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(t > 0, diag / t, np.nan)
        iou = np.where(union > 0, diag / union, np.nan)
    total = t.sum()
    present = t > 0

    def nanmean(x: np.ndarray) -> float:
        x = x[~np.isnan(x)]
        return float(x.mean()) if x.size else float("nan")

    return {
        "pixel_acc": float(diag.sum() / total) if total > 0 else float("nan"),
        "mean_acc": nanmean(acc),
        "acc": acc,
        "iou": iou,
        "miou": nanmean(iou),
        "fwiou": float((t[present] * iou[present]).sum() / total) if total > 0 else float("nan"),
        "confusion": n.astype(np.int64),
    }


class SegmentationMetrics:
    """Accumulates a confusion matrix over batches and reports the FCN scores.

    The counts stay on the device of the first batch (a ``torch.bincount`` per update); only
    :meth:`compute` copies the [C, C] matrix to the host.

    Args:
        num_classes: C; labels are 0 .. C-1.
        ignore_index: target value of pixels to leave out (None: every pixel counts).

    Example:
        >>> m = SegmentationMetrics(3, ignore_index=255)
        >>> m.update(logits, masks)      # logits [N, 3, H, W] or labels [N, H, W]
        >>> m.compute()["miou"]
    """

    def __init__(self, num_classes: int, *, ignore_index: int | None = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.confusion = None

    @torch.no_grad()
    def update(self, preds: Any, targets: Any) -> None:
        """Add one batch.

        Args:
            preds: predicted labels shaped like ``targets`` or scores [N, C, H, W] (argmax over
                dim 1); torch tensors on any device or numpy arrays.
            targets: true labels [N, H, W] (or any shape) in [0, C) or ``ignore_index``.
        """
        counts = confusion_counts(preds, targets, self.num_classes, ignore_index=self.ignore_index)
        if self.confusion is None:
            self.confusion = counts
        else:
            self.confusion += counts.to(self.confusion.device)

    def compute(self) -> dict[str, Any]:
        """Scores of everything seen since construction or :meth:`reset`.

        Returns:
            The dict of :func:`segmentation_scores` (``pixel_acc``, ``mean_acc``, ``acc``,
            ``iou``, ``miou``, ``fwiou``, ``confusion``).
        """
        if self.confusion is None:
            zeros = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
            return segmentation_scores(zeros)
        return segmentation_scores(self.confusion.cpu().numpy())
