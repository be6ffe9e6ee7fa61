"""Anchor generator and box coder against torchvision's detection utilities."""

import math

import pytest
import torch
from torchvision.models.detection._utils import BoxCoder as TVBoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.image_list import ImageList

from modernvision import ops


@pytest.mark.parametrize(
    "sizes, ratios",
    [
        (((128, 256, 512),), ((0.5, 1.0, 2.0),)),  # Faster R-CNN (one level)
        (((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5),  # FPN
        (
            tuple((x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3))) for x in (32, 64, 128)),
            ((0.5, 1.0, 2.0),) * 3,
        ),  # RetinaNet-style octave scales
    ],
)
def test_anchor_generator_equals_torchvision(sizes, ratios):
    images = torch.zeros(2, 3, 200, 264)
    strides = [4, 8, 16, 32, 64][: len(sizes)]
    features = [torch.zeros(2, 8, math.ceil(200 / s), math.ceil(264 / s)) for s in strides]
    expected = TVAnchorGenerator(sizes, ratios)(ImageList(images, [(200, 264)] * 2), features)
    generator = ops.AnchorGenerator(sizes, ratios)
    ours = generator(images, features)
    assert len(ours) == 2
    for a, b in zip(ours, expected):
        assert torch.equal(a, b)
    assert (
        generator.num_anchors_per_location()
        == TVAnchorGenerator(sizes, ratios).num_anchors_per_location()
    )


def test_cell_anchors_hand_computed():
    # size 32, ratio 1 -> [-16, -16, 16, 16]; ratio 2 (tall): w = 32 / sqrt 2, h = 32 sqrt 2.
    base = ops.cell_anchors((32,), (1.0, 2.0))
    assert base.tolist() == [[-16.0, -16.0, 16.0, 16.0], [-11.0, -23.0, 11.0, 23.0]]
    grid = ops.grid_anchors(base, (2, 3), (8, 8))
    assert grid.shape == (2 * 3 * 2, 4)
    # position (row 1, col 2) is shifted by (16, 8); its second anchor is the tall one.
    assert grid[(1 * 3 + 2) * 2 + 1].tolist() == [5.0, -15.0, 27.0, 31.0]


def test_anchor_generator_errors():
    with pytest.raises(ValueError, match="one entry per feature level"):
        ops.AnchorGenerator(((32,), (64,)), ((1.0,),))
    with pytest.raises(ValueError, match="positive"):
        ops.cell_anchors((0,), (1.0,))
    generator = ops.AnchorGenerator(((32,),), ((1.0,),))
    with pytest.raises(ValueError, match="2 feature maps"):
        generator(torch.zeros(1, 3, 64, 64), [torch.zeros(1, 1, 8, 8)] * 2)


def random_boxes(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 200
    return torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * 100], dim=1)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_box_coder_equals_torchvision(weights):
    theirs = TVBoxCoder(weights)
    ours = ops.BoxCoder(weights)
    for seed in range(3):
        gt, anchors = random_boxes(64, seed), random_boxes(64, seed + 10)
        deltas = ours.encode(gt, anchors)
        torch.testing.assert_close(deltas, theirs.encode_single(gt, anchors))
        # Per-class deltas (N, 4 * J), including huge dw/dh that must be clamped.
        codes = torch.randn(64, 12, generator=torch.Generator().manual_seed(seed)) * 3
        codes[::9, 2] = 50.0
        torch.testing.assert_close(
            ours.decode(codes, anchors), theirs.decode_single(codes, anchors)
        )
        torch.testing.assert_close(
            ours.decode(codes, anchors).view(64, 3, 4), theirs.decode(codes, [anchors])
        )
        torch.testing.assert_close(ours.decode(deltas, anchors), gt, atol=1e-3, rtol=1e-5)


def test_box_coder_clamp_value():
    coder = ops.BoxCoder()
    assert coder.bbox_xform_clip == pytest.approx(math.log(1000 / 16))
    anchor = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    decoded = coder.decode(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), anchor)
    # exp(log(1000 / 16)) * 16 = 1000: the box is clamped to 1000 x 1000 around the centre.
    torch.testing.assert_close(decoded, torch.tensor([[-492.0, -492.0, 508.0, 508.0]]))


def test_box_coder_empty_and_errors():
    coder = ops.BoxCoder((10.0, 10.0, 5.0, 5.0))
    assert coder.encode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    assert coder.decode(torch.zeros(0, 8), torch.zeros(0, 4)).shape == (0, 8)
    with pytest.raises(ValueError, match="pair up"):
        coder.encode(random_boxes(3, 0), random_boxes(4, 0))
    with pytest.raises(ValueError, match=r"deltas must have shape \[N, 4 \* J\]"):
        coder.decode(torch.zeros(3, 5), random_boxes(3, 0))
    with pytest.raises(ValueError, match="four positive"):
        ops.BoxCoder((1.0, 1.0, 0.0, 1.0))
