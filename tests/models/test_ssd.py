"""SSD: torchvision's ssd300_vgg16 converted gives the same detections and training losses;
the paper's 8732 default boxes; hard-negative mining at 3:1; the CPU variant trains."""

import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from modernvision._errors import InvalidArgumentError
from modernvision.models import convert_torchvision_state_dict, create, list_models
from modernvision.models.detection import Detections, DetectionTransform


def _photo(name: str) -> torch.Tensor:
    from modernvision.data import load_photo

    return torch.from_numpy(load_photo(name)).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    # Real photos; chelsea is 451x300, not square (SSD resizes it to 300x300 regardless).
    return [_photo("astronaut"), _photo("chelsea")]


@pytest.fixture(scope="module")
def vgg_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    ref = torchvision.models.detection.ssd300_vgg16(
        weights=None, weights_backbone=None, num_classes=5).eval()
    with torch.no_grad():  # a non-trivial L2-norm scale, so a mis-mapped one shows
        ref.backbone.scale_weight.uniform_(10, 30)
    ours = create("ssd300_vgg16", num_classes=5).eval()
    ours.load_state_dict(convert_torchvision_state_dict("ssd300_vgg16", ref.state_dict()))
    return ours, ref


def test_same_state_dict_and_parameters_as_torchvision(vgg_pair):
    ours, ref = vgg_pair
    converted = convert_torchvision_state_dict("ssd300_vgg16", ref.state_dict())
    assert set(converted) == set(ours.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_default_boxes_are_the_papers_8732_and_torchvisions(vgg_pair):
    ours, ref = vgg_pair
    images = torch.zeros(1, 3, 300, 300)
    with torch.no_grad():
        features = ours.backbone(images)
    assert [tuple(f.shape[-2:]) for f in features] == [(38, 38), (19, 19), (10, 10), (5, 5),
                                                        (3, 3), (1, 1)]
    boxes = ours.anchor_generator(images, features)[0]
    assert boxes.shape == (8732, 4)  # Sec. 3: "8732 boxes per class" for SSD300
    from torchvision.models.detection.image_list import ImageList

    want = ref.anchor_generator(ImageList(images, [(300, 300)]), features)[0]
    assert torch.equal(boxes, want)


def test_detections_equal_torchvision(vgg_pair, photos):
    ours, ref = vgg_pair
    with torch.no_grad():
        want = ref(photos)
        got = ours(photos)
    for g, w, image in zip(got, want, photos):
        assert isinstance(g, Detections)
        assert len(g) == len(w["boxes"]) == 200
        torch.testing.assert_close(g.boxes, w["boxes"], rtol=0, atol=2e-3)
        torch.testing.assert_close(g.scores, w["scores"], rtol=0, atol=1e-5)
        assert torch.equal(g.labels, w["labels"])
        assert float(g.boxes[:, 2].max()) > 300  # in the input image's pixels
        assert float(g.boxes[:, 2].max()) <= image.shape[-1]


def _train_losses(pair, photos, *, backward: bool):
    ours, ref = (copy.deepcopy(m).train() for m in pair)
    # The second image has no objects: it contributes no positives and no mined negatives.
    targets = [{"boxes": torch.tensor([[177.0, 66, 272, 161], [20, 100, 300, 500],
                                       [300, 20, 330, 60]]),
                "labels": torch.tensor([1, 2, 4])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    losses = {}
    for name, model in (("ref", ref), ("ours", ours)):
        torch.manual_seed(7)
        with torch.set_grad_enabled(backward):
            losses[name] = model(photos, targets)
        if backward:
            sum(losses[name].values()).backward()
    assert set(losses["ours"]) == set(losses["ref"]) == {"classification", "bbox_regression"}
    for key, want in losses["ref"].items():
        assert want > 0
        torch.testing.assert_close(losses["ours"][key], want, rtol=1e-5, atol=1e-6)
    return ours, ref


def test_training_losses_equal_torchvision(vgg_pair, photos):
    _train_losses(vgg_pair, photos, backward=False)


@pytest.mark.slow
def test_training_gradients_equal_torchvision(vgg_pair, photos):
    ours, ref = _train_losses(vgg_pair, photos, backward=True)
    grads = convert_torchvision_state_dict(
        "ssd300_vgg16", {k: p.grad for k, p in ref.named_parameters()})
    for key, p in ours.named_parameters():
        want = grads[key]
        assert (p.grad - want).abs().max() <= 1e-4 * want.abs().max() + 1e-9, key


def test_loss_mines_the_three_hardest_negatives_per_positive():
    model = create("ssd256_resnet18", num_classes=3)
    anchors = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50],
                            [60, 60, 70, 70], [80, 80, 90, 90], [0, 0, 11, 10],
                            [100, 100, 110, 110]])
    targets = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([2])}]
    logits = torch.randn(1, 7, 3, generator=torch.Generator().manual_seed(0))
    deltas = torch.zeros(1, 7, 4)
    losses = model.compute_loss(targets, logits, deltas, [anchors])
    # Anchors 0 and 5 match (IoU 1 and 10/11 > 0.5): 2 positives, 6 negatives kept of 5.
    ce = F.cross_entropy(logits[0], torch.tensor([2, 0, 0, 0, 0, 2, 0]), reduction="none")
    negatives = ce[[1, 2, 3, 4, 6]].sort(descending=True).values[:6]
    torch.testing.assert_close(losses["classification"],
                               (ce[0] + ce[5] + negatives.sum()) / 2)
    # Offsets against (10, 10, 5, 5)-weighted targets: anchor 5 is 1 px wider than the box.
    goal = model.box_coder.encode(targets[0]["boxes"].expand(2, 4), anchors[[0, 5]])
    from modernvision.losses import smooth_l1_loss

    torch.testing.assert_close(losses["bbox_regression"],
                               smooth_l1_loss(torch.zeros(2, 4), goal, reduction="sum") / 2)
    one = [{"boxes": torch.tensor([[40.0, 40, 50, 50]]), "labels": torch.tensor([1])}]
    losses = model.compute_loss(one, logits, deltas, [anchors])
    ce = F.cross_entropy(logits[0], torch.tensor([0, 0, 1, 0, 0, 0, 0]), reduction="none")
    hardest = ce[[0, 1, 3, 4, 5, 6]].sort(descending=True).values[:3]
    torch.testing.assert_close(losses["classification"], ce[2] + hardest.sum())


