"""Faster R-CNN variants on the composited scenes, trained and scored by the ``modernvision`` CLI.

Every run is one ``modernvision train`` command (printed before it runs) on
``scenes:/work/data/scenes`` (train 2000 scenes seed 0, val 200 seed 1, test 500 seed 2, 256 px,
written by ``modernvision data make-scenes``), validated on the first 20 val scenes after every
epoch and tested on the first 300 test scenes. Runs of the comparison train on the same 1200
scenes for one epoch (an equal budget of images, not of seconds); the long run (``LONG``) is
continued across CPU-lock slots with ``--resume RUN`` (an interrupted run) or
``--resume RUN --extend-epochs N`` (a finished one).

Usage (each under the shared CPU lock, at most 10 minutes per call)::

    flock /tmp/mv-cpu.lock python bench/detection.py run r18_fpn
    flock /tmp/mv-cpu.lock python bench/detection.py run long --extend 1   # a further epoch
    python bench/detection.py report      # the table of bench/detection.md + results json
    python bench/detection.py asset mnv2_050_fpn   # the demo's fp16 weights into assets/
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "bench-detection"
RESULTS = ROOT / "bench" / "results" / "detection_cpu.json"
DATA = "scenes:/work/data/scenes"

COMMON = ["--data", DATA, "--val-subset", "20", "--eval-subset", "300", "--batch-size", "4",
          "--optimizer", "adamw", "--lr", "1e-3", "--weight-decay", "1e-4", "--grad-clip", "10",
          "--no-progress", "--model-arg", "box_batch_size_per_image=128"]
COMPARE = ["--epochs", "1", "--train-subset", "600", "--warmup-epochs", "0.1"]

#: name -> (what it shows, model and its arguments)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "r18_fpn": ("FPN, random RPN negatives", ["--model", "fasterrcnn_resnet18_fpn"]),
    "r18_fpn_hard": ("FPN, hard RPN negatives", ["--model", "fasterrcnn_resnet18_fpn",
                                                 "--model-arg", "rpn_sampling=hard"]),
    "r18_pyramid": ("several maps, no top-down path", ["--model", "fasterrcnn_resnet18_pyramid"]),
    "r18_c4": ("one map (C4), 3 scales x 3 ratios", ["--model", "fasterrcnn_resnet18_c4"]),
    "mnv2_fpn": ("MobileNetV2 FPN", ["--model", "fasterrcnn_mobilenet_v2_fpn"]),
    "mnv2_050_fpn": ("MobileNetV2 x0.5, 64-ch FPN (the demo's)",
                     ["--model", "fasterrcnn_mobilenet_v2_050_fpn"]),
}
#: the long run: the variant with the cheapest training step (and small enough to ship),
#: 4 epochs of 300 scenes, so that a CPU-lock slot that ends mid-run loses at most one epoch
LONG = ("mnv2_050_fpn", ["--epochs", "4", "--train-subset", "300", "--warmup-epochs", "0.1"])


#: the full-data run: the same variant on all 2000 training scenes for 3 epochs (one ~6-minute
#: slot on an idle machine)
LONG_FULL = ("mnv2_050_fpn", ["--epochs", "3", "--train-subset", "2000", "--warmup-epochs",
                              "0.1"])

#: the issue's 30-minute run: the same variant and data, 14 epochs on one cosine schedule
#: (~120 s per epoch on two idle threads, so about 28 minutes of training)
LONG30 = ("mnv2_050_fpn", ["--epochs", "14", "--train-subset", "2000", "--warmup-epochs",
                           "0.1"])
LONG_RUNS = {"long": LONG, "long_full": LONG_FULL, "long30": LONG30}


def command(name: str) -> list[str]:
    if name in LONG_RUNS:
        base, schedule = LONG_RUNS[name]
        return [*VARIANTS[base][1], *COMMON, *schedule, "--run-dir", str(RUNS / name)]
    return [*VARIANTS[name][1], *COMMON, *COMPARE, "--run-dir", str(RUNS / name)]


def run(name: str, extend: int | None) -> None:
    run_dir = RUNS / name
    cli = [sys.executable, "-m", "modernvision", "train"]
    if extend is not None:
        argv = [*cli, "--resume", str(run_dir), "--extend-epochs", str(extend)]
    elif (run_dir / "config.json").is_file():
        argv = [*cli, "--resume", str(run_dir)]  # an interrupted run continues
    else:
        argv = [*cli, *command(name)]
    print("modernvision train " + shlex.join(argv[4:]), flush=True)
    threads = os.environ.get("OMP_NUM_THREADS", "2")  # 2 unless the caller says otherwise
    env = os.environ | {"OMP_NUM_THREADS": threads}
    load0, start = os.getloadavg()[0], time.time()
    subprocess.run(argv, check=True, env=env, cwd=ROOT)
    log = run_dir / "bench_log.jsonl"
    with log.open("a") as f:
        f.write(json.dumps({"argv": argv[4:], "wall_s": time.time() - start, "threads": threads,
                            "load_start": load0, "load_end": os.getloadavg()[0]}) + "\n")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x]


def report() -> None:
    rows = []
    for name in [*VARIANTS, *LONG_RUNS]:
        path = RUNS / name / "test_metrics.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        cfg = json.loads((RUNS / name / "config.json").read_text())
        epochs = _jsonl(RUNS / name / "metrics.jsonl")
        logs = _jsonl(RUNS / name / "bench_log.jsonl")
        train_s = sum(e["train_time_s"] for e in epochs)
        images = sum(round(e["train_time_s"] * e["train_img_per_s"]) for e in epochs)
        loads = [v for g in logs for v in (g["load_start"], g["load_end"])]
        what = VARIANTS.get(name, ("",))[0] or f"{LONG_RUNS[name][0]}, {name} run"
        rows.append({"run": name, "model": cfg["model"], "what": what,
                     "train_images_seen": images, "epochs": len(epochs),
                     "train_s": round(train_s), "load": [min(loads), max(loads)],
                     **{k: round(metrics[f"test_{k}"], 4)
                        for k in ("AP", "AP50", "AP75", "APs", "APm", "AR100")},
                     "test_images": metrics["test_images"],
                     "val_AP50_per_epoch": [round(e["val_AP50"], 4) for e in epochs]})
    # rows of runs whose directories are gone (an earlier machine) are kept from the results file
    fresh = {r["run"] for r in rows}
    kept = [r for r in (json.loads(RESULTS.read_text()) if RESULTS.is_file() else [])
            if r["run"] not in fresh]
    order = [*VARIANTS, *LONG_RUNS]
    rows = sorted(kept + rows, key=lambda r: order.index(r["run"]) if r["run"] in order else 99)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    print("| run | model | what | images seen (epochs) | train time | load | AP | AP50 | AP75 "
          "| APs | APm | AR100 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | `{r['model']}` | {r['what']} | {r['train_images_seen']} "
              f"({r['epochs']}) | {r['train_s']} s | {r['load'][0]:.1f}-{r['load'][1]:.1f} | "
              f"{r['AP']:.3f} | {r['AP50']:.3f} | {r['AP75']:.3f} | {r['APs']:.3f} | "
              f"{r['APm']:.3f} | {r['AR100']:.3f} |")


def asset(name: str, out: Path) -> None:
    """Ship a run's weights: fp16 state dict, the model's name and keywords, the categories and
    a line on how it was trained (read by :mod:`modernvision.demos.detection`)."""
    import torch

    from modernvision.engine.jobs import load_run

    run = load_run(RUNS / name)
    cfg, metrics = run.cfg, json.loads((run.run_dir / "test_metrics.json").read_text())
    kwargs = dict(cfg.model_kwargs)
    kwargs |= {k: getattr(cfg, k) for k in ("min_size", "max_size") if getattr(cfg, k)}
    state = {k: v.half() if v.is_floating_point() else v
             for k, v in run.model.state_dict().items()}
    epochs = _jsonl(run.run_dir / "metrics.jsonl")
    seen = sum(round(e["train_time_s"] * e["train_img_per_s"]) for e in epochs)
    seconds = sum(e["train_time_s"] for e in epochs)  # all segments (an extension included)
    torch.save({"model_name": cfg.model, "num_classes": run.meta["num_classes"],
                "categories": run.meta["categories"], "model_kwargs": kwargs,
                "state_dict": state,
                "trained": f"{seen} scene images, {seconds:.0f} s on 2 CPU "
                           f"cores; test AP50 {metrics['test_AP50']:.3f} on "
                           f"{metrics['test_images']} test scenes"}, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("name", choices=[*VARIANTS, *LONG_RUNS])
    r.add_argument("--extend", type=int, help="train the finished run N more epochs")
    sub.add_parser("report")
    sub.add_parser("commands")
    a = sub.add_parser("asset")
    a.add_argument("name", choices=[*VARIANTS, *LONG_RUNS])
    a.add_argument("--out", type=Path, default=ROOT / "modernvision" / "assets"
                   / "fasterrcnn_mobilenet_v2_050_fpn_scenes.pt")
    args = p.parse_args()
    if args.cmd == "run":
        run(args.name, args.extend)
    elif args.cmd == "asset":
        asset(args.name, args.out)
    elif args.cmd == "commands":
        for name in [*VARIANTS, *LONG_RUNS]:
            print("modernvision train " + shlex.join(command(name)))
    else:
        report()


if __name__ == "__main__":
    main()
