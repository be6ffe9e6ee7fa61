"""The instance / panoptic demo section runs and reports both parts."""

from modernvision.demos.instance import demo_section


def test_demo_section(tmp_path):
    lines = demo_section(tmp_path)
    assert len(lines) == 2 and "RoIAlign" in lines[0]
    assert "PQ 1.000" in lines[1]
    assert (tmp_path / "panoptic_1.png").is_file()
