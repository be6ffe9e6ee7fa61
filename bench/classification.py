"""Each family's small-input variant trained briefly on Fashion-MNIST, on this machine's CPU.

For every model: params and MACs (``summarize`` at 1x28x28), then a short schedule through the
project's own job (``modernvision.engine.jobs.train``: Trainer + ClassificationTask + our Adam,
cosine schedule, no augmentation, batch-norm statistics re-estimated before each evaluation),
test accuracy on the first ``--eval-images`` Fashion-MNIST test images, and the wall time per
epoch (the upper median of the epochs' training times). Results go to a JSON file (models
already in it are skipped, so an interrupted run resumes); ``bench/classification.md`` is
written from it.

    .venv/bin/python bench/classification.py --out bench/results/classification_cpu.json \
        [--models resnet18,mobilenet_v2] [--train-images 3000] [--eval-images 2000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from modernvision.analysis import summarize
from modernvision.engine.jobs import ClassificationConfig, train
from modernvision.models import create

# One small-input variant per family of the zoo (plus the demo's compact CNN).
FAMILIES = [
    ("compact_cnn", "compact CNN (demo)"),
    ("alexnet", "AlexNet"),
    ("zfnet", "ZFNet"),
    ("vgg11", "VGG"),
    ("googlenet", "GoogLeNet"),
    ("inception_v3", "Inception v3"),
    ("resnet18", "ResNet"),
    ("plain18", "plain net"),
    ("resnext50_32x4d", "ResNeXt"),
    ("se_resnet50", "SE-ResNet"),
    ("mobilenet_v2", "MobileNetV2"),
    ("efficientnet_b0", "EfficientNet"),
    ("vit_tiny", "ViT"),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--models", default=",".join(n for n, _ in FAMILIES))
    p.add_argument("--train-images", type=int, default=3000)
    p.add_argument("--eval-images", type=int, default=2000,
                   help="validate and test on the first N images of each split")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--run-root", default="runs/bench-classification")
    args = p.parse_args()

    names = dict(FAMILIES)
    results = {"what": "Fashion-MNIST, small-input variants, short schedule", "machine": {
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "torch": torch.__version__, "threads": torch.get_num_threads()},
        "schedule": {"train_images": args.train_images, "epochs": args.epochs,
                     "batch_size": args.batch_size, "optimizer": "adam", "lr": args.lr,
                     "scheduler": "cosine", "augment": False, "precise_bn_batches": 10,
                     "test_images": args.eval_images},
        "models": {}}
    if args.out.exists():
        results["models"] = json.loads(args.out.read_text()).get("models", {})
    for name in args.models.split(","):
        if name in results["models"]:
            print(f"{name}: already measured, skipped")
            continue
        model = create(name, num_classes=10, in_channels=1, small_input=True)
        s = summarize(model, (1, 28, 28))
        cfg = ClassificationConfig(model=name, data="fashion-mnist", epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, optimizer="adam",
                          scheduler="cosine", augment=False, train_subset=args.train_images,
                          eval_subset=args.eval_images, precise_bn=10,
                          run_dir=f"{args.run_root}/{name}", seed=0)
        start = time.perf_counter()
        r = train(cfg, overwrite=True, progress=False, log=lambda m: None)
        wall = time.perf_counter() - start
        hist = [json.loads(x) for x in
                (Path(cfg.run_dir) / "metrics.jsonl").read_text().splitlines()]
        epoch_s = [h["train_time_s"] for h in hist]
        results["models"][name] = {
            "family": names.get(name, name), "params": s.total_params, "macs": s.total_macs,
            "test_acc": r["test_acc"], "epoch_seconds": epoch_s,
            "median_epoch_seconds": sorted(epoch_s)[len(epoch_s) // 2],
            "train_img_per_s": [h["train_img_per_s"] for h in hist], "total_seconds": wall,
            "load_average_at_end": os.getloadavg(),
        }
        epoch = results["models"][name]["median_epoch_seconds"]
        print(f"{name:16s} params {s.total_params / 1e6:6.2f} M  MACs {s.total_macs / 1e6:8.1f} M"
              f"  test acc {r['test_acc']:.4f}  epoch {epoch:.1f} s"
              f"  (load {os.getloadavg()[0]:.1f})", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
