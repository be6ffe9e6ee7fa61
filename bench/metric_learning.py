"""Metric learning on unseen classes: which loss makes embeddings that retrieve new identities?

Classes stand in for identities (no labelled face identities exist offline): each run trains
``embedding_net`` (the compact CNN, headless, + a 256-64 projection, L2-normalised) on classes
0-4 through the project's own job (``modernvision.engine.jobs.train`` with an
``EmbeddingConfig``), then its test step embeds the images of classes 5-9 — never seen in
training — and scores leave-one-out retrieval among them: Recall@1, Recall@5, MAP@R.

Methods: contrastive (all pairs of each batch, positive and negative means added), triplet with
semi-hard / hard / all / batch-hard / random triplets, and cross-entropy over the 5 training
classes (its penultimate, pre-classifier features, L2-normalised, as the embedding).

    flock /tmp/mv-cpu.lock env OMP_NUM_THREADS=2 python bench/metric_learning.py \
        --data fashion-mnist --epochs 2 --train-subset 15000 \
        --out bench/results/metric_learning.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from modernvision.engine.jobs import train
from modernvision.engine.jobs.configs import EmbeddingConfig

METHODS = {
    "contrastive": {"loss": "contrastive"},
    "triplet-semihard": {"loss": "triplet", "mining": "semihard"},
    "triplet-hard": {"loss": "triplet", "mining": "hard"},
    "triplet-all": {"loss": "triplet", "mining": "all"},
    "triplet-batch_hard": {"loss": "triplet", "mining": "batch_hard"},
    "triplet-random": {"loss": "triplet", "mining": "random"},
    "cross_entropy": {"loss": "cross_entropy"},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32, help="P groups of --k images")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train-subset", type=int, default=None,
                   help="the first N training images of classes 0-4 (default: all)")
    p.add_argument("--augment", action="store_true")
    p.add_argument("--test-split", default="test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=Path, default=Path("/tmp/metric_bench_runs"))
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    previous = json.loads(args.out.read_text()) if args.out and args.out.is_file() else {}
    rows = previous.get("rows", [])
    print(f"torch threads {torch.get_num_threads()}", flush=True)
    for name in args.methods:
        cfg = EmbeddingConfig(model="embedding_net", data=args.data, epochs=args.epochs,
                              batch_size=args.batch_size, k=args.k, lr=args.lr,
                              classes="0-4", augment=args.augment, test_split=args.test_split,
                              seed=args.seed, device="cpu", train_subset=args.train_subset,
                              run_dir=str(args.runs / f"{args.data}-{name}"),
                              **METHODS[name])
        t0 = time.perf_counter()
        result = train(cfg, overwrite=True, progress=False, log=lambda _m: None)
        row = {"data": args.data, "method": name, "epochs": args.epochs,
               "train_subset": args.train_subset, "lr": args.lr,
               "recall@1": result["test_recall@1"], "recall@5": result["test_recall@5"],
               "map_at_r": result["test_map_at_r"], "r_precision": result["test_r_precision"],
               "test_images": result["test_images"], "train_s": result["train_seconds"],
               "total_s": time.perf_counter() - t0}
        print(json.dumps(row), flush=True)
        rows = [r for r in rows if (r["data"], r["method"]) != (args.data, name)] + [row]
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
