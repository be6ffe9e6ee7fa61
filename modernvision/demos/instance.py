"""Demo section: why Mask R-CNN uses RoIAlign, and how Panoptic FPN merges things and stuff.

Runs on two freshly composited scenes, no training (a second or two on 2 cores):

1. **RoIAlign vs RoIPool** (Mask R-CNN, Sec. 3): each ground-truth mask is average-pooled to
   a stride-4, -8 and -16 "feature map", pooled to 14x14 inside its box with RoIAlign and with
   RoI max pooling, pasted back into the image (:func:`paste_masks`) and compared with the
   original mask (IoU). RoIPool rounds the box and bins to the feature grid; RoIAlign samples
   at exact positions. Max pooling also dilates thin strokes (digits), which offsets its
   misalignment on coarse maps, so the comparison is printed as it comes out.
2. **Panoptic merge** (Panoptic FPN, Sec. 3.4): the ground-truth instances (with made-up scores)
   and the ground-truth semantic map go through :func:`panoptic_merge`; the result, written in
   COCO panoptic form and read back, scores PQ = 1 against the ground truth, and its colouring
   (stuff muted, each thing its own colour) is saved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

STRIDES = (4, 8, 16)


def demo_section(out: Path) -> list[str]:
    from modernvision.data.formats.coco import read_coco_panoptic, write_coco_panoptic
    from modernvision.data.io import read_image
    from modernvision.data.scenes import SceneConfig, make_scenes, scene_instances
    from modernvision.engine.jobs.panoptic import draw_panoptic
    from modernvision.metrics import panoptic_quality
    from modernvision.models.segmentation.mask_rcnn import paste_masks
    from modernvision.models.segmentation.panoptic_fpn import PanopticOutput, panoptic_merge
    from modernvision.ops import roi_align, roi_pool
    from modernvision.viz.draw import save_image

    out = Path(out)
    root = out / "scenes"
    summary = make_scenes(root, 2, seed=5, split="test", config=SceneConfig(height=192,
                                                                            width=192),
                          overwrite=True)
    data = scene_instances(root, "test", masks=True)
    records, categories = read_coco_panoptic(summary.paths.panoptic_json)
    things = {c.id: c.isthing for c in categories}
    stuff_ids = [c.id for c in categories if not c.isthing]
    names = {c.id: {"name": c.name, "isthing": c.isthing} for c in categories}

    ious: dict[tuple[str, int], list[float]] = {(k, s): [] for k in ("align", "pool")
                                                 for s in STRIDES}
    predictions, truths, pan_records = [], [], []
    for k in range(len(data)):
        image, target = data[k]
        masks = target["masks"].float()  # (N, H, W)
        boxes = target["boxes"].as_subclass(torch.Tensor).float()
        h, w = masks.shape[-2:]
        # "Feature maps" of strides 4, 8 and 16 holding the masks, as backbone levels would.
        for stride in STRIDES:
            feature = F.avg_pool2d(masks[None], stride)  # (1, N, H/s, W/s)
            for n in range(len(masks)):
                rois = torch.cat([torch.zeros(1, 1), boxes[n:n + 1]], dim=1)
                pooled = {"align": roi_align(feature[:, n:n + 1], rois, 14, 1 / stride, 2),
                          "pool": roi_pool(feature[:, n:n + 1], rois, 14, 1 / stride)}
                for kind, grid in pooled.items():
                    pasted = paste_masks(grid, boxes[n:n + 1], (h, w))[0, 0] >= 0.5
                    gt = masks[n] > 0
                    ious[(kind, stride)].append(float((pasted & gt).sum() / (pasted | gt).sum()))
        # Panoptic merge of the ground truth (scores made up: later objects lie on top).
        scores = torch.linspace(0.99, 0.6, len(masks))
        semantic_png = read_image(summary.paths.semantic / data.records.images[k].file_name,
                                  mode="L", what="semantic map")
        lut = np.zeros(256, np.int64)
        for label, cat in enumerate(stuff_ids, start=1):
            lut[cat - 1] = label
        semantic = torch.from_numpy(lut[semantic_png])
        order = torch.arange(len(masks) - 1, -1, -1)  # top object first
        ids, segments = panoptic_merge(masks[order] > 0, scores, target["labels"][order],
                                       semantic, stuff_ids, stuff_area=1)
        pan = PanopticOutput(None, semantic, ids, segments)
        png, rec = pan.to_coco(data.records.images[k].image_id,
                               data.records.images[k].file_name)
        save_image(png, out / "panoptic_pred" / rec.segments_file)
        pan_records.append(rec)
        rgb = image.permute(1, 2, 0).numpy()
        save_image(draw_panoptic(rgb, pan, names), out / f"panoptic_{k + 1}.png")
        gt_rec = records[k]
        truths.append((gt_rec.load_ids(summary.paths.panoptic),
                       [{"id": s.id, "category_id": s.category_id} for s in gt_rec.segments]))
    write_coco_panoptic(pan_records, categories, out / "panoptic_pred.json")
    back, _ = read_coco_panoptic(out / "panoptic_pred.json")
    for rec in back:
        predictions.append((rec.load_ids(out / "panoptic_pred"),
                            [{"id": s.id, "category_id": s.category_id} for s in rec.segments]))
    pq = panoptic_quality(predictions, truths, things)
    return [
        f"RoIAlign vs RoIPool: {len(ious[('align', 4)])} scene masks pooled 14x14 from a map "
        "of stride 4 / 8 / 16 and pasted back, mean IoU with the original: RoIAlign "
        + " / ".join(f"{np.mean(ious[('align', s)]):.3f}" for s in STRIDES) + ", RoIPool "
        + " / ".join(f"{np.mean(ious[('pool', s)]):.3f}" for s in STRIDES)
        + " (max pooling also dilates thin strokes, which helps on coarse maps)",
        f"panoptic merge of the ground truth, written as COCO panoptic and read back: PQ "
        f"{pq.all.pq:.3f} (things {pq.things.pq:.3f}, stuff {pq.stuff.pq:.3f}); colouring in "
        f"{out}/panoptic_1.png",
    ]
