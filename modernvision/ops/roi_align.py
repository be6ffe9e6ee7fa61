"""RoIAlign: bilinear sampling of a fixed grid of bins in each region of interest.

"Mask R-CNN" (He et al., 2017, arXiv:1703.06870), sec. 3: each of the ``PH x PW`` bins of a
region averages ``sampling_ratio^2`` bilinearly interpolated points (``sampling_ratio <= 0``:
``ceil(roi_size / output_size)`` points per side, per region, as in Detectron). ``aligned=True``
shifts the box by half a pixel so that pixel centres sit at half-integers, the correction
Detectron2 introduced; ``aligned=False`` is the paper's original behaviour, which also forces
regions smaller than one pixel to one pixel. Sample points outside ``[-1, H] x [-1, W]`` count as
zero, points in ``[-1, 0]`` are clamped to 0 -- the same border rule as torchvision.

Implementation. Bilinear interpolation is separable, and all samples of a bin row share their
rows (all samples of a bin column their columns). So for each region the two taps of every
sample row are gathered over the region's band of columns and summed per bin row with their
weights (one small batched matmul), then the two taps of every sample column are gathered from
those row sums and summed per bin column. That reads each tap row once per bin row instead of
once per bin, with no Python loop over regions: regions are bucketed by samples per bin and band
width and processed in chunks of bounded memory. Autograd differentiates the gathers and
products, giving torchvision's gradient. On CUDA tensors a Triton kernel
(:mod:`modernvision.ops._roi_align_triton`) computes the forward pass directly; its backward
pass re-runs this implementation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from modernvision.ops._roi import check_input, pair, to_rois

__all__ = ["RoIAlign", "roi_align"]

# Elements of the largest gathered band tensor per chunk (float32: 64 MiB).
_CHUNK_ELEMENTS = 1 << 24


def roi_align(
    input: Tensor,
    boxes: Tensor | Sequence[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (Mask R-CNN, sec. 3).

    Args:
        input: ``Tensor[N, C, H, W]`` feature maps.
        boxes: ``Tensor[K, 5]`` rows ``(batch_index, x1, y1, x2, y2)``, or a list of ``N``
            ``Tensor[L, 4]`` of ``(x1, y1, x2, y2)`` boxes, one per image, in image coordinates.
        output_size: ``(PH, PW)`` bins, or one int for both.
        spatial_scale: factor mapping box coordinates to ``input`` coordinates (``1 / stride``).
        sampling_ratio: sample points per bin side; ``<= 0`` picks ``ceil(roi_size / bins)``.
        aligned: shift boxes by -0.5 pixel (Detectron2's pixel model).

    Returns:
        ``Tensor[K, C, PH, PW]``.
    """
    check_input(input)
    output_height, output_width = pair(output_size)
    rois = to_rois(boxes, input)
    spatial_scale = float(spatial_scale)
    if not math.isfinite(spatial_scale) or spatial_scale <= 0:
        raise ValueError(f"spatial_scale must be a positive number, got {spatial_scale}")
    if not isinstance(sampling_ratio, int):
        raise TypeError(f"sampling_ratio must be an int, got {type(sampling_ratio).__name__}")
    args = (output_height, output_width, spatial_scale, int(sampling_ratio), bool(aligned))
    if input.is_cuda and input.dtype in (torch.float32, torch.float16, torch.bfloat16):
        if _triton_enabled():
            from modernvision.ops._roi_align_triton import roi_align_triton

            return roi_align_triton(input, rois, *args)
    return roi_align_torch(input, rois, *args)


class RoIAlign(nn.Module):
    """Module form of :func:`roi_align`."""

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool = False,
    ) -> None:
        super().__init__()
        self.output_size = pair(output_size)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: Tensor, rois: Tensor | Sequence[Tensor]) -> Tensor:
        return roi_align(
            input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )


def _samples(
    start: Tensor, bin_size: Tensor, grid: Tensor, max_grid: int, bins: int, size: int
) -> tuple[Tensor, Tensor]:
    """Bilinear taps of one axis: feature indices and weights of every sample point.

    Args:
        start: ``[K]`` region start in feature coordinates.
        bin_size: ``[K]`` bin length.
        grid: ``[K]`` int64 samples per bin along this axis (``max_grid`` the largest).
        bins: output bins along this axis.
        size: feature map length along this axis.

    Returns:
        ``(index [K, bins, max_grid, 2], weight [K, bins, max_grid, 2])``: the low and high
        neighbour of each sample and their weights; padding and out-of-map samples weigh 0.
    """
    dtype, device = start.dtype, start.device
    p = torch.arange(bins, dtype=dtype, device=device)
    i = torch.arange(max_grid, dtype=dtype, device=device)
    grid_f = grid.to(dtype)
    # Same float operations, in the same order, as torchvision's kernels:
    # start + p * bin + (i + 0.5) * bin / grid.
    pos = (start[:, None, None] + p[None, :, None] * bin_size[:, None, None]) + (
        (i[None, None, :] + 0.5) * bin_size[:, None, None]
    ) / grid_f[:, None, None]  # (K, bins, max_grid)
    valid = (i[None, None, :] < grid_f[:, None, None]) & (pos >= -1.0) & (pos <= size)
    zero = torch.zeros((), dtype=dtype, device=device)
    pos = torch.where(valid, pos, zero).clamp(min=0)
    low = pos.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, size - 1, low)
    high = torch.where(at_edge, size - 1, low + 1)
    pos = torch.where(at_edge, low.to(dtype), pos)
    frac = pos - low
    weight = torch.stack((torch.where(valid, 1.0 - frac, zero), torch.where(valid, frac, zero)), -1)
    return torch.stack((low, high), dim=-1), weight


