"""Instance and panoptic segmentation on the shared scenes: Mask R-CNN (RoIAlign vs RoIPool in
the mask branch) and Panoptic FPN, trained from scratch on this CPU, scored on held-out scenes.

Uses the library's own parts end to end -- the instance / panoptic jobs' data (scenes read
through the COCO and semantic readers), models, evaluators (COCO box + mask AP; PQ / SQ / RQ
against the COCO panoptic ground truth) and the engine's ``Trainer`` -- but trains without
per-epoch validation and scores the first ``--test`` scenes of the test split once at the end,
timing each image (batch 1, forward + paste + merge). ``modernvision train --model M --data
scenes:DIR ...`` runs the same model through the CLI (with validation every epoch).

Usage (heavy: run under the shared CPU lock, 2 threads)::

    flock /tmp/mv-cpu.lock env OMP_NUM_THREADS=2 python bench/segmentation_instance.py \
        --model maskrcnn_resnet18_fpn --mask-roi align --train 400 --epochs 4 --test 100
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from modernvision.engine.checkpoint import atomic_save
from modernvision.engine.jobs.base import job_for_model
from modernvision.engine.jobs.configs import InstanceConfig, PanopticConfig
from modernvision.engine.trainer import Trainer
from modernvision.models.pretrained import load_own_weights
from modernvision.models.registry import get_entry
from modernvision.optim import build_optimizer, build_scheduler


def bench_model_kwargs(*, fpn_channels: int = 64, mask_roi: str = "align",
                       box_batch: int = 128) -> dict:
    """The model keywords of these runs (the defaults are the command-line defaults); the saved
    weights do not carry them, so ``panoptic_merge.py`` rebuilds the model from this too."""
    return dict(fpn_channels=fpn_channels, mask_roi=mask_roi, box_batch_size_per_image=box_batch,
                rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
                rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_test=200,
                box_detections_per_img=50)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="maskrcnn_resnet18_fpn", help="default: %(default)s")
    p.add_argument("--data", default="/work/data/scenes", help="scenes folder")
    p.add_argument("--mask-roi", default="align", help="align | pool (default align)")
    p.add_argument("--train", type=int, default=400, help="training scenes (default 400)")
    p.add_argument("--test", type=int, default=100, help="test scenes scored (default 100)")
    p.add_argument("--epochs", type=int, default=4,
                   help="epochs (default 4); with --budget-s, the most epochs")
    p.add_argument("--budget-s", type=float, default=None,
                   help="training time budget: 6 steps are timed first and the epochs are as "
                        "many as fit (at least 1, at most --epochs)")
    p.add_argument("--batch-size", type=int, default=4, help="default 4")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW lr (default 1e-3)")
    p.add_argument("--fpn-channels", type=int, default=64, help="default 64")
    p.add_argument("--box-batch", type=int, default=128,
                   help="RoIs sampled per image (default 128)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--seed", type=int, default=0, help="default 0")
    p.add_argument("--init", default=None,
                   help="start from a run / weights file of our own train, by name and shape "
                        "(e.g. the scenes detector modernvision/assets/"
                        "fasterrcnn_mobilenet_v2_050_fpn_scenes.pt); default: from scratch")
    p.add_argument("--warmup-epochs", type=float, default=0.5, help="default 0.5")
    p.add_argument("--save", default=None, help="save the trained weights here")
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    task = get_entry(args.model).task
    config_cls = PanopticConfig if task == "panoptic" else InstanceConfig
    model_kwargs = bench_model_kwargs(fpn_channels=args.fpn_channels, mask_roi=args.mask_roi,
                                      box_batch=args.box_batch)
    cfg = config_cls(model=args.model, data=f"scenes:{args.data}", train_subset=args.train,
                     eval_subset=args.test, epochs=args.epochs, batch_size=args.batch_size,
                     lr=args.lr, optimizer="adamw", weight_decay=1e-4,
                     warmup_epochs=args.warmup_epochs, grad_clip=10.0, device="cpu",
                     seed=args.seed, model_kwargs=model_kwargs)
    cfg.validate()
    job = job_for_model(cfg.model)
    torch.manual_seed(cfg.seed)
    data = job.build_data(cfg)
    model = job.build_model(cfg, data.meta)
    init_report = None
    if args.init is not None:
        init_report = load_own_weights(model, args.init)
        print(f"--init {args.init}: {len(init_report['loaded'])} tensors loaded, "
              f"{len(init_report['not_in_source'])} new", flush=True)
    epochs = cfg.epochs
    step_seconds = None
    if args.budget_s is not None:
        step_seconds = _time_steps(copy.deepcopy(model), data.train, job.collate_fn(),
                                   cfg.batch_size)
        steps_per_epoch = -(-len(data.train) // cfg.batch_size)
        epochs = max(1, min(cfg.epochs, int(args.budget_s / (step_seconds * steps_per_epoch))))
        print(f"{step_seconds:.2f} s/step -> {epochs} epochs", flush=True)
        cfg.epochs = epochs
    optimizer = build_optimizer("adamw", [q for q in model.parameters() if q.requires_grad],
                                lr=cfg.lr, weight_decay=cfg.weight_decay)

    def scheduler(opt, steps_per_epoch):
        return build_scheduler("cosine", opt, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
                               warmup_epochs=cfg.warmup_epochs)

    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, optimizer, data.train, epochs=cfg.epochs,
                          batch_size=cfg.batch_size, scheduler=scheduler, run_dir=run_dir,
                          device="cpu", grad_clip_norm=cfg.grad_clip, seed=cfg.seed,
                          collate_fn=job.collate_fn(), progress=False)
        start = time.perf_counter()
        history = trainer.fit()
        train_seconds = time.perf_counter() - start
    if args.save:
        atomic_save({"model": model.state_dict()}, args.save)

    model.eval()
    evaluator = job.build_evaluator(cfg, data.meta, data.test)
    evaluator.reset()
    seconds = []
    with torch.no_grad():
        for i in range(len(data.test)):
            image, target = data.test[i]
            t0 = time.perf_counter()
            pred = model([image])
            seconds.append(time.perf_counter() - t0)
            evaluator.update(pred, [target])
    metrics = evaluator.compute()
    keep = ("AP", "AP50", "mask_AP", "mask_AP50", "mask_AP75", "PQ", "SQ", "RQ", "PQ_things",
            "SQ_things", "RQ_things", "PQ_stuff", "SQ_stuff", "RQ_stuff")
    result = {"model": args.model, "mask_roi": args.mask_roi, "init": args.init,
              "init_tensors_loaded": init_report and len(init_report["loaded"]),
              "lr": args.lr, "epoch_losses": [round(float(h["train_loss"]), 4)
                                              for h in history], "train_scenes": len(data.train),
              "test_scenes": len(data.test), "epochs": epochs,
              "calibrated_s_per_step": step_seconds and round(step_seconds, 3),
              "train_seconds": round(train_seconds, 1),
              "final_train_loss": round(float(history[-1]["train_loss"]), 4),
              "s_per_image": round(statistics.median(seconds), 4)}
    result |= {k: round(float(metrics[k]), 4) for k in keep if k in metrics}
    print(json.dumps(result), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


def _time_steps(model: torch.nn.Module, dataset, collate, batch_size: int,
                steps: int = 6) -> float:
    """Median seconds of a training step (loading, forward, backward, AdamW) on a throwaway
    copy of the model."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for k in range(steps):
        t0 = time.perf_counter()  # the data loading counts too (PNG and RLE decoding)
        images, targets = collate([dataset[(k * batch_size + j) % len(dataset)]
                                   for j in range(batch_size)])
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


if __name__ == "__main__":
    main()
