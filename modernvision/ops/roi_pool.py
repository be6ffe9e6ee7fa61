"""RoI max pooling.

"Fast R-CNN" (Girshick, 2015, arXiv:1504.08083), sec. 2.1: a region is snapped to the feature
grid (coordinates rounded half away from zero, as C's ``round``) and divided into ``PH x PW`` bins
of ``floor``/``ceil`` integer bounds; each bin outputs the maximum of its cells, an empty bin 0.
The gradient goes to the first maximal cell in row-major order, as in torchvision's kernels.

Implementation. A maximum over a rectangle is a maximum over rows of maxima over columns.
For each region the cells of every (row of its band, bin column) are gathered and reduced over
the columns, then those row maxima are gathered per bin row and reduced over the rows. Taking the
first maximum in each step (``torch.max`` returns the first index) selects the first maximal cell
in row-major order. Regions are bucketed by size and processed in chunks of bounded memory with no
Python loop over regions; autograd routes the gradient through the two selections.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from modernvision.ops._roi import check_input, pair, to_rois

__all__ = ["RoIPool", "roi_pool"]

_CHUNK_ELEMENTS = 1 << 21
_FLT_MAX = 3.4028234663852886e38  # torchvision's kernels start every non-empty bin at -FLT_MAX


def roi_pool(
    input: Tensor,
    boxes: Tensor | Sequence[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> Tensor:
    """RoI max pooling (Fast R-CNN, sec. 2.1).

    Args:
        input: ``Tensor[N, C, H, W]`` feature maps.
        boxes: ``Tensor[K, 5]`` rows ``(batch_index, x1, y1, x2, y2)``, or a list of ``N``
            ``Tensor[L, 4]`` of ``(x1, y1, x2, y2)`` boxes, one per image.
        output_size: ``(PH, PW)`` bins, or one int for both.
        spatial_scale: factor mapping box coordinates to ``input`` coordinates (``1 / stride``).

    Returns:
        ``Tensor[K, C, PH, PW]``.
    """
    check_input(input)
    output_height, output_width = pair(output_size)
    rois = to_rois(boxes, input)
    spatial_scale = float(spatial_scale)
    if not spatial_scale > 0 or spatial_scale == float("inf"):
        raise ValueError(f"spatial_scale must be a positive number, got {spatial_scale}")
    return _roi_pool(input, rois, output_height, output_width, spatial_scale)


class RoIPool(nn.Module):
    """Module form of :func:`roi_pool`."""

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float) -> None:
        super().__init__()
        self.output_size = pair(output_size)
        self.spatial_scale = spatial_scale

    def forward(self, input: Tensor, rois: Tensor | Sequence[Tensor]) -> Tensor:
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


def _round_half_away(x: Tensor) -> Tensor:
    whole = torch.trunc(x)
    return torch.where((x - whole).abs() >= 0.5, whole + torch.sign(x), whole).long()


def _bin_bounds(
    start: Tensor, end: Tensor, bins: int, size: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """``(lo [K, bins], hi [K, bins])`` cell bounds of each bin, clipped to ``[0, size]``."""
    length = (end - start + 1).clamp(min=1)
    bin_size = length.to(dtype) / bins
    p = torch.arange(bins, dtype=dtype, device=start.device)
    lo = torch.floor(p[None, :] * bin_size[:, None]).long() + start[:, None]
    hi = torch.ceil((p[None, :] + 1) * bin_size[:, None]).long() + start[:, None]
    return lo.clamp(0, size), hi.clamp(0, size)


def _bucket(values: Tensor) -> Tensor:
    return torch.ceil(torch.log2(values.clamp(min=1).to(torch.float64))).long()


def _roi_pool(
    input: Tensor, rois: Tensor, output_height: int, output_width: int, spatial_scale: float
) -> Tensor:
    num_rois = rois.shape[0]
    _, channels, height, width = input.shape
    if num_rois == 0 or channels == 0 or height == 0 or width == 0:
        return input.new_zeros((num_rois, channels, output_height, output_width))
    dtype, device = input.dtype, input.device
    batch_index = rois[:, 0].long()
    scaled = _round_half_away(rois[:, 1:] * spatial_scale)  # (K, 4): x1, y1, x2, y2 in cells
    h_lo, h_hi = _bin_bounds(scaled[:, 1], scaled[:, 3], output_height, height, dtype)
    w_lo, w_hi = _bin_bounds(scaled[:, 0], scaled[:, 2], output_width, width, dtype)
    # Rows a region reads: [row0, row0 + span); window widths of its bins.
    row0 = h_lo[:, 0].clamp(max=max(height - 1, 0))
    row_span = (h_hi[:, -1] - row0).clamp(min=1)
    w_len = (w_hi - w_lo).clamp(min=0)
    h_len = (h_hi - h_lo).clamp(min=0)
    empty = (h_len[:, :, None] == 0) | (w_len[:, None, :] == 0)  # (K, PH, PW)

    pixels = input.permute(0, 2, 3, 1).reshape(-1, channels)  # (N * H * W, C)
    key = (_bucket(row_span) * 64 + _bucket(w_len.amax(1))) * 64 + _bucket(h_len.amax(1))
    neg_inf = torch.tensor(float("-inf"), dtype=dtype, device=device)
    outputs, positions = [], []
    for value in torch.unique(key).tolist():
        members = torch.nonzero(key == value, as_tuple=True)[0]
        band = int(row_span[members].max())
        max_w = max(int(w_len[members].max()), 1)
        max_h = max(int(h_len[members].max()), 1)
        per_chunk = max(1, _CHUNK_ELEMENTS // (band * output_width * max_w * channels))
        for idx in members.split(per_chunk):
            k = len(idx)
            # Column maxima of every band row: (k, band, PW, max_w, C) -> (k, band, PW, C).
            rows = (row0[idx, None] + torch.arange(band, device=device)).clamp(max=height - 1)
            j = torch.arange(max_w, device=device)
            cols = (w_lo[idx, :, None] + j).clamp(max=width - 1)  # (k, PW, max_w)
            pix = (batch_index[idx, None, None] * height + rows[:, :, None]) * width
            pix = pix + cols.view(k, 1, -1)
            cells = pixels.index_select(0, pix.reshape(-1)).view(k, band, output_width, max_w, -1)
            outside = (j >= w_len[idx, :, None]).view(k, 1, output_width, max_w, 1)
            row_max = cells.masked_fill(outside, neg_inf).max(dim=3).values
            # Row maxima of every bin: (k, PH, max_h, PW, C) -> (k, PH, PW, C).
            i = torch.arange(max_h, device=device)
            rel = (h_lo[idx, :, None] - row0[idx, None, None] + i).clamp(0, band - 1)
            base = torch.arange(k, device=device).view(k, 1, 1) * band
            flat = row_max.reshape(k * band, output_width * channels)
            picked = flat.index_select(0, (base + rel).reshape(-1))
            picked = picked.view(k, output_height, max_h, output_width, channels)
            outside = (i >= h_len[idx, :, None]).view(k, output_height, max_h, 1, 1)
            outputs.append(picked.masked_fill(outside, neg_inf).max(dim=2).values)
            positions.append(idx)
    out = torch.cat(outputs, dim=0) if len(outputs) > 1 else outputs[0]
    out = out[torch.argsort(torch.cat(positions))]  # (K, PH, PW, C)
    # Empty bins are 0; a non-empty bin never goes below torchvision's -FLT_MAX start value.
    out = torch.where(empty[..., None], torch.zeros((), dtype=dtype, device=device), out)
    out = torch.where(out < -_FLT_MAX, torch.full((), -_FLT_MAX, dtype=dtype, device=device), out)
    return out.permute(0, 3, 1, 2).contiguous()
