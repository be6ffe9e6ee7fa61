"""``modernvision train``, ``eval`` and ``predict``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from modernvision.engine.jobs import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a classifier on a named data set",
                       description="Train a registered model on one of the offline data sets. "
                                   "Writes a run folder: config.json, metrics.jsonl, checkpoints, "
                                   "plots. Runs under torchrun for several processes.")
    p.add_argument("--model", help=f"registered model name (default {d.model})")
    p.add_argument("--data", help=f"data set name (default {d.data})")
    p.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    p.add_argument("--batch-size", type=int, help=f"global batch size (default {d.batch_size})")
    p.add_argument("--lr", type=float, help=f"default {d.lr}")
    p.add_argument("--optimizer", help="sgd | momentum | nesterov | rmsprop | adam | adamw "
                                       f"(default {d.optimizer})")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--scheduler", help=f"none | step | cosine (default {d.scheduler})")
    p.add_argument("--warmup-epochs", type=int)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False)
    p.add_argument("--image-size", type=int, help="resize to this side (default: native)")
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--patience", type=int, help="early stopping on val_acc after N bad epochs")
    p.add_argument("--precise-bn", type=int, metavar="N",
                   help="re-estimate batch-norm statistics on N batches before each validation")
    p.add_argument("--grad-clip", type=float, help="clip the global gradient norm")
    p.add_argument("--seed", type=int)
    p.add_argument("--num-workers", type=int)
    p.add_argument("--train-subset", type=int, help="only the first N training images")
    p.add_argument("--eval-subset", type=int, help="validate and test on the first N images")
    p.add_argument("--weights", help="'torchvision' or a path to a torchvision state dict")
    p.add_argument("--transfer", choices=("full", "finetune", "freeze"))
    p.add_argument("--backbone-lr-mult", type=float)
    p.add_argument("--device")
    p.add_argument("--run-dir", help="the run folder (default runs/<model>-<data>)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a run's weights on a split")
    p.add_argument("run", help="run folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.set_defaults(func=_eval)

    p = sub.add_parser("predict", help="classify image files with a run's model")
    p.add_argument("run", help="run folder")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--topk", type=int, default=3)
    p.set_defaults(func=_predict)


def _train(args: argparse.Namespace) -> int:
    from modernvision.engine.jobs import TrainConfig, train

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    if args.resume:
        run = Path(args.resume)
        cfg_path = run / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"--resume {run}: not a run folder (no config.json)")
        saved = json.loads(cfg_path.read_text())
        cfg = TrainConfig.from_dict({**saved, **given, "run_dir": str(run)})
    else:
        cfg = TrainConfig(**given)
        if "run_dir" not in given:
            cfg.run_dir = f"runs/{cfg.model}-{cfg.data}"
    result = train(cfg, resume=bool(args.resume), progress=args.progress)
    print(f"test accuracy {result['test_acc']:.4f}, test loss {result['test_loss']:.4f} "
          f"({result['epochs_run']} epochs, {result['train_seconds']:.0f} s); run folder "
          f"{cfg.run_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from modernvision.engine.jobs import evaluate_run

    out = evaluate_run(args.run, split=args.split)
    out.pop("confusion")
    print(json.dumps(out, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from modernvision.engine.jobs import predict_images

    for r in predict_images(args.run, args.images, topk=args.topk):
        tops = ", ".join(f"{c} {p:.3f}" for c, p in r["top"])
        print(f"{r['image']}: {tops}")
    return 0
