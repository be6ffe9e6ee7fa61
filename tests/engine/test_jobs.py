"""Runs through the jobs API: resume keeps its promise, extension is explicit, nothing is
overwritten silently, eval scores the run's subset and says how many."""

import json

import pytest
import torch

from modernvision._errors import InvalidArgumentError, UserError
from modernvision.engine.jobs import ClassificationConfig, evaluate_run, resume, train
from modernvision.engine.trainer import Trainer


def _cfg(run_dir, **kw):
    base = dict(model="compact_cnn", data="digits", epochs=4, batch_size=64, lr=3e-3,
                train_subset=256, eval_subset=90, augment=False,
                run_dir=None if run_dir is None else str(run_dir))
    return ClassificationConfig(**(base | kw))


def _weights(run):
    return torch.load(run / "model_final.pt")["model"]


def _quiet(_msg):
    pass


def _interrupt_at(monkeypatch, epoch):
    original = Trainer.train_epoch

    def train_epoch(self):
        if self.epoch == epoch:
            raise KeyboardInterrupt  # killed after the checkpoint of `epoch` was written
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    return lambda: monkeypatch.setattr(Trainer, "train_epoch", original)


def test_resume_continues_an_interrupted_run_bit_exact(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train(_cfg(straight), log=_quiet)
    cut = tmp_path / "cut"
    undo = _interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(cut), log=_quiet)
    undo()
    assert not (cut / "test_metrics.json").exists()
    result = resume(cut, log=_quiet)
    a, b = _weights(straight), _weights(cut)
    assert all(torch.equal(a[k], b[k]) for k in a)
    hist = [json.loads(x) for x in (cut / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert [h["lr"] for h in hist] == [h["lr"] for h in ref]  # the cosine did not end early
    assert all(h["lr"] > 0 for h in hist)
    assert result["test_acc"] == json.loads((straight / "test_metrics.json").read_text())[
        "test_acc"]


def test_resume_before_the_first_checkpoint_starts_over(tmp_path, monkeypatch):
    run = tmp_path / "run"
    undo = _interrupt_at(monkeypatch, 0)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(run, epochs=2), log=_quiet)
    undo()
    assert (run / "config.json").is_file() and not (run / "checkpoints").exists()
    logs = []
    resume(run, log=logs.append)
    assert any("no finished epoch yet" in m for m in logs)
    assert (run / "test_metrics.json").is_file()


def test_extending_a_finished_run_is_explicit_with_a_new_schedule(tmp_path):
    run = tmp_path / "run"
    train(_cfg(run, epochs=2), log=_quiet)
    logs = []
    done = resume(run, log=logs.append)  # finished: nothing to do, and it says how to extend
    assert done["already_finished"] and "--extend-epochs" in logs[0]
    resume(run, extend_epochs=2, log=_quiet)
    hist = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert hist[2]["lr"] == pytest.approx(3e-3)  # the extension's cosine starts at the base lr
    assert hist[3]["lr"] == pytest.approx(1.5e-3, rel=0.05)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["extensions"] == [{"from_epoch": 2, "epochs": 2}] and cfg["epochs"] == 2
    assert json.loads((run / "test_metrics.json").read_text())["epochs_run"] == 4


def test_an_interrupted_extension_resumes_to_its_end(tmp_path, monkeypatch):
    ref, run = tmp_path / "ref", tmp_path / "run"
    for r in (ref, run):
        train(_cfg(r, epochs=2), log=_quiet)
    resume(ref, extend_epochs=2, log=_quiet)
    undo = _interrupt_at(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        resume(run, extend_epochs=2, log=_quiet)
    undo()
    resume(run, log=_quiet)
    a, b = _weights(ref), _weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_other_settings_naming_the_runs_values(tmp_path):
    run = tmp_path / "run"
    train(_cfg(run, epochs=1), log=_quiet)
    with pytest.raises(InvalidArgumentError, match=r"--model resnet18 \(the run's is "
                                                    r"compact_cnn\)"):
        resume(run, overrides={"model": "resnet18"})
    with pytest.raises(InvalidArgumentError, match=r"--data fashion-mnist \(the run's is "
                                                    r"digits\)"):
        resume(run, overrides={"data": "fashion-mnist"})
    before = (run / "config.json").read_text()
    with pytest.raises(InvalidArgumentError, match="--extend-epochs"):
        resume(run, extend_epochs=0)
    assert (run / "config.json").read_text() == before


def test_existing_run_folder_is_never_overwritten_silently(tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(_cfg(run, epochs=1), log=_quiet)
    stamp = (run / "model_final.pt").stat().st_mtime_ns
    with pytest.raises(InvalidArgumentError, match="already holds a run"):
        train(_cfg(run, epochs=1), log=_quiet)
    assert (run / "model_final.pt").stat().st_mtime_ns == stamp
    train(_cfg(run, epochs=1, seed=1), overwrite=True, log=_quiet)
    assert json.loads((run / "config.json").read_text())["seed"] == 1
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="not a run folder"):
        train(_cfg(other, epochs=1), overwrite=True, log=_quiet)
    assert (other / "todo.txt").read_text() == "mine"
    # the default folder name moves on to a fresh one and says so
    monkeypatch.chdir(tmp_path)
    logs = []
    first = train(_cfg(None, epochs=1), log=logs.append)["run_dir"]
    second = train(_cfg(None, epochs=1), log=logs.append)["run_dir"]
    assert first == "runs/compact_cnn-digits" and second == "runs/compact_cnn-digits-2"
    assert f"run folder {second}" in logs


def test_eval_scores_the_runs_subset_and_says_how_many(tmp_path):
    run = tmp_path / "run"
    result = train(_cfg(run, epochs=1), log=_quiet)
    out = evaluate_run(run)
    assert out["images"] == 90 and out["subset"] == 90
    assert out["test_acc"] == pytest.approx(result["test_acc"])
    full = evaluate_run(run, full=True)
    assert full["images"] == 270 and full["subset"] is None


@pytest.mark.parametrize("kw, needle", [
    ({"eval_subset": 0}, "--eval-subset"), ({"train_subset": 0}, "--train-subset"),
    ({"label_smoothing": 2.0}, "--label-smoothing"), ({"image_size": 0}, "--image-size"),
    ({"batch_size": 0}, "--batch-size"), ({"device": "tpu"}, "--device"),
    ({"optimizer": "sgd", "momentum": 0.5}, "--momentum 0.5 has no effect"),
    ({"warmup_epochs": 5.0, "epochs": 2}, "--warmup-epochs"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, kw, needle):
    run = tmp_path / "run"
    with pytest.raises(UserError, match=needle):
        train(_cfg(run, **kw), log=_quiet)
    assert not run.exists()


def test_momentum_is_honoured_where_it_exists(tmp_path):
    run = tmp_path / "run"
    train(_cfg(run, epochs=1, optimizer="momentum", momentum=0.5, lr=0.05), log=_quiet)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["trainer"]["optimizer_defaults"]["momentum"] == 0.5
