"""Benchmark: modernvision's COCO box evaluation against pycocotools' COCOeval.

A synthetic COCO set (see ``make_set``) is evaluated by both in the same process; each is timed
``--repeats`` times and the median is reported, with the largest difference between the two sets
of 12 numbers. Run: ``python bench/metrics.py [--images 5000] [--repeats 3] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import platform
import statistics
import time

import numpy as np

from modernvision.metrics import COCO_STAT_NAMES, coco_evaluate


def make_set(num_images: int, *, num_categories: int = 80, seed: int = 0) -> tuple[dict, list]:
    """Synthetic ground truth and detections.

    Per image: Poisson(7) objects of uniformly drawn categories, box sides log-uniform in
    [4, 400] px (all three COCO size ranges), 1% crowds, an ``area`` of 50-100% of the box (as a
    mask would give). Per object 0, 1, 1 or 2 detections, jittered (10% of the size) and 10% of
    them with a wrong category, plus Poisson(10) spurious boxes per image: ~20 detections per
    image. Scores are uniform in [0, 1).
    """
    rng = np.random.default_rng(seed)
    cats = list(range(1, num_categories + 1))

    def box() -> list[float]:
        side = np.exp(rng.uniform(np.log(4), np.log(400)))
        aspect = np.exp(rng.uniform(-0.7, 0.7))
        w, h = side * aspect, side / aspect
        return [round(float(v), 2) for v in (rng.uniform(0, 600), rng.uniform(0, 400), w, h)]

    anns, dets = [], []
    for img in range(1, num_images + 1):
        for _ in range(rng.poisson(7)):
            b, cat = box(), int(rng.choice(cats))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img,
                    "category_id": cat,
                    "bbox": b,
                    "area": b[2] * b[3] * float(rng.uniform(0.5, 1.0)),
                    "iscrowd": int(rng.random() < 0.01),
                }
            )
            for _ in range(rng.choice([0, 1, 1, 2])):
                x, y, w, h = b
                jittered = [
                    x + rng.normal(0, 0.1 * w),
                    y + rng.normal(0, 0.1 * h),
                    w * np.exp(rng.normal(0, 0.1)),
                    h * np.exp(rng.normal(0, 0.1)),
                ]
                dets.append(
                    {
                        "image_id": img,
                        "category_id": cat if rng.random() > 0.1 else int(rng.choice(cats)),
                        "bbox": [round(float(v), 2) for v in jittered],
                        "score": float(rng.random()),
                    }
                )
        for _ in range(rng.poisson(10)):
            dets.append(
                {
                    "image_id": img,
                    "category_id": int(rng.choice(cats)),
                    "bbox": box(),
                    "score": float(rng.random()),
                }
            )
    gt = {
        "images": [{"id": i, "height": 480, "width": 640} for i in range(1, num_images + 1)],
        "annotations": anns,
        "categories": [{"id": c, "name": f"class{c}"} for c in cats],
    }
    return gt, dets


def run_pycocotools(gt: dict, dets: list) -> tuple[np.ndarray, float, float]:
    """(stats, seconds to index + loadRes, seconds for evaluate + accumulate + summarize)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, dets = copy.deepcopy(gt), copy.deepcopy(dets)  # pycocotools mutates its inputs
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        res = coco.loadRes(dets)
        t1 = time.perf_counter()
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        t2 = time.perf_counter()
    return ev.stats, t1 - t0, t2 - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()

    gt, dets = make_set(args.images)
    ours_s, ref_load_s, ref_eval_s, diffs = [], [], [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        stats = coco_evaluate(gt, dets)
        ours_s.append(time.perf_counter() - t0)
        ref_stats, load, ev = run_pycocotools(gt, dets)
        ref_load_s.append(load)
        ref_eval_s.append(ev)
        diffs.append(
            float(np.max(np.abs(np.array([stats[n] for n in COCO_STAT_NAMES]) - ref_stats)))
        )
    result = {
        "images": args.images,
        "annotations": len(gt["annotations"]),
        "detections": len(dets),
        "repeats": args.repeats,
        "modernvision_total_s": statistics.median(ours_s),
        "pycocotools_eval_acc_summ_s": statistics.median(ref_eval_s),
        "pycocotools_index_loadres_s": statistics.median(ref_load_s),
        "modernvision_runs_s": ours_s,
        "pycocotools_eval_acc_summ_runs_s": ref_eval_s,
        "max_abs_diff_12_numbers": max(diffs),
        "stats": stats,
        "machine": f"{platform.machine()}, python {platform.python_version()}",
    }
    result["speedup_vs_eval"] = (
        result["pycocotools_eval_acc_summ_s"] / result["modernvision_total_s"]
    )
    result["speedup_vs_total"] = (
        result["pycocotools_eval_acc_summ_s"] + result["pycocotools_index_loadres_s"]
    ) / result["modernvision_total_s"]
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
