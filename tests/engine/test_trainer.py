"""Trainer: loss dicts, resume == uninterrupted, atomic/corrupt checkpoints, early stopping,
run folder, transfer learning."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from modernvision.engine import ClassificationEvaluator, ClassificationTask, EarlyStopping, Trainer
from modernvision.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint
from modernvision.engine.hooks import Hook
from modernvision.optim import Adam, build_scheduler


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long() + 2 * (x[:, 0, :4].mean((1, 2)) > 0).long()
    return TensorDataset(x, y)


def _net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(4 * 36, 4))


def _trainer(tmp_path, epochs, hooks=(), seed=0, name="run"):
    torch.manual_seed(seed)
    task = ClassificationTask(_net(), 4)
    opt = Adam(task.parameters(), lr=1e-2)
    return Trainer(task, opt, _data(), val_set=_data(32, seed=1),
                   evaluator=ClassificationEvaluator(4), epochs=epochs, batch_size=16,
                   scheduler=lambda o, n: build_scheduler("cosine", o, epochs=epochs,
                                                          steps_per_epoch=n),
                   hooks=hooks, run_dir=tmp_path / name, progress=False, log=lambda m: None)


class _Crash(Hook):
    def __init__(self, at_epoch):
        self.at_epoch = at_epoch

    def on_epoch_start(self, trainer):
        if trainer.epoch == self.at_epoch:
            raise KeyboardInterrupt  # the run is killed after its checkpoint was written


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    straight = _trainer(tmp_path, 4, name="straight")
    straight.fit()
    crashed = _trainer(tmp_path, 4, hooks=[_Crash(2)], name="crashed")
    with pytest.raises(KeyboardInterrupt):
        crashed.fit()
    assert load_checkpoint(tmp_path / "crashed" / "checkpoints" / "last.pt")["epoch"] == 2
    resumed = _trainer(tmp_path, 4, seed=123, name="crashed")  # other init: must be overwritten
    resumed.fit(resume=True)
    a, b = straight.unwrapped.state_dict(), resumed.unwrapped.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [m["train_loss"] for m in straight.history] == [m["train_loss"] for m in
                                                           resumed.history]
    lines = (tmp_path / "crashed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]


def test_run_folder_contents(tmp_path):
    t = _trainer(tmp_path, 2)
    t.fit()
    run = tmp_path / "run"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["trainer"]["epochs"] == 2 and cfg["trainer"]["optimizer"] == "Adam"
    hist = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(hist) == 2 and {"train_loss", "val_loss", "val_acc", "lr"} <= set(hist[0])
    for f in ("loss.png", "metrics.png", "checkpoints/last.pt", "model_final.pt"):
        assert (run / f).stat().st_size > 0
    assert not list(run.glob("checkpoints/.*tmp"))


def test_truncated_or_corrupt_checkpoint_is_a_clear_error(tmp_path):
    t = _trainer(tmp_path, 1)
    t.fit()
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        _trainer(tmp_path, 2).fit(resume=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(ckpt)
    atomic_save({"model": {}}, ckpt)
    with pytest.raises(CheckpointError, match="lacks entries"):
        load_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_atomic_save_leaves_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.pt"
    atomic_save({"a": 1}, path)

    class Bad:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_save({"a": Bad()}, path)
    assert torch.load(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_early_stopping_stops_and_restores_best(tmp_path):
    stopper = EarlyStopping("val_loss", mode="min", patience=1)
    t = _trainer(tmp_path, 50, hooks=[stopper])
    scores = iter([1.0, 0.5, 0.7, 0.6, 0.9, 0.1])
    snapshots = {}

    def fake_eval(loader=None, evaluator=None, prefix="val_"):
        snapshots[t.epoch] = {k: v.clone() for k, v in t.unwrapped.state_dict().items()}
        return {"val_loss": next(scores)}

    t.evaluate = fake_eval
    t.fit()
    # best at epoch 2 (0.5); epochs 3 and 4 are no better; patience 1 -> stop after epoch 4
    assert t.epoch == 4 and stopper.best_epoch == 1 and stopper.best == 0.5
    best = snapshots[1]
    assert all(torch.equal(best[k], v) for k, v in t.unwrapped.state_dict().items())


def test_early_stopping_min_delta_and_bad_arguments():
    s = EarlyStopping("val_acc", mode="max", min_delta=0.01)
    s.best = 0.90
    assert not s.improved(0.905) and s.improved(0.911)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


class _ReturnsLogits(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 4)

    def forward(self, x, y=None):
        return self.fc(x.flatten(1))


def test_model_must_return_loss_dict():
    model = _ReturnsLogits()
    with pytest.raises(TypeError, match="dict of losses"):
        Trainer(model, Adam(model.parameters()), _data(), epochs=1, batch_size=8,
                progress=False).fit()
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    with pytest.raises(TypeError, match="ClassificationTask"):
        Trainer(plain, Adam(plain.parameters()), _data(), epochs=1, batch_size=8,
                progress=False).fit()


def test_bad_trainer_arguments():
    task = ClassificationTask(_net(), 4)
    opt = Adam(task.parameters())
    for kwargs, match in [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"),
                          ({"scheduler_interval": "week"}, "scheduler_interval"),
                          ({"grad_clip_norm": -1.0}, "grad_clip_norm"),
                          ({"val_set": _data(8)}, "evaluator")]:
        args = {"epochs": 1, "batch_size": 8} | kwargs
        with pytest.raises(ValueError, match=match):
            Trainer(task, opt, _data(), **args)


def test_grad_clipping_bounds_the_update():
    task = ClassificationTask(nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), 4)
    opt = torch.optim.SGD(task.parameters(), lr=1.0)
    before = [p.detach().clone() for p in task.parameters()]
    t = Trainer(task, opt, _data(16), epochs=1, batch_size=16, grad_clip_norm=1e-3,
                progress=False)
    t.run_step(next(iter(t.train_loader)))
    step = torch.cat([(p.detach() - b).flatten() for p, b in zip(task.parameters(), before)])
    assert step.norm() <= 1e-3 + 1e-7


def test_precise_bn_recomputes_statistics_as_a_plain_average():
    from modernvision.engine import PreciseBN

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(108, 4))
    task = ClassificationTask(net, 4)
    t = Trainer(task, Adam(task.parameters()), _data(64), epochs=1, batch_size=16,
                channels_last=False, progress=False)
    net[1].running_mean.fill_(123.0)  # stale statistics
    PreciseBN(num_batches=3).recompute(t)
    # reference: the mean of the per-batch statistics of the first 3 batches of this epoch
    means, variances = [], []
    for i, (x, _) in enumerate(t.train_loader):
        if i == 3:
            break
        h = net[0](x)
        means.append(h.mean((0, 2, 3)))
        variances.append(h.var((0, 2, 3), unbiased=True))
    torch.testing.assert_close(net[1].running_mean, torch.stack(means).mean(0))
    torch.testing.assert_close(net[1].running_var, torch.stack(variances).mean(0))
    assert net[1].momentum == 0.1 and net.training


def test_batch_size_of_classification_and_detection_batches():
    from modernvision.engine.trainer import _batch_size

    assert _batch_size((torch.zeros(5, 3, 8, 8), torch.zeros(5))) == 5
    images = [torch.zeros(3, 8, 8), torch.zeros(3, 6, 6)]
    assert _batch_size((images, [{"boxes": torch.zeros(0, 4)}] * 2)) == 2
    assert _batch_size({"images": torch.zeros(4, 1, 2, 2)}) == 4


def test_precise_bn_finds_our_own_batch_norm_too():
    from modernvision.engine import PreciseBN
    from modernvision.layers import BatchNorm2d

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), BatchNorm2d(3), nn.Flatten(), nn.Linear(108, 4))
    task = ClassificationTask(net, 4)
    t = Trainer(task, Adam(task.parameters()), _data(64), epochs=1, batch_size=16,
                channels_last=False, progress=False)
    net[1].running_mean.fill_(123.0)
    PreciseBN(num_batches=2).recompute(t)
    x = torch.cat([x for i, (x, _) in zip(range(2), t.train_loader)])
    torch.testing.assert_close(net[1].running_mean, net[0](x).mean((0, 2, 3)))


def test_progress_bars_only_on_a_terminal(monkeypatch):
    task = ClassificationTask(_net(), 4)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    t = Trainer(task, Adam(task.parameters()), _data(16), epochs=1, batch_size=8)
    assert t.progress is False  # files and CI logs: one line per epoch, no carriage returns
