"""``modernvision nas``: architecture search with an RNN controller (or random search)."""

from __future__ import annotations

import argparse

from modernvision.cli._types import non_negative_int, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nas", help="neural architecture search: RNN controller + REINFORCE, or random",
        description="Zoph & Le 2017: a controller LSTM emits per-layer filters, kernel size "
                    "and skip connections; each child trains briefly and its validation "
                    "accuracy is the reward. Writes DIR/children.jsonl (every child's "
                    "architecture and score) and DIR/best.json; rebuild the best with "
                    "create('nas_cnn', arch=...) or `modernvision train --model nas_cnn "
                    "--model-arg arch=...`.")
    p.add_argument("--budget", type=positive_int, required=True,
                   help="number of child networks to train")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--search", default="controller", choices=["controller", "random"],
                   help="controller (REINFORCE) or random search (default: %(default)s)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the search and of every child (default: %(default)s)")
    p.add_argument("--data", default="fashion-mnist",
                   help="a grey built-in data set (default: %(default)s)")
    p.add_argument("--train-images", type=positive_int, default=2000,
                   help="training images per child (default: %(default)s)")
    p.add_argument("--val-images", type=positive_int, default=1000,
                   help="validation images scoring each child (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=2,
                   help="epochs per child (default: %(default)s)")
    p.add_argument("--layers", type=positive_int, default=4,
                   help="layers of every child (default: %(default)s)")
    p.set_defaults(func=_nas)


def _nas(args: argparse.Namespace) -> int:
    from modernvision.data import DATASETS
    from modernvision.nas import SearchSpace, search

    if args.data not in DATASETS:
        from modernvision._errors import unknown_name

        raise unknown_name("dataset", args.data, DATASETS)
    result = search(args.budget, args.out, method=args.search, seed=args.seed, data=args.data,
                    train_images=args.train_images, val_images=args.val_images,
                    epochs=args.epochs, space=SearchSpace(num_layers=args.layers))
    best = result.best
    print(f"best of {args.budget} children: #{best['index'] + 1}, val acc "
          f"{best['val_acc']:.4f}; every child in {args.out}/children.jsonl, the best in "
          f"{args.out}/best.json")
    return 0
