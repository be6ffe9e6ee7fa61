"""Mask R-CNN and Keypoint R-CNN: torchvision's models converted give the same boxes, masks,
keypoints and training losses on real photos; the masked loss; pasting; the CPU variants."""

import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from modernvision._errors import InvalidArgumentError
from modernvision.data import load_photo
from modernvision.metrics import coco_evaluate
from modernvision.models import convert_torchvision_state_dict, create, list_models
from modernvision.models.necks.fpn import MultiScaleRoIPool
from modernvision.models.segmentation.mask_rcnn import (
    binary_masks,
    keypoint_targets,
    mask_loss,
    paste_masks,
)

SMALL = dict(min_size=128, max_size=224, rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=40,
             rpn_pre_nms_top_n_train=150, rpn_post_nms_top_n_train=60,
             rpn_batch_size_per_image=64, box_batch_size_per_image=64)


def _photo(name: str) -> torch.Tensor:
    return torch.from_numpy(load_photo(name)).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def photos() -> list[torch.Tensor]:
    return [_photo("astronaut"), _photo("chelsea")]  # 512x512 and 300x451


def _randomize_bn(model: nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.25 + 0.5 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))


def _pair(name: str, **kwargs) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    ref = getattr(torchvision.models.detection, name)(weights=None, weights_backbone=None,
                                                      **kwargs).eval()
    _randomize_bn(ref)
    ours = create(name, **kwargs).eval()
    ours.load_state_dict(convert_torchvision_state_dict(name, ref.state_dict()))
    return ours, ref


@pytest.fixture(scope="module")
def mask_pair() -> tuple[nn.Module, nn.Module]:
    return _pair("maskrcnn_resnet50_fpn", num_classes=5, box_detections_per_img=30, **SMALL)


@pytest.fixture(scope="module")
def keypoint_pair() -> tuple[nn.Module, nn.Module]:
    return _pair("keypointrcnn_resnet50_fpn", num_classes=3, num_keypoints=5,
                 box_detections_per_img=20,
                 **{**SMALL, "min_size": (112, 128)})


def _targets(photos, num_keypoints: int = 0) -> list[dict[str, torch.Tensor]]:
    boxes = torch.tensor([[177.0, 66, 272, 161], [20, 100, 300, 500]])
    masks = torch.zeros(2, *photos[0].shape[-2:], dtype=torch.uint8)
    masks[0, 70:160, 180:270] = 1
    yy, xx = torch.meshgrid(torch.arange(512), torch.arange(512), indexing="ij")
    masks[1] = (((yy - 300) / 200) ** 2 + ((xx - 160) / 140) ** 2 <= 1).to(torch.uint8)
    first = {"boxes": boxes, "labels": torch.tensor([1, 2]), "masks": masks}
    second = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
              "masks": torch.zeros(0, *photos[1].shape[-2:], dtype=torch.uint8)}
    if num_keypoints:
        g = torch.Generator().manual_seed(3)
        lo, size = boxes[:, None, :2], boxes[:, None, 2:] - boxes[:, None, :2]
        xy = lo + torch.rand(2, num_keypoints, 2, generator=g) * size
        vis = (torch.rand(2, num_keypoints, 1, generator=g) > 0.2).float()
        first["keypoints"] = torch.cat([xy, vis], dim=2)
        second["keypoints"] = torch.zeros(0, num_keypoints, 3)
        del first["masks"], second["masks"]
    return [first, second]


def test_same_state_dict_as_torchvision(mask_pair, keypoint_pair):
    for ours, ref in (mask_pair, keypoint_pair):
        assert set(convert_torchvision_state_dict(
            "maskrcnn_resnet50_fpn", ref.state_dict())) == set(ours.state_dict())
        assert sum(p.numel() for p in ours.parameters()) == sum(
            p.numel() for p in ref.parameters())


def test_boxes_and_masks_equal_torchvision(mask_pair, photos):
    ours, ref = mask_pair
    with torch.no_grad():
        want = ref(photos)
        got = ours(photos)
    for g, w, image in zip(got, want, photos):
        assert len(g) == len(w["boxes"]) > 10
        torch.testing.assert_close(g.boxes, w["boxes"], rtol=0, atol=2e-3)
        torch.testing.assert_close(g.scores, w["scores"], rtol=0, atol=1e-5)
        assert torch.equal(g.labels, w["labels"])
        # Probabilities pasted into the input image's pixels.
        assert g.masks.shape == w["masks"].shape == (len(g), 1, *image.shape[-2:])
        torch.testing.assert_close(g.masks, w["masks"], rtol=0, atol=1e-3)
        assert 0 <= float(g.masks.min()) and float(g.masks.max()) <= 1


def test_keypoints_equal_torchvision(keypoint_pair, photos):
    ours, ref = keypoint_pair
    with torch.no_grad():
        want = ref(photos)
        got = ours(photos)
    for g, w in zip(got, want):
        assert len(g) == len(w["boxes"]) == 20
        torch.testing.assert_close(g.boxes, w["boxes"], rtol=0, atol=2e-3)
        assert g.keypoints.shape == w["keypoints"].shape == (len(g), 5, 3)
        torch.testing.assert_close(g.keypoints, w["keypoints"], rtol=0, atol=2e-3)
        torch.testing.assert_close(g.keypoint_scores, w["keypoints_scores"], rtol=0, atol=1e-3)


