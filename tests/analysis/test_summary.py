"""summarize(): hand-built nets with known answers, and torchvision models as references."""

import pytest
import torch
import torchvision
from torch import nn

from modernvision.analysis import summarize


def _conv_stack(*specs):
    layers, c = [], 1
    for k, s, d in specs:
        layers.append(nn.Conv2d(c, 4, k, stride=s, dilation=d, padding=(k - 1) // 2 * d,
                                bias=False))
        c = 4
    return nn.Sequential(*layers)


@pytest.mark.parametrize(
    "specs, rf, jump",
    [
        ([(3, 1, 1), (3, 1, 1)], 5, 1),  # two 3x3 = one 5x5 (VGG's argument)
        ([(3, 1, 1), (3, 1, 1), (3, 1, 1)], 7, 1),
        ([(3, 2, 1), (3, 1, 1)], 7, 2),  # the second conv sees strided input
        ([(3, 1, 2)], 5, 1),  # dilation 2: a 5x5 field with 9 weights
        ([(5, 2, 1), (3, 2, 1), (3, 1, 1)], 5 + 2 * 2 + 2 * 4, 4),
    ],
)
def test_receptive_field_of_conv_stacks(specs, rf, jump):
    s = summarize(_conv_stack(*specs), (1, 32, 32))
    assert s.rows[-1].receptive_field == rf
    assert s.rows[-1].jump == jump


def test_receptive_field_equals_impulse_response_support():
    # For a linear net (no ReLU) the gradient of one output pixel w.r.t. the input is non-zero
    # exactly on its receptive field (with all-positive weights, nothing cancels).
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), nn.AvgPool2d(3, stride=2),
                        nn.Conv2d(2, 1, 3, dilation=2))
    for p in net.parameters():
        nn.init.uniform_(p, 0.1, 1.0)
    x = torch.randn(1, 1, 64, 64, requires_grad=True)
    y = net(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero()
    support = int(rows.max() - rows.min() + 1)
    s = summarize(net, (1, 64, 64))
    assert s.rows[-1].receptive_field == support


def test_macs_and_params_hand_computed():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 10 * 10, 5))
    s = summarize(net, (3, 10, 10))
    conv, _, _, fc = s.rows
    assert conv.macs == 10 * 10 * 8 * 3 * 9
    assert conv.params == 8 * 3 * 9 + 8
    assert fc.macs == 800 * 5
    assert s.total_macs == conv.macs + fc.macs
    assert s.total_params == sum(p.numel() for p in net.parameters())
    assert conv.output_shape == (1, 8, 10, 10)
    assert conv.activation_bytes == 8 * 10 * 10 * 4
    assert fc.receptive_field is None  # flattened: the whole input


def test_grouped_and_transposed_conv_macs():
    g = summarize(nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False), (8, 6, 6))
    assert g.total_macs == 6 * 6 * 8 * (8 // 4) * 9
    t = summarize(nn.ConvTranspose2d(4, 2, 2, stride=2, bias=False), (4, 5, 5))
    assert t.total_macs == 4 * 5 * 5 * 2 * 2 * 2


def test_attention_macs_counted():
    class Attn(nn.Module):
        def forward(self, x):  # x: (B, C, H, W) -> tokens
            t = x.flatten(2).transpose(1, 2)  # (B, L, C)
            return nn.functional.scaled_dot_product_attention(t, t, t)

    s = summarize(Attn(), (16, 4, 4))
    assert s.total_macs == 16 * 16 * (16 + 16)


@pytest.mark.parametrize(
    "name, size, rf",
    [("alexnet", 224, 195), ("vgg16", 224, 212), ("resnet50", 224, 427)],
)
def test_published_receptive_fields_on_torchvision_models(name, size, rf):
    # Araujo et al. (Distill 2019): AlexNet 195, VGG-16 212 (through pool5); torchvision's
    # ResNet-50 is "v1.5" (stride on the 3x3): 427.
    s = summarize(torchvision.models.get_model(name), (3, size, size))
    assert max(r.receptive_field for r in s.rows if isinstance(r.receptive_field, int)) == rf


@pytest.mark.parametrize("name", ["resnet50", "alexnet", "mobilenet_v2", "vit_b_16"])
def test_macs_match_torchvision_published_gflops(name):
    model = torchvision.models.get_model(name)
    published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    s = summarize(model, (3, 224, 224))
    assert s.total_params == sum(p.numel() for p in model.parameters())
    assert abs(s.total_macs / 1e9 - published) / published < 0.02


def test_table_and_fractions():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    s = summarize(net, "1x8x8")
    text = str(s)
    assert "Conv2d" in text and "total params" in text
    assert s.fraction("params", nn.Linear) == pytest.approx((144 * 2 + 2) / s.total_params)
    assert s.fraction("macs", nn.Conv2d) == pytest.approx(6 * 6 * 4 * 9 / s.total_macs)


@pytest.mark.parametrize("bad", ["3x", "axb", (0, 3, 3), "1x2x3x4x5"])
def test_bad_input_size_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="input_size"):
        summarize(nn.Conv2d(1, 1, 1), bad)


def test_one_row_per_call_of_a_shared_module_on_resnet18():
    # ResNet's blocks call one `relu` twice; a merged row summed both calls' activations, so on
    # a 1x28x28 ResNet-18 "largest activation" named layer1.0.relu (2 x 0.19 MiB) instead of
    # the stem's single 0.19 MiB maps. Reference: a forward hook that records every call.
    from modernvision.models import create

    model = create("resnet18", num_classes=10, small_input=True, in_channels=1)
    calls: list[tuple[str, tuple[int, ...], int]] = []
    hooks = [m.register_forward_hook(
        lambda mod, i, out, name=name: calls.append((name, tuple(out.shape),
                                                     out.numel() * out.element_size())))
        for name, m in model.named_modules() if name and next(m.children(), None) is None]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    s = summarize(model, (1, 28, 28))
    rows = {r.name: r for r in s.rows}
    relu = [c for c in calls if c[0] == "layer1.0.relu"]
    assert len(relu) == 2
    for k, (_, shape, nbytes) in enumerate(relu, start=1):
        row = rows[f"layer1.0.relu #{k}"]
        assert (row.module, row.call) == ("layer1.0.relu", k)
        assert row.output_shape == shape and row.activation_bytes == nbytes
    # the second call follows conv2: a larger receptive field than the first
    assert rows["layer1.0.relu #2"].receptive_field > rows["layer1.0.relu #1"].receptive_field
    # each leaf call is one row with that call's bytes, and the largest is the largest call
    leaf_rows = [r for r in s.rows if r.module in {c[0] for c in calls}]
    assert [(r.module, r.output_shape, r.activation_bytes) for r in leaf_rows] == calls
    biggest = max(calls, key=lambda c: c[2])
    assert f"largest activation: {biggest[0]} (" in s.table()
    # parameters are counted once, on the first call
    assert s.total_params == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in s.rows) == s.total_params