def _crops() -> list[torch.Tensor]:
    return [_photo("astronaut")[:, :96, :128], _photo("coffee")[:, 100:196, 200:328]]


def _targets() -> list[dict[str, torch.Tensor]]:
    return [{"boxes": torch.tensor([[10.0, 20, 60, 80], [70, 5, 120, 40]]),
             "labels": torch.tensor([1, 3])},
            {"boxes": torch.tensor([[30.0, 30, 90, 70]]), "labels": torch.tensor([2])}]


def test_cpu_variant_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = create("ssd256_resnet18", num_classes=4, size=(128, 128),
                   scales=(0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05)).train()
    losses = model(_crops(), _targets())
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        detections = model(_crops())
    assert len(detections) == 2 and all(isinstance(d, Detections) for d in detections)
    # Boxes come back in the 128x96 crops' pixels though the net saw 128x128.
    assert all(float(d.boxes[:, 3].max()) <= 96 for d in detections)


def test_fixed_size_transform():
    transform = DetectionTransform(64, 64, fixed_size=(64, 80), size_divisible=1)
    assert "fixed_size=(64, 80)" in repr(transform)
    image = torch.rand(3, 30, 40)
    target = {"boxes": torch.tensor([[4.0, 3, 20, 15]]), "labels": torch.tensor([1])}
    batch, (resized,) = transform([image], [target])
    assert batch.tensors.shape == (1, 3, 64, 80) and batch.image_sizes == [(64, 80)]
    torch.testing.assert_close(resized["boxes"], torch.tensor([[8.0, 6.4, 40, 32]]))
    with pytest.raises(InvalidArgumentError, match="fixed_size must be"):
        DetectionTransform(64, 64, fixed_size=(64,))


def test_vgg16_classifier_convs_load_by_name():
    torch.manual_seed(0)
    vgg = create("vgg16", num_classes=0)
    model = create("ssd300_vgg16", num_classes=3)
    model.backbone.load_vgg16_convs(vgg.state_dict())
    assert torch.equal(model.backbone.features.conv1_1.conv.weight,
                       vgg.features.conv1_1.conv.weight)
    assert torch.equal(model.backbone.extra[0].conv5_3.conv.bias, vgg.features.conv5_3.conv.bias)


def test_builder_keywords_and_errors():
    assert {"ssd300_vgg16", "ssd256_resnet18"} <= set(list_models("detection"))
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        create("ssd256_resnet18", min_size=300)
    model = create("ssd300_vgg16", num_classes=3, trainable_backbone_layers=3,
                   positive_fraction=0.5)
    assert model.neg_pos_ratio == 1.0
    frozen = [n for n, p in model.backbone.named_parameters() if not p.requires_grad]
    assert frozen == [f"features.conv{s}_{i}.conv.{w}" for s in (1, 2) for i in (1, 2)
                      for w in ("weight", "bias")]
    with pytest.raises(InvalidArgumentError, match="aspect_ratios needs one tuple"):
        create("ssd256_resnet18", aspect_ratios=((2,),))
