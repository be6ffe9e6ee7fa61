"""ResNeXt against torchvision's resnext models (weights=None)."""

import pytest
import torch
import torchvision

from modernvision.analysis import summarize
from modernvision.models import create


def test_resnext50_param_count(num_params):
    with torch.device("meta"):
        ours, ref = create("resnext50_32x4d"), torchvision.models.resnext50_32x4d()
    assert num_params(ours) == num_params(ref) == 25_028_904


@pytest.mark.parametrize("name", ["resnext101_32x8d", "resnext101_64x4d"])
def test_resnext101_param_counts(name, num_params):
    with torch.device("meta"):
        ours, ref = create(name), getattr(torchvision.models, name)()
        assert ours(torch.empty(1, 3, 224, 224)).shape == (1, 1000)
    assert num_params(ours) == num_params(ref)


def test_cardinality_and_group_width():
    m = create("resnext50_32x4d")
    # Table 1: conv2 stage 3x3 has 128 channels in 32 groups (4 per group), doubling per stage.
    widths = [getattr(m, f"layer{i}")[0].conv2 for i in range(1, 5)]
    assert [c.out_channels for c in widths] == [128, 256, 512, 1024]
    assert {c.groups for c in widths} == {32}


def test_converted_torchvision_weights_give_same_logits(torchvision_pair):
    ours, ref = torchvision_pair("resnext50_32x4d")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4


def test_macs_match_torchvision_gflops():
    ops = torchvision.models.get_model_weights("resnext50_32x4d").DEFAULT.meta["_ops"]
    summary = summarize(create("resnext50_32x4d"), (3, 224, 224))
    assert abs(summary.total_macs / 1e9 - ops) / ops < 0.02


def test_every_parameter_gets_a_gradient(check_grads):
    check_grads(create("resnext50_32x4d", num_classes=10), torch.randn(2, 3, 32, 32), 10)


def test_small_input_shape():
    model = create("resnext50_32x4d", num_classes=10, in_channels=1, small_input=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnext101_32x8d", "resnext101_64x4d"])
def test_resnext101_macs_match_torchvision_gflops(name):
    ops = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    summary = summarize(create(name), (3, 224, 224))
    assert abs(summary.total_macs / 1e9 - ops) / ops < 0.02
