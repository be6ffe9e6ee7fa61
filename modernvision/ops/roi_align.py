"""RoIAlign: bilinear sampling of a fixed grid of bins in each region of interest.

"Mask R-CNN" (He et al., 2017, arXiv:1703.06870), sec. 3: each of the ``PH x PW`` bins of a
region averages ``sampling_ratio^2`` bilinearly interpolated points (``sampling_ratio <= 0``:
``ceil(roi_size / output_size)`` points per side, per region, as in Detectron). ``aligned=True``
shifts the box by half a pixel so that pixel centres sit at half-integers, the correction
Detectron2 introduced; ``aligned=False`` is the original Detectron implementation, which also
forces regions smaller than one pixel to one pixel. Sample points outside ``[-1, H] x [-1, W]``
count as zero, points in ``[-1, 0]`` are clamped to 0 -- the same border rule as torchvision.

Implementation. Bilinear interpolation is separable: a region's output is
``out[c] = Wy @ F[c] @ Wx^T / count``, where ``Wy[ph, h]`` sums the row weights of bin row ``ph``
over its samples (likewise ``Wx`` for columns), and only the band of rows and columns the region
touches is non-zero. Per bucket of similar regions the cheaper of two evaluations is used: gather
the band (rows x columns x channels) and apply ``Wx`` and ``Wy`` as batched matmuls; or, when
samples are sparse in a large region, gather only the two tap rows of each sample row over the
column band, sum them per bin row, then gather the two tap columns of those sums. There is no
Python loop over regions: regions are bucketed by samples per bin and band size and processed in
chunks of bounded memory. Autograd differentiates the gathers and products, giving
torchvision's gradient (and higher derivatives). This is the implementation on the CPU, for
float64, and wherever Triton is missing or ``MODERNVISION_DISABLE_TRITON=1``.

On CUDA tensors (float32/16, bfloat16) Triton kernels (:mod:`modernvision.ops._roi_align_triton`)
compute the forward pass with torchvision's CUDA arithmetic and the backward pass by scattering
each sample's bilinear weights with atomic adds, as torchvision does; a second derivative through
them is taken with this implementation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from modernvision.ops._roi import check_input, pair, to_rois

__all__ = ["RoIAlign", "roi_align"]

# Elements of the largest gathered tensor per chunk (float32: 8 MiB, about the size of a cache).
_CHUNK_ELEMENTS = 1 << 21


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
    row0, row_span = _band(y_index, y_weight, height)
    col0, col_span = _band(x_index, x_weight, width)

    # (N, H, W, C) flattened to pixels x channels: every gather copies whole channel rows.
    pixels = input.permute(0, 2, 3, 1).reshape(-1, channels)
    # Bucket regions by samples per bin and band size (powers of two) so that padding a chunk to
    # its largest member wastes little; split each bucket into chunks of bounded memory.
    key = ((_bucket(grid_h) * 64 + _bucket(grid_w)) * 64 + _bucket(row_span)) * 64
    key = key + _bucket(col_span)
    outputs, positions = [], []
    for value in torch.unique(key).tolist():
        members = torch.nonzero(key == value, as_tuple=True)[0]
        gh = max(int(grid_h[members].max()), 1)
        gw = max(int(grid_w[members].max()), 1)
        bh = int(row_span[members].max())
        bw = int(col_span[members].max())
        # Elements gathered per channel and region: the whole band, or every tap row over the
        # column band plus every tap column of the row sums (fewer when samples are sparse).
        band_cost = bh * bw
        taps_cost = output_height * gh * 2 * bw + output_width * gw * 2 * output_height
        use_band = band_cost <= taps_cost
        per_region = (band_cost if use_band else output_height * gh * 2 * bw) * channels
        for idx in members.split(max(1, _CHUNK_ELEMENTS // per_region)):
            args = (pixels, batch_index[idx], y_index[idx, :, :gh], y_weight[idx, :, :gh])
            args += (x_index[idx, :, :gw], x_weight[idx, :, :gw], row0[idx], col0[idx])
            if use_band:
                out = _align_band(*args, bh, bw, height, width)
            else:
                out = _align_taps(*args, bw, height, width)
            outputs.append(out)
            positions.append(idx)
    out = torch.cat(outputs, dim=0) if len(outputs) > 1 else outputs[0]
    out = out[torch.argsort(torch.cat(positions))]
    # (K, PH, PW, C) -> (K, C, PH, PW)
    return out.permute(0, 3, 1, 2).contiguous().to(out_dtype)


def _band(index: Tensor, weight: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """First feature row (or column) a region reads and how many; zero-weight taps don't count."""
    used = weight > 0
    big = torch.iinfo(torch.int64).max
    first = torch.where(used, index, big).flatten(1).amin(dim=1)
    last = torch.where(used, index, -1).flatten(1).amax(dim=1)
    span = (last - first + 1).clamp(min=1)
    first = torch.where(last >= 0, first, 0).clamp(max=size - 1)
    return first, span


