"""Pascal VOC XML and YOLO txt readers/writers: hand-computed files, round trips, errors."""

import numpy as np
import pytest
from PIL import Image

from modernvision.data.formats import (
    VOC_CLASSES,
    Category,
    DetectionDataset,
    ImageRecord,
    ObjectAnnotation,
    read_voc,
    read_yolo,
    read_yolo_names,
    write_voc,
    write_yolo,
)

# VOC2007 000001.xml, as published (two objects, 1-based inclusive pixel indices).
VOC_000001 = """<annotation>
  <folder>VOC2007</folder>
  <filename>000001.jpg</filename>
  <size><width>353</width><height>500</height><depth>3</depth></size>
  <segmented>0</segmented>
  <object>
    <name>dog</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox>
  </object>
  <object>
    <name>person</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>8</xmin><ymin>12</ymin><xmax>352</xmax><ymax>498</ymax></bndbox>
  </object>
</annotation>
"""


def _dataset() -> DetectionDataset:
    cats = [Category(1, "cat"), Category(2, "dog"), Category(3, "it's: odd")]
    return DetectionDataset(
        images=[
            ImageRecord("a.png", 64, 48, 1, [
                ObjectAnnotation((0.0, 0.0, 10.0, 12.0), 1),
                ObjectAnnotation((20.0, 5.0, 64.0, 48.0), 3, attributes={"difficult": 1}),
            ]),
            ImageRecord("b.png", 40, 30, 2, [ObjectAnnotation((3.5, 2.25, 17.0, 29.5), 2)]),
            ImageRecord("c.png", 16, 16, 3, []),
        ],
        categories=cats)


def _write_images(folder, ds):
    folder.mkdir(parents=True, exist_ok=True)
    for im in ds.images:
        Image.fromarray(np.zeros((im.height, im.width, 3), np.uint8)).save(folder / im.file_name)


# ---------------------------------------------------------------------------------------------
# VOC


def test_voc_published_file(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "000001.xml").write_text(VOC_000001)
    ds = read_voc(tmp_path)
    assert [c.name for c in ds.categories] == list(VOC_CLASSES)
    im = ds.images[0]
    assert (im.file_name, im.width, im.height) == ("000001.jpg", 353, 500)
    dog, person = im.annotations
    assert dog.bbox == (47.0, 239.0, 195.0, 371.0)  # 1-based inclusive -> pixel edges
    assert dog.category_id == VOC_CLASSES.index("dog") + 1
    assert person.bbox == (7.0, 11.0, 352.0, 498.0)
    assert dog.attributes == {"pose": "Left", "truncated": 1, "difficult": 0}


def test_voc_round_trip(tmp_path):
    ds = _dataset()
    ds.images[0].annotations[0].segmentation = [[0, 0, 10, 0, 10, 12]]
    summary = write_voc(ds, tmp_path, split="train")
    assert summary == {"images": 3, "objects": 3, "segmentations_not_stored": 1}
    xml = (tmp_path / "Annotations" / "a.xml").read_text()
    assert "<xmin>1</xmin>" in xml and "<xmax>10</xmax>" in xml
    back = read_voc(tmp_path, split="train")
    assert [c.name for c in back.categories] == [c.name for c in ds.categories]
    for a, b in zip(ds.images, back.images):
        assert (a.file_name, a.width, a.height) == (b.file_name, b.width, b.height)
        assert [x.bbox for x in a.annotations] == [x.bbox for x in b.annotations]
        assert [x.category_id for x in a.annotations] == [x.category_id for x in b.annotations]
    assert back.images[0].annotations[1].attributes["difficult"] == 1


@pytest.mark.parametrize("obj,message", [
    ("<object><name>dragon</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"
     "<ymax>5</ymax></bndbox></object>", "x.xml: object 0 ('dragon'): unknown class 'dragon'"),
    ("<object><name>dog</name></object>", "x.xml: object 0 ('dog'): missing <bndbox>"),
    ("<object><name>dog</name><bndbox><xmin>9</xmin><ymin>1</ymin><xmax>5</xmax>"
     "<ymax>5</ymax></bndbox></object>", "x.xml: object 0 ('dog'): bbox has non-positive size"),
    ("<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>25</xmax>"
     "<ymax>5</ymax></bndbox></object>", "x.xml: object 0 ('dog'): bbox (x1, y1, x2, y2) = "
     "(0.0, 0.0, 25.0, 5.0) extends outside the 20x10 image"),
    ("<object><name>dog</name><bndbox><xmin>a</xmin><ymin>1</ymin><xmax>5</xmax>"
     "<ymax>5</ymax></bndbox></object>", "x.xml: object 0 ('dog'): <xmin> must be a number"),
])
def test_voc_malformed(tmp_path, obj, message):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "x.xml").write_text(
        f"<annotation><filename>x.jpg</filename><size><width>20</width><height>10</height>"
        f"</size>{obj}</annotation>")
    with pytest.raises(ValueError) as info:
        read_voc(tmp_path, class_names=["dog"])
    assert message in str(info.value)


