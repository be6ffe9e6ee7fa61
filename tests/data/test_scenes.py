"""Composited scenes: consistency of the COCO instance, semantic and panoptic outputs,
checked with pycocotools; determinism; the CLI."""

import argparse
import contextlib
import io
import json

import numpy as np
import pycocotools.mask as cocomask
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from modernvision.cli._data_scenes import register_data_commands
from modernvision.data.formats import read_coco, read_coco_panoptic
from modernvision.data.scenes import (
    SceneConfig,
    ScenePaths,
    SceneSemanticDataset,
    make_scenes,
    scene_categories,
    scene_instances,
    show_scenes,
)

CONFIG = SceneConfig(height=96, width=96, min_objects=3, max_objects=6, min_object_size=16,
                     max_object_size=40)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    summary = make_scenes(root, 8, seed=3, config=CONFIG)
    return root, summary


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def test_categories():
    cats = scene_categories()
    assert [c.id for c in cats] == list(range(1, 24))
    assert cats[0].name == "T-shirt/top" and cats[10].name == "digit-0"
    assert [c.name for c in cats[20:]] == ["brick", "grass", "gravel"]
    assert all(c.isthing for c in cats[:20]) and not any(c.isthing for c in cats[20:])
    fashion = scene_categories("fashion")
    assert len(fashion) == 13 and fashion[10].name == "brick" and fashion[10].id == 11


def test_files_and_pycocotools_agree(scenes):
    root, summary = scenes
    p = ScenePaths(root, "train")
    assert summary.images == 8 and summary.objects > 8
    coco = _quiet(COCO, str(p.instances_json))
    assert len(coco.imgs) == 8 and len(coco.anns) == summary.objects
    assert sorted(coco.cats) == list(range(1, 21))  # instance files list the things only
    records, pan_cats = read_coco_panoptic(p.panoptic_json)
    assert len(pan_cats) == 23
    for rec in records:
        ids = rec.load_ids(p.panoptic)
        semantic = np.asarray(Image.open(p.semantic / rec.segments_file))
        image = np.asarray(Image.open(p.images / rec.file_name))
        assert image.shape == (96, 96, 3) and semantic.shape == (96, 96)
        # The segments partition the image; areas and boxes are those of the pixels.
        assert sorted(np.unique(ids).tolist()) == sorted(s.id for s in rec.segments)
        assert sum(s.area for s in rec.segments) == 96 * 96
        for s in rec.segments:
            m = ids == s.id
            assert m.sum() == s.area
            ys, xs = np.nonzero(m)
            assert s.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            np.testing.assert_array_equal(semantic[m], s.category_id - 1)
        # Each COCO instance is the panoptic segment of the same object, pixel for pixel.
        things = [s for s in rec.segments if s.category_id <= 20]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[rec.image_id]))
        assert len(anns) == len(things)
        for ann, seg in zip(anns, things):
            mask = coco.annToMask(ann)
            np.testing.assert_array_equal(mask, ids == seg.id)
            assert ann["category_id"] == seg.category_id and ann["iscrowd"] == 0
            assert ann["area"] == cocomask.area(ann["segmentation"]) == seg.area
            np.testing.assert_array_equal(ann["bbox"], cocomask.toBbox(ann["segmentation"]))
            assert mask.sum() >= CONFIG.min_visible_pixels


def test_ground_truth_scores_perfect_coco_ap(scenes):
    root, _ = scenes
    p = ScenePaths(root, "train")
    gt = _quiet(COCO, str(p.instances_json))
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"],
             "segmentation": a["segmentation"], "bbox": a["bbox"], "score": 1.0}
            for a in gt.dataset["annotations"]]
    for iou_type in ("bbox", "segm"):
        dt = _quiet(gt.loadRes, dets)
        ev = COCOeval(gt, dt, iou_type)
        _quiet(ev.evaluate)
        _quiet(ev.accumulate)
        _quiet(ev.summarize)
        assert ev.stats[0] == pytest.approx(1.0)


