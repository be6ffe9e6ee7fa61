"""Darknet-53 and YOLOv3: the paper's parameter counts and grids, the target assignment, the box
parameterisation, the ignore rule, and the builder's anchors."""

import math

import pytest
import torch

from modernvision._errors import InvalidArgumentError
from modernvision.models import create
from modernvision.models.backbone import create_backbone
from modernvision.models.detection import Detections
from modernvision.models.detection.yolov3 import COCO_ANCHORS
from modernvision.ops import box_iou


def test_darknet53_has_the_papers_parameters_and_stages(num_params):
    with torch.device("meta"):
        model = create("darknet53")
        assert model(torch.empty(2, 3, 256, 256)).shape == (2, 1000)
    assert num_params(model) == 41_609_928
    # 52 convolutions + the connected layer: Darknet-53.
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 52
    body = create_backbone("darknet53", out_features=("c3", "c4", "c5"))
    assert body.out_channels == {"c3": 256, "c4": 512, "c5": 1024}
    assert body.strides == {"c3": 8, "c4": 16, "c5": 32}
    headless = create("darknet53", num_classes=0, width_mult=0.125, depths=(1, 1, 1, 1, 1))
    assert headless(torch.rand(1, 3, 64, 64)).shape == (1, 128)


def test_darknet_classifier_trains_every_parameter():
    torch.manual_seed(0)
    model = create("darknet53", num_classes=5, width_mult=0.125, depths=(1, 1, 1, 1, 1))
    logits = model(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    logits.logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.rand(1, 3, 16, 16))
    with pytest.raises(TypeError, match="unexpected keyword"):
        create("darknet53", widths=2)


def test_yolov3_has_the_papers_parameters_and_grids(num_params):
    with torch.device("meta"):
        model = create("yolov3_darknet53")
        x = torch.empty(1, 3, 416, 416)
        outputs = model.head(model.neck(list(model.backbone(x).values())))
    assert num_params(model) == 61_949_149
    assert [tuple(o.shape) for o in outputs] == [(1, 3, 52, 52, 85), (1, 3, 26, 26, 85),
                                                  (1, 3, 13, 13, 85)]
    # Scales are joined by concatenation: 1024 -> 512 (c5 block), then 256 + c4's 512 in.
    assert model.neck.blocks[1][0].conv.in_channels == 256 + 512
    assert model.neck.blocks[2][0].conv.in_channels == 128 + 256
    assert model.config.anchors == tuple((float(w), float(h)) for w, h in COCO_ANCHORS)


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return create("yolov3_small", num_classes=4, min_size=128, max_size=128)


def _target(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)}


