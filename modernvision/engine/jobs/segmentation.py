"""The semantic-segmentation job: any registered segmenter on a scenes folder's label maps.

Data (``--data scenes:DIR``): ``DIR/images/<split>`` and ``DIR/semantic/<split>`` (class index
per pixel, 255 = unlabelled) for the splits ``train``, ``val`` and ``test``; a folder without
``val`` validates on ``test`` and the other way round. Images are scaled to ``[0, 1]`` and
normalised with ImageNet's mean and std (torchvision's segmentation convention); with
``--image-size`` they are resized bilinearly and the label maps by nearest neighbour (a label
map must never be interpolated: see :mod:`modernvision.layers.upsample`).

Scores (FCN, Sec. 5): pixel accuracy, mean (class) accuracy, mean IoU and frequency-weighted
IoU, from one confusion matrix over the whole split (:mod:`modernvision.metrics.segmentation`),
plus the per-pixel cross entropy; early stopping watches ``val_miou``. ``predict`` writes each
image with its colour-coded label map over it and a legend of the classes present.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from modernvision._errors import MissingFileError
from modernvision.data.scenes import ScenePaths, SceneSemanticDataset
from modernvision.engine import distributed as dist_utils
from modernvision.engine.jobs.base import DataParts, Job, LoadedRun, register_job
from modernvision.engine.jobs.configs import SemanticConfig, parse_data_spec
from modernvision.metrics.segmentation import segmentation_scores
from modernvision.models import create, get_entry
from modernvision.models.segmentation._base import center_crop

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
METRICS = ("pixel_acc", "mean_acc", "miou", "fwiou")


def semantic_transforms(image_size: int | None) -> v2.Compose:
    """uint8 image + mask -> normalised float image + int64 mask (resized when asked)."""
    steps: list = []
    if image_size is not None:
        steps.append(v2.Resize((image_size, image_size), antialias=True))  # masks: nearest
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)


class SemanticEvaluator:
    """Cross entropy and the FCN scores of logits ``[B, C, H, W]`` against ``[B, H, W]``.

    Targets larger than the logits (a valid-convolution U-Net) are centre-cropped to them.
    After :meth:`compute`, :attr:`scores` holds :func:`segmentation_scores`' full dict
    (per-class accuracy and IoU, the confusion matrix).
    """

    def __init__(self, num_classes: int, *, ignore_index: int = 255) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.reset()

    def reset(self) -> None:
        self._confusion: Tensor | None = None
        self._loss = torch.zeros((), dtype=torch.float64)
        self._pixels = torch.zeros((), dtype=torch.float64)
        self.scores: dict | None = None

    def update(self, predictions: Tensor, targets: Tensor) -> None:
        logits = predictions.float()
        if targets.shape[-2:] != logits.shape[-2:]:
            targets = center_crop(targets, tuple(logits.shape[-2:]))
        targets = targets.long()
        valid = targets != self.ignore_index
        self._loss = self._loss.to(logits.device) + F.cross_entropy(
            logits, targets, ignore_index=self.ignore_index, reduction="sum").double()
        self._pixels = self._pixels.to(logits.device) + valid.sum().double()
        preds = logits.argmax(1)[valid]
        k = self.num_classes
        cm = torch.bincount(targets[valid] * k + preds, minlength=k * k).reshape(k, k)
        self._confusion = cm if self._confusion is None else self._confusion + cm

    def compute(self) -> dict[str, float]:
        if self._confusion is None:
            raise ValueError("SemanticEvaluator.compute() before any update()")
        device = self._confusion.device
        sums = dist_utils.all_reduce_sum({"confusion": self._confusion.double(),
                                          "loss": self._loss, "pixels": self._pixels}, device)
        self.scores = segmentation_scores(sums["confusion"].long().cpu().numpy())
        out = {"loss": float(sums["loss"]) / max(float(sums["pixels"]), 1.0)}
        return out | {k: float(self.scores[k]) for k in METRICS}


def _split_or_none(root: Path, split: str) -> SceneSemanticDataset | None:
    if not ScenePaths(root, split).semantic_json.is_file():
        return None
    return SceneSemanticDataset(root, split)


def _median_frequency_weights(train: SceneSemanticDataset, n: int | None) -> list[float]:
    """Median frequency balancing over the (first ``n``) training label maps at their native
    size (resizing with nearest neighbours keeps the frequencies, up to rounding)."""
    from modernvision.data.io import read_label_map
    from modernvision.losses import label_frequencies, median_frequency_weights

    files = train.files[:n] if n is not None else train.files
    maps = (torch.from_numpy(read_label_map(train.paths.semantic / f).astype(np.int64))
            for f in files)
    freq = label_frequencies(maps, train.num_classes, ignore_index=train.ignore_index)
    return [round(float(w), 6) for w in median_frequency_weights(freq)]


def _subset(dataset: Dataset, n: int | None) -> Dataset:
    return dataset if n is None or n >= len(dataset) else Subset(dataset, range(n))


@register_job
class SemanticJob(Job):
    name = "semantic"
    monitor = ("val_miou", "max")
    predict_options = frozenset({"out"})
    eval_batch_size = 8

    def _splits(self, cfg: SemanticConfig, data: str | None = None) -> dict:
        spec = parse_data_spec(data) if data is not None else cfg.data_spec
        root = Path(spec.name)
        if not ScenePaths(root, "train").semantic_json.is_file() and data is None:
            raise MissingFileError(f"--data scenes:{root}: no training split (missing "
                                   f"{ScenePaths(root, 'train').semantic_json}; write one with "
                                   f"`modernvision data make-scenes --out {root}`)")
        splits = {s: _split_or_none(root, s) for s in ("train", "val", "test")}
        splits["val"] = splits["val"] or splits["test"]
        splits["test"] = splits["test"] or splits["val"]
        tf = semantic_transforms(cfg.image_size)
        for ds in splits.values():
            if ds is not None:
                ds.transforms = tf
        return splits

    def build_data(self, cfg: SemanticConfig) -> DataParts:
        splits = self._splits(cfg)
        train = splits["train"]
        if splits["val"] is None:
            raise MissingFileError(f"--data {cfg.data}: no val or test split to evaluate on")
        meta = {"classes": list(train.classes), "ignore_index": train.ignore_index}
        if cfg.class_weighting == "median_frequency":
            meta["class_weights"] = _median_frequency_weights(train, cfg.train_subset)
        return DataParts(train=_subset(train, cfg.train_subset),
                         val=_subset(splits["val"], cfg.eval_subset),
                         test=_subset(splits["test"], cfg.eval_subset), meta=meta)

    def build_model(self, cfg: SemanticConfig, meta: dict, *,
                    pretrained: bool = True) -> nn.Module:
        kwargs = dict(cfg.model_kwargs)
        params = inspect.signature(get_entry(cfg.model).builder).parameters
        if "in_channels" in params:  # RGB scenes; U-Net's default is the paper's 1
            kwargs.setdefault("in_channels", 3)
        kwargs.setdefault("ignore_index", meta.get("ignore_index", 255))
        model = create(cfg.model, num_classes=len(meta["classes"]),
                       weights=cfg.weights if pretrained else None, **kwargs)
        if meta.get("class_weights") is not None:
            model.set_class_weight(torch.tensor(meta["class_weights"]))
        return model

    def build_evaluator(self, cfg: SemanticConfig, meta: dict,
                        dataset: Dataset) -> SemanticEvaluator:
        return SemanticEvaluator(len(meta["classes"]),
                                 ignore_index=meta.get("ignore_index", 255))

    def split_dataset(self, cfg: SemanticConfig, meta: dict, split: str,
                      data: str | None = None) -> Dataset:
        dataset = self._splits(cfg, data)[split]
        if dataset is None:
            raise MissingFileError(f"--data {data or cfg.data}: no {split} split")
        return dataset

    def write_test_artefacts(self, run_dir: Path, evaluator: SemanticEvaluator,
                             cfg: SemanticConfig, meta: dict, metrics: dict) -> None:
        scores = evaluator.scores
        per_class = {name: {"iou": _num(scores["iou"][k]), "acc": _num(scores["acc"][k])}
                     for k, name in enumerate(meta["classes"])}
        (run_dir / "test_per_class.json").write_text(json.dumps(per_class, indent=2))
        np.savetxt(run_dir / "confusion_matrix.csv", scores["confusion"], fmt="%d",
                   delimiter=",")

    def summary_line(self, metrics: dict[str, float], prefix: str = "test_") -> str:
        return (f"test mIoU {metrics[prefix + 'miou']:.4f}, pixel acc "
                f"{metrics[prefix + 'pixel_acc']:.4f}, mean acc {metrics[prefix + 'mean_acc']:.4f}"
                f", fwIoU {metrics[prefix + 'fwiou']:.4f} on {metrics['test_images']} images")

    def predict(self, run: LoadedRun, paths: list[Path], options: dict) -> list[dict]:
        from modernvision.data.io import read_image
        from modernvision.layers.upsample import upsample_bilinear
        from modernvision.viz.draw import draw_semantic, save_image

        out = Path(options["out"]) if options.get("out") else None
        classes = run.meta["classes"]
        tf = semantic_transforms(run.cfg.image_size)
        device = next(run.model.parameters()).device
        results = []
        for path in paths:
            rgb = read_image(path, mode="RGB")
            x = tf(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1))[None]
            with torch.no_grad():
                logits = run.model(x.to(device)).float()
            # Scores, not labels, are resized back to the image (then the argmax).
            if logits.shape[-2:] != rgb.shape[:2]:
                logits = upsample_bilinear(logits, tuple(rgb.shape[:2]))
            labels = logits.argmax(1)[0].cpu().numpy()
            counts = np.bincount(labels.reshape(-1), minlength=len(classes))
            order = np.argsort(-counts)
            shares = {classes[k]: round(float(counts[k]) / labels.size, 4)
                      for k in order if counts[k]}
            text = f"{path}: " + ", ".join(f"{c} {100 * s:.1f}%" for c, s in shares.items())
            if out is not None:
                save_image(draw_semantic(rgb, labels, classes), out / f"{path.stem}.png")
            results.append({"image": str(path), "classes": shares, "text": text})
        return results


def _num(v: float) -> float | None:
    return None if np.isnan(v) else float(v)

