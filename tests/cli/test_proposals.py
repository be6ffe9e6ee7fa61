"""``modernvision proposals`` on real files: colour, grey, RGBA, 16-bit, tiny and broken ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from modernvision.classic.selective_search import selective_search
from modernvision.cli import main
from modernvision.data import load_photo


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return np.ascontiguousarray(load_photo("astronaut")[40:200, 150:310])


def _listed(path) -> torch.Tensor:
    rows = [[float(v) for v in line.split()] for line in path.read_text().splitlines()]
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def test_draws_lists_and_reports_the_proposals(face, tmp_path, capsys):
    src = tmp_path / "face.png"
    Image.fromarray(face).save(src)
    out = tmp_path / "out"
    assert main(["proposals", str(src), "--out", str(out), "--top", "7"]) == 0
    printed = capsys.readouterr().out
    expected = selective_search(face, mode="fast")
    assert f"face.png: {len(expected)} proposals in " in printed and "drew the best 7" in printed
    torch.testing.assert_close(_listed(out / "face_proposals.txt"), expected[:7])
    drawn = np.asarray(Image.open(out / "face_proposals.png"))
    assert drawn.shape == face.shape and not np.array_equal(drawn, face)
    x1, y1 = expected[0, :2].int().tolist()
    assert (drawn[y1, x1] == [0, 255, 0]).all()  # the best box's corner is drawn in green


def test_grey_rgba_and_16_bit_files(face, tmp_path, capsys):
    grey = np.asarray(Image.fromarray(face).convert("L"))
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([face, np.full(face.shape[:2], 200, np.uint8)])).save(
        tmp_path / "rgba.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    files = [str(tmp_path / n) for n in ("grey.png", "rgba.png", "grey16.png")]
    assert main(["proposals", *files, "--out", str(tmp_path), "--mode", "single"]) == 0
    assert capsys.readouterr().out.count("proposals in") == 3
    torch.testing.assert_close(_listed(tmp_path / "grey_proposals.txt"),
                               selective_search(grey, mode="single")[:100])
    torch.testing.assert_close(_listed(tmp_path / "grey16_proposals.txt"),
                               selective_search(grey, mode="single")[:100])
    torch.testing.assert_close(_listed(tmp_path / "rgba_proposals.txt"),
                               selective_search(face, mode="single")[:100])


def test_a_one_pixel_image_has_the_image_as_its_only_proposal(tmp_path, capsys):
    Image.fromarray(np.full((1, 1, 3), 90, np.uint8)).save(tmp_path / "dot.png")
    assert main(["proposals", str(tmp_path / "dot.png"), "--out", str(tmp_path)]) == 0
    assert "1 proposals in" in capsys.readouterr().out
    assert (tmp_path / "dot_proposals.txt").read_text() == "0 0 1 1\n"


def test_min_box_side_can_leave_no_proposal(face, tmp_path, capsys):
    Image.fromarray(face[:10, :10]).save(tmp_path / "small.png")
    assert main(["proposals", str(tmp_path / "small.png"), "--out", str(tmp_path),
                 "--min-box-side", "20"]) == 0
    assert "0 proposals in" in capsys.readouterr().out
    assert (tmp_path / "small_proposals.txt").read_text() == ""


@pytest.mark.parametrize("content, message", [(b"", "not an image"),
                                              (b"GIF89a-truncated", "not an image")])
def test_unreadable_and_missing_files_are_one_line_errors(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    assert main(["proposals", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.png" in err and "Traceback" not in err
    assert main(["proposals", str(tmp_path / "nope.jpg"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["proposals", str(bad), "--out", str(tmp_path), "--top", "0"]) == 2
    assert "--top" in capsys.readouterr().err
