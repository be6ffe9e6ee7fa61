"""The sequences demo section runs and reports equalities."""

from modernvision.demos.sequences import demo_section


def test_demo_section(tmp_path):
    lines = demo_section(tmp_path)
    assert "beam 1 == greedy: True" in "\n".join(lines)
    assert (tmp_path / "digit_strings.png").is_file()
