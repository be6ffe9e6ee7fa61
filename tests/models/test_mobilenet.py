"""MobileNetV2 against torchvision's mobilenet_v2 (weights=None)."""

import pytest
import torch
import torchvision
from torchvision.models._utils import _make_divisible
from torchvision.models.feature_extraction import create_feature_extractor

from modernvision.analysis import summarize
from modernvision.models import create
from modernvision.models.classification.mobilenet import (
    convert_torchvision_mobilenet_v2,
    make_divisible,
)


def test_make_divisible_matches_torchvision():
    for v in [0.5 * k for k in range(1, 3000)]:
        assert make_divisible(v, 8) == _make_divisible(v, 8)


def test_param_count(num_params):
    with torch.device("meta"):
        ours, ref = create("mobilenet_v2"), torchvision.models.mobilenet_v2()
    assert num_params(ours) == num_params(ref) == 3_504_872


def test_converted_torchvision_weights_give_same_logits(torchvision_pair):
    ours, ref = torchvision_pair("mobilenet_v2")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4


@pytest.mark.parametrize("width_mult", [0.5, 1.4])
def test_width_multiplier_matches_torchvision(width_mult, num_params, randomize_bn):
    ref = torchvision.models.mobilenet_v2(width_mult=width_mult).eval()
    randomize_bn(ref)
    ours = create("mobilenet_v2", width_mult=width_mult).eval()
    assert num_params(ours) == num_params(ref)
    ours.load_state_dict(convert_torchvision_mobilenet_v2(ref.state_dict()))
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4


def test_stages_match_torchvision_features(randomize_bn):
    ref = torchvision.models.mobilenet_v2().eval()
    randomize_bn(ref)
    # torchvision's features: 0 stem, 1 stage 1, 2-3 stage 2, 4-6 stage 3, 11-13 stage 5, 18 last.
    body = create_feature_extractor(
        ref,
        {
            "features.1": "c1",
            "features.3": "c2",
            "features.6": "c3",
            "features.13": "c4",
            "features.18": "c5",
        },
    )
    ours = create("mobilenet_v2").eval()
    ours.load_state_dict(convert_torchvision_mobilenet_v2(ref.state_dict()))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got, want = ours.forward_stages(x), body(x)
    assert [(f.name, f.channels, f.stride) for f in ours.feature_info] == [
        ("c1", 16, 2),
        ("c2", 24, 4),
        ("c3", 32, 8),
        ("c4", 96, 16),
        ("c5", 1280, 32),
    ]
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-5), name


def test_linear_bottleneck_and_shortcuts():
    m = create("mobilenet_v2")
    blocks = [b for stage in m.stages for b in stage]
    assert len(blocks) == 17
    assert all(not hasattr(b.project, "act") for b in blocks)  # linear projection
    assert blocks[0].expand is None  # t = 1
    assert [b.use_residual for b in blocks].count(True) == 10  # repeats with stride 1, same c


def test_macs_match_torchvision_gflops():
    ops = torchvision.models.get_model_weights("mobilenet_v2").DEFAULT.meta["_ops"]
    summary = summarize(create("mobilenet_v2"), (3, 224, 224))
    assert abs(summary.total_macs / 1e9 - ops) / ops < 0.02


def test_small_input_trains(check_grads):
    model = create("mobilenet_v2", num_classes=10, in_channels=1, small_input=True)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 1, 28, 28)).shape == (1, 10)
    check_grads(model.train(), torch.randn(2, 1, 32, 32), 10)
    assert model.stem.conv.stride == (1, 1)
