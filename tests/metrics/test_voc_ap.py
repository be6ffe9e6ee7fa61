"""VOC precision/recall and AP: hand-computed cases, sklearn and torchvision where comparable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score
from sklearn.metrics import precision_recall_curve as sk_precision_recall_curve
from torchvision.ops import box_iou

from modernvision.metrics import (
    average_precision,
    box_iou_xyxy,
    match_detections_voc,
    precision_recall_curve,
    voc_evaluate,
)


def hand_case() -> tuple[list, list]:
    """Two images, one class; three non-difficult boxes and one difficult.

    Ranked detections: d1 TP (box A), d2 duplicate of A (FP), d3 on the difficult box
    (dropped), d4 on nothing (FP), d5 TP (box B), d6 TP (box C, IoU 90/110).
    Kept sequence TP FP FP TP TP -> precision 1, 1/2, 1/3, 2/4, 3/5; recall 1/3, 1/3, 1/3, 2/3, 1.
    """
    gt = [
        {"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "labels": [1, 1]},
        {"boxes": [[0, 0, 10, 10], [50, 50, 60, 60]], "labels": [1, 1], "difficult": [0, 1]},
    ]
    dets = [
        {
            "boxes": [[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]],
            "scores": [0.9, 0.8, 0.5],
            "labels": [1, 1, 1],
        },
        {
            "boxes": [[50, 50, 60, 60], [100, 100, 110, 110], [1, 0, 11, 10]],
            "scores": [0.7, 0.6, 0.4],
            "labels": [1, 1, 1],
        },
    ]
    return gt, dets


def test_hand_case_curve_and_both_aps():
    gt, dets = hand_case()
    res = voc_evaluate(gt, dets, method="all_point")
    np.testing.assert_allclose(res.precision[1], [1, 1 / 2, 1 / 3, 2 / 4, 3 / 5])
    np.testing.assert_allclose(res.recall[1], [1 / 3, 1 / 3, 1 / 3, 2 / 3, 1])
    assert res.num_ground_truth == {1: 3}
    # Envelope: 1 up to recall 1/3, then 0.6 -> 1/3 * 1 + 2/3 * 0.6.
    assert res.ap[1] == pytest.approx(1 / 3 + 2 / 3 * 0.6)
    assert res.mean_ap == pytest.approx(1 / 3 + 2 / 3 * 0.6)
    # 11 points: t = 0..0.3 -> 1 (four points), t = 0.4..1 -> 0.6 (seven points).
    res11 = voc_evaluate(gt, dets, method="11_point")
    assert res11.ap[1] == pytest.approx((4 * 1 + 7 * 0.6) / 11)


def test_matching_labels_in_input_order():
    labels = match_detections_voc(
        [[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]],
        [0.8, 0.9, 0.7, 0.6],
        [[0, 0, 10, 10], [50, 50, 60, 60]],
        gt_difficult=[False, True],
    )
    # The 0.9 detection takes the box first; the 0.8 one is its duplicate.
    assert labels.tolist() == [0, 1, -1, 0]


def test_iou_threshold_is_inclusive_as_the_devkit():
    # IoU exactly 0.5: [0, 0, 10, 10] vs [0, 0, 10, 5] -> 50 / 100.
    assert match_detections_voc([[0, 0, 10, 5]], [1.0], [[0, 0, 10, 10]]).tolist() == [1]
    assert match_detections_voc([[0, 0, 10, 4.9]], [1.0], [[0, 0, 10, 10]]).tolist() == [0]


def test_eleven_point_uses_exact_tenths():
    # Ten objects, three found first: recall 3/10 < 3 * 0.1 in floating point, yet it reaches 0.3.
    precision = np.array([1, 1, 1, 0.75, 0.6])
    recall = np.array([0.1, 0.2, 3 / 10, 3 / 10, 3 / 10])
    assert average_precision(recall, precision, method="11_point") == pytest.approx(4 / 11)


def test_all_point_equals_sklearn_when_precision_falls_at_every_hit():
    # All positives detected and precision at each hit >= all later precisions: no interpolation
    # happens, so VOC all-point AP equals sklearn's (uninterpolated) average precision.
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0])
    scores = np.linspace(1, 0.1, len(y))
    precision, recall = precision_recall_curve(scores, y, int(y.sum()))
    assert average_precision(recall, precision) == pytest.approx(average_precision_score(y, scores))


def test_curve_matches_sklearn_and_envelope_bounds_it():
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = (rng.random(50) < 0.4).astype(int)
        y[0] = 1
        scores = rng.random(50)
        precision, recall = precision_recall_curve(scores, y, int(y.sum()))
        sk_p, sk_r, _ = sk_precision_recall_curve(y, scores, drop_intermediate=False)
        # sklearn lists thresholds from low to high and appends (precision 1, recall 0).
        np.testing.assert_allclose(precision, sk_p[:-1][::-1])
        np.testing.assert_allclose(recall, sk_r[:-1][::-1])
        # The monotone envelope can only raise the area.
        assert average_precision(recall, precision) >= average_precision_score(y, scores) - 1e-12


def test_box_iou_matches_torchvision_and_plus_one_convention():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 50, (30, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (30, 2))], axis=1)
    ours = box_iou_xyxy(boxes[:12], boxes[12:])
    ref = box_iou(torch.from_numpy(boxes[:12]), torch.from_numpy(boxes[12:])).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    # Inclusive pixels: widths 10, intersection 5 x 10, union 150.
    assert box_iou_xyxy([[0, 0, 9, 9]], [[5, 0, 14, 9]], plus_one=True)[0, 0] == pytest.approx(
        1 / 3
    )
    assert box_iou_xyxy([[0, 0, 9, 9]], [[5, 0, 14, 9]])[0, 0] == pytest.approx(36 / 126)


def test_multi_class_map_skips_classes_without_ground_truth():
    gt = [{"boxes": np.array([[0, 0, 10, 10], [20, 0, 30, 10]]), "labels": np.array([1, 2])}]
    dets = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]),
            "scores": torch.tensor([0.9, 0.3, 0.8]),
            "labels": torch.tensor([1, 1, 3]),
        }
    ]
    res = voc_evaluate(gt, dets)
    assert res.ap[1] == 1.0  # the only box found first; the later miss costs nothing
    assert res.ap[2] == 0.0  # never detected
    assert np.isnan(res.ap[3])  # no ground truth: undefined, left out of the mean
    assert res.mean_ap == 0.5


def test_bad_inputs():
    with pytest.raises(ValueError, match="method"):
        average_precision([0.5], [1.0], method="101_point")
    with pytest.raises(ValueError, match="non-decreasing"):
        average_precision([0.5, 0.2], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        match_detections_voc([[0, 0, 1]], [1.0], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="images"):
        voc_evaluate([{"boxes": [], "labels": []}], [])
