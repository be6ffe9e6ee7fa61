"""The YOLOv3 / CenterNet demo section: runs, writes its picture, and its claims hold."""

import re

from modernvision.demos.yolo_centernet import demo_section


def test_demo_section(tmp_path):
    lines = demo_section(tmp_path)
    assert (tmp_path / "centernet_targets.png").is_file()
    kmeans, paper = map(float, re.findall(r"mean IoU ([\d.]+); .*?: ([\d.]+)", lines[0])[0])
    assert kmeans > paper
    n, peaks = map(int, re.search(r"(\d+) objects -> (\d+) heatmap peaks", lines[2]).groups())
    assert n == peaks and "worst IoU 1.0000" in lines[2]
