"""OpenCV's own Haar cascades run in our detector give ``cv2.CascadeClassifier``'s boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from modernvision.classic.viola_jones import (
    box_iou,
    detect_multiscale,
    load_cascade,
    load_opencv_cascade,
    opencv_cascade_path,
    to_gray,
)
from modernvision.classic.viola_jones.draw import read_image
from modernvision.data import load_photo, opencv_sample

_CACHE: dict = {}


def _gray(name: str) -> np.ndarray:
    if name not in _CACHE:
        _CACHE[name] = to_gray(load_photo(name))
    return _CACHE[name]


def _cascades(name: str):
    key = ("cascade", name)
    if key not in _CACHE:
        _CACHE[key] = (
            load_opencv_cascade(opencv_cascade_path(name)),
            cv2.CascadeClassifier(str(opencv_cascade_path(name))),
        )
    return _CACHE[key]


_CV_ARGS = {
    "scale_factor": "scaleFactor",
    "min_neighbors": "minNeighbors",
    "min_size": "minSize",
    "max_size": "maxSize",
}


def _compare(cascade_name: str, gray: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    ours_c, ref_c = _cascades(cascade_name)
    ref = np.asarray(
        ref_c.detectMultiScale(gray, **{_CV_ARGS[k]: v for k, v in kwargs.items()})
    ).reshape(-1, 4)
    ours = detect_multiscale(ours_c, gray, **kwargs)
    # same number of boxes, each matching one of OpenCV's with IoU >= 0.9 ...
    assert len(ours) == len(ref), (ours.tolist(), ref.tolist())
    if len(ref):
        iou = box_iou(ours, ref)
        assert np.all(iou.max(axis=1) >= 0.9) and np.all(iou.max(axis=0) >= 0.9)
    # ... and in fact the very same boxes
    assert sorted(map(tuple, ours.tolist())) == sorted(map(tuple, ref.tolist()))
    return ours, ref


def test_frontalface_default_astronaut_one_face_as_opencv():
    ours, _ = _compare("frontalface_default", _gray("astronaut"))
    assert ours.tolist() == [[177, 66, 95, 95]]


def test_frontalface_default_coins_reproduces_opencvs_false_positives():
    ours, ref = _compare("frontalface_default", _gray("coins"))
    assert len(ours) >= 6  # OpenCV's false positives on the coins, reproduced


def test_frontalface_default_grace_hopper_and_raw_candidates():
    _compare("frontalface_default", _gray("grace_hopper"))
    # min_neighbors=0: every raw window OpenCV accepts, before grouping
    ours, _ = _compare("frontalface_default", _gray("astronaut"), min_neighbors=0)
    assert len(ours) > 20


def test_tree_cascade_alt2_and_eye_on_astronaut():
    _compare("frontalface_alt2", _gray("astronaut"))  # 2-node trees
    ours, _ = _compare("eye", _gray("astronaut"))
    assert len(ours) == 3


def test_detect_arguments_mean_what_they_mean_in_opencv():
    gray = _gray("astronaut")
    _compare("frontalface_default", gray, scale_factor=1.3, min_neighbors=5)
    _compare("frontalface_default", gray, min_size=(100, 100), min_neighbors=0)
    _compare("frontalface_default", gray, max_size=(60, 80), min_neighbors=0)
    # minSize == maxSize between two scales: OpenCV scans the closest scale
    _compare("frontalface_default", gray, min_size=(95, 95), max_size=(95, 95), min_neighbors=0)
    small = np.ascontiguousarray(gray[::3, ::3])
    _compare("frontalface_default", small, scale_factor=1.05, min_neighbors=1)
    assert detect_multiscale(_cascades("frontalface_default")[0], gray[:20, :30]).shape == (0, 4)


def test_tilted_features_and_old_format_cascades():
    crop = np.ascontiguousarray(_gray("astronaut")[40:300, 120:380])
    _compare("eye_tree_eyeglasses", crop, min_neighbors=0)  # trees + tilted features
    plate = to_gray(read_image(opencv_sample("licenseplate_motion.jpg")))
    ours, _ = _compare("russian_plate_number", plate, min_neighbors=0)  # tilted stumps
    assert len(ours) >= 1
    old = load_opencv_cascade(opencv_cascade_path("license_plate_rus_16stages"))
    assert old.meta["format"] == "opencv-haar-classifier"
    ours, _ = _compare(
        "license_plate_rus_16stages", _gray("brick"), scale_factor=1.05, min_neighbors=0
    )
    assert len(ours) > 5


def test_paper_mode_scales_features_and_still_finds_the_face():
    cascade = _cascades("frontalface_default")[0]
    gray = _gray("astronaut")
    boxes, stats = detect_multiscale(cascade, gray, mode="paper", return_stats=True)
    iou = box_iou(boxes, np.array([[177, 66, 95, 95]]))
    assert iou.max() >= 0.6
    assert stats.scales > 10 and stats.features_per_window > 1
    # with greedy NMS on top no two boxes overlap by more than the threshold
    nms = detect_multiscale(cascade, gray, mode="paper", nms_iou=0.3)
    pair = box_iou(nms, nms)
    assert np.all(pair[~np.eye(len(nms), dtype=bool)] <= 0.3)
    assert box_iou(nms, np.array([[177, 66, 95, 95]])).max() >= 0.6


def test_detector_input_errors_are_clear():
    cascade = _cascades("frontalface_default")[0]
    with pytest.raises(ValueError, match="2-D grey"):
        cascade.detect(load_photo("astronaut"))
    with pytest.raises(ValueError, match="empty"):
        cascade.detect(np.zeros((0, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        cascade.detect(np.zeros((30, 30), np.float32))
    with pytest.raises(ValueError, match="scale_factor"):
        cascade.detect(_gray("coins"), scale_factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        cascade.detect(_gray("coins"), mode="fast")
    with pytest.raises(ValueError, match="min_size"):
        cascade.detect(_gray("coins"), min_size=(10,))


def test_cascade_loader_errors_are_clear(tmp_path):
    lbp = tmp_path / "lbp.xml"
    lbp.write_text(
        '<?xml version="1.0"?><opencv_storage><cascade type_id="opencv-cascade-'
        'classifier"><stageType>BOOST</stageType><featureType>LBP</featureType>'
        "<height>24</height><width>24</width></cascade></opencv_storage>"
    )
    with pytest.raises(ValueError, match="LBP"):
        load_opencv_cascade(lbp)
    with pytest.raises(ValueError, match="not a Haar cascade"):
        load_opencv_cascade(opencv_sample("H1to3p.xml"))  # an OpenCV matrix, not a cascade
    with pytest.raises(ValueError, match="XML"):
        load_opencv_cascade(opencv_sample("box.png"))
    with pytest.raises(FileNotFoundError):
        load_opencv_cascade(tmp_path / "none.xml")


@pytest.mark.slow
@pytest.mark.parametrize(
    "cascade_name", ["frontalface_default", "frontalface_alt", "frontalface_alt2", "eye"]
)
@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper", "coins"])
@pytest.mark.parametrize("min_neighbors", [3, 0])
def test_all_must_show_cascades_on_all_photos(cascade_name, photo, min_neighbors):
    _compare(cascade_name, _gray(photo), min_neighbors=min_neighbors)


def test_packaged_and_opencv_names_resolve():
    assert load_cascade("opencv:frontalface_default").window_size == (24, 24)
    assert load_cascade("opencv:eye").window_size == (20, 20)
    assert load_cascade("ours:lfw_24").window_size == (24, 24)
