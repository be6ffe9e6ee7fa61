"""R-CNN vs Fast R-CNN vs Faster R-CNN on the held-out scenes: AP and where the time goes.

The course's claims, measured: R-CNN is slow because its CNN runs once per proposal; Fast
R-CNN shares the convolutions, and its time is then dominated by selective search; Faster
R-CNN removes selective search (its RPN proposes from the shared features).

Stages, each short enough for one turn of the shared CPU lock (results and checkpoints go to
``--work``, default ``bench/.cache/detection_rcnn``, not in git):

* ``proposals``: selective search ("fast", top 2,000) of the training and test subsets, once,
  into :func:`~modernvision.classic.proposal_cache.dataset_proposals` files (timed).
* ``train [--model M]``: ``--budget-s`` seconds of steps of 2 images each (AdamW, lr 1e-3,
  weight decay 1e-4, warm-up over 10 % of the budget then cosine, gradient norm clipped at
  10): the same CPU time for every model; proposals from the cached files.
* ``eval``: every trained model on the same ``--test`` held-out scenes, one after the other in
  one process: COCO AP / AP50 (``CocoEvaluator``, the detection job's) and seconds per image
  split into proposals (selective search recomputed for every image, not cached; Faster R-CNN:
  its RPN), CNN (R-CNN: warping + CNN over all proposals; the others: the backbone once) and
  heads (the rest: RoI pooling, FC6/FC7, the two outputs, decoding and NMS). Also timed: R-CNN
  with a ResNet-18 (the others' backbone) on a few images, untrained, and torchvision's
  ``roi_pool`` on Fast R-CNN's RoIs (a speed reference for our op).

* ``svm``: the paper's class SVMs (:func:`~modernvision.models.detection.rcnn.fit_class_svms`)
  fitted on the trained ``rcnn_compact``'s fc7 over the first ``--svm-train`` training scenes
  (their cached proposals plus their ground-truth boxes), then softmax and SVM scoring compared
  on the same ``--test`` held-out scenes with the same proposals (cached); the box
  corrections are the same in both.

Writes ``--work/results.json`` (``svm.json`` for ``svm``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from modernvision.classic.proposal_cache import ProposalSettings, dataset_proposals
from modernvision.data import scene_instances
from modernvision.data.formats.coco import coco_to_dict
from modernvision.data.formats.dataset import InstanceDataset
from modernvision.engine.evaluation import CocoEvaluator
from modernvision.models import create
from modernvision.models.detection._proposals import ProposalDetector

MODELS = {
    "rcnn_compact": {},
    "fast_rcnn_resnet18_c4": {},
    "fasterrcnn_resnet18_c4": {"box_batch_size_per_image": 64, "min_size": 256,
                               "box_nms_thresh": 0.3},
}
SETTINGS = ProposalSettings(mode="fast", top=2000)


def _subset(root: Path, split: str, n: int) -> InstanceDataset:
    data = scene_instances(root, split)
    records = replace(data.records, images=data.records.images[:n])
    return InstanceDataset(records, data.image_dir)


def _proposals(args, split: str, n: int) -> dict[int, torch.Tensor]:
    data = _subset(args.scenes, split, n)
    return dataset_proposals(data, settings=SETTINGS,
                             cache_file=args.work / f"{split}-{n}-proposals.npz", log=print)


def _sample(data: InstanceDataset, i: int) -> tuple[torch.Tensor, dict]:
    image, target = data[i]
    image = image.as_subclass(torch.Tensor).float() / 255
    return image, {"boxes": target["boxes"].as_subclass(torch.Tensor),
                   "labels": target["labels"], "image_id": target["image_id"]}


def _num_classes(data: InstanceDataset) -> int:
    return max(c.id for c in data.records.categories if c.isthing) + 1


def stage_proposals(args) -> None:
    for split, n in (("train", args.train), ("test", args.test)):
        t0 = time.perf_counter()
        props = _proposals(args, split, n)
        sizes = sorted(len(p) for p in props.values())
        print(f"{split}: {len(props)} images, median {sizes[len(sizes) // 2]} proposals, "
              f"{time.perf_counter() - t0:.1f} s")


def stage_train(args) -> None:
    for name in [args.model] if args.model else list(MODELS):
        train_one(args, name)


def train_one(args, name: str) -> None:
    """Train ``name`` for ``--budget-s`` seconds of wall time (the same for every model): the
    learning rate warms up over the first 10 % of the budget, then follows a cosine of the
    elapsed fraction of it."""
    torch.manual_seed(0)
    data = _subset(args.scenes, "train", args.train)
    model = create(name, num_classes=_num_classes(data), **MODELS[name])
    external = isinstance(model, ProposalDetector)  # R-CNN / Fast R-CNN: cached proposals
    props = _proposals(args, "train", args.train) if external else {}
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    budget = args.budget_s

    def lr_factor(elapsed: float) -> float:
        f = min(elapsed / budget, 1.0)
        return f / 0.1 if f < 0.1 else 0.5 * (1 + math.cos(math.pi * (f - 0.1) / 0.9))

    g = torch.Generator().manual_seed(0)
    order: list[int] = []
    losses, t0, step = [], time.perf_counter(), 0
    while time.perf_counter() - t0 < budget:
        for group in opt.param_groups:
            group["lr"] = 1e-3 * max(lr_factor(time.perf_counter() - t0), 1e-3)
        if len(order) < 2:
            order += torch.randperm(len(data), generator=g).tolist()
        batch = [_sample(data, order.pop()) for _ in range(2)]
        images = [b[0] for b in batch]
        targets = [b[1] for b in batch]
        kwargs = {}
        if external:
            kwargs["proposals"] = [props[int(t["image_id"])] for t in targets]
        loss = sum(model(images, targets, **kwargs).values())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        losses.append(float(loss.detach()))
        if step % 25 == 0:
            recent = losses[-25:]
            print(f"{name} step {step}: loss {sum(recent) / len(recent):.3f}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        step += 1
    seconds = time.perf_counter() - t0
    k = max(1, min(20, len(losses) // 4))
    torch.save({"state_dict": model.state_dict(), "steps": step, "seconds": seconds,
                "first_loss": sum(losses[:k]) / k, "last_loss": sum(losses[-k:]) / k,
                "train_images": len(data)}, args.work / f"{name}.pt")
    print(f"{name}: {step} steps in {seconds:.0f} s, loss {sum(losses[:k]) / k:.3f} -> "
          f"{sum(losses[-k:]) / k:.3f}", flush=True)


class _Timer:
    """Wall time spent inside some modules' forward (pre/post hooks)."""

    def __init__(self, modules) -> None:
        self.seconds = 0.0
        self._start = None
        for m in modules:
            m.register_forward_pre_hook(self._pre)
            m.register_forward_hook(self._post)

    def _pre(self, *_):
        self._start = time.perf_counter()

    def _post(self, *_):
        self.seconds += time.perf_counter() - self._start


