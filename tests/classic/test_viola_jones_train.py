"""Training a cascade: AdaBoost stages meet their targets, negatives are bootstrapped, and the
result runs in the detector as trained (checked with the detector's own kernel)."""

from __future__ import annotations

import numpy as np
import pytest

from modernvision.classic.viola_jones import (
    Cascade,
    box_iou,
    classify_windows,
    evaluate_cascade,
    face_free_photos,
    lfw_windows,
    load_cascade,
    mine_windows,
    to_gray,
    train_cascade,
)
from modernvision.data import load_photo

D, F = 0.99, 0.5


@pytest.fixture(scope="module")
def tiny():
    faces = lfw_windows("train", 1)
    positives = np.concatenate([faces, faces[:, :, ::-1]])
    photos = face_free_photos(("brick", "coins", "page"))
    cascade = train_cascade(
        positives,
        photos,
        extra_negatives=lfw_windows("train", 0),
        pool_size=600,
        max_stages=3,
        max_weak_per_stage=12,
        negatives_per_stage=250,
        stage_detection_rate=D,
        stage_false_positive_rate=F,
        seed=0,
    )
    return cascade, positives, photos


def test_stages_meet_their_detection_and_false_positive_targets(tiny):
    cascade, positives, _ = tiny
    report = cascade.meta["training"]
    assert 1 <= len(report["stages"]) <= 3
    assert report["features_per_stage"] == cascade.features_per_stage
    for st in report["stages"]:
        assert st["detection_rate"] >= D
        assert st["false_positive_rate"] <= F or st["weak"] == 12
    # checked independently with the detector's kernel on the training positives
    accepted, n_feat = classify_windows(cascade, positives)
    assert accepted.mean() >= D**cascade.num_stages - 1e-9
    assert np.all(n_feat >= cascade.features_per_stage[0])


def test_negatives_are_bootstrapped_from_the_cascade_so_far(tiny):
    cascade, _, photos = tiny
    first = Cascade(cascade.window_size, cascade.features, cascade.stages[:1])
    rng = np.random.default_rng(0)
    mined, accepted, scanned = mine_windows(first, photos, 200, rng)
    assert 0 < accepted < scanned and len(mined) == min(200, accepted)
    # every bootstrapped window is a false positive of the first stage
    assert classify_windows(first, mined)[0].all()
    _, all_accepted, _ = mine_windows(None, photos, 10, rng)
    assert accepted < all_accepted  # the stage rejects part of what the empty cascade passes


def test_trained_cascade_generalises_and_round_trips(tiny, tmp_path):
    cascade, _, _ = tiny
    held_out = lfw_windows("test", 1)
    report = evaluate_cascade(cascade, held_out, face_free_photos(("text",)))
    assert report.detection_rate >= 0.6
    assert 0 < report.windows and report.false_positives_per_window < 0.5
    assert 0 < report.features_per_window <= sum(cascade.features_per_stage)
    back = Cascade.load(cascade.save(tmp_path / "tiny.json"))
    gray = to_gray(load_photo("coins"))
    np.testing.assert_array_equal(
        back.detect(gray, min_neighbors=0), cascade.detect(gray, min_neighbors=0)
    )


def test_training_input_errors():
    faces = lfw_windows("test", 1)
    with pytest.raises(ValueError, match="positives"):
        train_cascade(faces.astype(np.float32), face_free_photos(("brick",)))
    with pytest.raises(ValueError, match="negative_images"):
        train_cascade(faces, [])
    with pytest.raises(ValueError, match="stage_detection_rate"):
        train_cascade(faces, face_free_photos(("brick",)), stage_detection_rate=1.5)


def test_packaged_lfw_cascade_finds_the_astronaut():
    cascade = load_cascade("ours:lfw_24")
    training = cascade.meta["training"]
    assert training["features_per_stage"] == cascade.features_per_stage
    assert 0 < cascade.meta["held_out"]["detection_rate"] <= 1
    boxes = cascade.detect(to_gray(load_photo("astronaut")))
    assert box_iou(boxes, np.array([[177, 66, 95, 95]])).max() >= 0.5
