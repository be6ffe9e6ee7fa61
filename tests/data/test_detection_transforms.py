"""Detection augmentation: boxes and masks move with the image (transforms.v2 + tv_tensors)."""

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2

from modernvision.data.detection_transforms import (
    BoxesFromMasks,
    boxes_from_masks,
    detection_eval_transforms,
    detection_train_transforms,
)
from modernvision.data.formats import collate_detection
from modernvision.data.scenes import SceneConfig, make_scenes, scene_instances


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    make_scenes(root, 6, seed=11, config=SceneConfig(height=80, width=96, max_object_size=40))
    return scene_instances(root, "train")


def _sample(dataset, i=0):
    image, target = dataset[i]
    return image, dict(target)


def test_boxes_from_masks_matches_torchvision():
    rng = np.random.default_rng(0)
    masks = torch.from_numpy(rng.random((4, 20, 30)) < 0.05)
    masks[2] = False
    boxes = boxes_from_masks(masks)
    ref = masks_to_boxes(masks[[0, 1, 3]]).float()
    torch.testing.assert_close(boxes[[0, 1, 3]], ref + torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert boxes[2].tolist() == [0, 0, 0, 0]


def test_scene_boxes_are_tight_around_masks(dataset):
    for i in range(len(dataset)):
        _, target = dataset[i]
        torch.testing.assert_close(boxes_from_masks(target["masks"]), target["boxes"].as_subclass(
            torch.Tensor))


def test_flip_moves_boxes_and_masks(dataset):
    image, target = _sample(dataset)
    flip = v2.RandomHorizontalFlip(p=1.0)
    out_image, out = flip(image, target)
    torch.testing.assert_close(out_image, image.flip(-1))
    torch.testing.assert_close(out["masks"], target["masks"].flip(-1))
    w = image.shape[-1]
    expected = target["boxes"][:, [2, 1, 0, 3]] * torch.tensor([-1, 1, -1, 1]) + torch.tensor(
        [w, 0, w, 0])
    torch.testing.assert_close(out["boxes"].as_subclass(torch.Tensor),
                               expected.as_subclass(torch.Tensor))
    torch.testing.assert_close(boxes_from_masks(out["masks"]),
                               out["boxes"].as_subclass(torch.Tensor))


@pytest.mark.parametrize("seed", range(6))
def test_zoom_out_and_flip_keep_boxes_on_masks(dataset, seed):
    """torchvision's box transform and its mask transform agree exactly (tight_boxes off)."""
    torch.manual_seed(seed)
    pipeline = detection_train_transforms(hflip=True, photometric=True, iou_crop=False,
                                          tight_boxes=False)
    image, target = _sample(dataset, seed % len(dataset))
    out_image, out = pipeline(image, target)
    assert out_image.dtype == torch.float32 and 0 <= out_image.min() <= out_image.max() <= 1
    assert out["boxes"].canvas_size == tuple(out_image.shape[-2:])
    torch.testing.assert_close(boxes_from_masks(out["masks"]),
                               out["boxes"].as_subclass(torch.Tensor))


@pytest.mark.parametrize("seed", range(8))
def test_iou_crop_keeps_objects_consistent(dataset, seed):
    torch.manual_seed(seed)
    image, target = _sample(dataset, seed % len(dataset))
    loose = detection_train_transforms(iou_crop=True, zoom_out=None, photometric=False,
                                       tight_boxes=False)(image, dict(target))[1]
    n = loose["boxes"].shape[0]
    assert loose["labels"].shape == (n,) and loose["iscrowd"].shape == (n,)
    assert loose["masks"].shape[0] == n
    # A crop clips the box; the visible mask stays inside it.
    inner = boxes_from_masks(loose["masks"])
    box = loose["boxes"].as_subclass(torch.Tensor)
    assert (inner[:, :2] >= box[:, :2] - 1e-4).all() and (inner[:, 2:] <= box[:, 2:] + 1e-4).all()
    torch.manual_seed(seed)
    tight = detection_train_transforms(iou_crop=True, zoom_out=None, photometric=False)(
        image, dict(target))[1]
    torch.testing.assert_close(boxes_from_masks(tight["masks"]),
                               tight["boxes"].as_subclass(torch.Tensor))
    assert (tight["masks"].flatten(1).sum(1) > 0).all()  # emptied objects were removed


def test_resize_scales_boxes(dataset):
    image, target = _sample(dataset)
    out_image, out = detection_train_transforms(size=(160, 192), photometric=False,
                                                zoom_out=None, iou_crop=False,
                                                tight_boxes=False)(image, target)
    assert out_image.shape == (3, 160, 192) and out["masks"].shape[-2:] == (160, 192)
    torch.testing.assert_close(out["boxes"].as_subclass(torch.Tensor),
                               target["boxes"].as_subclass(torch.Tensor) * 2)
    # nearest-neighbour masks and doubled boxes agree exactly at an integer scale
    torch.testing.assert_close(boxes_from_masks(out["masks"]),
                               out["boxes"].as_subclass(torch.Tensor))


def test_eval_transforms_and_collate(dataset):
    image, target = _sample(dataset)
    out_image, out = detection_eval_transforms()(image, target)
    torch.testing.assert_close(out_image, image.float() / 255)
    torch.testing.assert_close(out["boxes"], target["boxes"])
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, collate_fn=collate_detection)
    images, targets = next(iter(loader))
    assert len(images) == 3 and len(targets) == 3 and targets[2]["image_id"] == 3


def test_boxes_from_masks_transform_needs_xyxy():
    masks = tv_tensors.Mask(torch.zeros(1, 4, 4, dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes([[0, 0, 2, 2]], format="XYWH", canvas_size=(4, 4))
    with pytest.raises(ValueError, match="XYXY"):
        BoxesFromMasks()(torch.zeros(3, 4, 4), {"boxes": boxes, "masks": masks})
    with pytest.raises(ValueError, match="zoom_out"):
        detection_train_transforms(zoom_out=0.5)
