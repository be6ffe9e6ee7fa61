"""NAS bench (results in bench/nas.md): controller (REINFORCE) vs random search, same budget.

For each method and seed, runs exactly what ``modernvision nas --budget N --out DIR --search
METHOD --seed S`` runs, then prints the best child accuracy after k children and the wall
time per child. Run under the shared CPU lock:

    flock /tmp/mv-cpu.lock env OMP_NUM_THREADS=2 PYTHONPATH=. python bench/nas.py --budget 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from modernvision.nas import search


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--budget", type=int, default=15)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--train-images", type=int, default=2000)
    p.add_argument("--val-images", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="mv-nas-"))
    for seed in [int(s) for s in args.seeds.split(",")]:
        for method in ("controller", "random"):
            out = tmp / f"{method}-{seed}"
            result = search(args.budget, out, method=method, seed=seed,
                            train_images=args.train_images, val_images=args.val_images,
                            epochs=args.epochs, log=lambda _m: None)
            best = [c["best_so_far"] for c in result.children]
            accs = [c["val_acc"] for c in result.children]
            secs = [c["seconds"] for c in result.children]
            half = len(accs) // 2
            print(json.dumps({
                "method": method, "seed": seed, "children": len(accs),
                "best_after": {k: round(best[k - 1], 4) for k in (1, 5, 10, 15, 20, 30, 40)
                               if k <= len(best)},
                "mean_acc_first_half": round(statistics.mean(accs[:half]), 4),
                "mean_acc_second_half": round(statistics.mean(accs[half:]), 4),
                "median_seconds_per_child": round(statistics.median(secs), 2),
                "total_seconds": round(sum(secs), 1),
                "best_arch": result.best["arch"]}), flush=True)


if __name__ == "__main__":
    main()
