"""A real training process killed at random moments always resumes, never loses an epoch it
reported, and ends with the weights of a run that was never killed."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import torch

ARGS = ["--model", "compact_cnn", "--data", "digits", "--epochs", "5", "--train-subset", "384",
        "--eval-subset", "90", "--batch-size", "64", "--lr", "3e-3", "--no-augment",
        "--no-progress"]
ENV = os.environ | {"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "modernvision", *args]


def _run_and_kill(cmd: list[str], at_epoch: int, delay: float) -> int:
    """Start ``cmd``; SIGKILL it ``delay`` s after it prints epoch ``at_epoch``. Returns the last
    epoch it printed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=ENV)
    printed = 0
    for line in proc.stdout:
        if line.startswith("epoch "):
            printed = int(line.split()[1])
            if printed >= at_epoch:
                time.sleep(delay)  # lands in the next epoch, its evaluation or a checkpoint write
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=120)
    return printed


def test_killed_at_random_moments_resumes_without_loss(tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run(_cli("train", *ARGS, "--run-dir", str(ref)), check=True, env=ENV,
                   capture_output=True, timeout=300)
    rng = random.Random(0)
    cmd = _cli("train", *ARGS, "--run-dir", str(run))
    for at_epoch in (1, 3, 5):  # the last kill lands during the test evaluation or final write
        printed = _run_and_kill(cmd, at_epoch, delay=rng.uniform(0.0, 0.4))
        ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
        assert ckpt["epoch"] >= printed, "an epoch that was reported was lost"
        cmd = _cli("train", "--resume", str(run), "--no-progress")
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    a = torch.load(ref / "model_final.pt")["model"]
    b = torch.load(run / "model_final.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    epochs = [int(x.split('"epoch": ')[1].split(",")[0])
              for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5]
    ra, rb = (json.loads((r / "test_metrics.json").read_text()) for r in (ref, run))
    assert (ra["test_acc"], ra["test_loss"]) == (rb["test_acc"], rb["test_loss"])
