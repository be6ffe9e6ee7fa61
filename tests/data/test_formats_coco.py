"""COCO JSON reader/writer: round trips, pycocotools agreement, malformed files."""

import contextlib
import copy
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from torchvision import tv_tensors

from modernvision.data.formats import (
    Category,
    DetectionDataset,
    ImageRecord,
    InstanceDataset,
    ObjectAnnotation,
    coco_from_dict,
    coco_to_dict,
    id_to_rgb,
    read_coco,
    rgb_to_id,
    write_coco,
)
from modernvision.metrics.masks import rle_encode


def _coco_json() -> dict:
    """A small COCO file with polygons, a compressed RLE and a crowd region (list counts)."""
    crowd = np.zeros((48, 64), np.uint8)
    crowd[30:40, 5:25] = 1
    from modernvision.metrics.masks import rle_counts

    obj = np.zeros((48, 64), np.uint8)
    obj[10:20, 40:52] = 1
    obj[12:14, 44:47] = 0
    return {
        "info": {"description": "test"},
        "licenses": [{"id": 1, "name": "CC0"}],
        "images": [
            {"id": 3, "file_name": "a.png", "width": 64, "height": 48, "license": 1},
            {"id": 7, "file_name": "b.png", "width": 32, "height": 32},
        ],
        "annotations": [
            {"id": 17, "image_id": 3, "category_id": 1, "bbox": [4.0, 2.0, 20.0, 10.0],
             "area": 150.0, "iscrowd": 0,
             "segmentation": [[4.0, 2.0, 24.0, 2.0, 24.0, 12.0, 4.0, 12.0],
                              [6.5, 3.0, 9.0, 3.0, 9.0, 7.5]]},
            {"id": 18, "image_id": 3, "category_id": 2, "bbox": [40.0, 10.0, 12.0, 10.0],
             "area": 114.0, "iscrowd": 0, "segmentation": rle_encode(obj)},
            {"id": 19, "image_id": 3, "category_id": 1, "bbox": [5.0, 30.0, 20.0, 10.0],
             "area": 200.0, "iscrowd": 1,
             "segmentation": {"size": [48, 64], "counts": rle_counts(rle_encode(crowd)).tolist()}},
            {"id": 20, "image_id": 7, "category_id": 2, "bbox": [0.5, 0.25, 31.5, 31.75],
             "area": 1000.0, "iscrowd": 0, "segmentation": [], "attributes": {"occluded": True}},
        ],
        "categories": [{"id": 1, "name": "shirt", "supercategory": "clothing", "isthing": 1},
                       {"id": 2, "name": "digit", "supercategory": "", "isthing": 1}],
    }