@pytest.mark.parametrize("which", ["mask", "keypoint"])
def test_training_losses_equal_torchvision(which, mask_pair, keypoint_pair, photos):
    pair = mask_pair if which == "mask" else keypoint_pair
    ours, ref = (copy.deepcopy(m).train() for m in pair)
    targets = _targets(photos, num_keypoints=5 if which == "keypoint" else 0)
    losses = {}
    for name, model in (("ref", ref), ("ours", ours)):
        torch.manual_seed(7)  # same size draws and samplers' permutations
        losses[name] = model(photos, targets)
        sum(losses[name].values()).backward()
    extra = "loss_mask" if which == "mask" else "loss_keypoint"
    assert set(losses["ours"]) == set(losses["ref"]) == {
        "loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", extra}
    assert losses["ours"][extra] > 0
    for key, want in losses["ref"].items():
        torch.testing.assert_close(losses["ours"][key], want, rtol=1e-5, atol=1e-7)
    grads = {k: p.grad for k, p in ref.named_parameters()}
    for key, p in ours.named_parameters():
        if "_head" in key or "_predictor" in key:  # the new branches' gradients
            want = grads[key]
            # float32 sums in another order (RoIAlign, conv backward) and ReLUs at ~0 differ
            # elementwise; as a whole the gradients agree to 1e-3 (a bias of a softmax: ~0).
            assert (p.grad - want).norm() <= 1e-3 * want.norm() + 1e-6, key


def test_mask_loss_uses_only_the_target_class_channel():
    torch.manual_seed(0)
    targets = (torch.rand(2, 4, 4) > 0.5).float()
    labels = torch.tensor([2, 1])
    logits = torch.randn(2, 3, 4, 4)
    # By hand: -mean(t log s(x) + (1 - t) log(1 - s(x))) over the two chosen channels.
    chosen = torch.stack([logits[0, 2], logits[1, 1]])
    p = chosen.sigmoid()
    want = -(targets * p.log() + (1 - targets) * (1 - p).log()).mean()
    scrambled = logits.clone()
    scrambled[0, [0, 1]] = 50 * torch.randn(2, 4, 4)  # other classes: anything
    scrambled[1, [0, 2]] = -50 * torch.randn(2, 4, 4)
    scrambled.requires_grad_(True)
    got = mask_loss(scrambled, labels, targets)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(mask_loss(logits, labels, targets), want)
    got.backward()
    grad = scrambled.grad
    assert grad[0, [0, 1]].abs().max() == 0 and grad[1, [0, 2]].abs().max() == 0
    assert grad[0, 2].abs().min() > 0 and grad[1, 1].abs().min() > 0
    # A softmax over classes would make the channels compete; the masked loss does not.
    assert not torch.allclose(
        F.cross_entropy(scrambled[:, :, None].detach(), labels[:, None, None, None]
                        .expand(2, 1, 4, 4)), want)
    empty = torch.zeros(0, 3, 4, 4, requires_grad=True)
    assert mask_loss(empty, torch.zeros(0, dtype=torch.int64), torch.zeros(0, 4, 4)) == 0


def test_paste_masks_places_the_mask_at_its_box():
    masks = torch.ones(2, 1, 28, 28)
    boxes = torch.tensor([[10.0, 20, 50, 40], [90.0, 70, 130, 120]])  # second one crosses
    pasted = paste_masks(masks, boxes, (100, 100))
    assert pasted.shape == (2, 1, 100, 100)
    inside = pasted[0, 0] > 0.5
    ys, xs = torch.where(inside)
    # The box's pixels 10..49 x 20..39, give or take the one pixel of torchvision's rounding.
    got = torch.tensor([xs.min(), xs.max(), ys.min(), ys.max()])
    assert (got - torch.tensor([10, 49, 20, 39])).abs().max() <= 1
    assert pasted[1, 0, 70:, 90:].mean() > 0.9 and pasted[1, 0, :60].sum() == 0
    assert paste_masks(masks[:0], boxes[:0], (5, 7)).shape == (0, 1, 5, 7)


def test_keypoint_targets_cells_and_validity():
    rois = torch.tensor([[0.0, 0, 56, 56]])
    points = torch.tensor([[[10.5, 3.2, 1], [56, 56, 1], [70, 5, 1], [5, 5, 0]]])
    index, valid = keypoint_targets(points, rois, 56)
    assert valid.tolist() == [[True, True, False, False]]
    assert index.tolist() == [[3 * 56 + 10, 55 * 56 + 55, 0, 0]]


