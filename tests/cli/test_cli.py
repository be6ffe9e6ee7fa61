"""The ``modernvision`` command: subcommands, clear errors, train -> eval -> predict."""

import json

import numpy as np
import pytest
from PIL import Image

from modernvision.cli import main


def test_models_lists_registry_with_params(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "compact_cnn" in out and "resnet50" in out and "25,557,032" in out


def test_summary_prints_table(capsys):
    assert main(["summary", "compact_cnn", "--input", "1x28x28"]) == 0
    out = capsys.readouterr().out
    assert "Conv2d" in out and "total params" in out and "RF" in out


@pytest.mark.parametrize(
    "argv, needle",
    [(["summary", "resnet5"], "Did you mean: resnet50"),
     (["train", "--model", "resnt18", "--data", "digits"], "resnet18"),
     (["train", "--data", "fashon-mnist"], "fashion-mnist"),
     (["data", "fetch", "digts"], "digits"),
     (["summary", "compact_cnn", "--input", "1x28"], "--input 1x28")],
)
def test_user_mistakes_are_one_clear_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_train_eval_predict_roundtrip(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "compact_cnn", "--data", "digits", "--epochs", "2",
                 "--lr", "3e-3", "--run-dir", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "compact_cnn" and cfg["trainer"]["epochs"] == 2
    assert main(["eval", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    saved = json.loads((run / "test_metrics.json").read_text())
    assert metrics["test_acc"] == pytest.approx(saved["test_acc"])
    assert metrics["test_acc"] > 0.5  # 2 epochs on 8x8 digits already beat chance by far

    from modernvision.data import load_arrays

    d = load_arrays("digits", "test")
    img = tmp_path / "digit.png"
    Image.fromarray(d.images[0]).save(img)
    assert main(["predict", str(run), str(img)]) == 0
    line = capsys.readouterr().out
    assert "digit.png" in line
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x00" * 10)
    assert main(["predict", str(run), str(bad)]) == 2
    assert "bad.png" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_data_list_and_fetch(capsys):
    assert main(["data", "list"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    assert main(["data", "fetch", "digits"]) == 0
    assert "digits: train 1257" in capsys.readouterr().out


def test_demo_quick_classify(tmp_path, capsys):
    assert main(["demo", "--quick", "--sections", "classify", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    run = tmp_path / "fashion-mnist-compact_cnn"
    assert (run / "confusion_matrix.png").stat().st_size > 0
    cm = np.loadtxt(run / "confusion_matrix.csv", delimiter=",")
    assert cm.shape == (10, 10) and cm.sum() == 10000
    assert (tmp_path / "report.txt").exists()


def test_models_compound_scaling_table(capsys):
    assert main(["models", "--compound-scaling"]) == 0
    out = capsys.readouterr().out
    assert "b7" in out and "600" in out  # the released B7 resolution beside the formula's
