"""CenterNet: target heatmaps against hand-computed cases, decoding that recovers the boxes it was
given, the loss terms and weights, and the training/eval contract."""

import math

import pytest
import torch

from modernvision.losses import centernet_focal_loss
from modernvision.models import create
from modernvision.models.detection import Detections
from modernvision.models.detection.centernet import centernet_targets, decode_centers


def _t(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)}


def test_one_box_gives_the_hand_computed_gaussian_offset_and_size():
    # 80 x 80 pixels centred at (50, 50); stride 4: a 20 x 20 cell box centred at 12.5.
    t = centernet_targets([_t([[10, 10, 90, 90]], [2])], 3, (32, 32), 4)
    # CornerNet's radius for 20 x 20 at IoU 0.7 is the "both corners inwards" root,
    # the smaller root of 4 r^2 - 80 r + 0.3 * 400 = 0: (80 - sqrt(80^2 - 16 * 120)) / 8 = 1.63
    # -> r = 1, sigma = 3 / 6.
    assert (80 - math.sqrt(6400 - 16 * 120)) / 8 == pytest.approx(1.6334, abs=1e-4)
    e1, e2 = math.exp(-1 / (2 * 0.25)), math.exp(-2 / (2 * 0.25))
    want = torch.tensor([[e2, e1, e2], [e1, 1.0, e1], [e2, e1, e2]])
    heat = t["heatmap"][0, 1]
    torch.testing.assert_close(heat[11:14, 11:14], want)
    assert heat.sum().item() == pytest.approx(want.sum().item())  # nothing outside r = 1
    assert t["heatmap"][0, [0, 2]].abs().sum() == 0  # other classes untouched
    assert t["index"].tolist() == [[0, 1, 12, 12]]
    assert t["offset"].tolist() == [[0.5, 0.5]] and t["size"].tolist() == [[20.0, 20.0]]


def test_overlapping_gaussians_of_a_class_take_the_maximum_not_the_sum():
    boxes = [[10, 10, 90, 90], [18, 10, 98, 90]]  # centres 2 cells apart, same class
    both = centernet_targets([_t(boxes, [1, 1])], 1, (32, 32), 4)["heatmap"][0, 0]
    a = centernet_targets([_t(boxes[:1], [1])], 1, (32, 32), 4)["heatmap"][0, 0]
    b = centernet_targets([_t(boxes[1:], [1])], 1, (32, 32), 4)["heatmap"][0, 0]
    torch.testing.assert_close(both, torch.maximum(a, b))
    # At the cell between the centres each Gaussian gives e^-2; the max keeps e^-2, not 2e^-2.
    assert both[12, 13].item() == pytest.approx(math.exp(-2))
    # Different classes: separate channels.
    two = centernet_targets([_t(boxes, [1, 2])], 2, (32, 32), 4)["heatmap"][0]
    torch.testing.assert_close(two[0], a)
    torch.testing.assert_close(two[1], b)


def test_small_box_has_radius_zero_a_single_peak():
    t = centernet_targets([_t([[40, 40, 48, 52]], [1])], 1, (32, 32), 4)
    heat = t["heatmap"][0, 0]
    assert heat.sum() == 1 and heat[11, 11] == 1  # centre (44, 46) / 4 = (11, 11.5)
    assert t["offset"].tolist() == [[0.0, 0.5]] and t["size"].tolist() == [[2.0, 3.0]]


def test_decoding_the_targets_recovers_the_boxes():
    boxes = [[10.0, 12.0, 90.0, 70.0], [100.0, 40.0, 124.0, 100.0], [30.0, 80.0, 62.0, 120.0]]
    labels = [1, 3, 1]
    t = centernet_targets([_t(boxes, labels)], 3, (32, 32), 4)
    offset, size = torch.zeros(1, 2, 32, 32), torch.zeros(1, 2, 32, 32)
    image, _, ys, xs = t["index"].unbind(1)
    offset[image, :, ys, xs] = t["offset"]
    size[image, :, ys, xs] = t["size"]
    out, scores, classes = decode_centers(t["heatmap"], offset, size, 4, k=100)
    assert out.shape == (1, 100, 4)
    top = scores[0] == 1  # the three centres; the Gaussians' slopes are no peaks
    assert int(top.sum()) == 3 and bool(top[:3].all())
    got = sorted(zip(out[0, :3].tolist(), (classes[0, :3] + 1).tolist()))
    want = sorted(zip(boxes, labels))
    for (gb, gl), (wb, wl) in zip(got, want):
        assert gl == wl
        assert gb == pytest.approx(wb, abs=1e-4)


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return create("centernet_resnet18", num_classes=4, min_size=128, up_channels=(32, 32, 16),
                  head_channels=16)


