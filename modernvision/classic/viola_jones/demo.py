"""``modernvision demo`` section: faces in the astronaut photo, by our cascade and OpenCV's.

Runs in a few seconds on two cores: our ``lfw_24`` cascade (trained by
:func:`~modernvision.classic.viola_jones.train.train_lfw_cascade`) and OpenCV's
``frontalface_default`` cascade, both run in our detector, against ``cv2.CascadeClassifier``.
"""

from __future__ import annotations

import pathlib
import time

import numpy as np

__all__ = ["demo_section"]

# cv2.CascadeClassifier(frontalface_default).detectMultiScale on the astronaut (x, y, w, h)
ASTRONAUT_FACE = (177, 66, 95, 95)


def demo_section(out_dir: pathlib.Path) -> list[str]:
    """Detect faces in the astronaut photo; write ``viola_jones_astronaut.png`` to ``out_dir``.

    Returns:
        Report lines: our trained cascade's boxes, OpenCV's cascade in our detector, and
        ``cv2.CascadeClassifier``'s answer with the time each took.
    """
    import cv2

    from modernvision.classic.viola_jones import (
        box_iou,
        load_cascade,
        opencv_cascade_path,
        to_gray,
    )
    from modernvision.classic.viola_jones.draw import draw_boxes, write_image
    from modernvision.data import load_photo

    out_dir = pathlib.Path(out_dir)
    rgb = load_photo("astronaut")
    gray = to_gray(rgb)
    lines = ["Viola-Jones face detection on the astronaut photo (512x512):"]

    ours = load_cascade("ours:lfw_24")
    ours.detect(gray[:64, :64])  # the first call loads the compiled kernels
    t0 = time.perf_counter()
    ours_boxes = ours.detect(gray)
    t_ours = time.perf_counter() - t0
    iou = box_iou(ours_boxes, np.array([ASTRONAUT_FACE]))
    best = float(iou.max()) if iou.size else 0.0
    lines.append(
        f"  our cascade (lfw-subset, {ours.num_stages} stages, "
        f"{sum(ours.features_per_stage)} features): {len(ours_boxes)} box(es) "
        f"{ours_boxes.tolist()}; best IoU with the face {best:.2f}; {t_ours * 1000:.0f} ms"
    )

    cv_cascade = load_cascade("opencv:frontalface_default")
    t0 = time.perf_counter()
    mv_boxes = cv_cascade.detect(gray)
    t_mv = time.perf_counter() - t0
    ref = cv2.CascadeClassifier(str(opencv_cascade_path("frontalface_default")))
    t0 = time.perf_counter()
    cv_boxes = np.asarray(ref.detectMultiScale(gray)).reshape(-1, 4)
    t_cv = time.perf_counter() - t0
    same = sorted(map(tuple, mv_boxes.tolist())) == sorted(map(tuple, cv_boxes.tolist()))
    lines.append(
        f"  OpenCV frontalface_default in our detector: {mv_boxes.tolist()} ({t_mv * 1000:.0f} ms)"
    )
    lines.append(
        f"  cv2.CascadeClassifier.detectMultiScale:    {cv_boxes.tolist()} "
        f"({t_cv * 1000:.0f} ms) -> {'identical' if same else 'DIFFERENT'}"
    )

    img = draw_boxes(rgb, cv_boxes, color=(0, 255, 0), thickness=3)
    img = draw_boxes(img, ours_boxes, color=(255, 0, 0), thickness=2)
    path = write_image(out_dir / "viola_jones_astronaut.png", img)
    lines.append(f"  wrote {path} (green: OpenCV cascade, red: ours)")
    return lines
