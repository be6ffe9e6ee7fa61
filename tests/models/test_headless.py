"""``create(name, num_classes=0)``: every classifier without any classifier parameter."""

import pytest
import torch
import torch.nn.functional as F

from modernvision._errors import InvalidArgumentError
from modernvision.models import create, list_models

HEAD_MODULES = {"fc", "classifier", "head", "pre_logits", "aux1", "aux2", "AuxLogits"}


@pytest.mark.parametrize("name", list_models("classification"))
def test_headless_has_no_classifier_parameters(name):
    with torch.device("meta"):
        headless = create(name, num_classes=0)
        headed = create(name, num_classes=7)
    kept, full = set(headless.state_dict()), set(headed.state_dict())
    dropped = full - kept
    assert kept <= full and dropped
    assert {k.split(".")[0] for k in dropped} <= HEAD_MODULES, sorted(dropped)[:5]
    # Whatever is left of a head module is parameter-free (e.g. ViT's head is nn.Identity).
    assert not any(k.split(".")[0] in HEAD_MODULES and not k.startswith("head.conv")
                   and not k.startswith("head.bn") for k in kept)
    assert headless.num_classes == 0 and headless.num_features > 0


@pytest.mark.parametrize("name", ["alexnet", "vgg11_bn", "googlenet_tv", "inception_v3",
                                  "resnet18", "se_resnet50", "mobilenet_v2", "efficientnet_b0",
                                  "vit_tiny", "compact_cnn"])
def test_headless_forward_is_the_pooled_feature_vector(name):
    torch.manual_seed(0)
    kwargs = {} if name == "compact_cnn" else {"in_channels": 1, "small_input": True}
    model = create(name, num_classes=0, **kwargs).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        out = model(x)
        features = model.forward_features(x)
    if name.startswith("vit"):
        want = features[:, 0]  # the class token's final-norm features
    else:
        want = F.adaptive_avg_pool2d(features, 1).flatten(1)
    assert out.shape == (2, model.num_features)
    torch.testing.assert_close(out, want)
    assert set(model.forward_stages(x)) == {f.name for f in model.feature_info}
    # Training mode: no auxiliary outputs, and every parameter takes part.
    model.train()
    out = model(x)
    assert isinstance(out, torch.Tensor)
    out.square().sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_num_classes_must_be_non_negative():
    with pytest.raises(InvalidArgumentError, match="num_classes must be an int >= 0"):
        create("resnet18", num_classes=-1)
