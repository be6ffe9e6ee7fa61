"""The detection job end to end through the command line, on tiny scenes written here:
``train`` reports COCO AP, ``eval`` prints the 12 COCO numbers, ``predict`` draws and prints
boxes with class names and scores; coco:/voc:/yolo: data load; images without objects train;
bad annotations stop the run with a one-line error naming the file and the image."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from modernvision.cli import main
from modernvision.data.formats.coco import read_coco, write_coco
from modernvision.data.formats.voc import write_voc
from modernvision.data.formats.yolo import write_yolo
from modernvision.engine.jobs.configs import DetectionConfig
from modernvision.engine.jobs.detection import DetectionJob

COCO_KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
             "ARl"]
# A small, fast Faster R-CNN: 64-pixel images, few proposals and RoIs, and every box kept so
# that even a barely trained model draws and prints some.
FAST = ["--min-size", "64", "--max-size", "64", "--batch-size", "2", "--epochs", "1",
        "--no-progress", "--model-arg", "fpn_channels=32", "--model-arg",
        "representation_size=64", "--model-arg", "rpn_pre_nms_top_n_train=100",
        "--model-arg", "rpn_post_nms_top_n_train=50", "--model-arg",
        "rpn_pre_nms_top_n_test=100", "--model-arg", "rpn_post_nms_top_n_test=50",
        "--model-arg", "box_batch_size_per_image=32", "--model-arg", "box_score_thresh=0.0",
        "--model-arg", "box_detections_per_img=10"]
MODEL = ["--model", "fasterrcnn_resnet18_fpn"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    for split, n, seed in (("train", 4, 0), ("val", 2, 1), ("test", 3, 2)):
        assert main(["data", "make-scenes", "--out", str(root), "--split", split, "--images",
                     str(n), "--seed", str(seed), "--size", "64", "--min-objects", "1",
                     "--max-objects", "3"]) == 0
    return root


@pytest.fixture(scope="module")
def run(scenes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", *MODEL, "--data", f"scenes:{scenes}", "--run-dir", str(out),
                 *FAST]) == 0
    return out


def test_train_reports_coco_ap_every_epoch_and_on_the_test_split(run, capsys):
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 1 and {"val_AP", "val_AP50", "train_loss_objectness"} <= set(epochs[0])
    saved = json.loads((run / "test_metrics.json").read_text())
    assert saved["test_images"] == 3
    assert all(-1 <= saved[f"test_{k}"] <= 1 for k in COCO_KEYS)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"] == "detection" and cfg["meta"]["num_classes"] == 21


def test_train_prints_ap_and_ap50(scenes, tmp_path, capsys):
    assert main(["train", *MODEL, "--data", f"scenes:{scenes}", "--run-dir",
                 str(tmp_path / "r"), "--train-subset", "2", "--eval-subset", "2",
                 "--val-subset", "1", *FAST]) == 0
    out = capsys.readouterr().out
    assert "val_AP " in out and "val_AP50 " in out  # the epoch line
    assert "test AP " in out and "AP50 " in out and "on 2 images" in out
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (cfg["train_subset"], cfg["val_subset"], cfg["eval_subset"]) == (2, 1, 2)


def test_eval_prints_the_12_coco_numbers_and_the_image_count(run, capsys):
    assert main(["eval", str(run)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [k for k in out if k.startswith("test_")] == [f"test_{k}" for k in COCO_KEYS]
    assert out["images"] == 3
    saved = json.loads((run / "test_metrics.json").read_text())
    assert out["test_AP"] == pytest.approx(saved["test_AP"])
    assert main(["eval", str(run), "--split", "val"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 2


def test_predict_draws_and_prints_class_names_and_scores(run, scenes, tmp_path, capsys):
    image = scenes / "images" / "test" / "000001.png"
    out = tmp_path / "drawn"
    assert main(["predict", str(run), str(image), "--out", str(out), "--score-thresh",
                 "0"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: 10 objects; ")
    names = {c["name"] for c in json.loads((run / "config.json").read_text())["meta"][
        "categories"]}
    first = line.split("; ")[1]  # "<class name> <score> [x1, y1, x2, y2]"
    label, score = first.split(" [")[0].rsplit(" ", 1)
    assert label in names and 0 <= float(score) <= 1
    drawn = np.asarray(Image.open(out / "000001.png").convert("RGB"))
    source = np.asarray(Image.open(image).convert("RGB"))
    assert drawn.shape == source.shape and (drawn != source).any()
    assert main(["predict", str(run), str(image), "--score-thresh", "2"]) == 2
    assert "--score-thresh must be in [0, 1]" in capsys.readouterr().err


def _export(scenes, tmp_path):
    """The scenes' train and val splits in COCO, VOC and YOLO layouts."""
    train = read_coco(scenes / "annotations" / "instances_train.json")
    val = read_coco(scenes / "annotations" / "instances_val.json")
    coco = tmp_path / "coco"
    images = coco / "images"
    images.mkdir(parents=True)
    for split, records in (("train", train), ("val", val)):
        for im in records.images:
            im.file_name = f"{split}_{im.file_name}"
            shutil.copy(scenes / "images" / split / im.file_name.split("_", 1)[1],
                        images / im.file_name)
        write_coco(records, coco / f"{split}.json", things_only=True)
    voc = tmp_path / "voc"
    (voc / "JPEGImages").mkdir(parents=True)
    for split, records in (("train", train), ("val", val)):
        for im in records.images:
            shutil.copy(images / im.file_name, voc / "JPEGImages" / im.file_name)
        write_voc(records, voc, split=split)
    yolo = tmp_path / "yolo"
    for split, records in (("train", train), ("val", val)):
        write_yolo(records, yolo, split=split, image_dir=images)
    return {"coco": f"coco:{images},{coco / 'train.json'},{coco / 'val.json'}",
            "voc": f"voc:{voc}", "yolo": f"yolo:{yolo}"}, train