def test_deterministic_from_seed(scenes, tmp_path):
    root, _ = scenes
    again = make_scenes(tmp_path / "again", 8, seed=3, config=CONFIG)
    files = sorted(f.relative_to(root) for f in root.rglob("*") if f.is_file()
                   and not f.name.startswith("show"))
    assert len(files) == 3 * 8 + 3
    for f in files:
        assert (root / f).read_bytes() == (again.paths.root / f).read_bytes(), f
    other = make_scenes(tmp_path / "other", 2, seed=4, config=CONFIG)
    first = "images/train/000001.png"
    assert (root / first).read_bytes() != (other.paths.root / first).read_bytes()
    # image i depends on (seed, split, i) only, not on how many images are made
    assert (root / first).read_bytes() == (make_scenes(tmp_path / "one", 1, seed=3,
                                                       config=CONFIG).paths.root
                                           / first).read_bytes()


def test_readers_and_torch_datasets(scenes):
    root, summary = scenes
    records = read_coco(ScenePaths(root, "train").instances_json)
    assert records.num_annotations == summary.objects
    ds = scene_instances(root, "train")
    image, target = ds[0]
    assert image.shape == (3, 96, 96)
    n = len(records.images[0].annotations)
    assert target["boxes"].shape == (n, 4) and target["masks"].shape == (n, 96, 96)
    # masks never overlap: later objects occlude earlier ones
    assert target["masks"].sum(0).max() <= 1
    sem = SceneSemanticDataset(root, "train")
    assert len(sem) == 8 and sem.num_classes == 23
    img, label = sem[0]
    assert img.shape == (3, 96, 96) and label.shape == (96, 96)
    for k in range(n):
        np.testing.assert_array_equal(label[target["masks"][k].bool()].unique().numpy(),
                                      [target["labels"][k].item() - 1])


def test_show_draws_a_grid(scenes, tmp_path):
    root, _ = scenes
    out = show_scenes(root, "train", num_images=3, out=tmp_path / "grid.png", ncols=2)
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 * 96 + 3 * 2, 2 * 96 + 3 * 2, 3)
    plain = np.asarray(Image.open(root / "images" / "train" / "000001.png"))
    assert not np.array_equal(grid[2:98, 2:98], plain)  # something was drawn


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="max_object_size"):
        SceneConfig(height=64, width=64, max_object_size=90)
    with pytest.raises(ValueError, match="objects must be one of"):
        SceneConfig(objects="cars")
    with pytest.raises(ValueError, match="split must be one of"):
        make_scenes(tmp_path, 1, split="holdout", config=CONFIG)
    with pytest.raises(FileNotFoundError, match="no COCO instances"):
        show_scenes(tmp_path, "train")


def test_cli_commands(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="modernvision data")
    register_data_commands(parser.add_subparsers(dest="action", required=True))
    args = parser.parse_args(["make-scenes", "--out", str(tmp_path), "--images", "2",
                              "--seed", "1", "--size", "64", "--max-object-size", "30",
                              "--objects", "fashion"])
    assert args.func(args) == 0
    assert "wrote 2 train images" in capsys.readouterr().out
    data = json.loads((tmp_path / "annotations" / "instances_train.json").read_text())
    assert len(data["images"]) == 2 and len(data["categories"]) == 10
    args = parser.parse_args(["show", str(tmp_path), "--n", "2"])
    assert args.func(args) == 0
    assert (tmp_path / "show_train.png").is_file()


def test_cli_through_main(tmp_path, capsys):
    from modernvision.cli import build_parser, main

    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices)
    if "data" not in sub.choices:
        pytest.skip("the `modernvision data` command is not wired in yet")
    assert main(["data", "make-scenes", "--out", str(tmp_path), "--images", "1", "--size", "48",
                 "--max-object-size", "24", "--split", "val"]) == 0
    assert (tmp_path / "annotations" / "panoptic_val.json").is_file()
    assert main(["data", "show", str(tmp_path), "--split", "val"]) == 0
    assert (tmp_path / "show_val.png").is_file()
    assert main(["data", "show", str(tmp_path / "missing")]) == 2
    assert "no COCO instances" in capsys.readouterr().err


