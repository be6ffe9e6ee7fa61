"""Demo section: anchors learned by k-means (YOLOv3) and objects as points (CenterNet).

On a few freshly composited scenes: the k-means (``1 - IoU``) anchors and their mean IoU with
the boxes against the YOLOv3 paper's COCO anchors; then one scene's CenterNet ground truth --
its Gaussian heatmap (maximum over classes, CornerNet radii) drawn beside the image -- decoded
back into boxes by 3x3 max-pool peaks, which recovers the given boxes. No training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def demo_section(out: Path) -> list[str]:
    from modernvision.data.formats.coco import read_coco
    from modernvision.data.scenes import SceneConfig, ScenePaths, make_scenes
    from modernvision.models.detection.centernet import centernet_targets, decode_centers
    from modernvision.models.detection.yolov3 import COCO_ANCHORS
    from modernvision.ops import box_iou, kmeans_anchors, mean_best_iou
    from modernvision.viz.draw import draw_boxes, save_image

    out = Path(out)
    root = out / "scenes"
    config = SceneConfig(height=128, width=128, min_object_size=12, max_object_size=48)
    make_scenes(root, 24, seed=0, config=config, overwrite=True)
    records = read_coco(ScenePaths(root, "train").instances_json)
    sizes = torch.tensor([[a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1]]
                          for im in records.images for a in im.annotations], dtype=torch.float64)
    anchors, iou = kmeans_anchors(sizes, 9, seed=0)
    paper = mean_best_iou(sizes, torch.tensor(COCO_ANCHORS, dtype=torch.float64) * 128 / 416)
    lines = [f"YOLOv3 anchors: k-means (1 - IoU) on {sizes.shape[0]} boxes of 24 scenes -> "
             f"mean IoU {iou:.3f}; the paper's COCO anchors scaled to 128 px: {paper:.3f}",
             "  k-means anchors (w x h): " + ", ".join(f"{w:.0f}x{h:.0f}" for w, h in anchors)]

    image = records.images[0]
    boxes = torch.tensor([a.bbox for a in image.annotations], dtype=torch.float32)
    labels = torch.tensor([a.category_id for a in image.annotations])
    num_classes = max(c.id for c in records.categories if c.isthing)
    t = centernet_targets([{"boxes": boxes, "labels": labels}], num_classes, (32, 32), 4)
    offset, size = torch.zeros(1, 2, 32, 32), torch.zeros(1, 2, 32, 32)
    index, _, ys, xs = t["index"].unbind(1)
    offset[index, :, ys, xs] = t["offset"]
    size[index, :, ys, xs] = t["size"]
    decoded, scores, _ = decode_centers(t["heatmap"], offset, size, 4, k=len(boxes))
    best = box_iou(decoded[0], boxes).max(0).values.min()
    from PIL import Image

    rgb = np.asarray(Image.open(ScenePaths(root, "train").images / image.file_name).convert("RGB"))
    heat = t["heatmap"][0].max(0).values.numpy()
    heat = np.kron(heat, np.ones((4, 4)))  # stride 4 -> image pixels
    heat_rgb = (np.stack([heat] * 3, -1) * 255).astype(np.uint8)
    panel = np.concatenate([draw_boxes(rgb, boxes), heat_rgb], axis=1)
    path = save_image(panel, out / "centernet_targets.png")
    peaks = int((scores == 1).sum())
    lines.append(f"CenterNet: {len(boxes)} objects -> {peaks} heatmap peaks of 1 at stride 4;"
                 f" decoding them gives back every box (worst IoU {float(best):.4f}) -> {path}")
    return lines
