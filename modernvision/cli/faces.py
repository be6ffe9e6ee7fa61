"""``modernvision faces`` and ``modernvision train-cascade``: Viola-Jones from the command line.

``faces`` runs a Haar cascade (OpenCV's, or one trained by us) over image files, prints the
boxes and writes the images with the boxes drawn. ``train-cascade`` trains our own cascade on
``lfw-subset`` with negatives bootstrapped from face-free photos and reports held-out rates.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "faces",
        help="detect faces (or other objects) with a Viola-Jones cascade",
        description="Run a Haar cascade over images; prints x y w h per box and writes the "
        "images with the boxes drawn. Colour images are converted to grey.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument(
        "--cascade",
        default="opencv:frontalface_default",
        help="opencv:NAME (cv2.data.haarcascades), ours:lfw_24, or a .xml/.json "
        "path (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write IMAGE_faces.png files here (default: none written)",
    )
    p.add_argument("--scale-factor", type=float, default=1.1)
    p.add_argument("--min-neighbors", type=int, default=3)
    p.add_argument("--min-size", type=int, nargs=2, default=(0, 0), metavar=("W", "H"))
    p.add_argument("--max-size", type=int, nargs=2, default=None, metavar=("W", "H"))
    p.add_argument(
        "--mode",
        choices=("opencv", "paper"),
        default="opencv",
        help="opencv: image pyramid, OpenCV's exact boxes; paper: scaled features",
    )
    p.set_defaults(func=_faces)

    t = subparsers.add_parser(
        "train-cascade",
        help="train a Viola-Jones face cascade on lfw-subset",
        description="Train an attentional cascade (AdaBoost stumps over Haar features) on "
        "lfw-subset faces with negatives bootstrapped from face-free photos; "
        "prints each stage and the held-out detection rate and false positives "
        "per window, and saves the cascade as JSON.",
    )
    t.add_argument("--out", type=Path, default=Path("lfw_24.json"), help="JSON file to write")
    t.add_argument("--stages", type=int, default=None, help="maximum number of stages")
    t.add_argument(
        "--pool-size", type=int, default=None, help="Haar features drawn per stage from the 162,336"
    )
    t.add_argument("--negatives", type=int, default=None, help="bootstrapped negatives/stage")
    t.add_argument(
        "--min-negatives",
        type=int,
        default=None,
        help="stop when fewer negatives survive (default: a third of --negatives)",
    )
    t.add_argument("--detection-rate", type=float, default=None, help="per-stage d")
    t.add_argument("--fp-rate", type=float, default=None, help="per-stage f")
    t.add_argument("--target-fp", type=float, default=None, help="overall false-positive goal")
    t.add_argument("--max-weak", type=int, default=None, help="maximum stumps per stage")
    t.add_argument("--seed", type=int, default=None)
    t.set_defaults(func=_train)


def _faces(args: argparse.Namespace) -> int:
    from modernvision.classic.viola_jones import load_cascade, to_gray
    from modernvision.classic.viola_jones.draw import draw_boxes, read_image, write_image

    cascade = load_cascade(args.cascade)
    images = [(Path(p), read_image(p)) for p in args.images]  # fail before any work
    for path, img in images:
        t0 = time.perf_counter()
        boxes = cascade.detect(
            to_gray(img),
            scale_factor=args.scale_factor,
            min_neighbors=args.min_neighbors,
            min_size=tuple(args.min_size),
            max_size=None if args.max_size is None else tuple(args.max_size),
            mode=args.mode,
        )
        ms = (time.perf_counter() - t0) * 1000
        print(
            f"{path}: {len(boxes)} box{'es' if len(boxes) != 1 else ''} "
            f"({img.shape[1]}x{img.shape[0]}, {ms:.0f} ms)"
        )
        for x, y, w, h in boxes.tolist():
            print(f"  {x} {y} {w} {h}")
        if args.out is not None:
            out = write_image(args.out / f"{path.stem}_faces.png", draw_boxes(img, boxes))
            print(f"  wrote {out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from modernvision.classic.viola_jones.train import train_lfw_cascade

    names = {
        "stages": "max_stages",
        "pool_size": "pool_size",
        "negatives": "negatives_per_stage",
        "min_negatives": "min_negatives_per_stage",
        "detection_rate": "stage_detection_rate",
        "fp_rate": "stage_false_positive_rate",
        "target_fp": "target_false_positive_rate",
        "max_weak": "max_weak_per_stage",
        "seed": "seed",
    }
    overrides = {v: getattr(args, k) for k, v in names.items() if getattr(args, k) is not None}
    cascade, report = train_lfw_cascade(log=print, **overrides)
    path = cascade.save(args.out)
    print(
        f"features per stage: {cascade.features_per_stage} "
        f"(total {sum(cascade.features_per_stage)})"
    )
    print(f"held-out detection rate: {report.detection_rate:.3f} on {report.faces} faces")
    print(
        f"held-out false positives per window: {report.false_positives_per_window:.2e} "
        f"({report.false_positives} of {report.windows} windows)"
    )
    print(f"features evaluated per window: {report.features_per_window:.2f}")
    print(f"wrote {path}")
    return 0