def _outputs(model, size=128, batch=1):
    c = model.num_classes - 1
    return [torch.zeros(batch, 3, size // s, size // s, 5 + c) for s in model.strides]


def test_each_ground_truth_gets_the_one_best_anchor_at_its_centre_cell(tiny):
    anchors = tiny.anchors.reshape(-1, 2)
    # A box exactly the shape of anchor 4 (the middle scale's second), centred at (70, 45).
    w, h = anchors[4].tolist()
    box = [70 - w / 2, 45 - h / 2, 70 + w / 2, 45 + h / 2]
    assigned = tiny.build_targets(_outputs(tiny), [_target([box], [2])])
    assert [a[0].numel() for a in assigned] == [0, 1, 0]
    image, anchor, gy, gx, box_t, labels, area = assigned[1]
    stride = tiny.strides[1]  # 16
    assert (image.item(), anchor.item(), gy.item(), gx.item()) == (0, 1, 45 // 16, 70 // 16)
    want = [70 / 16 - 70 // 16, 45 / 16 - 45 // 16, 0.0, 0.0]
    torch.testing.assert_close(box_t[0], torch.tensor(want), atol=1e-5, rtol=0)
    assert labels.tolist() == [2] and area.item() == pytest.approx(w * h, rel=1e-5)
    assert stride == 16


def test_decoding_the_targets_gives_back_the_box(tiny):
    # Set the assigned prediction's t so that sigmoid(t_xy) = offsets and t_wh = targets.
    box = [20.0, 30.0, 61.0, 52.0]
    assigned = tiny.build_targets(_outputs(tiny), [_target([box], [1])])
    outputs = _outputs(tiny)
    for level, (image, anchor, gy, gx, box_t, _, _) in enumerate(assigned):
        for i in range(image.numel()):
            t = outputs[level][image[i], anchor[i], gy[i], gx[i]]
            t[:2] = torch.logit(box_t[i, :2].double()).float()
            t[2:4] = box_t[i, 2:]
            t[4] = 10.0  # sure object
            t[5] = 10.0  # class 1
    boxes = tiny.decode(outputs)[0]
    flat = torch.cat([o.flatten(1, 3) for o in outputs], 1)[0]
    torch.testing.assert_close(boxes[flat[:, 4].argmax()], torch.tensor(box), atol=1e-3, rtol=0)
    det = tiny.postprocess_detections(outputs, [(128, 128)])[0]
    torch.testing.assert_close(det.boxes[0], torch.tensor(box), atol=1e-3, rtol=0)
    assert det.labels[0].item() == 1
    assert det.scores[0].item() == pytest.approx(torch.sigmoid(torch.tensor(10.0)).item() ** 2)


def test_ignore_threshold_removes_well_placed_negatives_from_objectness(tiny):
    box = [20.0, 30.0, 61.0, 52.0]  # centre (40.5, 41), 41 x 22
    targets = [_target([box], [1])]
    outputs = _outputs(tiny)
    # A negative -- finest scale, anchor 0, the centre's cell (5, 5) -- that predicts the box.
    t = outputs[0][0, 0, 5, 5]
    t[:2] = torch.logit(torch.tensor([40.5 / 8 - 5, 41 / 8 - 5]))
    t[2:4] = (torch.tensor([41.0, 22.0]) / tiny.anchors[0, 0]).log()
    # Zero objectness logits everywhere: each anchor that counts costs log 2.
    total = sum(o.shape[1] * o.shape[2] * o.shape[3] for o in outputs)
    boxes = tiny.decode(outputs)[0]
    ignored = box_iou(boxes, targets[0]["boxes"])[:, 0] > 0.5
    assert ignored[(0 * 16 + 5) * 16 + 5]
    # The positive costs log 2 even where its own box overlaps; ignored negatives nothing.
    _, anchor, gy, gx, *_ = tiny.build_targets(outputs, targets)[1]
    positive = 3 * 16 * 16 + (anchor * 8 * 8 + gy * 8 + gx).item()  # after the 16x16 scale
    ignored[positive] = False
    want = (total - int(ignored.sum())) * math.log(2)
    loss = tiny.compute_loss(outputs, targets, (128, 128))["loss_objectness"]
    assert loss.item() == pytest.approx(want, rel=1e-5)
    tiny.ignore_thresh = 1.0  # nothing ignored
    assert tiny.compute_loss(outputs, targets, (128, 128))["loss_objectness"].item() == \
        pytest.approx(total * math.log(2), rel=1e-5)


def test_training_gives_every_parameter_a_gradient_and_eval_detections(tiny):
    tiny.train()
    images = [torch.rand(3, 128, 128), torch.rand(3, 100, 128)]
    targets = [_target([[10, 20, 60, 80], [70, 5, 120, 40]], [1, 3]),
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    losses = tiny(images, targets)
    assert set(losses) == {"loss_box", "loss_objectness", "loss_classifier"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in tiny.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    tiny.eval()
    with torch.no_grad():
        detections = tiny(images)
    assert len(detections) == 2 and all(isinstance(d, Detections) for d in detections)
    assert all(bool((d.boxes[:, 2:] <= torch.tensor([128.0, 128.0])).all()) for d in detections)


def test_builder_takes_anchors_and_refuses_bad_ones():
    anchors = [[i * 5 + 5, i * 6 + 4] for i in range(9)][::-1]  # any order, sorted by area
    model = create("yolov3_small", num_classes=3, anchors=anchors)
    assert model.anchors.reshape(-1, 2).tolist() == sorted(anchors, key=lambda a: a[0] * a[1])
    per_scale = [anchors[6:], anchors[3:6], anchors[:3]]
    assert create("yolov3_small", num_classes=3, anchors=per_scale).anchors.equal(model.anchors)
    with pytest.raises(InvalidArgumentError, match="anchors must be 9"):
        create("yolov3_small", num_classes=3, anchors=anchors[:8])
    with pytest.raises(InvalidArgumentError, match="anchors must be 9"):
        create("yolov3_small", num_classes=3, anchors=[[0, 1]] * 9)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        create("yolov3_small", num_classes=3, ancors=anchors)
    assert create("yolov3_small", num_classes=3, min_size=192).transform.max_size == 192
