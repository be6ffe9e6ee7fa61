"""A 2-process gloo run (torchrun) ends with the same weights as 1 process, same global batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("_ddp_script.py")


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_process_gloo_equals_one_process(tmp_path):
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    subprocess.run([sys.executable, str(SCRIPT), str(one)], check=True, env=env, timeout=300)
    port = 29500 + os.getpid() % 1000
    res = subprocess.run(
        [*_torchrun(), "--nproc_per_node", "2", "--master_port", str(port), str(SCRIPT),
         str(two)],
        env=env, timeout=300, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = torch.load(one), torch.load(two)
    assert a["world"] == 1 and b["world"] == 2
    for k, v in a["model"].items():
        torch.testing.assert_close(v, b["model"][k], atol=1e-5, rtol=0)
    # metrics reduced across ranks: the same validation accuracy on the full val set
    assert a["history"][-1]["val_acc"] == pytest.approx(b["history"][-1]["val_acc"], abs=1e-9)
    assert a["history"][-1]["train_loss"] == pytest.approx(b["history"][-1]["train_loss"],
                                                           abs=1e-4)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_torchrun_cli_speaks_once_and_ranks_agree_on_the_run_folder(tmp_path):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    port = 29600 + os.getpid() % 1000
    res = subprocess.run(
        [*_torchrun(), "--nproc_per_node", "2", "--master_port", str(port), "-m", "modernvision",
         "train", "--model", "compact_cnn", "--data", "digits", "--epochs", "2",
         "--train-subset", "256", "--eval-subset", "60", "--batch-size", "64", "--no-progress"],
        env=env, timeout=300, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert sum(line.startswith("test accuracy") for line in lines) == 1, res.stdout
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1", "2"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["compact_cnn-digits"]
