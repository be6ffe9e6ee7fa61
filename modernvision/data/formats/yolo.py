"""YOLO txt labels: one text file per image, normalised boxes (or polygons) per line.

Format of Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection" (2016,
arXiv:1506.02640) as used by the darknet and ultralytics tools: ``labels/<stem>.txt`` next to
``images/<stem>.<ext>`` (the last ``images`` folder of the path replaced by ``labels``), one
object per line, ``class cx cy w h`` with coordinates divided by the image width and height,
or ``class x1 y1 x2 y2 ...`` (a normalised polygon, the segmentation variant). Class names come
from ``data.yaml`` (``names:`` as a list or an index map) or ``classes.txt``.

Ids: class index ``k`` becomes category id ``k + 1``; the writer numbers categories in id
order, so ids ``1..K`` survive a round trip. Image sizes are read from the image files'
headers. An image without a label file has no objects (the format's convention); a label file
without an image is an error. Writers use 6 decimals, as the ultralytics tools do, so a round
trip is exact to about ``1e-6`` of the image size.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

from modernvision._errors import BadFileError, InvalidArgumentError, MissingFileError
from modernvision.data.formats.records import (
    Category,
    DetectionDataset,
    ImageRecord,
    ObjectAnnotation,
    check_annotation,
)

__all__ = ["IMAGE_SUFFIXES", "read_yolo", "read_yolo_names", "write_yolo"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _parse_yaml_names(path: Path) -> list[str]:
    """The ``names`` entry of a data.yaml: ``[a, b]``, a ``- a`` list or a ``0: a`` map.

    A small reader for this one key (PyYAML is not a dependency).
    """
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^names\s*:\s*(.*?)\s*(#.*)?$", line)
        if not m:
            continue
        inline = m.group(1)
        if inline.startswith("["):
            body = inline.strip("[]")
            return [_strip_quotes(t) for t in body.split(",") if t.strip()]
        if inline:
            raise BadFileError(f"{path.name}: cannot read 'names: {inline}'")
        names: dict[int, str] = {}
        listed: list[str] = []
        for sub in lines[i + 1:]:
            if not sub.strip() or sub.lstrip().startswith("#"):
                continue
            if not sub[:1].isspace() and not sub.startswith("-"):
                break
            item = sub.strip()
            if item.startswith("- "):
                listed.append(_strip_quotes(item[2:]))
            elif re.match(r"^\d+\s*:", item):
                key, value = item.split(":", 1)
                names[int(key)] = _strip_quotes(value)
            else:
                raise BadFileError(f"{path.name}: cannot read names entry {item!r}")
        if names:
            if sorted(names) != list(range(len(names))):
                raise BadFileError(f"{path.name}: names indices must be 0..{len(names) - 1}")
            return [names[k] for k in range(len(names))]
        return listed
    raise BadFileError(f"{path.name}: no 'names:' entry")


def read_yolo_names(folder: str | Path) -> list[str]:
    """Class names from ``data.yaml`` (or ``dataset.yaml``) or ``classes.txt`` in ``folder``."""
    folder = Path(folder)
    for name in ("data.yaml", "dataset.yaml"):
        if (folder / name).is_file():
            return _parse_yaml_names(folder / name)
    if (folder / "classes.txt").is_file():
        return [ln.strip() for ln in (folder / "classes.txt").read_text().splitlines()
                if ln.strip()]
    raise MissingFileError(f"no data.yaml or classes.txt in {folder}")


def _default_label_dir(image_dir: Path) -> Path:
    parts = list(image_dir.parts)
    for k in range(len(parts) - 1, -1, -1):
        if parts[k] == "images":
            parts[k] = "labels"
            return Path(*parts)
    raise BadFileError(f"cannot infer the label folder of {image_dir} (no 'images' folder in the "
                       "path); pass label_dir")


def _find_names(image_dir: Path, label_dir: Path) -> list[str]:
    for folder in (label_dir, image_dir.parent, image_dir.parent.parent, label_dir.parent):
        for name in ("data.yaml", "dataset.yaml", "classes.txt"):
            if (folder / name).is_file():
                return read_yolo_names(folder)
    raise MissingFileError(f"no data.yaml or classes.txt near {image_dir}; pass class_names")


def read_yolo(image_dir: str | Path, *, label_dir: str | Path | None = None,
              class_names: list[str] | None = None,
              bbox_tolerance: float = 1e-4) -> DetectionDataset:
    """Read YOLO labels for the images of a folder.

    Args:
        image_dir: folder of images (read recursively, sorted by path).
        label_dir: folder of ``.txt`` labels mirroring ``image_dir``; by default the path with
            its last ``images`` component replaced by ``labels``.
        class_names: the class list; by default from ``data.yaml``/``classes.txt`` in the
            label folder or one or two levels above the image folder.
        bbox_tolerance: how far outside ``[0, 1]`` a normalised coordinate may reach.

    Returns:
        records with image ids ``1..N`` and ``file_name`` relative to ``image_dir``.
    """
    from modernvision.data.io import image_size

    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise MissingFileError(f"YOLO image folder not found: {image_dir}")
    label_dir = Path(label_dir) if label_dir is not None else _default_label_dir(image_dir)
    if not label_dir.is_dir():
        raise MissingFileError(f"YOLO label folder not found: {label_dir}")
    names = list(class_names) if class_names is not None else _find_names(image_dir, label_dir)
    categories = [Category(id=k + 1, name=n) for k, n in enumerate(names)]
    known = {c.id for c in categories}
    image_files = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    stems = {p.relative_to(image_dir).with_suffix("") for p in image_files}
    for txt in sorted(label_dir.rglob("*.txt")):
        rel = txt.relative_to(label_dir).with_suffix("")
        if txt.name in ("classes.txt",) and txt.parent == label_dir:
            continue
        if rel not in stems:
            raise BadFileError(f"{txt.name}: label file has no matching image in {image_dir}")
    images = []
    for image_id, path in enumerate(image_files, start=1):
        rel = path.relative_to(image_dir)
        width, height = image_size(path)
        im = ImageRecord(file_name=rel.as_posix(), width=width, height=height,
                         image_id=image_id)
        txt = label_dir / rel.with_suffix(".txt")
        if txt.is_file():
            for line_no, line in enumerate(txt.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                where = f"{txt.name}: line {line_no}"
                im.annotations.append(_parse_line(line, width, height, where, len(names),
                                                  bbox_tolerance))
                check_annotation(im.annotations[-1], width, height, known, where,
                                 bbox_tolerance=bbox_tolerance * max(width, height))
        images.append(im)
    return DetectionDataset(images=images, categories=categories)


def _parse_line(line: str, width: int, height: int, where: str, num_classes: int,
                tol: float) -> ObjectAnnotation:
    fields = line.split()
    try:
        cls = int(fields[0])
        values = [float(v) for v in fields[1:]]
    except ValueError:
        raise BadFileError(f"{where}: expected 'class cx cy w h' numbers, got {line.strip()!r}"
                           ) from None
    if not 0 <= cls < num_classes:
        raise BadFileError(f"{where}: unknown class index {cls} ({num_classes} names)")
    if not all(math.isfinite(v) for v in values):
        raise BadFileError(f"{where}: non-finite coordinate in {line.strip()!r}")
    if len(values) == 4:
        cx, cy, w, h = values
        if w <= 0 or h <= 0:
            raise BadFileError(f"{where}: box has non-positive size (w, h) = ({w:g}, {h:g})")
        if cx - w / 2 < -tol or cy - h / 2 < -tol or cx + w / 2 > 1 + tol \
                or cy + h / 2 > 1 + tol:
            raise BadFileError(f"{where}: box (cx, cy, w, h) = {tuple(values)} extends outside "
                               f"the {width}x{height} image")
        box = ((cx - w / 2) * width, (cy - h / 2) * height,
               (cx + w / 2) * width, (cy + h / 2) * height)
        return ObjectAnnotation(bbox=box, category_id=cls + 1)
    if len(values) >= 6 and len(values) % 2 == 0:
        if any(v < -tol or v > 1 + tol for v in values):
            raise BadFileError(f"{where}: polygon point outside the {width}x{height} image")
        xs = [v * width for v in values[0::2]]
        ys = [v * height for v in values[1::2]]
        poly = [c for xy in zip(xs, ys) for c in xy]
        box = (min(xs), min(ys), max(xs), max(ys))
        return ObjectAnnotation(bbox=box, category_id=cls + 1, segmentation=[poly])
    raise BadFileError(f"{where}: expected 5 values (class cx cy w h) or a class and a polygon of "
                       f"at least 3 points, got {len(fields)} values")


def write_yolo(dataset: DetectionDataset, root: str | Path, *, split: str | None = None,
               image_dir: str | Path | None = None, polygons: bool = False) -> Path:
    """Write ``labels/[split/]<stem>.txt`` per image plus ``data.yaml`` and ``classes.txt``.

    Args:
        dataset: the records.
        root: output folder.
        split: optional sub-folder name (``images/<split>``, ``labels/<split>``).
        image_dir: if given, copy each image from here into ``images/[split/]``.
        polygons: write each object's polygon (segmentation variant) instead of its box; every
            annotation must then have exactly one polygon.

    Returns:
        the label folder.
    """
    root = Path(root)
    sub = Path(split) if split else Path()
    label_dir = root / "labels" / sub
    order = sorted(dataset.categories, key=lambda c: c.id)
    index = {c.id: k for k, c in enumerate(order)}
    for im in dataset.images:
        lines = []
        for k, ann in enumerate(im.annotations):
            where = f"image {im.image_id} ({im.file_name!r}), annotation {ann.id or k}"
            if ann.category_id not in index:
                raise InvalidArgumentError(f"{where}: unknown category id {ann.category_id}")
            cls = index[ann.category_id]
            if polygons:
                seg = ann.segmentation
                if not isinstance(seg, list) or len(seg) != 1:
                    raise InvalidArgumentError(
                        f"{where}: YOLO polygon labels need exactly one polygon "
                        "per object")
                coords = [v / (im.width if i % 2 == 0 else im.height)
                          for i, v in enumerate(seg[0])]
                lines.append(f"{cls} " + " ".join(f"{v:.6f}" for v in coords))
            else:
                x1, y1, x2, y2 = ann.bbox
                cx, cy = (x1 + x2) / 2 / im.width, (y1 + y2) / 2 / im.height
                w, h = (x2 - x1) / im.width, (y2 - y1) / im.height
                lines.append(f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
        txt = label_dir / Path(im.file_name).with_suffix(".txt")
        txt.parent.mkdir(parents=True, exist_ok=True)
        txt.write_text("".join(ln + "\n" for ln in lines))
        if image_dir is not None:
            dst = root / "images" / sub / im.file_name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(image_dir) / im.file_name, dst)
    names = [c.name for c in order]
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(n + "\n" for n in names))
    yaml_lines = [f"path: {root.resolve().as_posix()}"]
    if split:
        yaml_lines.append(f"{split}: images/{split}")
    yaml_lines.append(f"nc: {len(names)}")
    yaml_lines.append("names:")
    yaml_lines += [f"  {k}: {_quote(n)}" for k, n in enumerate(names)]
    (root / "data.yaml").write_text("\n".join(yaml_lines) + "\n")
    return label_dir


def _quote(name: str) -> str:
    quoted = "'" + name.replace("'", "''") + "'"
    return quoted if re.search(r"[:#'\"\[\]{},&*!|>%@`]|^\s|\s$", name) else name