def _write_images(folder, data):
    rng = np.random.default_rng(0)
    for im in data["images"]:
        arr = rng.integers(0, 256, (im["height"], im["width"], 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / im["file_name"])


def _quiet_coco(path):
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_read_fields_and_boxes(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(_coco_json()))
    ds = read_coco(path)
    assert [im.image_id for im in ds.images] == [3, 7]
    a = ds.images[0].annotations[0]
    assert a.bbox == (4.0, 2.0, 24.0, 12.0)  # [x, y, w, h] -> (x1, y1, x2, y2)
    assert a.bbox_xywh == (4.0, 2.0, 20.0, 10.0)
    assert ds.images[0].annotations[2].iscrowd
    assert ds.images[1].annotations[0].segmentation is None  # [] means none
    assert ds.images[1].annotations[0].attributes == {"attributes": {"occluded": True}}
    assert ds.images[0].attributes == {"license": 1}
    assert ds.category_names() == {1: "shirt", 2: "digit"}
    assert ds.num_annotations == 4


def test_round_trip_json_is_lossless(tmp_path):
    data = _coco_json()
    ds = coco_from_dict(data, "x.json")
    out = coco_to_dict(ds)
    expected = copy.deepcopy(data)
    assert out == expected
    write_coco(ds, tmp_path / "again.json")
    assert read_coco(tmp_path / "again.json") == ds


def test_masks_match_pycocotools(tmp_path):
    path = tmp_path / "instances.json"
    ds = coco_from_dict(_coco_json())
    write_coco(ds, path)
    ref = _quiet_coco(path)
    for im in ds.images:
        for a in im.annotations:
            ref_ann = ref.anns[a.id]
            assert ref_ann["bbox"] == list(a.bbox_xywh)
            if a.segmentation is None:
                continue
            np.testing.assert_array_equal(a.mask(im.height, im.width), ref.annToMask(ref_ann))


def test_missing_area_is_computed_from_the_mask():
    data = _coco_json()
    del data["annotations"][1]["area"]
    ds = coco_from_dict(data)
    assert ds.images[0].annotations[1].area == 114.0  # 120 - 6 pixels of the hole


BAD_CASES = [
    ("missing field", lambda d: d["annotations"][0].pop("bbox"),
     "instances.json: annotation id 17 (image 3): missing required field 'bbox'"),
    ("outside", lambda d: d["annotations"][0].update(bbox=[50.0, 2.0, 20.0, 10.0]),
     "instances.json: annotation id 17 (image 3, 'a.png'): bbox (x1, y1, x2, y2) = "
     "(50.0, 2.0, 70.0, 12.0) extends outside the 64x48 image"),
    ("negative size", lambda d: d["annotations"][1].update(bbox=[40.0, 10.0, -2.0, 10.0]),
     "instances.json: annotation id 18 (image 3, 'a.png'): bbox has non-positive size"),
    ("unknown category", lambda d: d["annotations"][3].update(category_id=9),
     "instances.json: annotation id 20 (image 7, 'b.png'): unknown category id 9"),
    ("unknown image", lambda d: d["annotations"][3].update(image_id=99),
     "instances.json: annotation id 20 (image 99): image_id 99 is not among the images"),
    ("duplicate ann id", lambda d: d["annotations"][3].update(id=17),
     "duplicate annotation id 17"),
    ("negative width", lambda d: d["images"][1].update(width=-32),
     "instances.json: image 7: image width must be a positive integer, got -32"),
    ("image missing field", lambda d: d["images"][0].pop("file_name"),
     "instances.json: image 3: missing required field 'file_name'"),
    ("rle size", lambda d: d["annotations"][1]["segmentation"].update(size=[40, 64]),
     "annotation id 18 (image 3, 'a.png'): RLE size [40, 64] does not match"),
    ("bad polygon", lambda d: d["annotations"][0]["segmentation"].append([1.0, 2.0, 3.0]),
     "annotation id 17 (image 3, 'a.png'): polygon 2 must be a flat"),
    ("category missing name", lambda d: d["categories"][0].pop("name"),
     "instances.json: category 0: missing required field 'name'"),
    ("no annotations", lambda d: d.pop("annotations"),
     "instances.json: missing top-level field 'annotations'"),
]


@pytest.mark.parametrize("name,mutate,message", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_malformed_files_name_file_and_record(tmp_path, name, mutate, message):
    data = _coco_json()
    mutate(data)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as info:
        read_coco(path)
    assert message in str(info.value)


def test_not_json_and_missing_file(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        read_coco(tmp_path / "bad.json")
    full = json.dumps(_coco_json())
    (tmp_path / "cut.json").write_text(full[: len(full) // 2])  # a write that stopped
    with pytest.raises(ValueError, match=r"cut\.json is not valid JSON .*truncated"):
        read_coco(tmp_path / "cut.json")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_coco(tmp_path / "nope.json")


def test_tolerance_is_configurable():
    data = _coco_json()
    data["annotations"][0]["bbox"] = [4.0, 2.0, 60.5, 10.0]  # x2 = 64.5 on a 64-wide image
    with pytest.raises(ValueError, match="outside"):
        coco_from_dict(data)
    assert coco_from_dict(data, bbox_tolerance=1.0).images[0].annotations[0].bbox[2] == 64.5


def test_written_records_validate_on_write_read():
    ds = DetectionDataset(
        images=[ImageRecord("x.png", 10, 10, 1, [ObjectAnnotation((1, 1, 5, 5), 1)])],
        categories=[Category(1, "a")])
    data = coco_to_dict(ds)
    assert data["annotations"][0]["id"] == 1 and data["annotations"][0]["area"] == 16.0
    assert coco_from_dict(data).images[0].annotations[0].bbox == (1.0, 1.0, 5.0, 5.0)


def test_panoptic_id_colours():
    ids = np.array([[0, 1, 255], [256, 65536, 21000 + 3]])
    rgb = id_to_rgb(ids)
    assert rgb[1, 0].tolist() == [0, 1, 0] and rgb[1, 1].tolist() == [0, 0, 1]
    np.testing.assert_array_equal(rgb_to_id(rgb), ids)


def test_instance_dataset_targets(tmp_path):
    data = _coco_json()
    data["annotations"][3]["segmentation"] = [[0.5, 0.25, 32.0, 0.25, 32.0, 32.0]]
    (tmp_path / "ann.json").write_text(json.dumps(data))
    _write_images(tmp_path, data)
    ds = InstanceDataset.from_coco(tmp_path / "ann.json", tmp_path)
    ref = _quiet_coco(tmp_path / "ann.json")
    image, target = ds[0]
    assert isinstance(image, tv_tensors.Image) and image.shape == (3, 48, 64)
    np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(),
                                  np.asarray(Image.open(tmp_path / "a.png")))
    assert isinstance(target["boxes"], tv_tensors.BoundingBoxes)
    assert target["boxes"].canvas_size == (48, 64)
    assert target["labels"].tolist() == [1, 2]  # the crowd region is left out by default
    assert target["image_id"] == 3
    for k, ann_id in enumerate([17, 18]):
        np.testing.assert_array_equal(target["masks"][k].numpy(),
                                      ref.annToMask(ref.anns[ann_id]))
        x, y, w, h = ref.anns[ann_id]["bbox"]
        assert target["boxes"][k].tolist() == [x, y, x + w, y + h]
    with_crowd = InstanceDataset.from_coco(tmp_path / "ann.json", tmp_path, include_crowd=True)
    assert with_crowd[0][1]["iscrowd"].tolist() == [0, 0, 1]
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=lambda b: tuple(zip(*b)))
    images, targets = next(iter(loader))
    assert len(images) == 2 and targets[1]["masks"].shape == (1, 32, 32)


def test_instance_dataset_without_masks(tmp_path):
    data = _coco_json()  # image 7's annotation has no segmentation
    (tmp_path / "ann.json").write_text(json.dumps(data))
    _write_images(tmp_path, data)
    ds = InstanceDataset.from_coco(tmp_path / "ann.json", tmp_path)
    assert "masks" not in ds[0][1]
    with pytest.raises(ValueError, match="annotation 20 has no segmentation"):
        InstanceDataset.from_coco(tmp_path / "ann.json", tmp_path, masks=True)
