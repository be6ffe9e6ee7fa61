"""Anchor boxes: ``len(sizes) x len(aspect_ratios)`` reference boxes at every feature position.

"Faster R-CNN: Towards Real-Time Object Detection with Region Proposal Networks" (Ren et al.,
2015, arXiv:1506.01497), sec. 3.1.1: at each sliding-window position ``k`` anchors of several
scales and aspect ratios share a centre. Conventions follow torchvision's ``AnchorGenerator``
(the reference the tests compare against): an aspect ratio is ``height / width`` and keeps the
area ``size^2``; base anchors are centred on 0 and rounded to integers; anchors are ordered by
position (row-major) and, within a position, by aspect ratio, then size; the stride of a level is
``image_size // feature_size``, and the anchor of position ``(i, j)`` is centred at
``(j * stride_w, i * stride_h)`` -- a position's top-left corner, not its centre, as in the
released Faster R-CNN code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["AnchorGenerator", "cell_anchors", "grid_anchors"]


def cell_anchors(
    sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The ``A = len(aspect_ratios) * len(sizes)`` anchors of one position, centred on 0.

    Args:
        sizes: anchor sizes (square root of the area), in pixels.
        aspect_ratios: ``height / width`` ratios.

    Returns:
        ``Tensor[A, 4]`` rounded ``(x1, y1, x2, y2)``, ordered by aspect ratio, then size.
    """
    if not sizes or not aspect_ratios:
        raise ValueError("sizes and aspect_ratios must be non-empty")
    if any(s <= 0 for s in sizes) or any(r <= 0 for r in aspect_ratios):
        raise ValueError(
            f"sizes and aspect_ratios must be positive, got {list(sizes)} and {list(aspect_ratios)}"
        )
    scales = torch.as_tensor(sizes, dtype=dtype, device=device)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    widths = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    heights = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return (torch.stack([-widths, -heights, widths, heights], dim=1) / 2).round()


def grid_anchors(base: Tensor, grid_size: tuple[int, int], stride: tuple[int, int]) -> Tensor:
    """Anchors of a whole feature map.

    Args:
        base: ``Tensor[A, 4]`` anchors of one position (:func:`cell_anchors`).
        grid_size: ``(height, width)`` of the feature map.
        stride: ``(stride_h, stride_w)`` in pixels.

    Returns:
        ``Tensor[height * width * A, 4]``, position-major (row-major positions).
    """
    grid_h, grid_w = grid_size
    stride_h, stride_w = stride
    device = base.device
    shift_x = torch.arange(grid_w, dtype=torch.int64, device=device) * stride_w
    shift_y = torch.arange(grid_h, dtype=torch.int64, device=device) * stride_h
    shift_y, shift_x = torch.meshgrid(shift_y, shift_x, indexing="ij")
    shift_x = shift_x.reshape(-1)
    shift_y = shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)


class AnchorGenerator(nn.Module):
    """Anchors for a set of feature maps (one entry of ``sizes``/``aspect_ratios`` per level).

    Args:
        sizes: per level, the anchor sizes, e.g. ``((32,), (64,), (128,))`` for an FPN.
        aspect_ratios: per level, the ``height / width`` ratios, e.g. ``((0.5, 1.0, 2.0),) * 3``.
    """

    def __init__(
        self,
        sizes: Sequence[Sequence[float]] = ((128, 256, 512),),
        aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),),
    ) -> None:
        super().__init__()
        if len(sizes) != len(aspect_ratios):
            raise ValueError(
                f"sizes and aspect_ratios need one entry per feature level, got {len(sizes)} "
                f"and {len(aspect_ratios)}"
            )
        if any(not isinstance(s, Sequence) for s in sizes) or any(
            not isinstance(r, Sequence) for r in aspect_ratios
        ):
            raise TypeError("sizes and aspect_ratios must be sequences of sequences, one per level")
        self.sizes = tuple(tuple(s) for s in sizes)
        self.aspect_ratios = tuple(tuple(r) for r in aspect_ratios)
        self.cell_anchors = [cell_anchors(s, r) for s, r in zip(self.sizes, self.aspect_ratios)]

    def num_anchors_per_location(self) -> list[int]:
        """Anchors per position, per level."""
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios)]

    def anchors_per_level(
        self,
        image_size: tuple[int, int],
        grid_sizes: Sequence[tuple[int, int]],
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> list[Tensor]:
        """Anchors of each level for a (padded) image of ``image_size = (height, width)``."""
        if len(grid_sizes) != len(self.cell_anchors):
            raise ValueError(
                f"got {len(grid_sizes)} feature maps for an AnchorGenerator with "
                f"{len(self.cell_anchors)} levels"
            )
        levels = []
        for (grid_h, grid_w), base in zip(grid_sizes, self.cell_anchors):
            if grid_h <= 0 or grid_w <= 0:
                raise ValueError(f"feature map size must be positive, got {(grid_h, grid_w)}")
            stride = (image_size[0] // grid_h, image_size[1] // grid_w)
            levels.append(
                grid_anchors(base.to(dtype=dtype, device=device), (grid_h, grid_w), stride)
            )
        return levels

    def forward(self, images: Tensor, feature_maps: Sequence[Tensor]) -> list[Tensor]:
        """Anchors of all levels, concatenated, for each image of the batch.

        Args:
            images: ``Tensor[B, C, H, W]`` padded image batch (only its shape is used).
            feature_maps: per level, ``Tensor[B, C_l, H_l, W_l]``.

        Returns:
            ``B`` tensors ``[sum_l H_l * W_l * A_l, 4]`` (identical; one per image).
        """
        if images.dim() != 4:
            raise ValueError(f"images must have shape [B, C, H, W], got {list(images.shape)}")
        grid_sizes = [tuple(f.shape[-2:]) for f in feature_maps]
        levels = self.anchors_per_level(
            tuple(images.shape[-2:]),
            grid_sizes,
            dtype=feature_maps[0].dtype,
            device=feature_maps[0].device,
        )
        anchors = torch.cat(levels)
        return [anchors for _ in range(images.shape[0])]
