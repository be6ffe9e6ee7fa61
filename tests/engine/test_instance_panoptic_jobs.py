"""`modernvision train / eval / predict` for instance (Mask R-CNN) and panoptic (Panoptic FPN)
models on tiny scenes written in a temporary folder."""

import json

import numpy as np
import pytest
from PIL import Image

from modernvision.cli import main
from modernvision.data.scenes import SceneConfig, make_scenes

CONFIG = SceneConfig(height=64, width=64, min_objects=1, max_objects=3, min_object_size=16,
                     max_object_size=32)
SMALL = ["--model-arg", "rpn_pre_nms_top_n_train=100", "--model-arg",
         "rpn_post_nms_top_n_train=50", "--model-arg", "rpn_pre_nms_top_n_test=100",
         "--model-arg", "rpn_post_nms_top_n_test=30", "--model-arg",
         "box_batch_size_per_image=32", "--model-arg", "rpn_batch_size_per_image=64"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    make_scenes(root, 4, seed=0, split="train", config=CONFIG)
    make_scenes(root, 2, seed=1, split="val", config=CONFIG)
    make_scenes(root, 2, seed=2, split="test", config=CONFIG)
    return root


def _train(model, scenes, run, capsys):
    argv = ["train", "--model", model, "--data", f"scenes:{scenes}", "--epochs", "1",
            "--batch-size", "2", "--min-size", "64", "--max-size", "64", "--run-dir", str(run),
            "--no-progress", "--device", "cpu", *SMALL]
    assert main(argv) == 0
    return capsys.readouterr().out


def test_instance_train_eval_predict(scenes, tmp_path, capsys):
    run = tmp_path / "mask"
    out = _train("maskrcnn_resnet18_fpn", scenes, run, capsys)
    assert "mask AP" in out and "box AP" in out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "maskrcnn_resnet18_fpn"
    assert main(["eval", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"test_AP", "test_mask_AP", "test_mask_AP50"} <= set(metrics)
    assert metrics["images"] == 2
    image = scenes / "images" / "test" / "000001.png"
    drawn = tmp_path / "drawn"
    assert main(["predict", str(run), str(image), "--out", str(drawn),
                 "--score-thresh", "0.0"]) == 0
    assert "000001.png" in capsys.readouterr().out
    assert np.asarray(Image.open(drawn / "000001.png")).shape == (64, 64, 3)


def test_panoptic_train_eval_predict(scenes, tmp_path, capsys):
    run = tmp_path / "panoptic"
    out = _train("panoptic_fpn_resnet18", scenes, run, capsys)
    assert "PQ" in out
    assert main(["eval", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"test_PQ", "test_SQ", "test_RQ", "test_PQ_things", "test_PQ_stuff",
            "test_mask_AP"} <= set(metrics)
    assert 0 <= metrics["test_PQ"] <= 1
    image = scenes / "images" / "test" / "000001.png"
    drawn = tmp_path / "drawn"
    assert main(["predict", str(run), str(image), "--out", str(drawn)]) == 0
    line = capsys.readouterr().out
    assert "000001.png" in line and "stuff" in line
    assert np.asarray(Image.open(drawn / "000001.png")).shape == (64, 64, 3)
    # The COCO panoptic output, read back by the reader.
    from modernvision.data.formats.coco import read_coco_panoptic

    records, categories = read_coco_panoptic(drawn / "panoptic.json")
    assert len(records) == 1 and records[0].load_ids(drawn / "panoptic").shape == (64, 64)


def test_panoptic_refuses_geometric_augmentation(scenes, tmp_path, capsys):
    argv = ["train", "--model", "panoptic_fpn_resnet18", "--data", f"scenes:{scenes}",
            "--augmentation", "ssd", "--run-dir", str(tmp_path / "r")]
    assert main(argv) == 2
    assert "--augmentation ssd" in capsys.readouterr().err


def test_init_from_a_detector_run(scenes, tmp_path, capsys):
    """`train --init RUN`: a Mask R-CNN starts from a Faster R-CNN run of the same backbone —
    every detector tensor is loaded, the mask branch stays freshly initialised."""
    import torch

    det = tmp_path / "det"
    _train("fasterrcnn_mobilenet_v2_050_fpn", scenes, det, capsys)
    detector = torch.load(det / "model_final.pt", weights_only=False)["model"]
    run = tmp_path / "mask"
    argv = ["train", "--model", "maskrcnn_mobilenet_v2_050_fpn", "--data", f"scenes:{scenes}",
            "--epochs", "1", "--batch-size", "2", "--min-size", "64", "--max-size", "64",
            "--run-dir", str(run), "--no-progress", "--device", "cpu", "--init", str(det),
            "--lr", "1e-12", "--warmup-epochs", "0", *SMALL]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"--init {det}: {len(detector)} tensors loaded" in out
    assert json.loads((run / "config.json").read_text())["init"] == str(det)
    trained = torch.load(run / "model_final.pt", weights_only=False)["model"]
    assert set(trained) > set(detector)
    # A learning rate of 1e-12 leaves the loaded weights where they were.
    weight = "backbone.fpn.inner_blocks.0.0.weight"
    torch.testing.assert_close(trained[weight], detector[weight], atol=1e-9, rtol=0)


def test_init_and_weights_together_is_an_error(scenes, tmp_path, capsys):
    argv = ["train", "--model", "maskrcnn_mobilenet_v2_050_fpn", "--data", f"scenes:{scenes}",
            "--init", str(tmp_path), "--weights", "torchvision",
            "--run-dir", str(tmp_path / "r")]
    assert main(argv) == 2
    assert "--init" in capsys.readouterr().err
