"""Segmentation metrics against sklearn and a hand-computed case."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    jaccard_score,
)
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from modernvision.metrics import SegmentationMetrics, segmentation_scores


def test_hand_computed_case():
    # Valid pixels (true, pred): (0,0) (0,1) (1,1) (1,1) (2,1); one ignored pixel.
    target = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 1, 0]])
    m = SegmentationMetrics(3, ignore_index=255)
    m.update(pred, target)
    r = m.compute()
    np.testing.assert_array_equal(r["confusion"], [[1, 1, 0], [0, 2, 0], [0, 1, 0]])
    assert r["pixel_acc"] == pytest.approx(3 / 5)
    np.testing.assert_allclose(r["acc"], [1 / 2, 1, 0])
    assert r["mean_acc"] == pytest.approx(1 / 2)
    # IoU: 1 / (2 + 1 - 1), 2 / (2 + 4 - 2), 0 / (1 + 0 - 0).
    np.testing.assert_allclose(r["iou"], [1 / 2, 1 / 2, 0])
    assert r["miou"] == pytest.approx(1 / 3)
    assert r["fwiou"] == pytest.approx((2 * 0.5 + 2 * 0.5 + 1 * 0) / 5)


def test_class_absent_everywhere_is_nan_and_left_out():
    target = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 1, 0]])
    m = SegmentationMetrics(4, ignore_index=255)
    m.update(pred, target)
    r = m.compute()
    assert np.isnan(r["iou"][3]) and np.isnan(r["acc"][3])
    assert r["miou"] == pytest.approx(1 / 3)
    assert r["mean_acc"] == pytest.approx(1 / 2)


def test_against_sklearn_on_random_batches_torch_and_numpy():
    rng = np.random.default_rng(0)
    c = 6
    m = SegmentationMetrics(c, ignore_index=255)
    all_t, all_p = [], []
    for i in range(4):
        target = rng.integers(0, c - 1, (2, 17, 23))  # class 5 never in the target
        target[rng.random(target.shape) < 0.1] = 255
        logits = rng.normal(size=(2, c, 17, 23))
        logits[:, :, :5] += 3 * (np.arange(c) == 1)[None, :, None, None]  # bias towards class 1
        pred = logits.argmax(1)
        if i % 2:
            m.update(torch.from_numpy(logits), torch.from_numpy(target))  # scores, torch
        else:
            m.update(pred, target)  # labels, numpy
        keep = target != 255
        all_t.append(target[keep])
        all_p.append(pred[keep])
    t, p = np.concatenate(all_t), np.concatenate(all_p)
    r = m.compute()
    np.testing.assert_array_equal(r["confusion"], sk_confusion_matrix(t, p, labels=range(c)))
    assert r["pixel_acc"] == pytest.approx(accuracy_score(t, p))
    with warnings.catch_warnings():  # sklearn warns about the predicted-only class
        warnings.simplefilter("ignore")
        assert r["mean_acc"] == pytest.approx(balanced_accuracy_score(t, p))
    present = np.union1d(t, p)
    np.testing.assert_allclose(r["iou"][present], jaccard_score(t, p, labels=present, average=None))
    assert r["miou"] == pytest.approx(jaccard_score(t, p, average="macro"))
    assert r["fwiou"] == pytest.approx(jaccard_score(t, p, average="weighted"))


def test_accumulation_equals_one_shot_and_reset():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 3, (4, 8, 8))
    pred = rng.integers(0, 3, (4, 8, 8))
    whole = SegmentationMetrics(3, ignore_index=None)
    whole.update(pred, target)
    parts = SegmentationMetrics(3, ignore_index=None)
    for i in range(4):
        parts.update(torch.from_numpy(pred[i]), torch.from_numpy(target[i]))
    np.testing.assert_array_equal(whole.compute()["confusion"], parts.compute()["confusion"])
    parts.reset()
    assert np.isnan(parts.compute()["miou"])


def test_scores_of_a_given_matrix():
    r = segmentation_scores(np.array([[5, 0], [0, 5]]))
    assert r["pixel_acc"] == r["mean_acc"] == r["miou"] == r["fwiou"] == 1.0


def test_bad_labels_raise():
    m = SegmentationMetrics(3, ignore_index=255)
    with pytest.raises(ValueError, match="targets"):
        m.update(np.zeros((2, 2), int), np.full((2, 2), 3))
    with pytest.raises(ValueError, match="preds"):
        m.update(np.full((2, 2), 7), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="shaped like targets"):
        m.update(np.zeros((3, 3), int), np.zeros((2, 2), int))
