"""Drawing boxes and masks, pixel for pixel against torchvision.utils."""

import numpy as np
import pytest
import torch
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from modernvision.viz.draw import (
    draw_boxes,
    draw_instances,
    draw_masks,
    image_grid,
    palette,
    save_image,
    to_rgb_uint8,
)


def _image(seed=0, h=40, w=50):
    return np.random.default_rng(seed).integers(0, 256, (3, h, w), dtype=np.uint8)


@pytest.mark.parametrize("width", [1, 2, 3])
def test_boxes_match_torchvision(width):
    img = torch.from_numpy(_image())
    boxes = torch.tensor([[3.7, 2.2, 20.9, 30.5], [10, 10, 49, 39], [0, 0, 8, 8],
                          [-3, -2, 60, 45], [25.0, 5.0, 40.0, 15.0]])
    colors = palette(len(boxes))
    ref = draw_bounding_boxes(img, boxes, colors=colors, width=width)
    mine = draw_boxes(img, boxes, colors=colors, width=width)
    np.testing.assert_array_equal(mine, ref.permute(1, 2, 0).numpy())


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.8])
def test_masks_match_torchvision(alpha):
    img = torch.from_numpy(_image(1))
    masks = torch.zeros(3, 40, 50, dtype=torch.bool)
    masks[0, 2:10, 3:30] = True
    masks[1, 15:35, 5:20] = True
    masks[2, 20:30, 30:48] = True
    colors = palette(3)
    ref = draw_segmentation_masks(img, masks, alpha=alpha, colors=colors)
    mine = draw_masks(img, masks, colors=colors, alpha=alpha)
    np.testing.assert_array_equal(mine, ref.permute(1, 2, 0).numpy())


def test_instances_with_names_and_scores():
    img = np.zeros((60, 80), np.uint8)
    masks = np.zeros((2, 60, 80), bool)
    masks[0, 20:40, 10:30] = True
    masks[1, 25:50, 50:70] = True
    boxes = np.array([[10, 20, 30, 40], [50, 25, 70, 50]], float)
    out = draw_instances(img, boxes=boxes, masks=masks, labels=[1, 2], scores=[0.9, 0.42],
                         class_names={1: "shirt", 2: "digit-7"})
    table = palette(3)
    assert out.shape == (60, 80, 3) and out.dtype == np.uint8
    assert tuple(out[40, 20]) == table[1]  # bottom edge of box 0 in class 1's colour
    assert tuple(out[45, 70]) == table[2]  # right edge of box 1
    # inside a mask, away from the tag: half of the class colour over black
    np.testing.assert_array_equal(out[35, 60], (np.array(table[2]) * np.float32(0.45))
                                  .astype(np.uint8))
    assert out[5:19, 10:40].any()  # the tag above box 0


def test_conversions_grid_and_save(tmp_path):
    f = torch.rand(3, 7, 9)
    np.testing.assert_array_equal(to_rgb_uint8(f), (f.permute(1, 2, 0).numpy() * 255).round()
                                  .astype(np.uint8))
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb_uint8(grey).shape == (3, 4, 3)
    grid = image_grid([grey, np.zeros((5, 2, 3), np.uint8), grey], ncols=2, pad=1)
    assert grid.shape == (2 * 5 + 3, 2 * 4 + 3, 3)
    np.testing.assert_array_equal(grid[1:4, 1:5, 0], grey)
    path = save_image(grid, tmp_path / "sub" / "g.png")
    assert path.is_file()


def test_errors():
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="masks must be"):
        draw_masks(img, np.zeros((1, 5, 5), bool))
    with pytest.raises(ValueError, match="labels"):
        draw_boxes(img, [[0, 0, 5, 5]], labels=["a", "b"])
    with pytest.raises(ValueError, match="x2 < x1"):
        draw_boxes(img, [[5, 0, 1, 5]])
