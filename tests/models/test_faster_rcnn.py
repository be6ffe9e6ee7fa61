"""Faster R-CNN: torchvision's fasterrcnn_resnet50_fpn converted gives the same proposals,
detections and training losses; the input boundary; the CPU variants train."""

import copy

import pytest
import torch
import torchvision
from torch import nn

from modernvision._errors import InvalidArgumentError
from modernvision.data import load_photo
from modernvision.models import convert_torchvision_state_dict, create, list_models
from modernvision.models.detection import Detections, DetectionTransform

SMALL = dict(min_size=128, max_size=224, rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=40,
             rpn_pre_nms_top_n_train=150, rpn_post_nms_top_n_train=60,
             rpn_batch_size_per_image=64, box_batch_size_per_image=64)
CPU_VARIANTS = ["fasterrcnn_resnet18_fpn", "fasterrcnn_resnet18_c4",
                "fasterrcnn_resnet18_pyramid", "fasterrcnn_mobilenet_v2_fpn",
                "fasterrcnn_mobilenet_v2_050_fpn"]


def _photo(name: str) -> torch.Tensor:
    return torch.from_numpy(load_photo(name)).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    # Real photos; chelsea is 451x300, not square.
    return [_photo("astronaut"), _photo("chelsea")]


@pytest.fixture(scope="module")
def resnet50_pair(randomize_bn) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    ref = torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=5, **SMALL).eval()
    randomize_bn(ref)
    ours = create("fasterrcnn_resnet50_fpn", num_classes=5, **SMALL).eval()
    ours.load_state_dict(convert_torchvision_state_dict("fasterrcnn_resnet50_fpn",
                                                        ref.state_dict()))
    return ours, ref


