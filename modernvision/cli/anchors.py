"""``modernvision anchors --data scenes:DIR -k 9``: anchor shapes learned from a data set.

Reads the boxes of one split (scenes, COCO, VOC or YOLO data, the specs of ``train --data``),
optionally rescales each image's boxes as a detector's transform would (``--min-size`` /
``--max-size``: the shorter side to ``min_size``, the longer at most ``max_size``), clusters
their ``(w, h)`` with k-means under the ``1 - IoU`` distance
(:func:`modernvision.ops.kmeans_anchors`, YOLO9000 Sec. 2) and prints the anchors, their mean
IoU with the boxes, the same for the YOLOv3 paper's COCO anchors scaled to the images, and the
``--model-arg`` that builds ``yolov3_*`` with them.
"""

from __future__ import annotations

import argparse
import json

from modernvision.cli._types import int_at_least, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("anchors", help="k-means (1 - IoU) anchor shapes of a detection data set",
                       description="Cluster a data set's box sizes into k anchors with the "
                                   "1 - IoU distance (YOLO9000 / YOLOv3) and print them with "
                                   "their mean IoU.")
    p.add_argument("--data", required=True,
                   help="scenes:DIR, coco:IMAGES,TRAIN.json[,...], voc:DIR or yolo:DIR")
    p.add_argument("-k", type=positive_int, default=9, help="number of anchors (default 9)")
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="default train")
    p.add_argument("--min-size", type=positive_int, default=None,
                   help="rescale each image's boxes as a detector resizing its shorter side to "
                        "this would (default: the images' own pixels)")
    p.add_argument("--max-size", type=positive_int, default=None,
                   help="with --min-size: the longer side's cap (default: no cap)")
    p.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of the k-means++ initialisation (default 0)")
    p.set_defaults(func=_run)


def data_box_sizes(data: str, split: str = "train", *, min_size: int | None = None,
                   max_size: int | None = None):
    """``Tensor[N, 2]`` ``(w, h)`` of every non-crowd box of ``split`` (rescaled as said),
    and the median shorter side of its images after rescaling."""
    import statistics

    import torch

    from modernvision._errors import InvalidArgumentError
    from modernvision.engine.jobs.configs import parse_data_spec
    from modernvision.engine.jobs.detection import load_splits

    spec = parse_data_spec(data)
    if spec.kind not in ("scenes", "coco", "voc", "yolo"):
        raise InvalidArgumentError(f"--data {data!r}: expected scenes:DIR, coco:..., voc:DIR "
                                   "or yolo:DIR")
    records, _ = load_splits(spec)[0][split]
    sizes, sides = [], []
    for image in records.images:
        scale = 1.0
        if min_size is not None:
            scale = min_size / min(image.height, image.width)
            if max_size is not None:
                scale = min(scale, max_size / max(image.height, image.width))
        sides.append(min(image.height, image.width) * scale)
        for ann in image.annotations:
            x1, y1, x2, y2 = ann.bbox
            if not ann.iscrowd and x2 > x1 and y2 > y1:
                sizes.append(((x2 - x1) * scale, (y2 - y1) * scale))
    if not sizes:
        raise InvalidArgumentError(f"--data {data}: the {split} split has no boxes")
    return torch.tensor(sizes, dtype=torch.float64), statistics.median(sides)


def _run(args: argparse.Namespace) -> int:
    from modernvision._errors import InvalidArgumentError
    from modernvision.models.detection.yolov3 import COCO_ANCHORS
    from modernvision.ops import kmeans_anchors, mean_best_iou

    if args.max_size is not None and args.min_size is None:
        raise InvalidArgumentError("--max-size needs --min-size")
    sizes, side = data_box_sizes(args.data, args.split, min_size=args.min_size,
                                 max_size=args.max_size)
    if sizes.shape[0] < args.k:
        raise InvalidArgumentError(f"-k {args.k}: the {args.split} split has only "
                                   f"{sizes.shape[0]} boxes")
    anchors, iou = kmeans_anchors(sizes, args.k, seed=args.seed)
    pairs = [[round(float(w), 1), round(float(h), 1)] for w, h in anchors]
    print(f"{sizes.shape[0]} boxes of {args.data} ({args.split}); k = {args.k} anchors (w, h), "
          f"by area:")
    for w, h in pairs:
        print(f"  {w:7.1f} x {h:7.1f}")
    print(f"mean IoU of each box with its best anchor: {iou:.4f}")
    import torch

    paper = torch.tensor(COCO_ANCHORS, dtype=torch.float64) * (side / 416)
    print(f"the YOLOv3 paper's 9 COCO anchors scaled by {side:g}/416: mean IoU "
          f"{mean_best_iou(sizes, paper):.4f}")
    if args.k == 9:
        text = json.dumps(pairs, separators=(",", ":"))
        print(f"build YOLOv3 with them: --model-arg anchors={text}")
    return 0
