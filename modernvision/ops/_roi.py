"""Argument handling shared by ``roi_pool`` and ``roi_align``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from modernvision.ops._checks import check_boxes, check_tensor


def pair(output_size: int | Sequence[int]) -> tuple[int, int]:
    """``output_size`` as ``(height, width)`` positive ints."""
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    if (
        not isinstance(output_size, Sequence)
        or len(output_size) != 2
        or not all(isinstance(v, int) and v > 0 for v in output_size)
    ):
        raise ValueError(
            f"output_size must be a positive int or (height, width) of positive ints, "
            f"got {output_size!r}"
        )
    return int(output_size[0]), int(output_size[1])


def check_input(input: Tensor) -> Tensor:
    """``input`` must be a floating ``Tensor[N, C, H, W]``."""
    check_tensor(input, "input")
    if input.dim() != 4:
        raise ValueError(f"input must have shape [N, C, H, W], got {list(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating point tensor, got {input.dtype}")
    return input


def to_rois(boxes: Tensor | Sequence[Tensor], input: Tensor) -> Tensor:
    """Boxes as ``Tensor[K, 5]`` rows ``(batch_index, x1, y1, x2, y2)`` in ``input``'s dtype.

    Accepts ``Tensor[K, 5]`` or a list with one ``Tensor[L, 4]`` per image of ``input``. Checks
    the corner order and that every batch index is an integer in ``[0, N)``.
    """
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(
                "boxes must be a Tensor[K, 5] of (batch_index, x1, y1, x2, y2) or a list of "
                f"Tensor[L, 4], got a tensor of shape {list(boxes.shape)}"
            )
        rois = boxes
    elif isinstance(boxes, (list, tuple)):
        if len(boxes) != input.shape[0]:
            raise ValueError(
                f"boxes as a list must hold one Tensor[L, 4] per image: input has "
                f"{input.shape[0]} images, boxes has {len(boxes)} entries"
            )
        parts = []
        for i, b in enumerate(boxes):
            check_tensor(b, f"boxes[{i}]")
            if b.dim() != 2 or b.shape[1] != 4:
                raise ValueError(f"boxes[{i}] must have shape [L, 4], got {list(b.shape)}")
            index = torch.full((b.shape[0], 1), i, dtype=input.dtype, device=b.device)
            parts.append(torch.cat([index, b.to(input.dtype)], dim=1))
        if not parts:
            return torch.zeros((0, 5), dtype=input.dtype, device=input.device)
        rois = torch.cat(parts, dim=0)
    else:
        raise TypeError(
            f"boxes must be a Tensor[K, 5] or a list of Tensor[L, 4], got {type(boxes).__name__}"
        )
    if rois.device != input.device:
        raise ValueError(f"boxes must be on input's device {input.device}, got {rois.device}")
    if rois.is_complex() or rois.dtype == torch.bool:
        raise TypeError(f"boxes must be real-valued, got {rois.dtype}")
    rois = rois.detach().to(input.dtype)
    if rois.numel() == 0:
        return rois
    # Checked on the host in float64 (exact for every float dtype): for CUDA tensors one copy
    # and sync instead of a dozen small kernels and a sync; details only on failure.
    host = rois.to("cpu", torch.float64).numpy()
    index = host[:, 0]
    bad_index = (index != np.floor(index)) | (index < 0) | (index >= input.shape[0])
    bad_order = (host[:, 3] < host[:, 1]) | (host[:, 4] < host[:, 2])
    if (bad_index | bad_order).any():
        check_boxes(rois[:, 1:], "boxes")
        k = int(np.flatnonzero(bad_index)[0])
        raise ValueError(
            f"boxes[{k}, 0] = {index[k]} is not a batch index in [0, {input.shape[0]})"
        )
    return rois
