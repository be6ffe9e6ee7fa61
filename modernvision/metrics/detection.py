"""Detection metrics: precision/recall curves and PASCAL VOC average precision.

Paper: Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010
(doi:10.1007/s11263-009-0275-4), and its development kit (VOCevaldet.m, VOCap.m) as the reference
for the details the paper leaves open:

* Per class, detections of all images are ranked by confidence. Each is matched to the ground
  truth box of its image with the highest IoU (the first one on ties); at IoU >= 0.5 it is a true
  positive if that box is not yet detected, a false positive (duplicate) otherwise; a match to a
  box marked *difficult* is neither (the detection is dropped). Below the threshold it is a false
  positive. Recall counts only non-difficult boxes.
* ``method="11_point"`` (VOC 2007): AP = 1/11 sum over t in {0, 0.1, ..., 1} of the highest
  precision at recall >= t (0 if none). The t are the exact tenths: a recall of 3/10 reaches
  t = 0.3 (ports that build t as 3 * 0.1, a hair above 0.3 in floating point, miss it).
* ``method="all_point"`` (VOC 2010 onwards): precision is replaced by its monotone envelope
  p_interp(r) = max_{r' >= r} p(r'), and AP is the area under that step curve,
  sum_i (r_i - r_{i-1}) p_interp(r_i) over the points where recall changes, with r_0 = 0.

Departures: boxes are (x1, y1, x2, y2) in continuous coordinates by default; ``plus_one=True``
restores the devkit's inclusive-pixel convention (widths x2 - x1 + 1). Dropped (difficult)
detections are removed from the curve rather than kept as repeated points; the AP is the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "VocEvaluation",
    "average_precision",
    "box_iou_xyxy",
    "match_detections_voc",
    "precision_recall_curve",
    "voc_evaluate",
]

_METHODS = ("all_point", "11_point")


def _to_numpy(x: Any, name: str, dtype: Any = None) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor on any device
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from e


def _boxes_xyxy(x: Any, name: str) -> np.ndarray:
    boxes = _to_numpy(x, name, np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape [N, 4] (x1, y1, x2, y2), got {boxes.shape}")
    return boxes


def box_iou_xyxy(boxes1: Any, boxes2: Any, *, plus_one: bool = False) -> np.ndarray:
    """Pairwise IoU.

    Args:
        boxes1: [N, 4] (x1, y1, x2, y2).
        boxes2: [M, 4] (x1, y1, x2, y2).
        plus_one: the VOC devkit's inclusive-pixel convention (width = x2 - x1 + 1).

    Returns:
        [N, M] IoU; 0 where boxes do not overlap.
    """
    b1, b2 = _boxes_xyxy(boxes1, "boxes1"), _boxes_xyxy(boxes2, "boxes2")
    one = 1.0 if plus_one else 0.0
    iw = np.minimum(b1[:, None, 2], b2[None, :, 2]) - np.maximum(b1[:, None, 0], b2[None, :, 0])
    ih = np.minimum(b1[:, None, 3], b2[None, :, 3]) - np.maximum(b1[:, None, 1], b2[None, :, 1])
    iw, ih = iw + one, ih + one
    inter = iw * ih
    a1 = (b1[:, 2] - b1[:, 0] + one) * (b1[:, 3] - b1[:, 1] + one)
    a2 = (b2[:, 2] - b2[:, 0] + one) * (b2[:, 3] - b2[:, 1] + one)
    union = a1[:, None] + a2[None, :] - inter
    overlap = (iw > 0) & (ih > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap, inter / np.where(overlap, union, 1.0), 0.0)


def match_detections_voc(
    det_boxes: Any,
    det_scores: Any,
    gt_boxes: Any,
    *,
    gt_difficult: Any = None,
    iou_threshold: float = 0.5,
    plus_one: bool = False,
) -> np.ndarray:
    """VOC matching of one image's detections of one class.

    Args:
        det_boxes: [D, 4] (x1, y1, x2, y2).
        det_scores: [D] confidences.
        gt_boxes: [G, 4] (x1, y1, x2, y2).
        gt_difficult: [G] bool, boxes whose matches are neither TP nor FP (default none).
        iou_threshold: a match needs IoU >= this (the devkit's ``minoverlap``).
        plus_one: the devkit's inclusive-pixel box convention.

    Returns:
        [D] int8 in input order: 1 true positive, 0 false positive, -1 dropped (difficult).
    """
    det = _boxes_xyxy(det_boxes, "det_boxes")
    scores = _to_numpy(det_scores, "det_scores", np.float64).reshape(-1)
    gt = _boxes_xyxy(gt_boxes, "gt_boxes")
    if len(scores) != len(det):
        raise ValueError(f"det_scores has {len(scores)} entries for {len(det)} det_boxes")
    difficult = (
        np.zeros(len(gt), dtype=bool)
        if gt_difficult is None
        else _to_numpy(gt_difficult, "gt_difficult", bool).reshape(-1)
    )
    if len(difficult) != len(gt):
        raise ValueError(f"gt_difficult has {len(difficult)} entries for {len(gt)} gt_boxes")
    labels = np.zeros(len(det), dtype=np.int8)
    if len(gt) == 0 or len(det) == 0:
        return labels
    iou = box_iou_xyxy(det, gt, plus_one=plus_one)
    best_gt = np.argmax(iou, axis=1)  # first maximum, as the devkit's strict ">" scan
    best_iou = iou[np.arange(len(det)), best_gt]
    detected = np.zeros(len(gt), dtype=bool)
    # Sequential by design: whether a box is already detected depends on higher-scored dets.
    for d in np.argsort(-scores, kind="stable").tolist():
        if best_iou[d] < iou_threshold:
            continue
        j = best_gt[d]
        if difficult[j]:
            labels[d] = -1
        elif not detected[j]:
            labels[d] = 1
            detected[j] = True
    return labels


def precision_recall_curve(
    scores: Any, is_true_positive: Any, num_ground_truth: int
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, ranked by score (highest first, stable).

    precision_i = TP_i / (TP_i + FP_i) and recall_i = TP_i / num_ground_truth, with TP_i, FP_i
    the counts among the i highest-scored detections.

    Args:
        scores: [N] confidences.
        is_true_positive: [N] bool (or 1/0 labels as :func:`match_detections_voc` returns; entries
            of -1, dropped detections, are removed).
        num_ground_truth: number of (non-difficult) ground-truth objects, > 0.

    Returns:
        (precision [N'], recall [N']) over the N' kept detections.
    """
    scores = _to_numpy(scores, "scores", np.float64).reshape(-1)
    labels = _to_numpy(is_true_positive, "is_true_positive").reshape(-1).astype(np.int64)
    if len(labels) != len(scores):
        raise ValueError(f"is_true_positive has {len(labels)} entries for {len(scores)} scores")
    if num_ground_truth <= 0:
        raise ValueError(f"num_ground_truth must be positive, got {num_ground_truth}")
    keep = labels >= 0
    scores, labels = scores[keep], labels[keep]
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[order] == 1)
    fp = np.cumsum(labels[order] == 0)
    return tp / (tp + fp), tp / num_ground_truth


