"""CenterNet/CornerNet Gaussian heatmaps against the geometry they are defined by."""

import math

import pytest
import torch

from modernvision import ops


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


@pytest.mark.parametrize("height, width", [(10, 10), (7, 31), (50, 3), (120, 80)])
@pytest.mark.parametrize("min_overlap", [0.5, 0.7, 0.9])
def test_gaussian_radius_keeps_the_overlap_in_all_three_cases(height, width, min_overlap):
    r = ops.gaussian_radius(height, width, min_overlap)
    box = (0.0, 0.0, float(width), float(height))
    shifted = (r, r, width + r, height + r)  # both corners moved the same way
    inward = (r, r, width - r, height - r)  # both corners moved inwards
    outward = (-r, -r, width + r, height + r)  # both corners moved outwards
    overlaps = [iou(box, shifted), iou(box, inward), iou(box, outward)]
    assert min(overlaps) == pytest.approx(min_overlap, abs=1e-9)  # the binding case is tight
    assert all(o >= min_overlap - 1e-9 for o in overlaps)


def test_draw_gaussian_values_and_maximum():
    heatmap = torch.zeros(9, 11)
    ops.draw_gaussian(heatmap, (4, 3), radius=2)
    sigma = 5 / 6
    assert heatmap[3, 4] == 1.0
    assert heatmap[3, 6].item() == pytest.approx(math.exp(-4 / (2 * sigma**2)), rel=1e-6)
    assert heatmap[3, 7] == 0.0  # outside the (2r + 1)^2 window
    for d in (1, 2):  # symmetric about the centre
        assert heatmap[3 + d, 4] == heatmap[3 - d, 4] == heatmap[3, 4 + d] == heatmap[3, 4 - d]
    # Overlapping objects take the maximum, and a centre off the map is clipped, not an error.
    before = heatmap.clone()
    ops.draw_gaussian(heatmap, (5, 3), radius=1)
    assert heatmap[3, 5] == 1.0 and torch.equal(torch.maximum(heatmap, before), heatmap)
    ops.draw_gaussian(heatmap, (-1, 0), radius=2)
    assert heatmap[0, 0] == pytest.approx(math.exp(-1 / (2 * sigma**2)), rel=1e-6)
    with pytest.raises(ValueError, match=r"heatmap must have shape \[H, W\]"):
        ops.draw_gaussian(torch.zeros(2, 3, 3), (1, 1), 1)