def _parts(name: str, model):
    """(proposal modules, CNN modules) of a model, for the timers."""
    if name.startswith("rcnn"):  # the warp and the CNN; its FC6/FC7 are subtracted below
        return [], [model.roi_heads.box_roi_pool, model.roi_heads.box_head]
    if name.startswith("fast_rcnn"):
        return [], [model.backbone]
    return [model.rpn], [model.backbone]


def _time_model(name: str, model, data: InstanceDataset, n: int, evaluator=None) -> dict:
    """Evaluate ``model`` on the first ``n`` images; seconds per image by part."""
    model.eval()
    external = isinstance(model, ProposalDetector)
    prop_modules, cnn_modules = _parts(name, model)
    prop_t, cnn_t = _Timer(prop_modules), _Timer(cnn_modules)
    pool_t = _Timer([model.roi_heads.box_roi_pool]) if name.startswith("fast_rcnn") else None
    fc_t = _Timer([model.roi_heads.box_head.fc] if name.startswith("rcnn") else [])
    ss_seconds = total = 0.0
    counts = []
    with torch.no_grad():
        for i in range(n):
            image, target = _sample(data, i)
            t0 = time.perf_counter()
            kwargs = {}
            if external:  # selective search afresh for every image: its true cost
                s0 = time.perf_counter()
                kwargs["proposals"] = [SETTINGS.compute(image)]
                ss_seconds += time.perf_counter() - s0
                counts.append(len(kwargs["proposals"][0]))
            (det,) = model([image], **kwargs)
            total += time.perf_counter() - t0
            if evaluator is not None:
                evaluator.update([det], [target])
    proposals = ss_seconds if external else prop_t.seconds
    cnn = cnn_t.seconds - fc_t.seconds
    out = {"images": n, "total_s": total / n, "proposals_s": proposals / n,
           "cnn_s": cnn / n, "heads_s": (total - proposals - cnn) / n}
    if counts:
        out["median_proposals"] = sorted(counts)[len(counts) // 2]
    if pool_t is not None:
        out["roi_pool_s"] = pool_t.seconds / n
    return out


def stage_eval(args) -> None:
    torch.manual_seed(0)
    data = _subset(args.scenes, "test", args.test)
    gt = coco_to_dict(data.records, things_only=True)
    results = {"load_before": Path("/proc/loadavg").read_text().split()[:3],
               "machine": platform.processor() or platform.machine(),
               "threads": torch.get_num_threads(), "test_images": args.test, "models": {}}
    for name, kwargs in MODELS.items():
        model = create(name, num_classes=_num_classes(data), **kwargs)
        if args.untrained:  # timing only: the work per image does not depend on the weights
            row = _time_model(name, model, data, args.test)
            results["models"][f"{name} (untrained, timing only)"] = row
            print(name, json.dumps(row), flush=True)
            continue
        ckpt = torch.load(args.work / f"{name}.pt", weights_only=True)
        model.load_state_dict(ckpt["state_dict"])
        evaluator = CocoEvaluator(gt)
        row = _time_model(name, model, data, args.test, evaluator)
        metrics = evaluator.compute()
        row |= {"AP": metrics["AP"], "AP50": metrics["AP50"], "AR100": metrics.get("AR100"),
                "train_steps": ckpt["steps"],
                "train_s": ckpt["seconds"], "train_images": ckpt["train_images"],
                "loss_first": ckpt["first_loss"], "loss_last": ckpt["last_loss"]}
        results["models"][name] = row
        print(name, json.dumps(row), flush=True)
        if name.startswith("fast_rcnn"):
            results["torchvision_roi_pool_s"] = _torchvision_roi_pool(model, data, args.test)
    # R-CNN with the others' backbone: timing only (untrained), a few images.
    model = create("rcnn_resnet18", num_classes=_num_classes(data))
    row = _time_model("rcnn_resnet18", model, data, args.timing_only)
    results["models"]["rcnn_resnet18 (untrained, timing only)"] = row
    print("rcnn_resnet18", json.dumps(row))
    results["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    out = args.work / ("timing.json" if args.untrained else "results.json")
    out.write_text(json.dumps(results, indent=1))
    print(_table(results))


def stage_svm(args) -> None:
    from modernvision.models.detection.rcnn import SVMSettings, fit_class_svms

    torch.manual_seed(0)
    train = _subset(args.scenes, "train", args.svm_train)
    test = _subset(args.scenes, "test", args.test)
    train_props = _proposals(args, "train", args.train)  # the training subset's cached file
    test_props = _proposals(args, "test", args.test)
    model = create("rcnn_compact", num_classes=_num_classes(train))
    ckpt = torch.load(args.work / "rcnn_compact.pt", weights_only=True)
    model.load_state_dict(ckpt["state_dict"])
    gt = coco_to_dict(test.records, things_only=True)

    def evaluate() -> dict:
        model.eval()
        evaluator = CocoEvaluator(gt)
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(len(test)):
                image, target = _sample(test, i)
                (det,) = model([image], proposals=[test_props[int(target["image_id"])]])
                evaluator.update([det], [target])
        m = evaluator.compute()
        return {"AP": m["AP"], "AP50": m["AP50"], "AR100": m.get("AR100"),
                "s_per_image": (time.perf_counter() - t0) / len(test)}

    results = {"load_before": Path("/proc/loadavg").read_text().split()[:3],
               "threads": torch.get_num_threads(), "test_images": len(test),
               "svm_train_images": len(train), "softmax": evaluate()}
    print("softmax", json.dumps(results["softmax"]), flush=True)
    for i in range(len(train)):  # the training scenes' cached proposals
        image, target = _sample(train, i)
        model.proposal_provider.add(image, train_props[int(target["image_id"])])
    t0 = time.perf_counter()
    report = fit_class_svms(model, (_sample(train, i) for i in range(len(train))),
                            SVMSettings())
    results["svm_fit_s"] = time.perf_counter() - t0
    results["svm_report"] = report
    results["svm"] = evaluate()
    print("svm", json.dumps(results["svm"]), f"fit {results['svm_fit_s']:.0f} s", flush=True)
    results["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    (args.work / "svm.json").write_text(json.dumps(results, indent=1))


def _torchvision_roi_pool(model, data: InstanceDataset, n: int) -> float:
    import torchvision

    seconds = 0.0
    with torch.no_grad():
        for i in range(n):
            image, _ = _sample(data, i)
            boxes = SETTINGS.compute(image)
            batch = model.transform([image])[0]
            features = model.backbone(batch.tensors)["c4"]
            scale = batch.image_sizes[0][0] / image.shape[-2]
            t0 = time.perf_counter()
            torchvision.ops.roi_pool(features, [boxes * scale], 7, 1 / 16)
            seconds += time.perf_counter() - t0
    return seconds / n


def _table(results: dict) -> str:
    lines = ["| model | AP50 | AP | s / image | proposals | CNN | heads | train steps (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results["models"].items():
        ap = f"{r['AP50']:.3f} | {r['AP']:.3f}" if "AP" in r else "- | -"
        train = f"{r['train_steps']} ({r['train_s']:.0f})" if "train_steps" in r else "-"
        lines.append(f"| {name} | {ap} | {r['total_s']:.3f} | {r['proposals_s']:.3f} | "
                     f"{r['cnn_s']:.3f} | {r['heads_s']:.3f} | {train} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=["proposals", "train", "eval", "svm"])
    p.add_argument("--model", choices=sorted(MODELS))
    p.add_argument("--scenes", type=Path, default=Path("/work/data/scenes"))
    p.add_argument("--work", type=Path, default=Path("bench/.cache/detection_rcnn"))
    p.add_argument("--train", type=int, default=300, help="training scenes (the first N)")
    p.add_argument("--test", type=int, default=25, help="held-out test scenes (the first N)")
    p.add_argument("--budget-s", type=float, default=120.0,
                   help="seconds of training per model (steps of 2 images)")
    p.add_argument("--timing-only", type=int, default=3,
                   help="images for the untrained rcnn_resnet18 timing")
    p.add_argument("--svm-train", type=int, default=100,
                   help="svm: training scenes whose fc7 features fit the SVMs (the first N)")
    p.add_argument("--untrained", action="store_true",
                   help="eval: time untrained models (no checkpoints, no AP)")
    args = p.parse_args()
    torch.set_num_threads(2)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage == "proposals":
        stage_proposals(args)
    elif args.stage == "train":
        stage_train(args)
    elif args.stage == "svm":
        stage_svm(args)
    else:
        stage_eval(args)


if __name__ == "__main__":
    main()
