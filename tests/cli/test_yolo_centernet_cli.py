"""YOLOv3 and CenterNet through the same train / eval / predict commands as Faster R-CNN, and
``modernvision anchors`` on tiny scenes written in tmp_path."""

import json
import re

import pytest

from modernvision.cli import main
from modernvision.data.scenes import SceneConfig, ScenePaths, make_scenes

CONFIG = SceneConfig(height=64, width=64, min_objects=1, max_objects=3, min_object_size=16,
                     max_object_size=28)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    for split, n, seed in (("train", 6, 0), ("val", 2, 1), ("test", 2, 2)):
        make_scenes(root, n, seed, split=split, config=CONFIG)
    return root


MODELS = {
    "yolov3_small": ["--model-arg", "neck_widths=[8,16,32]"],
    "centernet_resnet18": ["--model-arg", "up_channels=[16,16,16]", "--model-arg",
                           "head_channels=8"],
}


@pytest.mark.parametrize("model", list(MODELS))
def test_train_eval_predict(model, scenes, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--model", model, "--data", f"scenes:{scenes}", "--epochs", "1",
            "--batch-size", "3", "--min-size", "64", "--optimizer", "adamw", "--lr", "1e-3",
            "--run-dir", str(run), "--no-progress", *MODELS[model]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "test AP" in out and "APs" in out
    assert json.loads((run / "config.json").read_text())["model"] == model
    assert main(["eval", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["images"] == 2 and 0 <= metrics["test_AP50"] <= 1
    image = next(ScenePaths(scenes, "test").images.iterdir())
    assert main(["predict", str(run), str(image), "--score-thresh", "0.0",
                 "--out", str(tmp_path / "drawn")]) == 0
    assert image.name in capsys.readouterr().out
    assert (tmp_path / "drawn" / f"{image.stem}.png").is_file()


def test_anchors_command_prints_anchors_that_build_yolov3(scenes, tmp_path, capsys):
    assert main(["anchors", "--data", f"scenes:{scenes}", "-k", "9"]) == 0
    out = capsys.readouterr().out
    assert "mean IoU of each box with its best anchor" in out
    assert len(re.findall(r"^\s+[\d.]+ x\s+[\d.]+$", out, re.M)) == 9
    arg = re.search(r"--model-arg (anchors=\S+)", out).group(1)
    from modernvision.models import create

    model = create("yolov3_small", num_classes=21,
                   anchors=json.loads(arg.partition("=")[2]))
    assert model.anchors.shape == (3, 3, 2)
    run = tmp_path / "run"
    assert main(["train", "--model", "yolov3_small", "--data", f"scenes:{scenes}",
                 "--epochs", "1", "--batch-size", "3", "--min-size", "64", "--train-subset",
                 "3", "--run-dir", str(run), "--no-progress", "--model-arg", arg,
                 "--model-arg", "neck_widths=[8,16,32]"]) == 0
    capsys.readouterr()
    # Rescaled as a detector at 128 pixels would see them: twice the sizes.
    assert main(["anchors", "--data", f"scenes:{scenes}", "-k", "2", "--min-size", "128"]) == 0
    assert "scaled by 128/416" in capsys.readouterr().out
    assert main(["anchors", "--data", f"scenes:{scenes}", "-k", "500"]) == 2
    assert "-k 500" in capsys.readouterr().err
