"""OpenCV's selective search, run by ``bench/proposals.py`` inside its own virtual environment.

``opencv-contrib-python-headless`` ships its own ``cv2`` and cannot share an environment with
``opencv-python-headless`` (the project's), so ``bench/proposals.py`` creates a separate venv and
runs this script there. Only NumPy and OpenCV are imported.

Usage: ``python _opencv_selective_search.py JOB.json OUT.npz``. ``JOB.json`` holds
``{"images": [paths], "modes": ["single", "fast", "quality"], "repeats": R, "threads": T}``;
``OUT.npz`` gets, for image ``i`` and mode ``m``, ``boxes_i_m`` (float32 ``[N, 4]`` xyxy pixel
edges, OpenCV's order) and ``seconds_i_m`` (the ``R`` timings of ``setBaseImage`` + ``switchTo*``
+ ``process``), plus ``version``.
"""

from __future__ import annotations

import json
import sys
import time

import cv2
import numpy as np

SWITCH = {
    "single": "switchToSingleStrategy",
    "fast": "switchToSelectiveSearchFast",
    "quality": "switchToSelectiveSearchQuality",
}


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    cv2.setNumThreads(int(job["threads"]))
    out = {"version": np.array(cv2.__version__)}
    for i, path in enumerate(job["images"]):
        image = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR, as OpenCV's implementation expects
        if image is None:
            raise SystemExit(f"cannot read {path}")
        for mode in job["modes"]:
            times = []
            for _ in range(int(job["repeats"])):
                ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
                start = time.perf_counter()
                ss.setBaseImage(image)
                getattr(ss, SWITCH[mode])()
                rects = ss.process()
                times.append(time.perf_counter() - start)
            r = np.asarray(rects, dtype=np.float32).reshape(-1, 4)  # x, y, w, h
            out[f"boxes_{i}_{mode}"] = np.concatenate([r[:, :2], r[:, :2] + r[:, 2:]], axis=1)
            out[f"seconds_{i}_{mode}"] = np.array(times)
    np.savez(sys.argv[2], **out)


if __name__ == "__main__":
    main()