def test_loss_terms_are_the_papers_with_their_weights(tiny):
    targets = [_t([[10, 20, 60, 80], [70, 5, 120, 40]], [1, 3])]
    outputs = {"heatmap": torch.randn(1, 3, 32, 32), "offset": torch.rand(1, 2, 32, 32),
               "size": torch.rand(1, 2, 32, 32) * 10}
    losses = tiny.compute_loss(outputs, targets)
    t = centernet_targets(targets, 3, (32, 32), 4)
    image, _, ys, xs = t["index"].unbind(1)
    want_size = (outputs["size"][image, :, ys, xs] - t["size"]).abs().sum() / 2
    want_off = (outputs["offset"][image, :, ys, xs] - t["offset"]).abs().sum() / 2
    torch.testing.assert_close(losses["loss_heatmap"],
                               centernet_focal_loss(outputs["heatmap"], t["heatmap"]))
    torch.testing.assert_close(losses["loss_size"], 0.1 * want_size)
    torch.testing.assert_close(losses["loss_offset"], want_off)


def test_training_gives_every_parameter_a_gradient_and_eval_top_k(tiny):
    assert tiny.stride == 4
    tiny.train()
    images = [torch.rand(3, 128, 128), torch.rand(3, 96, 128)]
    targets = [_t([[10, 20, 60, 80], [70, 5, 120, 40]], [1, 3]),
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    losses = tiny(images, targets)
    assert set(losses) == {"loss_heatmap", "loss_size", "loss_offset"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in tiny.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    tiny.eval()
    with torch.no_grad():
        tiny.heads.size[-1].bias.fill_(12.0)  # 48-pixel boxes: some reach past the 96 rows
        detections = tiny(images)
    assert len(detections) == 2 and all(isinstance(d, Detections) for d in detections)
    assert all(len(d) <= 100 for d in detections)
    assert all(bool((d.scores[:-1] >= d.scores[1:]).all()) for d in detections)
    assert detections[1].boxes[:, 3].max() <= 96


def test_up_convolutions_start_as_bilinear_upsampling_and_builders_check_keywords():
    model = create("centernet_resnet18", num_classes=3)
    up = model.neck[3]
    # the whole transposed conv, all 256 channels: each output channel is its own input
    # channel upsampled (had every (in, out) pair the kernel, all outputs would be one map)
    x = torch.rand(2, 256, 4, 4)
    with torch.no_grad():
        ours = up(x)
    bilinear = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear",
                                               align_corners=False)
    torch.testing.assert_close(ours[..., 1:-1, 1:-1], bilinear[..., 1:-1, 1:-1])
    assert not torch.allclose(ours[:, 0], ours[:, 1])
    assert [m.out_channels for m in model.neck if isinstance(m, torch.nn.ConvTranspose2d)] == \
        [256, 128, 64]
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        create("centernet_resnet18", num_classes=3, heads=2)
    with torch.device("meta"):
        r50 = create("centernet_resnet50")
    assert r50.transform.min_size == (512,) and r50.heads.heatmap[-1].out_channels == 80


def test_extreme_points_of_hand_drawn_masks():
    from modernvision.ops.extreme_points import extreme_points

    masks = torch.zeros(2, 10, 12, dtype=torch.uint8)
    masks[0, 2:7, 5] = 1  # a plus: vertical bar x = 5, y = 2..6
    masks[0, 4, 3:10] = 1  # horizontal bar y = 4, x = 3..9
    masks[1, 1:4, 1:3] = 1  # a 3 x 2 block: ties broken by the lower median
    got = extreme_points(masks)
    # (x, y) pixel centres: top, left, bottom, right.
    want0 = [[5.5, 2.5], [3.5, 4.5], [5.5, 6.5], [9.5, 4.5]]
    want1 = [[1.5, 1.5], [1.5, 2.5], [1.5, 3.5], [2.5, 2.5]]
    assert got[0, :, :2].tolist() == want0 and got[1, :, :2].tolist() == want1
    assert bool((got[..., 2] == 2).all())
    assert extreme_points(torch.zeros(1, 4, 4)).abs().sum() == 0


def test_keypoint_variant_decodes_its_targets_back_and_trains():
    from modernvision.models.detection.centernet import keypoint_targets

    torch.manual_seed(0)
    model = create("centernet_keypoints_resnet18", num_classes=3, min_size=128,
                   up_channels=(16, 16, 16), head_channels=8).eval()
    boxes = [[10.0, 12.0, 90.0, 70.0], [100.0, 40.0, 124.0, 100.0]]
    kps = torch.tensor([[[50.0, 12.5, 2], [10.5, 40.0, 2], [48.0, 69.5, 2], [89.5, 30.0, 2]],
                        [[110.0, 40.5, 2], [100.5, 70.0, 2], [112.0, 99.5, 2], [123.5, 60.0, 2]]])
    target = {**_t(boxes, [1, 2]), "keypoints": kps}
    bt = centernet_targets([target], 2, (32, 32), 4)
    kt = keypoint_targets([target], 4, (32, 32), 4)
    assert kt["heatmap"].shape == (1, 4, 32, 32) and kt["point_index"].shape == (8, 4)
    # Perfect outputs: logits of the target heatmaps, offsets, sizes, displacements.
    out = {"heatmap": torch.logit(bt["heatmap"].clamp(1e-6, 1 - 1e-6)),
           "keypoint_heatmap": torch.logit(kt["heatmap"].clamp(1e-6, 1 - 1e-6))}
    for name in ("offset", "size", "keypoint_offset"):
        out[name] = torch.zeros(1, 2, 32, 32)
    out["keypoint_regression"] = torch.zeros(1, 8, 32, 32)
    image, _, ys, xs = bt["index"].unbind(1)
    out["offset"][image, :, ys, xs] = bt["offset"]
    out["size"][image, :, ys, xs] = bt["size"]
    out["keypoint_regression"][image, :, ys, xs] = kt["regression"]
    p_image, _, p_y, p_x = kt["point_index"].unbind(1)
    out["keypoint_offset"][p_image, :, p_y, p_x] = kt["point_offset"]
    det = model.postprocess_detections(out, [(128, 128)])[0]
    top = det[det.scores > 0.99]
    order = top.labels.argsort()
    torch.testing.assert_close(top.boxes[order], torch.tensor(boxes), atol=1e-3, rtol=0)
    torch.testing.assert_close(top.keypoints[order], kps, atol=1e-3, rtol=0)
    # Training: every parameter, including the keypoint heads, gets a gradient.
    model.train()
    losses = model([torch.rand(3, 128, 128)], [target])
    assert {"loss_keypoint_heatmap", "loss_keypoint_offset", "loss_keypoint_regression"} <= \
        set(losses)
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(Exception, match="has no 'keypoints'"):
        model([torch.rand(3, 128, 128)], [_t(boxes, [1, 2])])


def test_heatmap_heads_keep_default_weights_and_regression_heads_start_small():
    # As the authors' code: a heatmap head only gets its -2.19 output bias; the regression
    # heads start at N(0, 0.001) weights and zero biases.
    torch.manual_seed(0)
    model = create("centernet_keypoints_resnet18", num_classes=3)
    for name in ("heatmap", "keypoint_heatmap"):
        head = getattr(model.heads, name)
        torch.testing.assert_close(head[-1].bias, torch.full_like(head[-1].bias, -2.19))
        assert head[-1].weight.std() > 0.02 and head[0].weight.std() > 0.01
    for name in ("offset", "size", "keypoint_offset", "keypoint_regression"):
        head = getattr(model.heads, name)
        assert all(float(m.weight.std()) < 0.002 and not m.bias.any()
                   for m in (head[0], head[-1]))


def test_fpn_variant_fuses_the_pyramid_at_stride_8_and_predicts_at_stride_4():
    import torch.nn.functional as F

    from modernvision._errors import InvalidArgumentError
    from modernvision.models.detection.centernet import CenterNetConfig

    torch.manual_seed(0)
    model = create("centernet_mobilenet_v2_050_fpn", num_classes=5).eval()
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        fused = model.backbone(x)
        levels = model.backbone.fpn(model.backbone.body(x))
        out = model.heads(model.neck(fused["p3"]))
    assert list(fused) == ["p3"] and fused["p3"].shape[-2:] == (16, 12)
    ref = sum(F.interpolate(v, size=(16, 12), mode="bilinear", align_corners=False)
              for v in levels.values())
    torch.testing.assert_close(fused["p3"], ref)
    assert model.stride == 4 and out["heatmap"].shape == (1, 4, 32, 24)
    with pytest.raises(InvalidArgumentError, match="fpn_levels"):
        CenterNetConfig("mobilenet_v2", fpn_channels=64, fpn_levels=("p3",))
