"""FPN, its extra levels and MultiScaleRoIAlign against torchvision.ops, key for key."""

from collections import OrderedDict

import pytest
import torch
import torchvision
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

from modernvision.models.necks.fpn import (
    ConvP6P7,
    FeaturePyramidNetwork,
    MaxPoolP6,
    MultiScaleRoIAlign,
    fpn_level,
)

IN_CHANNELS = [8, 16, 24, 32]


def _features(seed: int = 0, size=(37, 50)) -> OrderedDict:
    # Odd sizes: the top-down path must resize to each lateral's exact size.
    g = torch.Generator().manual_seed(seed)
    h, w = size
    out = OrderedDict()
    for i, c in enumerate(IN_CHANNELS):
        out[str(i)] = torch.randn(2, c, h, w, generator=g)
        h, w = (h + 1) // 2, (w + 1) // 2
    return out


@pytest.mark.parametrize("extra", ["none", "maxpool", "p6p7_from_c5", "p6p7_from_p5"])
def test_fpn_equals_torchvision(extra):
    d = 12
    tv_extra, ours_extra = {
        "none": (None, None),
        "maxpool": (LastLevelMaxPool(), MaxPoolP6()),
        "p6p7_from_c5": (LastLevelP6P7(IN_CHANNELS[-1], d), ConvP6P7(IN_CHANNELS[-1], d)),
        "p6p7_from_p5": (LastLevelP6P7(d, d), ConvP6P7(d, d)),
    }[extra]
    torch.manual_seed(0)
    ref = torchvision.ops.FeaturePyramidNetwork(IN_CHANNELS, d, extra_blocks=tv_extra)
    ours = FeaturePyramidNetwork(IN_CHANNELS, d, extra_levels=ours_extra)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    x = _features()
    want, got = ref(x), ours(x)
    assert list(got) == list(want)  # torchvision's names for non-"c<k>" inputs
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=0)
    # Named stages c2..c5 give p2..p5 and the extra levels continue the numbering.
    named = ours(OrderedDict((f"c{i + 2}", t) for i, t in enumerate(x.values())))
    extra_names = {"none": [], "maxpool": ["p6"]}.get(extra, ["p6", "p7"])
    assert list(named) == ["p2", "p3", "p4", "p5", *extra_names]


def test_fpn_init_and_bottom_up_ablation():
    ours = FeaturePyramidNetwork(IN_CHANNELS, 12)
    assert all(bool((m.bias == 0).all()) for m in ours.modules()
               if isinstance(m, torch.nn.Conv2d))
    bottom_up = FeaturePyramidNetwork(IN_CHANNELS, 12, top_down=False)
    bottom_up.load_state_dict(ours.state_dict())
    x = _features(1)
    got = bottom_up(x)
    # Without the top-down path each level is smooth(lateral(C_k)) alone.
    for i, name in enumerate(x):
        lateral = ours.inner_blocks[i](x[name])
        torch.testing.assert_close(got[name], ours.layer_blocks[i](lateral))
    # The coarsest level never receives a top-down signal: the same in both.
    torch.testing.assert_close(got["3"], ours(x)["3"])


def _boxes(n: int, seed: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size * 0.7
    # Sides from 2 to ~0.9 * size: every pyramid level gets some RoIs.
    wh = 2 + torch.rand(n, 2, generator=g) ** 2 * size * 0.9
    return torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)


@pytest.mark.parametrize("names", [["0", "1", "2", "3"], ["1"]])
def test_multiscale_roi_align_equals_torchvision(names):
    g = torch.Generator().manual_seed(3)
    size = 256
    features = OrderedDict(
        (str(i), torch.randn(2, 6, size // 2 ** (i + 2), size // 2 ** (i + 2), generator=g))
        for i in range(4))
    boxes = [_boxes(40, 1, size), _boxes(25, 2, 200)]
    image_sizes = [(size, size), (200, 230)]
    ref = torchvision.ops.MultiScaleRoIAlign(names, 7, 2)
    ours = MultiScaleRoIAlign(names, 7, 2)
    assert list(ours.state_dict()) == list(ref.state_dict()) == []
    want = ref(features, boxes, image_sizes)
    got = ours(features, boxes, image_sizes)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fpn_level_rule_is_eq_1():
    # A 224x224 RoI goes to k0 = 4; each halving of the side one level down; clamped.
    sides = torch.tensor([224.0, 112.0, 111.0, 448.0, 896.0, 10.0, 56.0])
    boxes = torch.stack([torch.zeros(7), torch.zeros(7), sides, sides], dim=1)
    assert fpn_level(boxes, 2, 5).tolist() == [2, 1, 0, 3, 3, 0, 0]
