"""k-means anchors with the 1 - IoU distance on hand-built box sets with known answers."""

import pytest
import torch

from modernvision._errors import InvalidArgumentError
from modernvision.ops import kmeans_anchors, mean_best_iou, shape_iou


def test_shape_iou_by_hand():
    sizes = torch.tensor([[10.0, 10.0], [20.0, 5.0]])
    anchors = torch.tensor([[10.0, 10.0], [5.0, 20.0]])
    # (10, 10) vs (5, 20) and (20, 5) vs (10, 10): overlap 5 x 10 = 50, union 100 + 100 - 50;
    # (20, 5) vs (5, 20): overlap 5 x 5, union 100 + 100 - 25.
    want = torch.tensor([[1.0, 50 / 150], [50 / 150, 25 / 175]])
    torch.testing.assert_close(shape_iou(sizes, anchors), want)


def test_exact_clusters_are_recovered_with_iou_one():
    shapes = [[10.0, 10.0], [30.0, 60.0], [100.0, 50.0]]
    order = torch.randperm(30, generator=torch.Generator().manual_seed(1))
    sizes = torch.tensor(shapes * 10)[order]
    anchors, iou = kmeans_anchors(sizes, 3, seed=0)
    assert anchors.tolist() == shapes  # sorted by area
    assert iou == pytest.approx(1.0)


def test_centroids_are_cluster_means_and_mean_iou_is_the_papers_avg_iou():
    sizes = torch.tensor([[8.0, 8.0], [12.0, 12.0], [50.0, 100.0], [70.0, 100.0]])
    anchors, iou = kmeans_anchors(sizes, 2, seed=3)
    assert anchors.tolist() == [[10.0, 10.0], [60.0, 100.0]]
    want = (64 / 100 + 100 / 144 + 5000 / 6000 + 6000 / 7000) / 4
    assert iou == pytest.approx(want)
    assert mean_best_iou(sizes, anchors) == pytest.approx(want)


def test_iou_distance_is_scale_free_and_seeded_runs_repeat():
    g = torch.Generator().manual_seed(0)
    sizes = torch.rand(200, 2, generator=g) * 80 + 5
    a, iou_a = kmeans_anchors(sizes, 5, seed=7)
    b, iou_b = kmeans_anchors(sizes, 5, seed=7)
    assert a.equal(b) and iou_a == iou_b
    scaled, iou_s = kmeans_anchors(sizes * 10, 5, seed=7)
    torch.testing.assert_close(scaled, a * 10)
    assert iou_s == pytest.approx(iou_a)
    # More anchors never fit worse than one (the mean size).
    one, iou_one = kmeans_anchors(sizes, 1)
    torch.testing.assert_close(one[0], sizes.double().mean(0))
    assert iou_a > iou_one


@pytest.mark.parametrize(("sizes", "k", "needle"), [
    (torch.ones(3, 2), 4, "at least k=4 boxes"),
    (torch.ones(3, 4), 2, r"Tensor\[N, 2\]"),
    (torch.tensor([[1.0, 0.0], [2.0, 2.0]]), 1, "positive"),
    (torch.ones(3, 2), 0, "positive int"),
])
def test_bad_input_is_refused(sizes, k, needle):
    with pytest.raises(InvalidArgumentError, match=needle):
        kmeans_anchors(sizes, k)
