"""The detection job: any registered detector on scenes, COCO, VOC or YOLO data.

Data specs (``--data``):

* ``scenes:DIR`` — a folder written by ``modernvision data make-scenes`` (its ``train``,
  ``val`` and ``test`` splits, read through the COCO reader);
* ``coco:IMAGES,TRAIN.json[,VAL.json[,TEST.json]]`` — a COCO instances file per split;
* ``voc:DIR`` — a VOC folder (``ImageSets/Main/{train,val,test}.txt`` where present);
* ``yolo:DIR`` — ``DIR/images/{train,val,test}`` with labels beside them.

Where a data set has no val or test split, the last 10% of its training images (in file
order, at least one) are held out for both, and the run's config says so.

Labels are COCO category ids (0 is the background), so ``num_classes`` is the largest thing
category id + 1, as torchvision's detectors count them. The evaluator is COCO's (AP, AP50, ...,
ARl), computed on every validation and on the test split.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from modernvision._errors import InvalidArgumentError, MissingFileError
from modernvision.data.detection_transforms import (
    detection_eval_transforms,
    detection_train_transforms,
)
from modernvision.data.formats.coco import coco_to_dict, read_coco
from modernvision.data.formats.dataset import InstanceDataset, collate_detection
from modernvision.data.formats.records import DetectionDataset
from modernvision.engine.evaluation import CocoEvaluator
from modernvision.engine.jobs.base import DataParts, Job, LoadedRun, register_job
from modernvision.engine.jobs.configs import DataSpec, DetectionConfig, parse_data_spec
from modernvision.models import create

SPLITS = ("train", "val", "test")
HOLDOUT_FRACTION = 0.1


def _split_records(spec: DataSpec, split: str) -> tuple[DetectionDataset, Path] | None:
    """The records and image folder of one split, or None when the data has no such split."""
    root = Path(spec.name)
    if spec.kind == "scenes":
        from modernvision.data.scenes import ScenePaths

        paths = ScenePaths(root, split)
        if not paths.instances_json.is_file():
            if split == "train":
                raise MissingFileError(f"--data {spec.kind}:{root}: no training split "
                                       f"({paths.instances_json} is missing; write one with "
                                       f"`modernvision data make-scenes --out {root}`)")
            return None
        return read_coco(paths.instances_json), paths.images
    if spec.kind == "coco":
        files = (spec.extra + (None, None, None))[:3]
        ann = files[SPLITS.index(split)]
        if ann is None:
            if split == "train":
                raise InvalidArgumentError("--data coco:IMAGES,TRAIN.json[,VAL.json[,TEST.json]]"
                                           " needs at least the training annotations")
            return None
        return read_coco(ann), root
    if spec.kind == "voc":
        from modernvision.data.formats.voc import read_voc

        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        if not listing.is_file():
            return (read_voc(root), root / "JPEGImages") if split == "train" else None
        return read_voc(root, split=split), root / "JPEGImages"
    if spec.kind == "yolo":
        from modernvision.data.formats.yolo import read_yolo

        folder = root / "images" / split
        if not folder.is_dir():
            if split == "train":
                raise MissingFileError(f"--data yolo:{root}: no {folder}")
            return None
        return read_yolo(folder), folder
    raise InvalidArgumentError(f"--data {spec.kind}: is not a detection data set")


def _take(records: DetectionDataset, images: list) -> DetectionDataset:
    return replace(records, images=images)


def load_splits(spec: DataSpec) -> tuple[dict[str, tuple[DetectionDataset, Path]], bool]:
    """Records of train/val/test; val and test fall back on each other, then on a 10%
    hold-out of train. Returns them and whether a hold-out was made."""
    splits = {s: _split_records(spec, s) for s in SPLITS}
    held_out = False
    if splits["val"] is None and splits["test"] is None:
        records, folder = splits["train"]
        n = len(records.images)
        k = max(1, int(round(n * HOLDOUT_FRACTION))) if n > 1 else 0
        if k == 0:
            raise InvalidArgumentError(f"--data {spec.kind}:{spec.name}: {n} image(s) and no "
                                       "val or test split; nothing to hold out for evaluation")
        splits["train"] = (_take(records, records.images[:n - k]), folder)
        splits["val"] = splits["test"] = (_take(records, records.images[n - k:]), folder)
        held_out = True
    splits["val"] = splits["val"] or splits["test"]
    splits["test"] = splits["test"] or splits["val"]
    return splits, held_out


def _things(records: DetectionDataset) -> list[dict]:
    return [{"id": c.id, "name": c.name} for c in records.categories if c.isthing]


def _train_transforms(cfg: DetectionConfig) -> v2.Compose:
    if cfg.augmentation == "ssd":
        return detection_train_transforms()
    if cfg.augmentation == "photometric":
        return detection_train_transforms(zoom_out=None, iou_crop=False)
    return detection_eval_transforms()


def _instance_dataset(records: DetectionDataset, folder: Path, *, train: bool,
                      cfg: DetectionConfig, masks: bool) -> InstanceDataset:
    tf = _train_transforms(cfg) if train else detection_eval_transforms()
    return InstanceDataset(records, folder, transforms=tf, masks=masks)


def _unwrap(dataset: Dataset) -> InstanceDataset:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    if not isinstance(dataset, InstanceDataset):
        raise TypeError(f"expected an InstanceDataset, got {type(dataset).__name__}")
    return dataset


def _rle_text(value: Any) -> str:
    if isinstance(value, bytes):  # RLE counts of instance models' masks
        return value.decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@register_job
class DetectionJob(Job):
    name = "detection"
    monitor = ("val_AP", "max")
    predict_options = frozenset({"out", "score_thresh"})
    eval_batch_size = 4
    #: Instance-segmentation jobs (a subclass) train and score masks too.
    with_masks = False

    def collate_fn(self):
        return collate_detection

    def build_data(self, cfg: DetectionConfig) -> DataParts:
        splits, held_out = load_splits(cfg.data_spec)
        train_records, train_dir = splits["train"]
        if cfg.train_subset is not None:
            train_records = _take(train_records, train_records.images[:cfg.train_subset])
        evals = {}
        for s in ("val", "test"):
            records, folder = splits[s]
            subset = cfg.val_subset if s == "val" and cfg.val_subset else cfg.eval_subset
            if subset is not None:
                records = _take(records, records.images[:subset])
            evals[s] = _instance_dataset(records, folder, train=False, cfg=cfg,
                                         masks=self.with_masks)
        things = _things(train_records)
        meta = {"categories": things, "num_classes": max(c["id"] for c in things) + 1,
                "held_out": HOLDOUT_FRACTION if held_out else None}
        return DataParts(
            train=_instance_dataset(train_records, train_dir, train=True, cfg=cfg,
                                    masks=self.with_masks),
            val=evals["val"], test=evals["test"], meta=meta)

    def build_model(self, cfg: DetectionConfig, meta: dict, *,
                    pretrained: bool = True) -> nn.Module:
        kwargs: dict[str, Any] = dict(cfg.model_kwargs)
        sizes = cfg.multiscale_sizes()
        if sizes is not None:
            kwargs["min_size"] = sizes
        elif cfg.min_size is not None:
            kwargs["min_size"] = cfg.min_size
        if cfg.max_size is not None:
            kwargs["max_size"] = cfg.max_size
        if cfg.trainable_layers is not None:
            kwargs["trainable_backbone_layers"] = cfg.trainable_layers
        model = create(cfg.model, num_classes=meta["num_classes"],
                       weights=cfg.weights if pretrained else None, **kwargs)
        return model

    def build_evaluator(self, cfg: DetectionConfig, meta: dict,
                        dataset: Dataset) -> CocoEvaluator:
        gt = coco_to_dict(_unwrap(dataset).records, things_only=True)
        iou_types = ("bbox", "segm") if self.with_masks else ("bbox",)
        return CocoEvaluator(gt, iou_types=iou_types)

    def split_dataset(self, cfg: DetectionConfig, meta: dict, split: str,
                      data: str | None = None) -> Dataset:
        spec = parse_data_spec(data) if data is not None else cfg.data_spec
        splits, _ = load_splits(spec)
        records, folder = splits[split]
        return _instance_dataset(records, folder, train=False, cfg=cfg, masks=self.with_masks)

    def write_test_artefacts(self, run_dir: Path, evaluator: CocoEvaluator, cfg: DetectionConfig,
                             meta: dict, metrics: dict) -> None:
        """``test_detections.json``: the test split's detections of every rank, as a COCO
        results file (``image_id``, ``category_id``, ``bbox`` xywh, ``score``)."""
        from modernvision.engine.checkpoint import atomic_write_text

        atomic_write_text(run_dir / "test_detections.json",
                          json.dumps(evaluator.gathered_results, default=_rle_text))

    def summary_line(self, metrics: dict[str, float], prefix: str = "test_") -> str:
        return (f"test AP {metrics[prefix + 'AP']:.4f}, AP50 {metrics[prefix + 'AP50']:.4f}, "
                f"APs {metrics[prefix + 'APs']:.4f} on {metrics['test_images']} images")

    def predict(self, run: LoadedRun, paths: list[Path], options: dict) -> list[dict]:
        from modernvision.data.io import read_image
        from modernvision.viz.draw import save_image

        thresh = options.get("score_thresh", 0.5)
        if not 0 <= thresh <= 1:
            raise InvalidArgumentError(f"--score-thresh must be in [0, 1], got {thresh}")
        out = Path(options["out"]) if options.get("out") else None
        names = {c["id"]: c["name"] for c in run.meta["categories"]}
        device = next(run.model.parameters()).device
        results = []
        for path in paths:
            rgb = read_image(path, mode="RGB")
            x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255)
            x = x.to(device)
            with torch.no_grad():
                det = run.model([x])[0]
            keep = det.scores >= thresh
            boxes, scores = det.boxes[keep].cpu(), det.scores[keep].cpu()
            labels = det.labels[keep].cpu()
            objects = [{"label": names.get(int(k), str(int(k))), "score": float(s),
                        "box": [round(float(v), 1) for v in b]}
                       for b, s, k in zip(boxes, scores, labels)]
            text = f"{path}: {len(objects)} object{'' if len(objects) == 1 else 's'}" + "".join(
                f"; {o['label']} {o['score']:.2f} {o['box']}" for o in objects)
            if out is not None:
                save_image(self.draw_prediction(rgb, det[keep].to("cpu"), names),
                           out / f"{path.stem}.png")
            results.append({"image": str(path), "objects": objects, "text": text})
        return results

    def draw_prediction(self, rgb: np.ndarray, det: Any, names: dict[int, str]) -> np.ndarray:
        """The image ``predict --out`` writes: the kept detections' boxes with labels."""
        from modernvision.viz.draw import draw_instances

        return draw_instances(rgb, boxes=det.boxes, labels=det.labels, scores=det.scores,
                              class_names=names)
