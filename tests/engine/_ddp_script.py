"""Run by test_distributed.py under torchrun (or plainly): trains a small net, saves weights."""

import sys

import torch
from torch import nn
from torch.utils.data import TensorDataset

from modernvision.data import load_arrays
from modernvision.engine import ClassificationEvaluator, ClassificationTask, Trainer
from modernvision.engine import distributed as dist_utils
from modernvision.optim import SGD


def main(out: str) -> None:
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    d = load_arrays("digits", "train")
    x = torch.from_numpy(d.images[:512]).float().div(255).unsqueeze(1)
    y = torch.from_numpy(d.labels[:512])
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 10))
    task = ClassificationTask(model, 10)
    opt = SGD(task.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(task, opt, TensorDataset(x, y), val_set=TensorDataset(x[:100], y[:100]),
                      evaluator=ClassificationEvaluator(10),
                      epochs=2, batch_size=32, device="cpu", progress=False, seed=3,
                      log=lambda m: None)
    trainer.fit()
    if dist_utils.is_main_process():
        torch.save({"model": task.state_dict(), "history": trainer.history,
                    "world": dist_utils.world_size()}, out)
    dist_utils.cleanup()


if __name__ == "__main__":
    main(sys.argv[1])
