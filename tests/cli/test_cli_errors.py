"""User mistakes get one clear line and exit code 2 — never a traceback; small conveniences."""

import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from modernvision.cli import main

TRAIN = ["train", "--model", "compact_cnn", "--data", "digits", "--epochs", "1",
         "--train-subset", "128", "--eval-subset", "30", "--no-progress"]


def _one_line_error(capsys, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert err.startswith("modernvision ") and needle in err, err
    return err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "run"
    assert main([*TRAIN, "--run-dir", str(path)]) == 0
    return path


@pytest.fixture
def run_copy(run, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(run, dst)
    return dst


@pytest.mark.parametrize("extra, needle", [
    (["--eval-subset", "0"], "--eval-subset must be a positive integer"),
    (["--train-subset", "0"], "--train-subset must be a positive integer"),
    (["--label-smoothing", "2"], "--label-smoothing must be in [0, 1)"),
    (["--image-size", "0"], "--image-size must be a positive integer"),
    (["--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--device", "tpu"], "--device must be cpu, cuda or cuda:N"),
    (["--optimizer", "sgd", "--momentum", "0.5"], "--momentum 0.5 has no effect"),
    (["--scheduler", "cosin"], "Did you mean: cosine"),
    (["--model-arg", "nokey"], "--model-arg must be KEY=VALUE"),
    (["--extend-epochs", "2"], "--extend-epochs needs --resume"),
])
def test_bad_train_flags(extra, needle, tmp_path, capsys):
    out = tmp_path / "r"
    assert main([*TRAIN, "--run-dir", str(out), *extra]) == 2
    _one_line_error(capsys, needle)
    assert not out.exists()  # nothing is written before the settings are checked


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it(tmp_path, capsys):
    assert main([*TRAIN, "--run-dir", str(tmp_path / "r"), "--device", "cuda"]) == 2
    _one_line_error(capsys, "CUDA is not available")


def test_unknown_model_names_close_matches_not_the_whole_list(capsys):
    assert main(["train", "--model", "resnt18"]) == 2
    err = _one_line_error(capsys, "Did you mean: resnet18")
    assert "modernvision models" in err and "vit_l_32" not in err


@pytest.mark.parametrize("damage", ["truncate", "junk", "empty"])
def test_damaged_weights_for_eval_predict_and_resume(run_copy, damage, capsys, tmp_path):
    def hurt(path):
        data = path.read_bytes()
        path.write_bytes({"truncate": data[: len(data) // 2], "junk": b"not torch" * 10,
                          "empty": b""}[damage])

    hurt(run_copy / "model_final.pt")
    img = tmp_path / "x.png"
    Image.new("L", (8, 8), 128).save(img)
    assert main(["eval", str(run_copy)]) == 2
    _one_line_error(capsys, "model_final.pt")
    assert main(["predict", str(run_copy), str(img)]) == 2
    _one_line_error(capsys, "model_final.pt")
    hurt(run_copy / "checkpoints" / "last.pt")
    (run_copy / "test_metrics.json").unlink()  # unfinished: --resume reads the checkpoint
    assert main(["train", "--resume", str(run_copy)]) == 2
    _one_line_error(capsys, "last.pt")


def test_truncated_config_names_the_file(run_copy, capsys):
    cfg = run_copy / "config.json"
    cfg.write_text(cfg.read_text()[:40])
    for argv in (["eval", str(run_copy)], ["train", "--resume", str(run_copy)]):
        assert main(argv) == 2
        _one_line_error(capsys, "config.json")


def test_predict_topk_and_folders(run, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.new("L", (8, 8), 60 * i).save(folder / f"{i}.png")
    for k in ("-2", "0"):
        assert main(["predict", str(run), str(folder / "0.png"), "--topk", k]) == 2
        _one_line_error(capsys, "--topk must be a positive integer")
    assert main(["predict", str(run), str(folder), "--topk", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.count(" 0.") + line.count(" 1.") == 2 for line in lines)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(run), str(empty)]) == 2
    _one_line_error(capsys, "is a folder with no image files")
    assert main(["predict", str(run), str(folder), "--score-thresh", "0.3"]) == 2
    _one_line_error(capsys, "--score-thresh does not apply to classification runs")


def test_version_bare_command_and_fast_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and "modernvision 0." in capsys.readouterr().out
    assert main([]) == 0 and "COMMAND" in capsys.readouterr().out
    code = ("import sys; from modernvision.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip() == "False"  # --help and the parser never import torch


def test_every_train_flag_has_help_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    import re

    flags = re.findall(r"^  (--[a-z-]+)", text, flags=re.M)
    assert len(flags) > 25
    blocks = re.split(r"\n  (?=--)", text.split("options for every task:")[1])
    for block in blocks:
        if block.startswith("--"):
            assert "default" in block, block
