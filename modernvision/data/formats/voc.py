"""Pascal VOC XML: one annotation file per image, boxes and class names.

Format of Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge" (IJCV 2010):
``Annotations/<stem>.xml`` with ``<size>`` and one ``<object>`` per box (``name``, ``pose``,
``truncated``, ``difficult``, ``bndbox`` with 1-based inclusive ``xmin ymin xmax ymax``),
images in ``JPEGImages/`` and optional image lists ``ImageSets/Main/<split>.txt``.

Box convention: VOC's 1-based inclusive pixel indices become pixel-edge coordinates as
``(xmin - 1, ymin - 1, xmax, ymax)`` (as detectron2 reads them) and are written back the same
way; integral boxes are written as integers, others with their decimals. ``pose``,
``truncated``, ``difficult`` and ``occluded`` are kept in the annotation's ``attributes``.
VOC XML has no instance masks, so :func:`write_voc` writes boxes only (say so to callers: the
returned summary counts the segmentations it could not store).

Class names and ids: ``class_names`` given, else ``classes.txt`` in the root, else the 20 VOC
classes if every name is one of them, else the sorted set of names found; category ``k`` of
that list gets id ``k + 1``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError
from modernvision.data.formats.records import (
    Category,
    DetectionDataset,
    ImageRecord,
    ObjectAnnotation,
    check_annotation,
    check_image,
)

__all__ = ["VOC_CLASSES", "read_voc", "read_voc_xml", "write_voc", "write_voc_xml"]

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
_KEPT = ("pose", "truncated", "difficult", "occluded")


def _text(node: ET.Element, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise BadFileError(f"{where}: missing <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, where: str) -> float:
    text = _text(node, tag, where)
    try:
        return float(text)
    except ValueError:
        raise BadFileError(f"{where}: <{tag}> must be a number, got {text!r}") from None


def _parse_xml(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise BadFileError(f"{path}: not valid XML: {exc}") from None


def read_voc_xml(path: str | Path) -> tuple[str, int, int, list[tuple[str, tuple, dict]]]:
    """Parse one VOC XML file (no class lookup, no box checks).

    Returns:
        ``(filename, width, height, objects)`` with objects ``(name, (x1, y1, x2, y2),
        attributes)`` in pixel-edge coordinates.
    """
    path = Path(path)
    root = _parse_xml(path)
    src = path.name
    size = root.find("size")
    if size is None:
        raise BadFileError(f"{src}: missing <size>")
    w, h = _number(size, "width", f"{src}: <size>"), _number(size, "height", f"{src}: <size>")
    if w != int(w) or h != int(h):
        raise BadFileError(f"{src}: image width/height must be integers, got {w:g}x{h:g}")
    check_image(int(w), int(h), f"{src}: <size>")
    filename = root.findtext("filename")
    filename = filename.strip() if filename else path.stem + ".jpg"
    objects = []
    for k, obj in enumerate(root.findall("object")):
        where = f"{src}: object {k}"
        name = _text(obj, "name", where)
        where = f"{src}: object {k} ({name!r})"
        box = obj.find("bndbox")
        if box is None:
            raise BadFileError(f"{where}: missing <bndbox>")
        xmin, ymin, xmax, ymax = (_number(box, t, where)
                                  for t in ("xmin", "ymin", "xmax", "ymax"))
        attrs = {}
        for tag in _KEPT:
            value = obj.findtext(tag)
            if value is not None and value.strip():
                value = value.strip()
                attrs[tag] = int(value) if value.lstrip("-").isdigit() else value
        objects.append((name, (xmin - 1, ymin - 1, xmax, ymax), attrs))
    return filename, int(w), int(h), objects


def _class_list(root: Path, files: list[Path], class_names: list[str] | None) -> list[str]:
    if class_names is not None:
        return list(class_names)
    listed = root / "classes.txt"
    if listed.is_file():
        return [ln.strip() for ln in listed.read_text().splitlines() if ln.strip()]
    names: set[str] = set()
    for f in files:
        for obj in _parse_xml(f).findall("object"):
            text = obj.findtext("name")
            if text and text.strip():
                names.add(text.strip())
    if names <= set(VOC_CLASSES):
        return list(VOC_CLASSES)
    return sorted(names)


def read_voc(root: str | Path, *, split: str | None = None,
             class_names: list[str] | None = None,
             bbox_tolerance: float = 0.01) -> DetectionDataset:
    """Read a VOC-layout folder (``Annotations/*.xml``).

    Args:
        root: the folder holding ``Annotations/`` (and ``JPEGImages/``).
        split: read the stems listed in ``ImageSets/Main/<split>.txt``; ``None`` reads every
            XML file, sorted by name.
        class_names: the class list (see the module docstring for the default).
        bbox_tolerance: how far (pixels) a box may reach outside its image.

    Image ids are ``1..N`` in reading order; ``file_name`` is relative to ``JPEGImages/``.
    """
    root = Path(root)
    ann_dir = root / "Annotations"
    if not ann_dir.is_dir():
        raise MissingFileError(f"VOC folder has no Annotations/: {root}")
    if split is not None:
        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        if not listing.is_file():
            raise MissingFileError(f"VOC split list not found: {listing}")
        stems = [ln.split()[0] for ln in listing.read_text().splitlines() if ln.strip()]
        files = [ann_dir / f"{s}.xml" for s in stems]
        for f in files:
            if not f.is_file():
                raise MissingFileError(f"{listing.name}: annotation file not found: {f}")
    else:
        files = sorted(ann_dir.glob("*.xml"))
    names = _class_list(root, files, class_names)
    categories = [Category(id=k + 1, name=n) for k, n in enumerate(names)]
    name_to_id = {c.name: c.id for c in categories}
    images = []
    for image_id, f in enumerate(files, start=1):
        filename, w, h, objects = read_voc_xml(f)
        im = ImageRecord(file_name=filename, width=w, height=h, image_id=image_id)
        for k, (name, box, attrs) in enumerate(objects):
            where = f"{f.name}: object {k} ({name!r})"
            if name not in name_to_id:
                raise BadFileError(f"{where}: unknown class {name!r}; known classes: "
                                   f"{', '.join(names)}")
            ann = ObjectAnnotation(bbox=tuple(float(v) for v in box),
                                   category_id=name_to_id[name], attributes=attrs)
            check_annotation(ann, w, h, name_to_id.values(), where,
                             bbox_tolerance=bbox_tolerance)
            im.annotations.append(ann)
        images.append(im)
    return DetectionDataset(images=images, categories=categories)


def _fmt(v: float) -> str:
    return str(int(round(v))) if float(v).is_integer() else repr(float(v))


def write_voc_xml(image: ImageRecord, names: dict[int, str], path: str | Path, *,
                  folder: str = "JPEGImages", depth: int = 3) -> Path:
    """Write one image's boxes as a VOC XML file (segmentations are not stored)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = image.file_name
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(image.width)
    ET.SubElement(size, "height").text = str(image.height)
    ET.SubElement(size, "depth").text = str(depth)
    ET.SubElement(root, "segmented").text = "0"
    for ann in image.annotations:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = names[ann.category_id]
        attrs = {"pose": "Unspecified", "truncated": 0, "difficult": 0, **ann.attributes}
        for tag in _KEPT:
            if tag in attrs:
                ET.SubElement(obj, tag).text = str(attrs[tag])
        box = ET.SubElement(obj, "bndbox")
        x1, y1, x2, y2 = ann.bbox
        for tag, v in (("xmin", x1 + 1), ("ymin", y1 + 1), ("xmax", x2), ("ymax", y2)):
            ET.SubElement(box, tag).text = _fmt(v)
    ET.indent(root)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="unicode")
    return path


def write_voc(dataset: DetectionDataset, root: str | Path, *,
              split: str | None = None) -> dict[str, int]:
    """Write ``Annotations/<stem>.xml`` per image, ``classes.txt`` and optionally a split list.

    Categories must be named uniquely; the class list is written in id order so that
    :func:`read_voc` maps names back to the same ids when they are ``1..K``.

    Returns:
        ``{"images": n, "objects": m, "segmentations_not_stored": k}``.
    """
    root = Path(root)
    names = {c.id: c.name for c in dataset.categories}
    stems = []
    objects = dropped = 0
    for im in dataset.images:
        stem = Path(im.file_name).stem
        if stem in stems:
            raise InvalidArgumentError(
                f"image {im.image_id} ({im.file_name!r}): two images share the "
                f"file stem {stem!r}; VOC names annotation files by stem")
        for ann in im.annotations:
            if ann.category_id not in names:
                raise InvalidArgumentError(
                    f"image {im.image_id}: unknown category id {ann.category_id}")
            dropped += ann.segmentation is not None
        objects += len(im.annotations)
        stems.append(stem)
        write_voc_xml(im, names, root / "Annotations" / f"{stem}.xml")
    ordered = [c.name for c in sorted(dataset.categories, key=lambda c: c.id)]
    (root / "classes.txt").write_text("\n".join(ordered) + "\n")
    if split is not None:
        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text("\n".join(stems) + "\n")
    return {"images": len(stems), "objects": objects, "segmentations_not_stored": dropped}