def test_voc_missing_size_and_bad_xml(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "x.xml").write_text("<annotation><object/></annotation>")
    with pytest.raises(ValueError, match="x.xml: missing <size>"):
        read_voc(tmp_path, class_names=["dog"])
    (tmp_path / "Annotations" / "x.xml").write_text("<annotation>")
    with pytest.raises(ValueError, match="x.xml: not valid XML"):
        read_voc(tmp_path, class_names=["dog"])


# ---------------------------------------------------------------------------------------------
# YOLO


def test_yolo_hand_computed(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.zeros((50, 100, 3), np.uint8)).save(tmp_path / "images" / "x.png")
    (tmp_path / "labels" / "x.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.3 0.2 0.3 0.6\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    ds = read_yolo(tmp_path / "images")
    box, poly = ds.images[0].annotations
    np.testing.assert_allclose(box.bbox, (40, 15, 60, 35))
    assert box.category_id == 1 and poly.category_id == 2
    np.testing.assert_allclose(poly.segmentation[0], [10, 10, 30, 10, 30, 30])
    np.testing.assert_allclose(poly.bbox, (10, 10, 30, 30))
    assert [c.name for c in ds.categories] == ["cat", "dog"]


def test_yolo_round_trip(tmp_path):
    ds = _dataset()
    _write_images(tmp_path / "src", ds)
    write_yolo(ds, tmp_path / "out", split="train", image_dir=tmp_path / "src")
    assert read_yolo_names(tmp_path / "out") == [c.name for c in ds.categories]
    back = read_yolo(tmp_path / "out" / "images" / "train")
    assert [c.name for c in back.categories] == [c.name for c in ds.categories]
    assert (tmp_path / "out" / "labels" / "train" / "c.txt").read_text() == ""
    for a, b in zip(ds.images, back.images):
        assert (a.file_name, a.width, a.height) == (b.file_name, b.width, b.height)
        assert [x.category_id for x in a.annotations] == [x.category_id for x in b.annotations]
        for x, y in zip(a.annotations, b.annotations):
            np.testing.assert_allclose(x.bbox, y.bbox, atol=1e-3)


def test_yolo_polygon_round_trip(tmp_path):
    ds = _dataset()
    for im in ds.images:
        for a in im.annotations:
            x1, y1, x2, y2 = a.bbox
            a.segmentation = [[x1, y1, x2, y1, (x1 + x2) / 2, y2]]
    _write_images(tmp_path / "images", ds)
    write_yolo(ds, tmp_path, polygons=True)
    back = read_yolo(tmp_path / "images")
    for a, b in zip(ds.images, back.images):
        for x, y in zip(a.annotations, b.annotations):
            np.testing.assert_allclose(x.segmentation[0], y.segmentation[0], atol=1e-3)
            np.testing.assert_allclose(x.bbox, y.bbox, atol=1e-3)


@pytest.mark.parametrize("yaml_text", [
    "path: .\nnames: [cat, 'dog']\n",
    "nc: 2\nnames:\n  0: cat\n  1: \"dog\"\ntrain: images\n",
    "names:\n- cat\n- dog\n",
])
def test_yolo_yaml_names(tmp_path, yaml_text):
    (tmp_path / "data.yaml").write_text(yaml_text)
    assert read_yolo_names(tmp_path) == ["cat", "dog"]


@pytest.mark.parametrize("line,message", [
    ("5 0.5 0.5 0.2 0.2", "x.txt: line 2: unknown class index 5 (2 names)"),
    ("0 0.5 0.5 0.2", "x.txt: line 2: expected 5 values"),
    ("0 0.95 0.5 0.2 0.2", "x.txt: line 2: box (cx, cy, w, h) = (0.95, 0.5, 0.2, 0.2) extends "
     "outside the 20x10 image"),
    ("0 0.5 0.5 -0.2 0.2", "x.txt: line 2: box has non-positive size"),
    ("0 0.5 zero 0.2 0.2", "x.txt: line 2: expected 'class cx cy w h' numbers"),
])
def test_yolo_malformed(tmp_path, line, message):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "images" / "x.png")
    (tmp_path / "labels" / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n" + line + "\n")
    with pytest.raises(ValueError) as info:
        read_yolo(tmp_path / "images", class_names=["cat", "dog"])
    assert message in str(info.value)


def test_yolo_label_without_image(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(ValueError, match="ghost.txt: label file has no matching image"):
        read_yolo(tmp_path / "images", class_names=["cat"])


def test_cross_format_coco_to_voc_and_yolo(tmp_path):
    """One record through VOC and YOLO gives the same boxes and classes back."""
    ds = _dataset()
    write_voc(ds, tmp_path / "voc")
    via_voc = read_voc(tmp_path / "voc")
    _write_images(tmp_path / "yolo" / "images", ds)
    write_yolo(ds, tmp_path / "yolo")
    via_yolo = read_yolo(tmp_path / "yolo" / "images")
    for a, b, c in zip(ds.images, via_voc.images, via_yolo.images):
        assert [x.category_id for x in a.annotations] == [x.category_id for x in b.annotations]
        assert [x.category_id for x in a.annotations] == [x.category_id for x in c.annotations]
        for x, y, z in zip(a.annotations, b.annotations, c.annotations):
            assert x.bbox == y.bbox
            np.testing.assert_allclose(x.bbox, z.bbox, atol=1e-3)
