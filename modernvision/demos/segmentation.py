"""Demo section: semantic segmentation in a few seconds.

The checkerboard effect counted (kernel 3 / stride 2 against kernel 4 / stride 2 and resize +
conv), the share of a rate-24 3x3's taps that fall on the padding, then a small padded U-Net
trained with ``modernvision``'s semantic job on freshly made 64x64 scenes (Fashion-MNIST things
on three textures), its four scores on held-out scenes and colour-coded predictions with a
legend.
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["demo_section"]


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
    lines.append(f"segmentation section took {time.perf_counter() - start:.1f} s")
    return lines
