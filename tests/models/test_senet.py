"""SE-ResNet: parameters against mmpretrain's table; with open gates it is torchvision's ResNet."""

import torch
import torchvision

from modernvision.layers.squeeze_excite import SqueezeExcite
from modernvision.models import create


def test_se_resnet50_param_count(num_params):
    with torch.device("meta"):
        model = create("se_resnet50")
    n = num_params(model)
    assert round(n / 1e6, 2) == 28.09  # mmpretrain's SE-ResNet-50 table
    # By hand: each bottleneck with C output channels adds FC C->C/16 and C/16->C with biases.
    se = sum(
        k * (2 * c * (c // 16) + c // 16 + c) for c, k in [(256, 3), (512, 4), (1024, 6), (2048, 3)]
    )
    assert n == 25_557_032 + se


def test_open_gates_reduce_to_resnet50():
    """With every gate forced to 1, SE-ResNet-50 computes torchvision's ResNet-50."""
    ref = torchvision.models.resnet50().eval()
    model = create("se_resnet50").eval()
    missing, unexpected = model.load_state_dict(ref.state_dict(), strict=False)
    assert not unexpected and all(".se." in k for k in missing)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, SqueezeExcite):
                m.fc2.weight.zero_()
                m.fc2.bias.fill_(30.0)  # sigmoid(30) == 1.0 in float32
        x = torch.randn(1, 3, 64, 64)
        assert (model(x) - ref(x)).abs().max().item() <= 1e-4
        # A gate that is not open changes the output: SE sits on the residual branch.
        model.layer4[2].se.fc2.bias.fill_(0.0)
        assert (model(x) - ref(x)).abs().max().item() > 1e-3


def test_se_position_and_ratio():
    model = create("se_resnet50")
    block = model.layer3[0]
    assert block.se.fc1.in_channels == 1024 and block.se.fc1.out_channels == 1024 // 16


def test_every_parameter_gets_a_gradient(check_grads):
    check_grads(create("se_resnet50", num_classes=10), torch.randn(2, 3, 32, 32), 10)


def test_small_input_shape():
    model = create("se_resnet50", num_classes=10, in_channels=1, small_input=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_deeper_variants_build(num_params):
    with torch.device("meta"):
        ours = create("se_resnet101")
        assert ours(torch.empty(1, 3, 224, 224)).shape == (1, 1000)
    assert num_params(ours) == 44_549_160 + sum(
        k * (2 * c * (c // 16) + c // 16 + c)
        for c, k in [(256, 3), (512, 4), (1024, 23), (2048, 3)]
    )
