"""Accuracy, top-k accuracy and confusion matrix against sklearn and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, top_k_accuracy_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from modernvision.metrics import accuracy, confusion_matrix


def test_hand_computed_top1_top2():
    logits = torch.tensor(
        [
            [0.1, 0.7, 0.2],  # true 1: top-1 hit
            [0.5, 0.1, 0.4],  # true 2: second best -> top-2 hit only
            [0.2, 0.3, 0.5],  # true 0: last -> miss
            [0.6, 0.3, 0.1],  # true 0: top-1 hit
        ]
    )
    target = torch.tensor([1, 2, 0, 0])
    assert accuracy(logits, target, topk=(1, 2, 3)) == [0.5, 0.75, 1.0]
    assert accuracy(logits, target, topk=1) == 0.5
    assert accuracy(logits.argmax(1), target) == [0.5]


def test_against_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(500, 10))
    y = rng.integers(0, 10, 500)
    top1, top5 = accuracy(scores, y, topk=(1, 5))
    assert top1 == pytest.approx(accuracy_score(y, scores.argmax(1)))
    assert top5 == pytest.approx(top_k_accuracy_score(y, scores, k=5, labels=range(10)))
    assert accuracy(torch.from_numpy(scores).float(), torch.from_numpy(y), topk=5) == top5


def test_confusion_matrix_against_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 1000)
    pred = np.where(rng.random(1000) < 0.6, y, rng.integers(0, 7, 1000))
    expected = sk_confusion_matrix(y, pred, labels=range(7))
    np.testing.assert_array_equal(confusion_matrix(pred, y, 7), expected)
    np.testing.assert_array_equal(
        confusion_matrix(torch.from_numpy(pred), torch.from_numpy(y), 7), expected
    )
    # Logits are reduced by argmax over the class dimension.
    logits = np.eye(7)[pred] + 0.01 * rng.random((1000, 7))
    np.testing.assert_array_equal(confusion_matrix(logits, y, 7), expected)
    # Ignored targets leave their samples out; a class absent from both stays a zero row/column.
    y_ign = np.where(np.arange(1000) % 5 == 0, -1, y)
    keep = y_ign != -1
    np.testing.assert_array_equal(
        confusion_matrix(pred, y_ign, 8, ignore_index=-1),
        sk_confusion_matrix(y[keep], pred[keep], labels=range(8)),
    )


def test_hand_computed_confusion():
    cm = confusion_matrix([0, 1, 1, 2, 0], [0, 1, 2, 2, 1], 3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [1, 1, 0], [0, 1, 1]])


def test_bad_inputs():
    with pytest.raises(ValueError, match="exceeds"):
        accuracy(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), topk=(5,))
    with pytest.raises(ValueError, match="k > 1"):
        accuracy(torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long), topk=(1, 2))
    with pytest.raises(ValueError, match="empty"):
        accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="targets must be in"):
        confusion_matrix([0, 1], [0, 5], 3)
    with pytest.raises(TypeError, match="integer labels"):
        confusion_matrix([0.5, 1.0], [0, 1], 3)
