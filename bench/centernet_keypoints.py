"""CenterNet's keypoint variant on the shared scenes, with keypoints DERIVED from the masks.

The scenes have no annotated keypoints; each object's four extreme points (top, left, bottom,
right pixel of its exact instance mask, :func:`modernvision.ops.extreme_points.extreme_points`)
stand in for them. ``centernet_keypoints_resnet18`` trains on boxes + these points (a plain
loop: ``modernvision train`` has no keypoint job yet), then on the test scenes reports the box AP
(COCO, pycocotools-equal) and, for each ground truth matched by a detection of its class at
IoU >= 0.5 (best score first), the mean keypoint error in pixels and PCK@0.1 (share of points
within 0.1 x the longer box side) -- for the decoded (snapped) keypoints and, as a baseline, the
box's edge midpoints.

    flock /tmp/mv-cpu.lock env OMP_NUM_THREADS=2 python bench/centernet_keypoints.py \
        --train-images 600 --epochs 2 --test-images 300
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="/work/data/scenes")
    parser.add_argument("--train-images", type=int, default=600)
    parser.add_argument("--test-images", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.manual_seed(0)

    from modernvision.data.detection_transforms import detection_eval_transforms
    from modernvision.data.formats.coco import coco_to_dict
    from modernvision.data.formats.dataset import InstanceDataset
    from modernvision.engine.jobs.configs import parse_data_spec
    from modernvision.engine.jobs.detection import _take, load_splits
    from modernvision.metrics import coco_evaluate
    from modernvision.models import create
    from modernvision.ops import box_iou
    from modernvision.ops.extreme_points import extreme_points

    splits, _ = load_splits(parse_data_spec(f"scenes:{args.data}"))

    def dataset(split: str, n: int) -> InstanceDataset:
        records, folder = splits[split]
        return InstanceDataset(_take(records, records.images[:n]), folder,
                               transforms=detection_eval_transforms(), masks=True)

    def sample(ds: InstanceDataset, i: int) -> tuple[torch.Tensor, dict]:
        image, target = ds[i]
        target = {"boxes": target["boxes"].as_subclass(torch.Tensor),
                  "labels": target["labels"], "image_id": target["image_id"],
                  "keypoints": extreme_points(target["masks"].as_subclass(torch.Tensor))}
        return image.as_subclass(torch.Tensor), target

    train_ds, test_ds = dataset("train", args.train_images), dataset("test", args.test_images)
    num_classes = max(c.id for c in train_ds.categories if c.isthing) + 1
    model = create("centernet_keypoints_resnet18", num_classes=num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * math.ceil(len(train_ds) / args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps,
                                                pct_start=0.1)
    start, step = time.perf_counter(), 0
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(train_ds)).tolist()
        total = 0.0
        for b in range(0, len(order), args.batch_size):
            batch = [sample(train_ds, i) for i in order[b:b + args.batch_size]]
            losses = model([x for x, _ in batch], [t for _, t in batch])
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            step += 1
            total += float(loss.detach())
        print(f"epoch {epoch + 1}: mean loss {total / math.ceil(len(order) / args.batch_size):.3f}"
              f" ({time.perf_counter() - start:.0f} s)")
    train_seconds = time.perf_counter() - start

    model.eval()
    results, errors, base_errors, hits, base_hits, matched, gts = [], [], [], 0, 0, 0, 0
    with torch.no_grad():
        for i in range(len(test_ds)):
            image, target = sample(test_ds, i)
            det = model([image])[0]
            results += det.to_coco_results(int(target["image_id"]))
            gt, kps = target["boxes"], target["keypoints"]
            gts += gt.shape[0]
            taken = torch.zeros(gt.shape[0], dtype=torch.bool)
            iou = box_iou(det.boxes, gt) if len(det) and gt.numel() else None
            for d in range(len(det)):
                if iou is None:
                    break
                same = (target["labels"] == det.labels[d]) & ~taken
                cand = torch.where(same, iou[d], torch.zeros_like(iou[d]))
                g = int(cand.argmax())
                if cand[g] < 0.5:
                    continue
                taken[g] = True
                matched += 1
                box = det.boxes[d]
                side = float((gt[g, 2:] - gt[g, :2]).max())
                err = (det.keypoints[d, :, :2] - kps[g, :, :2]).norm(dim=1)
                mid = torch.stack([torch.stack([(box[0] + box[2]) / 2, box[1]]),
                                   torch.stack([box[0], (box[1] + box[3]) / 2]),
                                   torch.stack([(box[0] + box[2]) / 2, box[3]]),
                                   torch.stack([box[2], (box[1] + box[3]) / 2])])
                base = (mid - kps[g, :, :2]).norm(dim=1)
                errors += err.tolist()
                base_errors += base.tolist()
                hits += int((err < 0.1 * side).sum())
                base_hits += int((base < 0.1 * side).sum())
    gt_dict = coco_to_dict(test_ds.records, things_only=True)
    stats = coco_evaluate(gt_dict, results)
    n = max(1, len(errors))
    row = {"model": "centernet_keypoints_resnet18", "train_images": len(train_ds),
           "epochs": args.epochs, "lr": args.lr, "train_seconds": round(train_seconds, 1),
           "test_images": len(test_ds), "AP": round(stats["AP"], 4),
           "AP50": round(stats["AP50"], 4), "matched_objects": matched, "objects": gts,
           "keypoint_error_px": round(sum(errors) / n, 2),
           "pck_0.1": round(hits / n, 4),
           "box_midpoint_error_px": round(sum(base_errors) / n, 2),
           "box_midpoint_pck_0.1": round(base_hits / n, 4),
           "load": round(os.getloadavg()[0], 2)}
    print(json.dumps(row))
    out = ROOT / "bench" / "results" / "centernet_keypoints.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