def _bucket(values: Tensor) -> Tensor:
    """``ceil(log2(max(values, 1)))``: sizes within a factor of two share a bucket."""
    return torch.ceil(torch.log2(values.clamp(min=1).to(torch.float64))).long()


def roi_align_torch(
    input: Tensor,
    rois: Tensor,
    output_height: int,
    output_width: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """Pure-PyTorch RoIAlign on checked arguments (``rois``: ``Tensor[K, 5]``, input's dtype)."""
    num_rois = rois.shape[0]
    _, channels, height, width = input.shape
    out_dtype = input.dtype
    if input.dtype not in (torch.float32, torch.float64):
        input = input.float()
        rois = rois.float()
    if num_rois == 0 or channels == 0 or height == 0 or width == 0:
        return input.new_zeros((num_rois, channels, output_height, output_width), dtype=out_dtype)
    dtype, device = input.dtype, input.device
    offset = 0.5 if aligned else 0.0
    batch_index = rois[:, 0].long()
    start_w = rois[:, 1] * spatial_scale - offset
    start_h = rois[:, 2] * spatial_scale - offset
    end_w = rois[:, 3] * spatial_scale - offset
    end_h = rois[:, 4] * spatial_scale - offset
    roi_w = end_w - start_w
    roi_h = end_h - start_h
    if not aligned:
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    bin_h = roi_h / output_height
    bin_w = roi_w / output_width
    if sampling_ratio > 0:
        grid_h = torch.full((num_rois,), sampling_ratio, dtype=torch.int64, device=device)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / output_height).long()
        grid_w = torch.ceil(roi_w / output_width).long()
    count = (grid_h * grid_w).clamp(min=1).to(dtype)
    max_gh = max(int(grid_h.max()), 1)
    max_gw = max(int(grid_w.max()), 1)
    y_index, y_weight = _samples(start_h, bin_h, grid_h, max_gh, output_height, height)
    x_index, x_weight = _samples(start_w, bin_w, grid_w, max_gw, output_width, width)
    y_weight = y_weight / count[:, None, None, None]
    # Columns a region reads: [col0, col0 + span); zero-weight taps do not widen it.
    x_used = x_weight > 0
    big = torch.iinfo(torch.int64).max
    col0 = torch.where(x_used, x_index, big).flatten(1).amin(dim=1)
    span = (torch.where(x_used, x_index, -1).flatten(1).amax(dim=1) - col0 + 1).clamp(min=1)
    col0 = torch.where(span > 0, col0, 0).clamp(max=width - 1)
    x_rel = (x_index - col0[:, None, None, None]).clamp(min=0)

    # (N, H, W, C) flattened to pixels x channels: every gather below copies whole channel rows.
    pixels = input.permute(0, 2, 3, 1).reshape(-1, channels)
    # Bucket regions by samples per bin and column span (powers of two) so that padding a chunk
    # to its largest member wastes little; split each bucket into chunks of bounded memory.
    key = (_bucket(grid_h) * 64 + _bucket(grid_w)) * 64 + _bucket(span)
    outputs, positions = [], []
    for value in torch.unique(key).tolist():
        members = torch.nonzero(key == value, as_tuple=True)[0]
        gh = max(int(grid_h[members].max()), 1)
        gw = max(int(grid_w[members].max()), 1)
        band = int(span[members].max())
        per_chunk = max(1, _CHUNK_ELEMENTS // (output_height * gh * 2 * band * channels))
        for idx in members.split(per_chunk):
            k = len(idx)
            # Rows: the taps of every sample row over the region's column band, summed per bin
            # row with their weights: (k, PH, gh * 2, band * C) -> (k, PH, band * C).
            cols = (col0[idx, None] + torch.arange(band, device=device)).clamp(max=width - 1)
            rows = y_index[idx, :, :gh].reshape(k, -1)
            pix = (batch_index[idx, None, None] * height + rows[:, :, None]) * width
            pix = pix + cols[:, None, :]  # (k, PH * gh * 2, band)
            taps = pixels.index_select(0, pix.reshape(-1))
            taps = taps.view(k, output_height, gh * 2, band * channels)
            wy = y_weight[idx, :, :gh].reshape(k, output_height, 1, gh * 2)
            summed = torch.matmul(wy, taps).view(k * output_height * band, channels)
            # Columns: taps of the row sums, (k, PW, gw * 2, PH * C) -> (k, PW, PH * C).
            rel = x_rel[idx, :, :gw].reshape(k, 1, -1).clamp(max=band - 1)
            base = torch.arange(k * output_height, device=device).view(k, output_height, 1) * band
            taps = summed.index_select(0, (base + rel).transpose(1, 2).reshape(-1))
            taps = taps.view(k, output_width, gw * 2, output_height * channels)
            wx = x_weight[idx, :, :gw].reshape(k, output_width, 1, gw * 2)
            outputs.append(torch.matmul(wx, taps).view(k, output_width, output_height, channels))
            positions.append(idx)
    out = torch.cat(outputs, dim=0) if len(outputs) > 1 else outputs[0]
    out = out[torch.argsort(torch.cat(positions))]
    # (K, PW, PH, C) -> (K, C, PH, PW)
    return out.permute(0, 3, 2, 1).contiguous().to(out_dtype)


def _triton_enabled() -> bool:
    if os.environ.get("MODERNVISION_DISABLE_TRITON", "0") == "1":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
