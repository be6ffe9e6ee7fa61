"""Fast R-CNN: RoI max pooling on the shared map, the paper's RoI sampling (25 % foreground,
background in [0.1, 0.5)), training, evaluation and bad input."""

import pytest
import torch

from modernvision._errors import InvalidArgumentError
from modernvision.models import create, get_entry
from modernvision.models.detection import Detections
from modernvision.ops import box_iou, roi_pool

TINY = dict(proposal_top=40, min_size=64, max_size=96, representation_size=64)


def _scene(seed: int = 0) -> tuple[torch.Tensor, dict]:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, 64, 64, generator=g) * 0.1
    image[:, 10:30, 12:32] = 0.9
    image[1, 40:56, 36:60] = 0.6
    target = {"boxes": torch.tensor([[12.0, 10, 32, 30], [36, 40, 60, 56]]),
              "labels": torch.tensor([1, 2])}
    return image, target


def test_builders_are_registered_and_the_paper_network_is_vgg16_conv5_3():
    for name in ("fast_rcnn_vgg16", "fast_rcnn_resnet18_c4"):
        assert get_entry(name).task == "detection"
    model = create("fast_rcnn_vgg16", num_classes=21)
    pool = model.roi_heads.box_roi_pool
    assert pool.spatial_scale == 1 / 16 and pool.output_size == 7
    assert model.backbone.out_channels == {"c4": 512}
    assert model.roi_heads.box_head.fc6.in_features == 512 * 49
    assert model.roi_heads.box_head.fc7.out_features == 4096
    assert model.transform.min_size == (600,) and model.transform.max_size == 1000
    with pytest.raises(TypeError, match="levell"):
        create("fast_rcnn_resnet18_c4", levell="c3")


def test_sampling_is_64_rois_a_quarter_foreground_background_in_0_1_to_0_5():
    torch.manual_seed(0)
    heads = create("fast_rcnn_resnet18_c4", num_classes=3, **TINY).roi_heads
    gt = torch.tensor([[100.0, 100, 200, 200]])
    shifts = torch.arange(40, dtype=torch.float32)[:, None]
    fg = gt + torch.cat([shifts, shifts, shifts, shifts], 1) * 0.5  # IoU >= 0.6
    mid = gt + torch.tensor([60.0, 0, 60, 0]) + torch.linspace(0, 20, 200)[:, None] * \
        torch.tensor([1.0, 0, 1, 0])  # IoU about 0.1-0.25
    far = torch.tensor([[300.0, 300, 340, 340]]).repeat(200, 1)  # IoU 0
    proposals = torch.cat([fg, mid, far])
    iou = box_iou(gt, torch.cat([proposals, gt]))[0]
    assert (iou[40:240] >= 0.1).all() and (iou[40:240] < 0.5).all()
    sampled = heads.select_training_samples(
        [proposals], [{"boxes": gt, "labels": torch.tensor([2])}])
    labels, rois = sampled.labels[0], sampled.proposals[0]
    assert labels.numel() == 64 and int((labels > 0).sum()) == 16
    assert (labels[labels > 0] == 2).all()
    best = box_iou(gt, rois)[0]
    assert (best[labels > 0] >= 0.5).all()
    assert (best[labels == 0] >= 0.1).all() and (best[labels == 0] < 0.5).all()
    assert sampled.regression_targets[0].shape == (64, 4)


def test_rois_are_max_pooled_from_the_shared_map_at_its_stride():
    torch.manual_seed(0)
    model = create("fast_rcnn_resnet18_c4", num_classes=3, **TINY).eval()
    x = torch.rand(1, 3, 64, 64)
    rois = [torch.tensor([[0.0, 0, 32, 32], [16, 8, 64, 40]])]
    with torch.no_grad():
        features = model.backbone(x)
        pooled = model.roi_heads.box_roi_pool(features, rois, [(64, 64)])
        logits, deltas = model.roi_heads.box_forward(features, rois, [(64, 64)])
    torch.testing.assert_close(pooled, roi_pool(features["c4"], rois, 7, 1 / 16))
    assert pooled.shape == (2, 256, 7, 7)
    assert logits.shape == (2, 3) and deltas.shape == (2, 12)


def test_training_gives_the_multi_task_loss_and_it_decreases():
    torch.manual_seed(0)
    model = create("fast_rcnn_resnet18_c4", num_classes=3, **TINY)
    images, targets = zip(*[_scene(0), _scene(1)])
    losses = model(list(images), list(targets))
    assert set(losses) == {"loss_classifier", "loss_box_reg"}
    sum(losses.values()).backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    totals = []
    for _ in range(8):
        loss = sum(model(list(images), list(targets)).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        totals.append(float(loss.detach()))
    assert model.proposal_provider.computed == 2
    assert totals[-1] < 0.7 * totals[0], totals


def test_eval_maps_proposals_through_the_resize_and_back():
    torch.manual_seed(0)
    model = create("fast_rcnn_resnet18_c4", num_classes=3, **TINY).eval()
    image, _ = _scene()
    big = torch.nn.functional.interpolate(image[None], size=(96, 128))[0]  # resized to 64x85
    with torch.no_grad():
        (det,) = model([big])
        (given,) = model([big], proposals=[torch.tensor([[10.0, 10, 100, 90]])])
    assert isinstance(det, Detections) and len(det) > 0
    assert (det.boxes[:, 2] <= 128).all() and (det.boxes[:, 3] <= 96).all()
    # One proposal: every detection refines that box, in the input's pixels.
    assert len(given) >= 1 and (given.boxes[:, 2] <= 128).all()


def test_bad_input_is_a_clear_error_or_an_empty_result():
    model = create("fast_rcnn_resnet18_c4", num_classes=3, **TINY).eval()
    with torch.no_grad():
        (det,) = model([torch.rand(3, 3, 3)])
        assert isinstance(det, Detections)
        (det,) = model([torch.rand(3, 32, 32)], proposals=[torch.zeros(0, 4)])
        assert len(det) == 0
        with pytest.raises(InvalidArgumentError, match="1 channel"):
            model([torch.rand(1, 32, 32)])
        with pytest.raises(InvalidArgumentError, match="NaN"):
            model([torch.rand(3, 32, 32)], proposals=[torch.full((1, 4), float("nan"))])
