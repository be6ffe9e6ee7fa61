"""Semantic segmentation on the shared scenes: FCN-32s/16s/8s, U-Net, DeepLab v2 and v3.

Each model is trained with ``modernvision``'s own semantic job (the same code as ``modernvision
train``) on the scenes' training label maps and scored on the held-out test split: pixel
accuracy, mean accuracy, mIoU, fwIoU, and the training time per epoch. ``--memory`` prints the
activation memory of DeepLab v3 at output stride 32 / 16 / 8 from ``summarize`` and the
fraction of a 3x3's taps that fall on the padding at each ASPP rate for the map sizes used.

Usage (one model per locked run, see bench/segmentation.md for the exact commands)::

    python bench/segmentation.py --models fcn8s --image-size 128 --train-subset 600 --epochs 3
    python bench/segmentation.py --memory --image-size 128
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

#: CPU-sized variants: name -> (registry model, builder keywords, AdamW learning rate).
MODELS = {
    "fcn32s": ("fcn32s_vgg16", {"width_mult": 0.125, "batch_norm": True}, 1e-2),
    "fcn16s": ("fcn16s_vgg16", {"width_mult": 0.125, "batch_norm": True}, 1e-2),
    "fcn8s": ("fcn8s_vgg16", {"width_mult": 0.125, "batch_norm": True}, 1e-2),
    "unet": ("unet_padded", {"base_width": 16}, 1e-2),
    "deeplabv2": ("deeplabv2_resnet18", {}, 5e-3),
    "deeplabv3": ("deeplabv3_resnet18", {}, 5e-3),
    # Started with --init from our own scenes detector / Panoptic FPN (backbone + FPN).
    "semantic_fpn": ("semantic_fpn_mobilenet_v2_050", {}, 1e-3),
}


def train_one(key: str, args: argparse.Namespace) -> dict:
    from modernvision.engine.jobs import train
    from modernvision.engine.jobs.configs import SemanticConfig

    model, kwargs, lr = MODELS[key]
    run_dir = Path(args.runs) / key
    cfg = SemanticConfig(model=model, data=f"scenes:{args.data}", epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr or lr, optimizer="adamw",
                         weight_decay=1e-4, scheduler="cosine", image_size=args.image_size,
                         train_subset=args.train_subset, eval_subset=args.eval_subset,
                         device="cpu", run_dir=str(run_dir), model_kwargs=dict(kwargs),
                         seed=0, init=args.init, class_weighting=args.class_weighting)
    result = train(cfg, overwrite=True, progress=False)
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epoch_seconds = [h["train_time_s"] for h in history if "train_time_s" in h]
    row = {"model": key, "registry": model, "kwargs": kwargs, "lr": args.lr or lr,
           "init": args.init, "class_weighting": args.class_weighting,
           "params": _params(run_dir), "epochs": result["epochs_run"],
           "train_images": args.train_subset, "image_size": args.image_size,
           "seconds_per_epoch": (sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds
                                 else result["train_seconds"] / result["epochs_run"]),
           "test_images": result["test_images"]}
    row |= {k.removeprefix("test_"): round(v, 4) for k, v in result.items()
            if k.startswith("test_") and isinstance(v, float)}
    return row


def _params(run_dir: Path) -> int:
    import torch

    state = torch.load(run_dir / "model_final.pt", map_location="cpu", weights_only=False)
    return int(sum(v.numel() for k, v in state["model"].items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))))


def asset(run_dir: Path, out: Path, tau: float = 0.0) -> None:
    """Ship a semantic run's weights (fp16) with its model name, keywords, classes, image size
    and a line on how it was trained (read by :mod:`modernvision.demos.segmentation`). With
    ``tau`` (chosen on val by ``bench/segmentation_adjust.py``) it also ships the logit offset
    ``-tau * log(class weight)`` that the demo adds to the logits."""
    import torch

    from modernvision.engine.jobs import load_run

    run = load_run(run_dir)
    stages, origin = _init_chain(Path(run_dir))
    extra, adjusted = {}, ""
    if tau:
        if run.model.class_weight is None:
            raise SystemExit(f"--asset-tau {tau}: {run_dir} was trained without class weights")
        extra["logit_offset"] = (-tau * run.model.class_weight.log()).float()
        sweeps = Path("bench/segmentation_adjust_results.jsonl")
        rows = ([json.loads(line) for line in sweeps.read_text().splitlines()]
                if sweeps.is_file() else [])
        rows = [r for r in rows if Path(r["run"]) == Path(run_dir) and r["chosen_tau"] == tau]
        if not rows:
            raise SystemExit(f"--asset-tau {tau}: no sweep of {run_dir} in {sweeps} chose it; "
                             "run bench/segmentation_adjust.py first")
        adjusted = (f", {rows[-1]['test_miou_chosen']:.3f} with the logits adjusted by "
                    f"-{tau:g} log w (tau chosen on {rows[-1]['val_images']} val scenes)")
    metrics = json.loads((run.run_dir / "test_metrics.json").read_text())
    state = {k: v.half() if v.is_floating_point() else v
             for k, v in run.model.state_dict().items()}
    torch.save({"model_name": run.cfg.model, "classes": run.meta["classes"],
                "model_kwargs": dict(run.cfg.model_kwargs), "image_size": run.cfg.image_size,
                "state_dict": state, **extra,
                "trained": " + ".join(f"{e} x {n} scenes" for e, n, _ in stages)
                           + f" from {origin}, {sum(t for *_, t in stages):.0f} s on 2 CPU "
                           f"cores, {run.cfg.class_weighting} class weighting; test mIoU "
                           f"{metrics['test_miou']:.3f} on "
                           f"{metrics['test_images']} test scenes{adjusted}"}, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


def _init_chain(run_dir: Path) -> tuple[list[tuple[int, int, float]], str]:
    """``(epochs, training scenes, train seconds)`` of ``run_dir`` and of the runs it continued
    (``--init`` of an earlier run's weights), first run first, and where the first started."""
    stages, origin = [], "random weights"
    while run_dir is not None:
        cfg = json.loads((run_dir / "config.json").read_text())
        history = [json.loads(line)
                   for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        stages.append((len(history), cfg["train_subset"],
                       sum(h.get("train_time_s", 0.0) for h in history)))
        init, run_dir = cfg.get("init"), None
        if init:
            folder = Path(init) if Path(init).is_dir() else Path(init).parent
            if (folder / "metrics.jsonl").is_file():
                run_dir = folder
            else:
                origin = Path(init).name
    return stages[::-1], origin


def memory(args: argparse.Namespace) -> list[dict]:
    import torch

    from modernvision.analysis import summarize
    from modernvision.layers import padding_tap_fraction
    from modernvision.models import create

    rows = []
    size = args.image_size
    for os_ in (32, 16, 8):
        with torch.no_grad():
            model = create("deeplabv3_resnet18", num_classes=23, output_stride=os_).eval()
            s = summarize(model, f"3x{size}x{size}")
        backbone = sum(r.activation_bytes for r in s.rows if r.module.startswith("backbone"))
        last = [r for r in s.rows if r.module.startswith("backbone.layer4")][-1]
        rows.append({"output_stride": os_, "input": size, "map": -(-size // os_),
                     "activation_MiB": round(s.total_activation_bytes / 2**20, 2),
                     "backbone_activation_MiB": round(backbone / 2**20, 2),
                     "GMACs": round(s.total_macs / 1e9, 3),
                     "c5_receptive_field": last.receptive_field})
    for side in sorted({-(-size // 8), -(-size // 16), 33, 65}):
        rows.append({"map": side, **{f"rate_{r}": round(padding_tap_fraction(side, dilation=r), 3)
                                     for r in (6, 12, 18, 24, 36)}})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="/work/data/scenes")
    p.add_argument("--models", default="", help=f"comma-separated of {', '.join(MODELS)}")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--train-subset", type=int, default=600)
    p.add_argument("--eval-subset", type=int, default=None, help="default: the whole split")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=None, help="default: the model's in MODELS")
    p.add_argument("--runs", default="/tmp/seg_bench_runs")
    p.add_argument("--init", default=None,
                   help="a run folder or weights file of our own `train` to start from (e.g. an "
                        "earlier run's model_final.pt, to continue it with a fresh schedule)")
    p.add_argument("--class-weighting", default="none", choices=("none", "median_frequency"))
    p.add_argument("--memory", action="store_true")
    p.add_argument("--out", default="bench/segmentation_results.jsonl")
    p.add_argument("--asset", type=Path, default=None, metavar="RUN_DIR",
                   help="write RUN_DIR's weights as the demo's asset (--asset-out) and exit")
    p.add_argument("--asset-out", type=Path,
                   default=Path("modernvision/assets/semantic_fpn_mobilenet_v2_050_scenes.pt"))
    p.add_argument("--asset-tau", type=float, default=0.0,
                   help="ship the logit adjustment -tau * log(class weight) (default 0: none)")
    args = p.parse_args()
    if args.asset is not None:
        asset(args.asset, args.asset_out, args.asset_tau)
        return
    def emit(row: dict) -> None:  # written at once, so a run cut short keeps what it did
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")

    if args.memory:
        for row in memory(args):
            emit(row)
    for key in [k for k in args.models.split(",") if k]:
        start = time.perf_counter()
        row = train_one(key, args)
        row["wall_seconds"] = round(time.perf_counter() - start, 1)
        emit(row)

if __name__ == "__main__":
    main()
