"""NAS: the controller's samples, its REINFORCE update, search and random search through the
CLI on a tiny budget, and the best child rebuilt with create."""

import json

import torch

from modernvision.cli import main
from modernvision.models import create
from modernvision.nas import Controller, NASChild, SearchSpace, validate_arch


def test_controller_samples_valid_architectures_with_log_probs():
    space = SearchSpace(num_layers=5)
    ctrl = Controller(space)
    gen = torch.Generator().manual_seed(0)
    arch, log_prob, entropy = ctrl.sample(gen)
    assert validate_arch(arch) == arch and len(arch) == 5
    assert all(a["filters"] in space.filters and a["kernel"] in space.kernels for a in arch)
    assert log_prob < 0 and entropy > 0
    (-log_prob).backward()  # REINFORCE's gradient reaches every decision's parameters
    assert all(p.grad is not None for p in ctrl.parameters())


def test_child_skips_concatenate_channels():
    arch = [{"filters": 4, "kernel": 3, "skips": []}, {"filters": 6, "kernel": 5, "skips": []},
            {"filters": 8, "kernel": 3, "skips": [0]}, {"filters": 5, "kernel": 7,
                                                        "skips": [0, 1]}]
    child = NASChild(arch, num_classes=3)
    assert child.layers[2].conv.in_channels == 6 + 4
    assert child.layers[3].conv.in_channels == 8 + 4 + 6
    assert child(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def test_nas_cli_writes_children_and_best_is_rebuildable(tmp_path, capsys):
    for method in ("controller", "random"):
        out = tmp_path / method
        assert main(["nas", "--budget", "2", "--out", str(out), "--search", method,
                     "--data", "digits", "--train-images", "64", "--val-images", "32",
                     "--epochs", "1", "--layers", "3"]) == 0
        rows = [json.loads(line) for line in (out / "children.jsonl").read_text().splitlines()]
        assert len(rows) == 2 and all(0 <= r["val_acc"] <= 1 for r in rows)
        best = json.loads((out / "best.json").read_text())
        assert best["val_acc"] == max(r["val_acc"] for r in rows)
        model = create("nas_cnn", arch=best["arch"], num_classes=10)
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)
    assert main(["nas", "--budget", "1", "--out", str(tmp_path / "controller")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
