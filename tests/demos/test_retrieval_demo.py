"""The retrieval demo section runs end to end (slow: it trains for a few seconds)."""

import pytest


@pytest.mark.slow
def test_retrieval_demo_section(tmp_path):
    from modernvision.demos.retrieval import demo_section

    lines = demo_section(tmp_path)
    assert "Recall@1" in lines[0] and (tmp_path / "gallery.npz").is_file()
