"""The sequence job through the CLI: make-strings, train a tiny string reader, eval, predict."""

import json

import pytest
import torch

from modernvision.cli import main
from modernvision.models import create

TINY = ["--model-arg", "widths=[4,8,8]", "--model-arg", "d_model=16",
        "--model-arg", "dim_feedforward=16", "--model-arg", "num_layers=1"]


@pytest.fixture(scope="module")
def strings(tmp_path_factory):
    root = tmp_path_factory.mktemp("strings")
    for split, n in (("train", 24), ("val", 8)):
        assert main(["data", "make-strings", "--out", str(root), "--split", split, "--images",
                     str(n), "--max-digits", "3"]) == 0
    return root


@pytest.mark.parametrize("model", ["string_reader_transformer", "string_reader_rnn"])
def test_train_eval_predict(strings, tmp_path, model, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", model, "--data", f"strings:{strings}", "--epochs", "1",
                 "--batch-size", "8", "--run-dir", str(run), "--beam-size", "2",
                 *TINY]) == 0
    out = capsys.readouterr().out
    assert "test sequence accuracy" in out
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert 0 <= metrics["test_seq_acc"] <= 1 and metrics["test_cer"] >= 0
    assert main(["eval", str(run)]) == 0
    assert "val_" not in capsys.readouterr().out
    img = strings / "val" / "000000.png"
    assert main(["predict", str(run), str(img)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(img) + ":") and set(line.split(":")[-1].strip()) <= set(
        "0123456789")


def test_sequence_flags_are_checked(strings, tmp_path, capsys):
    assert main(["train", "--model", "string_reader_rnn", "--data", "fashion-mnist",
                 "--run-dir", str(tmp_path / "r")]) == 2
    assert "strings:DIR" in capsys.readouterr().err
    assert main(["train", "--model", "string_reader_rnn", "--data", f"strings:{strings}",
                 "--beam-size", "0", "--run-dir", str(tmp_path / "r")]) == 2
    assert "--beam-size must be a positive integer" in capsys.readouterr().err
    assert main(["train", "--model", "compact_cnn", "--beam-size", "2"]) == 2
    assert "--beam-size does not apply" in capsys.readouterr().err


def test_models_train_and_decode_every_parameter_gets_a_gradient():
    for name in ("string_reader_transformer", "string_reader_rnn"):
        torch.manual_seed(0)
        model = create(name, widths=[4, 8, 8, 8], attend_stages=3, d_model=16)
        x = torch.randn(2, 1, 32, 64)
        targets = torch.tensor([[1, 4, 5, 2, 0], [1, 6, 2, 0, 0]])
        model(x, targets)["loss_seq"].backward()
        assert all(p.grad is not None for p in model.parameters()), name
        model.eval()
        assert torch.equal(model.decode(x, beam_size=1), model(x))
        assert len(model.read(x, beam_size=3)) == 2
