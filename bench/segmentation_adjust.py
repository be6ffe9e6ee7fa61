"""Post-hoc logit adjustment of a class-weighted semantic run, chosen on val, scored on test.

A cross entropy weighted by ``w_c`` (median-frequency weights here) is minimised by a model
whose softmax is proportional to ``w_c p(c | x)``: the weights raise the rare (thing) classes
at every pixel, which is what over-predicted things look like. Subtracting ``tau * log w_c``
from the logits undoes part of that (all of it at ``tau = 1``, the "logit adjustment" of Menon
et al. 2021, arXiv 2007.07314, applied after training). ``tau`` is chosen on the validation
scenes by mIoU; the test scenes are scored at every ``tau`` and the chosen one is reported.

Usage::

    python bench/segmentation_adjust.py --run /work/runs/semfpn_8k_c/semantic_fpn \
        --data /work/data/scenes8k --val 100 --test 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch


def score(model, dataset, log_w: torch.Tensor, taus: list[float]) -> dict[float, dict]:
    """The four scores of ``dataset`` at each ``tau`` (one forward pass per image)."""
    from modernvision.metrics.segmentation import SegmentationMetrics

    metrics = {t: SegmentationMetrics(model.num_classes, ignore_index=model.ignore_index)
               for t in taus}
    with torch.no_grad():
        for i in range(len(dataset)):
            image, target = dataset[i]
            logits = model(image[None])
            for t in taus:
                metrics[t].update((logits - t * log_w[:, None, None]).argmax(1), target[None])
    out = {}
    for t, m in metrics.items():
        scores = m.compute()
        out[t] = {k: round(float(scores[k]), 4) for k in ("pixel_acc", "mean_acc", "miou", "fwiou")}
        out[t]["iou"] = [round(float(v), 3) for v in scores["iou"]]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="a semantic run trained with class weights")
    p.add_argument("--data", default=None, help="scenes folder (default: the run's own)")
    p.add_argument("--val", type=int, default=100, help="val scenes that choose tau (default 100)")
    p.add_argument("--test", type=int, default=100, help="test scenes scored (default 100)")
    p.add_argument("--taus", default="0,0.25,0.5,0.75,1", help="default 0,0.25,0.5,0.75,1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench/segmentation_adjust_results.jsonl")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from modernvision._errors import UserError
    from modernvision.engine.jobs import load_run

    try:
        run = load_run(args.run)
    except UserError as exc:
        raise SystemExit(f"--run: {exc}") from None
    if run.model.class_weight is None:
        raise SystemExit(f"--run {args.run}: trained without class weights; nothing to adjust")
    log_w = run.model.class_weight.log()
    taus = [float(t) for t in args.taus.split(",")]
    start = time.perf_counter()
    rows = {}
    for split, n in (("val", args.val), ("test", args.test)):
        # The model holds its class weights already: no pass over the training maps.
        cfg = dataclasses.replace(run.cfg, eval_subset=n, class_weighting="none", **(
            {"data": f"scenes:{args.data}"} if args.data else {}))
        parts = run.job.build_data(cfg)
        rows[split] = score(run.model, getattr(parts, split), log_w, taus)
    chosen = max(taus, key=lambda t: (rows["val"][t]["miou"], -t))
    iou = {str(t): rows["test"][t].pop("iou") for t in taus}
    for t in taus:
        rows["val"][t].pop("iou")
    result = {"run": str(args.run), "val_images": args.val, "test_images": args.test,
              "taus": taus, "chosen_tau": chosen, "val": {str(t): rows["val"][t] for t in taus},
              "test": {str(t): rows["test"][t] for t in taus},
              "classes": run.meta["classes"],
              "test_iou_tau0": iou.get("0.0"), "test_iou_chosen": iou[str(chosen)],
              "test_miou_tau0": rows["test"][0.0]["miou"] if 0.0 in taus else None,
              "test_miou_chosen": rows["test"][chosen]["miou"],
              "seconds": round(time.perf_counter() - start, 1)}
    print(json.dumps(result, indent=1))
    with Path(args.out).open("a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
