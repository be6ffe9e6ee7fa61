"""EfficientNet B0-B7 against torchvision's efficientnet_b* (weights=None) and the paper's eq. 3."""

import math

import pytest
import torch
import torchvision
from torch import nn

from modernvision.analysis import summarize
from modernvision.layers.residual import InvertedResidual
from modernvision.models import convert_torchvision_state_dict, create
from modernvision.models.classification.efficientnet import (
    compound_scaling_table,
    efficientnet,
    format_compound_scaling_table,
)


def test_b0_param_count(num_params):
    with torch.device("meta"):
        ours, ref = create("efficientnet_b0"), torchvision.models.efficientnet_b0()
    assert num_params(ours) == num_params(ref) == 5_288_548


@pytest.mark.parametrize("phi", range(1, 8))
def test_scaled_variants_match_torchvision(phi, num_params):
    name = f"efficientnet_b{phi}"
    with torch.device("meta"):
        ours, ref = create(name), getattr(torchvision.models, name)()
    assert num_params(ours) == num_params(ref)
    ref_bn = next(m for m in ref.modules() if isinstance(m, nn.BatchNorm2d))
    our_bn = next(m for m in ours.modules() if isinstance(m, nn.BatchNorm2d))
    assert (our_bn.eps, our_bn.momentum) == (ref_bn.eps, ref_bn.momentum)
    assert ours.dropout.p == ref.classifier[0].p


def test_converted_torchvision_weights_give_same_logits(torchvision_pair):
    ours, ref = torchvision_pair("efficientnet_b0")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4


def test_training_mode_matches_torchvision_with_stochastic_depth():
    """Same seed, same random draws: stochastic depth and dropout sit where torchvision has them."""
    ref = torchvision.models.efficientnet_b0(num_classes=10).train()
    ours = create("efficientnet_b0", num_classes=10).train()
    ours.load_state_dict(convert_torchvision_state_dict("efficientnet_b0", ref.state_dict()))
    ref_p = [m.stochastic_depth.p for m in ref.modules() if hasattr(m, "stochastic_depth")]
    our_p = [m.drop_path_prob for m in ours.modules() if isinstance(m, InvertedResidual)]
    assert our_p == ref_p
    assert our_p == [0.2 * i / 16 for i in range(16)]
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(3)
    want = ref(x)
    torch.manual_seed(3)
    got = ours(x)
    assert torch.allclose(got, want, atol=1e-5)
    torch.manual_seed(4)
    assert not torch.allclose(ours(x), want, atol=1e-3)  # it is random in training


def test_compound_scaling_table():
    rows = compound_scaling_table()
    assert [r.name for r in rows] == [f"efficientnet_b{i}" for i in range(8)]
    for phi, r in enumerate(rows):
        assert r.depth == pytest.approx(1.2**phi) and r.width == pytest.approx(1.1**phi)
        assert r.resolution == round(224 * 1.15**phi)
        assert r.flops_factor == pytest.approx((1.2 * 1.1**2 * 1.15**2) ** phi)
    assert [r.official_width for r in rows] == [1.0, 1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0]
    assert [r.official_depth for r in rows] == [1.0, 1.1, 1.2, 1.4, 1.8, 2.2, 2.6, 3.1]
    assert [r.official_resolution for r in rows] == [224, 240, 260, 300, 380, 456, 528, 600]
    assert [r.official_dropout for r in rows] == [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]
    # alpha * beta^2 * gamma^2 ~= 2 (Sec. 3.3)
    assert rows[1].flops_factor == pytest.approx(2.0, abs=0.1)
    assert "efficientnet_b7" in format_compound_scaling_table()


def test_compound_scaling_builds_the_formula():
    with torch.device("meta"):
        model = efficientnet(2, scaling="compound")
    b0_repeats = [1, 2, 2, 3, 3, 4, 1]
    assert [len(s) for s in model.stages] == [math.ceil(n * 1.2**2) for n in b0_repeats]
    assert model.stem.conv.out_channels == 40  # make_divisible(32 * 1.21) = 40
    assert model.config.resolution == 296
    with pytest.raises(ValueError, match="phi"):
        efficientnet(8)
    with pytest.raises(ValueError, match="scaling"):
        efficientnet(1, scaling="linear")


def test_macs_match_torchvision_gflops():
    ops = torchvision.models.get_model_weights("efficientnet_b0").DEFAULT.meta["_ops"]
    summary = summarize(create("efficientnet_b0"), (3, 224, 224))
    assert abs(summary.total_macs / 1e9 - ops) / ops < 0.02


def test_stages():
    model = create("efficientnet_b0").eval()
    assert [(f.name, f.channels, f.stride) for f in model.feature_info] == [
        ("c1", 16, 2),
        ("c2", 24, 4),
        ("c3", 40, 8),
        ("c4", 112, 16),
        ("c5", 1280, 32),
    ]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        stages = model.forward_stages(x)
        assert torch.allclose(model.forward_head(stages["c5"]), model(x), atol=1e-6)
    for f in model.feature_info:
        assert stages[f.name].shape[1:] == (f.channels, 64 // f.stride, 64 // f.stride)


def test_small_input_trains(check_grads):
    model = create("efficientnet_b0", num_classes=10, in_channels=1, small_input=True)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 1, 28, 28)).shape == (1, 10)
    # Batch 8: every block's branch survives stochastic depth for some sample.
    check_grads(model.train(), torch.randn(8, 1, 32, 32), 10)


@pytest.mark.slow
@pytest.mark.parametrize("phi", range(1, 8))
def test_scaled_variants_macs_match_torchvision_gflops(phi):
    # torchvision's GFLOPS are measured at each variant's own evaluation crop.
    weights = torchvision.models.get_model_weights(f"efficientnet_b{phi}").DEFAULT
    size = weights.transforms().crop_size[0]
    summary = summarize(create(f"efficientnet_b{phi}"), (3, size, size))
    ops = weights.meta["_ops"]
    assert abs(summary.total_macs / 1e9 - ops) / ops < 0.02
