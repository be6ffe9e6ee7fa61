"""VGG against torchvision's VGG (weights=None), the paper's Table 1 and its deepening recipe."""

import pytest
import torch
import torchvision
from torch import nn

from modernvision.analysis import summarize
from modernvision.models import convert_torchvision_state_dict, create
from modernvision.models.classification.vgg import deepen

NAMES = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


@pytest.mark.parametrize("name", NAMES)
def test_param_count_matches_torchvision(name, num_params):
    with torch.device("meta"):
        ours, ref = create(name), getattr(torchvision.models, name)()
    assert num_params(ours) == num_params(ref)
    if name == "vgg16":
        assert num_params(ours) == 138_357_544


def test_table_1_depths():
    with torch.device("meta"):
        for name, weight_layers in [("vgg11", 11), ("vgg13", 13), ("vgg16", 16), ("vgg19", 19)]:
            model = create(name)
            convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
            fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
            assert len(convs) + len(fcs) == weight_layers
            assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) for c in convs)
            # equal widths within a stage, doubling after each pool up to 512
            widths = [model.features.get_submodule(f"conv{s}_1").out_channels for s in range(1, 6)]
            assert widths == [64, 128, 256, 512, 512]


@pytest.mark.parametrize(("name", "size"), [("vgg16", 224), ("vgg11_bn", 64)])
def test_converted_torchvision_weights_give_same_logits(name, size, torchvision_pair):
    ours, ref = torchvision_pair(name, skip_init=True)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4


def test_converter_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unexpected key"):
        convert_torchvision_state_dict("vgg16", {"features.1.weight": torch.zeros(1)})


def test_vgg16_summary_claims():
    summary = summarize(create("vgg16"), (3, 224, 224))
    # About 89% of the parameters sit in the fully connected layers (fc6 alone: 102.8 M) ...
    assert summary.fraction("params", nn.Linear) == pytest.approx(0.89, abs=0.01)
    # ... while more than 99% of the multiply-adds are convolutions.
    assert summary.fraction("macs", nn.Conv2d) > 0.99
    # The largest activations are in the first stage (64 maps at 224x224).
    largest = max(summary.rows, key=lambda r: r.activation_bytes)
    assert largest.name.startswith("features.conv1_")
    assert largest.activation_bytes == 64 * 224 * 224 * 4
    published = torchvision.models.get_model_weights("vgg16").DEFAULT.meta["_ops"]  # 15.47
    assert summary.total_macs / 1e9 == pytest.approx(published, rel=0.02)
    rows = {r.name: r for r in summary.rows}
    # Receptive field through pool5 (Araujo et al., Distill 2019): 212 px, jump 32.
    assert rows["features.pool5"].receptive_field == 212
    assert rows["features.pool5"].jump == 32
    assert rows["features.conv5_3.conv"].receptive_field == 196


def test_stages_are_the_deepest_maps_at_each_stride():
    with torch.device("meta"):
        model = create("vgg16")
        stages = model.forward_stages(torch.empty(1, 3, 224, 224))
    assert [(f.name, f.channels, f.stride) for f in model.feature_info] == [
        ("c1", 128, 2), ("c2", 256, 4), ("c3", 512, 8), ("c4", 512, 16), ("c5", 512, 32)]
    assert {k: tuple(v.shape[1:]) for k, v in stages.items()} == {
        "c1": (128, 112, 112), "c2": (256, 56, 56), "c3": (512, 28, 28), "c4": (512, 14, 14),
        "c5": (512, 7, 7)}


def test_deepen_copies_the_paper_layers():
    small = create("vgg11", num_classes=10, small_input=True, in_channels=1)
    deeper = deepen(small, "vgg13")
    assert [m.conv.out_channels for n, m in deeper.features.named_children()
            if n.startswith("conv")] == [64, 64, 128, 128, 256, 256, 512, 512, 512, 512]
    # Sec. 3.1: the first four conv layers and the three FC layers come from net A ...
    for name in ["conv1_1", "conv2_1", "conv3_1", "conv3_2"]:
        a, b = small.features.get_submodule(name), deeper.features.get_submodule(name)
        assert torch.equal(a.conv.weight, b.conv.weight) and torch.equal(a.conv.bias, b.conv.bias)
    for name in ["fc6", "fc7", "fc8"]:
        a, b = small.classifier.get_submodule(name), deeper.classifier.get_submodule(name)
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    # ... the others start random (conv4_1 has the same shape in both nets, yet is not copied).
    assert not torch.equal(small.features.conv4_1.conv.weight, deeper.features.conv4_1.conv.weight)
    out = deeper(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert deeper.in_channels == 1 and deeper.small_input


def test_deepen_refuses_bad_targets():
    small = create("vgg13", num_classes=10, small_input=True)
    with pytest.raises(ValueError, match="at least as deep"):
        deepen(small, "vgg11")
    with pytest.raises(KeyError, match="vgg16"):
        deepen(small, "vgg61")
    with pytest.raises(TypeError, match="VGG"):
        deepen(nn.Linear(2, 2), "vgg13")


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes(name):
    with torch.device("meta"):
        model = create(name, num_classes=7)
        assert model(torch.empty(2, 3, 224, 224)).shape == (2, 7)
        small = create(name, num_classes=7, small_input=True, in_channels=1)
        assert small(torch.empty(2, 1, 28, 28)).shape == (2, 7)


@pytest.mark.parametrize(("name", "channels", "size"), [("vgg11", 1, 28), ("vgg13_bn", 3, 16)])
def test_small_input_every_parameter_gets_a_gradient(name, channels, size, check_grads):
    model = create(name, num_classes=10, small_input=True, in_channels=channels).train()
    check_grads(model, torch.randn(2, channels, size, size), 10, loss=lambda y: y.square().sum())
    stages = model.eval().forward_stages(torch.randn(1, channels, size, size))
    assert [(k, v.shape[1]) for k, v in stages.items()] == [
        (f.name, f.channels) for f in model.feature_info]


def test_bad_inputs_are_refused():
    with torch.device("meta"):
        model = create("vgg16")
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.empty(1, 3, 28, 28, device="meta"))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.empty(3, 224, 224, device="meta"))


def test_summary_command_shows_the_claims(capsys):
    from modernvision.cli import main

    assert main(["summary", "vgg16"]) == 0
    text = capsys.readouterr().out
    pool5 = next(line for line in text.splitlines() if line.startswith("features.pool5 "))
    assert pool5.split()[-2:] == ["212", "32"]  # receptive field, jump
    assert "total params 138,357,544" in text and "MACs 15,470,264,320" in text
    assert "Linear 89.4% of params" in text and "Conv2d 10.6% of params, 99.2% of MACs" in text
    assert "largest activation: features.conv1_1" in text