def _band_weights(index: Tensor, weight: Tensor, first: Tensor, band: int) -> Tensor:
    """Tap weights summed per band row: ``(k, bins, grid, 2) -> (k, bins, band)``."""
    k, bins = index.shape[:2]
    rel = (index - first[:, None, None, None]).clamp(0, band - 1).reshape(k, bins, -1)
    out = torch.zeros((k, bins, band), dtype=weight.dtype, device=weight.device)
    return out.scatter_add_(2, rel, weight.reshape(k, bins, -1))


def _align_band(
    pixels, batch, y_index, y_weight, x_index, x_weight, row0, col0, bh, bw, height, width
) -> Tensor:
    """Gather each region's band ``(k, bh, bw, C)`` and contract it with dense band weights."""
    k = batch.shape[0]
    channels = pixels.shape[1]
    rows = (row0[:, None] + torch.arange(bh, device=row0.device)).clamp(max=height - 1)
    cols = (col0[:, None] + torch.arange(bw, device=col0.device)).clamp(max=width - 1)
    pix = (batch[:, None, None] * height + rows[:, :, None]) * width + cols[:, None, :]
    patch = pixels.index_select(0, pix.reshape(-1)).view(k, bh, bw, channels)
    wy = _band_weights(y_index, y_weight, row0, bh)  # (k, PH, bh)
    wx = _band_weights(x_index, x_weight, col0, bw)  # (k, PW, bw)
    # columns: (k, 1, PW, bw) @ (k, bh, bw, C) -> (k, bh, PW, C)
    tmp = torch.matmul(wx[:, None], patch)
    # rows: (k, PH, bh) @ (k, bh, PW * C) -> (k, PH, PW * C)
    out = torch.bmm(wy, tmp.reshape(k, bh, -1))
    return out.view(k, wy.shape[1], wx.shape[1], channels)


def _align_taps(
    pixels, batch, y_index, y_weight, x_index, x_weight, row0, col0, bw, height, width
) -> Tensor:
    """Gather the tap rows over the column band, sum per bin row, then the tap columns."""
    del row0
    k, output_height, gh = y_index.shape[:3]
    output_width, gw = x_index.shape[1:3]
    channels = pixels.shape[1]
    # (k, PH, gh * 2, bw * C) -> (k, PH, bw * C)
    cols = (col0[:, None] + torch.arange(bw, device=col0.device)).clamp(max=width - 1)
    rows = y_index.reshape(k, -1)
    pix = (batch[:, None, None] * height + rows[:, :, None]) * width + cols[:, None, :]
    taps = pixels.index_select(0, pix.reshape(-1)).view(k, output_height, gh * 2, bw * channels)
    wy = y_weight.reshape(k, output_height, 1, gh * 2)
    summed = torch.matmul(wy, taps).view(k * output_height * bw, channels)
    # (k, PW, gw * 2, PH * C) -> (k, PW, PH * C)
    rel = (x_index - col0[:, None, None, None]).clamp(0, bw - 1).reshape(k, 1, -1)
    base = torch.arange(k * output_height, device=col0.device).view(k, output_height, 1) * bw
    taps = summed.index_select(0, (base + rel).transpose(1, 2).reshape(-1))
    taps = taps.view(k, output_width, gw * 2, output_height * channels)
    wx = x_weight.reshape(k, output_width, 1, gw * 2)
    out = torch.matmul(wx, taps).view(k, output_width, output_height, channels)
    return out.transpose(1, 2)


def _triton_enabled() -> bool:
    if os.environ.get("MODERNVISION_DISABLE_TRITON", "0") == "1":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
