"""A detector under torchrun (2 gloo processes): it trains a step, each rank scores its shard of
the test split, the shards are gathered, and the AP rank 0 reports is the AP one process
computes on the same weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modernvision.data.scenes import SceneConfig, make_scenes
from modernvision.engine.jobs import evaluate_run


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.slow  # 70-90 s on the shared 2-core machine (two torch imports, two models)
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_process_detector_trains_and_gathers_its_evaluation(tmp_path):
    config = SceneConfig(height=64, width=64, min_objects=1, max_objects=3, min_object_size=16,
                         max_object_size=24)
    scenes = tmp_path / "scenes"
    for split, n, seed in (("train", 4, 0), ("val", 2, 1), ("test", 5, 2)):
        make_scenes(scenes, n, seed, split=split, config=config)
    run = tmp_path / "run"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    port = 29700 + os.getpid() % 1000
    args = ["--model", "fasterrcnn_resnet18_fpn", "--data", f"scenes:{scenes}", "--epochs", "1",
            "--batch-size", "4", "--min-size", "64", "--max-size", "64", "--run-dir", str(run),
            "--no-progress"]
    for kv in ("fpn_channels=32", "representation_size=64", "rpn_pre_nms_top_n_train=100",
               "rpn_post_nms_top_n_train=50", "rpn_pre_nms_top_n_test=100",
               "rpn_post_nms_top_n_test=50", "box_batch_size_per_image=32",
               "box_score_thresh=0.0", "box_detections_per_img=20"):
        args += ["--model-arg", kv]
    res = subprocess.run(
        [*_torchrun(), "--nproc_per_node", "2", "--master_port", str(port), "-m", "modernvision",
         "train", *args], env=env, timeout=240, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert sum(line.startswith("test AP") for line in lines) == 1, res.stdout
    assert "on 5 images" in res.stdout  # 3 + 2 images in the two shards, each counted once
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 1 and "val_AP50" in epochs[0]
    saved = json.loads((run / "test_metrics.json").read_text())
    one = evaluate_run(run)
    assert one["images"] == 5
    for key in ("AP", "AP50", "AP75", "AR100"):
        assert saved[f"test_{key}"] == pytest.approx(one[f"test_{key}"], abs=1e-9), key
    # rank 0 wrote every rank's detections: all 5 images, 20 boxes each
    gathered = json.loads((run / "test_detections.json").read_text())
    assert {r["image_id"] for r in gathered} == {1, 2, 3, 4, 5}
    assert len(gathered) == len(one["evaluator"].gathered_results) == 5 * 20

