"""Viola-Jones: our detector against ``cv2.CascadeClassifier``, and our trained cascade's rates.

Three parts, each printed as markdown (paste into ``bench/viola_jones.md``):

``speed``
    OpenCV's ``haarcascade_frontalface_default.xml`` on the 512x512 astronaut (grey), our
    detector (``mode="opencv"``, the default) against ``cv2.CascadeClassifier.detectMultiScale``
    with the same arguments, in the same process, interleaved (alternating which runs first),
    after one warm-up call each (our first call loads the cached numba kernels). Median of
    ``--repeats``. Both use the machine's cores (OpenCV's ``parallel_for_``; our thread pool).
    Also our ``mode="paper"`` (features scaled, one integral image) for reference.
``equivalence``
    Box counts and identity for OpenCV's frontalface_default/alt/alt2/eye cascades on the
    astronaut, grace_hopper and coins photos (``min_neighbors`` 3 and 0).
``training``
    The packaged ``ours:lfw_24`` cascade (or ``--train``: retrain it with
    ``train_lfw_cascade``, several minutes): features per stage, per-stage training rates,
    held-out detection rate, false positives per window and features evaluated per window, and
    what it finds on the astronaut and grace_hopper photos.

Usage:
    python bench/viola_jones.py                      # all three parts
    python bench/viola_jones.py --parts speed --repeats 21 --threads 1   # per-core
    python bench/viola_jones.py --parts training --train --out lfw_24.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import cv2
import numpy as np

from modernvision.classic.viola_jones import (
    HELD_OUT_PHOTOS,
    box_iou,
    detect_multiscale,
    evaluate_cascade,
    face_free_photos,
    lfw_windows,
    load_cascade,
    match_detections,
    opencv_cascade_path,
    to_gray,
)
from modernvision.classic.viola_jones._threads import num_threads, set_num_threads
from modernvision.data import load_photo

# cv2.CascadeClassifier(frontalface_default) answers on these photos, used as ground truth
FACES = {"astronaut": (177, 66, 95, 95), "grace_hopper": (155, 105, 222, 222)}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads), our pool {num_threads()} threads, "
        f"load average at start {load:.1f}"
    )


def speed(repeats: int) -> list[str]:
    gray = to_gray(load_photo("astronaut"))
    ours = load_cascade("opencv:frontalface_default")
    ref = cv2.CascadeClassifier(str(opencv_cascade_path("frontalface_default")))
    t0 = time.perf_counter()
    first = detect_multiscale(ours, gray)
    first_call = time.perf_counter() - t0
    ref.detectMultiScale(gray)
    _, stats = detect_multiscale(ours, gray, return_stats=True)
    t_ours, t_ref, t_paper = [], [], []
    for i in range(repeats):
        runs = [
            ("ours", lambda: detect_multiscale(ours, gray)),
            ("ref", lambda: ref.detectMultiScale(gray)),
        ]
        for name, fn in runs if i % 2 == 0 else runs[::-1]:
            t = time.perf_counter()
            fn()
            (t_ours if name == "ours" else t_ref).append(time.perf_counter() - t)
    for _ in range(max(3, repeats // 4)):
        t = time.perf_counter()
        paper = detect_multiscale(ours, gray, mode="paper")
        t_paper.append(time.perf_counter() - t)
    mo, mr, mp = (statistics.median(v) * 1000 for v in (t_ours, t_ref, t_paper))
    boxes_ref = np.asarray(ref.detectMultiScale(gray)).reshape(-1, 4)
    return [
        f"Machine: {machine()}.",
        "",
        f"astronaut 512x512, frontalface_default, scale_factor 1.1, min_neighbors 3; median of "
        f"{repeats} interleaved runs ({len(t_paper)} for paper mode):",
        "",
        "| detector | median ms | ratio to OpenCV | boxes |",
        "|---|---:|---:|---|",
        f"| cv2.CascadeClassifier.detectMultiScale | {mr:.1f} | 1.00 | {boxes_ref.tolist()} |",
        f'| ours, mode="opencv" (default) | {mo:.1f} | {mo / mr:.2f} | {first.tolist()} |',
        f'| ours, mode="paper" (scaled features) | {mp:.1f} | {mp / mr:.2f} | {paper.tolist()} |',
        "",
        f"Our first call (loading the compiled kernels from numba's cache): "
        f"{first_call * 1000:.0f} ms. Work per call: {stats.scales} scales, "
        f"{stats.windows + stats.rejected_flat:,} windows ({stats.rejected_flat:,} rejected as "
        f"flat), {stats.features:,} features evaluated "
        f"({stats.features_per_window:.1f} per window entering the cascade).",
    ]


def equivalence() -> list[str]:
    lines = [
        "| cascade | photo | min_neighbors | OpenCV boxes | our boxes | identical | min IoU |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for name in ("frontalface_default", "frontalface_alt", "frontalface_alt2", "eye"):
        ours = load_cascade(f"opencv:{name}")
        ref = cv2.CascadeClassifier(str(opencv_cascade_path(name)))
        for photo in ("astronaut", "grace_hopper", "coins"):
            gray = to_gray(load_photo(photo))
            for mn in (3, 0):
                r = np.asarray(ref.detectMultiScale(gray, minNeighbors=mn)).reshape(-1, 4)
                o = detect_multiscale(ours, gray, min_neighbors=mn)
                same = sorted(map(tuple, o.tolist())) == sorted(map(tuple, r.tolist()))
                iou = box_iou(o, r)
                mi = f"{iou.max(axis=1).min():.2f}" if iou.size else "-"
                lines.append(
                    f"| {name} | {photo} | {mn} | {len(r)} | {len(o)} | "
                    f"{'yes' if same else 'NO'} | {mi} |"
                )
    return lines


def training(train: bool, out: str | None) -> list[str]:
    if train:
        from modernvision.classic.viola_jones.train import train_lfw_cascade

        t0 = time.perf_counter()
        cascade, report = train_lfw_cascade(log=print)
        took = time.perf_counter() - t0
        if out:
            cascade.save(out)
        source = f"trained now in {took:.0f} s" + (f", saved to {out}" if out else "")
    else:
        cascade = load_cascade("ours:lfw_24")
        faces = np.concatenate([lfw_windows("val", 1), lfw_windows("test", 1)])
        report = evaluate_cascade(cascade, faces, face_free_photos(HELD_OUT_PHOTOS))
        source = "packaged ours:lfw_24, re-evaluated now"
    tr = cascade.meta.get("training", {})
    lines = [
        f"Cascade: {source}; {cascade.num_stages} stages, {sum(cascade.features_per_stage)} "
        f"features; training stopped: {tr.get('stop_reason', '?')}; training took "
        f"{tr.get('seconds', float('nan')):.0f} s.",
        "",
        "| stage | features | positives | kept | negatives | passed | mined windows accepted |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in tr.get("stages", []):
        lines.append(
            f"| {s['stage']} | {s['weak']} | {s['positives']} | "
            f"{s['detection_rate']:.3f} | {s['negatives']} | "
            f"{s['false_positive_rate']:.3f} | {s['mined_accept_rate']:.2e} |"
        )
    lines += [
        "",
        "Held-out (never used in training):",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| detection rate, lfw-subset val+test faces | {report.detection_rate:.3f} "
        f"({round(report.detection_rate * report.faces)}/{report.faces}) |",
        f"| false positives per window, {', '.join(HELD_OUT_PHOTOS)} | "
        f"{report.false_positives_per_window:.2e} ({report.false_positives} of "
        f"{report.windows:,}) |",
        f"| features evaluated per window (all scanned windows) | "
        f"{report.features_per_window:.2f} |",
        f"| features evaluated per window entering the cascade | "
        f"{report.features_per_cascade_window:.2f} |",
        f"| features in the cascade | {sum(cascade.features_per_stage)} |",
        "",
        "On photos with a face (OpenCV frontalface_default's box as ground truth, IoU >= 0.5):",
        "",
        "| photo | min_neighbors | boxes | TP | FP | best IoU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for photo, gt in FACES.items():
        gray = to_gray(load_photo(photo))
        for mn in (3, 5):
            b = cascade.detect(gray, min_neighbors=mn)
            m = match_detections(b, np.array([gt]), 0.5)
            iou = box_iou(b, np.array([gt]))
            best = f"{iou.max():.2f}" if iou.size else "-"
            lines.append(f"| {photo} | {mn} | {len(b)} | {m.tp} | {m.fp} | {best} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="speed,equivalence,training")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for both OpenCV and us (default: all cores)",
    )
    ap.add_argument("--train", action="store_true", help="retrain the lfw cascade first")
    ap.add_argument("--out", default=None, help="with --train: where to save the cascade")
    args = ap.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
        set_num_threads(args.threads)
    parts = args.parts.split(",")
    if "speed" in parts:
        print("\n".join(["## Speed", ""] + speed(args.repeats) + [""]))
    if "equivalence" in parts:
        print("\n".join(["## Equivalence with cv2.CascadeClassifier", ""] + equivalence() + [""]))
    if "training" in parts:
        print("\n".join(["## Training report", ""] + training(args.train, args.out) + [""]))


if __name__ == "__main__":
    main()
