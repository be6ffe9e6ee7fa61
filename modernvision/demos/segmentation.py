"""Demo section: semantic segmentation in a few seconds.

The checkerboard effect counted (kernel 3 / stride 2 against kernel 4 / stride 2 and resize +
conv), the share of a rate-24 3x3's taps that fall on the padding, then a small padded U-Net
trained with ``modernvision``'s semantic job on freshly made 64x64 scenes (Fashion-MNIST things
on three textures), its four scores on held-out scenes and colour-coded predictions with a
legend. Then, when the package ships them, the weights of a Semantic FPN our own ``train``
produced on the full 256-pixel scenes (``assets/semantic_fpn_mobilenet_v2_050_scenes.pt``; the
command is in ``bench/segmentation.md``), scored on 20 fresh scenes under a seed no bench split
uses.
"""

from __future__ import annotations

import time
from pathlib import Path

from modernvision.assets import ASSETS_DIR

__all__ = ["ASSET", "demo_section", "shipped_section"]

ASSET = ASSETS_DIR / "semantic_fpn_mobilenet_v2_050_scenes.pt"
#: Scenes of the shipped model's part: a seed that none of the bench's splits (0, 1, 2) uses.
SEED, NUM_IMAGES = 20261204, 20


def demo_section(out: Path, *, epochs: int = 8) -> list[str]:
    from modernvision.data.scenes import SceneConfig, make_scenes
    from modernvision.engine.jobs import predict_run, train
    from modernvision.engine.jobs.configs import SemanticConfig
    from modernvision.layers import overlap_counts, padding_tap_fraction
    from modernvision.viz.plots import plot_overlap_counts

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    k3 = overlap_counts(8, kernel_size=3, stride=2)[2:-2, 2:-2]
    k4 = overlap_counts(8, kernel_size=4, stride=2, padding=1)[1:-1, 1:-1]
    lines.append(f"checkerboard: taps per output pixel, transposed k3/s2 "
                 f"{sorted({int(v) for v in k3.unique()})} (uneven), k4/s2 "
                 f"{sorted({int(v) for v in k4.unique()})} (even); plot "
                 f"{plot_overlap_counts(out / 'checkerboard.png')}")
    lines.append(f"rate-24 3x3 on a 16x16 map: {padding_tap_fraction(16, dilation=24):.0%} of "
                 f"its taps on padding; rate 6: {padding_tap_fraction(16, dilation=6):.0%}")

    data = out / "scenes"
    config = SceneConfig(height=64, width=64, objects="fashion", min_objects=1, max_objects=3,
                         min_object_size=16, max_object_size=40)
    make_scenes(data, 40, seed=0, split="train", config=config, overwrite=True)
    make_scenes(data, 8, seed=1, split="val", config=config, overwrite=True)
    cfg = SemanticConfig(model="unet_padded", data=f"scenes:{data}", epochs=epochs,
                         batch_size=4, lr=1e-2, optimizer="adamw", device="cpu",
                         run_dir=str(out / "unet_run"), model_kwargs={"base_width": 8})
    result = train(cfg, overwrite=True, progress=False, log=lambda _: None)
    lines.append(f"unet_padded (base width 8) trained {result['epochs_run']} epochs on 40 "
                 f"scenes (13 classes): held-out mIoU {result['test_miou']:.3f}, pixel acc "
                 f"{result['test_pixel_acc']:.3f}, mean acc {result['test_mean_acc']:.3f}, "
                 f"fwIoU {result['test_fwiou']:.3f}")
    images = sorted((data / "images" / "val").iterdir())[:2]
    preds = predict_run(out / "unet_run", images, options={"out": str(out / "predictions")})
    lines.append(f"predictions with legend in {out / 'predictions'}: {preds[0]['text']}")
    lines += shipped_section(out)
    lines.append(f"segmentation section took {time.perf_counter() - start:.1f} s")
    return lines


def shipped_section(out: Path, *, asset: Path | None = None) -> list[str]:
    """The shipped Semantic FPN on ``NUM_IMAGES`` new 256-pixel scenes: the four scores and
    one drawn prediction under ``out``."""
    import torch

    from modernvision.data.formats.dataset import load_rgb
    from modernvision.data.scenes import SceneSemanticDataset, make_scenes
    from modernvision.engine.jobs.segmentation import semantic_transforms
    from modernvision.metrics.segmentation import SegmentationMetrics
    from modernvision.models import create
    from modernvision.viz.draw import draw_semantic, save_image

    asset = Path(asset or ASSET)
    if not asset.is_file():
        return [f"semantic FPN: no shipped weights at {asset}; see bench/segmentation.md"]
    blob = torch.load(asset, map_location="cpu", weights_only=True)
    classes = blob["classes"]
    model = create(blob["model_name"], num_classes=len(classes), **blob["model_kwargs"])
    model.load_state_dict(blob["state_dict"])  # fp16 tensors copied into float32 ones
    model.eval()
    root = Path(out) / "semantic-scenes"
    make_scenes(root, NUM_IMAGES, SEED, split="test", overwrite=True)
    data = SceneSemanticDataset(root, "test", transforms=semantic_transforms(blob["image_size"]))
    metrics = SegmentationMetrics(len(classes), ignore_index=data.ignore_index)
    # Where the weights were trained class-weighted, the asset may carry a val-chosen offset
    # -tau * log(w) that takes part of the weights' boost of the rare classes back.
    offset = blob.get("logit_offset")
    offset = 0.0 if offset is None else offset.float()[:, None, None]
    first = None
    with torch.no_grad():
        for i in range(len(data)):
            image, target = data[i]
            labels = (model(image[None]) + offset).argmax(1)
            metrics.update(labels, target[None])
            if i == 0:
                first = labels[0]
    scores = metrics.compute()
    rgb = load_rgb(data.paths.images / data.files[0])
    path = Path(out) / "semantic_fpn.png"
    save_image(draw_semantic(rgb, first.numpy(), classes), path)
    return [f"{blob['model_name']} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M "
            f"params, {asset.stat().st_size / 1e6:.1f} MB fp16), trained by our `modernvision "
            f"train` ({blob['trained']})",
            f"{NUM_IMAGES} new scenes (seed {SEED}): mIoU {scores['miou']:.3f}, pixel acc "
            f"{scores['pixel_acc']:.3f}, mean acc {scores['mean_acc']:.3f}, fwIoU "
            f"{scores['fwiou']:.3f}; first scene drawn to {path}"]
