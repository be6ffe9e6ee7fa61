"""COCO detection evaluation: AP@[.5:.95], AP50, AP75, AP S/M/L and AR@1/10/100, AR S/M/L.

Paper: Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014, arXiv:1405.0312. The
protocol (cocodataset.org/#detection-eval) is defined by its reference implementation, the
``COCOeval`` class of pycocotools (Dollar & Lin, 2015); this module reproduces that
implementation's numbers for ``iouType='bbox'`` (and ``'segm'`` when the mask module is present),
with every per-image loop replaced by array operations over all images and categories at once.

What is reproduced, exactly as pycocotools does it:

* Images and categories are those listed in the ground truth (sorted ids); ground-truth
  annotations of unlisted images or categories are dropped, detections of unlisted categories are
  dropped, and detections on unlisted images are refused (pycocotools asserts).
* Detections of one (image, category) are sorted by score, highest first, ties kept in input
  order (a stable sort), and only the first ``max_dets[-1] = 100`` are evaluated.
* A ground-truth box is ignored when it is a crowd (``iscrowd``) or its ``area`` field lies
  outside the area range (both ends inclusive). pycocotools overwrites any ``ignore`` field with
  ``iscrowd``, so an ``ignore`` field has no effect here either.
* Box IoU in continuous coordinates (no +1): intersection / union, and intersection / detection
  area for a crowd region. A detection's area is its box ``w * h``.
* Greedy matching per IoU threshold, detections in score order: each takes the still-free
  non-ignored ground truth of highest IoU >= threshold (ties go to the later one), and only when
  none qualifies an ignored one; crowd regions can be taken any number of times. A detection
  matched to an ignored ground truth is ignored, and so is an unmatched detection whose area lies
  outside the area range.
* Precision at the 101 recall thresholds ``linspace(0, 1, 101)`` from the monotone envelope of
  the precision/recall curve (detections of all images of a category pooled and stably sorted by
  score), located with a left-sided search; -1 where a category has no non-ignored ground truth.
* Each summary number is the mean of the entries > -1 (or -1 when there are none).

* For ``'segm'``: mask IoU on COCO RLEs (``modernvision.metrics.masks``; polygons rasterised as
  pycocotools does, crowd IoU = intersection / detection area). A detection's area is its box's
  when the first result carries a ``bbox`` (pycocotools' loadRes then takes its box branch), its
  mask's otherwise.

Two quirks are kept deliberately for identical numbers: pycocotools records a match by the ground
truth's ``id``, so a match to a ground truth whose ``id`` is 0 is counted as unmatched; and only
the first detection decides how the detections' areas are computed (above).

Departures, all where pycocotools would fail: an empty detection list evaluates (to 0 wherever
there is ground truth) instead of raising; a ground truth without ``area`` uses its box area,
without ``iscrowd`` is not a crowd, without ``id`` counts as a nonzero id.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modernvision._errors import BadFileError, InvalidArgumentError, UserError
from modernvision.data import masks as rle
from modernvision.data.io import read_json

__all__ = [
    "COCO_STAT_NAMES",
    "CocoEvaluation",
    "coco_evaluate",
    "coco_evaluation",
]

COCO_STAT_NAMES: tuple[str, ...] = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)

# The parameters of pycocotools' Params.setDetParams, built with the same expressions so that the
# thresholds are the same floating-point numbers.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RANGES = ((0**2, 1e5**2), (0**2, 32**2), (32**2, 96**2), (96**2, 1e5**2))
AREA_LABELS = ("all", "small", "medium", "large")


@dataclass(frozen=True)
class CocoEvaluation:
    """Everything COCOeval.accumulate() computes, plus the 12 summary numbers.

    Attributes:
        stats: the 12 numbers by name (``COCO_STAT_NAMES``), as ``COCOeval.stats``.
        precision: array [T, R, K, A, M] of interpolated precision per IoU threshold, recall
            threshold, category, area range and max-detections setting; -1 where a category has
            no non-ignored ground truth.
        recall: array [T, K, A, M] of the final recall, -1 as above.
        category_ids: the K category ids, sorted.
        iou_thresholds: the T = 10 IoU thresholds 0.50:0.05:0.95.
        recall_thresholds: the R = 101 recall thresholds 0:0.01:1.
        area_ranges: the A = 4 area ranges (all, small, medium, large).
        max_dets: the M = 3 max-detections settings (1, 10, 100).
    """

    stats: dict[str, float]
    precision: np.ndarray
    recall: np.ndarray
    category_ids: np.ndarray
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    area_ranges: tuple[tuple[float, float], ...]
    max_dets: tuple[int, ...]

    def per_category_ap(self, *, iou_threshold: float | None = None) -> dict[Any, float]:
        """AP of each category (area 'all', 100 detections), -1 for one without ground truth.

        Args:
            iou_threshold: one of ``iou_thresholds`` (e.g. 0.5), or None for the mean over all ten.
        """
        p = self.precision[:, :, :, 0, -1]  # (T, R, K)
        if iou_threshold is not None:
            t = np.flatnonzero(np.isclose(self.iou_thresholds, iou_threshold))
            if t.size == 0:
                raise InvalidArgumentError(
                    f"iou_threshold must be one of {self.iou_thresholds.round(2).tolist()}, "
                    f"got {iou_threshold}"
                )
            p = p[t]
        out = {}
        for k, cat in enumerate(self.category_ids.tolist()):
            s = p[:, :, k]
            out[cat] = float(np.mean(s[s > -1])) if np.any(s > -1) else -1.0
        return out


def coco_evaluate(
    ground_truth: Mapping[str, Any] | str | os.PathLike,
    detections: Sequence[Mapping[str, Any]] | str | os.PathLike,
    *,
    iou_type: str = "bbox",
) -> dict[str, float]:
    """The 12 COCO numbers, identical to pycocotools' ``COCOeval(...).stats``.

    Args:
        ground_truth: a COCO ground-truth dict (``images``, ``annotations``, ``categories``) or
            the path of its JSON file.
        detections: a list of result dicts ``{"image_id", "category_id", "bbox": [x, y, w, h],
            "score"}`` (``"segmentation"``: an RLE instead of the box for ``iou_type='segm'``) or
            the path of their JSON file. An empty list gives 0 for every number whose area range
            has ground truth (pycocotools crashes on it).
        iou_type: ``'bbox'`` or ``'segm'``.

    Returns:
        ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
        "ARl"}``; a number is -1 when no ground truth falls in its area range (as pycocotools).
    """
    return coco_evaluation(ground_truth, detections, iou_type=iou_type).stats


def coco_evaluation(
    ground_truth: Mapping[str, Any] | str | os.PathLike,
    detections: Sequence[Mapping[str, Any]] | str | os.PathLike,
    *,
    iou_type: str = "bbox",
) -> CocoEvaluation:
    """Full COCO evaluation: precision/recall arrays, per-category AP and the 12 numbers.

    Takes the same inputs as :func:`coco_evaluate`.
    """
    if iou_type not in ("bbox", "segm"):
        raise InvalidArgumentError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    gt, gt_src = _load_json(ground_truth, "ground_truth")
    dt, dt_src = _load_json(detections, "detections")
    if not isinstance(gt, Mapping):
        what = ("a COCO ground-truth dict with 'images', 'annotations' and 'categories', got "
                f"a JSON {type(gt).__name__}")
        if gt_src.is_file:  # a results file given as the ground truth, typically
            raise BadFileError(f"{gt_src}: expected {what}" + (
                " (is it a detections file?)" if isinstance(gt, list) else ""))
        raise TypeError(
            "ground_truth must be a COCO dict (images, annotations, categories) or a JSON path, "
            f"got {type(gt).__name__}"
        )
    if not isinstance(dt, Sequence) or isinstance(dt, (str, bytes)):
        if dt_src.is_file:
            raise BadFileError(f"{dt_src}: expected a JSON list of result dicts, got a JSON "
                               f"{type(dt).__name__}" + (" (is it a ground-truth file?)"
                                                          if isinstance(dt, Mapping) else ""))
        raise TypeError(
            f"detections must be a list of result dicts or a JSON path, got {type(dt).__name__}"
        )
    missing = [key for key in ("images", "categories") if key not in gt]
    if missing:
        raise gt_src.error(
            f"{gt_src} has no {' and no '.join(repr(k) for k in missing)}: a COCO ground truth "
            "needs 'images' (each with an 'id'), 'annotations' and 'categories'")
    img_ids, cat_ids = _ids(gt, gt_src)
    g = _parse_ground_truth(gt, img_ids, cat_ids, iou_type, gt_src)
    d = _parse_detections(dt, img_ids, cat_ids, iou_type, _image_sizes(gt), dt_src, gt_src)
    precision, recall = _evaluate(g, d, len(cat_ids), iou_type)
    return CocoEvaluation(
        stats=_summarize(precision, recall),
        precision=precision,
        recall=recall,
        category_ids=cat_ids,
        iou_thresholds=IOU_THRESHOLDS.copy(),
        recall_thresholds=RECALL_THRESHOLDS.copy(),
        area_ranges=AREA_RANGES,
        max_dets=MAX_DETS,
    )


# ----------------------------------------------------------------------------- input parsing


@dataclass(frozen=True)
class _Source:
    """Where an input came from, for error messages: ``ground_truth file x.json`` or the
    argument's name; bad content of a file is a :class:`BadFileError`, of an argument an
    :class:`InvalidArgumentError`."""

    name: str
    is_file: bool = False

    def __str__(self) -> str:
        return self.name

    def error(self, message: str) -> UserError:
        return BadFileError(message) if self.is_file else InvalidArgumentError(message)


def _load_json(obj: Any, name: str) -> tuple[Any, _Source]:
    if not isinstance(obj, (str, os.PathLike)):
        return obj, _Source(name)
    return read_json(obj, what=f"{name} file"), _Source(f"{name} file {obj}", is_file=True)


def _ids(gt: Mapping[str, Any], src: _Source) -> tuple[np.ndarray, np.ndarray]:
    try:
        img_ids = [im["id"] for im in gt["images"]]
        cat_ids = [c["id"] for c in gt["categories"]]
    except (KeyError, TypeError) as e:
        raise src.error(f"{src}: every entry of 'images' and 'categories' needs an 'id'") from e
    # np.unique sorts, as pycocotools does with its image and category ids.
    return np.unique(np.asarray(img_ids)), np.unique(np.asarray(cat_ids))


def _index(ids: np.ndarray) -> dict[Any, int]:
    return {v: i for i, v in enumerate(ids.tolist())}


def _boxes(rows: list, name: str, src: _Source) -> np.ndarray:
    if not rows:
        return np.zeros((0, 4))
    try:
        boxes = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    except (ValueError, TypeError) as e:
        raise src.error(f"{name}: every 'bbox' must be 4 numbers [x, y, w, h]") from e
    if boxes.shape[1] != 4:
        raise src.error(f"{name}: every 'bbox' must be 4 numbers [x, y, w, h]")
    return boxes


@dataclass
class _Objects:
    """Flat arrays over the kept annotations (or detections), in input order."""

    img: np.ndarray  # image index into the sorted image ids
    cat: np.ndarray  # category index into the sorted category ids
    boxes: np.ndarray  # (N, 4) x, y, w, h
    area: np.ndarray
    crowd: np.ndarray  # bool; all False for detections
    nonzero_id: np.ndarray  # bool; id != 0 (see the module docstring)
    score: np.ndarray  # detections only
    masks: list | None  # RLEs for iou_type='segm'


def _parse_ground_truth(
    gt: Mapping[str, Any], img_ids: np.ndarray, cat_ids: np.ndarray, iou_type: str,
    src: _Source,
) -> _Objects:
    img_index, cat_index = _index(img_ids), _index(cat_ids)
    anns = gt.get("annotations", [])
    try:
        keep = [a for a in anns if a["image_id"] in img_index and a["category_id"] in cat_index]
        boxes = _boxes([a["bbox"] for a in keep], f"{src} annotations", src)
        # pycocotools requires 'area'; fall back to the box area when it is missing.
        area = np.array(
            [a["area"] if "area" in a else a["bbox"][2] * a["bbox"][3] for a in keep],
            dtype=np.float64,
        )
        obj = _Objects(
            img=np.array([img_index[a["image_id"]] for a in keep], dtype=np.int64),
            cat=np.array([cat_index[a["category_id"]] for a in keep], dtype=np.int64),
            boxes=boxes,
            area=area,
            crowd=np.array([bool(a.get("iscrowd", 0)) for a in keep], dtype=bool),
            nonzero_id=np.array([a.get("id", -1) != 0 for a in keep], dtype=bool),
            score=np.zeros(len(keep)),
            masks=None,
        )
    except (KeyError, TypeError) as e:
        raise src.error(
            f"{src}: every annotation needs 'image_id', 'category_id' and 'bbox'; "
            f"missing {e}"
        ) from e
    if iou_type == "segm":
        sizes = _image_sizes(gt)
        try:
            obj.masks = [_to_rle(a["segmentation"], a["image_id"], sizes) for a in keep]
        except KeyError as e:
            raise src.error(
                f"{src}: iou_type='segm' needs a 'segmentation' on every annotation"
            ) from e
    return obj


def _parse_detections(
    dets: Sequence[Mapping[str, Any]],
    img_ids: np.ndarray,
    cat_ids: np.ndarray,
    iou_type: str,
    sizes: Mapping[Any, tuple[int, int]],
    src: _Source,
    gt_src: _Source,
) -> _Objects:
    img_index, cat_index = _index(img_ids), _index(cat_ids)
    try:
        unknown = {d["image_id"] for d in dets if d["image_id"] not in img_index}
        if unknown:
            shown = sorted(unknown, key=str)[:5]
            raise src.error(
                f"{src} refer to {len(unknown)} image id(s) absent from the ground truth's "
                f"'images' ({gt_src}: {len(img_index)} images), e.g. {shown}"
            )
        keep = [d for d in dets if d["category_id"] in cat_index]
        score = np.array([d["score"] for d in keep], dtype=np.float64)
        # pycocotools' loadRes takes a detection's area from its box whenever the first result
        # has a box (even for 'segm'), and from the mask otherwise.
        box_area = iou_type == "bbox" or (len(dets) > 0 and list(dets[0].get("bbox", [])) != [])
        boxes = _boxes([d["bbox"] for d in keep], str(src), src) if box_area else None
        masks = None
        if iou_type == "segm":
            masks = [_to_rle(d["segmentation"], d["image_id"], sizes) for d in keep]
        if boxes is not None:
            area = boxes[:, 2] * boxes[:, 3]
        else:
            area = np.array([rle.rle_area(m) for m in masks], dtype=np.float64)
            boxes = np.zeros((len(keep), 4))
    except KeyError as e:
        need = "'bbox'" if iou_type == "bbox" else "'segmentation'"
        raise src.error(
            f"{src}: every result needs 'image_id', 'category_id', {need} and 'score'; "
            f"missing {e}"
        ) from e
    except (TypeError, AttributeError) as e:
        if src.is_file:
            raise BadFileError(f"{src}: expected a list of result dicts") from e
        raise TypeError("detections must be a list of result dicts") from e
    return _Objects(
        img=np.array([img_index[d["image_id"]] for d in keep], dtype=np.int64),
        cat=np.array([cat_index[d["category_id"]] for d in keep], dtype=np.int64),
        boxes=boxes,
        area=area,
        crowd=np.zeros(len(keep), dtype=bool),
        nonzero_id=np.ones(len(keep), dtype=bool),
        score=score,
        masks=masks,
    )


def _image_sizes(gt: Mapping[str, Any]) -> dict[Any, tuple[int, int]]:
    return {
        im["id"]: (im["height"], im["width"])
        for im in gt.get("images", [])
        if "height" in im and "width" in im
    }


def _to_rle(segmentation: Any, image_id: Any, sizes: Mapping[Any, tuple[int, int]]) -> dict:
    """An annotation's mask as an RLE dict, as pycocotools' annToRLE (polygons are rasterised)."""
    if isinstance(segmentation, Mapping):
        return dict(segmentation)  # compressed or uncompressed RLE
    if image_id not in sizes:
        raise InvalidArgumentError(
            f"image {image_id!r} needs 'height' and 'width' in the ground truth to rasterise "
            "polygon segmentations"
        )
    return rle.polygons_to_rle(segmentation, *sizes[image_id])


# ----------------------------------------------------------------------------- evaluation


def _group_starts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted keys: the start of each run of equal keys, and each element's run index."""
    is_start = np.ones(len(keys), dtype=bool)
    is_start[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(is_start)
    return starts, np.cumsum(is_start) - 1


def _box_iou_pairs(det_boxes: np.ndarray, gt_boxes: np.ndarray, gt_crowd: np.ndarray) -> np.ndarray:
    """IoU of paired xywh boxes with the arithmetic of pycocotools' bbIou (so equal bits)."""
    dx, dy, dw, dh = det_boxes.T
    gx, gy, gw, gh = gt_boxes.T
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    da = dw * dh
    union = np.where(gt_crowd, da, da + gw * gh - inter)
    overlap = (w > 0) & (h > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap, inter / np.where(overlap, union, 1.0), 0.0)


def _mask_iou_pairs(
    pair_det: np.ndarray, pair_gt: np.ndarray, det_rles: list, gt_rles: list, gt_crowd: np.ndarray
) -> np.ndarray:
    """Mask IoU of the pairs; those of one (image, category) form a row-major [D_g, G_g] block."""
    from modernvision.metrics.masks import mask_iou  # torch: only for iou_type='segm'

    out = np.zeros(len(pair_det))
    if len(pair_det) == 0:
        return out
    det_starts, _ = _group_starts(pair_det)
    first_gt = pair_gt[det_starts]
    group_starts, _ = _group_starts(first_gt)  # dets of one group share their gt range
    group_ends = np.append(group_starts[1:], len(det_starts))
    pair_ends = np.append(det_starts[1:], len(pair_det))
    for gs, ge in zip(group_starts.tolist(), group_ends.tolist()):
        dets = pair_det[det_starts[gs:ge]].tolist()
        g0 = int(first_gt[gs])
        n_gt = int(pair_ends[gs] - det_starts[gs])
        gts = list(range(g0, g0 + n_gt))
        ious = mask_iou(
            [det_rles[i] for i in dets], [gt_rles[j] for j in gts], iscrowd=gt_crowd[gts]
        )
        out[det_starts[gs] : pair_ends[ge - 1]] = np.asarray(ious, dtype=np.float64).reshape(-1)
    return out


def _evaluate(
    g: _Objects, d: _Objects, num_cats: int, iou_type: str
) -> tuple[np.ndarray, np.ndarray]:
    T, R, K, A, M = (
        len(IOU_THRESHOLDS),
        len(RECALL_THRESHOLDS),
        num_cats,
        len(AREA_RANGES),
        len(MAX_DETS),
    )
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    lo = np.array([r[0] for r in AREA_RANGES], dtype=np.float64)[:, None]
    hi = np.array([r[1] for r in AREA_RANGES], dtype=np.float64)[:, None]

    # Ground truth grouped by (image, category), input order kept inside a group.
    g_key = g.img * K + g.cat
    g_order = np.argsort(g_key, kind="stable")
    g_key = g_key[g_order]
    g_crowd = g.crowd[g_order]
    g_nonzero_id = g.nonzero_id[g_order]
    g_ignore = g_crowd[None, :] | (g.area[g_order] < lo) | (g.area[g_order] > hi)  # (A, G)
    # Non-ignored ground truth per (category, area range): the recall denominators.
    npig = np.zeros((K, A), dtype=np.int64)
    for a in range(A):
        npig[:, a] = np.bincount(g.cat[g_order][~g_ignore[a]], minlength=K)

    # Detections grouped by (image, category), highest score first, stable on ties; keep 100.
    d_key = d.img * K + d.cat
    d_order = np.lexsort((np.arange(len(d_key)), -d.score, d_key))
    starts, run = _group_starts(d_key[d_order])
    rank = np.arange(len(d_order)) - starts[run] if len(d_order) else np.zeros(0, np.int64)
    keep = rank < MAX_DETS[-1]
    d_order, rank = d_order[keep], rank[keep]
    d_key = d_key[d_order]
    D = len(d_order)

    # Every (detection, ground truth) pair of the same image and category.
    first = np.searchsorted(g_key, d_key, side="left")
    count = np.searchsorted(g_key, d_key, side="right") - first
    pair_det = np.repeat(np.arange(D), count)
    offsets = np.arange(len(pair_det)) - np.repeat(np.cumsum(count) - count, count)
    pair_gt = np.repeat(first, count) + offsets
    if iou_type == "bbox":
        pair_iou = _box_iou_pairs(
            d.boxes[d_order][pair_det], g.boxes[g_order][pair_gt], g_crowd[pair_gt]
        )
    else:
        pair_iou = _mask_iou_pairs(
            pair_det,
            pair_gt,
            [d.masks[i] for i in d_order.tolist()],
            [g.masks[i] for i in g_order.tolist()],
            g_crowd,
        )
    # A pair below the lowest threshold can never match.
    usable = pair_iou >= IOU_THRESHOLDS.min()
    pair_det, pair_gt, pair_iou = pair_det[usable], pair_gt[usable], pair_iou[usable]

    det_gt = _greedy_match(pair_det, pair_gt, pair_iou, rank, g_crowd, g_ignore, D)  # (T, A, D)

    # Per-detection outcome at each (threshold, area range), as COCOeval.evaluateImg.
    matched = det_gt >= 0
    # Unmatched detections point at a padding column, so that no ground truth is also fine.
    safe = np.where(matched, det_gt, len(g_key))
    pad_ignore = np.concatenate([g_ignore, np.zeros((A, 1), dtype=bool)], axis=1)
    matched_ignored = matched & pad_ignore[np.arange(A)[None, :, None], safe]
    recorded = matched & np.append(g_nonzero_id, False)[safe]
    d_area = d.area[d_order]
    d_outside = (d_area < lo) | (d_area > hi)  # (A, D)
    d_ignore = matched_ignored | (~recorded & d_outside[None])
    tp = recorded & ~d_ignore
    fp = ~recorded & ~d_ignore

    # COCOeval.accumulate: per category, detections of all images pooled by score (stable; ties
    # in image order, then in per-image rank).
    d_cat, d_img = d.cat[d_order], d.img[d_order]
    order = np.lexsort((rank, d_img, -d.score[d_order], d_cat))
    cat_bounds = np.searchsorted(d_cat[order], np.arange(K + 1))
    max_dets = np.array(MAX_DETS)[:, None]
    for k in range(K):
        valid = npig[k] > 0  # (A,)
        if not valid.any():
            continue
        seg = order[cat_bounds[k] : cat_bounds[k + 1]]
        prec_k, rec_k = _precision_recall(
            tp[:, :, seg], fp[:, :, seg], rank[seg] < max_dets, npig[k]
        )
        precision[:, :, k][:, :, valid] = prec_k[:, :, valid]
        recall[:, k][:, valid] = rec_k[:, valid]
    return precision, recall


def _greedy_match(
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
    pair_iou: np.ndarray,
    rank: np.ndarray,
    g_crowd: np.ndarray,
    g_ignore: np.ndarray,
    num_dets: int,
) -> np.ndarray:
    """Matched ground-truth index (or -1) of each detection, per (IoU threshold, area range).

    Matching is sequential within an (image, category) in score order, so it runs one detection
    rank at a time; each step handles that rank of every group, every threshold and every area
    range at once.
    """
    T, A, G = len(IOU_THRESHOLDS), g_ignore.shape[0], g_ignore.shape[1]
    taken = np.zeros((T, A, G), dtype=bool)
    det_gt = np.full((T, A, num_dets), -1, dtype=np.int32)
    if len(pair_det) == 0:
        return det_gt
    pair_rank = rank[pair_det]
    by_rank = np.argsort(pair_rank, kind="stable")  # keeps (detection, gt) order inside a rank
    pair_det, pair_gt, pair_iou = pair_det[by_rank], pair_gt[by_rank], pair_iou[by_rank]
    bounds = np.searchsorted(pair_rank[by_rank], np.arange(pair_rank.max() + 2))
    thr = IOU_THRESHOLDS[:, None, None]
    for r in range(len(bounds) - 1):
        s, e = bounds[r], bounds[r + 1]
        if s == e:
            continue
        pdet, pgt, piou = pair_det[s:e], pair_gt[s:e], pair_iou[s:e]
        starts, block = _group_starts(pdet)
        ignored = g_ignore[:, pgt][None]  # (1, A, P)
        free = ~taken[:, :, pgt] | g_crowd[pgt]  # (T, A, P)
        eligible = (piou >= thr) & free
        # A non-ignored candidate always wins over an ignored one (pycocotools stops scanning at
        # the first ignored gt once it holds a non-ignored match; gts are sorted ignored-last).
        any_regular = np.logical_or.reduceat(eligible & ~ignored, starts, axis=2)
        eligible &= ~ignored | ~any_regular[:, :, block]
        best = np.maximum.reduceat(np.where(eligible, piou, -1.0), starts, axis=2)
        eligible &= piou == best[:, :, block]
        # Among equal IoUs the later ground truth wins (the scan replaces on >=).
        chosen = np.maximum.reduceat(np.where(eligible, pgt, -1), starts, axis=2)  # (T, A, B)
        det_gt[:, :, pdet[starts]] = chosen
        t_i, a_i, b_i = np.nonzero(chosen >= 0)
        taken[t_i, a_i, chosen[t_i, a_i, b_i]] = True
    return det_gt


def _precision_recall(
    tp: np.ndarray, fp: np.ndarray, included: np.ndarray, npig: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Precision at the recall thresholds and final recall of one category.

    Args:
        tp, fp: (T, A, N) outcomes of the category's detections in pooled score order.
        included: (M, N) whether a detection is within each max-detections setting.
        npig: (A,) non-ignored ground truth per area range (entries of 0 give garbage that the
            caller discards).

    Returns:
        precision (T, R, A, M) and recall (T, A, M).

    Detections left out (ignored, or beyond max-dets) are kept as entries that add neither a TP
    nor an FP: they repeat the previous (recall, precision) point, which changes neither the
    envelope nor the left-sided search, so all (A, M) settings share one sequence.
    """
    T, A, N = tp.shape
    M, R = included.shape[0], len(RECALL_THRESHOLDS)
    if N == 0:
        return np.zeros((T, R, A, M)), np.zeros((T, A, M))
    rows = T * A * M
    # Integer running counts; the float formulas below then give pycocotools' exact bits (sums
    # of integer-valued floats are exact).
    tp_count = np.cumsum(tp[:, :, None, :] & included[None, None], axis=-1, dtype=np.int32)
    fp_count = np.cumsum(fp[:, :, None, :] & included[None, None], axis=-1, dtype=np.int32)
    tp_count = tp_count.reshape(rows, N)  # rows ordered (T, A, M)
    pr = tp_count / ((fp_count.reshape(rows, N) + tp_count) + np.spacing(1))
    recall = (tp_count[:, -1].reshape(T, A, M)) / np.maximum(npig, 1)[None, :, None]
    # Monotone envelope max_{j >= i} pr[j], kept in reversed order (contiguous, no copy).
    envelope_rev = np.maximum.accumulate(pr[:, ::-1], axis=1)

    # searchsorted(rc, thr, 'left') for every row at once. rc = tp/npig is monotone in the integer
    # tp count, so "rc >= thr" is "tp >= c" with c the least integer whose c/npig >= thr
    # (computed with the same division, so ties at the threshold are decided identically).
    n_den = np.maximum(npig, 1).astype(np.float64)[:, None]  # (A, 1)
    c = np.ceil(RECALL_THRESHOLDS[None, :] * n_den)
    c = np.where((c - 1 >= 0) & ((c - 1) / n_den >= RECALL_THRESHOLDS), c - 1, c)
    c = np.where(c / n_den < RECALL_THRESHOLDS, c + 1, c).astype(np.int64)  # (A, R)
    # One search over all rows: offset each row's counts so that rows stay sorted and apart.
    span = N + int(c.max()) + 2
    offsets = np.arange(rows, dtype=np.int64) * span
    keys = (tp_count + offsets[:, None]).ravel()
    c_rows = np.broadcast_to(c[None, :, None, :], (T, A, M, R)).reshape(rows, R)
    pos = np.searchsorted(keys, (c_rows + offsets[:, None]).ravel(), side="left")
    local = pos.reshape(rows, R) - (np.arange(rows) * N)[:, None]
    inside = local < N
    picked = np.take_along_axis(envelope_rev, N - 1 - np.minimum(local, N - 1), axis=1)
    q = np.where(inside, picked, 0.0)
    precision = q.reshape(T, A, M, R).transpose(0, 3, 1, 2)
    return precision, recall


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """COCOeval.summarize for detections: means over the entries > -1."""

    def mean(s: np.ndarray) -> float:
        s = s[s > -1]
        return float(np.mean(s)) if s.size else -1.0

    def ap(iou: float | None = None, area: str = "all", max_det: int = 100) -> float:
        s = precision
        if iou is not None:
            s = s[np.where(iou == IOU_THRESHOLDS)[0]]
        return mean(s[:, :, :, AREA_LABELS.index(area), MAX_DETS.index(max_det)])

    def ar(area: str = "all", max_det: int = 100) -> float:
        return mean(recall[:, :, AREA_LABELS.index(area), MAX_DETS.index(max_det)])

    values = (
        ap(),
        ap(0.5),
        ap(0.75),
        ap(area="small"),
        ap(area="medium"),
        ap(area="large"),
        ar(max_det=1),
        ar(max_det=10),
        ar(),
        ar("small"),
        ar("medium"),
        ar("large"),
    )
    return dict(zip(COCO_STAT_NAMES, values))
