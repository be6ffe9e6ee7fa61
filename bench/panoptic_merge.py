"""Panoptic FPN's merge thresholds, chosen on the val split and then scored once on test.

The merge (``panoptic_merge``: instances by score above ``instance_score_thresh``, each dropped
when more than ``overlap_thresh`` of its mask is already taken) has two thresholds that
detectron2 sets to 0.5 / 0.5 for COCO. This loads trained weights (``segmentation_instance.py
--save``), scores PQ on the first ``--val`` scenes of the **val** split for every pair of the
grid, and scores the **test** scenes once with the default pair and once with the pair best on
val -- so the test split never chooses anything.

Usage::

    env OMP_NUM_THREADS=2 PYTHONPATH=$PWD python bench/panoptic_merge.py \\
        --weights /work/runs/panoptic_mnv2.pt --out bench/results/panoptic_merge.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from segmentation_instance import bench_model_kwargs  # this folder, on the path as a script

from modernvision.engine.jobs.base import job_for_model
from modernvision.engine.jobs.configs import PanopticConfig
from modernvision.models.pretrained import load_own_weights

KEEP = ("PQ", "SQ", "RQ", "PQ_things", "PQ_stuff", "mask_AP50")


def score(model, job, cfg, meta, dataset) -> dict:
    evaluator = job.build_evaluator(cfg, meta, dataset)
    evaluator.reset()
    with torch.no_grad():
        for i in range(len(dataset)):
            image, target = dataset[i]
            evaluator.update(model([image]), [target])
    metrics = evaluator.compute()
    return {k: round(float(metrics[k]), 4) for k in KEEP if k in metrics}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="panoptic_fpn_mobilenet_v2_050")
    p.add_argument("--weights", required=True, help="weights from segmentation_instance --save")
    p.add_argument("--data", default="/work/data/scenes")
    p.add_argument("--val", type=int, default=100, help="val scenes that choose (default 100)")
    p.add_argument("--test", type=int, default=100, help="test scenes scored (default 100)")
    p.add_argument("--score-thresh", default="0.3,0.4,0.5,0.6,0.7")
    p.add_argument("--overlap-thresh", default="0.3,0.5,0.7")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model_kwargs = bench_model_kwargs()  # segmentation_instance.py's defaults
    rows = {}
    for split, n in (("val", args.val), ("test", args.test)):
        cfg = PanopticConfig(model=args.model, data=f"scenes:{args.data}", train_subset=1,
                             eval_subset=n, device="cpu", model_kwargs=model_kwargs)
        cfg.validate()
        job = job_for_model(cfg.model)
        data = job.build_data(cfg)
        rows[split] = (job, cfg, data)
    job, cfg, data = rows["val"]
    model = job.build_model(cfg, data.meta)
    report = load_own_weights(model, args.weights)
    if report["not_in_source"]:
        raise SystemExit(f"--weights {args.weights}: {len(report['not_in_source'])} tensors "
                         "of the model are missing from it; expected a trained Panoptic FPN")
    model.eval()
    grid = [(float(s), float(o)) for s in args.score_thresh.split(",")
            for o in args.overlap_thresh.split(",")]
    val_rows = []
    for s, o in grid:
        model.instance_score_thresh, model.overlap_thresh = s, o
        row = {"instance_score_thresh": s, "overlap_thresh": o,
               **score(model, job, cfg, data.meta, data.val)}
        print(json.dumps(row), flush=True)
        val_rows.append(row)
    best = max(val_rows, key=lambda r: r["PQ"])
    job, cfg, data = rows["test"]
    test = {}
    for name, (s, o) in (("default", (0.5, 0.5)),
                         ("best_on_val", (best["instance_score_thresh"], best["overlap_thresh"]))):
        model.instance_score_thresh, model.overlap_thresh = s, o
        test[name] = {"instance_score_thresh": s, "overlap_thresh": o,
                      **score(model, job, cfg, data.meta, data.test)}
        print(name, json.dumps(test[name]), flush=True)
    result = {"model": args.model, "weights": args.weights, "val_scenes": len(rows["val"][2].val),
              "test_scenes": len(data.test), "val": val_rows, "test": test}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
