"""Demo section: a Faster R-CNN our own ``modernvision train`` produced, on scenes it never saw.

The weights (``assets/fasterrcnn_mobilenet_v2_050_fpn_scenes.pt``, fp16, under 5 MB) are those of
``fasterrcnn_mobilenet_v2_050_fpn`` trained on the composited scenes (the command that
reproduces them is in ``bench/detection.md``). The section writes 20 fresh test scenes with
:func:`modernvision.data.scenes.make_scenes` under a seed the training never used, detects the
objects, scores them with COCO's AP50 and draws one image.
"""

from __future__ import annotations

from pathlib import Path

import torch

from modernvision.assets import ASSETS_DIR

__all__ = ["ASSET", "demo_section", "load_detector"]

ASSET = ASSETS_DIR / "fasterrcnn_mobilenet_v2_050_fpn_scenes.pt"
#: Scenes of the demo: a seed that none of the bench's splits (0, 1, 2) uses.
SEED, NUM_IMAGES = 20261202, 20


def load_detector(path: Path | None = None, **overrides) -> tuple[torch.nn.Module, dict]:
    """The shipped detector (eval mode, float32) and its record (model name, categories,
    builder keywords, how it was trained); ``overrides`` replace builder keywords (e.g. fewer
    test-time proposals)."""
    from modernvision.models import create

    blob = torch.load(path or ASSET, map_location="cpu", weights_only=True)
    model = create(blob["model_name"], num_classes=blob["num_classes"],
                   **(blob["model_kwargs"] | overrides))
    model.load_state_dict(blob["state_dict"])  # copies the fp16 tensors into float32 ones
    return model.eval(), blob


def demo_section(out: Path) -> list[str]:
    """Detect on 20 held-out scenes; AP50 and one drawn image under ``out``."""
    import numpy as np

    from modernvision.data.formats.coco import coco_to_dict
    from modernvision.data.scenes import make_scenes, scene_instances
    from modernvision.metrics.coco import coco_evaluate
    from modernvision.viz.draw import draw_instances, save_image

    if not ASSET.is_file():
        return [f"detection: no shipped weights at {ASSET}; see bench/detection.md"]
    # 300 proposals per image instead of 1000: the scenes hold at most 8 objects
    model, blob = load_detector(ASSET, rpn_pre_nms_top_n_test=500, rpn_post_nms_top_n_test=300)
    names = {c["id"]: c["name"] for c in blob["categories"]}
    root = Path(out) / "detection-scenes"
    make_scenes(root, NUM_IMAGES, SEED, split="test", overwrite=True)
    data = scene_instances(root, "test")
    samples = [data[k] for k in range(len(data))]
    results, detections = [], []
    with torch.no_grad():
        for start in range(0, len(samples), 5):  # batches of 5 same-size scenes
            chunk = samples[start:start + 5]
            detections += model([image.float().div(255) for image, _ in chunk])
    for (_, target), det in zip(samples, detections):
        results += det.to_coco_results(int(target["image_id"]))
    first = (samples[0][0], detections[0])
    stats = coco_evaluate(coco_to_dict(data.records, things_only=True), results)
    image, det = first
    keep = det.scores >= 0.5
    drawn = draw_instances(np.ascontiguousarray(image.permute(1, 2, 0).numpy()),
                           boxes=det.boxes[keep], labels=det.labels[keep],
                           scores=det.scores[keep], class_names=names)
    path = Path(out) / "detection.png"
    save_image(drawn, path)
    params = sum(p.numel() for p in model.parameters())
    found = ", ".join(f"{names[int(k)]} {float(s):.2f}"
                      for k, s in zip(det.labels[keep][:5], det.scores[keep][:5]))
    return [
        f"{blob['model_name']} ({params / 1e6:.1f} M params, {ASSET.stat().st_size / 1e6:.1f} MB "
        f"fp16), trained by our `modernvision train` ({blob['trained']})",
        f"{NUM_IMAGES} new scenes (seed {SEED}): COCO AP50 {stats['AP50']:.3f}, AP "
        f"{stats['AP']:.3f}",
        f"first scene: {int(keep.sum())} objects with score >= 0.5 ({found}); drawn to {path}",
    ]