def average_precision(recall: Any, precision: Any, *, method: str = "all_point") -> float:
    """Area under a precision/recall curve, VOC-style.

    Args:
        recall: [N] non-decreasing recall values.
        precision: [N] precision at the same points.
        method: ``"all_point"`` (VOC 2010+: area under the monotone envelope) or ``"11_point"``
            (VOC 2007: mean of the best precision at recall >= 0, 0.1, ..., 1).

    Returns:
        AP in [0, 1]; 0 for an empty curve.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    rec = _to_numpy(recall, "recall", np.float64).reshape(-1)
    prec = _to_numpy(precision, "precision", np.float64).reshape(-1)
    if rec.shape != prec.shape:
        raise ValueError(f"recall {rec.shape} and precision {prec.shape} must have equal length")
    if rec.size and np.any(np.diff(rec) < 0):
        raise ValueError("recall must be non-decreasing (points ordered by falling score)")
    if method == "11_point":
        ap = 0.0
        for k in range(11):
            # The exact tenths: a recall of 3/10 reaches t = 0.3, although 3/10 < 3 * 0.1 in
            # floating point (ports that build t with np.arange miss it).
            above = prec[rec >= k / 10 - 1e-12]
            ap += (above.max() if above.size else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # p_interp(r) = max_{r' >= r} p(r')
    changes = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[changes] - mrec[changes - 1]) * mpre[changes]))


@dataclass(frozen=True)
class VocEvaluation:
    """Per-class VOC results.

    Attributes:
        ap: AP per class; NaN for a class with no non-difficult ground truth.
        precision: per class, precision after each kept detection (ranked by score).
        recall: per class, recall after each kept detection.
        num_ground_truth: non-difficult ground-truth objects per class.
    """

    ap: dict[int, float]
    precision: dict[int, np.ndarray]
    recall: dict[int, np.ndarray]
    num_ground_truth: dict[int, int]

    @property
    def mean_ap(self) -> float:
        """mAP: the mean AP over the classes that have ground truth (NaN if none)."""
        values = [v for v in self.ap.values() if not np.isnan(v)]
        return float(np.mean(values)) if values else float("nan")


def _field(obj: Any, key: str, where: str, required: bool = True) -> Any:
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
    elif hasattr(obj, key):
        return getattr(obj, key)
    if required:
        raise ValueError(f"{where} has no {key!r}")
    return None


def voc_evaluate(
    ground_truth: Sequence[Any],
    detections: Sequence[Any],
    *,
    iou_threshold: float = 0.5,
    method: str = "all_point",
    plus_one: bool = False,
) -> VocEvaluation:
    """PASCAL VOC detection evaluation: per-class precision/recall curves and AP.

    Args:
        ground_truth: per image, a mapping (or object) with ``boxes`` [G, 4] (x1, y1, x2, y2),
            ``labels`` [G] and optionally ``difficult`` [G] bool. numpy arrays, lists or tensors.
        detections: per image (same order and length), ``boxes`` [D, 4], ``scores`` [D] and
            ``labels`` [D].
        iou_threshold: the devkit's ``minoverlap`` (a match needs IoU >= it).
        method: ``"all_point"`` (VOC 2010+) or ``"11_point"`` (VOC 2007).
        plus_one: the devkit's inclusive-pixel box convention.

    Returns:
        A :class:`VocEvaluation` over every class seen in the ground truth or the detections.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if len(ground_truth) != len(detections):
        raise ValueError(
            f"ground_truth has {len(ground_truth)} images but detections has {len(detections)}"
        )
    per_class: dict[int, tuple[list, list]] = {}  # class -> (scores, labels)
    npos: dict[int, int] = {}
    for i, (gt, det) in enumerate(zip(ground_truth, detections)):
        g_boxes = _boxes_xyxy(_field(gt, "boxes", f"ground_truth[{i}]"), f"ground_truth[{i}]")
        g_labels = _to_numpy(_field(gt, "labels", f"ground_truth[{i}]"), "labels", np.int64)
        diff = _field(gt, "difficult", f"ground_truth[{i}]", required=False)
        g_diff = (
            np.zeros(len(g_boxes), bool) if diff is None else _to_numpy(diff, "difficult", bool)
        )
        d_boxes = _boxes_xyxy(_field(det, "boxes", f"detections[{i}]"), f"detections[{i}]")
        d_scores = _to_numpy(_field(det, "scores", f"detections[{i}]"), "scores", np.float64)
        d_labels = _to_numpy(_field(det, "labels", f"detections[{i}]"), "labels", np.int64)
        if not (len(g_boxes) == len(g_labels.reshape(-1)) == len(g_diff.reshape(-1))):
            raise ValueError(f"ground_truth[{i}]: boxes, labels and difficult differ in length")
        if not (len(d_boxes) == len(d_scores.reshape(-1)) == len(d_labels.reshape(-1))):
            raise ValueError(f"detections[{i}]: boxes, scores and labels differ in length")
        g_labels, g_diff = g_labels.reshape(-1), g_diff.reshape(-1)
        d_scores, d_labels = d_scores.reshape(-1), d_labels.reshape(-1)
        for c in np.union1d(g_labels, d_labels).tolist():
            g_sel, d_sel = g_labels == c, d_labels == c
            npos[c] = npos.get(c, 0) + int(np.sum(g_sel & ~g_diff))
            labels = match_detections_voc(
                d_boxes[d_sel],
                d_scores[d_sel],
                g_boxes[g_sel],
                gt_difficult=g_diff[g_sel],
                iou_threshold=iou_threshold,
                plus_one=plus_one,
            )
            scores_c, labels_c = per_class.setdefault(c, ([], []))
            scores_c.append(d_scores[d_sel])
            labels_c.append(labels)
    ap, precision, recall = {}, {}, {}
    for c in sorted(per_class):
        scores = np.concatenate(per_class[c][0])
        labels = np.concatenate(per_class[c][1])
        if npos[c] == 0:
            ap[c], precision[c], recall[c] = float("nan"), np.zeros(0), np.zeros(0)
            continue
        precision[c], recall[c] = precision_recall_curve(scores, labels, npos[c])
        ap[c] = average_precision(recall[c], precision[c], method=method)
    return VocEvaluation(ap=ap, precision=precision, recall=recall, num_ground_truth=npos)
