"""``modernvision faces`` and ``modernvision train-cascade``: Viola-Jones from the command line.

``faces`` runs a Haar cascade (OpenCV's, or one trained by us) over image files, prints the
boxes and writes the images with the boxes drawn. ``train-cascade`` trains our own cascade on
``lfw-subset`` with negatives bootstrapped from face-free photos and reports held-out rates.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from modernvision.cli._types import (
    float_in,
    int_between,
    non_negative_int,
    output_file,
    output_folder,
    positive_int,
)

# Haar features in a 24x24 window (the five types at every position and size).
_FEATURES_24 = 162_336
_RECIPE_DEFAULTS = {"pool_size": 12000, "max_stages": 30, "negatives_per_stage": 1500,
                    "stage_detection_rate": 0.997, "stage_false_positive_rate": 0.5,
                    "target_false_positive_rate": 1e-7, "max_weak_per_stage": 200, "seed": 0}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "faces",
        help="detect faces (or other objects) with a Viola-Jones cascade",
        description="Run a Haar cascade over images; prints x y w h per box and writes the "
        "images with the boxes drawn. Colour images are converted to grey.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (PNG, JPEG, BMP, TIFF, WebP, ...; 16-bit scaled, EXIF "
                        "orientation applied)")
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
    p.add_argument("--scale-factor", type=float_in(1.0, math.inf), default=1.1,
                   help="image-pyramid step, > 1 (default: %(default)s)")
    p.add_argument("--min-neighbors", type=non_negative_int, default=3,
                   help="raw detections a grouped box needs (0: no grouping) "
                        "(default: %(default)s)")
    p.add_argument("--min-size", type=non_negative_int, nargs=2, default=(0, 0),
                   metavar=("W", "H"), help="smallest box (default: 0 0, the cascade's window)")
    p.add_argument("--max-size", type=non_negative_int, nargs=2, default=None,
                   metavar=("W", "H"), help="largest box (default: the image size)")
    p.add_argument(
        "--mode",
        choices=("opencv", "paper"),
        default="opencv",
        help="opencv: image pyramid, OpenCV's exact boxes; paper: scaled features "
        "(default: %(default)s)",
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
    # The defaults are LFW_RECIPE's (modernvision.classic.viola_jones.train), written out so
    # that registering imports no numba; tests/cli check the two agree.
    r = _RECIPE_DEFAULTS
    t.add_argument("--out", type=Path, default=Path("lfw_24.json"),
                   help="JSON file to write (default: %(default)s)")
    t.add_argument("--stages", type=positive_int, default=None,
                   help=f"maximum number of stages (default: {r['max_stages']})")
    t.add_argument("--pool-size", type=int_between(1, _FEATURES_24), default=None,
                   help="Haar features drawn per stage from the 162,336 "
                        f"(default: {r['pool_size']})")
    t.add_argument("--negatives", type=positive_int, default=None,
                   help=f"bootstrapped negatives per stage (default: {r['negatives_per_stage']})")
    t.add_argument("--min-negatives", type=positive_int, default=None,
                   help="stop when fewer negatives survive (default: a third of --negatives)")
    rate = float_in(0.0, 1.0)
    t.add_argument("--detection-rate", type=rate, default=None,
                   help=f"per-stage d, in (0, 1) (default: {r['stage_detection_rate']})")
    t.add_argument("--fp-rate", type=rate, default=None,
                   help=f"per-stage f, in (0, 1) (default: {r['stage_false_positive_rate']})")
    t.add_argument("--target-fp", type=rate, default=None,
                   help="overall false-positive goal, in (0, 1) "
                        f"(default: {r['target_false_positive_rate']})")
    t.add_argument("--max-weak", type=positive_int, default=None,
                   help=f"maximum stumps per stage (default: {r['max_weak_per_stage']})")
    t.add_argument("--seed", type=non_negative_int, default=None,
                   help=f"random seed (default: {r['seed']})")
    t.set_defaults(func=_train)


def _faces(args: argparse.Namespace) -> int:
    from modernvision.classic.viola_jones import load_cascade, to_gray
    from modernvision.classic.viola_jones.draw import draw_boxes, read_image, write_image

    if args.out is not None:
        output_folder("--out", args.out)
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

    output_file("--out", args.out)
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
