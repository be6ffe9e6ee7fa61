"""Benchmark: our selective search against OpenCV's, recall of known boxes and time per image.

Data (all held out, none used to tune anything):
    * scenes: ``make_scenes(DIR, --scenes, seed=--seed, split="test")`` (Fashion-MNIST items and
      MNIST digits composited on brick/grass/gravel, 256x256, exact boxes), read back through
      ``read_coco`` as a user's data would be;
    * real photos with known boxes: scikit-image's astronaut with its face at x, y, w, h =
      177, 66, 95, 95 (OpenCV's frontal-face box) and imgaug 0.4.0's quokka with its annotated
      box (x1, y1, x2, y2 = 148, 50, 550, 642).

Methods: ours (``selective_search``, modes single / fast / quality, and the options beyond the
paper fast-level / fast-small) in this process, and
OpenCV's ``cv2.ximgproc.segmentation.createSelectiveSearchSegmentation`` (switchToSingleStrategy
/ switchToSelectiveSearchFast / switchToSelectiveSearchQuality, default arguments) in a
separate virtual environment with ``opencv-contrib-python-headless`` of the same OpenCV version
as the project's ``opencv-python-headless`` (created under ``.bench-envs/`` on first use; the two
packages cannot share an environment). Both run on one thread (``cv2.setNumThreads(1)``; ours is
single-threaded). Time is per image: setting the image, the strategies and ``process`` for
OpenCV; the whole ``selective_search`` call for ours (after one warm-up call that loads the numba
kernels). Scenes are run once per method (median over images); photos ``--repeats`` times
(median).

Two experiments on the scenes isolate where the two implementations differ: our fast mode with
OpenCV's thresholds (k = 150, 300, 450 instead of the paper's 50, 100), and our fast-mode
hierarchies ranked as OpenCV ranks them (RND x level in the merge tree, small regions first,
instead of the paper's RND x position from the top).

Recall at IoU t with N proposals: the fraction of ground-truth boxes whose best IoU with the
first N ranked proposals is >= t (all proposals when a method has fewer than N).

Run (under the shared CPU lock): ``flock /tmp/mv-cpu.lock python bench/proposals.py``
``[--scenes 100] [--repeats 3] [--out bench/results/proposals.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.ops import box_iou

from modernvision.classic.selective_search import (
    FAST,
    _hierarchies,
    rank_proposals,
    selective_search,
    to_rgb,
)
from modernvision.data import load_photo, make_scenes, quokka, read_coco

REPO = Path(__file__).resolve().parents[1]
ENV = REPO / ".bench-envs" / "opencv-contrib"
MODES = ("single", "fast", "quality")
#: our options beyond the paper: OpenCV's fast settings with its level ranking, and the cascade
OURS_EXTRA = ("fast-level", "fast-small")
NS = (50, 100, 200, 300, 500, 1000, 1500, 2000, 3000, None)
THRESHOLDS = (0.5, 0.7)


def opencv_python() -> Path:
    """The Python of the OpenCV-contrib venv, created (and filled) on first use."""
    python = ENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(ENV)], check=True)
        version = ".".join(cv2.__version__.split(".")[:3])
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        f"opencv-contrib-python-headless=={version}.*",
                        f"numpy=={np.__version__}"], check=True)
    return python


def run_opencv(paths: list[Path], repeats: int, workdir: Path) -> tuple[dict, str]:
    """OpenCV's three modes on every image: ``{"opencv/MODE": {"boxes": [...], "seconds":
    [...]}}`` and OpenCV-contrib's version."""
    job = workdir / "job.json"
    out = workdir / "opencv.npz"
    job.write_text(json.dumps({"images": [str(p) for p in paths], "modes": list(MODES),
                               "repeats": repeats, "threads": 1}))
    subprocess.run([str(opencv_python()), str(REPO / "bench" / "_opencv_selective_search.py"),
                    str(job), str(out)], check=True)
    with np.load(out) as data:
        runs = {f"opencv/{mode}": {
            "boxes": [data[f"boxes_{i}_{mode}"] for i in range(len(paths))],
            "seconds": [data[f"seconds_{i}_{mode}"] for i in range(len(paths))]}
            for mode in MODES}
        return runs, str(data["version"])


def level_ranking(image: np.ndarray) -> torch.Tensor:
    """Our fast-mode hierarchies (the paper's k = 50, 100) ranked as OpenCV ranks them: RND x
    level in the merge tree (``rank_proposals(..., ranking="level")``). An experiment."""
    return torch.from_numpy(rank_proposals(_hierarchies(to_rgb(image), FAST), seed=0,
                                           ranking="level"))


def run_ours(images: list[np.ndarray], repeats: int, *, variants: bool) -> dict:
    """Our modes (and, with ``variants``, the two experiments) on every image."""
    methods = {f"ours/{mode}": partial(selective_search, mode=mode)
               for mode in (*MODES, *OURS_EXTRA)}
    if variants:
        methods["ours/fast, OpenCV's k = 150, 300, 450"] = partial(
            selective_search, config=replace(FAST, ks=(150, 300, 450)))
        methods["ours/fast, OpenCV's ranking (RND x level)"] = level_ranking
    selective_search(images[0][:32, :32])  # load the numba kernels once
    runs = {}
    for name, method in methods.items():
        boxes, seconds = [], []
        for image in images:
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                result = method(image)
                times.append(time.perf_counter() - start)
            boxes.append(result.numpy())
            seconds.append(np.array(times))
        runs[name] = {"boxes": boxes, "seconds": seconds}
    return runs