def test_coco_voc_and_yolo_specs_load_the_same_objects(scenes, tmp_path):
    specs, train = _export(scenes, tmp_path)
    job = DetectionJob()
    names = {c.id: c.name for c in train.categories}
    want = [sorted((names[a.category_id], tuple(round(v) for v in a.bbox))
                   for a in im.annotations) for im in train.images]
    for kind, spec in specs.items():
        parts = job.build_data(DetectionConfig(model="fasterrcnn_resnet18_fpn", data=spec))
        assert len(parts.train) == 4 and len(parts.val) == 2 and len(parts.test) == 2, kind
        ids = {c["id"]: c["name"] for c in parts.meta["categories"]}
        for k, expected in enumerate(want):
            _, target = parts.train[k]
            got = sorted((ids[int(c)], tuple(round(float(v)) for v in b))
                         for b, c in zip(target["boxes"], target["labels"]))
            assert got == expected, (kind, k)


def test_images_without_objects_and_grey_or_rgba_files_train(scenes, tmp_path, capsys):
    specs, _ = _export(scenes, tmp_path)
    images, train_json, val_json = specs["coco"][len("coco:"):].split(",")
    records = read_coco(train_json)
    for im in records.images[:2]:
        im.annotations = []  # negatives only
    grey, rgba = records.images[1], records.images[2]
    path = f"{images}/{grey.file_name}"
    Image.open(path).convert("L").save(path)
    path = f"{images}/{rgba.file_name}"
    Image.open(path).convert("RGBA").save(path)
    write_coco(records, train_json, things_only=True)
    assert main(["train", *MODEL, "--data", f"coco:{images},{train_json},{val_json}",
                 "--run-dir", str(tmp_path / "r"), *FAST]) == 0
    assert "test AP " in capsys.readouterr().out


def _bad_coco(scenes, tmp_path, bbox):
    data = json.loads((scenes / "annotations" / "instances_train.json").read_text())
    data["annotations"][0]["bbox"] = bbox
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    image = next(im for im in data["images"] if im["id"] == data["annotations"][0]["image_id"])
    return f"coco:{scenes / 'images' / 'train'},{path}", image


@pytest.mark.parametrize(("bbox", "message"), [
    ([10, 10, 0, 5], "non-positive size"),
    ([50, 10, 30, 5], "outside the 64x64 image"),
])
def test_bad_boxes_stop_the_run_naming_the_file_and_image(scenes, tmp_path, capsys, bbox,
                                                          message):
    spec, image = _bad_coco(scenes, tmp_path, bbox)
    assert main(["train", *MODEL, "--data", spec, "--run-dir", str(tmp_path / "r"),
                 *FAST]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "bad.json" in err and message in err
    assert f"image {image['id']}" in err and image["file_name"] in err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_an_image_file_that_disagrees_with_its_record_names_the_file(scenes, tmp_path, capsys):
    folder = tmp_path / "images"
    shutil.copytree(scenes / "images" / "train", folder)
    Image.new("RGB", (32, 48)).save(folder / "000002.png")
    spec = f"coco:{folder},{scenes / 'annotations' / 'instances_train.json'}"
    assert main(["train", *MODEL, "--data", spec, "--run-dir", str(tmp_path / "r"),
                 *FAST]) == 2
    err = capsys.readouterr().err
    assert "000002.png: image is 32x48 but its annotation says 64x64" in err
