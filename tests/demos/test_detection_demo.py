"""The detection demo section: the shipped weights are small, load into the registered model,
and detect on fresh scenes within the demo's time budget."""

import time

import pytest
import torch

from modernvision.demos import detection
from modernvision.models import create


def test_shipped_record_format_round_trips(tmp_path):
    torch.manual_seed(0)
    model = create("fasterrcnn_mobilenet_v2_050_fpn", num_classes=3, min_size=64,
                   max_size=64).eval()
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path = tmp_path / "w.pt"
    torch.save({"model_name": "fasterrcnn_mobilenet_v2_050_fpn", "num_classes": 3,
                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
                "model_kwargs": {"min_size": 64, "max_size": 64}, "state_dict": state,
                "trained": "test"}, path)
    loaded, blob = detection.load_detector(path)
    assert blob["categories"][1]["name"] == "b" and not loaded.training
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v.to(state[k].dtype), state[k], rtol=0, atol=0)


@pytest.mark.skipif(not detection.ASSET.is_file(), reason="no shipped detection weights")
def test_demo_section_detects_on_fresh_scenes(tmp_path):
    assert detection.ASSET.stat().st_size < 5e6
    start = time.perf_counter()
    lines = detection.demo_section(tmp_path)
    seconds = time.perf_counter() - start
    assert any("AP50" in line for line in lines)
    assert (tmp_path / "detection.png").is_file()
    assert seconds < 60  # 15 s on 2 idle cores; generous for a shared machine