def test_cpu_variants_train_and_predict():
    crops = [_photo("astronaut")[:, :96, :128], _photo("coffee")[:, 100:196, 200:328]]
    targets = [{"boxes": torch.tensor([[10.0, 20, 60, 80]]), "labels": torch.tensor([1]),
                "masks": torch.zeros(1, 96, 128, dtype=torch.uint8)},
               {"boxes": torch.tensor([[30.0, 30, 90, 70]]), "labels": torch.tensor([2]),
                "masks": torch.zeros(1, 96, 128, dtype=torch.uint8)}]
    targets[0]["masks"][0, 25:75, 15:55] = 1
    targets[1]["masks"][0, 35:65, 40:80] = 1
    for mask_roi in ("align", "pool"):
        torch.manual_seed(0)
        model = create("maskrcnn_resnet18_fpn", num_classes=3, min_size=96, max_size=128,
                       mask_roi=mask_roi).train()
        assert isinstance(model.roi_heads.mask_roi_pool, MultiScaleRoIPool) == (
            mask_roi == "pool")
        losses = model(crops, targets)
        assert losses["loss_mask"] > 0
        sum(losses.values()).backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, missing[:5]
        model.eval()
        with torch.no_grad():
            dets = model(crops)
        assert all(d.masks.shape == (len(d), 1, 96, 128) for d in dets)
        results = dets[0].to_coco_results(1)
        assert all("segmentation" in r for r in results)
        assert binary_masks(dets[0]).dtype == torch.bool
    with pytest.raises(InvalidArgumentError, match=r"targets\[0\] has no 'masks'"):
        model.train()(crops, [{k: v for k, v in t.items() if k != "masks"} for t in targets])


def test_keypoint_cpu_variant_trains():
    crops = [_photo("astronaut")[:, :96, :128]]
    targets = [{"boxes": torch.tensor([[10.0, 20, 60, 80]]), "labels": torch.tensor([1]),
                "keypoints": torch.tensor([[[20.0, 30, 1], [50, 70, 1], [30, 40, 0],
                                            [40, 50, 1]]])}]
    torch.manual_seed(0)
    model = create("keypointrcnn_resnet18_fpn", num_classes=2, min_size=96,
                   max_size=128).train()
    losses = model(crops, targets)
    assert losses["loss_keypoint"] > 0
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        det = model(crops)[0]
    assert det.keypoints.shape == (len(det), 4, 3)


def test_segm_results_score_perfectly_on_their_own_masks():
    # The helper's RLE masks evaluated against themselves: mask AP 1.
    masks = torch.zeros(2, 1, 40, 50)
    masks[0, 0, 5:20, 5:25] = 0.9
    masks[1, 0, 22:38, 30:48] = 0.8
    from modernvision.models.detection import Detections

    det = Detections(torch.tensor([[5.0, 5, 25, 20], [30, 22, 48, 38]]), torch.tensor([0.9, 0.8]),
                     torch.tensor([1, 1]), masks=masks)
    results = det.to_coco_results(1)
    gt = {"images": [{"id": 1, "width": 50, "height": 40}], "categories": [{"id": 1}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                           "bbox": r["bbox"], "area": 1.0, "segmentation": r["segmentation"]}
                          for i, r in enumerate(results)]}
    assert coco_evaluate(gt, results, iou_type="segm")["AP"] == pytest.approx(1.0)


def test_registry_and_keywords():
    assert {"maskrcnn_resnet50_fpn", "maskrcnn_resnet18_fpn"} <= set(list_models("instance"))
    assert {"keypointrcnn_resnet50_fpn"} <= set(list_models("keypoint"))
    with pytest.raises(TypeError, match="unexpected keyword"):
        create("maskrcnn_resnet18_fpn", mask_rois="pool")
    with pytest.raises(InvalidArgumentError, match="mask_roi"):
        create("maskrcnn_resnet18_fpn", mask_roi="max")


def test_keypoints_from_scene_masks_train_the_keypoint_variant():
    from modernvision.data.detection_transforms import boxes_from_masks, keypoints_from_masks

    masks = torch.zeros(2, 96, 128, dtype=torch.uint8)
    masks[0, 20:60, 30:50] = 1
    masks[0, 10:20, 35:38] = 1  # a spike on top: the top point is its middle pixel
    masks[1, 50:90, 70:120] = 1
    points = keypoints_from_masks(masks)
    assert points[0, 0].tolist() == [36.5, 10.5, 2.0]  # top
    assert points[0, 1].tolist() == [49.5, 39.5, 2.0]  # right: middle of rows 20..59
    assert points[1, 2].tolist() == [94.5, 89.5, 2.0]  # bottom
    assert points[1, 3].tolist() == [70.5, 69.5, 2.0]  # left
    assert keypoints_from_masks(torch.zeros(1, 4, 4)).abs().sum() == 0
    torch.manual_seed(0)
    model = create("keypointrcnn_resnet18_fpn", num_classes=3, min_size=96, max_size=128,
                   rpn_post_nms_top_n_train=100, box_batch_size_per_image=32).train()
    image = _photo("coffee")[:, 100:196, 200:328]
    target = {"boxes": boxes_from_masks(masks), "labels": torch.tensor([1, 2]),
              "keypoints": points}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(4):
        loss = model([image], [target])["loss_keypoint"]
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first
