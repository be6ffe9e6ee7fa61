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
from modernvision.demos.segmentation import ASSET as SHIPPED
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


def test_median_frequency_class_weighting(scenes, tmp_path, capsys) -> None:
    from modernvision.data.io import read_label_map
    from modernvision.losses import label_frequencies, median_frequency_weights

    run = tmp_path / "run"
    assert main(["train", "--model", "semantic_fpn_mobilenet_v2_050", "--data",
                 f"scenes:{scenes}", "--epochs", "1", "--batch-size", "3", "--lr", "0.01",
                 "--class-weighting", "median_frequency", "--run-dir", str(run),
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    meta = json.loads((run / "config.json").read_text())["meta"]
    maps = [torch.from_numpy(read_label_map(p).astype(np.int64))
            for p in sorted((scenes / "semantic" / "train").glob("*.png"))]
    expected = median_frequency_weights(label_frequencies(maps, len(meta["classes"])))
    assert meta["class_weights"] == pytest.approx(expected.tolist(), abs=1e-6)
    from modernvision.engine.jobs import load_run

    reloaded = load_run(run).model.class_weight
    torch.testing.assert_close(reloaded, torch.tensor(meta["class_weights"]))
    assert main(["eval", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 3
    assert main(["train", "--model", "unet_padded", "--data", f"scenes:{scenes}",
                 "--class-weighting", "inverse", "--run-dir", str(tmp_path / "r")]) == 2
    assert "--class-weighting" in capsys.readouterr().err


def test_shipped_semantic_fpn_part_of_the_demo(tmp_path) -> None:
    from modernvision.demos.segmentation import shipped_section
    from modernvision.models import create

    assert "no shipped weights" in shipped_section(tmp_path, asset=tmp_path / "none.pt")[0]
    model = create("semantic_fpn_mobilenet_v2_050", num_classes=23)
    classes = [f"c{k}" for k in range(23)]
    path = tmp_path / "asset.pt"
    torch.save({"model_name": "semantic_fpn_mobilenet_v2_050", "classes": classes,
                "model_kwargs": {}, "image_size": None, "trained": "untrained",
                "state_dict": {k: v.half() if v.is_floating_point() else v
                               for k, v in model.state_dict().items()}}, path)
    lines = shipped_section(tmp_path, asset=path)
    assert "mIoU" in lines[1] and "(untrained)" in lines[0]
    assert (tmp_path / "semantic_fpn.png").is_file()
    # A shipped logit offset is added before the argmax: one that outweighs everything for
    # class 5 labels every pixel 5, so the pixel accuracy is the share of class-5 pixels.
    blob = torch.load(path, weights_only=True)
    blob["logit_offset"] = torch.zeros(23).index_fill_(0, torch.tensor([5]), 1e6)
    torch.save(blob, path)
    lines = shipped_section(tmp_path, asset=path)
    from modernvision.data.io import read_label_map

    maps = np.stack([read_label_map(p) for p in
                     sorted((tmp_path / "semantic-scenes" / "semantic" / "test").glob("*.png"))])
    share = (maps == 5).sum() / (maps != 255).sum()
    assert f"pixel acc {share:.3f}" in lines[1], (share, lines)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped Semantic FPN weights")
def test_shipped_semantic_fpn_segments_fresh_scenes(tmp_path) -> None:
    import re

    from modernvision.demos.segmentation import shipped_section

    assert SHIPPED.stat().st_size < 5e6
    lines = shipped_section(tmp_path)
    miou = float(re.search(r"mIoU (\d\.\d+)", lines[1]).group(1))
    # Scenes no bench split holds; these weights scored mIoU of about 0.6 on the bench's test
    # scenes (bench/segmentation.md), so well above 0.4 unless loading or preprocessing broke.
    assert miou > 0.4, lines
    assert (tmp_path / "semantic_fpn.png").is_file()
