"""Classification metrics: accuracy, top-k accuracy and the confusion matrix.

Top-k accuracy as reported since Krizhevsky et al., "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012 (no arXiv id): a sample counts as correct when its
true class is among the k highest scores. Inputs may be numpy arrays, lists or torch tensors on
any device; the counting runs where the tensors are and only the totals come back to the host.
Ties between scores are broken by ``torch.topk``, which does not promise an order among equals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["accuracy", "confusion_counts", "confusion_matrix"]


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name} must be a tensor or array, got {type(x).__name__}") from e


def _labels(preds: torch.Tensor, targets: torch.Tensor, name: str) -> torch.Tensor:
    """Predicted labels: scores [N, C, ...] are reduced by argmax over dim 1."""
    if preds.dim() == targets.dim() + 1:
        return preds.argmax(dim=1)
    if preds.shape != targets.shape:
        raise ValueError(
            f"{name} must be labels shaped like targets {tuple(targets.shape)} or scores "
            f"[N, C, ...] with one more dimension, got {tuple(preds.shape)}"
        )
    if preds.is_floating_point():
        raise TypeError(f"{name} shaped like targets must hold integer labels, got {preds.dtype}")
    return preds


def _check_range(x: torch.Tensor, num_classes: int, name: str) -> None:
    if x.numel() and bool(((x < 0) | (x >= num_classes)).any()):
        lo, hi = int(x.min()), int(x.max())
        raise ValueError(f"{name} must be in [0, {num_classes}), found values in [{lo}, {hi}]")


def confusion_counts(
    preds: Any, targets: Any, num_classes: int, *, ignore_index: int | None = None
) -> torch.Tensor:
    """Confusion counts as an int64 tensor [C, C] on the inputs' device (rows true, cols pred).

    Args:
        preds: labels shaped like ``targets``, or scores [N, C, ...] (argmax over dim 1).
        targets: true labels in [0, C), or ``ignore_index``.
        num_classes: C.
        ignore_index: a target value whose elements are left out.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    t = _as_tensor(targets, "targets")
    if t.is_floating_point():
        raise TypeError(f"targets must hold integer labels, got {t.dtype}")
    p = _labels(_as_tensor(preds, "preds").to(t.device), t, "preds")
    t, p = t.reshape(-1).long(), p.reshape(-1).long()
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    _check_range(t, num_classes, "targets")
    _check_range(p, num_classes, "preds")
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def confusion_matrix(
    preds: Any, targets: Any, num_classes: int, *, ignore_index: int | None = None
) -> np.ndarray:
    """Confusion matrix, C[i, j] = number of samples of true class i predicted as class j.

    Same convention as ``sklearn.metrics.confusion_matrix(targets, preds,
    labels=range(num_classes))``.

    Args:
        preds: predicted labels shaped like ``targets``, or scores/logits [N, C, ...] (argmax
            over dim 1).
        targets: true labels in [0, num_classes).
        num_classes: C.
        ignore_index: a target value whose samples are left out.

    Returns:
        int64 array [C, C], rows = true class, columns = predicted class.
    """
    return confusion_counts(preds, targets, num_classes, ignore_index=ignore_index).cpu().numpy()


def accuracy(
    logits_or_preds: Any, targets: Any, topk: int | Sequence[int] = (1,)
) -> float | list[float]:
    """Fraction of samples whose true class is among the k best predictions.

    top-k accuracy = (1/N) sum_n [y_n in the k classes of highest score for sample n].

    Args:
        logits_or_preds: scores [N, C] (logits or probabilities) or predicted labels [N] (then only
            k = 1 is defined).
        targets: true labels [N].
        topk: one k (returns a float) or several (returns a list, one fraction per k).

    Returns:
        Accuracy in [0, 1] for each requested k.
    """
    ks = [topk] if isinstance(topk, int) else [int(k) for k in topk]
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"topk must hold positive integers, got {topk!r}")
    t = _as_tensor(targets, "targets").reshape(-1)
    if t.is_floating_point():
        raise TypeError(f"targets must hold integer labels, got {t.dtype}")
    if t.numel() == 0:
        raise ValueError("accuracy of an empty batch is undefined (targets is empty)")
    out = _as_tensor(logits_or_preds, "logits_or_preds").to(t.device)
    if out.dim() == 2 and out.shape[0] == t.numel():
        if max(ks) > out.shape[1]:
            raise ValueError(f"topk {max(ks)} exceeds the {out.shape[1]} classes of the scores")
        top = out.topk(max(ks), dim=1).indices  # (N, kmax)
        hits = top == t[:, None]
        n = t.numel()
        fractions = [hits[:, :k].any(dim=1).sum().item() / n for k in ks]
    elif out.reshape(-1).shape == t.shape and not out.is_floating_point():
        if ks != [1] * len(ks):
            raise ValueError("top-k with k > 1 needs scores [N, C], not predicted labels")
        fractions = [(out.reshape(-1) == t).sum().item() / t.numel()] * len(ks)
    else:
        raise ValueError(
            f"logits_or_preds must be scores [N, C] or integer labels [N] for N = {t.numel()} "
            f"targets, got shape {tuple(out.shape)} ({out.dtype})"
        )
    return fractions[0] if isinstance(topk, int) else fractions
