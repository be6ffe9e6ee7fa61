"""SSD and RetinaNet train, evaluate and predict through the same commands as Faster R-CNN."""

import json

import pytest

from modernvision.cli import main


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    for split, n, seed in (("train", 6, 0), ("val", 2, 1)):
        assert main(["data", "make-scenes", "--out", str(root), "--images", str(n), "--seed",
                     str(seed), "--split", split, "--size", "64", "--max-objects", "3"]) == 0
    return root


@pytest.mark.parametrize(("model", "extra"), [
    ("retinanet_resnet18_fpn", ["--min-size", "64", "--max-size", "64",
                                "--model-arg", "loss=bce"]),
    ("ssd256_resnet18", ["--model-arg", "size=[64, 64]",
                         "--model-arg", "scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]"]),
])
def test_train_eval_predict(scenes, tmp_path, capsys, model, extra):
    run = tmp_path / "run"
    assert main(["train", "--model", model, "--data", f"scenes:{scenes}", "--epochs", "1",
                 "--batch-size", "2", "--lr", "1e-3", "--optimizer", "adamw", "--run-dir",
                 str(run), "--no-progress", *extra]) == 0
    assert "test AP" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == model
    assert main(["eval", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "AP50" in printed
    image = next((scenes / "images" / "val").iterdir())
    assert main(["predict", str(run), str(image), "--score-thresh", "0.0", "--out",
                 str(tmp_path / "drawn")]) == 0
    out = capsys.readouterr().out
    assert f"{image}:" in out and "objects" in out
    assert (tmp_path / "drawn" / f"{image.stem}.png").is_file()
