"""The classification job behind ``modernvision train / eval / predict``.

A :class:`TrainConfig` is resolved completely (every default written out) and saved as the run's
``config.json``; ``eval`` and ``predict`` rebuild the model from it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from modernvision.data import DATASETS, load_arrays
from modernvision.data.torch_datasets import ArrayImageDataset, load_image
from modernvision.data.transforms import build_transforms
from modernvision.engine.checkpoint import CheckpointError
from modernvision.engine.hooks import EarlyStopping, PreciseBN
from modernvision.engine.tasks import TRANSFER_MODES, ClassificationTask
from modernvision.engine.trainer import Trainer
from modernvision.models import create


@dataclass
class TrainConfig:
    """Everything a classification run depends on."""

    model: str = "compact_cnn"
    data: str = "fashion-mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "cosine"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    augment: bool = True
    image_size: int | None = None  # None: the data set's native size
    channels: int = 1
    small_input: bool = True
    patience: int | None = None  # early stopping on val_acc; None disables it
    precise_bn: int = 0  # re-estimate BN statistics on N batches before each validation
    min_delta: float = 0.0
    grad_clip: float | None = None
    seed: int = 0
    num_workers: int = 0
    train_subset: int | None = None  # use only the first N training images (quick runs)
    eval_subset: int | None = None  # validate and test on only the first N images
    weights: str | None = None  # "torchvision" or a path to a torchvision state dict
    transfer: str = "full"  # full | finetune | freeze
    backbone_lr_mult: float = 0.1
    device: str | None = None
    run_dir: str = "runs/latest"
    model_kwargs: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.data not in DATASETS:
            from modernvision._errors import unknown_name

            raise unknown_name("dataset", self.data, DATASETS)
        if self.transfer not in TRANSFER_MODES:
            raise ValueError(f"transfer must be one of {TRANSFER_MODES}, got {self.transfer!r}")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names - {"trainer", "classes", "seconds"})
        if unknown:
            raise ValueError(f"unknown config keys {unknown}")
        return cls(**{k: v for k, v in d.items() if k in names})


def build_model_for(cfg: TrainConfig, num_classes: int) -> torch.nn.Module:
    kwargs = dict(cfg.model_kwargs)
    kwargs.setdefault("in_channels", cfg.channels)
    kwargs.setdefault("small_input", cfg.small_input)
    return create(cfg.model, num_classes=num_classes, weights=cfg.weights, **kwargs)


def build_datasets(cfg: TrainConfig):
    train = load_arrays(cfg.data, "train")
    if cfg.train_subset is not None:
        train = train.subset(np.arange(min(cfg.train_subset, len(train))))
    val, test = load_arrays(cfg.data, "val"), load_arrays(cfg.data, "test")
    if cfg.eval_subset is not None:
        val = val.subset(np.arange(min(cfg.eval_subset, len(val))))
        test = test.subset(np.arange(min(cfg.eval_subset, len(test))))
    def mk(d, is_train: bool) -> ArrayImageDataset:
        tf = build_transforms(cfg.data, train=is_train, image_size=cfg.image_size,
                              channels=cfg.channels, augment=cfg.augment)
        # Deterministic pipelines run once over the whole set instead of once per epoch.
        return ArrayImageDataset(d, tf, precompute=not (is_train and cfg.augment))

    return mk(train, True), mk(val, False), mk(test, False), train.classes


def build_trainer(cfg: TrainConfig, *, progress: bool = True, log=print) -> tuple[Trainer, list]:
    from modernvision.optim import build_optimizer, build_scheduler

    cfg.validate()
    torch.manual_seed(cfg.seed)
    train_set, val_set, test_set, classes = build_datasets(cfg)
    model = build_model_for(cfg, len(classes))
    task = ClassificationTask(model, len(classes), label_smoothing=cfg.label_smoothing,
                              transfer=cfg.transfer)
    if cfg.transfer == "full":
        params = [p for p in task.parameters() if p.requires_grad]
    else:
        params = task.param_groups(cfg.lr, backbone_lr_mult=cfg.backbone_lr_mult)
    optimizer = build_optimizer(cfg.optimizer, params, lr=cfg.lr,
                                weight_decay=cfg.weight_decay, momentum=cfg.momentum)

    def scheduler(opt, steps_per_epoch):
        return build_scheduler(cfg.scheduler, opt, epochs=cfg.epochs,
                               steps_per_epoch=steps_per_epoch, warmup_epochs=cfg.warmup_epochs)

    hooks = []
    if cfg.precise_bn:
        hooks.append(PreciseBN(cfg.precise_bn))
    if cfg.patience is not None:
        hooks.append(EarlyStopping("val_acc", mode="max", patience=cfg.patience,
                                   min_delta=cfg.min_delta))
    config = dataclasses.asdict(cfg) | {"classes": classes}
    trainer = Trainer(task, optimizer, train_set, val_set=val_set, epochs=cfg.epochs,
                      batch_size=cfg.batch_size, scheduler=scheduler,
                      scheduler_interval="step", hooks=hooks, run_dir=cfg.run_dir,
                      device=cfg.device, grad_clip_norm=cfg.grad_clip,
                      num_workers=cfg.num_workers, seed=cfg.seed, config=config,
                      progress=progress, log=log)
    trainer.test_set = test_set
    return trainer, classes


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True, log=print) -> dict:
    """Train (or resume) a classification run; returns the test metrics of the final weights."""
    trainer, classes = build_trainer(cfg, progress=progress, log=log)
    start = time.perf_counter()
    trainer.fit(resume=resume or None)
    seconds = time.perf_counter() - start
    test_loader = torch.utils.data.DataLoader(trainer.test_set, batch_size=512)
    metrics = trainer.evaluate(test_loader, prefix="test_")
    cm = trainer.last_eval_sums["confusion"].cpu().numpy().astype(np.int64)
    result = {**metrics, "train_seconds": seconds, "epochs_run": trainer.epoch}
    if trainer.rank == 0:
        run = Path(cfg.run_dir)
        (run / "test_metrics.json").write_text(json.dumps(result, indent=2))
        np.savetxt(run / "confusion_matrix.csv", cm, fmt="%d", delimiter=",")
        from modernvision.viz.plots import plot_confusion_matrix

        plot_confusion_matrix(cm, classes, run / "confusion_matrix.png",
                              title=f"{cfg.model} on {cfg.data} test "
                                    f"(acc {metrics['test_acc']:.4f})")
    result["confusion"] = cm
    return result


def load_run(run_dir: str | Path, *, device: str = "cpu") -> tuple[ClassificationTask, TrainConfig]:
    """The trained task of a finished (or interrupted) run and its config."""
    run = Path(run_dir)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run} is not a run folder (no config.json)")
    raw = json.loads(cfg_path.read_text())
    cfg = TrainConfig.from_dict(raw)
    classes = raw.get("classes") or load_arrays(cfg.data, "test").classes
    cfg.weights = None  # the run's own weights replace any pretrained ones
    model = build_model_for(cfg, len(classes))
    task = ClassificationTask(model, len(classes))
    final, last = run / "model_final.pt", run / "checkpoints" / "last.pt"
    path = final if final.is_file() else last
    if not path.is_file():
        raise FileNotFoundError(f"{run} holds no weights (model_final.pt or checkpoints/last.pt)")
    from modernvision.engine.checkpoint import load_checkpoint

    try:
        state = torch.load(path, map_location=device, weights_only=False) if path == final \
            else load_checkpoint(path, map_location=device)
        task.load_state_dict(state["model"])
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"cannot load weights from {path}: {exc}") from exc
    task.classes = classes
    return task.to(device).eval(), cfg


def evaluate_run(run_dir: str | Path, *, split: str = "test", device: str = "cpu") -> dict:
    task, cfg = load_run(run_dir, device=device)
    data = ArrayImageDataset(load_arrays(cfg.data, split),
                             build_transforms(cfg.data, train=False, image_size=cfg.image_size,
                                              channels=cfg.channels))
    sums: dict[str, Tensor] = {}
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(data, batch_size=512):
            for k, v in task.evaluation_sums(x.to(device), y.to(device)).items():
                sums[k] = sums[k] + v if k in sums else v
    out = {f"{split}_{k}": v for k, v in task.metrics_from_sums(sums).items()}
    out["confusion"] = sums["confusion"].cpu().numpy()
    return out


def predict_images(run_dir: str | Path, images: list[str | Path], *, topk: int = 3,
                   device: str = "cpu") -> list[dict]:
    """Top-k predictions for image files (converted to the run's channels and size)."""
    task, cfg = load_run(run_dir, device=device)
    native = load_arrays(cfg.data, "test").images.shape[1]
    size = cfg.image_size or native
    tf = build_transforms(cfg.data, train=False, image_size=size, channels=cfg.channels)
    results = []
    for path in images:
        img = load_image(path, mode="L" if cfg.channels == 1 else "RGB")
        x = tf(img).unsqueeze(0).to(device)
        with torch.no_grad():
            probs = task(x).float().softmax(1)[0]
        p, idx = probs.topk(min(topk, probs.numel()))
        results.append({"image": str(path), "top": [(task.classes[i], float(q))
                                                   for q, i in zip(p.tolist(), idx.tolist())]})
    return results