# -- resources and the output folder, checked before any work ---------------------------------


@pytest.mark.parametrize("config", [
    SceneConfig(height=160, width=200),
    SceneConfig(height=128, width=128, min_objects=20, max_objects=20, max_stuff_regions=8),
])
def test_memory_estimate_bounds_the_measured_peak(config):
    import tracemalloc

    from modernvision.data.formats.coco import id_to_rgb
    from modernvision.data.scenes import _FIXED_BYTES, SceneGenerator, scene_resources

    gen = SceneGenerator(config, "train")
    peaks = []
    for i in range(6):
        tracemalloc.start()
        scene = gen.generate(np.random.default_rng(i))
        id_to_rgb(scene.panoptic)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    memory, _ = scene_resources(config, 1)
    per_scene = memory - _FIXED_BYTES
    assert max(peaks) < per_scene < 1.6 * max(peaks)


def test_a_size_too_large_for_memory_is_refused_before_any_work(tmp_path, monkeypatch):
    from modernvision._errors import InvalidArgumentError
    from modernvision.data import scenes as scenes_module

    monkeypatch.setattr(scenes_module, "_available_memory", lambda: 64 * 2**30)
    big = SceneConfig(height=100_000, width=100_000)
    with pytest.raises(InvalidArgumentError, match=r"one 100000x100000 scene needs about .* GiB"):
        make_scenes(tmp_path / "out", 1, config=big)
    assert not (tmp_path / "out").exists()  # nothing written, no MemoryError


def test_image_count_and_disk_are_checked(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from modernvision._errors import InvalidArgumentError
    from modernvision.data import scenes as scenes_module

    monkeypatch.setattr(scenes_module, "_available_memory", lambda: 2 * 2**30)
    with pytest.raises(InvalidArgumentError, match=r"--images 10000000: .*at most about \d+ "):
        scenes_module.check_scene_resources(CONFIG, 10_000_000, tmp_path, size_name="--size",
                                            count_name="--images")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(2**30, 2**30 - 2**20, 2**20))
    with pytest.raises(InvalidArgumentError, match=r"num_images 1000 .* disk, but .* 1 MiB free"):
        scenes_module.check_scene_resources(CONFIG, 1000, tmp_path)
    scenes_module.check_scene_resources(CONFIG, 1, tmp_path)  # 1 image fits in 1 MiB


def test_existing_split_is_refused_unless_overwrite_which_clears_it(tmp_path):
    from modernvision._errors import InvalidArgumentError

    root = tmp_path / "s"
    make_scenes(root, 3, seed=0, config=CONFIG)
    first = (root / "images" / "train" / "000001.png").read_bytes()
    with pytest.raises(InvalidArgumentError, match=r"already holds the 'train' split \(3 images"):
        make_scenes(root, 2, seed=1, config=CONFIG)
    assert (root / "images" / "train" / "000001.png").read_bytes() == first  # untouched
    make_scenes(root, 2, seed=1, config=CONFIG, overwrite=True)
    for folder in ("images", "semantic", "panoptic"):
        assert sorted(p.name for p in (root / folder / "train").iterdir()) == [
            "000001.png", "000002.png"]  # no stale 000003.png beside the new annotations
    assert len(read_coco(root / "annotations" / "instances_train.json").images) == 2
    make_scenes(root, 1, seed=0, split="val", config=CONFIG)  # another split is welcome
    (root / "images" / "train" / "mine.jpg").write_bytes(b"x")
    with pytest.raises(InvalidArgumentError, match="did not write .*mine.jpg"):
        make_scenes(root, 2, config=CONFIG, overwrite=True)
    (root / "images" / "train" / "mine.jpg").unlink()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match=r"not a scenes folder \(it holds notes.txt"):
        make_scenes(root, 2, config=CONFIG, overwrite=True)
    assert (root / "notes.txt").read_text() == "mine"
