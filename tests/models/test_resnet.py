"""ResNet and plain nets against torchvision's ResNet (weights=None) and hand-computed cases."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from modernvision.analysis import summarize
from modernvision.models import create
from modernvision.models.backbone import create_backbone


@pytest.mark.parametrize(("name", "expected"), [("resnet18", 11_689_512), ("resnet50", 25_557_032)])
def test_param_count_matches_torchvision(name, expected, num_params):
    with torch.device("meta"):
        ours, ref = create(name), getattr(torchvision.models, name)()
    assert num_params(ours) == num_params(ref) == expected


@pytest.mark.parametrize("name", ["resnet34", "resnet101", "resnet152"])
def test_deeper_param_counts_match_torchvision(name, num_params):
    with torch.device("meta"):
        ours, ref = create(name), getattr(torchvision.models, name)()
        assert ours(torch.empty(2, 3, 224, 224)).shape == (2, 1000)
    assert num_params(ours) == num_params(ref)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_converted_torchvision_weights_give_same_logits(name, torchvision_pair):
    ours, ref = torchvision_pair(name)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-4


def test_stages_match_torchvision_intermediate_layers(randomize_bn):
    ref = torchvision.models.resnet50().eval()
    randomize_bn(ref)
    body = create_feature_extractor(
        ref, {"relu": "c1", "layer1": "c2", "layer2": "c3", "layer3": "c4", "layer4": "c5"}
    )
    ours = create_backbone("resnet50").eval()
    # The backbone is headless: torchvision's fc has no counterpart in it.
    ours.load_state_dict({k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got, want = ours(x), body(x)
    assert list(got) == ["c1", "c2", "c3", "c4", "c5"]
    for name, t in got.items():
        assert torch.allclose(t, want[name], atol=1e-5)
        assert t.shape[1] == ours.out_channels[name]
        assert t.shape[-1] == 64 // ours.strides[name]
    assert ours.strides == {"c1": 2, "c2": 4, "c3": 8, "c4": 16, "c5": 32}


@pytest.mark.parametrize(("name", "gmacs"), [("resnet18", 1.814), ("resnet50", 4.089)])
def test_macs_match_torchvision_gflops(name, gmacs):
    ops = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    assert ops == gmacs
    summary = summarize(create(name), (3, 224, 224))
    assert abs(summary.total_macs / 1e9 - ops) / ops < 0.02


@pytest.mark.parametrize(("stride_in_1x1", "rf"), [(True, 483), (False, 427)])
def test_resnet50_receptive_field(stride_in_1x1, rf):
    # The paper's stride on the first 1x1 lets each stage's first 3x3 see the coarser grid.
    summary = summarize(create("resnet50", stride_in_1x1=stride_in_1x1), (3, 224, 224))
    last = [r for r in summary.rows if r.name.startswith("layer4.2.")][-1]
    assert (last.receptive_field, last.jump) == (rf, 32)


def test_stride_in_1x1_moves_the_stride(num_params):
    paper, v15 = create("resnet50", stride_in_1x1=True), create("resnet50")
    assert (paper.layer2[0].conv1.stride, paper.layer2[0].conv2.stride) == ((2, 2), (1, 1))
    assert (v15.layer2[0].conv1.stride, v15.layer2[0].conv2.stride) == ((1, 1), (2, 2))
    assert num_params(paper) == num_params(v15)


def _projection_params(c_in: int, c_out: int) -> int:
    return c_in * c_out + 2 * c_out  # 1x1 conv without bias + BN weight and bias


def test_shortcut_options_parameter_counts(num_params):
    b = num_params(create("resnet50"))
    # Option B projects in the first block of every stage (64->256, 256->512, ...).
    first = [(64, 256), (256, 512), (512, 1024), (1024, 2048)]
    assert num_params(create("resnet50", shortcut="A")) == b - sum(
        _projection_params(i, o) for i, o in first
    )
    # Option C projects in every other block too (c -> c).
    rest = [(256, 2), (512, 3), (1024, 5), (2048, 2)]
    assert num_params(create("resnet50", shortcut="C")) == b + sum(
        n * _projection_params(c, c) for c, n in rest
    )


def test_plain_net_has_no_shortcuts(num_params):
    plain, res = create("plain18"), create("resnet18")
    projections = sum(
        num_params(m.downsample) for m in res.modules() if getattr(m, "downsample", 0)
    )
    assert num_params(plain) == 11_689_512 - projections
    assert all(getattr(m, "downsample", None) is None for m in plain.modules())
    # A plain block is conv-bn-relu-conv-bn-relu with nothing added.
    block = plain.layer1[0].eval()
    x = torch.randn(1, 64, 8, 8)
    want = F.relu(block.bn2(block.conv2(F.relu(block.bn1(block.conv1(x))))))
    with torch.no_grad():
        assert torch.allclose(block(x), want)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("resnet18", {}), ("plain18", {}), ("resnet18", {"shortcut": "A"})],
)
def test_small_input_trains(name, kwargs, check_grads):
    model = create(name, num_classes=10, in_channels=1, small_input=True, **kwargs)
    check_grads(model, torch.randn(2, 1, 28, 28), 10)


@pytest.mark.parametrize("kwargs", [{}, {"stride_in_1x1": True, "shortcut": "C"}])
def test_resnet50_every_parameter_gets_a_gradient(kwargs, check_grads):
    check_grads(create("resnet50", num_classes=10, **kwargs), torch.randn(2, 3, 32, 32), 10)


def test_resnet50_small_input_shape():
    model = create("resnet50", num_classes=10, in_channels=1, small_input=True).eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 1, 28, 28)).shape == (1, 2048, 4, 4)


def test_small_input_stem_and_strides():
    model = create("resnet18", small_input=True).eval()
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    with torch.no_grad():
        stages = model.forward_stages(torch.randn(1, 3, 32, 32))
    for info in model.feature_info:
        assert stages[info.name].shape[1:] == (info.channels, 32 // info.stride, 32 // info.stride)
    assert stages["c5"].shape[-1] == 4


def test_errors_are_clear():
    with pytest.raises(TypeError, match="stride_in_3x3"):
        create("resnet50", stride_in_3x3=True)
    with pytest.raises(ValueError, match="shortcut"):
        create("resnet18", shortcut="D")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        create("resnet18")(torch.randn(1, 1, 32, 32))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet34", "resnet101", "resnet152"])
def test_deeper_macs_match_torchvision_gflops(name):
    ops = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    summary = summarize(create(name), (3, 224, 224))
    assert abs(summary.total_macs / 1e9 - ops) / ops < 0.02
