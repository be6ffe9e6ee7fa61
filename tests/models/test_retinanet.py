"""RetinaNet: torchvision's retinanet_resnet50_fpn converted gives the same detections and
training losses; the focal loss's down-weighting; the CPU variant trains with either loss."""

import copy
import math

import pytest
import torch
import torchvision
from torch import nn

from modernvision.losses import sigmoid_focal_loss
from modernvision.models import convert_torchvision_state_dict, create, list_models
from modernvision.models.detection import Detections
from modernvision.models.detection._generalized import Detector

SMALL = dict(min_size=128, max_size=224)


def _photo(name: str) -> torch.Tensor:
    from modernvision.data import load_photo

    return torch.from_numpy(load_photo(name)).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    # Real photos; chelsea is 451x300, not square.
    return [_photo("astronaut"), _photo("chelsea")]


def _randomize(model: nn.Module, num_anchors: int, num_classes: int) -> None:
    """Non-trivial BN statistics and head weights (a fresh head scores every anchor ~0.01,
    below the 0.05 threshold); class 0's column is kept far below the threshold, as training
    makes it (it is always negative)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.25 + 0.5 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
        head = model.head.classification_head
        for m in head.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0, 0.05, generator=g)
        bias = head.cls_logits.bias.view(num_anchors, num_classes)
        bias[:, 0] = -30.0
        bias[:, 1:] = -2.5


@pytest.fixture(scope="module")
def resnet50_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    ref = torchvision.models.detection.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=5, **SMALL).eval()
    _randomize(ref, 9, 5)
    ours = create("retinanet_resnet50_fpn", num_classes=5, **SMALL).eval()
    ours.load_state_dict(convert_torchvision_state_dict("retinanet_resnet50_fpn",
                                                        ref.state_dict()))
    return ours, ref


def test_same_state_dict_and_parameters_as_torchvision(resnet50_pair):
    ours, ref = resnet50_pair
    converted = convert_torchvision_state_dict("retinanet_resnet50_fpn", ref.state_dict())
    assert set(converted) == set(ours.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    assert isinstance(ours, Detector)


def test_detections_equal_torchvision(resnet50_pair, photos):
    ours, ref = resnet50_pair
    with torch.no_grad():
        want = ref(photos)
        got = ours(photos)
    for g, w, image in zip(got, want, photos):
        assert isinstance(g, Detections)
        assert not (w["labels"] == 0).any()
        assert 50 < len(g) == len(w["boxes"]) <= 300
        torch.testing.assert_close(g.boxes, w["boxes"], rtol=0, atol=2e-3)
        torch.testing.assert_close(g.scores, w["scores"], rtol=0, atol=1e-5)
        assert torch.equal(g.labels, w["labels"])
        assert float(g.boxes[:, 2].max()) <= image.shape[-1]
        assert float(g.boxes[:, 2].max()) > 224  # in the input image's pixels


def test_training_losses_equal_torchvision(resnet50_pair, photos):
    ours, ref = (copy.deepcopy(m).train() for m in resnet50_pair)
    # The second image has no objects: every anchor is background there.
    targets = [{"boxes": torch.tensor([[177.0, 66, 272, 161], [20, 100, 300, 500]]),
                "labels": torch.tensor([1, 2])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    losses = {}
    for name, model in (("ref", ref), ("ours", ours)):
        torch.manual_seed(7)  # the transform's (single) size draw per image, as torchvision's
        losses[name] = model(photos, targets)
        sum(losses[name].values()).backward()
    assert set(losses["ours"]) == set(losses["ref"]) == {"classification", "bbox_regression"}
    for key, want in losses["ref"].items():
        assert want > 0
        torch.testing.assert_close(losses["ours"][key], want, rtol=1e-5, atol=1e-7)
    grads = convert_torchvision_state_dict(
        "retinanet_resnet50_fpn", {k: p.grad for k, p in ref.named_parameters()})
    for key, p in ours.named_parameters():
        want = grads[key]
        assert (p.grad - want).abs().max() <= 1e-4 * want.abs().max() + 1e-9, key


def test_focal_loss_is_100x_smaller_than_ce_at_pt_0_9():
    # Paper, Sec. 3.2: with gamma = 2 an example with p_t = 0.9 has 100x lower loss than with
    # CE, and with p_t ~ 0.968, 1000x lower. (1 - p_t)^gamma = 0.1^2 exactly.
    for p_t, factor in ((0.9, 100.0), (1 - 1000 ** -0.5, 1000.0)):
        logit = torch.tensor([math.log(p_t / (1 - p_t))], dtype=torch.float64)
        for target, x in ((1.0, logit), (0.0, -logit)):  # a positive and a negative with p_t
            y = torch.tensor([target], dtype=torch.float64)
            ce = sigmoid_focal_loss(x, y, alpha=None, gamma=0.0)
            fl = sigmoid_focal_loss(x, y, alpha=None, gamma=2.0)
            torch.testing.assert_close(ce / fl, torch.tensor([factor], dtype=torch.float64))
            torch.testing.assert_close(ce, -torch.log(torch.tensor([p_t], dtype=torch.float64)))


def _crops() -> list[torch.Tensor]:
    return [_photo("astronaut")[:, :96, :128], _photo("coffee")[:, 100:196, 200:328]]


def _targets() -> list[dict[str, torch.Tensor]]:
    return [{"boxes": torch.tensor([[10.0, 20, 60, 80], [70, 5, 120, 40]]),
             "labels": torch.tensor([1, 3])},
            {"boxes": torch.tensor([[30.0, 30, 90, 70]]), "labels": torch.tensor([2])}]


@pytest.mark.parametrize("loss", ["focal", "bce"])
def test_cpu_variant_every_parameter_gets_a_gradient(loss):
    torch.manual_seed(0)
    model = create("retinanet_resnet18_fpn", num_classes=4, min_size=96, max_size=128,
                   loss=loss).train()
    losses = model(_crops(), _targets())
    assert set(losses) == {"classification", "bbox_regression"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
               for p in model.parameters())
    model.eval()
    with torch.no_grad():
        detections = model(_crops())
    assert len(detections) == 2 and all(isinstance(d, Detections) for d in detections)


def test_prior_init_and_focal_down_weights_the_easy_negatives():
    torch.manual_seed(0)
    focal = create("retinanet_resnet18_fpn", num_classes=4, min_size=96, max_size=128).train()
    bce = create("retinanet_resnet18_fpn", num_classes=4, min_size=96, max_size=128,
                 loss="bce").train()
    bce.load_state_dict(focal.state_dict())
    # Sec. 4.1: every output starts at about pi = 0.01.
    bias = focal.head.classification_head.cls_logits.bias
    torch.testing.assert_close(torch.sigmoid(bias), torch.full_like(bias, 0.01))
    losses = {}
    for name, model in (("focal", focal), ("bce", bce)):
        torch.manual_seed(3)
        losses[name] = model(_crops(), _targets())
    # Same boxes, same matching: only the classification loss differs, by far. The ~5k easy
    # negatives at p = 0.01 weigh 0.75 * 0.01^2 of their CE under the focal loss, so what is
    # left is mostly the positives' 0.25 * 0.99^2 * -log(0.01) each.
    assert torch.equal(losses["focal"]["bbox_regression"], losses["bce"]["bbox_regression"])
    assert losses["bce"]["classification"] > 10 * losses["focal"]["classification"]


def test_builder_keywords_and_errors():
    assert {"retinanet_resnet50_fpn", "retinanet_resnet18_fpn"} <= set(list_models("detection"))
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        create("retinanet_resnet18_fpn", num_anchors=3)
    model = create("retinanet_resnet18_fpn", num_classes=3, aspect_ratios=(1.0,),
                   box_loss="smooth_l1", box_loss_weight=2.0)
    assert model.anchor_generator.num_anchors_per_location() == [3] * 5
    assert model.head.regression_head.bbox_reg.out_channels == 3 * 4
    assert model.backbone.strides == {"p3": 8, "p4": 16, "p5": 32, "p6": 64, "p7": 128}
    from modernvision._errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="cls_loss must be"):
        create("retinanet_resnet18_fpn", loss="ce")
    with pytest.raises(InvalidArgumentError, match="anchor_sizes needs one tuple"):
        create("retinanet_resnet18_fpn", anchor_sizes=((16,),))


def test_mobilenet_variant_starts_from_the_demo_detectors_backbone_and_fpn():
    """``retinanet_mobilenet_v2_050_fpn`` names its backbone and FPN as the shipped scenes
    Faster R-CNN does: ``load_own_weights`` (``train --init``) carries them over unchanged and
    leaves the subnets and P6 / P7 freshly initialised; the result trains (every parameter
    gets a gradient)."""
    from pathlib import Path

    import modernvision
    from modernvision.models.pretrained import load_own_weights

    assets = Path(modernvision.__file__).parent / "assets"
    asset = assets / "fasterrcnn_mobilenet_v2_050_fpn_scenes.pt"
    torch.manual_seed(0)
    model = create("retinanet_mobilenet_v2_050_fpn", num_classes=21)
    report = load_own_weights(model, asset)
    assert report["shape_mismatch"] == []
    assert {k.split(".")[0] for k in report["not_in_source"]} == {"head", "backbone"}
    assert all(k.startswith(("head.", "backbone.fpn.extra_blocks."))
               for k in report["not_in_source"])
    assert any(k.startswith("backbone.body.") for k in report["loaded"])
    assert any(k.startswith("backbone.fpn.inner_blocks.") for k in report["loaded"])
    source = torch.load(asset, map_location="cpu", weights_only=False)["state_dict"]
    ours = model.state_dict()
    for k in report["loaded"]:
        torch.testing.assert_close(ours[k], source[k].to(ours[k].dtype), rtol=0, atol=0)
    model.train()
    losses = model(_crops(), _targets())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]
