"""Label-preserving augmentation (torchvision.transforms.v2) and test-time preprocessing.

Training: random crop with padding and small affine jitter (rotation, translation, scale).
Horizontal flips only where a mirror image keeps the label: never for digits (a mirrored 2, a
rotated 6 is another digit or none), allowed for clothing and faces. Test time: resize and
centre crop only.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

# Per-dataset normalisation statistics (of the training split, grey level in [0, 1]).
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "mnist-5k": ((0.1307,), (0.3081,)),
    "digits": ((0.3051,), (0.3826,)),
    "opencv-digits": ((0.1304,), (0.3067,)),
    "lfw-subset": ((0.4531,), (0.2407,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

FLIP_SAFE = {"fashion-mnist": True, "lfw-subset": True, "imagenet": True}


def build_transforms(
    dataset: str,
    *,
    train: bool,
    image_size: int | None = None,
    channels: int = 1,
    augment: bool = True,
) -> v2.Compose:
    """The transform pipeline for a named data set.

    Args:
        dataset: data set name (sets normalisation and whether flips are label-preserving).
        train: training pipeline (augmentation) or test-time (resize + centre crop only).
        image_size: output side; ``None`` keeps the native size.
        channels: 1 for grey, 3 to repeat grey into RGB (e.g. for ImageNet-style nets).
        augment: set False for a training pipeline without augmentation.
    """
    mean, std = NORMALIZATION.get(dataset, ((0.5,), (0.5,)))
    if channels == 3 and len(mean) == 1:
        mean, std = mean * 3, std * 3
    steps: list = [v2.ToImage()]
    if channels == 3:
        steps.append(v2.RGB())
    if image_size is not None:
        steps += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    if train and augment:
        size = image_size
        pad = 2 if size is None or size <= 32 else max(2, size // 16)
        steps += [
            v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.95, 1.05)),
        ]
        if size is not None:
            steps.append(v2.RandomCrop(size, padding=pad))
        if FLIP_SAFE.get(dataset, False):
            steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    return v2.Compose(steps)
