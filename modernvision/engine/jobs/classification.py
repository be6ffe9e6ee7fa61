"""The classification job: a zoo model + :class:`ClassificationTask` on a built-in data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from modernvision._errors import InvalidArgumentError
from modernvision.data import load_arrays
from modernvision.data.torch_datasets import ArrayImageDataset, load_image
from modernvision.data.transforms import build_transforms
from modernvision.engine.evaluation import ClassificationEvaluator
from modernvision.engine.jobs.base import DataParts, Job, LoadedRun, register_job
from modernvision.engine.jobs.configs import ClassificationConfig
from modernvision.engine.tasks import ClassificationTask
from modernvision.models import create


def _arrays(cfg: ClassificationConfig, split: str, data: str | None = None):
    arrays = load_arrays(data or cfg.data, split)
    if split == "train" and cfg.train_subset is not None:
        arrays = arrays.subset(np.arange(min(cfg.train_subset, len(arrays))))
    return arrays


def _dataset(cfg: ClassificationConfig, arrays, *, train: bool,
             data: str | None = None) -> ArrayImageDataset:
    tf = build_transforms(data or cfg.data, train=train, image_size=cfg.image_size,
                          channels=cfg.channels, augment=cfg.augment)
    # Deterministic pipelines run once over the whole set instead of once per epoch.
    return ArrayImageDataset(arrays, tf, precompute=not (train and cfg.augment))


@register_job
class ClassificationJob(Job):
    name = "classification"
    monitor = ("val_acc", "max")
    predict_options = frozenset({"topk"})
    eval_batch_size = 512

    def build_data(self, cfg: ClassificationConfig) -> DataParts:
        train = _arrays(cfg, "train")
        val, test = _arrays(cfg, "val"), _arrays(cfg, "test")
        if cfg.eval_subset is not None:
            val = val.subset(np.arange(min(cfg.eval_subset, len(val))))
            test = test.subset(np.arange(min(cfg.eval_subset, len(test))))
        return DataParts(train=_dataset(cfg, train, train=True),
                         val=_dataset(cfg, val, train=False),
                         test=_dataset(cfg, test, train=False),
                         meta={"classes": list(train.classes)})

    def build_model(self, cfg: ClassificationConfig, meta: dict, *,
                    pretrained: bool = True) -> nn.Module:
        kwargs = dict(cfg.model_kwargs)
        kwargs.setdefault("in_channels", cfg.channels)
        kwargs.setdefault("small_input", cfg.small_input)
        classes = meta["classes"]
        model = create(cfg.model, num_classes=len(classes),
                       weights=cfg.weights if pretrained else None, **kwargs)
        task = ClassificationTask(model, len(classes), label_smoothing=cfg.label_smoothing,
                                  transfer=cfg.transfer)
        task.classes = classes
        return task

    def build_evaluator(self, cfg: ClassificationConfig, meta: dict,
                        dataset: Dataset) -> ClassificationEvaluator:
        return ClassificationEvaluator(len(meta["classes"]))

    def param_groups(self, model: ClassificationTask, cfg: ClassificationConfig) -> list:
        if cfg.transfer == "full":
            return [p for p in model.parameters() if p.requires_grad]
        return model.param_groups(cfg.lr, backbone_lr_mult=cfg.backbone_lr_mult)

    def split_dataset(self, cfg: ClassificationConfig, meta: dict, split: str,
                      data: str | None = None) -> Dataset:
        return _dataset(cfg, _arrays(cfg, split, data), train=False, data=data)

    def write_test_artefacts(self, run_dir: Path, evaluator: ClassificationEvaluator,
                             cfg: ClassificationConfig, meta: dict, metrics: dict) -> None:
        from modernvision.viz.plots import plot_confusion_matrix

        cm = evaluator.confusion.numpy().astype(np.int64)
        np.savetxt(run_dir / "confusion_matrix.csv", cm, fmt="%d", delimiter=",")
        plot_confusion_matrix(cm, meta["classes"], run_dir / "confusion_matrix.png",
                              title=f"{cfg.model} on {cfg.data} test "
                                    f"(acc {metrics['test_acc']:.4f})")

    def summary_line(self, metrics: dict[str, float], prefix: str = "test_") -> str:
        return (f"test accuracy {metrics['test_acc']:.4f}, test loss {metrics['test_loss']:.4f} "
                f"on {metrics['test_images']} images")

    def predict(self, run: LoadedRun, paths: list[Path], options: dict) -> list[dict]:
        topk = options.get("topk", 3)
        if not isinstance(topk, int) or topk < 1:
            raise InvalidArgumentError(f"--topk must be a positive integer, got {topk!r}")
        cfg = run.cfg
        native = load_arrays(cfg.data, "test").images.shape[1]
        tf = build_transforms(cfg.data, train=False, image_size=cfg.image_size or native,
                              channels=cfg.channels)
        classes = run.meta["classes"]
        device = next(run.model.parameters()).device
        results = []
        for path in paths:
            img = load_image(path, mode="L" if cfg.channels == 1 else "RGB")
            x = tf(img).unsqueeze(0).to(device)
            with torch.no_grad():
                probs = run.model(x).float().softmax(1)[0]
            p, idx = probs.topk(min(topk, probs.numel()))
            top = [(classes[i], float(q)) for q, i in zip(p.tolist(), idx.tolist())]
            results.append({"image": str(path), "top": top,
                            "text": f"{path}: " + ", ".join(f"{c} {q:.3f}" for c, q in top)})
        return results
