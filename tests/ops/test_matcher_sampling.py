"""Matcher, sampler and hard-negative mining: torchvision equality, invariants, hand-built cases."""

import pytest
import torch
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler as TVSampler
from torchvision.models.detection._utils import Matcher as TVMatcher
from torchvision.models.detection._utils import SSDMatcher as TVSSDMatcher

from modernvision import ops


def iou_matrix(num_gt: int, num_pred: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    quality = torch.rand(num_gt, num_pred, generator=g)
    quality = (quality * 10).round() / 10  # many ties, within and across ground truths
    quality[:, ::5] = quality[:, :1]  # exact duplicates of a column
    return quality


@pytest.mark.parametrize("low_quality", [False, True])
def test_matcher_equals_torchvision(low_quality):
    for seed in range(5):
        quality = iou_matrix(4 + seed, 50, seed)
        for high, low in [(0.7, 0.3), (0.5, 0.5), (0.5, 0.4)]:
            expected = TVMatcher(high, low, low_quality)(quality.clone())
            assert torch.equal(ops.Matcher(high, low, low_quality)(quality.clone()), expected)


def test_ssd_matcher_equals_torchvision():
    for seed in range(5):
        quality = torch.rand(3 + seed, 40, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(ops.SSDMatcher(0.5)(quality), TVSSDMatcher(0.5)(quality))


def test_matcher_hand_built_low_quality_match():
    # gt 0's best prediction (1) only reaches 0.4; it is matched anyway with low-quality matches.
    quality = torch.tensor([[0.1, 0.4, 0.2], [0.0, 0.2, 0.9]])
    assert ops.Matcher(0.7, 0.3)(quality).tolist() == [-1, -2, 1]
    assert ops.Matcher(0.7, 0.3, allow_low_quality_matches=True)(quality).tolist() == [-1, 0, 1]


def test_matcher_empty_and_errors():
    assert ops.Matcher(0.7, 0.3)(torch.zeros(0, 5)).tolist() == [-1] * 5
    assert ops.Matcher(0.7, 0.3)(torch.zeros(3, 0)).shape == (0,)
    assert ops.SSDMatcher(0.5)(torch.zeros(0, 2)).tolist() == [-1, -1]
    with pytest.raises(ValueError, match="low_threshold"):
        ops.Matcher(0.3, 0.7)
    with pytest.raises(ValueError, match="match_quality_matrix must have shape"):
        ops.Matcher(0.7, 0.3)(torch.zeros(5))


def test_sampler_invariants():
    g = torch.Generator().manual_seed(0)
    matched = [torch.randint(-1, 4, (300,), generator=g), torch.tensor([0, 0, 1, -1, 0])]
    sampler = ops.BalancedPositiveNegativeSampler(64, 0.25)
    pos, neg = sampler(matched, generator=g)
    for labels, p, n in zip(matched, pos, neg):
        p, n = p.bool(), n.bool()
        assert not (p & n).any()
        assert (labels[p] >= 1).all() and (labels[n] == 0).all()
        num_pos = min(int((labels >= 1).sum()), 16)
        assert int(p.sum()) == num_pos
        assert int(n.sum()) == min(int((labels == 0).sum()), 64 - num_pos)
    # A few positives: negatives fill the batch.
    pos, neg = sampler([torch.tensor([1] * 3 + [0] * 100)], generator=g)
    assert int(pos[0].sum()) == 3 and int(neg[0].sum()) == 61


def test_sampler_draws_like_torchvision_under_one_seed():
    matched = [torch.randint(-1, 3, (500,)), torch.randint(-1, 3, (200,))]
    torch.manual_seed(123)
    expected = TVSampler(128, 0.25)(matched)
    torch.manual_seed(123)
    ours = ops.BalancedPositiveNegativeSampler(128, 0.25)(matched)
    for a, b in zip(ours[0] + ours[1], expected[0] + expected[1]):
        assert torch.equal(a, b)


def test_sampler_errors():
    with pytest.raises(ValueError, match="positive_fraction"):
        ops.BalancedPositiveNegativeSampler(10, 1.5)
    with pytest.raises(ValueError, match=r"matched_idxs\[0\] must have shape \[N\]"):
        ops.BalancedPositiveNegativeSampler(10, 0.5)([torch.zeros(2, 2)])


def test_hard_negative_mining_hand_built():
    labels = torch.tensor([[2, 0, 0, 0, 0, 0, -1, 0], [0, 0, 0, 0, 0, 0, 0, 0]])
    scores = torch.tensor(
        [[9.0, 0.1, 0.8, 0.3, 0.9, 0.7, 5.0, 0.2], [0.5, 0.9, 0.1, 0.3, 0.2, 0.4, 0.6, 0.8]]
    )
    selected = ops.hard_negative_mining(scores, labels, neg_pos_ratio=3)
    # Image 0: one positive -> the 3 highest-scoring negatives (the ignored 5.0 is not one).
    assert selected[0].nonzero().view(-1).tolist() == [2, 4, 5]
    # Image 1: no positives -> no negatives, unless a minimum is asked for.
    assert not selected[1].any()
    selected = ops.hard_negative_mining(scores, labels, neg_pos_ratio=3, min_negatives=2)
    assert selected[1].nonzero().view(-1).tolist() == [1, 7]
    # More negatives requested than exist: all of them, never a positive or an ignored one.
    selected = ops.hard_negative_mining(scores[0], labels[0], neg_pos_ratio=100)
    assert selected.tolist() == [False, True, True, True, True, True, False, True]


def test_hard_negative_mining_ties_and_errors():
    labels = torch.tensor([1, 0, 0, 0, 0])
    scores = torch.tensor([0.0, 0.5, 0.5, 0.5, 0.1])
    # Among equal scores, lower indices first.
    assert ops.hard_negative_mining(scores, labels, 2).tolist() == [False, True, True, False, False]
    with pytest.raises(ValueError, match="same shape|one shape"):
        ops.hard_negative_mining(scores, labels[:3])
