"""The panoptic-segmentation job: Panoptic FPN (things and stuff) on scenes.

Scenes (``modernvision data make-scenes``) hold everything a panoptic model needs: COCO
instances with masks for the things (the instance branch's targets), a semantic map per image
for the stuff (the semantic branch's targets: every thing pixel becomes label 0, "a thing", and
stuff category ``c`` becomes ``1 + its rank among the stuff categories``) and COCO panoptic
ground truth (PNG + ``segments_info``), which the evaluator reads with the COCO panoptic reader
and scores with :func:`~modernvision.metrics.panoptic_quality` -- ``PQ``, ``SQ``, ``RQ``
overall, ``_things`` and ``_stuff`` -- beside COCO box and mask AP of the instance branch.
Validation keeps the best ``val_PQ``. ``predict --out DIR`` writes the drawn panoptic colouring
(stuff in muted colours, each thing in its own colour with its label) as ``DIR/<name>.png``, and
the COCO panoptic prediction: ``DIR/panoptic/<name>.png`` and ``DIR/panoptic.json``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from modernvision._errors import BadFileError, InvalidArgumentError
from modernvision.data.formats.dataset import InstanceDataset
from modernvision.engine.evaluation import CocoEvaluator
from modernvision.engine.jobs.base import DataParts, LoadedRun, register_job
from modernvision.engine.jobs.instance import InstanceJob

IGNORE = 255


class PanopticSceneDataset(Dataset):
    """A scenes split as Panoptic FPN's training samples: an :class:`InstanceDataset` item
    with ``semantic`` (``Tensor[H, W]`` int64: 0 thing, ``1..S`` stuff, 255 ignored) added.

    Args:
        instances: the split's instances (images under ``ROOT/images/<split>``).
        stuff_ids: the stuff category ids, in label order (label ``j`` is ``stuff_ids[j-1]``).
    """

    def __init__(self, instances: InstanceDataset, stuff_ids: list[int]) -> None:
        self.instances = instances
        split = instances.image_dir.name
        self.root = instances.image_dir.parent.parent
        self.semantic_dir = self.root / "semantic" / split
        self.panoptic_dir = self.root / "panoptic" / split
        self.panoptic_json = self.root / "annotations" / f"panoptic_{split}.json"
        # Scenes' semantic PNGs hold category_id - 1; map that to the semantic branch's labels.
        self.lut = np.zeros(256, np.int64)
        self.lut[IGNORE] = IGNORE
        for label, cat in enumerate(stuff_ids, start=1):
            self.lut[cat - 1] = label

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        from modernvision.data.io import read_image

        image, target = self.instances[index]
        rec = self.instances.records.images[index]
        path = self.semantic_dir / rec.file_name
        sem = np.asarray(read_image(path, mode="L", what="semantic map"))
        if sem.shape != tuple(image.shape[-2:]):
            raise BadFileError(f"{path}: semantic map is {sem.shape[1]}x{sem.shape[0]} but the "
                               f"image is {image.shape[-1]}x{image.shape[-2]}")
        target["semantic"] = torch.from_numpy(self.lut[sem])
        return image, target


def _unwrap(dataset: Dataset) -> PanopticSceneDataset:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    if not isinstance(dataset, PanopticSceneDataset):
        raise TypeError(f"expected a PanopticSceneDataset, got {type(dataset).__name__}")
    return dataset


class PanopticEvaluator:
    """PQ / SQ / RQ (all, things, stuff) against the split's COCO panoptic ground truth, plus
    COCO box and mask AP of the detections.

    Args:
        dataset: the split.
        categories: the COCO categories (``id``, ``isthing``).
    """

    def __init__(self, dataset: PanopticSceneDataset, categories: list[dict]) -> None:
        from modernvision.data.formats.coco import coco_to_dict, read_coco_panoptic

        self.dataset = dataset
        records, _ = read_coco_panoptic(dataset.panoptic_json)
        self.records = {r.image_id: r for r in records}
        self.categories = {int(c["id"]): bool(c["isthing"]) for c in categories}
        self.coco = CocoEvaluator(coco_to_dict(dataset.instances.records, things_only=True),
                                  iou_types=("bbox", "segm"))
        self.reset()

    def reset(self) -> None:
        from modernvision.metrics.panoptic import PanopticQuality

        self.coco.reset()
        self.pq = PanopticQuality(self.categories)

    def update(self, predictions: list[Any], targets: list[dict]) -> None:
        self.coco.update([p.detections for p in predictions], targets)
        for pred, target in zip(predictions, targets, strict=True):
            rec = self.records[int(target["image_id"])]
            gt = (rec.load_ids(self.dataset.panoptic_dir),
                  [{"id": s.id, "category_id": s.category_id, "iscrowd": s.iscrowd}
                   for s in rec.segments])
            self.pq.update((pred.panoptic.cpu().numpy(), pred.segments), gt)

    def compute(self) -> dict[str, float]:
        """Every rank's images: the COCO part gathers its results, PQ sums the ranks' counts."""
        from modernvision.engine import distributed as dist_utils
        from modernvision.metrics.panoptic import PanopticQuality

        out = self.coco.compute()
        total = PanopticQuality(self.categories)
        for part in dist_utils.all_gather_object(self.pq):
            total.merge(part)
        result = total.compute()
        for suffix, stat in (("", result.all), ("_things", result.things),
                             ("_stuff", result.stuff)):
            out |= {f"PQ{suffix}": stat.pq, f"SQ{suffix}": stat.sq, f"RQ{suffix}": stat.rq}
        return out


@register_job
class PanopticJob(InstanceJob):
    name = "panoptic"
    monitor = ("val_PQ", "max")

    @staticmethod
    def _stuff_ids(meta: dict) -> list[int]:
        return [int(c["id"]) for c in meta["stuff"]]

    def build_data(self, cfg: Any) -> DataParts:
        from modernvision.data.formats.coco import read_coco_panoptic

        parts = super().build_data(cfg)
        # The instances file lists the things only; the panoptic file has every category.
        panoptic_json = PanopticSceneDataset(parts.train, []).panoptic_json
        _, categories = read_coco_panoptic(panoptic_json)
        stuff = [{"id": c.id, "name": c.name} for c in categories if not c.isthing]
        if not stuff:
            raise InvalidArgumentError(f"--data {cfg.data}: {panoptic_json} has no stuff "
                                       "categories; a panoptic model needs stuff (scenes' "
                                       "brick, grass, gravel)")
        meta = parts.meta | {"stuff": stuff,
                             "all_categories": [{"id": c.id, "name": c.name,
                                                 "isthing": int(c.isthing)}
                                                for c in categories]}
        ids = self._stuff_ids(meta)
        return DataParts(train=PanopticSceneDataset(parts.train, ids),
                         val=PanopticSceneDataset(parts.val, ids),
                         test=PanopticSceneDataset(parts.test, ids), meta=meta)

    def build_model(self, cfg: Any, meta: dict, *, pretrained: bool = True) -> nn.Module:
        ids = self._stuff_ids(meta)
        cfg = dataclasses.replace(cfg, model_kwargs={**cfg.model_kwargs,
                                                     "num_stuff_classes": len(ids),
                                                     "stuff_category_ids": ids})
        return super().build_model(cfg, meta, pretrained=pretrained)

    def build_evaluator(self, cfg: Any, meta: dict, dataset: Dataset) -> PanopticEvaluator:
        return PanopticEvaluator(_unwrap(dataset), meta["all_categories"])

    def split_dataset(self, cfg: Any, meta: dict, split: str,
                      data: str | None = None) -> Dataset:
        return PanopticSceneDataset(super().split_dataset(cfg, meta, split, data),
                                    self._stuff_ids(meta))

    def write_test_artefacts(self, run_dir: Path, evaluator: PanopticEvaluator,
                             cfg: Any, meta: dict, metrics: dict) -> None:
        """``test_detections.json`` from the evaluator's COCO part (boxes and masks)."""
        super().write_test_artefacts(run_dir, evaluator.coco, cfg, meta, metrics)

    def summary_line(self, metrics: dict[str, float], prefix: str = "test_") -> str:
        m = {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}
        return (f"test PQ {m['PQ']:.4f} (SQ {m['SQ']:.4f}, RQ {m['RQ']:.4f}; things PQ "
                f"{m['PQ_things']:.4f}, stuff PQ {m['PQ_stuff']:.4f}), mask AP "
                f"{m['mask_AP']:.4f} on {metrics['test_images']} images")

    def predict(self, run: LoadedRun, paths: list[Path], options: dict) -> list[dict]:
        from modernvision.data.formats.coco import write_coco_panoptic
        from modernvision.data.formats.records import Category
        from modernvision.data.io import read_image
        from modernvision.viz.draw import save_image

        if "score_thresh" in options:
            raise InvalidArgumentError(
                "--score-thresh does not apply to panoptic runs: the merge keeps instances "
                f"scoring at least the model's instance_score_thresh "
                f"({run.model.instance_score_thresh})")
        out = Path(options["out"]) if options.get("out") else None
        cats = {int(c["id"]): c for c in run.meta["all_categories"]}
        device = next(run.model.parameters()).device
        results, records = [], []
        for k, path in enumerate(paths, start=1):
            rgb = read_image(path, mode="RGB")
            x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255)
            with torch.no_grad():
                pan = run.model([x.to(device)])[0]
            segments = [{"id": s["id"], "label": cats[s["category_id"]]["name"],
                         "thing": s["isthing"], "area": s["area"],
                         **({"score": round(s["score"], 3)} if s["isthing"] else {})}
                        for s in pan.segments]
            things = [s for s in segments if s["thing"]]
            stuff = [s for s in segments if not s["thing"]]
            text = (f"{path}: {len(things)} thing{'' if len(things) == 1 else 's'}, "
                    f"{len(stuff)} stuff region{'' if len(stuff) == 1 else 's'}" + "".join(
                        f"; {s['label']} {s['area']} px" for s in segments))
            if out is not None:
                save_image(draw_panoptic(rgb, pan, cats), out / f"{path.stem}.png")
                png, rec = pan.to_coco(k, path.name)
                rec.segments_file = f"{path.stem}.png"
                save_image(png, out / "panoptic" / rec.segments_file)
                records.append(rec)
            results.append({"image": str(path), "segments": segments, "text": text})
        if out is not None:
            categories = [Category(int(c["id"]), c["name"], isthing=bool(c["isthing"]))
                          for c in run.meta["all_categories"]]
            write_coco_panoptic(records, categories, out / "panoptic.json")
        return results


