"""Merging raw detections and scoring them against ground truth.

Paper: "Robust Real-Time Face Detection", Viola & Jones, IJCV 2004, section 5.6 ("Integration
of multiple detections"): overlapping detections are partitioned into disjoint subsets and each
subset becomes one detection whose corners are the averages of its members'.

:func:`group_rectangles` is that partition as OpenCV's ``cv::groupRectangles`` implements it
(the departure that makes it reproduce ``detectMultiScale``): two boxes are "overlapping" when
all four edges differ by at most ``eps * (min width + min height) / 2``; the subsets are the
transitive closure of that relation; a subset survives only with more than ``min_neighbors``
members; and a surviving box that lies inside a stronger one (within ``eps`` of its size) is
dropped. :func:`greedy_nms` is the usual greedy non-maximum suppression by IoU, offered on top.
Boxes are ``(x, y, w, h)`` throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DetectionMatch", "box_iou", "greedy_nms", "group_rectangles", "match_detections"]


def _as_boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(boxes)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be [N, 4] boxes (x, y, w, h), got shape {arr.shape}")
    return arr


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a [N, 4]`` and ``b [M, 4]`` in ``(x, y, w, h)``: ``[N, M]``."""
    a = _as_boxes(a, "a").astype(np.float64)
    b = _as_boxes(b, "b").astype(np.float64)
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(
        np.minimum(ax1[:, None], bx1[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    ih = np.clip(
        np.minimum(ay1[:, None], by1[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None
    )
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _components(adj: np.ndarray) -> np.ndarray:
    """Connected-component labels of a symmetric boolean adjacency, numbered in order of each
    component's first member (as ``cv::partition`` numbers its classes)."""
    n = len(adj)
    root = np.arange(n)
    while True:  # every node takes the smallest index among its neighbours' labels
        new = np.where(adj, root[None, :], n).min(axis=1)
        new = np.minimum(new, root)
        new = new[new]  # pointer jumping
        if np.array_equal(new, root):
            break
        root = new
    _, labels = np.unique(root, return_inverse=True)  # roots ascending = first members
    return labels


def group_rectangles(
    rects: np.ndarray, min_neighbors: int, eps: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster raw detections, as ``cv2.groupRectangles`` (and ``detectMultiScale``) do.

    Args:
        rects: int ``[N, 4]`` raw boxes ``(x, y, w, h)``.
        min_neighbors: a cluster needs more than this many members; ``<= 0`` returns the
            input unchanged (each with one neighbour).
        eps: relative edge tolerance for two boxes to be in the same cluster.

    Returns:
        ``(boxes int32 [K, 4], neighbors int64 [K])``: averaged boxes and their cluster sizes.
    """
    rects = _as_boxes(rects, "rects").astype(np.int64)
    n = len(rects)
    if min_neighbors <= 0 or n == 0:
        return rects.astype(np.int32), np.ones(n, np.int64)
    x, y, w, h = rects.T
    delta = eps * (np.minimum(w[:, None], w[None]) + np.minimum(h[:, None], h[None])) * 0.5
    similar = (
        (np.abs(x[:, None] - x[None]) <= delta)
        & (np.abs(y[:, None] - y[None]) <= delta)
        & (np.abs((x + w)[:, None] - (x + w)[None]) <= delta)
        & (np.abs((y + h)[:, None] - (y + h)[None]) <= delta)
    )
    labels = _components(similar)
    k = int(labels.max()) + 1
    sums = np.zeros((k, 4), np.int64)
    np.add.at(sums, labels, rects)
    counts = np.bincount(labels, minlength=k)
    # OpenCV: saturate_cast<int>(sum * (1.f / n)), float32 product rounded half-to-even
    inv = (np.float32(1) / counts.astype(np.float32)).astype(np.float32)
    avg = np.rint(sums.astype(np.float32) * inv[:, None]).astype(np.int64)

    keep_boxes, keep_n = [], []
    strong = counts > min_neighbors
    for i in range(k):
        if not strong[i]:
            continue
        r1, n1 = avg[i], counts[i]
        inside = False
        for j in range(k):
            if j == i or not strong[j]:
                continue
            r2, n2 = avg[j], counts[j]
            dx = int(np.rint(r2[2] * eps))
            dy = int(np.rint(r2[3] * eps))
            if (
                r1[0] >= r2[0] - dx
                and r1[1] >= r2[1] - dy
                and r1[0] + r1[2] <= r2[0] + r2[2] + dx
                and r1[1] + r1[3] <= r2[1] + r2[3] + dy
                and (n2 > max(3, n1) or n1 < 3)
            ):
                inside = True
                break
        if not inside:
            keep_boxes.append(r1)
            keep_n.append(n1)
    if not keep_boxes:
        return np.zeros((0, 4), np.int32), np.zeros(0, np.int64)
    return np.array(keep_boxes, np.int32), np.array(keep_n, np.int64)


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept indices, best score first.

    Args:
        boxes: ``[N, 4]`` in ``(x, y, w, h)``.
        scores: ``[N]``; ties keep the earlier box.
        iou_threshold: a box is dropped when its IoU with a kept box exceeds this.
    """
    boxes = _as_boxes(boxes, "boxes")
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"scores has {len(scores)} entries for {len(boxes)} boxes")
    order = np.argsort(-scores, kind="stable")
    iou = box_iou(boxes, boxes)
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return np.array(keep, np.int64)


@dataclass
class DetectionMatch:
    """Detections scored against ground truth.

    Attributes:
        tp: detections matched to a ground-truth box (IoU >= threshold, one-to-one).
        fp: detections left unmatched.
        fn: ground-truth boxes left unmatched.
        matches: ``[(detection index, ground-truth index, iou), ...]``.
    """

    tp: int
    fp: int
    fn: int
    matches: list[tuple[int, int, float]]

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)


def match_detections(
    detections: np.ndarray, ground_truth: np.ndarray, iou_threshold: float = 0.5
) -> DetectionMatch:
    """Label detections true/false positives by IoU (greedy, highest IoU pairs first).

    Args:
        detections: ``[N, 4]`` boxes ``(x, y, w, h)``.
        ground_truth: ``[M, 4]`` boxes.
        iou_threshold: minimum IoU for a match (PASCAL's 0.5 by default).
    """
    det = _as_boxes(detections, "detections")
    gt = _as_boxes(ground_truth, "ground_truth")
    iou = box_iou(det, gt)
    matches = []
    used_d, used_g = set(), set()
    if iou.size:
        pairs = np.argwhere(iou >= iou_threshold)
        order = np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")
        for d, g in pairs[order]:
            if d in used_d or g in used_g:
                continue
            used_d.add(int(d))
            used_g.add(int(g))
            matches.append((int(d), int(g), float(iou[d, g])))
    tp = len(matches)
    return DetectionMatch(tp, len(det) - tp, len(gt) - tp, matches)
