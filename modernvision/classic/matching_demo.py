"""The instance-level detection section of ``modernvision demo``.

Runs the lab on opencv-doc's images: the box found in its scene (drawn to a PNG), graf1 -> graf3
against the ground-truth homography, and the box looked for in an unrelated photo.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from modernvision.classic.matching import ObjectFinder, corner_errors, draw_match, find_object
from modernvision.data import load_photo, opencv_sample
from modernvision.data.io import read_image


def read_opencv_matrix(path: str | Path, name: str) -> np.ndarray:
    """A matrix stored by ``cv::FileStorage`` (e.g. ``H13`` in opencv-doc's ``H1to3p.xml``)."""
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        matrix = storage.getNode(name).mat()
    finally:
        storage.release()
    if matrix is None:
        raise ValueError(f"{path}: no matrix named {name!r}")
    return matrix.astype(np.float64)


def _grey(name: str) -> np.ndarray:
    return read_image(opencv_sample(name), mode="L", what="opencv-doc sample")


def demo_section(out_dir: Path) -> list[str]:
    """Run the matching demo, write ``box_in_scene_match.png`` into ``out_dir``, return lines."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["Instance-level detection (SIFT + our kd-tree + ratio test 0.75 + our RANSAC)"]

    start = time.perf_counter()
    box, scene = _grey("box.png"), _grey("box_in_scene.png")
    finder = ObjectFinder(box)
    match = finder.find(scene)
    path = out_dir / "box_in_scene_match.png"
    cv2.imwrite(str(path), cv2.cvtColor(draw_match(scene, match), cv2.COLOR_RGB2BGR))
    verdict = "found" if match.found else "NOT found"
    lines.append(
        f"  box.png in box_in_scene.png: {verdict}, {match.inliers} RANSAC inliers of "
        f"{match.num_matches} ratio-test matches ({time.perf_counter() - start:.1f} s)"
        f" -> {path}"
    )

    coffee = finder.find(load_photo("coffee"))
    lines.append(
        f"  box.png in skimage coffee: {'found' if coffee.found else 'absent'} "
        f"(best homography: {coffee.inliers} inliers < 10 needed)"
        if not coffee.found
        else f"  box.png in skimage coffee: FOUND with {coffee.inliers} inliers (false alarm)"
    )

    graf1, graf3 = _grey("graf1.png"), _grey("graf3.png")
    truth = read_opencv_matrix(opencv_sample("H1to3p.xml"), "H13")
    graf = find_object(graf1, graf3)
    if graf.found:
        err = corner_errors(graf.homography, truth, graf1.shape)
        lines.append(
            f"  graf1.png -> graf3.png: {graf.inliers} inliers; corner error vs "
            f"H1to3p.xml max {err.max():.2f} px, mean {err.mean():.2f} px (limit 4)"
        )
    else:
        lines.append(f"  graf1.png -> graf3.png: NOT found ({graf.inliers} inliers)")
    return lines
