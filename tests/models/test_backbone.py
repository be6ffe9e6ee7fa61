"""Detection backbones: headless, truncated, torchvision's trainable_backbone_layers."""

import pytest
import torch
import torchvision
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor

from modernvision._errors import InvalidArgumentError
from modernvision.layers import FrozenBatchNorm2d
from modernvision.models import create
from modernvision.models.backbone import Backbone, create_backbone


@pytest.mark.parametrize("trainable", [0, 1, 2, 3, 4, 5])
def test_trainable_layers_freeze_what_torchvision_freezes(trainable):
    with torch.device("meta"):
        ref = _resnet_fpn_extractor(torchvision.models.resnet50(), trainable)
        ours = create_backbone("resnet50", trainable_layers=trainable)
    want = {n.removeprefix("body.") for n, p in ref.named_parameters()
            if p.requires_grad and n.startswith("body.")}
    got = {n for n, p in ours.named_parameters() if p.requires_grad}
    assert got == want
    # Same parameters (the head and avgpool of the classifier are gone in both).
    assert {n for n, _ in ours.named_parameters()} == {
        n.removeprefix("body.") for n, _ in ref.named_parameters() if n.startswith("body.")}


def test_truncated_backbone_has_no_unused_parameters():
    body = create("resnet18", num_classes=0)
    backbone = Backbone(body, ["c3", "c4"])
    names = {n.split(".")[0] for n, _ in backbone.named_parameters()}
    assert names == {"conv1", "bn1", "layer1", "layer2", "layer3"}  # no layer4, no fc
    x = torch.randn(2, 3, 64, 64)
    out = backbone(x)
    assert list(out) == ["c3", "c4"]
    assert backbone.out_channels == {"c3": 128, "c4": 256}
    assert backbone.strides == {"c3": 8, "c4": 16}
    sum(t.sum() for t in out.values()).backward()
    assert all(p.grad is not None for p in backbone.parameters())
    # The same maps as the full classifier's stages.
    full = body.forward_stages(x)
    for name in out:
        torch.testing.assert_close(out[name], full[name])


def test_mobilenet_v2_body_and_frozen_batch_norm():
    backbone = create_backbone("mobilenet_v2", out_features=("c3", "c4", "c5"),
                               frozen_bn=True).eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in backbone.modules())
    assert backbone.out_channels == {"c3": 32, "c4": 96, "c5": 1280}
    reference = create("mobilenet_v2", num_classes=0, norm_layer=FrozenBatchNorm2d).eval()
    reference.load_state_dict(backbone.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 96)
    want = reference.forward_stages(x)
    got = backbone(x)
    for name, t in got.items():
        torch.testing.assert_close(t, want[name])
        assert t.shape[-1] == 96 // backbone.strides[name]


def test_bad_arguments_are_named():
    body = create("resnet18", num_classes=0)
    with pytest.raises(InvalidArgumentError, match="out_features"):
        Backbone(body, ["c9"])
    with pytest.raises(InvalidArgumentError, match=r"trainable_layers must be in \[0, 5\]"):
        Backbone(body, trainable_layers=6)
    with pytest.raises(TypeError, match="cannot be split"):
        Backbone(create("vit_tiny", num_classes=0))
