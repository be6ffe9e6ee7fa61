"""Smoke training of a CPU-sized Faster R-CNN on composited scenes (not the benchmark).

Trains on ``make_scenes(..., split="train")`` read back through ``scene_instances`` (the COCO
reader) with ``modernvision.engine.Trainer``, then evaluates COCO AP with ``coco_evaluate`` on
``split="val"`` scenes. Usage (heavy: run under the shared CPU lock)::

    flock /tmp/mv-cpu.lock python bench/faster_rcnn_smoke.py --model fasterrcnn_resnet18_fpn \
        --train 200 --val 50 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torchvision.transforms import v2

from modernvision.data import collate_detection, make_scenes, scene_instances
from modernvision.data.scenes import SceneConfig
from modernvision.engine import Trainer
from modernvision.engine.hooks import Hook
from modernvision.metrics import coco_evaluate
from modernvision.models import create
from modernvision.optim import build_optimizer, build_scheduler


class _StepLog(Hook):
    """One line every ``every`` steps: step, seconds since the start, the summed loss."""

    def __init__(self, every: int = 10) -> None:
        self.every, self.start = every, time.perf_counter()

    def on_step_end(self, trainer: Trainer, losses: dict[str, float]) -> None:
        if trainer.global_step % self.every == 0:
            print(f"step {trainer.global_step}: {time.perf_counter() - self.start:.0f} s, "
                  f"loss {losses['loss']:.3f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fasterrcnn_resnet18_fpn", help="default: %(default)s")
    p.add_argument("--data", default="/tmp/mv-scenes", help="scenes folder (default %(default)s)")
    p.add_argument("--train", type=int, default=200, help="training scenes (default 200)")
    p.add_argument("--val", type=int, default=50, help="validation scenes (default 50)")
    p.add_argument("--size", type=int, default=256, help="scene side in pixels (default 256)")
    p.add_argument("--epochs", type=int, default=4, help="default 4")
    p.add_argument("--batch-size", type=int, default=4, help="default 4")
    p.add_argument("--optimizer", default="adamw", help="default adamw")
    p.add_argument("--lr", type=float, default=1e-3, help="default 1e-3")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="default 1e-4")
    p.add_argument("--rpn-sampling", default="random", help="random or hard (default random)")
    p.add_argument("--box-batch", type=int, default=128,
                   help="RoIs sampled per image (box_batch_size_per_image, default 128)")
    p.add_argument("--fpn-channels", type=int, default=None,
                   help="pyramid width (default: the variant's)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = SceneConfig(height=args.size, width=args.size)
    root = Path(args.data) / f"{args.size}px"
    for split, n in (("train", args.train), ("val", args.val)):
        marker = root / "annotations" / f"instances_{split}.json"
        if not marker.exists() or len(json.loads(marker.read_text())["images"]) != n:
            make_scenes(root, n, seed=0, split=split, config=config)
    to_float = v2.ToDtype(torch.float32, scale=True)
    train_set = scene_instances(root, "train", masks=False, transforms=to_float)
    val_set = scene_instances(root, "val", masks=False, transforms=to_float)
    num_classes = 1 + max(c.id for c in train_set.categories if c.isthing)

    extra = {} if args.fpn_channels is None else {"fpn_channels": args.fpn_channels}
    model = create(args.model, num_classes=num_classes, min_size=args.size,
                   max_size=args.size * 2, rpn_sampling=args.rpn_sampling,
                   box_batch_size_per_image=args.box_batch, **extra)
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = build_optimizer(args.optimizer, params, lr=args.lr,
                                weight_decay=args.weight_decay)
    steps = -(-len(train_set) // args.batch_size)
    scheduler = build_scheduler("cosine", optimizer, epochs=args.epochs, steps_per_epoch=steps,
                                warmup_epochs=min(0.5, args.epochs / 4))
    trainer = Trainer(model, optimizer, train_set, epochs=args.epochs,
                      batch_size=args.batch_size, scheduler=scheduler, device="cpu",
                      channels_last=False, collate_fn=collate_detection, progress=False,
                      grad_clip_norm=10.0, hooks=[_StepLog()])
    start = time.perf_counter()
    history = trainer.fit()
    train_seconds = time.perf_counter() - start

    model.eval()
    results = []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(val_set), 8):
            images, targets = collate_detection([val_set[j] for j in range(i, min(i + 8,
                                                                                   len(val_set)))])
            for det, target in zip(model(images), targets):
                results += det.to_coco_results(target["image_id"])
    eval_seconds = time.perf_counter() - start
    stats = coco_evaluate(root / "annotations" / "instances_val.json", results)
    summary = {"model": args.model, "train_images": len(train_set), "val_images": len(val_set),
               "size": args.size, "epochs": args.epochs, "batch_size": args.batch_size,
               "optimizer": args.optimizer, "lr": args.lr, "rpn_sampling": args.rpn_sampling,
               "box_batch": args.box_batch, "fpn_channels": args.fpn_channels,
               "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
               "loadavg": Path("/proc/loadavg").read_text().split()[:3],
               "losses": [{k: round(v, 4) for k, v in h.items() if "loss" in k}
                          for h in history],
               **{k: round(v, 4) for k, v in stats.items()}}
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
