"""Class weights for the per-pixel cross entropy: median frequency balancing.

Eigen & Fergus, "Predicting Depth, Surface Normals and Semantic Labels with a Common Multi-Scale
Convolutional Architecture", ICCV 2015, arXiv:1411.4734, Sec. 4.3 (also SegNet's training,
arXiv:1511.00561): class ``c`` is weighted by ``median_freq / freq(c)``, where ``freq(c)`` is the
number of pixels of class ``c`` divided by the number of pixels of the images in which ``c``
appears, and ``median_freq`` is the median of these frequencies. Rare classes (small objects)
then weigh as much in the loss as the large ones that cover most pixels.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from modernvision._errors import InvalidArgumentError

__all__ = ["label_frequencies", "median_frequency_weights"]


def label_frequencies(label_maps: Iterable[Tensor], num_classes: int, *,
                      ignore_index: int = 255) -> Tensor:
    """``freq(c)`` of Eigen & Fergus: ``Tensor[num_classes]`` float64, 0 for absent classes.

    Args:
        label_maps: integer label maps ``[H, W]``, one per image (``ignore_index`` pixels are
            counted for no class and in no image's total).
        num_classes: classes ``0 .. num_classes - 1``; other labels are an error.
    """
    pixels = torch.zeros(num_classes, dtype=torch.float64)
    present_total = torch.zeros(num_classes, dtype=torch.float64)
    for i, label in enumerate(label_maps):
        label = torch.as_tensor(label).reshape(-1).long()
        label = label[label != ignore_index]
        if label.numel() and (label.min() < 0 or label.max() >= num_classes):
            raise InvalidArgumentError(
                f"label_maps[{i}] has labels outside 0..{num_classes - 1} (and ignore_index "
                f"{ignore_index}): min {int(label.min())}, max {int(label.max())}")
        counts = torch.bincount(label, minlength=num_classes).double()
        pixels += counts
        present_total += (counts > 0).double() * label.numel()
    return torch.where(present_total > 0, pixels / present_total.clamp(min=1), 0.0)


def median_frequency_weights(frequencies: Tensor) -> Tensor:
    """``median_freq / freq(c)`` for the classes present (``freq > 0``); 0 for the others
    (they have no pixels, so their weight never enters the loss). float32."""
    frequencies = torch.as_tensor(frequencies, dtype=torch.float64)
    present = frequencies > 0
    if frequencies.dim() != 1 or not present.any():
        raise InvalidArgumentError(f"frequencies must be a 1-d tensor with a positive entry, "
                                   f"got {frequencies.tolist()}")
    median = frequencies[present].median()  # torch: the lower of the two middle values
    return torch.where(present, median / frequencies.clamp(min=1e-300), 0.0).float()