def draw_panoptic(rgb: np.ndarray, pan: Any, categories: dict[int, dict], *,
                  alpha: float = 0.55) -> np.ndarray:
    """The panoptic colouring: each stuff class in a muted colour, each thing in its own bright
    colour with its label and score; void pixels as they are."""
    from modernvision.viz.draw import draw_boxes, draw_masks, palette

    ids = pan.panoptic.cpu().numpy()
    stuff_ids = sorted(c for c, v in categories.items() if not v["isthing"])
    muted = dict(zip(stuff_ids, palette(len(stuff_ids), saturation=0.25, value=0.7)))
    bright = palette(len(pan.segments) + 1)
    masks, colors, boxes, tags, box_colors = [], [], [], [], []
    for k, s in enumerate(pan.segments):
        mask = ids == s["id"]
        masks.append(mask)
        if s["isthing"]:
            colors.append(bright[k])
            ys, xs = np.nonzero(mask)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            tags.append(f"{categories[s['category_id']]['name']} {s['score']:.2f}")
            box_colors.append(bright[k])
        else:
            colors.append(muted[s["category_id"]])
    out = rgb
    if masks:
        out = draw_masks(rgb, np.stack(masks), colors=colors, alpha=alpha)
    if boxes:
        out = draw_boxes(out, np.array(boxes, dtype=np.float32), labels=tags, colors=box_colors)
    return out
