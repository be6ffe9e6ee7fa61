"""AlexNet (2012 paper), torchvision's AlexNet and ZFNet, against torchvision and the papers."""

import pytest
import torch
import torchvision

from modernvision.analysis import summarize
from modernvision.layers.lrn import LocalResponseNorm
from modernvision.models import convert_torchvision_state_dict, create
from modernvision.models.classification.zfnet import renormalize_filters_


def test_alexnet_tv_param_count_matches_torchvision(num_params):
    with torch.device("meta"):
        ours, ref = create("alexnet_tv"), torchvision.models.alexnet()
    assert num_params(ours) == num_params(ref) == 61_100_840


def test_alexnet_tv_converted_weights_give_same_logits():
    ref = torchvision.models.alexnet().eval()
    ours = create("alexnet_tv").eval()
    ours.load_state_dict(convert_torchvision_state_dict("alexnet_tv", ref.state_dict()))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4


def test_converter_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unexpected key"):
        convert_torchvision_state_dict("alexnet_tv", {"features.1.weight": torch.zeros(1)})


def test_alexnet_paper_architecture(num_params):
    with torch.device("meta"):
        model = create("alexnet")
        stages = model.forward_stages(torch.empty(1, 3, 227, 227))
    f = model.features
    # Sec. 3.5: 96 kernels 11x11x3 stride 4; 256 of 5x5x48; 384 of 3x3x256; 384 of 3x3x192;
    # 256 of 3x3x192 -- the "x48" and "x192" are the two-GPU split, i.e. groups=2.
    shapes = [getattr(f, f"conv{i}").conv.weight.shape for i in range(1, 6)]
    assert shapes == [(96, 3, 11, 11), (256, 48, 5, 5), (384, 256, 3, 3), (384, 192, 3, 3),
                      (256, 192, 3, 3)]
    assert [getattr(f, f"conv{i}").conv.groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    assert f.conv1.conv.stride == (4, 4)
    names = [n for n, _ in f.named_children()]
    assert names == ["conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "conv3", "conv4",
                     "conv5", "pool5"]
    norm = f.norm1
    assert isinstance(norm, LocalResponseNorm)
    assert (norm.size, norm.alpha / norm.size, norm.beta, norm.k) == (5, pytest.approx(1e-4),
                                                                      0.75, 2.0)
    assert (f.pool1.kernel_size, f.pool1.stride) == (3, 2)  # overlapping pooling, Sec. 3.4
    # Figure 2: 55x55x96 after conv1, then 27, 13, 6 after the pools.
    assert {k: tuple(v.shape[1:]) for k, v in stages.items()} == {
        "c2": (96, 55, 55), "c3": (256, 27, 27), "c4": (256, 13, 13), "c5": (256, 6, 6)}
    # Hand count: 34,944 + 307,456 + 885,120 + 663,936 + 442,624 conv;
    # 37,752,832 + 16,781,312 + 4,097,000 fully connected.
    assert num_params(model) == 60_965_224
    assert [type(m).__name__ for m in model.classifier] == [
        "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]


def test_alexnet_paper_initialisation():
    model = create("alexnet")
    f, c = model.features, model.classifier
    for layer in [f.conv2.conv, f.conv4.conv, f.conv5.conv, c.fc6, c.fc7]:
        assert torch.all(layer.bias == 1)  # Sec. 5: biases 1 in these layers
    for layer in [f.conv1.conv, f.conv3.conv, c.fc8]:
        assert torch.all(layer.bias == 0)
    assert c.fc6.weight.std().item() == pytest.approx(0.01, rel=0.01)


@pytest.mark.parametrize(("name", "size"), [("alexnet", 227), ("alexnet_tv", 224)])
def test_receptive_field_is_195_at_pool5(name, size):
    # Araujo et al. (Distill 2019) list AlexNet's receptive field as 195 px.
    rows = {r.name: r for r in summarize(create(name), (3, size, size)).rows}
    assert rows["features.pool5"].receptive_field == 195
    assert rows["features.pool5"].jump == 32


def test_alexnet_tv_macs_match_torchvision_published_gflops():
    published = torchvision.models.get_model_weights("alexnet").DEFAULT.meta["_ops"]  # 0.714
    macs = summarize(create("alexnet_tv"), (3, 224, 224)).total_macs / 1e9
    assert macs == pytest.approx(published, rel=0.02)


def test_zfnet_matches_figure_3(num_params):
    with torch.device("meta"):
        model = create("zfnet")
        stages = model.forward_stages(torch.empty(1, 3, 224, 224))
    f = model.features
    assert f.conv1.conv.kernel_size == (7, 7) and f.conv1.conv.stride == (2, 2)
    assert f.conv2.conv.stride == (2, 2)
    assert all(getattr(f, f"conv{i}").conv.groups == 1 for i in range(1, 6))  # dense
    # Figure 3: 110 after conv1, 55 after pool1 (then contrast norm), 26, 13, 13, 6.
    assert tuple(stages["c1"].shape[1:]) == (96, 110, 110)
    assert tuple(stages["c2"].shape[1:]) == (96, 55, 55)
    assert tuple(stages["c3"].shape[1:]) == (256, 26, 26)
    assert tuple(stages["c4"].shape[1:]) == (256, 13, 13)
    assert tuple(stages["c5"].shape[1:]) == (256, 6, 6)
    assert [n for n, _ in f.named_children()][:3] == ["conv1", "pool1", "norm1"]
    # Hand count: 14,208 + 614,656 + 885,120 + 1,327,488 + 884,992 conv; FC as AlexNet.
    assert num_params(model) == 62_357_608


def test_zfnet_renormalises_large_first_layer_filters():
    model = create("zfnet", small_input=True, num_classes=10)
    w = model.features.conv1.conv.weight
    with torch.no_grad():
        w.normal_(0.0, 0.01)  # the paper's init: RMS about 0.01
        w[0].fill_(1.0)  # RMS 1 > 0.1
        w[1].fill_(0.05)  # RMS 0.05, left alone
    before = w[2].clone()
    assert renormalize_filters_(model) >= 1
    assert w[0].square().mean().sqrt().item() == pytest.approx(0.1)
    assert torch.all(w[1] == 0.05)
    assert torch.equal(w[2], before)


@pytest.mark.parametrize(("name", "channels", "size"),
                         [("alexnet", 1, 28), ("alexnet_tv", 3, 32), ("zfnet", 1, 32)])
def test_small_input_every_parameter_gets_a_gradient(name, channels, size, check_grads):
    model = create(name, num_classes=10, small_input=True, in_channels=channels).train()
    x = torch.randn(2, channels, size, size)
    check_grads(model, x, 10, loss=lambda y: y.square().sum(), nonzero=True)
    stages = model.eval().forward_stages(torch.randn(1, channels, size, size))
    assert [(k, v.shape[1]) for k, v in stages.items()] == [
        (f.name, f.channels) for f in model.feature_info]
    assert all(size // f.stride - 1 <= stages[f.name].shape[-1] <= -(-size // f.stride)
               for f in model.feature_info)


def test_bad_inputs_are_refused():
    model = create("alexnet_tv")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.randn(1, 1, 224, 224))
    with pytest.raises(ValueError, match="at least 63x63"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(TypeError, match="unexpected keyword"):
        create("alexnet", depth=3)