def test_same_state_dict_and_parameters_as_torchvision(resnet50_pair):
    ours, ref = resnet50_pair
    converted = convert_torchvision_state_dict("fasterrcnn_resnet50_fpn", ref.state_dict())
    assert set(converted) == set(ours.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_proposals_equal_torchvision(resnet50_pair, photos):
    ours, ref = resnet50_pair
    with torch.no_grad():
        tv_batch, _ = ref.transform(photos)
        tv_proposals, _ = ref.rpn(tv_batch, ref.backbone(tv_batch.tensors))
        batch, _ = ours.transform(photos)
        proposals, _ = ours.rpn(batch, ours.backbone(batch.tensors))
    assert batch.image_sizes == tv_batch.image_sizes == [(128, 128), (128, 192)]
    for got, want in zip(proposals, tv_proposals):
        assert got.shape == want.shape == (40, 4)
        assert torch.equal(got, want)


def test_detections_equal_torchvision(resnet50_pair, photos):
    ours, ref = resnet50_pair
    with torch.no_grad():
        want = ref(photos)
        got = ours(photos)
    for g, w, image in zip(got, want, photos):
        assert isinstance(g, Detections)
        assert len(g) == len(w["boxes"]) > 10
        torch.testing.assert_close(g.boxes, w["boxes"], rtol=0, atol=2e-3)
        torch.testing.assert_close(g.scores, w["scores"], rtol=0, atol=1e-5)
        assert torch.equal(g.labels, w["labels"])
        # In the input image's pixels, not the resized ones.
        assert float(g.boxes[:, 2].max()) <= image.shape[-1]
        assert float(g.boxes[:, 2].max()) > 224


def test_training_losses_equal_torchvision(resnet50_pair, photos):
    ours, ref = (copy.deepcopy(m).train() for m in resnet50_pair)
    # The second image has no objects: torchvision's background-image path too.
    targets = [{"boxes": torch.tensor([[177.0, 66, 272, 161], [20, 100, 300, 500]]),
                "labels": torch.tensor([1, 2])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    losses = {}
    for name, model in (("ref", ref), ("ours", ours)):
        # One seed: the transform's size draws and both samplers' randperms line up, as our
        # sampler draws exactly as torchvision's.
        torch.manual_seed(7)
        losses[name] = model(photos, targets)
        sum(losses[name].values()).backward()
    assert set(losses["ours"]) == set(losses["ref"]) == {
        "loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    for key, want in losses["ref"].items():
        torch.testing.assert_close(losses["ours"][key], want, rtol=1e-5, atol=1e-7)
    grads = convert_torchvision_state_dict(
        "fasterrcnn_resnet50_fpn", {k: p.grad for k, p in ref.named_parameters()})
    for key, p in ours.named_parameters():
        want = grads[key]
        assert (p.grad - want).abs().max() <= 1e-4 * want.abs().max() + 1e-9, key


@pytest.fixture(scope="module")
def small_model() -> nn.Module:
    torch.manual_seed(0)
    return create("fasterrcnn_resnet18_fpn", num_classes=4, min_size=128, max_size=160)


def _crops() -> list[torch.Tensor]:
    return [_photo("astronaut")[:, :96, :128], _photo("coffee")[:, 100:196, 200:328]]


def _targets() -> list[dict[str, torch.Tensor]]:
    return [{"boxes": torch.tensor([[10.0, 20, 60, 80], [70, 5, 120, 40]]),
             "labels": torch.tensor([1, 3])},
            {"boxes": torch.tensor([[30.0, 30, 90, 70]]), "labels": torch.tensor([2])}]


def test_list_input_equals_batch_tensor(small_model):
    images = _crops()
    model = small_model.eval()
    with torch.no_grad():
        from_list = model(images)
        from_batch = model(torch.stack(images))
    assert len(from_list) == len(from_batch) == 2
    for a, b in zip(from_list, from_batch):
        assert len(a) > 0
        assert torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores)
        assert torch.equal(a.labels, b.labels)
    model.train()
    losses = []
    for inputs in (images, torch.stack(images)):
        torch.manual_seed(1)
        losses.append(model(inputs, _targets()))
    for key in losses[0]:
        assert torch.equal(losses[0][key], losses[1][key]), key
    model.eval()


def test_transform_is_visible_and_replaceable(small_model):
    model = copy.deepcopy(small_model).eval()
    assert "DetectionTransform(min_size=128, max_size=160" in repr(model)
    model.transform = DetectionTransform(96, 128)  # the crops keep their 96x128 size
    assert "min_size=96, max_size=128" in repr(model)
    images = _crops()
    with torch.no_grad():
        full = model(images)
        batch, _ = model.transform(images)
        model.transform = None  # the caller normalises and sizes the tensors
        raw = model(batch.tensors)
    assert batch.image_sizes == [(96, 128)] * 2
    for f, r in zip(full, raw):
        assert len(f) > 0
        torch.testing.assert_close(r.boxes, f.boxes)
        torch.testing.assert_close(r.scores, f.scores)


def _bad_inputs():
    image = _crops()[0]
    good = {"boxes": torch.tensor([[10.0, 20, 60, 80]]), "labels": torch.tensor([1])}
    return [
        ("channels", [image, image[:1]], [good, good], r"images\[1\]: expected 3 channels"),
        ("batch_channels", torch.zeros(2, 4, 32, 32), [good, good], "expected 3 channels"),
        ("uint8", [(image * 255).to(torch.uint8)], [good], r"images\[0\] has dtype torch.uint8"),
        ("single_3d", image, [good], "wrap a single image in a list"),
        ("targets_length", [image, image], [good], "targets has 1 entries for 2 images"),
        ("no_targets", [image], None, "targets are required in training mode"),
        ("degenerate", [image, image],
         [good, {"boxes": torch.tensor([[5.0, 5, 5, 9]]), "labels": torch.tensor([1])}],
         r"targets\[1\]\['boxes'\]: box 0 .*degenerate"),
        ("outside", [image],
         [{"boxes": torch.tensor([[10.0, 20, 129, 80]]), "labels": torch.tensor([1])}],
         r"targets\[0\]\['boxes'\]: box 0 .*outside the 128x96"),
        ("label", [image], [{"boxes": good["boxes"], "labels": torch.tensor([4])}],
         r"targets\[0\]\['labels'\] has 4; labels must be in \[1, 3\]"),
        ("label_count", [image], [{"boxes": good["boxes"], "labels": torch.tensor([1, 2])}],
         r"targets\[0\]\['labels'\] must be a Tensor\[N\] with N = 1"),
        ("boxes_shape", [image], [{"boxes": torch.zeros(1, 5), "labels": torch.tensor([1])}],
         r"targets\[0\]\['boxes'\] must be a Tensor\[N, 4\]"),
    ]


@pytest.mark.parametrize(("images", "targets", "message"),
                         [case[1:] for case in _bad_inputs()],
                         ids=[case[0] for case in _bad_inputs()])
def test_bad_inputs_raise_clear_errors(small_model, images, targets, message):
    small_model.train()
    with pytest.raises(InvalidArgumentError, match=message):
        small_model(images, targets)
    small_model.eval()


def test_image_without_objects_trains_on_negatives_only(small_model):
    model = small_model.train()
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    torch.manual_seed(0)
    losses = model(_crops(), empty)
    assert all(torch.isfinite(v) for v in losses.values())
    # No positives anywhere: no box regression, only background classification.
    assert losses["loss_rpn_box_reg"] == 0 and losses["loss_box_reg"] == 0
    assert losses["loss_objectness"] > 0 and losses["loss_classifier"] > 0
    sum(losses.values()).backward()
    model.zero_grad()
    model.eval()


@pytest.mark.parametrize("name", CPU_VARIANTS)
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = create(name, num_classes=4, min_size=96, max_size=128,
                   rpn_sampling="hard" if name.endswith("c4") else "random").train()
    losses = model(_crops(), _targets())
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        detections = model(_crops())
    assert len(detections) == 2 and all(isinstance(d, Detections) for d in detections)


def test_hard_negatives_are_the_highest_scoring():
    model = create("fasterrcnn_resnet18_c4", num_classes=3, rpn_sampling="hard",
                   rpn_batch_size_per_image=6, rpn_positive_fraction=0.5)
    labels = [torch.tensor([1.0, 0, 0, -1, 0, 0, 0, 1, 0, 0]), torch.tensor([0.0, 0, 0, 0])]
    objectness = torch.tensor([5.0, 0.1, 3.0, 9.0, -2.0, 2.5, 0.2, 1.0, 7.0, -1.0,
                               1.0, 4.0, 2.0, 3.0])
    positives, negatives = model.rpn.sample(labels, objectness)
    assert sorted(positives.tolist()) == [0, 7]
    # Image 0: 6 - 2 positives = 4 negatives, the highest-scoring ones (index 3 is ignored).
    # Image 1 (offset 10): no positives, all 4 candidates.
    assert sorted(negatives.tolist()) == [2, 5, 6, 8, 10, 11, 12, 13]


def test_registry_and_builder_keywords():
    names = list_models("detection")
    assert {"fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_c4", *CPU_VARIANTS} <= set(names)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        create("fasterrcnn_resnet18_fpn", rpn_nms=0.5)
    c5 = create("fasterrcnn_resnet18_c4", num_classes=3, levels=("c5",))
    assert c5.backbone.out_channels == {"c5": 512}
    assert c5.roi_heads.box_head.fc6.in_features == 512 * 7 * 7
    with pytest.raises(InvalidArgumentError, match="num_classes"):
        create("fasterrcnn_resnet18_fpn", num_classes=1)
