"""DetectionTransform against torchvision's GeneralizedRCNNTransform; Detections -> COCO."""

import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from modernvision._errors import InvalidArgumentError
from modernvision.data import load_photo
from modernvision.metrics import coco_evaluate
from modernvision.models.detection import Detections, DetectionTransform

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _photos():
    return [torch.from_numpy(load_photo(n)).permute(2, 0, 1).float() / 255
            for n in ("astronaut", "coffee")]


def _targets():
    return [{"boxes": torch.tensor([[177.0, 66, 272, 161], [0, 0, 512, 512]]),
             "labels": torch.tensor([1, 2])},
            {"boxes": torch.tensor([[100.0, 50, 400, 300]]), "labels": torch.tensor([3])}]


@pytest.mark.parametrize("training", [False, True])
def test_transform_equals_torchvision(training):
    sizes = (96, 128, 160)
    ref = GeneralizedRCNNTransform(sizes, 250, MEAN, STD).train(training)
    ours = DetectionTransform(sizes, 250).train(training)
    images = _photos()
    torch.manual_seed(3)
    want, want_targets = ref(images, _targets())
    torch.manual_seed(3)  # the same draws of the training sizes
    got, got_targets = ours(images, _targets())
    assert got.image_sizes == want.image_sizes
    assert got.tensors.shape[-1] % 32 == 0 and got.tensors.shape[-2] % 32 == 0
    torch.testing.assert_close(got.tensors, want.tensors, rtol=0, atol=0)
    for g, w in zip(got_targets, want_targets):
        torch.testing.assert_close(g["boxes"], w["boxes"], rtol=0, atol=0)
    # Mapping predictions back (torchvision's postprocess maps in eval mode only).
    ref.eval()
    boxes = [t["boxes"] for t in got_targets]
    dets = [Detections(b, torch.ones(len(b)), torch.ones(len(b), dtype=torch.int64))
            for b in boxes]
    back = ours.postprocess(dets, got.image_sizes, [tuple(im.shape[-2:]) for im in images])
    tv_back = ref.postprocess([{"boxes": b} for b in boxes], want.image_sizes,
                              [tuple(im.shape[-2:]) for im in images])
    for d, w, t in zip(back, tv_back, _targets()):
        torch.testing.assert_close(d.boxes, w["boxes"], rtol=0, atol=0)
        torch.testing.assert_close(d.boxes, t["boxes"], rtol=1e-5, atol=1e-3)


def test_transform_repr_and_arguments():
    t = DetectionTransform((200, 256), 512)
    assert "min_size=(200, 256), max_size=512" in repr(t)
    with pytest.raises(InvalidArgumentError, match="max_size"):
        DetectionTransform(800, 600)
    with pytest.raises(InvalidArgumentError, match="min_size"):
        DetectionTransform(0)


def test_detections_feed_coco_evaluate():
    gt = {"images": [{"id": 1, "width": 100, "height": 80}, {"id": 2, "width": 60, "height": 60}],
          "categories": [{"id": 3, "name": "a"}, {"id": 7, "name": "b"}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 30, 20], "area": 600,
               "iscrowd": 0},
              {"id": 2, "image_id": 1, "category_id": 7, "bbox": [50, 40, 20, 30], "area": 600,
               "iscrowd": 0},
              {"id": 3, "image_id": 2, "category_id": 7, "bbox": [0, 0, 60, 60], "area": 3600,
               "iscrowd": 0}]}
    # Model labels 1 and 2 stand for categories 3 and 7.
    first = Detections(torch.tensor([[10.0, 10, 40, 30], [50, 40, 70, 70]]),
                       torch.tensor([0.9, 0.8]), torch.tensor([1, 2]))
    second = Detections(torch.tensor([[0.0, 0, 60, 60]]), torch.tensor([0.7]),
                        torch.tensor([2]))
    results = (first.to_coco_results(1, {1: 3, 2: 7})
               + second.to_coco_results(2, [0, 3, 7]))
    assert results[0] == {"image_id": 1, "category_id": 3, "bbox": [10.0, 10.0, 30.0, 20.0],
                          "score": pytest.approx(0.9)}
    stats = coco_evaluate(gt, results)
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    # Category 7's highest-scoring detection is wrong: its precision is 1/2 up to recall 1/2,
    # 51 of COCO's 101 recall points. Labels that are category ids already need no mapping.
    wrong = Detections(torch.tensor([[30.0, 30, 40, 40]]), torch.tensor([0.9]),
                       torch.tensor([7]))
    stats = coco_evaluate(gt, first.to_coco_results(1, {1: 3, 2: 7}) + wrong.to_coco_results(2))
    assert stats["AP50"] == pytest.approx((1.0 + 51 * 0.5 / 101) / 2)
    with pytest.raises(KeyError, match="label 2"):
        first.to_coco_results(1, {1: 3})


def test_detections_with_masks_give_segmentations():
    masks = torch.zeros(1, 1, 80, 100)
    masks[0, 0, 10:30, 10:40] = 0.9
    det = Detections(torch.tensor([[10.0, 10, 40, 30]]), torch.tensor([0.9]),
                     torch.tensor([3]), masks=masks)
    (result,) = det.to_coco_results(1)
    assert result["segmentation"]["size"] == [80, 100]
    gt = {"images": [{"id": 1, "width": 100, "height": 80}],
          "categories": [{"id": 3, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 30, 20],
                           "area": 600, "iscrowd": 0, "segmentation": result["segmentation"]}]}
    assert coco_evaluate(gt, [result], iou_type="segm")["AP"] == pytest.approx(1.0)
    assert len(det[torch.tensor([False])]) == 0 and det[:1].masks.shape == (1, 1, 80, 100)
