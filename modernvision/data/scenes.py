"""Scenes: real objects composited onto real textures, with exact boxes and masks.

No detection or segmentation data set (VOC, COCO, Cityscapes) is available offline, so this
module builds one from real pixels, in the spirit of "copy-paste" data synthesis (Dwibedi et
al., "Cut, Paste and Learn: Surprisingly Easy Synthesis for Instance Detection", 2017,
arXiv:1708.01642; Ghiasi et al., "Simple Copy-Paste is a Strong Data Augmentation Method for
Instance Segmentation", 2021, arXiv:2012.07177):

* **things**: Fashion-MNIST items (10 classes) and MNIST digits (10 classes), each cropped to its
  pixels, scaled so its longer side is ``min_object_size..max_object_size`` pixels, tinted with
  a random colour and pasted at a random position inside the image. Its instance mask is its
  own pixels: intensity >= 10 with holes filled for clothing (a shirt is solid), intensity
  >= 64 without filling for digits (the hole of a 0 is background);
* **stuff**: scikit-image's brick, grass and gravel textures (random crop and scale, class
  tint), laid out as 2..``max_stuff_regions`` regions of a Voronoi partition with wavy
  boundaries;
* **occlusion**: later objects cover earlier ones. Masks, boxes and areas describe the visible
  part only (boxes are tight around it). An object whose visible area falls below
  ``min_visible_fraction`` of its own area or ``min_visible_pixels`` is dropped *before*
  painting, so every painted pixel is annotated; the number dropped is reported.

Category ids: things first, ``1..T`` (the Fashion-MNIST classes, then ``digit-0..digit-9``;
``objects="fashion"`` or ``"digits"`` keeps one family), then stuff ``T+1..T+3`` (brick, grass,
gravel). The semantic class index of a pixel is ``category_id - 1`` (no pixel is unlabelled,
so the ignore value 255 never occurs). Panoptic segment ids are ``1000 * category_id`` for a
stuff region and ``1000 * category_id + k`` for the ``k``-th instance of a thing class.

Outputs of :func:`make_scenes` under ``DIR``: ``images/<split>/<id>.png`` (RGB),
``annotations/instances_<split>.json`` (COCO instances, RLE segmentation, ``iscrowd`` 0,
``area`` = visible mask area), ``semantic/<split>/<id>.png`` (class index per pixel),
``panoptic/<split>/<id>.png`` + ``annotations/panoptic_<split>.json`` (COCO panoptic) and
``annotations/semantic_<split>.json`` (the class list). Image ``i`` depends only on
``(seed, split, i)`` and the config, so two runs with one seed write byte-identical files.
Objects come from the matching split of the source arrays (train scenes from training items,
val from val), so no object instance is shared across splits.
"""

from __future__ import annotations

import colorsys
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from scipy import ndimage
from torchvision import tv_tensors

from modernvision._errors import InvalidArgumentError, MissingFileError
from modernvision.data.datasets import DIGIT_CLASSES, FASHION_CLASSES, load_arrays, load_photo
from modernvision.data.formats.coco import (
    PanopticRecord,
    PanopticSegment,
    id_to_rgb,
    write_coco,
    write_coco_panoptic,
)
from modernvision.data.formats.dataset import InstanceDataset, load_rgb
from modernvision.data.formats.records import (
    Category,
    DetectionDataset,
    ImageRecord,
    ObjectAnnotation,
)
from modernvision.data.masks import rle_encode

__all__ = [
    "OBJECT_FAMILIES",
    "SCENE_SPLITS",
    "STUFF_TEXTURES",
    "Scene",
    "SceneConfig",
    "SceneGenerator",
    "SceneInstance",
    "ScenePaths",
    "SceneSemanticDataset",
    "SceneSummary",
    "check_scene_output",
    "check_scene_resources",
    "make_scenes",
    "scene_categories",
    "scene_resources",
    "scene_instances",
    "show_scenes",
]

