"""``modernvision match REFERENCE SCENE... [--out DIR]``: find an object in scene images.

SIFT + our kd-tree + Lowe's ratio test + our RANSAC homography
(:mod:`modernvision.classic.matching`); each scene is written with the object's outline drawn.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from modernvision.cli._types import float_in, int_at_least, output_folder, positive_int

_MIN_SIDE = 8  # what modernvision.classic.matching accepts


def _run(args: argparse.Namespace) -> int:
    import cv2

    from modernvision._errors import InvalidArgumentError
    from modernvision.classic.matching import ObjectFinder, draw_match
    from modernvision.data.io import read_image

    out_dir = output_folder("--out", args.out)
    reference = read_image(args.reference, mode=None, what="reference image")
    scenes = [(Path(p), read_image(p, mode=None, what="scene image")) for p in args.scenes]
    for path, image in [(Path(args.reference), reference), *scenes]:  # fail before any work
        if min(image.shape[:2]) < _MIN_SIDE:
            raise InvalidArgumentError(f"{path}: a {image.shape[1]}x{image.shape[0]} image is "
                                       f"too small to match (at least {_MIN_SIDE}x{_MIN_SIDE})")
    finder = ObjectFinder(
        reference,
        ratio=args.ratio,
        min_inliers=args.min_inliers,
        ransac_threshold=args.ransac_threshold,
        checks=args.checks,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for path, scene in scenes:
        match = finder.find(scene)
        name = f"{path.stem}_match.png"
        counter = 1
        while name in used:
            counter += 1
            name = f"{path.stem}_match{counter}.png"
        used.add(name)
        drawn = draw_match(scene, match)
        if not cv2.imwrite(str(out_dir / name), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
            raise InvalidArgumentError(f"--out {out_dir}: could not write {name} there")
        verdict = "found" if match.found else "absent"
        detail = (
            f"{match.inliers} inliers of {match.num_matches} ratio-test matches"
            if match.found
            else f"best homography has {match.inliers} inliers (< {args.min_inliers} or "
            f"implausible outline), {match.num_matches} ratio-test matches"
        )
        print(f"{path}: {verdict}: {detail} -> {out_dir / name}")
        if match.found:
            corners = ", ".join(f"({x:.1f}, {y:.1f})" for x, y in match.corners)
            print(f"  outline (TL, TR, BR, BL): {corners}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "match",
        help="find a reference object in scene images (SIFT, kd-tree, ratio test, RANSAC)",
        description="Find the object of REFERENCE in each SCENE: SIFT keypoints, our kd-tree "
        "for the two nearest neighbours, Lowe's ratio test and our RANSAC "
        "homography. Writes each scene with the matched outline drawn.",
    )
    parser.add_argument("reference", help="photo of the object alone (at least 8x8 pixels)")
    parser.add_argument("scenes", nargs="+", metavar="SCENE",
                        help="images to search (PNG, JPEG, ...; 16-bit scaled, EXIF "
                             "orientation applied)")
    parser.add_argument("--out", default="runs/match", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--ratio",
        type=float_in(0.0, 1.0, high_open=False),
        default=0.75,
        help="Lowe's ratio-test threshold, in (0, 1] (default: %(default)s)",
    )
    parser.add_argument(
        "--min-inliers",
        type=int_at_least(4),
        default=10,
        help="homography inliers to declare the object present, >= 4 (default: %(default)s)",
    )
    parser.add_argument(
        "--ransac-threshold",
        type=float_in(0.0, math.inf),
        default=2.0,
        help="inlier transfer error in pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--checks",
        type=positive_int,
        default=None,
        help="best-bin-first budget of the kd-tree (default: exact search)",
    )
    parser.set_defaults(func=_run)
