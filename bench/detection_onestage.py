"""One-stage detectors on the shared scenes: results of `modernvision train` runs, and the
inference speed of one-stage vs two-stage detectors measured in one process.

Usage:
    # the table of finished runs (each trained with `modernvision train`, see the .md)
    python bench/detection_onestage.py collect RUN [RUN ...]
    # inference images/s on the scenes' test images, all models in this one process
    python bench/detection_onestage.py speed --data /work/data/scenes --images 48 \
        --model ssd256_resnet18=RUN --model retinanet_resnet18_fpn=RUN \
        --model fasterrcnn_resnet18_fpn

A ``--model NAME=RUN`` is the trained model of that run; a bare ``NAME`` is built untrained
(random init, 21 classes, as the scenes have) -- enough for timing, though an untrained
detector keeps a different number of boxes for NMS than a trained one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def collect(runs: list[str]) -> None:
    print("| run | model | settings | train images x epochs | train s | test images | AP | AP50 "
          "| APs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        path = Path(run)
        cfg = json.loads((path / "config.json").read_text())
        res = json.loads((path / "test_metrics.json").read_text())
        config = cfg.get("config", cfg)
        settings = ", ".join(f"{k}={v}" for k, v in config.get("model_kwargs", {}).items())
        print(f"| {path.name} | `{config['model']}` | {settings or 'defaults'} | "
              f"{config['train_subset']} x {res['epochs_run']} | {res['train_seconds']:.0f} | "
              f"{res['test_images']} | "
              f"{res['test_AP']:.3f} | {res['test_AP50']:.3f} | {res['test_APs']:.3f} |")


def _images(data: str, n: int) -> list[torch.Tensor]:
    from PIL import Image

    files = sorted((Path(data) / "images" / "test").iterdir())[:n]
    return [torch.from_numpy(np.asarray(Image.open(f).convert("RGB")).copy())
            .permute(2, 0, 1).float().div(255) for f in files]


def _model(spec: str) -> tuple[str, torch.nn.Module]:
    from modernvision.models import create

    if "=" in spec:
        from modernvision.engine.jobs.base import load_run

        name, run = spec.split("=", 1)
        return f"{name} (trained: {Path(run).name})", load_run(run).model.eval()
    return f"{spec} (untrained)", create(spec, num_classes=21).eval()


def speed(data: str, specs: list[str], n: int, batch: int, repeats: int) -> None:
    torch.set_num_threads(2)
    images = _images(data, n)
    models = [_model(s) for s in specs]
    print(f"{n} test images of {data}, batch {batch}, torch threads 2; median of {repeats} "
          f"passes, models interleaved")
    times: dict[str, list[float]] = {name: [] for name, _ in models}
    boxes: dict[str, float] = {}
    with torch.no_grad():
        for _, model in models:  # warm-up
            model(images[:batch])
        for _ in range(repeats):
            for name, model in models:
                start, kept = time.perf_counter(), 0
                for i in range(0, n, batch):
                    kept += sum(len(d) for d in model(images[i:i + batch]))
                times[name].append(time.perf_counter() - start)
                boxes[name] = kept / n
    print("| model | params (M) | images/s | detections kept per image |")
    print("|---|---|---|---|")
    for name, model in models:
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"| {name} | {params:.1f} | {n / statistics.median(times[name]):.1f} | "
              f"{boxes[name]:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("runs", nargs="+")
    s = sub.add_parser("speed")
    s.add_argument("--data", default="/work/data/scenes")
    s.add_argument("--model", action="append", required=True)
    s.add_argument("--images", type=int, default=48)
    s.add_argument("--batch", type=int, default=4)
    s.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.command == "collect":
        collect(args.runs)
    else:
        speed(args.data, args.model, args.images, args.batch, args.repeats)


if __name__ == "__main__":
    main()