STUFF_TEXTURES = ("brick", "grass", "gravel")
OBJECT_FAMILIES = ("both", "fashion", "digits")
SCENE_SPLITS = ("train", "val", "test")
_STUFF_TINT = {"brick": (1.15, 0.72, 0.58), "grass": (0.72, 1.08, 0.55),
               "gravel": (1.0, 0.96, 0.9)}
_FASHION_THRESHOLD = 10
_DIGIT_THRESHOLD = 64
_PANOPTIC_STEP = 1000


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are built.

    Attributes:
        height: image height.
        width: image width.
        objects: ``"both"``, ``"fashion"`` or ``"digits"``.
        min_objects: fewest objects placed per image (before occlusion drops).
        max_objects: most objects placed per image.
        min_object_size: smallest longer side of an object, pixels.
        max_object_size: largest longer side of an object, pixels.
        min_visible_fraction: drop an object whose visible part is below this fraction of it.
        min_visible_pixels: drop an object whose visible part is below this many pixels.
        max_stuff_regions: most background regions (at least 2).
        tint: colour the objects (else they stay grey).
    """

    height: int = 256
    width: int = 256
    objects: str = "both"
    min_objects: int = 3
    max_objects: int = 8
    min_object_size: int = 20
    max_object_size: int = 90
    min_visible_fraction: float = 0.35
    min_visible_pixels: int = 30
    max_stuff_regions: int = 4
    tint: bool = True

    def __post_init__(self) -> None:
        if self.objects not in OBJECT_FAMILIES:
            raise InvalidArgumentError(
                f"objects must be one of {OBJECT_FAMILIES}, got {self.objects!r}")
        if self.height < 16 or self.width < 16:
            raise InvalidArgumentError(
                f"image size must be at least 16x16, got {self.height}x{self.width}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise InvalidArgumentError("need 0 <= min_objects <= max_objects, got "
                                       f"{self.min_objects}, {self.max_objects}")
        if not 4 <= self.min_object_size <= self.max_object_size:
            raise InvalidArgumentError("need 4 <= min_object_size <= max_object_size, got "
                                       f"{self.min_object_size}, {self.max_object_size}")
        if self.max_object_size > min(self.height, self.width):
            raise InvalidArgumentError(f"max_object_size ({self.max_object_size}) must fit in "
                                       f"the {self.height}x{self.width} image")
        if not 0.0 <= self.min_visible_fraction <= 1.0:
            raise InvalidArgumentError("min_visible_fraction must be in [0, 1], got "
                                       f"{self.min_visible_fraction}")
        if self.max_stuff_regions < 2:
            raise InvalidArgumentError(
                f"max_stuff_regions must be >= 2, got {self.max_stuff_regions}")


def scene_categories(objects: str = "both") -> list[Category]:
    """The categories of scenes built with ``objects`` (things ``1..T``, then stuff)."""
    if objects not in OBJECT_FAMILIES:
        raise InvalidArgumentError(f"objects must be one of {OBJECT_FAMILIES}, got {objects!r}")
    names: list[tuple[str, str]] = []
    if objects in ("both", "fashion"):
        names += [(n, "clothing") for n in FASHION_CLASSES]
    if objects in ("both", "digits"):
        names += [(f"digit-{d}", "digit") for d in DIGIT_CLASSES]
    cats = [Category(id=k + 1, name=n, supercategory=s) for k, (n, s) in enumerate(names)]
    t = len(cats)
    cats += [Category(id=t + 1 + k, name=n, supercategory="texture", isthing=False)
             for k, n in enumerate(STUFF_TEXTURES)]
    return cats


@dataclass
class SceneInstance:
    """One visible object: its class, visible mask and panoptic segment id."""

    category_id: int
    mask: np.ndarray
    segment_id: int


@dataclass
class Scene:
    """One generated image with every label.

    Attributes:
        image: uint8 ``[H, W, 3]``.
        semantic: uint8 ``[H, W]`` class index (``category_id - 1``).
        panoptic: int64 ``[H, W]`` segment ids.
        instances: the visible objects, bottom to top.
        stuff: ``(category_id, segment_id, area)`` of each stuff segment present.
        dropped: objects dropped for being too occluded.
    """

    image: np.ndarray
    semantic: np.ndarray
    panoptic: np.ndarray
    instances: list[SceneInstance]
    stuff: list[tuple[int, int, int]]
    dropped: int


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` pixel-edge box of a non-empty mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


class SceneGenerator:
    """Draws scenes from the object arrays of one split and the three textures.

    Args:
        config: the scene parameters.
        split: which split of Fashion-MNIST / MNIST supplies the objects.
    """

    def __init__(self, config: SceneConfig | None = None, split: str = "train") -> None:
        if split not in SCENE_SPLITS:
            raise InvalidArgumentError(f"split must be one of {SCENE_SPLITS}, got {split!r}")
        self.config = config or SceneConfig()
        self.split = split
        self.categories = scene_categories(self.config.objects)
        self.pools: list[tuple[np.ndarray, np.ndarray, int, bool, int]] = []
        offset = 0
        if self.config.objects in ("both", "fashion"):
            d = load_arrays("fashion-mnist", split)
            self.pools.append((d.images, d.labels, offset, True, _FASHION_THRESHOLD))
            offset += len(FASHION_CLASSES)
        if self.config.objects in ("both", "digits"):
            d = load_arrays("mnist-5k", split)
            self.pools.append((d.images, d.labels, offset, False, _DIGIT_THRESHOLD))
        self.num_things = sum(c.isthing for c in self.categories)
        self.textures = [load_photo(n) for n in STUFF_TEXTURES]

    # -- background -------------------------------------------------------------------------

    def _texture(self, rng: np.random.Generator, k: int) -> np.ndarray:
        h, w = self.config.height, self.config.width
        tex = self.textures[k]
        th, tw = tex.shape[:2]
        # Random crop with the image's aspect ratio, 0.5x .. 1x the texture, resized to the image.
        side = int(rng.integers(min(th, max(h, w) // 2), th + 1))
        ch, cw = side, min(tw, max(1, round(side * w / h)))
        y0, x0 = int(rng.integers(0, th - ch + 1)), int(rng.integers(0, tw - cw + 1))
        crop = cv2.resize(tex[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_AREA)
        tint = np.asarray(_STUFF_TINT[STUFF_TEXTURES[k]]) * rng.uniform(0.9, 1.1, 3)
        return np.clip(crop[..., None].astype(np.float32) * tint.astype(np.float32), 0, 255)

    def _layout(self, rng: np.random.Generator) -> np.ndarray:
        """Stuff index ``0..2`` per pixel: a Voronoi partition with wavy boundaries."""
        h, w = self.config.height, self.config.width
        n = int(rng.integers(2, self.config.max_stuff_regions + 1))
        centres = rng.uniform(0, 1, (n, 2)) * (h, w)
        kinds = rng.integers(0, len(STUFF_TEXTURES), n)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        amplitude = 0.12 * max(h, w)
        dist = np.empty((n, h, w), np.float32)
        for i, (cy, cx) in enumerate(centres):
            noise = cv2.resize(rng.normal(0, 1, (5, 5)).astype(np.float32), (w, h),
                               interpolation=cv2.INTER_CUBIC)
            dist[i] = np.hypot(yy - cy, xx - cx) + amplitude * noise
        return kinds[dist.argmin(0)]

    # -- objects ----------------------------------------------------------------------------

    def _object(self, rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray]:
        """A random object: ``(category_id, mask [h, w] bool, rgb [h, w, 3] float)``."""
        images, labels, offset, fill, thr = self.pools[int(rng.integers(len(self.pools)))]
        i = int(rng.integers(len(labels)))
        item = images[i]
        on = item >= thr
        if not on.any():  # an empty item cannot happen in these sets; pick the brightest
            on = item == item.max()
        rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
        crop = item[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32)
        size = int(rng.integers(self.config.min_object_size, self.config.max_object_size + 1))
        scale = size / max(crop.shape)
        oh, ow = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
        big = cv2.resize(crop, (ow, oh), interpolation=cv2.INTER_LINEAR)
        mask = big >= thr
        if fill:
            mask = ndimage.binary_fill_holes(mask)
        if self.config.tint:
            hue = rng.uniform()
            colour = np.asarray(colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 1.0),
                                                    rng.uniform(0.8, 1.0)), np.float32)
        else:
            colour = np.ones(3, np.float32)
        shade = np.maximum(big / 255.0, 0.3)
        rgb = 255.0 * shade[..., None] * colour
        return offset + int(labels[i]) + 1, mask, rgb

    # -- scene ------------------------------------------------------------------------------

    def generate(self, rng: np.random.Generator) -> Scene:
        """Draw one scene."""
        cfg = self.config
        h, w = cfg.height, cfg.width
        kinds = self._layout(rng)
        image = np.zeros((h, w, 3), np.float32)
        for k in range(len(STUFF_TEXTURES)):
            if (kinds == k).any():
                image[kinds == k] = self._texture(rng, k)[kinds == k]
        placed = []
        for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
            cat, mask, rgb = self._object(rng)
            oh, ow = mask.shape
            y0, x0 = int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1))
            placed.append((cat, mask, rgb, y0, x0))
        # Top-down: an object is kept if enough of it shows above the kept objects over it.
        occupied = np.zeros((h, w), bool)
        kept: list[tuple[int, np.ndarray, np.ndarray, int, int, np.ndarray]] = []
        dropped = 0
        for cat, mask, rgb, y0, x0 in reversed(placed):
            full = np.zeros((h, w), bool)
            full[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
            visible = full & ~occupied
            area, total = int(visible.sum()), int(full.sum())
            if total == 0 or area < cfg.min_visible_pixels or area < cfg.min_visible_fraction \
                    * total:
                dropped += 1
                continue
            occupied |= full
            kept.append((cat, mask, rgb, y0, x0, visible))
        kept.reverse()  # bottom to top
        for _, mask, rgb, y0, x0, _ in kept:
            region = image[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]]
            region[mask] = rgb[mask]
        image = np.clip(image + 0.5, 0, 255).astype(np.uint8)

        t = self.num_things
        semantic = (kinds + t).astype(np.uint8)  # stuff category k -> id t + 1 + k -> index t + k
        panoptic = ((kinds + t + 1) * _PANOPTIC_STEP).astype(np.int64)
        per_class: dict[int, int] = {}
        instances = []
        for cat, _, _, _, _, visible in kept:
            per_class[cat] = per_class.get(cat, 0) + 1
            sid = cat * _PANOPTIC_STEP + per_class[cat]
            semantic[visible] = cat - 1
            panoptic[visible] = sid
            instances.append(SceneInstance(category_id=cat, mask=visible, segment_id=sid))
        stuff = []
        for k in range(len(STUFF_TEXTURES)):
            cat = t + 1 + k
            area = int((panoptic == cat * _PANOPTIC_STEP).sum())
            if area:
                stuff.append((cat, cat * _PANOPTIC_STEP, area))
        return Scene(image=image, semantic=semantic, panoptic=panoptic, instances=instances,
                     stuff=stuff, dropped=dropped)


@dataclass(frozen=True)
class ScenePaths:
    """Where the files of one split of a scenes folder live."""

    root: Path
    split: str

    @property
    def images(self) -> Path:
        return self.root / "images" / self.split

    @property
    def semantic(self) -> Path:
        return self.root / "semantic" / self.split

    @property
    def panoptic(self) -> Path:
        return self.root / "panoptic" / self.split

    @property
    def instances_json(self) -> Path:
        return self.root / "annotations" / f"instances_{self.split}.json"

    @property
    def panoptic_json(self) -> Path:
        return self.root / "annotations" / f"panoptic_{self.split}.json"

    @property
    def semantic_json(self) -> Path:
        return self.root / "annotations" / f"semantic_{self.split}.json"


@dataclass
class SceneSummary:
    """What :func:`make_scenes` wrote."""

    paths: ScenePaths
    images: int
    objects: int
    dropped: int
    categories: list[Category] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# resources and the output folder, checked before any work

# Peak bytes per pixel while one scene is generated (NumPy working arrays: the Voronoi
# distances, 4 B per stuff region; float32 image and texture layers; int64 labels; one bool
# mask per object). Measured with tracemalloc over 16 scenes per setting (68 B/px at the
# defaults, 84 with 8 regions, 89 with 30 objects); this bound is 1.2-1.25x those peaks, and
# tests/data/test_scenes.py checks it stays above the measured peak.
_BYTES_PER_PIXEL = 60.0
_BYTES_PER_PIXEL_PER_REGION = 4.0
_BYTES_PER_PIXEL_PER_OBJECT = 1.1
# Per image, the annotations kept in memory until the JSON files are written (records, RLE
# strings, the JSON text): measured 13-26 KB per image with up to 8 objects.
_RECORD_BYTES_PER_IMAGE = 4096
_RECORD_BYTES_PER_OBJECT = 2048
_RLE_BYTES_PER_OBJECT_SIDE = 16
_FIXED_BYTES = 128 * 2**20  # the source arrays and textures
# On disk: PNGs measured at 1.4-1.9 bytes per pixel for the three files of an image together.
_DISK_BYTES_PER_PIXEL = 2.5


def scene_resources(config: SceneConfig, num_images: int) -> tuple[int, int]:
    """``(memory, disk)`` bytes :func:`make_scenes` needs for ``num_images`` scenes, estimated
    from above (the constants above say how they were measured)."""
    pixels = config.height * config.width
    per_pixel = (_BYTES_PER_PIXEL + _BYTES_PER_PIXEL_PER_REGION * config.max_stuff_regions
                 + _BYTES_PER_PIXEL_PER_OBJECT * config.max_objects)
    per_object = _RECORD_BYTES_PER_OBJECT + _RLE_BYTES_PER_OBJECT_SIDE * config.max_object_size
    records = num_images * (_RECORD_BYTES_PER_IMAGE + config.max_objects * per_object)
    memory = int(per_pixel * pixels) + records + _FIXED_BYTES
    disk = int(num_images * (_DISK_BYTES_PER_PIXEL * pixels + _RECORD_BYTES_PER_IMAGE))
    return memory, disk


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_scene_resources(config: SceneConfig, num_images: int, out_dir: str | Path, *,
                          size_name: str = "height x width",
                          count_name: str = "num_images") -> None:
    """Refuse, before any work, a request that cannot fit in memory or on disk.

    Args:
        config: the scene parameters.
        num_images: how many images.
        out_dir: the output folder (its file system's free space is checked).
        size_name: how the message names the image size (``"--size"`` from the CLI).
        count_name: how the message names the image count (``"--images"``).

    Raises:
        InvalidArgumentError: naming the size or the count, what it needs and what is free.
    """
    memory, disk = scene_resources(config, num_images)
    available = _available_memory()
    if available is not None and memory > available:
        one, _ = scene_resources(config, 1)
        size = f"{config.height}x{config.width}"
        if one > available:  # a single scene does not fit: the size is the problem
            per_pixel = (one - _FIXED_BYTES) / (config.height * config.width)
            side = int(((available - _FIXED_BYTES) / per_pixel) ** 0.5) if available > \
                _FIXED_BYTES else 0
            raise InvalidArgumentError(
                f"{size_name}: one {size} scene needs about {_gib(one)} of memory to generate "
                f"(about {per_pixel:.0f} bytes per pixel), but {_gib(available)} is available; "
                f"use at most about {max(side, 0)} pixels a side")
        per_image = (memory - one) / max(num_images - 1, 1)
        fits = int((available - one) / per_image) + 1
        raise InvalidArgumentError(
            f"{count_name} {num_images}: the annotations of {num_images} scenes of {size} need "
            f"about {_gib(memory)} of memory, but {_gib(available)} is available; use at most "
            f"about {fits} images per run (and another --seed or --split for more)")
    probe = Path(out_dir).resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if disk > free:
        raise InvalidArgumentError(
            f"{count_name} {num_images} ({config.height}x{config.width} scenes, "
            f"{size_name}): they need about {_gib(disk)} on disk, but {probe} has "
            f"{_gib(free)} free")


_OWN_FILE = re.compile(r"\d{6}\.png")
_LAYOUT = ("images", "semantic", "panoptic", "annotations")


def _split_files(paths: ScenePaths) -> tuple[list[Path], list[Path]]:
    """This split's files in a scenes folder: ``(written by make_scenes, anything else)``."""
    ours: list[Path] = []
    foreign: list[Path] = []
    for folder in (paths.images, paths.semantic, paths.panoptic):
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                (ours if f.is_file() and _OWN_FILE.fullmatch(f.name) else foreign).append(f)
    for f in (paths.instances_json, paths.panoptic_json, paths.semantic_json,
              paths.root / f"show_{paths.split}.png"):
        if f.is_file():
            ours.append(f)
    return ours, foreign


def check_scene_output(out_dir: str | Path, split: str = "train", *, overwrite: bool = False,
                       out_name: str = "out_dir",
                       overwrite_name: str = "overwrite=True") -> list[Path]:
    """Check that ``out_dir`` can take a new ``split`` without mixing old and new files.

    A new or empty folder, or a scenes folder holding other splits only, is fine (the splits
    of one folder are written one by one). A folder that already holds this split is refused
    unless ``overwrite``; a folder holding anything make-scenes does not write is refused.

    Returns:
        the files of the existing split that :func:`make_scenes` will delete (``overwrite``).

    Raises:
        InvalidArgumentError: ``out_dir`` is a file, holds foreign files, or holds the split.
    """
    paths = ScenePaths(Path(out_dir), split)
    root = paths.root
    if root.exists() and not root.is_dir():
        raise InvalidArgumentError(f"{out_name} {root} is a file, expected a folder")
    if not root.is_dir():
        return []
    foreign_top = sorted(p.name for p in root.iterdir() if p.name not in _LAYOUT
                         and not re.fullmatch(r"show_\w+\.png", p.name))
    if foreign_top:
        shown = ", ".join(foreign_top[:3]) + (", ..." if len(foreign_top) > 3 else "")
        raise InvalidArgumentError(
            f"{out_name} {root} is not empty and is not a scenes folder (it holds {shown}); "
            "choose a new or empty folder")
    ours, foreign = _split_files(paths)
    if foreign:
        shown = ", ".join(str(p.relative_to(root)) for p in foreign[:3])
        raise InvalidArgumentError(
            f"{out_name} {root} holds files make-scenes did not write in its {split!r} split "
            f"({shown}); move them or choose another folder")
    if ours and not overwrite:
        images = sum(1 for p in ours if p.parent == paths.images)
        raise InvalidArgumentError(
            f"{out_name} {root} already holds the {split!r} split ({images} images and their "
            f"annotations); refusing to mix old and new files: pass {overwrite_name} to "
            "replace it, or choose another folder")
    return ours


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(array).save(path, format="PNG", compress_level=1)


def make_scenes(out_dir: str | Path, num_images: int, seed: int = 0, *, split: str = "train",
                config: SceneConfig | None = None, overwrite: bool = False) -> SceneSummary:
    """Generate ``num_images`` scenes and write them in COCO instances, semantic and panoptic
    form (layout in the module docstring).

    Before any work, the request is checked against free memory and disk
    (:func:`check_scene_resources`) and the folder against mixing old and new files
    (:func:`check_scene_output`).

    Args:
        out_dir: output folder (created; other splits in it are left alone).
        num_images: how many images.
        seed: the random seed; image ``i`` depends only on ``(seed, split, i)``.
        split: ``train``, ``val`` or ``test`` (also chooses the objects' source split).
        config: scene parameters.
        overwrite: replace this split if the folder already holds it (its files written by a
            previous run are deleted first, so no old image stays beside new annotations).
    """
    if num_images < 1:
        raise InvalidArgumentError(f"num_images must be >= 1, got {num_images}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"seed must be an integer >= 0, got {seed!r}")
    if split not in SCENE_SPLITS:
        raise InvalidArgumentError(f"split must be one of {SCENE_SPLITS}, got {split!r}")
    config = config or SceneConfig()
    stale = check_scene_output(out_dir, split, overwrite=overwrite)
    check_scene_resources(config, num_images, out_dir)
    gen = SceneGenerator(config, split)
    for f in stale:
        f.unlink()
    paths = ScenePaths(Path(out_dir), split)
    for d in (paths.images, paths.semantic, paths.panoptic, paths.instances_json.parent):
        d.mkdir(parents=True, exist_ok=True)
    split_code = SCENE_SPLITS.index(split)
    images: list[ImageRecord] = []
    panoptic_records: list[PanopticRecord] = []
    ann_id = 0
    dropped = 0
    for i in range(num_images):
        rng = np.random.default_rng(np.random.SeedSequence([seed, split_code, i]))
        scene = gen.generate(rng)
        dropped += scene.dropped
        image_id = i + 1
        name = f"{image_id:06d}.png"
        _save_png(scene.image, paths.images / name)
        _save_png(scene.semantic, paths.semantic / name)
        _save_png(id_to_rgb(scene.panoptic), paths.panoptic / name)
        rec = ImageRecord(file_name=name, width=config.width, height=config.height,
                          image_id=image_id)
        pan = PanopticRecord(image_id=image_id, file_name=name, segments_file=name,
                             width=config.width, height=config.height)
        for inst in scene.instances:
            ann_id += 1
            box = _tight_box(inst.mask)
            area = int(inst.mask.sum())
            rec.annotations.append(ObjectAnnotation(
                bbox=tuple(float(v) for v in box), category_id=inst.category_id, id=ann_id,
                iscrowd=False, segmentation=rle_encode(inst.mask), area=float(area)))
            pan.segments.append(PanopticSegment(id=inst.segment_id,
                                                category_id=inst.category_id, area=area,
                                                bbox=tuple(float(v) for v in box)))
        for cat, sid, area in scene.stuff:
            box = _tight_box(scene.panoptic == sid)
            pan.segments.append(PanopticSegment(id=sid, category_id=cat, area=area,
                                                bbox=tuple(float(v) for v in box)))
        images.append(rec)
        panoptic_records.append(pan)
    info = {"info": {"description": "modernvision scenes: Fashion-MNIST items and MNIST digits "
                                    "on brick/grass/gravel textures",
                     "seed": seed, "split": split, "config": asdict(config),
                     "dropped_objects": dropped}}
    dataset = DetectionDataset(images=images, categories=gen.categories, info=info)
    write_coco(dataset, paths.instances_json, things_only=True)
    write_coco_panoptic(panoptic_records, gen.categories, paths.panoptic_json, info=info)
    semantic = {"classes": [c.name for c in gen.categories],
                "category_ids": [c.id for c in gen.categories],
                "isthing": [int(c.isthing) for c in gen.categories],
                "ignore_index": 255, "rule": "class index = category_id - 1"}
    paths.semantic_json.write_text(json.dumps(semantic))
    return SceneSummary(paths=paths, images=num_images,
                        objects=dataset.num_annotations, dropped=dropped,
                        categories=gen.categories)


# ---------------------------------------------------------------------------------------------
# reading scenes back


def scene_instances(root: str | Path, split: str = "train", **kwargs: Any) -> InstanceDataset:
    """The instances of a scenes folder as an :class:`InstanceDataset` (read through the COCO
    reader, as a user's own data would be); ``kwargs`` go to :class:`InstanceDataset`."""
    paths = ScenePaths(Path(root), split)
    return InstanceDataset.from_coco(paths.instances_json, paths.images, **kwargs)


class SceneSemanticDataset(torch.utils.data.Dataset):
    """Images and semantic label maps of a scenes folder.

    Yields ``(image, target)``: ``tv_tensors.Image`` uint8 ``[3, H, W]`` and ``tv_tensors.Mask``
    int64 ``[H, W]`` of class indices (``ignore_index`` 255), passed through ``transforms``.

    Attributes:
        classes: class names by index.
        num_classes: number of classes.
        ignore_index: the label of unlabelled pixels.
    """

    def __init__(self, root: str | Path, split: str = "train", *,
                 transforms: Any | None = None) -> None:
        self.paths = ScenePaths(Path(root), split)
        if not self.paths.semantic_json.is_file():
            raise MissingFileError(f"no scenes split {split!r} in {root} "
                                   f"(missing {self.paths.semantic_json})")
        meta = json.loads(self.paths.semantic_json.read_text())
        self.classes: list[str] = meta["classes"]
        self.num_classes = len(self.classes)
        self.ignore_index = int(meta["ignore_index"])
        self.files = sorted(p.name for p in self.paths.semantic.glob("*.png"))
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
        from modernvision.data.io import read_label_map

        name = self.files[index]
        rgb = load_rgb(self.paths.images / name)
        label = read_label_map(self.paths.semantic / name, what="semantic label PNG")
        image = tv_tensors.Image(torch.from_numpy(rgb).permute(2, 0, 1).contiguous())
        target = tv_tensors.Mask(torch.from_numpy(label.astype(np.int64)))
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


def show_scenes(root: str | Path, split: str = "train", *, num_images: int = 8,
                out: str | Path | None = None, ncols: int = 4) -> Path:
    """Draw boxes, masks and class names of the first images of a COCO-format folder into one
    PNG grid (read back through the COCO reader).

    Args:
        root: a scenes folder (``annotations/instances_<split>.json``, ``images/<split>/``).
        split: which split.
        num_images: how many images to draw.
        out: output PNG (default ``<root>/show_<split>.png``).
        ncols: grid columns.
    """
    from modernvision.data.formats.coco import read_coco
    from modernvision.viz.draw import draw_instances, image_grid, save_image

    paths = ScenePaths(Path(root), split)
    if not paths.instances_json.is_file():
        raise MissingFileError(f"no COCO instances for split {split!r} in {root} "
                                f"(expected {paths.instances_json})")
    if num_images < 1:
        raise InvalidArgumentError(f"num_images must be >= 1, got {num_images}")
    records = read_coco(paths.instances_json)
    names = records.category_names()
    tiles = []
    for rec in records.images[:num_images]:
        rgb = load_rgb(paths.images / rec.file_name)
        anns = rec.annotations
        masks = None
        if anns and all(a.segmentation is not None for a in anns):
            masks = np.stack([a.mask(rec.height, rec.width) for a in anns])
        tiles.append(draw_instances(rgb, boxes=np.asarray([a.bbox for a in anns]).reshape(-1, 4),
                                    masks=masks, labels=[a.category_id for a in anns],
                                    class_names=names))
    out = Path(out) if out is not None else paths.root / f"show_{split}.png"
    return save_image(image_grid(tiles, ncols=ncols), out)
