"""Panoptic quality: PQ = SQ x RQ, per class, overall, for things and for stuff.

Paper: Kirillov, He, Girshick, Rother & Dollar, "Panoptic Segmentation", CVPR 2019,
arXiv:1801.00868, Section 4. Per class, a predicted and a ground-truth segment match when their
IoU is strictly greater than 0.5 (which makes matches unique), and

    PQ = sum_{(p, g) in TP} IoU(p, g) / (|TP| + |FP|/2 + |FN|/2)
       = [sum_TP IoU / |TP|] x [|TP| / (|TP| + |FP|/2 + |FN|/2)] = SQ x RQ.

Void and crowd regions, as the paper and the COCO panoptic API (panopticapi's pq_compute) treat
them:

* Pixels whose ground-truth id is the void id (0) are removed from the predictions: they count in
  neither the intersection nor the union (union = |p| + |g| - |p & g| - |p & void|).
* Ground-truth segments with ``iscrowd`` are never matched and never false negatives. A predicted
  segment left unmatched is not a false positive when more than half of its pixels lie on void or
  on a crowd region of its own category.
* The dataset's PQ, SQ and RQ (overall, things, stuff) are the means of the per-class numbers over
  the classes that occur (|TP| + |FP| + |FN| > 0), as panopticapi reports them; the means are
  therefore not themselves SQ x RQ.

Departures from panopticapi: a class that never occurs has NaN per-class numbers (panopticapi
writes 0; both leave it out of the means); a crowd test sums over every crowd region of the
category in the image (panopticapi keeps only the last one it meets, the same when there is at
most one per category, as in COCO); an id in a map without a segment entry raises an error
instead of being skipped for the ground truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "PQStat",
    "PanopticImage",
    "PanopticQuality",
    "PanopticResult",
    "panoptic_quality",
]


@dataclass(frozen=True)
class PanopticImage:
    """One image in panoptic format.

    Attributes:
        id_map: [H, W] integer segment id per pixel; ``void_id`` (0) marks void pixels.
        segments: one mapping per segment: ``id``, ``category_id`` and (ground truth) ``iscrowd``.
    """

    id_map: Any
    segments: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class PQStat:
    """PQ, SQ and RQ with the counts behind them.

    For one class: ``tp``, ``fp``, ``fn`` and ``iou_sum`` (sum of the IoUs of its matches), and
    ``n`` = 1 if the class occurs. For a group of classes: the means over the ``n`` classes that
    occur; the counts are summed over the group.
    """

    pq: float
    sq: float
    rq: float
    tp: int
    fp: int
    fn: int
    iou_sum: float
    n: int


@dataclass(frozen=True)
class PanopticResult:
    """Overall, things, stuff and per-class panoptic quality."""

    all: PQStat
    things: PQStat
    stuff: PQStat
    per_class: dict[int, PQStat]


@dataclass
class _Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    iou: float = 0.0


def _categories(categories: Mapping[int, bool] | Sequence[Mapping[str, Any]]) -> dict[int, bool]:
    if isinstance(categories, Mapping):
        return {int(k): bool(v) for k, v in categories.items()}
    try:
        return {int(c["id"]): bool(c["isthing"]) for c in categories}
    except (KeyError, TypeError) as e:
        raise ValueError(
            "categories must map category id -> is-thing flag, or be a list of "
            "{'id', 'isthing'} dicts"
        ) from e


def _image(x: Any, name: str) -> tuple[np.ndarray, dict[int, tuple[int, bool]]]:
    if isinstance(x, PanopticImage):
        id_map, segments = x.id_map, x.segments
    elif isinstance(x, tuple) and len(x) == 2:
        id_map, segments = x
    else:
        raise TypeError(f"{name} must be a PanopticImage or an (id_map, segments) pair")
    if isinstance(id_map, torch.Tensor):
        id_map = id_map.detach().cpu().numpy()
    id_map = np.asarray(id_map)
    if id_map.ndim != 2 or not np.issubdtype(id_map.dtype, np.integer):
        raise ValueError(
            f"{name}.id_map must be an integer [H, W] map, got {id_map.dtype} {id_map.shape}"
        )
    if id_map.size and id_map.min() < 0:
        raise ValueError(f"{name}.id_map holds negative ids")
    info = {}
    for s in segments:
        try:
            sid = int(s["id"])
            info[sid] = (int(s["category_id"]), bool(s.get("iscrowd", 0)))
        except (KeyError, TypeError) as e:
            raise ValueError(f"{name}: every segment needs 'id' and 'category_id'") from e
    return id_map.astype(np.int64), info


class PanopticQuality:
    """Accumulates panoptic matches image by image.

    Args:
        categories: category id -> True for a thing, False for stuff; or COCO-style category
            dicts with ``id`` and ``isthing``. Every category of a segment must be listed.
        void_id: the id of void pixels in the maps (0 in the COCO panoptic format).
    """

    def __init__(
        self, categories: Mapping[int, bool] | Sequence[Mapping[str, Any]], *, void_id: int = 0
    ) -> None:
        self.categories = _categories(categories)
        self.void_id = void_id
        self._counts: dict[int, _Counts] = {c: _Counts() for c in self.categories}

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._counts = {c: _Counts() for c in self.categories}

    def update(
        self, prediction: PanopticImage | tuple, ground_truth: PanopticImage | tuple
    ) -> None:
        """Match one image's predicted segments to its ground-truth segments."""
        pred_map, pred_info = _image(prediction, "prediction")
        gt_map, gt_info = _image(ground_truth, "ground_truth")
        if pred_map.shape != gt_map.shape:
            raise ValueError(
                f"prediction id_map {pred_map.shape} and ground_truth id_map {gt_map.shape} "
                "differ in shape"
            )
        void = self.void_id
        for name, info in (("prediction", pred_info), ("ground_truth", gt_info)):
            for sid, (cat, _) in info.items():
                if cat not in self.categories:
                    raise ValueError(f"{name}: segment {sid} has unknown category_id {cat}")
        pred_ids, pred_area = np.unique(pred_map, return_counts=True)
        gt_ids, gt_area = np.unique(gt_map, return_counts=True)
        pred_area_of = dict(zip(pred_ids.tolist(), pred_area.tolist()))
        gt_area_of = dict(zip(gt_ids.tolist(), gt_area.tolist()))
        for name, ids, info in (
            ("prediction", pred_ids, pred_info),
            ("ground_truth", gt_ids, gt_info),
        ):
            unknown = [i for i in ids.tolist() if i != void and i not in info]
            if unknown:
                raise ValueError(f"{name}: ids {unknown[:5]} appear in id_map but not in segments")
        missing = [s for s in pred_info if s not in pred_area_of]
        if missing:
            raise ValueError(f"prediction: segments {missing[:5]} have no pixel in id_map")

        # Intersections |g & p| of every (gt id, pred id) pair that overlaps.
        offset = int(pred_map.max()) + 1 if pred_map.size else 1
        pair_ids, inter = np.unique(gt_map * offset + pred_map, return_counts=True)
        overlaps = {
            (int(k // offset), int(k % offset)): int(v)
            for k, v in zip(pair_ids.tolist(), inter.tolist())
        }

        gt_matched, pred_matched = set(), set()
        for (g, p), i in overlaps.items():
            if g not in gt_info or p not in pred_info:
                continue
            g_cat, g_crowd = gt_info[g]
            if g_crowd or g_cat != pred_info[p][0]:
                continue
            union = pred_area_of[p] + gt_area_of[g] - i - overlaps.get((void, p), 0)
            iou = i / union
            if iou > 0.5:
                c = self._counts[g_cat]
                c.tp += 1
                c.iou += iou
                gt_matched.add(g)
                pred_matched.add(p)

        crowd_of_cat: dict[int, list[int]] = {}
        for g, (cat, crowd) in gt_info.items():
            if crowd:
                crowd_of_cat.setdefault(cat, []).append(g)
            elif g not in gt_matched:
                self._counts[cat].fn += 1
        for p, (cat, _) in pred_info.items():
            if p in pred_matched:
                continue
            covered = overlaps.get((void, p), 0)
            covered += sum(overlaps.get((g, p), 0) for g in crowd_of_cat.get(cat, []))
            if covered / pred_area_of[p] > 0.5:
                continue  # mostly void or crowd of its class: not a false positive
            self._counts[cat].fp += 1

    def merge(self, other: PanopticQuality) -> None:
        """Add ``other``'s counts (another rank's, or another shard of the images) to ours:
        afterwards :meth:`compute` covers both sets of images."""
        if other.categories != self.categories or other.void_id != self.void_id:
            raise ValueError("merge needs a PanopticQuality over the same categories and void "
                             f"id, got {sorted(other.categories)} (void {other.void_id}) vs "
                             f"{sorted(self.categories)} (void {self.void_id})")
        for cat, k in other._counts.items():
            mine = self._counts[cat]
            mine.tp, mine.fp, mine.fn = mine.tp + k.tp, mine.fp + k.fp, mine.fn + k.fn
            mine.iou += k.iou

    def compute(self) -> PanopticResult:
        """PQ/SQ/RQ per class and averaged over all, thing and stuff classes."""
        per_class = {c: _class_stat(k) for c, k in self._counts.items()}

        def group(isthing: bool | None) -> PQStat:
            members = [c for c, t in self.categories.items() if isthing is None or t == isthing]
            occurring = [per_class[c] for c in members if per_class[c].n]
            n = len(occurring)

            def mean(values: list[float]) -> float:
                return float(sum(values) / n) if n else float("nan")

            return PQStat(
                pq=mean([s.pq for s in occurring]),
                sq=mean([s.sq for s in occurring]),
                rq=mean([s.rq for s in occurring]),
                tp=sum(per_class[c].tp for c in members),
                fp=sum(per_class[c].fp for c in members),
                fn=sum(per_class[c].fn for c in members),
                iou_sum=float(sum(per_class[c].iou_sum for c in members)),
                n=n,
            )

        return PanopticResult(
            all=group(None), things=group(True), stuff=group(False), per_class=per_class
        )


def _class_stat(k: _Counts) -> PQStat:
    denom = k.tp + 0.5 * k.fp + 0.5 * k.fn
    if denom == 0:
        nan = math.nan
        return PQStat(pq=nan, sq=nan, rq=nan, tp=0, fp=0, fn=0, iou_sum=0.0, n=0)
    sq = k.iou / k.tp if k.tp else 0.0
    rq = k.tp / denom
    return PQStat(pq=k.iou / denom, sq=sq, rq=rq, tp=k.tp, fp=k.fp, fn=k.fn, iou_sum=k.iou, n=1)


def panoptic_quality(
    predictions: PanopticImage | tuple | Sequence[PanopticImage | tuple],
    ground_truth: PanopticImage | tuple | Sequence[PanopticImage | tuple],
    categories: Mapping[int, bool] | Sequence[Mapping[str, Any]],
    *,
    void_id: int = 0,
) -> PanopticResult:
    """Panoptic quality of a set of images (Kirillov et al. 2019).

    Args:
        predictions: one :class:`PanopticImage` (or ``(id_map, segments)`` pair) per image, or a
            single one.
        ground_truth: the same for the ground truth; segments may carry ``iscrowd``.
        categories: category id -> is-thing flag, or COCO category dicts (``id``, ``isthing``).
        void_id: id of void pixels in the maps.

    Returns:
        A :class:`PanopticResult` with ``all``, ``things``, ``stuff`` and ``per_class``.
    """

    def as_list(x: Any) -> list:
        single = isinstance(x, PanopticImage) or (
            isinstance(x, tuple)
            and len(x) == 2
            and not isinstance(x[1], (PanopticImage, tuple))
            and hasattr(x[0], "shape")
        )
        return [x] if single else list(x)

    preds, gts = as_list(predictions), as_list(ground_truth)
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth images")
    metric = PanopticQuality(categories, void_id=void_id)
    for p, g in zip(preds, gts):
        metric.update(p, g)
    return metric.compute()
