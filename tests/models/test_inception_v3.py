"""Inception v3 against torchvision's inception_v3 (weights=None) and the paper's design."""

import pytest
import torch
import torchvision
from torch import nn

from modernvision.analysis import summarize
from modernvision.models import create
from modernvision.models.classification._base import AuxOutput


@pytest.mark.parametrize(("aux", "expected"), [(True, 27_161_264), (False, 23_834_568)])
def test_param_count_matches_torchvision(aux, expected, num_params):
    with torch.device("meta"):
        ours = create("inception_v3", aux_logits=aux)
        ref = torchvision.models.inception_v3(aux_logits=aux, init_weights=True)
    assert num_params(ours) == num_params(ref) == expected


def test_defaults_match_torchvision_weights_none():
    with torch.device("meta"):
        ref = torchvision.models.inception_v3(init_weights=True)
        ours = create("inception_v3")
    assert ref.aux_logits and not ref.transform_input
    assert ours.AuxLogits is not None and not ours.transform_input


def test_converted_torchvision_weights_give_same_outputs(torchvision_pair):
    ours, ref = torchvision_pair("inception_v3", skip_init=True, init_weights=False)
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4
        small = torch.randn(1, 3, 96, 96)  # the input transform, at a cheaper size
        ours.transform_input = ref.transform_input = True
        assert (ours(small) - ref(small)).abs().max().item() <= 1e-4
        ours.transform_input = ref.transform_input = False
        # Training mode: the auxiliary head on Mixed_6e's 17x17 map, with batch statistics.
        ours.train(), ref.train()
        grid = torch.randn(2, 768, 17, 17)
        assert (ours.AuxLogits(grid) - ref.AuxLogits(grid)).abs().max().item() <= 1e-4
    with torch.device("meta"):
        out = ours.to("meta")(torch.empty(2, 3, 299, 299))
    assert isinstance(out, AuxOutput) and out.aux_weight == 0.4
    assert out.logits.shape == out.aux_logits[0].shape == (2, 1000)


def test_macs_match_torchvision_published_gflops():
    published = torchvision.models.get_model_weights("inception_v3").DEFAULT.meta["_ops"]
    macs = summarize(create("inception_v3"), (3, 299, 299)).total_macs / 1e9
    assert macs == pytest.approx(published, rel=0.02)  # 5.713


def test_factorised_convolutions_and_grids():
    with torch.device("meta"):
        model = create("inception_v3")
        stages = model.forward_stages(torch.empty(1, 3, 299, 299))
    # Sec. 3.2: 7x7 as 1x7 then 7x1 on the 17x17 grid; Fig. 7: parallel 1x3 / 3x1 on 8x8.
    c = model.Mixed_6b
    assert c.branch7x7_2.conv.kernel_size == (1, 7) and c.branch7x7_3.conv.kernel_size == (7, 1)
    e = model.Mixed_7b
    assert e.branch3x3_2a.conv.kernel_size == (1, 3) and e.branch3x3_2b.conv.kernel_size == (3, 1)
    # Sec. 3.1: the 35x35 modules' 3x3-3x3 branch stands for a 5x5 (18 vs 25 weights per pair).
    a = model.Mixed_5b
    assert a.branch3x3dbl_2.conv.kernel_size == a.branch3x3dbl_3.conv.kernel_size == (3, 3)
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    # The grids of Table 1: 35x35x288, 17x17x768, 8x8x2048.
    assert {k: tuple(v.shape[1:]) for k, v in stages.items()} == {
        "c1": (64, 147, 147), "c2": (192, 71, 71), "c3": (288, 35, 35), "c4": (768, 17, 17),
        "c5": (2048, 8, 8)}
    assert [(f.name, f.channels, f.stride) for f in model.feature_info] == [
        ("c1", 64, 2), ("c2", 192, 4), ("c3", 288, 8), ("c4", 768, 16), ("c5", 2048, 32)]


def test_small_input_every_parameter_gets_a_gradient():
    model = create("inception_v3", num_classes=10, small_input=True, in_channels=1).train()
    out = model(torch.randn(2, 1, 16, 16))  # 28x28 and 32x32 are checked on "meta" below
    assert isinstance(out, AuxOutput) and len(out.aux_logits) == 1
    total = out.logits.square().sum() + out.aux_logits[0].square().sum()
    total.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    with torch.device("meta"):
        grey = model.to("meta")
        out = grey(torch.empty(2, 1, 28, 28))
        assert out.logits.shape == out.aux_logits[0].shape == (2, 10)
        rgb = create("inception_v3", num_classes=10, small_input=True).eval()
        stages = rgb.forward_stages(torch.empty(1, 3, 32, 32))
        assert rgb(torch.empty(2, 3, 32, 32)).shape == (2, 10)
    assert {k: tuple(v.shape[1:]) for k, v in stages.items()} == {
        "c1": (288, 16, 16), "c2": (768, 7, 7), "c3": (2048, 3, 3)}


def test_bad_inputs_are_refused():
    with torch.device("meta"):
        model = create("inception_v3")
        with pytest.raises(ValueError, match="auxiliary classifier"):
            model.train()(torch.empty(2, 3, 224, 224))
        with pytest.raises(ValueError, match="at least 75x75"):
            model.eval()(torch.empty(1, 3, 64, 64))
        with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
            model(torch.empty(1, 1, 299, 299))
