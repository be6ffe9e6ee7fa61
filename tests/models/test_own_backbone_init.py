"""The one-stage detectors' MobileNetV2 x0.5 variants start from the demo Faster R-CNN.

``centernet_mobilenet_v2_050``, ``ssd256_mobilenet_v2_050`` and ``yolov3_mobilenet_v2_050``
name their backbone as the FPN detector does (``backbone.body.*``;
``centernet_mobilenet_v2_050_fpn`` its FPN too, ``backbone.fpn.*``), so ``load_own_weights``
(``train --init``) carries the trained MobileNetV2 (and FPN) over: its C3-C5 (and P3-P5) on a
real photo are the detector's, the rest of the model stays fresh, and the model trains.
"""

import pytest
import torch

from modernvision.models import create


def _t(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32),
            "labels": torch.tensor(labels, dtype=torch.int64)}


@pytest.fixture(scope="module")
def detector_and_photo():
    from modernvision.data import load_photo
    from modernvision.demos.detection import ASSET
    from modernvision.models.pretrained import load_own_weights

    detector = create("fasterrcnn_mobilenet_v2_050_fpn", num_classes=21).eval()
    load_own_weights(detector, ASSET)
    photo = torch.from_numpy(load_photo("astronaut")[:160, :224]).permute(2, 0, 1)[None] / 255.0
    with torch.no_grad():
        features = detector.backbone.body(photo)
        pyramid = detector.backbone(photo)
    return features, pyramid, photo


@pytest.mark.parametrize("name", ["centernet_mobilenet_v2_050", "centernet_mobilenet_v2_050_fpn",
                                  "ssd256_mobilenet_v2_050", "yolov3_mobilenet_v2_050"])
def test_variant_starts_from_the_shipped_detectors_backbone(name, detector_and_photo):
    from modernvision.demos.detection import ASSET
    from modernvision.models.pretrained import load_own_weights

    features, pyramid, photo = detector_and_photo
    torch.manual_seed(0)
    model = create(name, num_classes=21)
    report = load_own_weights(model, ASSET)
    assert report["shape_mismatch"] == []
    shared = [k for k in model.state_dict() if k.startswith(("backbone.body.", "backbone.fpn."))]
    assert sum(k.startswith("backbone.body.") for k in shared) == 312
    assert sorted(report["loaded"]) == sorted(shared)
    assert report["not_in_source"] and not set(report["not_in_source"]) & set(shared)
    model.eval()
    with torch.no_grad():
        ours = model.backbone.body(photo)
        fpn = model.backbone.fpn(ours) if hasattr(model.backbone, "fpn") else {}
    for level in ours:
        torch.testing.assert_close(ours[level], features[level], rtol=0, atol=0)
    for level in fpn:  # P3-P5
        torch.testing.assert_close(fpn[level], pyramid[level], rtol=0, atol=0)
    assert len(fpn) == (3 if name.endswith("_fpn") else 0)
    model.train()
    images = [photo[0, :, :128, :128], photo[0, :, 32:128, :]]
    targets = [_t([[10, 20, 60, 80], [70, 5, 120, 40]], [1, 3]), _t([[30, 30, 90, 70]], [2])]
    losses = model(images, targets)
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]
