"""YOLOv3 and CenterNet on the shared scenes: AP, AP50, APs on the held-out test scenes, and
inference images/s, on this CPU. Also YOLOv3 with k-means anchors vs the default ones.

Each variant trains through the library's detection job (what ``modernvision train`` runs),
is scored on the first ``--test-images`` test scenes (the loop of ``modernvision eval``), and
its inference speed
is the median over ``--speed-images`` test images, one at a time, of a forward pass in eval mode
(transform, network and decoding; after 3 warm-up images). One variant per call, so each call
fits the shared CPU lock:

    flock /tmp/mv-cpu.lock env OMP_NUM_THREADS=2 python bench/detection_yolo_centernet.py \
        --variant yolov3_default --epochs 3 --train-subset 600

Results are appended to ``bench/results/detection_yolo_centernet.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
COMMON = dict(optimizer="adamw", lr=1e-3, weight_decay=1e-4, grad_clip=10.0, batch_size=8,
              warmup_epochs=0.25, eval_subset=50)
VARIANTS = {
    "yolov3_default": ("yolov3_small", {}),
    "yolov3_kmeans": ("yolov3_small", {"anchors": "kmeans"}),
    "centernet_resnet18": ("centernet_resnet18", {}),
}


def kmeans_for(data: str) -> list[list[float]]:
    from modernvision.cli.anchors import data_box_sizes
    from modernvision.ops import kmeans_anchors

    sizes, _ = data_box_sizes(data, "train")
    anchors, iou = kmeans_anchors(sizes, 9, seed=0)
    print(f"k-means anchors (mean IoU {iou:.4f}): {anchors.round(decimals=1).tolist()}")
    return [[round(float(w), 1), round(float(h), 1)] for w, h in anchors]


def images_per_second(run_dir: str, data: str, n: int) -> float:
    from modernvision.engine.jobs import load_run

    run = load_run(run_dir)
    dataset = run.job.split_dataset(run.cfg, run.meta, "test", data)
    times = []
    with torch.no_grad():
        for i in range(min(n + 3, len(dataset))):
            image = dataset[i][0]
            start = time.perf_counter()
            run.model([image])
            if i >= 3:
                times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times)


def test_metrics(run_dir: str, data: str, n: int) -> dict:
    """COCO metrics of the run's model on the first ``n`` test scenes (``evaluate_run``'s loop
    on a subset of the size asked for)."""
    from torch.utils.data import DataLoader, Subset

    from modernvision.engine.jobs import load_run

    run = load_run(run_dir)
    dataset = run.job.split_dataset(run.cfg, run.meta, "test", data)
    dataset = Subset(dataset, range(min(n, len(dataset))))
    evaluator = run.job.build_evaluator(run.cfg, run.meta, dataset)
    loader = DataLoader(dataset, batch_size=run.job.eval_batch_size,
                        collate_fn=run.job.collate_fn())
    with torch.no_grad():
        for images, targets in loader:
            evaluator.update(run.model(images), targets)
    return {"images": len(dataset), **evaluator.compute()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--data", default="scenes:/work/data/scenes")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--min-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=COMMON["lr"])
    parser.add_argument("--test-images", type=int, default=300)
    parser.add_argument("--speed-images", type=int, default=30)
    parser.add_argument("--runs", default="/tmp/yc_bench_runs")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

    from modernvision.engine.jobs import train
    from modernvision.engine.jobs.configs import DetectionConfig

    model, extra = VARIANTS[args.variant]
    kwargs = dict(extra)
    if kwargs.get("anchors") == "kmeans":
        kwargs["anchors"] = kmeans_for(args.data)
    run_dir = f"{args.runs}/{args.variant}-e{args.epochs}-n{args.train_subset}"
    cfg = DetectionConfig(model=model, data=args.data, epochs=args.epochs,
                          train_subset=args.train_subset, min_size=args.min_size,
                          run_dir=run_dir, model_kwargs=kwargs,
                          **{**COMMON, "lr": args.lr})
    start = time.perf_counter()
    result = train(cfg, overwrite=True, progress=False)
    train_seconds = time.perf_counter() - start
    metrics = test_metrics(run_dir, args.data, args.test_images)
    speed = images_per_second(run_dir, args.data, args.speed_images)
    row = {"variant": args.variant, "model": model, "epochs": args.epochs,
           "train_subset": args.train_subset, "min_size": args.min_size, "lr": args.lr,
           "model_kwargs": kwargs, "train_seconds": round(train_seconds, 1),
           "val_AP50_last": result.get("val_AP50"),
           "test_images": metrics["images"],
           **{k: round(metrics[k], 4) for k in ("AP", "AP50", "AP75", "APs", "APm")},
           "images_per_s": round(speed, 2), "load": round(os.getloadavg()[0], 2),
           "torch_threads": torch.get_num_threads()}
    print(json.dumps(row))
    out = ROOT / "bench" / "results" / "detection_yolo_centernet.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
