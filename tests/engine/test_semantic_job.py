"""The semantic job end to end through the CLI on tiny scenes: train, eval (four scores),
predict (colour-coded masks with a legend), and the evaluator against the metrics module."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from modernvision.cli import main
from modernvision.data.scenes import SceneConfig, make_scenes
from modernvision.engine.jobs.segmentation import SemanticEvaluator
from modernvision.metrics.segmentation import SegmentationMetrics

CONFIG = SceneConfig(height=48, width=64, min_objects=1, max_objects=3, min_object_size=12,
                     max_object_size=30)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    make_scenes(root, 6, seed=0, split="train", config=CONFIG)
    make_scenes(root, 3, seed=1, split="val", config=CONFIG)
    return root


@pytest.mark.parametrize("model, args", [
    ("fcn8s_vgg16", ["--model-arg", "width_mult=0.0625"]),
    ("unet_padded", ["--model-arg", "base_width=4", "--image-size", "32"]),
    ("deeplabv3_resnet18", []),
])
def test_train_eval_predict(scenes, tmp_path, capsys, model, args) -> None:
    run = tmp_path / "run"
    assert main(["train", "--model", model, "--data", f"scenes:{scenes}", "--epochs", "1",
                 "--batch-size", "3", "--lr", "0.01", "--run-dir", str(run), "--device", "cpu",
                 *args]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "test mIoU" in line and "fwIoU" in line and "on 3 images" in line
    assert (run / "test_per_class.json").is_file()
    assert main(["eval", str(run)]) == 0
    scores = json.loads(capsys.readouterr().out)
    for key in ("test_pixel_acc", "test_mean_acc", "test_miou", "test_fwiou", "test_loss"):
        assert 0 <= scores[key] <= (1 if key != "test_loss" else 100), key
    assert scores["images"] == 3
    image = scenes / "images" / "val" / sorted((scenes / "images" / "val").iterdir())[0].name
    assert main(["predict", str(run), str(image), "--out", str(tmp_path / "pred")]) == 0
    assert "%" in capsys.readouterr().out
    drawn = np.asarray(Image.open(tmp_path / "pred" / f"{image.stem}.png"))
    assert drawn.shape[0] >= 48 and drawn.shape[1] > 64  # the legend sits to the right


def test_flags_of_other_jobs_are_refused(scenes, tmp_path, capsys) -> None:
    assert main(["train", "--model", "fcn8s_vgg16", "--data", f"scenes:{scenes}",
                 "--min-size", "32", "--run-dir", str(tmp_path / "r")]) == 2
    assert "does not apply" in capsys.readouterr().err
    assert main(["train", "--model", "fcn8s_vgg16", "--data", "digits",
                 "--run-dir", str(tmp_path / "r")]) == 2


def test_evaluator_matches_metrics_module() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 9, 7, generator=g)
    target = torch.randint(0, 4, (2, 9, 7), generator=g)
    target[0, 0] = 255
    ev = SemanticEvaluator(4)
    ev.update(logits, target)
    out = ev.compute()
    ref = SegmentationMetrics(4, ignore_index=255)
    ref.update(logits, target)
    expected = ref.compute()
    for k in ("pixel_acc", "mean_acc", "miou", "fwiou"):
        assert out[k] == pytest.approx(expected[k])
    valid = target != 255
    ce = torch.nn.functional.cross_entropy(logits, target, ignore_index=255)
    assert out["loss"] == pytest.approx(float(ce), rel=1e-5)
    assert valid.sum() == 2 * 9 * 7 - 7


def test_demo_section(tmp_path) -> None:
    from modernvision.demos.segmentation import demo_section

    lines = demo_section(tmp_path, epochs=1)
    assert any("mIoU" in line for line in lines)
    assert (tmp_path / "checkerboard.png").is_file()
    assert len(list((tmp_path / "predictions").glob("*.png"))) == 2
