"""R-CNN and Fast R-CNN through ``modernvision train / eval / predict`` on tiny scenes: the
detection job drives them unchanged; proposals are computed once and cached; predict computes
a new image's proposals, grey and RGBA files included."""

import json

import numpy as np
import pytest
from PIL import Image

from modernvision.cli import main
from modernvision.data import SceneConfig, make_scenes

MODELS = {
    "rcnn_compact": ["--model-arg", "box_batch_size_per_image=16"],
    "fast_rcnn_resnet18_c4": ["--min-size", "64", "--max-size", "96",
                              "--model-arg", "representation_size=64"],
}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    make_scenes(root, 5, seed=0, split="train",
                config=SceneConfig(height=64, width=64, max_object_size=30, min_objects=1,
                                   max_objects=2))
    return root


@pytest.mark.parametrize("model", sorted(MODELS))
def test_train_eval_predict(model, scenes, tmp_path, capsys):
    run, cache = tmp_path / "run", tmp_path / "proposals"
    argv = ["train", "--model", model, "--data", f"scenes:{scenes}", "--epochs", "2",
            "--batch-size", "2", "--optimizer", "adamw", "--lr", "1e-3", "--run-dir", str(run),
            "--no-progress", "--model-arg", "proposal_top=30",
            "--model-arg", f"proposal_cache={cache}", *MODELS[model]]
    assert main(argv) == 0
    assert "test AP" in capsys.readouterr().out
    cached = list(cache.rglob("*.npy"))
    assert len(cached) == 5  # one file per image: 4 training, 1 held out
    assert main(["eval", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    saved = json.loads((run / "test_metrics.json").read_text())
    assert metrics["test_AP"] == pytest.approx(saved["test_AP"])
    assert len(list(cache.rglob("*.npy"))) == 5  # eval found them on disk

    rgb = np.asarray(Image.open(next((scenes / "images" / "train").iterdir())).convert("RGB"))
    grey, rgba = tmp_path / "grey.png", tmp_path / "rgba.png"
    Image.fromarray(rgb[..., 0]).save(grey)
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(rgba)
    assert main(["predict", str(run), str(grey), str(rgba), "--score-thresh", "0"]) == 0
    out = capsys.readouterr().out
    assert "grey.png" in out and "rgba.png" in out
    # The grey image is new (its proposals computed); the opaque RGBA one has a training
    # image's pixels once its alpha is dropped, so its proposals are found.
    assert len(list(cache.rglob("*.npy"))) == 6
