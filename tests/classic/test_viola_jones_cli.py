"""``modernvision faces`` / ``train-cascade`` on real files, including the user's mistakes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from modernvision.classic.viola_jones import Cascade, opencv_cascade_path
from modernvision.cli import main
from modernvision.data import load_photo


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    cv2.imwrite(str(path), load_photo("astronaut")[..., ::-1])  # a colour file
    return path


def test_faces_on_a_colour_image_prints_and_draws_opencvs_box(astronaut_png, tmp_path, capsys):
    rc = main(["faces", str(astronaut_png), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    ref = cv2.CascadeClassifier(str(opencv_cascade_path("frontalface_default")))
    gray = cv2.cvtColor(cv2.imread(str(astronaut_png)), cv2.COLOR_BGR2GRAY)
    for x, y, w, h in np.asarray(ref.detectMultiScale(gray)).reshape(-1, 4).tolist():
        assert f"  {x} {y} {w} {h}\n" in out
    drawn = cv2.imread(str(tmp_path / "astronaut_faces.png"))
    assert drawn is not None and drawn.shape == (512, 512, 3)
    # the box outline is drawn in red (BGR 0, 0, 255) along its top edge
    assert (drawn[66, 200] == [0, 0, 255]).all()


def test_faces_with_our_cascade_and_paper_mode(astronaut_png, capsys):
    assert main(["faces", str(astronaut_png), "--cascade", "ours:lfw_24", "--mode", "paper"]) == 0
    assert "astronaut.png:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty (0 bytes)"),
        (b"this is not an image\n", "not an image"),
    ],
)
def test_faces_rejects_non_images_clearly(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    assert main(["faces", str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.png" in err and "Traceback" not in err


def test_faces_missing_file_and_unknown_cascade(astronaut_png, tmp_path, capsys):
    assert main(["faces", str(tmp_path / "nope.jpg")]) == 2
    assert "nope.jpg does not exist" in capsys.readouterr().err
    assert main(["faces", str(astronaut_png), "--cascade", "opencv:frontalfase_default"]) == 2
    assert "frontalface_default" in capsys.readouterr().err


def test_train_cascade_command_writes_a_cascade(tmp_path, capsys):
    out = tmp_path / "c.json"
    rc = main(
        [
            "train-cascade",
            "--out",
            str(out),
            "--stages",
            "1",
            "--pool-size",
            "300",
            "--negatives",
            "200",
            "--max-weak",
            "4",
        ]
    )
    assert rc == 0 and out.is_file()
    text = capsys.readouterr().out
    assert "held-out detection rate" in text and "false positives per window" in text
    cascade = Cascade.load(out)
    assert cascade.num_stages == 1 and cascade.features_per_stage[0] <= 4
    assert cascade.meta["held_out"]["faces"] == 30
