"""Segmenters: torchvision oracles (FCN-ResNet50, DeepLabV3-ResNet50), the papers' shapes and
parameter counts, FCN's exact output size, the loss dict, and gradients everywhere."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

from modernvision._errors import InvalidArgumentError
from modernvision.data import load_photo
from modernvision.models import convert_torchvision_state_dict, create, get_entry, list_models


def _photo() -> torch.Tensor:
    # chelsea (300x451) halved and cropped to 149x225: non-square, odd, no multiple of 8.
    rgb = torch.from_numpy(load_photo("chelsea")).permute(2, 0, 1).float() / 255
    rgb = F.interpolate(rgb[None], scale_factor=0.5, mode="bilinear", antialias=True)[0]
    rgb = rgb[:, :149, :225]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return ((rgb - mean) / std)[None]


@pytest.mark.parametrize("name", ["fcn_resnet50", "deeplabv3_resnet50"])
def test_torchvision_oracle(name, randomize_bn) -> None:
    torch.manual_seed(0)
    ref = getattr(torchvision.models.segmentation, get_entry(name).torchvision)(
        weights=None, weights_backbone=None, num_classes=7).eval()
    randomize_bn(ref)
    with torch.device("meta"):
        ours = create(name, num_classes=7).eval()
    ours.load_state_dict(convert_torchvision_state_dict(name, ref.state_dict()), assign=True)
    x = _photo()
    with torch.no_grad():
        expected = ref(x)["out"]
        got = ours(x)
    assert got.shape == expected.shape == (1, 7, 149, 225)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_torchvision_oracle_aux_keys() -> None:
    ref = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None,
                                                             num_classes=3, aux_loss=True)
    with torch.device("meta"):
        ours = create("deeplabv3_resnet50", num_classes=3, aux_loss=True)
    assert set(ours.state_dict()) == set(ref.state_dict())


def test_fcn_parameter_counts(num_params) -> None:
    with torch.device("meta"):
        counts = {n: num_params(create(n)) for n in ("fcn32s_vgg16", "fcn16s_vgg16",
                                                     "fcn8s_vgg16")}
    assert counts == {"fcn32s_vgg16": 134_346_581, "fcn16s_vgg16": 134_364_410,
                      "fcn8s_vgg16": 134_376_863}


@pytest.mark.parametrize("name", ["fcn32s_vgg16", "fcn16s_vgg16", "fcn8s_vgg16"])
def test_fcn_output_size_equals_input_for_odd_sizes(name) -> None:
    model = create(name, num_classes=3, width_mult=1 / 16).eval()
    for size in [(1, 1), (17, 33), (31, 29), (65, 97)]:
        with torch.no_grad():
            assert model(torch.randn(1, 3, *size)).shape == (1, 3, *size)


def test_fcn_skips_are_summed_and_upsampling_bilinear() -> None:
    bn = create("fcn8s_vgg16", num_classes=3, width_mult=1 / 16, batch_norm=True).eval()
    assert bn(torch.randn(1, 3, 19, 23)).shape == (1, 3, 19, 23)
    model = create("fcn8s_vgg16", num_classes=3, width_mult=1 / 16)
    w = model.upscore2.weight
    assert w.shape == (3, 3, 4, 4) and torch.equal(w[0, 1], torch.zeros(4, 4))
    assert not any("upscore." in n for n, _ in model.named_parameters())  # fixed final


def test_unet_paper_shapes_and_params(num_params) -> None:
    model = create("unet", num_classes=2, in_channels=1)
    assert num_params(model) == 31_030_658
    small = create("unet", num_classes=2, in_channels=1, base_width=4).eval()
    with torch.no_grad():
        assert small(torch.randn(1, 1, 572, 572)).shape == (1, 2, 388, 388)
        assert small(torch.randn(1, 1, 188, 188)).shape == (1, 2, 4, 4)
    with pytest.raises(InvalidArgumentError, match="even"):
        small(torch.randn(1, 1, 100, 100))
    padded = create("unet_padded", num_classes=4, base_width=4).eval()
    with torch.no_grad():
        assert padded(torch.randn(2, 3, 48, 32)).shape == (2, 4, 48, 32)


def test_deeplab_shapes_and_rates() -> None:
    v2 = create("deeplabv2_resnet18", num_classes=5)
    assert [b.dilation for b in v2.classifier.branches] == [(6, 6), (12, 12), (18, 18), (24, 24)]
    v3 = create("deeplabv3_resnet18", num_classes=5, output_stride=8)
    assert v3.classifier[0].rates == (12, 24, 36)
    assert create("deeplabv3_resnet18", num_classes=5).classifier[0].rates == (6, 12, 18)
    for model in (v2, v3):
        model.eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 45, 61)).shape == (1, 5, 45, 61)


SMALL = {"fcn32s_vgg16": {"width_mult": 1 / 16}, "fcn16s_vgg16": {"width_mult": 1 / 16},
         "fcn8s_vgg16": {"width_mult": 1 / 16}, "unet": {"base_width": 4, "in_channels": 3},
         "unet_padded": {"base_width": 4}}
SIZE = {"unet": 188}


@pytest.mark.parametrize("name", list_models("semantic"))
def test_loss_dict_and_every_parameter_gets_a_gradient(name) -> None:
    if name.endswith(("resnet50", "resnet101")):
        pytest.skip("large backbone: covered by the oracle / the resnet18 variants")
    torch.manual_seed(0)
    model = create(name, num_classes=4, **SMALL.get(name, {})).train()
    side = SIZE.get(name, 32)
    x = torch.randn(2, 3, side, side)
    target = torch.randint(0, 4, (2, side, side))
    target[0, :3] = 255  # ignored pixels
    losses = model(x, target)
    assert set(losses) == {"loss"} and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    model.eval()
    with torch.no_grad():
        out = model(x)
    expected = 4 if name == "unet" else side
    assert out.shape[0] == 2 and out.shape[1] == 4 and out.shape[-1] == expected


def test_aux_loss_and_bad_input() -> None:
    model = create("deeplabv3_resnet18", num_classes=3)
    with pytest.raises(InvalidArgumentError, match="targets"):
        model(torch.randn(1, 3, 32, 32), torch.zeros(32, 32, dtype=torch.long))
    with pytest.raises(InvalidArgumentError, match="images"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(TypeError):
        create("deeplabv3_resnet18", atrous=3)