def best_ious(truth: list[np.ndarray], boxes: list[np.ndarray], n: int | None) -> np.ndarray:
    """Best IoU of every ground-truth box with the first ``n`` proposals of its image."""
    out = []
    for gt, b in zip(truth, boxes):
        b = torch.from_numpy(b[:n])
        out.append(box_iou(torch.from_numpy(gt), b).max(dim=1).values.numpy() if len(b)
                   else np.zeros(len(gt)))
    return np.concatenate(out)


def first_rank(gt: np.ndarray, boxes: np.ndarray, t: float) -> int | None:
    """1-based rank of the first proposal with IoU >= t (None: none)."""
    iou = box_iou(torch.from_numpy(gt[None]), torch.from_numpy(boxes))[0].numpy()
    hits = np.nonzero(iou >= t)[0]
    return int(hits[0]) + 1 if len(hits) else None


def summarize(name: str, truth: list[np.ndarray], runs: dict) -> dict:
    """Recall curves, proposal counts and times of every method on one data set."""
    summary: dict = {}
    for method, run in runs.items():
        seconds = [float(np.median(t)) for t in run["seconds"]]
        recall = {}
        for n in NS:
            ious = best_ious(truth, run["boxes"], n)
            recall[str(n or "all")] = {str(t): float((ious >= t).mean()) for t in THRESHOLDS}
        summary[method] = {
            "median_proposals": float(np.median([len(b) for b in run["boxes"]])),
            "median_seconds": float(np.median(seconds)), "seconds": seconds, "recall": recall,
            "mabo": float(best_ious(truth, run["boxes"], None).mean()),
        }
    print(f"\n### {name}: {len(truth)} images, {sum(len(g) for g in truth)} boxes\n")
    header = " | ".join(f"N={n or 'all'}" for n in NS)
    print(f"| method | median proposals | median s/image | {header} |")
    print("|---|---|---|" + "---|" * len(NS))
    for key, s in summary.items():
        cells = " | ".join(f"{s['recall'][str(n or 'all')]['0.5']:.3f} / "
                           f"{s['recall'][str(n or 'all')]['0.7']:.3f}" for n in NS)
        print(f"| {key} | {s['median_proposals']:.0f} | {s['median_seconds']:.3f} | {cells} |")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100, help="held-out scenes (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per photo (3)")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/proposals.json")
    args = parser.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_scenes(tmp / "scenes", args.scenes, seed=args.seed, split="test")
        records = read_coco(tmp / "scenes" / "annotations" / "instances_test.json")
        scene_paths = [tmp / "scenes" / "images" / "test" / r.file_name for r in records.images]
        scene_images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in scene_paths]
        scene_truth = [np.array([a.bbox for a in r.annotations], dtype=np.float32).reshape(-1, 4)
                       for r in records.images]

        quokka_image, quokka_ann = quokka()
        qb = quokka_ann["bounding_boxes"][0]
        photos = {"astronaut": (load_photo("astronaut"), [177, 66, 177 + 95, 66 + 95]),
                  "quokka": (quokka_image, [qb["x1"], qb["y1"], qb["x2"], qb["y2"]])}
        photo_paths = []
        for name, (image, _) in photos.items():
            photo_paths.append(tmp / f"{name}.png")
            cv2.imwrite(str(photo_paths[-1]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        photo_truth = [np.array([box], dtype=np.float32) for _, box in photos.values()]
        photo_images = [image for image, _ in photos.values()]

        scenes = run_ours(scene_images, 1, variants=True)
        photos_runs = run_ours(photo_images, args.repeats, variants=False)
        opencv_scenes, opencv_version = run_opencv(scene_paths, 1, tmp)
        scenes.update(opencv_scenes)
        photos_runs.update(run_opencv(photo_paths, args.repeats, tmp)[0])
    load_after = Path("/proc/loadavg").read_text().split()[:3]

    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "torch": torch.__version__,
                    "opencv": cv2.__version__, "opencv_contrib": opencv_version,
                    "loadavg_before": load_before, "loadavg_after": load_after},
        "scenes": summarize("scenes (test split)", scene_truth, scenes),
        "photos": summarize("photos", photo_truth, photos_runs),
    }
    print("\n### photos: best IoU with all proposals, and 1-based rank of the first with IoU >= "
          "0.5 / 0.7\n")
    print("| method | " + " | ".join(photos) + " |")
    print("|---|" + "---|" * len(photos))
    ranks: dict = {}
    for method, run in photos_runs.items():
        cells = []
        for i, name in enumerate(photos):
            boxes = run["boxes"][i]
            best = float(box_iou(torch.from_numpy(photo_truth[i]), torch.from_numpy(boxes)).max())
            r5, r7 = (first_rank(photo_truth[i][0], boxes, t) for t in THRESHOLDS)
            ranks[f"{method}/{name}"] = {"best_iou": best, "rank_0.5": r5, "rank_0.7": r7,
                                         "proposals": len(boxes)}
            cells.append(f"{best:.3f}, #{r5} / #{r7} of {len(boxes)}")
        print(f"| {method} | " + " | ".join(cells) + " |")
    report["photo_ranks"] = ranks
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nload average before {load_before}, after {load_after}; wrote {args.out}")


if __name__ == "__main__":
    main()
